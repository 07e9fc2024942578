/// The nginx ↔ responder contract (docs/protocol.md), every name of it in one place: which
/// answer nginx asks for (`Role`), the FastCGI params the snippets send (`Param`), and the
/// headers the responder answers the auth subrequest with (`Header`). A unit test checks these
/// lists against docs/protocol.md and the `fastcgi_param` lines of the shipped snippets.
public enum WireProtocol {
    /// The answer nginx wants, from the `CHARGE_GATE_ROLE` param of each location.
    public enum Role: String, CaseIterable, Sendable {
        /// The auth subrequest of a gated request: allow or deny.
        case auth
        /// `GET /api/usage`: every pool's state (JSON, or HTML for browsers).
        case usage
        /// `GET /api/usage/check?pools=a,b`: availability.
        case check
        /// `POST /api/usage/topoff` (admin).
        case topoff
        /// `GET /api/usage/events` (admin).
        case events
        /// `GET /metrics`: Prometheus text.
        case metrics
        /// `GET`/`PUT`/`DELETE /api/usage/plan?subject=S` (admin): a subject's stored plan.
        case plan
        /// `POST /api/usage/settle` (admin): the app settles a hold.
        case settle
    }

    /// FastCGI params the responder reads.
    public enum Param {
        /// Which answer nginx wants (`Role`).
        public static let role = "CHARGE_GATE_ROLE"
        /// nginx's normalised `$uri` of the protected request.
        public static let uri = "CHARGE_GATE_URI"
        /// The subject chosen in the snippet.
        public static let subject = "CHARGE_GATE_SUBJECT"
        /// nginx's `$request_id`: for log lines, and the id of a settled route's hold.
        public static let requestID = "CHARGE_GATE_REQUEST_ID"
        /// The client's method.
        public static let method = "REQUEST_METHOD"
        /// The client's raw request URI: the charged path when `CHARGE_GATE_URI` is empty.
        public static let requestURI = "REQUEST_URI"
        /// The query string of a usage request.
        public static let query = "QUERY_STRING"
        /// The body length of a top-off, a plan or a settlement.
        public static let contentLength = "CONTENT_LENGTH"
        /// `Authorization: Bearer <adminToken>` of an admin request.
        public static let authorization = "HTTP_AUTHORIZATION"
        /// `Accept` of a usage request (`text/html` asks for the page).
        public static let accept = "HTTP_ACCEPT"
        /// The plan nginx names for the subject (`$charge_gate_plan`; empty: none), used when
        /// the subject has no stored plan.
        public static let plan = "CHARGE_GATE_PLAN"

        /// Every param above. (The idempotency header arrives as `HTTP_` + its name, from the
        /// config: `GateConfig.idempotencyParam`.)
        public static let all = [
            role, uri, subject, requestID, method, requestURI, query, contentLength, authorization, accept, plan,
        ]
    }

    /// Headers of the responder's answer to the auth subrequest, read back by the snippets with
    /// `auth_request_set`.
    public enum Header {
        /// The decision: 204 (allowed on a route), `unrouted` (allowed: no route, nothing
        /// charged), 429, 402, 422 or 503.
        public static let status = "X-Charge-Status"
        /// The JSON body of a denial.
        public static let body = "X-Charge-Body"
        /// Seconds for `Retry-After` (429 only).
        public static let retryAfter = "X-Charge-Retry-After"
        /// The route's `RateLimit-Policy` value.
        public static let rateLimitPolicy = "X-Charge-RateLimit-Policy"
        /// The `RateLimit` value after this decision.
        public static let rateLimit = "X-Charge-RateLimit"

        /// nginx's own: `@T` (epoch seconds) on a 429 that nginx may answer from its deny cache
        /// until T (never past the pool's next charge, at most `edgeDenySeconds` away).
        public static let accelExpires = "X-Accel-Expires"

        /// `X-Accel-Expires: 0`, on every auth answer but a 429 marked `@T`: nginx never
        /// caches it, whatever `fastcgi_cache_valid` the auth location inherits.
        public static let neverCached = (name: accelExpires, value: "0")

        /// On a 204 of a shadow route that would have been denied: why, the denial's name
        /// (`Denial.code`: `out_of_charge`, `insufficient_credits`, `idempotency_key_reused`,
        /// `service_unavailable`).
        public static let shadow = "X-Charge-Shadow"

        /// On a 204 of a settled route: the hold's id (nginx's `$request_id`), which the
        /// snippets keep as `$charge_gate_hold` for the settlement line (and a recipe hands to
        /// the app).
        public static let hold = "X-Charge-Hold"

        /// `X-Charge-Status` of a pass that matched no route. The auth location answers a
        /// later pass of the same request itself only after a `204`.
        public static let unroutedStatus = "unrouted"

        /// Every header above.
        public static let all = [status, body, retryAfter, rateLimitPolicy, rateLimit, accelExpires, shadow, hold]
    }
}
