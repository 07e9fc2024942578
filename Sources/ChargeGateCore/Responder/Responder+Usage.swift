import Foundation

extension Responder {
    // MARK: GET /api/usage

    func usage(_ request: some RequestParams, gate: Gate) -> Response {
        if let refused = Self.onlyMethods(["GET", "HEAD"], request) { return refused }
        let query = request.param(Param.query) ?? ""
        if let refused = Self.refuseRepeated(["subject", "subjectKey"], in: query) { return refused }
        var subject = SafeToken.key(for: request.param(Param.subject) ?? "")
        let asked = QueryString.value(of: "subject", in: query)
        let askedKey = QueryString.value(of: "subjectKey", in: query)
        if asked != nil || askedKey != nil {
            if let refused = Self.requireAdmin(request, gate: gate) { return refused }
            do {
                subject = try AdminSubject.key(subject: asked, subjectKey: askedKey) ?? subject
            } catch {
                return .error(400, "bad_request", [("message", error.message)])
            }
        }
        let snapshot: UsageSnapshot
        do {
            snapshot = try store.usage(gate: gate, subject: subject, nginxPlan: request.param(Param.plan))
        } catch {
            return Self.unavailable(error, what: "usage")
        }
        // Under the subject's plan (0 without plans): where it upgrades, and the pools that show
        // it (used up, where waiting does not help).
        let planIndex = snapshot.plan?.index ?? 0
        let upgrades = snapshot.pools.map { gate.upgradeUrl(usage: $0.config, available: $0.reading.available, plan: planIndex) }
        if Self.wantsHTML(request) {
            let rows = zip(snapshot.pools, upgrades).map { pool, upgradeUrl in
                UsagePage.Row(
                    pool: pool.config, reading: pool.reading, subject: pool.config.scope == .subject ? subject : "", upgradeUrl: upgradeUrl)
            }
            let plan = snapshot.plan.map { UsagePage.Plan(label: gate.config.plans[$0.index].label, source: $0.source) }
            return Response(
                status: 200, headers: [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store"), ("Vary", "Accept")],
                body: UsagePage.render(rows, plan: plan, now: snapshot.now))
        }
        var w = JSONWriter()
        w.beginObject()
        if let plan = snapshot.plan {
            let config = gate.config.plans[plan.index]
            w.key("plan")
            w.beginObject()
            w.field("id", config.id)
            w.field("label", config.label)
            w.field("source", plan.source.rawValue)
            w.endObject()
        }
        if let upgradeUrl = gate.upgradeUrl(plan: planIndex) { w.field("upgradeUrl", upgradeUrl) }
        w.key("pools")
        w.beginArray()
        for (pool, upgradeUrl) in zip(snapshot.pools, upgrades) {
            Self.writeState(&w, pool: pool.config, reading: pool.reading, subject: subject, upgradeUrl: upgradeUrl)
        }
        w.endArray()
        w.endObject()
        return .json(200, w.text, extraHeaders: [("Vary", "Accept")])
    }

    /// Whether the client prefers HTML (a browser): `Accept` names `text/html` before any JSON.
    static func wantsHTML(_ request: some RequestParams) -> Bool {
        guard let accept = request.param(Param.accept)?.lowercased(), let html = accept.range(of: "text/html") else { return false }
        guard let json = accept.range(of: "application/json") else { return true }
        return html.lowerBound < json.lowerBound
    }

    /// Writes one pool's STATE object (docs/http.md, GET /api/usage): `pool` as the subject's
    /// plan sets it, `reading` its state now, and last `upgradeUrl` when the pool shows one.
    static func writeState(_ w: inout JSONWriter, pool: PoolConfig, reading: Bucket.Reading, subject: String, upgradeUrl: String? = nil) {
        w.beginObject()
        w.field("id", pool.id)
        w.field("label", pool.label)
        w.field("group", pool.group)
        w.field("current", reading.available)
        w.field("max", reading.max)
        w.key("rechargeIntervalHours")
        if let hours = pool.rechargeIntervalHours, pool.maxCharges != nil { w.value(hours) } else { w.null() }
        w.field("nextRechargeAt", reading.nextRechargeAt)
        w.field("fullAt", reading.fullAt)
        w.field("availableBalance", reading.available)
        w.field("usedBalance", reading.used)
        w.field("balanceLimit", reading.max)
        if let period = pool.period, let window = reading.window {
            w.field("period", period.rawValue)
            w.field("periodStart", window.start)
            w.field("resetsAt", window.end)
        }
        if pool.scope == .subject { w.field("subject", subject) }
        if let upgradeUrl { w.field("upgradeUrl", upgradeUrl) }
        w.endObject()
    }

    // MARK: GET /api/usage/check?pools=a,b

    func check(_ request: some RequestParams, gate: Gate) -> Response {
        if let refused = Self.onlyMethods(["GET", "HEAD"], request) { return refused }
        let query = request.param(Param.query) ?? ""
        if let refused = Self.refuseRepeated(["pools"], in: query) { return refused }
        let list = QueryString.value(of: "pools", in: query) ?? ""
        let ids = list.split(separator: ",", omittingEmptySubsequences: true).map { $0.trimmingCharacters(in: .whitespaces) }.filter {
            !$0.isEmpty
        }
        guard !ids.isEmpty else {
            return .error(400, "bad_request", [("message", "pools: give one or more pool ids, as ?pools=a,b")])
        }
        var indices: [Int] = []
        for id in ids {
            guard let index = gate.config.poolIndex(id: id) else {
                return .error(404, "unknown_pool", [("poolId", id)])
            }
            indices.append(index)
        }
        let subject = SafeToken.key(for: request.param(Param.subject) ?? "")
        let snapshot: UsageSnapshot
        do {
            snapshot = try store.usage(gate: gate, subject: subject, nginxPlan: request.param(Param.plan), pools: indices)
        } catch {
            return Self.unavailable(error, what: "check")
        }
        let available = snapshot.pools.map { ($0.reading.available ?? 1) >= 1 }
        var w = JSONWriter()
        w.beginObject()
        w.field("ok", available.allSatisfy { $0 })
        w.key("pools")
        w.beginArray()
        for (n, index) in indices.enumerated() {
            w.beginObject()
            w.field("id", gate.config.pools[index].id)
            w.field("available", available[n])
            w.endObject()
        }
        w.endArray()
        w.endObject()
        return .json(200, w.text)
    }

    // MARK: Shared checks

    static func onlyMethods(_ allowed: [String], _ request: some RequestParams) -> Response? {
        let method = request.param(Param.method) ?? ""
        if allowed.contains(method) { return nil }
        return .error(405, "method_not_allowed").adding(("Allow", allowed.joined(separator: ", ")))
    }

    /// The 400 for a query parameter this endpoint reads that appears more than once (which of
    /// the values would count is not for the gate to guess); nil when none does.
    static func refuseRepeated(_ names: [String], in query: String) -> Response? {
        guard let (name, count) = QueryString.repeated(names, in: query) else { return nil }
        let hint = name == "pools" ? "list every pool in one, as ?pools=a,b" : "give it once"
        return .error(400, "bad_request", [("message", "\(name): given \(count) times; \(hint)")])
    }

    static func unavailable(_ error: StoreError, what: String) -> Response {
        var response = Denial.serviceUnavailable.json
        response.note = .init(isError: true, message: "\(error): answered 503", fields: [(.endpoint, what)])
        return response
    }
}
