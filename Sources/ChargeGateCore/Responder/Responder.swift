/// What the responder needs from a request: its CGI params and, for top-off, its body.
public protocol RequestParams {
    /// The CGI/FastCGI param `name` (`REQUEST_METHOD`, `HTTP_AUTHORIZATION`, ...), or nil.
    func param(_ name: String) -> String?
    /// At most `limit` bytes of the request body; nil when it is longer than that.
    func body(limit: Int) -> [UInt8]?
}

/// Turns one FastCGI request into an answer: the gate decision for the auth subrequest, or a
/// usage endpoint's JSON. Each worker thread makes one around its own store and deny cache;
/// time comes only from the injected clock (for the deny cache) and the store.
public struct Responder {
    /// The param names of the wire contract (docs/protocol.md).
    public enum Param {
        /// Which answer nginx wants.
        public static let role = "CHARGE_GATE_ROLE"
        /// nginx's normalised `$uri` of the protected request.
        public static let uri = "CHARGE_GATE_URI"
        /// The subject chosen in the snippet.
        public static let subject = "CHARGE_GATE_SUBJECT"
    }

    /// The response header names the snippets read back with `auth_request_set`.
    public enum Header {
        /// 204, 429, 402, 422 or 503.
        public static let status = "X-Charge-Status"
        /// The JSON body of a denial.
        public static let body = "X-Charge-Body"
        /// Seconds for `Retry-After`.
        public static let retryAfter = "X-Charge-Retry-After"
        /// The route's `RateLimit-Policy` value.
        public static let rateLimitPolicy = "X-Charge-RateLimit-Policy"
        /// The `RateLimit` value after this decision.
        public static let rateLimit = "X-Charge-RateLimit"
    }

    /// The store this worker spends from.
    public let store: any ChargeStore
    /// Denials learned from the store, answered from memory until they end.
    public let denials: DenyCache
    /// The local clock, for the deny cache only (the store keeps its own clock).
    public let clock: any GateClock

    /// Creates a responder over `store`.
    public init(store: any ChargeStore, clock: any GateClock, denials: DenyCache = DenyCache()) {
        self.store = store
        self.clock = clock
        self.denials = denials
    }

    /// Answers one request under `gate`.
    public func respond(to request: some RequestParams, gate: Gate) -> Response {
        respond(to: request, role: request.param(Param.role), gate: gate)
    }

    /// Answers one request under `gate`, its `CHARGE_GATE_ROLE` already read by the caller.
    public func respond(to request: some RequestParams, role: String?, gate: Gate) -> Response {
        switch role {
        case "auth": return authorize(request, gate: gate)
        case "usage": return usage(request, gate: gate)
        case "check": return check(request, gate: gate)
        case "topoff": return topOff(request, gate: gate)
        case "events": return events(request, gate: gate)
        case let role:
            var response = deny(503, body: Self.unavailableBody)
            response.note = .init(isError: true, message: "request without a known \(Param.role): denied; check the nginx snippet", fields: [("role", role.map { SafeToken.key(for: $0) } ?? "none")])
            return response
        }
    }

    // MARK: The auth subrequest

    static let unavailableBody = #"{"error":"service_unavailable"}"#
    static let keyReusedBody = #"{"error":"idempotency_key_reused"}"#

    /// The charged path: nginx's `$uri` when the snippet passes it, else `REQUEST_URI`
    /// normalised here the way nginx would.
    static func chargedPath(_ request: some RequestParams) -> String {
        if let uri = request.param(Param.uri), !uri.isEmpty {
            return URIPath.normalize(uri)
        }
        return URIPath.fromRequestURI(request.param("REQUEST_URI") ?? "/")
    }

