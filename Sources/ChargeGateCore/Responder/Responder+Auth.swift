extension Responder {
    /// The auth subrequest: the decision (`decide`), written as `X-Charge-*` headers (204
    /// allows, 403 carries a denial).
    func authorize(_ request: some RequestParams, gate: Gate) -> Response {
        decide(request, gate: gate).response
    }

    /// Routes the charged path, then asks the deny cache or the store.
    func decide(_ request: some RequestParams, gate: Gate) -> AuthDecision {
        let path = Self.chargedPath(request)
        // The auth location asked about itself: the protected request's path was overwritten in
        // the subrequest (a `set $charge_gate_uri $uri;` at server level runs again there). The
        // snippets' locations live under `/_charge_gate/`, which no route may charge: never a
        // pass, the route the client wanted is unknown. (A prefix test: no param, no copy.)
        if path.utf8.starts(with: Self.reservedPrefix.utf8) {
            return AuthDecision(
                verdict: .denied(.serviceUnavailable),
                note: .init(
                    isError: true,
                    message: "the charged path is under /_charge_gate/, the snippets' own: denied; "
                        + "set $charge_gate_uri only as charge-gate-protect.conf does"))
        }
        let requestMethod = request.param(Param.method) ?? ""
        // HEAD is GET without the body: the app still does the work, so it is charged alike.
        let method = requestMethod == "HEAD" ? "GET" : requestMethod
        // No route: a pass that charged nothing, which the auth location must never replay for
        // a later pass of the same request (an internal redirect into a charged route).
        guard let route = gate.route(path: path, method: method) else { return AuthDecision(verdict: .unrouted) }
        if gate.config.devBypass { return AuthDecision(verdict: .allowed(nil)) }
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
        // seen within the cache's maxAgeMs. A remembered denial is answered whole, as the store
        // decided it: its pool, policy and `upgradeUrl` are those of the plan then in force (the
        // stored one may differ from nginx's), never worked out again from nginx's plan here.
        // nginx's own cache (edgeCacheable) keys on method, subject, nginx's plan and URI, and
        // replays the responder's body byte for byte: no other subject and no request under
        // another plan nginx names ever gets it; after a stored plan changes, the whole old
        // denial (its URL with it) may be answered for up to edgeDenySeconds, as for a top-off.
        var cacheKey = ""
        if cacheable {
            cacheKey = route.denialKey(subject: subject)
            if choice != nil { cacheKey += gate.plans[nginx.index].cacheSuffix }
        }
        let now = cacheable ? clock.nowMs() : 0
        if cacheable, let cached = denials.denial(for: cacheKey, now: now) {
            // Not logged one by one: the next denial the store decides for this key reports
            // how many were answered from memory meanwhile.
            var decision = AuthDecision(
                verdict: .denied(
                    .outOfCharge(pool: cached.poolId, retryAfterMs: Swift.max(0, cached.retryAfterMs), upgradeUrl: cached.upgradeUrl)),
                route: route,
                now: now, policy: cached.policy, fromMemory: true)
            if edgeCacheable { decision.edgeUntil = edgeUntil(wait: cached.retryAfterMs, now: now, gate: gate) }
            return decision
        }

        let items = gate.items(route, subject: subject, plan: nginx.index)
        // A settled route holds its cost under nginx's `$request_id` (none without one: the
        // snippets always send it, and the spend is then final).
        let hold = route.settle == nil ? nil : gate.holdRequest(route, id: request.param(Param.requestID))
        let spend = SpendRequest(
            items: items, idempotency: idempotency,
            eventsKey: gate.eventsKey, eventsMaxLen: gate.config.eventsMaxLen,
            context: EventContext(
                subject: subject, route: route.prefix, method: requestMethod,
                uri: String(path.prefix(1024)), idempotencyKey: clientKey),
            plan: choice, hold: hold)
        let result: SpendResult
        do {
            result = try store.charge(spend)
        } catch {
            // A shadow route passes an outage too, logged as the error it is.
            return AuthDecision(
                verdict: .denied(.serviceUnavailable), route: route, items: items, plan: nginx.index,
                note: .init(
                    isError: true, message: route.shadow ? "\(error): passed (shadow mode)" : "\(error): answered 503",
                    fields: [(.route, route.prefix), (.subject, subject)]))
        }

        // The items as the store decided them: under the plan it found, with its anchor (as
        // built when that is nginx's plan without an anchor: no copy on the common path).
        var decided = items
        if let use = result.plan, let choice, use.index != nginx.index || use.anchor != nil {
            decided = choice.apply(use, to: items)
        }
        let plan = result.plan?.index ?? nginx.index
        var answer = judge(
            result.outcome, route: route, items: decided, plan: plan, now: result.now, subject: subject, clientKey: clientKey, gate: gate)
        if choice != nil, let note = gate.unknownPlanNote(result.plan, nginx: nginx, subject: subject) {
            if answer.note == nil { answer.note = note } else { answer.note?.fields += note.fields }
            answer.note?.isError = true
        }
        var edgeUntil: Int64?
        if case .outOfCharge(let item, let wait) = result.outcome, cacheable {
            // The store's wait counts from its answer, so from the clock read after it.
            let answered = clock.nowMs()
            var upgradeUrl: String?
            if case .denied(let denial) = answer.verdict { upgradeUrl = denial.upgradeUrl }
            let fromMemory = denials.remember(
                cacheKey, poolId: decided[item].poolId, retryAfterMs: wait, now: answered, policy: answer.policy, upgradeUrl: upgradeUrl)
            if fromMemory > 0 { answer.note?.fields.append((.deniedFromMemoryBefore, String(fromMemory))) }
            if edgeCacheable { edgeUntil = self.edgeUntil(wait: wait, now: answered, gate: gate) }
        }
        // Built in one piece (a decision set field by field afterwards is copied whole).
        var held: String?
        if route.settle != nil, case .allowed = result.outcome {
            if let hold {
                held = hold.id
            } else {
                answer.note = .init(
                    isError: true, message: "a settled route's request came without a valid CHARGE_GATE_REQUEST_ID: charged as final",
                    fields: [(.route, route.prefix), (.subject, subject)])
            }
        }
        return AuthDecision(
            verdict: answer.verdict, route: route, items: decided, plan: plan, now: result.now, policy: answer.policy, edgeUntil: edgeUntil,
            note: answer.note, hold: held)
    }

    /// What the store's `outcome` for `items` on `route` (as decided, under plan `plan`, at the
    /// store's `now`) comes to: the verdict, the policy the answer carries, and the log line of a
    /// denial (in shadow mode, of a denial passed). A denial's `upgradeUrl` is plan `plan`'s:
    /// the plan the store found in force for the subject.
    private func judge(
        _ outcome: SpendOutcome, route: Gate.Route, items: [SpendItem], plan: Int, now: Int64, subject: String, clientKey: String,
        gate: Gate
    ) -> (verdict: AuthDecision.Verdict, policy: String, note: Response.Note?) {
        let denial: Denial
        let fields: [(key: LogKey, value: String)]
        var policy = ""
        switch outcome {
        case .allowed(let results):
            return (.allowed(results), self.policy(route, items: items, plan: plan, now: now), nil)
        case .repeated:
            return (.allowed(nil), "", nil)
        case .keyReused:
            denial = .idempotencyKeyReused
            fields = [(.subject, subject), (.idempotencyKey, clientKey), (.route, route.prefix)]
        case .holdVoided:
            // nginx's line came first: the client left before this answer, and nginx logged the
            // request as one that received nothing. Nobody is waiting for the answer.
            return (
                .denied(.serviceUnavailable), "",
                .init(
                    isError: false, message: "refused: the request's hold was voided by its settlement line (the client left first)",
                    fields: [(.subject, subject), (.route, route.prefix)])
            )
        case .outOfCharge(let item, let wait):
            let pool = items[item].poolId
            let wait = Swift.max(0, wait)
            let upgradeUrl = gate.upgradeUrl(denial: false, pool: route.charges[item].pool, period: items[item].period, plan: plan)
            denial = .outOfCharge(pool: pool, retryAfterMs: wait, upgradeUrl: upgradeUrl)
            policy = self.policy(route, items: items, plan: plan, now: now)
            fields = [(.pool, pool), (.subject, subject), (.retryAfterMs, String(wait)), (.route, route.prefix)]
        case .insufficientCredits(let item, let available, let required):
            let pool = items[item].poolId
            let upgradeUrl = gate.upgradeUrl(denial: true, pool: route.charges[item].pool, period: items[item].period, plan: plan)
            denial = .insufficientCredits(pool: pool, available: available, required: required, upgradeUrl: upgradeUrl)
            policy = self.policy(route, items: items, plan: plan, now: now)
            fields = [
                (.pool, pool), (.subject, subject), (.available, String(available)), (.required, String(required)), (.route, route.prefix),
            ]
        }
        let message = "denied " + denial.code
        return (
            .denied(denial), policy,
            .init(isError: false, message: route.shadow ? "shadow " + message + " (passed)" : message, fields: fields)
        )
    }

    /// The route's `RateLimit-Policy` under plan `plan`: compiled once, except for a route
    /// with a period pool, whose `w` is the current period's length (from the store's `now`).
    func policy(_ route: Gate.Route, items: [SpendItem], plan: Int, now: Int64) -> String {
        guard route.hasPeriods else { return route.policy(plan: plan) }
        return Gate.policy(items, now: now)
    }

    /// Until when nginx may answer a 429 from its own cache (`X-Accel-Expires: @T`, epoch
    /// seconds). nginx serves a cached answer while `T >= ngx_time()`, that is to the end of
    /// second T (ngx_http_file_cache_read: stale only when `valid_sec < now`), so T is the last
    /// whole second that ends by the moment the request would pass, and the entry lives at most
    /// `edgeDenySeconds`: T = min(floor((now + wait) / 1000) - 1, floor(now / 1000) +
    /// edgeDenySeconds - 1). nil when T is already past (the pool's next charge falls in this
    /// very second). `now` is this node's clock, the one nginx compares T with.
    func edgeUntil(wait: Int64, now: Int64, gate: Gate) -> Int64? {
        let nowSeconds = now / 1000
        let until = Swift.min(now.saturatingAdding(wait) / 1000 - 1, nowSeconds + Int64(gate.config.edgeDenySeconds) - 1)
        return until >= nowSeconds ? until : nil
    }

    /// Where the snippets' own locations live (`/_charge_gate/auth`): never a charged path.
    static let reservedPrefix = "/_charge_gate/"

    /// The charged path: nginx's `$uri` when the snippet passes it, else `REQUEST_URI`
    /// normalised here the way nginx would.
    static func chargedPath(_ request: some RequestParams) -> String {
        if let uri = request.param(Param.uri), !uri.isEmpty {
            return URIPath.normalize(uri)
        }
        return URIPath.fromRequestURI(request.param(Param.requestURI) ?? "/")
    }
}
