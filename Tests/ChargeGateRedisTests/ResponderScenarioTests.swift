import ChargeGateCore
import ChargeGateRedis
import ChargeGateTestSupport
import Testing

extension RedisTests {
    /// The store-neutral responder tables (`ResponderScenario.bothStores`, in the test support
    /// target) on the Redis store: every answer must match the table, and the same table run
    /// on a memory store must give the same answers, header for header (waits and times masked:
    /// the script reads Redis's clock). The tables that move the clock run on the memory store
    /// only (ChargeGateCoreTests' ResponderScenarioTests).
    @Suite("Responder tables on the Redis store")
    struct ResponderScenarios {
        @Test(arguments: ResponderScenario.bothStores)
        func scenario(_ scenario: ResponderScenario) throws {
            try #require(!scenario.movesTheClock, "Redis's clock cannot be moved")
            let fixture = try RedisFixture()
            let redis = scenario.run(keyPrefix: fixture.prefix) { _ in fixture.store() }
            let memory = scenario.run(keyPrefix: fixture.prefix) { MemoryStore(clock: $0) }
            // Every table spends: the Redis store answered, not something else.
            #expect(try fixture.run("KEYS", fixture.prefix + "*").elements?.isEmpty == false, "nothing was written to Redis")
            for mismatch in redis.mismatches { Issue.record("Redis store: \(mismatch)") }
            for mismatch in memory.mismatches { Issue.record("memory store: \(mismatch)") }
            #expect(redis.answers.count == memory.answers.count)
            for (index, (fromRedis, fromMemory)) in zip(redis.answers, memory.answers).enumerated() {
                #expect(fromRedis == fromMemory, "answer \(index + 1): the Redis store and the memory store differ")
            }
        }
    }
}
