extension Responder {
    /// The auth subrequest: route the charged path, then ask the deny cache or the store, and
    /// carry the decision back in `X-Charge-*` headers (204 allows, 403 carries a denial).
    func authorize(_ request: some RequestParams, gate: Gate) -> Response {
        let path = Self.chargedPath(request)
        // The auth location asked about itself: the protected request's path was overwritten in
        // the subrequest (a `set $charge_gate_uri $uri;` at server level runs again there). The
        // snippets' locations live under `/_charge_gate/`, which no route may charge: never a
        // pass, the route the client wanted is unknown. (A prefix test: no param, no copy.)
        if path.utf8.starts(with: Self.reservedPrefix.utf8) {
            var response = deny(503, body: Self.unavailableBody)
            response.note = .init(
                isError: true,
                message: "the charged path is under /_charge_gate/, the snippets' own: denied; "
                    + "set $charge_gate_uri only as charge-gate-protect.conf does")
            return response
        }
        let requestMethod = request.param(Param.method) ?? ""
        // HEAD is GET without the body: the app still does the work, so it is charged alike.
        let method = requestMethod == "HEAD" ? "GET" : requestMethod
        // No route: a pass that charged nothing, which the auth location must never replay for
        // a later pass of the same request (an internal redirect into a charged route).
        guard let route = gate.route(path: path, method: method) else { return Self.unrouted }
        if gate.config.devBypass { return Self.allow }
        let subject = SafeToken.key(for: request.param(Param.subject) ?? "")

        // The idempotency header counts only on routes that say the app deduplicates on it;
        // elsewhere it is ignored and every request is charged.
        let key = request.param(gate.idempotencyParam) ?? ""
        var idempotency: IdempotencyCheck?
        var clientKey = ""
        if route.idempotent, !key.isEmpty {
            clientKey = SafeToken.key(for: key)
            idempotency = gate.idempotencyCheck(
                route, subject: subject, clientKey: key, method: requestMethod, uri: path,
                query: URIPath.query(ofRequestURI: request.param(Param.requestURI) ?? ""))
        }

        // The plan when the subject has none stored: nginx's when it names one, else the default
        // (the param is not even looked up without plans).
        let nginx = gate.config.plans.isEmpty ? Gate.NginxPlan.none : gate.nginxPlan(request.param(Param.plan))
        let choice = gate.planChoice(route, subject: subject, fallback: nginx.index)

        // A request with an idempotency key may repeat an allowed one: only the store knows. A
        // shadow route asks the store every time (it is decided exactly as when enforced).
        denials.use(gate)
        let cacheable = idempotency == nil && route.denialsCacheable && !route.shadow
        // nginx's cache never sees a request with the header (the snippet bypasses it), and the
        // responder never marks one: on an idempotent route its answer is the record's.
        let edgeCacheable = cacheable && gate.config.edgeDenySeconds > 0 && key.isEmpty
        // nginx's plan is part of the key (a denial under one plan never answers another); a
        // stored plan set here clears the cache (DenyCache.invalidateAll), one set elsewhere is
        // seen within the cache's maxAgeMs.
        var cacheKey = ""
        if cacheable {
            cacheKey = route.denialKey(subject: subject)
            if choice != nil { cacheKey += gate.plans[nginx.index].cacheSuffix }
        }
        let now = cacheable ? clock.nowMs() : 0
        if cacheable, let cached = denials.denial(for: cacheKey, now: now) {
            // Not logged one by one: the next denial the store decides for this key reports
            // how many were answered from memory meanwhile.
            var response = outOfCharge(
                pool: cached.poolId, wait: cached.retryAfterMs, subject: subject, route: route, policy: cached.policy, noted: false)
            if edgeCacheable { markForEdge(&response, wait: cached.retryAfterMs, now: now, gate: gate) }
            response.outcome = .outOfCharge(pool: cached.poolId, fromMemory: true)
            return response
        }

        let items = gate.items(route, subject: subject, plan: nginx.index)
        let spend = SpendRequest(
            items: items, idempotency: idempotency,
            eventsKey: gate.eventsKey, eventsMaxLen: gate.config.eventsMaxLen,
            context: EventContext(
                subject: subject, route: route.prefix, method: requestMethod,
                uri: String(path.prefix(1024)), idempotencyKey: clientKey),
            plan: choice)
        let result: SpendResult
        do {
            result = try store.charge(spend)
        } catch {
            if route.shadow {
                var response = shadowPass("service_unavailable")
                response.note = .init(
                    isError: true, message: "\(error): passed (shadow mode)", fields: [(.route, route.prefix), (.subject, subject)])
                response.outcome = .shadow(.serviceUnavailable(pools: items.map(\.poolId)))
                return response
            }
            var response = deny(503, body: Self.unavailableBody)
            response.note = .init(
                isError: true, message: "\(error): answered 503", fields: [(.route, route.prefix), (.subject, subject)])
            response.outcome = .serviceUnavailable(pools: items.map(\.poolId))
            return response
        }

        // The items as the store decided them: under the plan it found, with its anchor (as
        // built when that is nginx's plan without an anchor: no copy on the common path).
        var decided = items
        if let use = result.plan, let choice, use.index != nginx.index || use.anchor != nil {
            decided = choice.apply(use, to: items)
        }
        let planIndex = result.plan?.index ?? nginx.index
        var response = respond(
            to: result.outcome, now: result.now, items: decided, route: route, subject: subject, clientKey: clientKey, plan: planIndex)
        if choice != nil, let note = gate.unknownPlanNote(result.plan, nginx: nginx, subject: subject) {
            if response.note == nil { response.note = note } else { response.note?.fields += note.fields }
            response.note?.isError = true
        }
        guard case .outOfCharge(let item, let wait) = result.outcome, cacheable, !route.shadow else { return response }
        // The store's wait counts from its answer, so from the clock read after it.
        let answered = clock.nowMs()
        let policy = response.headers.first { $0.name == Header.rateLimitPolicy }?.value ?? ""
        let fromMemory = denials.remember(cacheKey, poolId: decided[item].poolId, retryAfterMs: wait, now: answered, policy: policy)
        if fromMemory > 0 { response.note?.fields.append((.deniedFromMemoryBefore, String(fromMemory))) }
        if edgeCacheable { markForEdge(&response, wait: wait, now: answered, gate: gate) }
        return response
    }

