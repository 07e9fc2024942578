import ChargeGateCore
import ChargeGateRedis
import Dispatch
import Foundation
import Synchronization
import ChargeGateTestSupport
import Testing

// How these tests find Redis
// --------------------------
// Every test that needs a server reads `CHARGE_GATE_TEST_REDIS` (a `unix:///path?db=0` URL),
// which `scripts/with-redis` exports after starting a throwaway redis-server:
//
//     scripts/with-redis swift test --filter ChargeGateRedisTests
//
// The Redis suites are `.enabled(if: TestRedis.isConfigured)`, and the sentinel test
// `redisServerIsConfigured` FAILS when the variable is missing, so a run without a server is
// red, never silently green. The memory-store halves of the shared scenario tables run always.

/// The test server named by the environment.
enum TestRedis {
    /// The URL text from `CHARGE_GATE_TEST_REDIS`, if set.
    static let urlText: String? = ProcessInfo.processInfo.environment["CHARGE_GATE_TEST_REDIS"]

    /// The parsed URL, when the variable is set and valid.
    static let url: RedisURL? = urlText.flatMap { try? RedisURL(parsing: $0) }

    /// Whether the Redis tests can run.
    static let isConfigured: Bool = url != nil

    /// Generous timeout for the ordinary tests (a DEBUG SLEEP elsewhere must not fail them).
    static let timeoutMs = 3000
}

@Test("CHARGE_GATE_TEST_REDIS names a Redis server (run under scripts/with-redis)")
func redisServerIsConfigured() {
    if TestRedis.urlText == nil {
        Issue.record("CHARGE_GATE_TEST_REDIS is not set: run `scripts/with-redis swift test ...`; the Redis store tests did not run")
    } else if TestRedis.url == nil {
        Issue.record("CHARGE_GATE_TEST_REDIS is not a valid Redis URL")
    }
}

/// One test's slice of the Redis server: a random key prefix and an admin connection that
/// reads and writes keys directly (TIME, SET, GET, PTTL...).
final class RedisFixture {
    let url: RedisURL
    let prefix: String
    let admin: RedisConnection

    init() throws {
        url = try #require(TestRedis.url, "CHARGE_GATE_TEST_REDIS is not set")
        prefix = "cgtest:\(UInt64.random(in: 0...UInt64.max)):"
        admin = RedisConnection(url: url, timeoutMs: TestRedis.timeoutMs)
    }

    deinit {
        // Best effort: remove this test's keys.
        if let keys = try? admin.command(["KEYS", prefix + "*"]).elements, !keys.isEmpty {
            _ = try? admin.command(
                [Array("DEL".utf8)]
                    + keys.compactMap { value -> [UInt8]? in
                        if case .string(let bytes) = value { return bytes }
                        return nil
                    })
        }
    }

    /// A new store with its own connection.
    func store(timeoutMs: Int = TestRedis.timeoutMs) -> RedisStore {
        RedisStore(url: url, timeoutMs: timeoutMs)
    }

    /// Runs a command on the admin connection; an error reply fails the test.
    @discardableResult
    func run(_ arguments: String...) throws -> RedisValue {
        let reply = try admin.command(arguments)
        if case .error(let message) = reply {
            Issue.record("\(arguments.first ?? "") answered \(message)")
        }
        return reply
    }

    /// Redis's clock in epoch ms (the script's clock).
    func time() throws -> Int64 {
        let parts = try #require(try run("TIME").elements)
        let seconds = try #require(parts.first?.integer)
        let micros = try #require(parts.last?.integer)
        return seconds * 1000 + micros / 1000
    }

    /// Writes a bucket state directly, in the reference format.
    func setState(_ key: String, current: Int64, lastUpdatedAt: Int64) throws {
        try run("SET", key, #"{"current":\#(current),"lastUpdatedAt":\#(lastUpdatedAt)}"#)
    }

    /// The raw value at `key`, nil when missing.
    func get(_ key: String) throws -> String? {
        try run("GET", key).text
    }

    /// PTTL of `key` (-1 no expiry, -2 missing).
    func pttl(_ key: String) throws -> Int64 {
        try #require(try run("PTTL", key).integer)
    }
}

/// Collects values from several threads.
final class Collector<Value: Sendable>: Sendable {
    private let values = Mutex<[Value]>([])

    func append(_ value: Value) { values.withLock { $0.append(value) } }

    var all: [Value] { values.withLock { $0 } }
}

/// Runs `count` threads that each `prepare` (e.g. connect), wait until all are prepared, then
/// run `body` at once; returns when every thread has finished.
func raceThreads(_ count: Int, prepare: @escaping @Sendable (Int) -> Void = { _ in }, body: @escaping @Sendable (Int) -> Void) {
    let ready = DispatchSemaphore(value: 0)
    let go = DispatchSemaphore(value: 0)
    let done = DispatchGroup()
    for index in 0..<count {
        done.enter()
        let thread = Thread {
            prepare(index)
            ready.signal()
            go.wait()
            body(index)
            done.leave()
        }
        thread.start()
    }
    for _ in 0..<count { ready.wait() }
    for _ in 0..<count { go.signal() }
    done.wait()
}

/// One RedisStore per racing thread, each touched only by its own thread.
final class StoreBox: @unchecked Sendable {
    // Each element is created, used and released by exactly one thread (index i by thread i),
    // and the array itself is never resized after init.
    private var stores: [RedisStore]

    init(count: Int, url: RedisURL) {
        stores = (0..<count).map { _ in RedisStore(url: url, timeoutMs: TestRedis.timeoutMs) }
    }

    /// Connects store `index` (a peek of nothing still runs the script).
    func warm(_ index: Int) {
        _ = try? stores[index].peek([])
    }

    /// Spends on store `index`.
    func spend(_ index: Int, _ request: SpendRequest) -> Result<SpendOutcome, StoreError> {
        do {
            return .success(try stores[index].spend(request))
        } catch {
            return .failure(error)
        }
    }
}

/// Monotonic milliseconds, for measuring elapsed time in tests.
func monotonicMs() -> Int64 {
    Int64(DispatchTime.now().uptimeNanoseconds / 1_000_000)
}

/// An idempotency check under `prefix` for client key `key` of subject `s1`, naming request
/// `request` (any text: it is hashed into the fingerprint).
func idempotency(
    _ prefix: String, key: String, request: String = "POST /api/generate/x", ttlMs: Int64 = 60_000,
    maxRepeats: Int64 = 5, maxRecords: Int64 = 10_000
) -> IdempotencyCheck {
    let keys = KeySpace(prefix: prefix)
    return IdempotencyCheck(
        key: keys.idempotency(subject: "s1", clientKey: key), fingerprint: String(SHA256.hex(request).prefix(32)),
        ttlMs: ttlMs, maxRepeats: maxRepeats, quotaKey: keys.idempotencyQuota(subject: "s1"), maxRecords: maxRecords)
}

/// A default event context.
func context(subject: String = "s1", idem: String = "") -> EventContext {
    EventContext(subject: subject, route: "/api/generate", method: "POST", uri: "/api/generate/x", idempotencyKey: idem)
}

/// Every test that talks to the Redis server, nested here so they run one at a time (one of
/// them stalls the whole server with DEBUG SLEEP; another flushes the script cache), and only
/// when `CHARGE_GATE_TEST_REDIS` is set (else `redisServerIsConfigured` fails).
@Suite("Redis", .serialized, .enabled(if: TestRedis.isConfigured, "needs CHARGE_GATE_TEST_REDIS (scripts/with-redis)"))
struct RedisTests {}
