import ChargeGateCore

/// One step of a `ResponderScenario`.
public enum ResponderStep: Sendable {
    /// A request and the answer it must get.
    case ask(FakeRequest, ResponderAnswer)
    /// Moves the manual clock by this many ms (memory store only).
    case advance(Int64)

    /// The auth subrequest for `uri` by `method` from `subject`, with the idempotency key `key`
    /// if given and the client's raw `REQUEST_URI` `requestURI` if given.
    public static func auth(
        _ uri: String, method: String = "POST", subject: String = "203.0.113.7", key: String? = nil, requestURI: String? = nil,
        _ expected: ResponderAnswer
    ) -> ResponderStep {
        var headers: [String: String] = [:]
        if let key { headers["HTTP_IDEMPOTENCY_KEY"] = key }
        if let requestURI { headers[WireProtocol.Param.requestURI] = requestURI }
        return .ask(FakeRequest.auth(uri, method: method, subject: subject, headers: headers), expected)
    }

    /// A request to the endpoint of `role` (see `FakeRequest.endpoint`).
    public static func endpoint(
        _ role: String, query: String = "", method: String = "GET", token: String? = nil, subject: String = "203.0.113.7",
        body: String = "", _ expected: ResponderAnswer
    ) -> ResponderStep {
        .ask(FakeRequest.endpoint(role, query: query, method: method, token: token, subject: subject, body: body), expected)
    }
}
