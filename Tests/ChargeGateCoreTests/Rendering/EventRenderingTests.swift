import ChargeGateTestSupport
import Foundation
import Testing

@testable import ChargeGateCore

/// What settlement adds to the event log's readers: each event's `kind`, `hold` and `status`
/// (JSON, as the events endpoint and `charge-gate events` write it, and CSV), and the totals of
/// `charge-gate events --sum`.
@Suite struct EventRenderingTests {
    static let now: Int64 = 1_700_000_000_000

    static func context(hold: String = "") -> EventContext {
        EventContext(subject: "s", route: "/r", method: "POST", uri: "/r/a", idempotencyKey: "", plan: "pro", hold: hold)
    }

    // MARK: Events

    @Test func anEventWithoutSettlementFieldsIsASpend() {
        let event = UsageEvent(id: "1-0", time: 1, pool: "p", amount: 2, context: Self.context())
        #expect(
            EventFormat.jsonl.line(event)
                == #"{"id":"1-0","time":1,"pool":"p","subject":"s","amount":2,"route":"/r","method":"POST","uri":"/r/a","idempotencyKey":"","plan":"pro","kind":"spend"}"#
        )
        #expect(EventFormat.csv.line(event) == "1-0,1,p,s,2,/r,POST,/r/a,,pro,spend,,")
    }

    @Test func aHoldsSpendNamesItsHold() {
        let event = UsageEvent(id: "1-0", time: 1, pool: "p", amount: 4000, context: Self.context(hold: "h1"))
        #expect(
            EventFormat.jsonl.line(event)
                == #"{"id":"1-0","time":1,"pool":"p","subject":"s","amount":4000,"route":"/r","method":"POST","uri":"/r/a","idempotencyKey":"","plan":"pro","kind":"spend","hold":"h1"}"#
        )
        #expect(EventFormat.csv.line(event) == "1-0,1,p,s,4000,/r,POST,/r/a,,pro,spend,h1,")
    }

    @Test func aSettlementCarriesItsSignedDifferenceAndNginxsStatus() {
        let byNginx = UsageEvent(id: "2-0", time: 2, pool: "p", amount: -3, context: Self.context(hold: "h1"), kind: .settle, status: 502)
        #expect(
            EventFormat.jsonl.line(byNginx)
                == #"{"id":"2-0","time":2,"pool":"p","subject":"s","amount":-3,"route":"/r","method":"POST","uri":"/r/a","idempotencyKey":"","plan":"pro","kind":"settle","hold":"h1","status":502}"#
        )
        #expect(EventFormat.csv.line(byNginx) == "2-0,2,p,s,-3,/r,POST,/r/a,,pro,settle,h1,502")
        let byApp = UsageEvent(id: "2-1", time: 2, pool: "p", amount: 7, context: Self.context(hold: "h1"), kind: .settle)
        #expect(EventFormat.jsonl.line(byApp).hasSuffix(#""plan":"pro","kind":"settle","hold":"h1"}"#))
        #expect(EventFormat.csv.line(byApp) == "2-1,2,p,s,7,/r,POST,/r/a,,pro,settle,h1,")
    }

    @Test func theCSVHeaderNamesEveryColumnOnce() {
        let columns = EventFormat.csvHeader.split(separator: ",").map(String.init)
        #expect(
            columns == [
                "id", "time", "pool", "subject", "amount", "route", "method", "uri", "idempotencyKey", "plan", "kind", "hold", "status",
            ])
        let event = UsageEvent(id: "1-0", time: 1, pool: "p", amount: 1, context: Self.context(hold: "h"), kind: .settle, status: 200)
        #expect(EventFormat.csv.line(event).split(separator: ",", omittingEmptySubsequences: false).count == columns.count)
    }

    /// nginx's line settles through the store: its events carry the status it logged.
    @Test func nginxsSettlementEventsCarryTheStatus() throws {
        let clock = ManualClock(Self.now)
        let store = MemoryStore(clock: clock)
        var config = GateConfig()
        config.pools = [PoolConfig(id: "credits", capacity: .limited(100), recharge: .none, scope: .subject)]
        config.routes = [RouteConfig(prefix: "/api/f", charges: [.init(poolIndex: 0, cost: 10)], settle: SettlePolicy(), cost: 10)]
        let gate = Gate(config: config)
        let responder = Responder(store: store, clock: clock)
        let allowed = responder.respond(
            to: FakeRequest.auth("/api/f", subject: "s", headers: [WireProtocol.Param.requestID: "abc"]), gate: gate)
        #expect(allowed.status == 204)
        let outcome = try store.settle(
            SettleRequest(
                key: gate.keys.hold(id: "abc"), id: "abc",
                report: .nginx(ResponseFacts(status: 503, upstreamReached: true, upstreamAnswered: true)),
                eventsKey: gate.eventsKey, eventsMaxLen: gate.config.eventsMaxLen))
        #expect(outcome.label == "refund")
        let lines = try store.events(streams: gate.eventStreams, EventQuery(limit: 10)).events.map { EventFormat.jsonl.line($0) }
        #expect(lines.count == 2)
        #expect(
            lines[0].hasSuffix(
                #""amount":10,"route":"/api/f","method":"POST","uri":"/api/f","idempotencyKey":"","plan":"","kind":"spend","hold":"abc"}"#))
        #expect(
            lines[1].hasSuffix(
                #""amount":-10,"route":"/api/f","method":"POST","uri":"/api/f","idempotencyKey":"","plan":"","kind":"settle","hold":"abc","status":503}"#
            ))
    }

    // MARK: Totals

    @Test func totalsSumSpendsAndSettlementsPerSubjectAndPool() {
        var totals = EventTotals()
        let events = [
            UsageEvent(
                id: "1-0", time: 1, pool: "credits", amount: 4000,
                context: .init(subject: "bob", route: "/c", method: "POST", uri: "/c", idempotencyKey: "", hold: "h1")),
            UsageEvent(
                id: "1-1", time: 1, pool: "calls", amount: 1,
                context: .init(subject: "bob", route: "/c", method: "POST", uri: "/c", idempotencyKey: "", hold: "h1")),
            UsageEvent(
                id: "2-0", time: 2, pool: "credits", amount: 3,
                context: .init(subject: "al,ice", route: "/c", method: "POST", uri: "/c", idempotencyKey: "")),
            UsageEvent(
                id: "3-0", time: 3, pool: "credits", amount: -2500,
                context: .init(subject: "bob", route: "/c", method: "POST", uri: "/c", idempotencyKey: "", hold: "h1"), kind: .settle),
            UsageEvent(
                id: "3-1", time: 3, pool: "calls", amount: 0,
                context: .init(subject: "bob", route: "/c", method: "POST", uri: "/c", idempotencyKey: "", hold: "h1"), kind: .settle),
            UsageEvent(
                id: "4-0", time: 4, pool: "credits", amount: 4000,
                context: .init(subject: "bob", route: "/c", method: "POST", uri: "/c", idempotencyKey: "", hold: "h2")),
            UsageEvent(
                id: "5-0", time: 5, pool: "credits", amount: 1200,
                context: .init(subject: "bob", route: "/c", method: "POST", uri: "/c", idempotencyKey: "", hold: "h2"), kind: .settle,
                status: 200),
        ]
        for event in events { totals.add(event) }
        let rows = totals.rows
        #expect(rows.map { "\($0.subject)/\($0.pool)" } == ["al,ice/credits", "bob/calls", "bob/credits"])
        #expect(rows.map(\.amount) == [3, 1, 6700])
        #expect(
            rows.map { EventTotals.line($0, format: .jsonl) } == [
                #"{"subject":"al,ice","pool":"credits","amount":3,"spent":3,"settled":0,"requests":1,"settlements":0}"#,
                #"{"subject":"bob","pool":"calls","amount":1,"spent":1,"settled":0,"requests":1,"settlements":1}"#,
                #"{"subject":"bob","pool":"credits","amount":6700,"spent":8000,"settled":-1300,"requests":2,"settlements":2}"#,
            ])
        #expect(EventTotals.csvHeader == "subject,pool,amount,spent,settled,requests,settlements")
        #expect(
            rows.map { EventTotals.line($0, format: .csv) } == [
                #""al,ice",credits,3,3,0,1,0"#, "bob,calls,1,1,0,1,1", "bob,credits,6700,8000,-1300,2,2",
            ])
    }

    @Test func totalsSaturateInsteadOfTrapping() {
        var totals = EventTotals()
        let context = EventContext(subject: "s", route: "/r", method: "GET", uri: "/r", idempotencyKey: "")
        for _ in 0..<3 { totals.add(UsageEvent(id: "1-0", time: 1, pool: "p", amount: .max, context: context)) }
        for _ in 0..<3 { totals.add(UsageEvent(id: "2-0", time: 2, pool: "p", amount: .min, context: context, kind: .settle)) }
        #expect(totals.rows.first?.spent == .max)
        #expect(totals.rows.first?.settled == .min)
        #expect(totals.rows.first?.amount == -1)
        #expect(EventTotals().rows.isEmpty)
    }
}
