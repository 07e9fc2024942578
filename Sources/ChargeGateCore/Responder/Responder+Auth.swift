extension Responder {
    /// The auth subrequest: route the charged path, then ask the deny cache or the store, and
    /// carry the decision back in `X-Charge-*` headers (204 allows, 403 carries a denial).
    func authorize(_ request: some RequestParams, gate: Gate) -> Response {
        let path = Self.chargedPath(request)
        let requestMethod = request.param(Param.method) ?? ""
        // HEAD is GET without the body: the app still does the work, so it is charged alike.
        let method = requestMethod == "HEAD" ? "GET" : requestMethod
        guard let route = gate.route(path: path, method: method) else { return Self.allow }
        if gate.config.devBypass { return Self.allow }
        let subject = SafeToken.key(for: request.param(Param.subject) ?? "")

        // The idempotency header counts only on routes that say the app deduplicates on it;
        // elsewhere it is ignored and every request is charged.
        let key = request.param(gate.idempotencyParam) ?? ""
        var idempotency: IdempotencyCheck?
        var clientKey = ""
        if route.idempotent, !key.isEmpty {
            clientKey = SafeToken.key(for: key)
            idempotency = gate.idempotencyCheck(route, subject: subject, clientKey: key, method: requestMethod, uri: path)
        }

        // A request with an idempotency key may repeat an allowed one: only the store knows.
        denials.use(gate)
        let cacheable = idempotency == nil && route.denialsCacheable
        // nginx's cache never sees a request with the header (the snippet bypasses it), and the
        // responder never marks one: on an idempotent route its answer is the record's.
        let edgeCacheable = cacheable && gate.config.edgeDenySeconds > 0 && key.isEmpty
        let cacheKey = route.denialKey(subject: subject)
        let now = cacheable ? clock.nowMs() : 0
        if cacheable, let cached = denials.denial(for: cacheKey, now: now) {
            // Not logged one by one: the next denial the store decides for this key reports
            // how many were answered from memory meanwhile.
            var response = outOfCharge(pool: cached.poolId, wait: cached.retryAfterMs, subject: subject, route: route, noted: false)
            if edgeCacheable { markForEdge(&response, wait: cached.retryAfterMs, now: now, gate: gate) }
            response.outcome = .outOfCharge(pool: cached.poolId, fromMemory: true)
            return response
        }

        let items = gate.items(route, subject: subject)
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
            response.note = .init(
                isError: true, message: "\(error): answered 503", fields: [("route", route.prefix), ("subject", subject)])
            response.outcome = .serviceUnavailable(pools: items.map(\.poolId))
            return response
        }

        switch outcome {
        case .allowed(let now, let remaining, let fullAt):
            var response = allowed(items, remaining: remaining, fullAt: fullAt, now: now, policy: route.rateLimitPolicy)
            response.outcome = .allowed(pools: items.map(\.poolId))
            return response
        case .repeated:
            var response = Self.allow
            response.outcome = .allowed(pools: [])
            return response
        case .keyReused:
            var response = deny(422, body: Self.keyReusedBody)
            response.outcome = .idempotencyKeyReused(pools: items.map(\.poolId))
            response.note = .init(
                isError: false, message: "denied idempotency_key_reused",
                fields: [
                    ("subject", subject), ("idempotencyKey", clientKey), ("route", route.prefix),
                ])
            return response
        case .outOfCharge(let item, let wait):
            let pool = items[item].poolId
            var response = outOfCharge(pool: pool, wait: wait, subject: subject, route: route)
            response.outcome = .outOfCharge(pool: pool, fromMemory: false)
            if cacheable {
                // The store's wait counts from its answer, so from the clock read after it.
                let answered = clock.nowMs()
                let fromMemory = denials.remember(cacheKey, poolId: pool, retryAfterMs: wait, now: answered)
                if fromMemory > 0 { response.note?.fields.append(("deniedFromMemoryBefore", String(fromMemory))) }
                if edgeCacheable { markForEdge(&response, wait: wait, now: answered, gate: gate) }
            }
            return response
        case .insufficientCredits(let item, let available, let required):
            return insufficientCredits(pool: items[item].poolId, available: available, required: required, subject: subject, route: route)
        }
    }

    static let keyReusedBody = #"{"error":"idempotency_key_reused"}"#
    static let allow = Response(status: 204, headers: [(Header.status, "204")])

    /// The charged path: nginx's `$uri` when the snippet passes it, else `REQUEST_URI`
    /// normalised here the way nginx would.
    static func chargedPath(_ request: some RequestParams) -> String {
        if let uri = request.param(Param.uri), !uri.isEmpty {
            return URIPath.normalize(uri)
        }
        return URIPath.fromRequestURI(request.param(Param.requestURI) ?? "/")
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
                let level = Bucket.level(remaining: remaining[i], fullAt: full, max: max, intervalMs: interval)
                state += ";t="
                state += String(Gate.seconds((Bucket.nextRechargeAt(level, intervalMs: interval) ?? now) - now))
            }
        }
        return Response(status: 204, headers: [(Header.status, "204"), (Header.rateLimitPolicy, policy), (Header.rateLimit, state)])
    }

    /// The 429 for `pool`, waiting `wait` ms; with the log line unless `noted` is false (an
    /// answer from the deny cache is counted, not logged one by one).
    func outOfCharge(pool: String, wait: Int64, subject: String, route: Gate.Route, noted: Bool = true) -> Response {
        var w = JSONWriter()
        w.beginObject()
        w.field("error", "out_of_charge")
        w.field("retryAfterMs", wait)
        w.field("poolId", pool)
        w.endObject()
        let seconds = String((wait + 999) / 1000)
        let policy = route.rateLimitPolicy
        var response = deny(
            429, body: w.text, retryAfter: seconds, policy: policy, state: policy.isEmpty ? "" : "\"" + pool + "\";r=0;t=" + seconds)
        if noted {
            response.note = .init(
                isError: false, message: "denied out_of_charge",
                fields: [
                    ("pool", pool), ("subject", subject), ("retryAfterMs", String(wait)), ("route", route.prefix),
                ])
        }
        return response
    }

    /// Lets nginx answer this 429 from its own cache (`X-Accel-Expires: @T`, epoch seconds).
    /// nginx serves a cached answer while `T >= ngx_time()`, that is to the end of second T
    /// (ngx_http_file_cache_read: stale only when `valid_sec < now`), so T is the last whole
    /// second that ends by the moment the request would pass, and the entry lives at most
    /// `edgeDenySeconds`: T = min(floor((now + wait) / 1000) - 1, floor(now / 1000) +
    /// edgeDenySeconds - 1). Nothing when T is already past (the pool's next charge falls in
    /// this very second). `now` is this node's clock, the one nginx compares T with.
    func markForEdge(_ response: inout Response, wait: Int64, now: Int64, gate: Gate) {
        let nowSeconds = now / 1000
        let until = Swift.min((now + wait) / 1000 - 1, nowSeconds + Int64(gate.config.edgeDenySeconds) - 1)
        guard until >= nowSeconds else { return }
        response.headers.append((Header.accelExpires, "@" + String(until)))
    }

    /// The 402 for `pool` (it never refills, so waiting would not help): no `Retry-After`.
    func insufficientCredits(pool: String, available: Int64, required: Int64, subject: String, route: Gate.Route) -> Response {
        var w = JSONWriter()
        w.beginObject()
        w.field("error", "insufficient_credits")
        w.field("poolId", pool)
        w.field("availableBalance", available)
        w.field("required", required)
        w.endObject()
        var response = deny(402, body: w.text, policy: route.rateLimitPolicy, state: "\"\(pool)\";r=\(available)")
        response.outcome = .insufficientCredits(pool: pool)
        response.note = .init(
            isError: false, message: "denied insufficient_credits",
            fields: [
                ("pool", pool), ("subject", subject), ("available", String(available)), ("required", String(required)),
                ("route", route.prefix),
            ])
        return response
    }
}
