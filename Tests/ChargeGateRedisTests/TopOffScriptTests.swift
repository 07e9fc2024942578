import ChargeGateCore
import ChargeGateTestSupport
import Foundation
import Testing

@testable import ChargeGateRedis

/// The script's top-off against the Swift reference: random items (the plan cases' buckets,
/// credits, meters and period pools, per subject or global, with or without a recorded cap,
/// under a random plan with or without an anchor), random stored states and amounts; the
/// state the script answers, what it leaves at the key and the key's TTL must be what
/// `Bucket.topOff(_:state:amount:now:)` gives at the script's own clock.
extension RedisTests {
    @Suite("Top-off in the script")
    struct TopOffScript {
        static let cases = 300

        @Test("300 random top-offs: the script answers and writes what the Swift reference does")
        func scriptIsTheReferencesTwin() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            var rng = SplitMix(state: 0x5EED_0020)
            for index in 0..<Self.cases {
                let now = try fixture.time()
                let c = PlanScript.randomCase(&rng, prefix: fixture.prefix, now: now, index: index)
                let i = Int.random(in: 0..<c.items.count, using: &rng)
                var item = c.items[i]
                if let choice = c.choice {
                    // What the responder tops off: the item under the subject's plan.
                    let anchor: Int64? = Bool.random(using: &rng) ? now - Int64.random(in: 0...(40 * 86_400_000), using: &rng) : nil
                    let use = PlanUse(index: Int.random(in: 0..<choice.ids.count, using: &rng), stored: true, anchor: anchor)
                    item = choice.apply(use, to: c.items)[i]
                }
                let amount: Int64? = Int.random(in: 0..<4, using: &rng) == 0 ? nil : Int64.random(in: 0...12, using: &rng)
                if let seed = c.seeds[i] { try fixture.run("SET", item.key, seed) }
                let seeded = try store.peek([item.key]).states[0]
                let description = "\(c.description) top-off of item \(i) by \(amount.map(String.init) ?? "fill")"

                let result = try store.topOff(item, amount: amount)
                let expected = Bucket.topOff(item, state: seeded, amount: amount, now: result.now)
                #expect(result.state == expected.state, "\(description)")
                #expect(try store.peek([item.key]).states[0] == (expected.removesKey ? nil : expected.state), "\(description)")
                let pttl = try fixture.pttl(item.key)
                if expected.removesKey {
                    #expect(pttl == -2, "\(description): PTTL \(pttl), want removed")
                } else if let ttl = expected.ttlMs {
                    #expect(pttl <= ttl && pttl >= ttl - 1000, "\(description): PTTL \(pttl), want \(ttl)")
                } else {
                    #expect(pttl == -1, "\(description): PTTL \(pttl), want none")
                }
            }
        }
    }
}