    func authorize(_ request: some RequestParams, gate: Gate) -> Response {
        let path = Self.chargedPath(request)
        let requestMethod = request.param("REQUEST_METHOD") ?? ""
        // HEAD is GET without the body: the app still does the work, so it is charged alike.
        let method = requestMethod == "HEAD" ? "GET" : requestMethod
        guard let routeIndex = gate.router.match(path: path, method: method) else { return Self.allow }
        if gate.config.devBypass { return Self.allow }

        let route = gate.config.routes[routeIndex]
        let subject = SafeToken.key(for: request.param(Param.subject) ?? "")
        // The idempotency header counts only on routes that say the app deduplicates on it;
        // elsewhere it is ignored and every request is charged.
        var idempotency: IdempotencyCheck?
        var clientKey = ""
        if route.idempotent, let key = request.param(gate.idempotencyParam), !key.isEmpty {
            clientKey = SafeToken.key(for: key)
            idempotency = gate.idempotencyCheck(route: routeIndex, subject: subject, clientKey: key, method: requestMethod, uri: path)
        }
        // A retry with an idempotency key may be the repeat of an allowed request: only the
        // store knows, so it always asks.
        denials.use(gate)
        let cacheable = idempotency == nil && gate.routeDenialsCacheable[routeIndex]
        let cacheKey = gate.denialKey(route: routeIndex, subject: subject)
        let policy = gate.routeRateLimitPolicy[routeIndex]
        if cacheable, let cached = denials.denial(for: cacheKey, now: clock.nowMs()) {
            // Not logged one by one: the next denial the store decides for this key reports
            // how many were answered from memory meanwhile.
            var response = outOfCharge(pool: cached.poolId, wait: cached.retryAfterMs, subject: subject, route: route.prefix, policy: policy, noted: false)
            response.outcome = .outOfCharge(pool: cached.poolId, fromMemory: true)
            return response
        }
        let items = route.charges.map { gate.item(pool: $0.poolIndex, cost: $0.cost, subject: subject) }
        let spend = SpendRequest(
            items: items, idempotency: idempotency,
            eventsKey: gate.eventsKey, eventsMaxLen: gate.config.eventsMaxLen,
            context: EventContext(
                subject: subject, route: route.prefix, method: requestMethod,
                uri: String(path.prefix(1024)), idempotencyKey: clientKey))

        let outcome: SpendOutcome
        do {
            outcome = try store.spend(spend)
        } catch {
            var response = deny(503, body: Self.unavailableBody)
            response.note = .init(isError: true, message: "\(error): answered 503", fields: [("route", route.prefix), ("subject", subject)])
            response.outcome = .serviceUnavailable(pools: items.map(\.poolId))
            return response
        }
        switch outcome {
        case .repeated:
            var response = Self.allow
            response.outcome = .allowed(pools: [])
            return response
        case .keyReused:
            var response = deny(422, body: Self.keyReusedBody)
            response.outcome = .idempotencyKeyReused(pools: items.map(\.poolId))
            response.note = .init(isError: false, message: "denied idempotency_key_reused", fields: [
                ("subject", subject), ("idempotencyKey", clientKey), ("route", route.prefix),
            ])
            return response
        case .allowed(let now, let remaining, let fullAt):
            var response = allowed(items, remaining: remaining, fullAt: fullAt, now: now, policy: policy)
            response.outcome = .allowed(pools: items.map(\.poolId))
            return response
        case .outOfCharge(let item, let wait):
            var response = outOfCharge(pool: items[item].poolId, wait: wait, subject: subject, route: route.prefix, policy: policy)
            response.outcome = .outOfCharge(pool: items[item].poolId, fromMemory: false)
            if cacheable {
                let fromMemory = denials.remember(cacheKey, poolId: items[item].poolId, retryAfterMs: wait, now: clock.nowMs())
                if fromMemory > 0 { response.note?.fields.append(("deniedFromMemoryBefore", String(fromMemory))) }
            }
            return response
        case .insufficientCredits(let item, let available, let required):
            let pool = items[item].poolId
            var w = JSONWriter()
            w.beginObject()
            w.field("error", "insufficient_credits")
            w.field("poolId", pool)
            w.field("availableBalance", available)
            w.field("required", required)
            w.endObject()
            var response = deny(402, body: w.text, policy: policy, state: "\"\(pool)\";r=\(available)")
            response.outcome = .insufficientCredits(pool: pool)
            response.note = .init(isError: false, message: "denied insufficient_credits", fields: [
                ("pool", pool), ("subject", subject), ("available", String(available)), ("required", String(required)), ("route", route.prefix),
            ])
            return response
        }
    }

    /// The 429 for `pool`, waiting `wait` ms; with the log line unless `noted` is false (an
    /// answer from the deny cache is counted, not logged one by one).
    func outOfCharge(pool: String, wait: Int64, subject: String, route: String, policy: String, noted: Bool = true) -> Response {
        var w = JSONWriter()
        w.beginObject()
        w.field("error", "out_of_charge")
        w.field("retryAfterMs", wait)
        w.field("poolId", pool)
        w.endObject()
        let seconds = String((wait + 999) / 1000)
        var response = deny(429, body: w.text, retryAfter: seconds, policy: policy, state: policy.isEmpty ? "" : "\"" + pool + "\";r=0;t=" + seconds)
        if noted {
            response.note = .init(isError: false, message: "denied out_of_charge", fields: [
                ("pool", pool), ("subject", subject), ("retryAfterMs", String(wait)), ("route", route),
            ])
        }
        return response
    }

    /// The 204 with the `RateLimit` state of every limited pool: `r` charges left, `t` seconds
    /// until the next one comes back (0 when full; none for a pool that never refills).
    func allowed(_ items: [SpendItem], remaining: [Int64], fullAt: [Int64?], now: Int64, policy: String) -> Response {
        guard !policy.isEmpty, remaining.count == items.count, fullAt.count == items.count else { return Self.allow }
        var state = ""
        for (i, item) in items.enumerated() {
            guard let max = item.max else { continue }
            if !state.isEmpty { state += ", " }
            state += "\""
            state += item.poolId
            state += "\";r="
            state += String(remaining[i])
            if let full = fullAt[i], let interval = item.intervalMs {
                let next = full - (max - remaining[i] - 1) * interval
                state += ";t="
                state += String(Gate.seconds(next - now))
            }
        }
        return Response(status: 204, headers: [(Header.status, "204"), (Header.rateLimitPolicy, policy), (Header.rateLimit, state)])
    }

    static let allow = Response(status: 204, headers: [(Header.status, "204")])

    /// The 403 that carries a denial to the snippets: its status and JSON body, then
    /// `Retry-After` when given and the `RateLimit` pair when the route has a policy.
    func deny(_ status: Int, body: String, retryAfter: String? = nil, policy: String = "", state: String = "") -> Response {
        var headers: [(name: String, value: String)] = []
        headers.reserveCapacity(5)
        headers.append((Header.status, String(status)))
        headers.append((Header.body, body))
        if let retryAfter { headers.append((Header.retryAfter, retryAfter)) }
        if !policy.isEmpty {
            headers.append((Header.rateLimitPolicy, policy))
            headers.append((Header.rateLimit, state))
        }
        return Response(status: 403, headers: headers)
    }
}
