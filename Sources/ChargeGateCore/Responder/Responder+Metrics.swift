extension Responder {
    /// `GET /metrics`: the text exposition format (served to loopback by the shipped snippet).
    func metrics(_ request: some RequestParams) -> Response {
        if let refused = Self.onlyMethods(["GET", "HEAD"], request) { return refused }
        guard let exposition else { return .error(404, "not_found") }
        return Response(
            status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8"), ("Cache-Control", "no-store")],
            body: exposition())
    }
}
