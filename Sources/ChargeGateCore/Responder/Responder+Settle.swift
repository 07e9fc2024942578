extension Responder {
    // MARK: POST /api/usage/settle (admin)

    /// The app settles a hold (docs/http.md, POST /api/usage/settle): `{"hold":"ID","amount":N}`
    /// charges exactly N on the hold's metered pools, `{"hold":"ID","refund":true}` gives the
    /// hold back. 200 with each pool's STATE; 404 for a hold the store does not know or whose
    /// window ended, 409 for one already settled (by nginx's line or an earlier call).
    func settle(_ request: some RequestParams, gate: Gate) -> Response {
        if let refused = Self.onlyMethods(["POST"], request) { return refused }
        if let refused = Self.requireAdmin(request, gate: gate) { return refused }
        guard let bytes = request.body(limit: 4096) else {
            return .error(413, "bad_request", [("message", "body: at most 4096 bytes")])
        }
        let body: SettleBody
        do {
            body = try SettleBody.parse(bytes)
        } catch {
            return .error(400, "bad_request", [("message", error.message)])
        }
        let outcome: SettleOutcome
        do {
            outcome = try store.settle(
                SettleRequest(
                    key: gate.keys.hold(id: body.hold), id: body.hold, report: .app(amount: body.amount), eventsKey: gate.eventsKey,
                    eventsMaxLen: gate.config.eventsMaxLen))
        } catch {
            return Self.unavailable(error, what: "settle")
        }
        var response: Response
        switch outcome {
        case .settled(let settled):
            // A give-back may end a denial this responder remembers (as a top-off does).
            if settled.differences.contains(where: { $0 < 0 }) { denials.invalidateAll() }
            response = .json(
                200, Self.settledJSON(hold: body.hold, outcome: outcome, settled, gate: gate, now: settled.now ?? clock.nowMs()))
        case .unknown:
            response = .error(404, "unknown_hold", [("hold", body.hold)])
            response.note = .init(isError: false, message: "settlement of an unknown hold: 404", fields: [(.hold, body.hold)])
        case .expired:
            response = .error(404, "hold_expired", [("hold", body.hold)])
            response.note = .init(
                isError: false, message: "settlement after the hold's window: 404, it stays charged as held", fields: [(.hold, body.hold)])
        case .duplicate:
            response = .error(409, "already_settled", [("hold", body.hold)])
            response.note = .init(isError: false, message: "second settlement of a hold: 409, ignored", fields: [(.hold, body.hold)])
        case .ignored, .voided:
            // `Settlement.resolve` never ignores the app's report, and the app's call never voids
            // (`voidTtlMs` 0): a store that says so answered something the gate cannot use.
            response = Denial.serviceUnavailable.json
            response.note = .init(
                isError: true, message: "the store \(outcome.label) the app's settlement: answered 503",
                fields: [(.endpoint, "settle"), (.hold, body.hold)])
        }
        response.settlement = outcome
        return response
    }

    /// `{"hold":"ID","outcome":"amount","pools":[STATE,...]}`: each pool of the hold, in route
    /// order, as the usage answer shows it at `now`, with the `difference` the settlement moved.
    static func settledJSON(hold: String, outcome: SettleOutcome, _ settled: SettleOutcome.Settled, gate: Gate, now: Int64) -> String {
        var w = JSONWriter()
        w.beginObject()
        w.field("hold", hold)
        w.field("outcome", outcome.label)
        w.key("pools")
        w.beginArray()
        for (index, pool) in settled.pools.enumerated() {
            let config = settledPool(pool.item, gate: gate)
            writeState(
                &w, pool: config, reading: Bucket.reading(pool.state, item: pool.item, now: now),
                subject: config.scope == .subject ? subject(of: pool.item, gate: gate) : "",
                difference: index < settled.differences.count ? settled.differences[index] : 0)
        }
        w.endArray()
        w.endObject()
        return w.text
    }

    /// The pool a hold's item was spent from, as the plan it was spent under sets it: the
    /// config's pool under the first plan whose cap, interval and period are the item's (a
    /// hold records the rules, not the plan); a pool the config no longer has is described
    /// from the item alone.
    static func settledPool(_ item: SpendItem, gate: Gate) -> PoolConfig {
        if let pool = gate.pools.first(where: { $0.config.id == item.poolId }) {
            return pool.byPlan.first {
                $0.maxCharges == item.max && $0.intervalMs == item.intervalMs && $0.period == item.period
            } ?? pool.config
        }
        let recharge: PoolConfig.Recharge = item.period.map { .period($0) } ?? item.intervalMs.map { .every(intervalMs: $0) } ?? .none
        return PoolConfig(
            id: item.poolId, capacity: item.max.map { .limited($0) } ?? .unlimited, recharge: recharge,
            rechargeIntervalHours: item.intervalMs.map { Double($0) / 3_600_000 }, scope: item.expires ? .subject : .global)
    }

    /// The subject (key form) of a per-subject item: its key after `prefix + poolId + ":"`.
    static func subject(of item: SpendItem, gate: Gate) -> String {
        gate.keys.subject(ofBucket: item.key, pool: item.poolId)
    }
}
