import ChargeGateCore

/// A request made of a dictionary of params: what nginx would send over FastCGI, for the
/// responder suites and the store-neutral responder tables (`ResponderScenario`).
public struct FakeRequest: RequestParams, Sendable {
    /// The CGI params by name (`CHARGE_GATE_ROLE`, `REQUEST_METHOD`, `HTTP_...`).
    public var params: [String: String]
    /// The request body (a top-off's JSON).
    public var bodyBytes: [UInt8] = []

    /// A request with these params and body.
    public init(params: [String: String], bodyBytes: [UInt8] = []) {
        self.params = params
        self.bodyBytes = bodyBytes
    }

    /// The param `name`, or nil.
    public func param(_ name: String) -> String? { params[name] }
    /// The body, or nil when it is longer than `limit`.
    public func body(limit: Int) -> [UInt8]? { bodyBytes.count > limit ? nil : bodyBytes }

    /// The auth subrequest for `uri` (nginx's `$uri`), by `method` from `subject`, with extra
    /// params `headers` (`HTTP_IDEMPOTENCY_KEY`, `REQUEST_URI`, ...).
    public static func auth(
        _ uri: String, method: String = "POST", subject: String = "203.0.113.7", headers: [String: String] = [:]
    ) -> FakeRequest {
        var params = ["CHARGE_GATE_ROLE": "auth", "CHARGE_GATE_URI": uri, "REQUEST_METHOD": method, "CHARGE_GATE_SUBJECT": subject]
        params.merge(headers) { $1 }
        return FakeRequest(params: params)
    }

    /// A request to the endpoint of `role` (usage, check, topoff, events, plan) with the query
    /// string `query`, the admin token `token` as a bearer token, and `body`.
    public static func endpoint(
        _ role: String, query: String = "", method: String = "GET", token: String? = nil, subject: String = "203.0.113.7", body: String = ""
    ) -> FakeRequest {
        var params = ["CHARGE_GATE_ROLE": role, "QUERY_STRING": query, "REQUEST_METHOD": method, "CHARGE_GATE_SUBJECT": subject]
        if let token { params["HTTP_AUTHORIZATION"] = "Bearer " + token }
        return FakeRequest(params: params, bodyBytes: Array(body.utf8))
    }
}
