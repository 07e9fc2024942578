import ChargeGateCore
import ChargeGateRedis
import Foundation
import Synchronization
import Testing

extension RedisTests {
    /// A per-subject key expires when its pool would be full again, so Redis holds only subjects
    /// that spent recently (docs/redis.md), at scale: 100,000 distinct subjects each spend once
    /// from a per-subject pool; Redis then holds exactly one key per subject (the memory per
    /// active subject is measured and bounded), and once the pools are full again none is left.
    @Suite("Per-subject keys at scale")
    struct SubjectExpiryScale {
        static let subjects = 100_000
        static let threads = 8
        static let maxCharges: Int64 = 3
        /// Generous: the measured figure is about half of it (key, value, expiry entry, dict slots).
        static let bytesPerSubjectLimit = 400

        @Test("100,000 subjects spend once: one key each, < 400 bytes per active subject, none left once full again")
        func hundredThousandSubjects() throws {
            let fixture = try RedisFixture()
            let url = fixture.url
            let prefix = fixture.prefix
            let stores = StoreBox(count: Self.threads, url: url)
            let started = monotonicMs()

            // 1. Calibration on a 100 ms pool: how fast do spends go on this machine right now?
            //    The main pool's interval must outlast the whole spending phase, so that every key
            //    is still there when they are counted (the first ones expire one interval after
            //    their spend).
            let calibration = 2_000
            let calibrationDenied = ScaleCounter()
            let calibrationStart = monotonicMs()
            raceThreads(Self.threads, prepare: { stores.warm($0) }) { index in
                for n in stride(from: index, to: calibration, by: Self.threads) {
                    let item = SpendItem(
                        poolId: "cal", key: prefix + "cal:s\(n)", max: Self.maxCharges, intervalMs: 100, cost: 1, expires: true)
                    if case .success(.allowed) = stores.spend(index, SpendRequest(items: [item], context: context(subject: "s\(n)"))) {
                        continue
                    }
                    calibrationDenied.add(1)
                }
            }
            let perSpendUs = Double(monotonicMs() - calibrationStart) * 1000 / Double(calibration)
            #expect(calibrationDenied.value == 0)
            let projectedMs = Int64(perSpendUs * Double(Self.subjects) / 1000)
            let intervalMs = Swift.min(Swift.max(2 * projectedMs + 1500, 3000), 40_000)

            // The calibration keys are gone 100 ms after their spend (SCAN does not return an
            // expired key), and memory is measured without them.
            usleep(300_000)
            #expect(try scanCount(fixture, prefix + "cal:*") == 0, "calibration keys outlived their pool's refill")
            let before = try usedMemory(fixture)

            // 2. 100,000 distinct subjects, one spend each, from a per-subject pool.
            let denied = ScaleCounter()
            let spendStart = monotonicMs()
            raceThreads(Self.threads) { index in
                for n in stride(from: index, to: Self.subjects, by: Self.threads) {
                    let subject = "subject-\(n)"
                    let item = SpendItem(
                        poolId: "p", key: prefix + "p:" + subject, max: Self.maxCharges, intervalMs: intervalMs, cost: 1, expires: true)
                    if case .success(.allowed) = stores.spend(index, SpendRequest(items: [item], context: context(subject: subject))) {
                        continue
                    }
                    denied.add(1)
                }
            }
            let spendEnd = monotonicMs()
            let spendMs = spendEnd - spendStart
            #expect(denied.value == 0, "a first spend of a new subject was not allowed")
            try #require(
                spendMs < intervalMs,
                "spending took \(spendMs) ms, longer than the \(intervalMs) ms interval (machine too busy): keys expired before they could be counted"
            )

            // 3. One key per subject, each expiring when its pool is full again (one interval).
            let keys = try scanCount(fixture, prefix + "p:*")
            let after = try usedMemory(fixture)
            let bytesPerSubject = (after - before) / Int64(Self.subjects)
            let ttl = try fixture.pttl(prefix + "p:subject-\(Self.subjects - 1)")
            print(
                "subject expiry at scale: \(Self.subjects) subjects spent in \(spendMs) ms (\(Self.threads) connections), interval \(intervalMs) ms; \(keys) keys; used_memory +\(after - before) bytes = \(bytesPerSubject) bytes per active subject"
            )
            #expect(keys == Self.subjects)
            #expect(ttl > 0 && ttl <= intervalMs, "PTTL \(ttl)")
            #expect(
                bytesPerSubject > 0 && bytesPerSubject < Int64(Self.bytesPerSubjectLimit), "\(bytesPerSubject) bytes per active subject")

            // 4. Once every pool is full again, no key is left.
            let fullAt = spendEnd + intervalMs + 300
            let wait = fullAt - monotonicMs()
            if wait > 0 { usleep(UInt32(wait) * 1000) }
            let left = try scanCount(fixture, prefix + "*")
            let afterExpiry = try usedMemory(fixture)
            print(
                "subject expiry at scale: \(left) keys left after the refill; used_memory \(afterExpiry - before) bytes above the start; whole test \(monotonicMs() - started) ms"
            )
            #expect(left == 0, "\(left) per-subject keys outlived their pool's refill")
        }

        /// Keys matching `pattern`, counted with SCAN (which never returns an expired key).
        private func scanCount(_ fixture: RedisFixture, _ pattern: String) throws -> Int {
            var cursor = "0"
            var count = 0
            repeat {
                let reply = try fixture.run("SCAN", cursor, "MATCH", pattern, "COUNT", "10000")
                let parts = try #require(reply.elements)
                cursor = try #require(parts.first?.text)
                count += try #require(parts.last?.elements).count
            } while cursor != "0"
            return count
        }

        /// INFO memory's used_memory.
        private func usedMemory(_ fixture: RedisFixture) throws -> Int64 {
            let info = try #require(try fixture.run("INFO", "memory").text)
            let line = try #require(info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("used_memory:") })
            return try #require(Int64(line.dropFirst("used_memory:".count)))
        }
    }
}

/// A counter several threads add to.
private final class ScaleCounter: Sendable {
    private let count = Mutex(0)

    func add(_ n: Int) { count.withLock { $0 += n } }

    var value: Int { count.withLock { $0 } }
}