    /// The answer to the store's decision on `items` (as decided, under plan `plan`); in
    /// shadow mode a would-be denial passes with `X-Charge-Shadow`.
    private func respond(
        to outcome: SpendOutcome, now: Int64, items: [SpendItem], route: Gate.Route, subject: String, clientKey: String, plan: Int
    ) -> Response {
        switch outcome {
        case .allowed(let results):
            var response = allowed(items, results: results, now: now, policy: policy(route, items: items, plan: plan, now: now))
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
                fields: [(.subject, subject), (.idempotencyKey, clientKey), (.route, route.prefix)])
            return route.shadow ? shadowed(response, "idempotency_key_reused") : response
        case .outOfCharge(let item, let wait):
            let pool = items[item].poolId
            var response = outOfCharge(
                pool: pool, wait: wait, subject: subject, route: route, policy: policy(route, items: items, plan: plan, now: now))
            response.outcome = .outOfCharge(pool: pool, fromMemory: false)
            return route.shadow ? shadowed(response, "out_of_charge") : response
        case .insufficientCredits(let item, let available, let required):
            let response = insufficientCredits(
                pool: items[item].poolId, available: available, required: required, subject: subject, route: route,
                policy: policy(route, items: items, plan: plan, now: now))
            return route.shadow ? shadowed(response, "insufficient_credits") : response
        }
    }

    /// The route's `RateLimit-Policy` under plan `plan`: compiled once, except for a route
    /// with a period pool, whose `w` is the current period's length (from the store's `now`).
    func policy(_ route: Gate.Route, items: [SpendItem], plan: Int, now: Int64) -> String {
        guard route.hasPeriods else { return route.policy(plan: plan) }
        return Gate.policy(items, now: now)
    }

    /// `response` (a denial) turned into a pass in shadow mode: 204 with `X-Charge-Shadow`,
    /// keeping its log line (marked shadow) and counted as a shadow outcome.
    func shadowed(_ response: Response, _ reason: String) -> Response {
        var pass = shadowPass(reason)
        pass.note = response.note.map { note in
            var note = note
            note.message = "shadow " + note.message + " (passed)"
            return note
        }
        pass.outcome = response.outcome.map { .shadow($0) }
        return pass
    }

    /// The 204 of a shadow route's would-be denial.
    func shadowPass(_ reason: String) -> Response {
        Response(status: 204, headers: [(Header.status, "204"), Header.neverCached, (Header.shadow, reason)])
    }

    static let keyReusedBody = #"{"error":"idempotency_key_reused"}"#
    /// Where the snippets' own locations live (`/_charge_gate/auth`): never a charged path.
    static let reservedPrefix = "/_charge_gate/"
    static let allow = Response(status: 204, headers: [(Header.status, "204"), Header.neverCached])
    /// The pass of a request that matched no route: allowed, nothing charged. Its status is not
    /// `204`, so the auth location asks again when an internal redirect of the same request
    /// reaches a protected location (only a charged allow is answered by nginx itself).
    static let unrouted = Response(status: 204, headers: [(Header.status, Header.unroutedStatus), Header.neverCached])

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
    func allowed(_ items: [SpendItem], results: [ItemResult], now: Int64, policy: String) -> Response {
        guard !policy.isEmpty, results.count == items.count else { return Self.allow }
        var state = ""
        for (item, result) in zip(items, results) {
            guard let max = item.max else { continue }
            if !state.isEmpty { state += ", " }
            state += "\""
            state += item.poolId
            state += "\";r="
            state += String(result.remaining)
            if let full = result.fullAt, item.period != nil {
                // The whole allowance comes back when the period ends.
                state += ";t="
                state += String(Gate.seconds(full.saturatingSubtracting(now)))
            } else if let full = result.fullAt, let interval = item.intervalMs {
                let level = Bucket.level(remaining: result.remaining, fullAt: full, max: max, intervalMs: interval)
                state += ";t="
                state += String(Gate.seconds((Bucket.nextRechargeAt(level, intervalMs: interval) ?? now).saturatingSubtracting(now)))
            }
        }
        return Response(
            status: 204, headers: [(Header.status, "204"), Header.neverCached, (Header.rateLimitPolicy, policy), (Header.rateLimit, state)])
    }

    /// The 429 for `pool`, waiting `wait` ms; with the log line unless `noted` is false (an
    /// answer from the deny cache is counted, not logged one by one).
    func outOfCharge(pool: String, wait given: Int64, subject: String, route: Gate.Route, policy: String, noted: Bool = true) -> Response {
        let wait = Swift.max(0, given)
        var w = JSONWriter()
        w.beginObject()
        w.field("error", "out_of_charge")
        w.field("retryAfterMs", wait)
        w.field("poolId", pool)
        w.endObject()
        let seconds = String(Gate.seconds(wait))
        var response = deny(
            429, body: w.text, retryAfter: seconds, policy: policy, state: policy.isEmpty ? "" : "\"" + pool + "\";r=0;t=" + seconds)
        if noted {
            response.note = .init(
                isError: false, message: "denied out_of_charge",
                fields: [
                    (.pool, pool), (.subject, subject), (.retryAfterMs, String(wait)), (.route, route.prefix),
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
        let until = Swift.min(now.saturatingAdding(wait) / 1000 - 1, nowSeconds + Int64(gate.config.edgeDenySeconds) - 1)
        guard until >= nowSeconds else { return }
        let marked = (name: Header.accelExpires, value: "@" + String(until))
        if let i = response.headers.firstIndex(where: { $0.name == Header.accelExpires }) {
            response.headers[i] = marked
        } else {
            response.headers.append(marked)
        }
    }

    /// The 402 for `pool` (it never refills, so waiting would not help): no `Retry-After`.
    func insufficientCredits(
        pool: String, available: Int64, required: Int64, subject: String, route: Gate.Route, policy: String
    ) -> Response {
        var w = JSONWriter()
        w.beginObject()
        w.field("error", "insufficient_credits")
        w.field("poolId", pool)
        w.field("availableBalance", available)
        w.field("required", required)
        w.endObject()
        var response = deny(402, body: w.text, policy: policy, state: "\"\(pool)\";r=\(available)")
        response.outcome = .insufficientCredits(pool: pool)
        response.note = .init(
            isError: false, message: "denied insufficient_credits",
            fields: [
                (.pool, pool), (.subject, subject), (.available, String(available)), (.required, String(required)),
                (.route, route.prefix),
            ])
        return response
    }
}
