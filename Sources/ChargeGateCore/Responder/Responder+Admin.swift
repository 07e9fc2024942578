import Foundation

extension Responder {
    // MARK: POST /api/usage/topoff (admin)

    private struct TopOffBody: Decodable {
        var poolId: String
        var subject: String?
        var subjectKey: String?
        var amount: Int64?
    }

    func topOff(_ request: some RequestParams, gate: Gate) -> Response {
        if let refused = Self.onlyMethods(["POST"], request) { return refused }
        if let refused = Self.requireAdmin(request, gate: gate) { return refused }
        guard let bytes = request.body(limit: 4096) else {
            return .error(413, "bad_request", [("message", "body: at most 4096 bytes")])
        }
        let body: TopOffBody
        do {
            body = try JSONDecoder().decode(TopOffBody.self, from: Data(bytes))
        } catch {
            return .error(
                400, "bad_request", [("message", #"body: expected JSON {"poolId":"ID","subject":"S"?,"subjectKey":"K"?,"amount":N?}"#)])
        }
        guard let index = gate.config.poolIndex(id: body.poolId) else {
            return .error(404, "unknown_pool", [("poolId", body.poolId)])
        }
        let pool = gate.config.pools[index]
        if pool.maxCharges == nil, gate.config.plans.isEmpty || pool.scope == .global {
            return .error(400, "bad_request", [("message", "poolId: \(pool.id) is unlimited: there is nothing to top off")])
        }
        if let amount = body.amount, amount < 1 || amount > Limits.maxCharges {
            return .error(400, "bad_request", [("message", "amount: must be a whole number from 1 to 1e15")])
        }
        let named: String?
        do {
            named = try AdminSubject.key(subject: body.subject, subjectKey: body.subjectKey)
        } catch {
            return .error(400, "bad_request", [("message", error.message)])
        }
        var subject = ""
        switch (pool.scope, named) {
        case (.subject, let key?): subject = key
        case (.subject, nil): return .error(400, "bad_request", [("message", "subject: required for per-subject pool \(pool.id)")])
        case (.global, nil): break
        case (.global, _?): return .error(400, "bad_request", [("message", "subject: pool \(pool.id) is global")])
        }
        // The subject's stored (else the default) plan sets the pool's rules and the period's
        // anchor; a bucket that recorded the cap it was spent under is topped off in that cap
        // (`Bucket.topOffItem`: the plan nginx names is not known here).
        let result: (now: Int64, state: BucketState)
        let item: SpendItem
        var planned = pool
        do {
            var plan: SubjectPlan?
            if pool.scope == .subject, !gate.config.plans.isEmpty {
                plan = gate.subjectPlan(record: try store.plan(at: gate.keys.plan(subject: subject)), nginxPlan: nil)
            }
            item = gate.item(pool: index, cost: 0, subject: subject, plan: plan?.index ?? 0, anchor: plan?.anchor)
            planned = gate.pool(index, plan: plan?.index ?? 0)
            guard planned.maxCharges != nil else {
                return .error(
                    400, "bad_request",
                    [("message", "poolId: \(pool.id) is unlimited under the subject's plan: there is nothing to top off")])
            }
            result = try store.topOff(item, amount: body.amount)
        } catch {
            return Self.unavailable(error, what: "top-off")
        }
        denials.invalidateAll()
        var w = JSONWriter()
        // In the cap the top-off counted in (the plan the pool was last spent under).
        let counted = Bucket.topOffItem(item, state: result.state)
        Self.writeState(&w, pool: planned, reading: Bucket.reading(result.state, item: counted, now: result.now), subject: subject)
        var response = Response.json(200, w.text)
        response.note = .init(
            isError: false, message: "top-off",
            fields: [
                (.pool, pool.id), (.subject, subject), (.amount, body.amount.map(String.init) ?? "fill"),
                (.current, String(result.state.current)),
            ])
        return response
    }

    // MARK: GET /api/usage/events (admin)

    func events(_ request: some RequestParams, gate: Gate) -> Response {
        if let refused = Self.onlyMethods(["GET", "HEAD"], request) { return refused }
        if let refused = Self.requireAdmin(request, gate: gate) { return refused }
        let names = ["since", "until", "limit", "pool", "subject", "subjectKey", "after"]
        if let refused = Self.refuseRepeated(names, in: request.param(Param.query) ?? "") { return refused }
        guard !gate.eventStreams.isEmpty else {
            return .json(200, #"{"events":[],"next":null}"#)
        }
        let text = request.param(Param.query) ?? ""
        var query = EventQuery(limit: 100)
        func number(_ name: String, _ range: ClosedRange<Int64>) -> (Int64?, Response?) {
            guard let raw = QueryString.value(of: name, in: text), !raw.isEmpty else { return (nil, nil) }
            guard let n = Int64(raw), range.contains(n) else {
                return (
                    nil,
                    .error(
                        400, "bad_request",
                        [("message", "\(name): expected a whole number from \(range.lowerBound) to \(range.upperBound)")])
                )
            }
            return (n, nil)
        }
        let since = number("since", 0...Int64.max)
        let until = number("until", 0...Int64.max)
        let limit = number("limit", 1...1000)
        if let bad = since.1 ?? until.1 ?? limit.1 { return bad }
        query.since = since.0
        query.until = until.0
        query.limit = Int(limit.0 ?? 100)
        if let pool = QueryString.value(of: "pool", in: text), !pool.isEmpty { query.pool = pool }
        do {
            query.subject = try AdminSubject.key(
                subject: QueryString.value(of: "subject", in: text).flatMap { $0.isEmpty ? nil : $0 },
                subjectKey: QueryString.value(of: "subjectKey", in: text).flatMap { $0.isEmpty ? nil : $0 })
        } catch {
            return .error(400, "bad_request", [("message", error.message)])
        }
        if let after = QueryString.value(of: "after", in: text), !after.isEmpty {
            guard EventID(after) != nil else { return .error(400, "bad_request", [("message", "after: expected an event id as MS-SEQ")]) }
            query.after = after
        }
        let page: EventPage
        do {
            page = try store.events(streams: gate.eventStreams, query)
        } catch {
            return Self.unavailable(error, what: "events")
        }
        var w = JSONWriter()
        w.beginObject()
        w.key("events")
        w.beginArray()
        for event in page.events { Self.writeEvent(&w, event) }
        w.endArray()
        w.key("next")
        if let next = page.next { w.value(next) } else { w.null() }
        w.endObject()
        return .json(200, w.text)
    }

    /// Writes one usage event as a JSON object (the same shape as `charge-gate events` JSONL):
    /// the fields of 0.3 in their order, then `kind` (`spend` or `settle`), `hold` when the
    /// event belongs to one, `status` on a settlement by nginx's line.
    public static func writeEvent(_ w: inout JSONWriter, _ event: UsageEvent) {
        w.beginObject()
        w.field("id", event.id)
        w.field("time", event.time)
        w.field("pool", event.pool)
        w.field("subject", event.context.subject)
        w.field("amount", event.amount)
        w.field("route", event.context.route)
        w.field("method", event.context.method)
        w.field("uri", event.context.uri)
        w.field("idempotencyKey", event.context.idempotencyKey)
        w.field("plan", event.context.plan)
        w.field("kind", event.kind.rawValue)
        if !event.context.hold.isEmpty { w.field("hold", event.context.hold) }
        if let status = event.status { w.field("status", Int64(status)) }
        w.endObject()
    }

    /// nil when the request carries the admin bearer token; else the 401 or 403 answer.
    static func requireAdmin(_ request: some RequestParams, gate: Gate) -> Response? {
        guard let token = gate.config.adminToken else {
            return .error(403, "forbidden", [("message", "admin endpoints are off: set adminToken in the config")])
        }
        let given = request.param(Param.authorization) ?? ""
        if constantTimeEquals(given, "Bearer " + token) { return nil }
        var response = Response.error(401, "unauthorized").adding(("WWW-Authenticate", "Bearer"))
        response.note = .init(isError: false, message: "admin request without a valid bearer token: 401")
        return response
    }

    static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<y.count { diff |= (i < x.count ? x[i] : 0) ^ y[i] }
        return diff == 0
    }
}
