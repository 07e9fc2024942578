import ChargeGateCore
import ChargeGateRedis
import ChargeGateTestSupport
import Testing

extension RedisTests {
    /// period.lua against BillingPeriod.window: the twins agree to the millisecond.
    @Suite("Period script")
    struct PeriodScriptTests {
        /// `ChargeScript.periodSource` plus a driver: ARGV holds (kind, anchor or "", now) triples;
        /// the reply is start1, end1, start2, end2, ...
        static let script =
            ChargeScript.periodSource + "\n" + """
                local out = {}
                for i = 1, #ARGV, 3 do
                  local anchor = nil
                  if ARGV[i + 1] ~= '' then anchor = tonumber(ARGV[i + 1]) end
                  local start, finish = period_window(ARGV[i], anchor, tonumber(ARGV[i + 2]))
                  out[#out + 1] = start
                  out[#out + 1] = finish
                end
                return out
                """

        struct Triple {
            var period: BillingPeriod
            var anchor: Int64?
            var now: Int64
        }

        /// Days since 1970-01-01 of a date (test-side arithmetic, years >= 1970).
        static func epochMs(_ year: Int, _ month: Int, _ day: Int) -> Int64 {
            func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }
            let lengths = [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
            var days = 0
            for y in 1970..<year { days += isLeap(y) ? 366 : 365 }
            days += lengths[0..<(month - 1)].reduce(0, +) + day - 1
            return Int64(days) * 86_400_000
        }

        /// A time within two days of an interesting date of a random year in 1970–2199: the last
        /// days of a month, Feb 28/29 and Mar 1, or Dec 31 and Jan 1.
        static func nearEdge(_ rng: inout SplitMix) -> Int64 {
            let year = Int.random(in: 1970...2199, using: &rng)
            let edge: Int64
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: edge = epochMs(year, Int.random(in: 1...12, using: &rng), Int.random(in: 28...31, using: &rng) == 28 ? 28 : 1)
            case 1: edge = epochMs(year, 3, 1)
            default: edge = epochMs(year, 1, 1)
            }
            return max(0, edge + Int64.random(in: -2 * 86_400_000...2 * 86_400_000, using: &rng))
        }

        /// 12,000 triples: the three kinds in turn, a quarter without anchor; half the anchors
        /// and half the times near month ends, leap days and year ends, the rest uniform over
        /// 1970–2200.
        static func triples() -> [Triple] {
            var rng = SplitMix(state: 20_260_302)
            let limit = epochMs(2200, 1, 1)
            return (0..<12_000).map { index in
                let period = BillingPeriod.allCases[index % 3]
                let anchor: Int64? =
                    index % 4 == 0 ? nil : Bool.random(using: &rng) ? nearEdge(&rng) : Int64.random(in: 0..<limit, using: &rng)
                let now = Bool.random(using: &rng) ? nearEdge(&rng) : Int64.random(in: 0..<limit, using: &rng)
                return Triple(period: period, anchor: anchor, now: now)
            }
        }

        @Test("12,000 random (kind, anchor, now): period_window == BillingPeriod.window, 500 per EVAL")
        func twinsAgree() throws {
            let fixture = try RedisFixture()
            let all = Self.triples()
            var compared = 0
            for batchStart in stride(from: 0, to: all.count, by: 500) {
                let batch = all[batchStart..<min(batchStart + 500, all.count)]
                var arguments = ["EVAL", Self.script, "0"]
                for triple in batch {
                    arguments += [triple.period.rawValue, triple.anchor.map { String($0) } ?? "", String(triple.now)]
                }
                let reply = try fixture.admin.command(arguments)
                let values = try #require(reply.elements, "EVAL answered \(reply)").map(\.integer)
                try #require(values.count == 2 * batch.count)
                for (offset, triple) in batch.enumerated() {
                    let expected = triple.period.window(at: triple.now, anchor: triple.anchor)
                    let got = BillingPeriod.Window(start: values[2 * offset] ?? -1, end: values[2 * offset + 1] ?? -1)
                    #expect(got == expected, "\(triple.period) anchor \(triple.anchor.map { String($0) } ?? "nil") now \(triple.now)")
                    compared += 1
                }
            }
            #expect(compared == 12_000)
        }

        @Test("an unknown kind is a script error")
        func unknownKind() throws {
            let fixture = try RedisFixture()
            let reply = try fixture.admin.command(["EVAL", Self.script, "0", "year", "", "0"])
            guard case .error(let message) = reply else {
                Issue.record("expected an error, got \(reply)")
                return
            }
            #expect(message.contains("CHARGEGATE unknown period year"))
        }
    }
}
