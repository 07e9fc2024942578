import ChargeGateCore
import ChargeGateRedis
import Foundation
import Testing

extension RedisTests {
    /// The hiredis wrapper: binary-safe commands, reconnects, timeouts, back-off, secrets.
    @Suite("Redis connection")
    struct Connection {
        @Test("arguments and replies are binary-safe")
        func binarySafe() throws {
            let fixture = try RedisFixture()
            let key = Array((fixture.prefix + "bin").utf8)
            let value: [UInt8] = [0, 1, 2, 0x0D, 0x0A, 0xFF, 0, 0x24]
            #expect(try fixture.admin.command([Array("SET".utf8), key, value]) == .status("OK"))
            #expect(try fixture.admin.command([Array("GET".utf8), key]) == .string(value))
            #expect(try fixture.admin.command([Array("SET".utf8), key, []]) == .status("OK"))
            #expect(try fixture.admin.command([Array("GET".utf8), key]) == .string([]))
            #expect(try fixture.admin.command(["GET", fixture.prefix + "missing"]) == .null)
            #expect(try fixture.admin.command(["INCRBY", fixture.prefix + "n", "-7"]) == .integer(-7))
            guard case .error(let message) = try fixture.admin.command(["NOSUCHCOMMAND"]) else {
                Issue.record("an unknown command should answer an error reply")
                return
            }
            #expect(message.hasPrefix("ERR"))
            #expect(try fixture.admin.command(["PING"]) == .status("PONG"), "an error reply keeps the connection")
        }

        @Test("after the server closes an idle connection, the next spend reconnects first and spends once")
        func reconnectAfterKill() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let item = SpendItem(poolId: "a", key: fixture.prefix + "a", max: 5, intervalMs: 3_600_000, cost: 1, expires: false)
            let request = SpendRequest(items: [item], context: context())
            _ = try store.spend(request)
            let id = try #require(try store.connection.command(["CLIENT", "ID"]).integer)
            // Kill exactly this client (CLIENT KILL TYPE normal would also cut the connections of
            // tests running in parallel in other suites).
            #expect(try fixture.run("CLIENT", "KILL", "ID", String(id)).integer == 1)
            usleep(20_000)
            guard case .allowed(let results) = try store.spend(request) else {
                Issue.record("the first spend after the kill should pass")
                return
            }
            let remaining = results.map(\.remaining)
            #expect(remaining == [3], "spent exactly once")
            #expect(try store.connection.command(["CLIENT", "ID"]).integer != id, "a new connection")
            #expect(try store.peek([item.key]).states.first??.current == 3)
        }

        @Test("a real Redis restart: the first spend afterwards reconnects, reloads the script and passes")
        func survivesRestart() throws {
            let server = ProcessInfo.processInfo.environment["REDIS_SERVER"] ?? "/usr/bin/redis-server"
            try #require(FileManager.default.isExecutableFile(atPath: server), "no redis-server at \(server)")
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cg-restart-\(UInt64.random(in: 0...UInt64.max))")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let socket = dir.appendingPathComponent("redis.sock").path

            func start() throws -> Process {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: server)
                process.arguments = [
                    "--port", "0", "--unixsocket", socket, "--unixsocketperm", "700", "--dir", dir.path,
                    "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
                ]
                process.standardOutput = FileHandle.nullDevice
                process.standardError = FileHandle.nullDevice
                try process.run()
                let probe = RedisConnection(url: RedisURL(endpoint: .unix(path: socket)), timeoutMs: 200)
                let deadline = monotonicMs() + 5000
                while monotonicMs() < deadline {
                    if (try? probe.command(["PING"])) == .status("PONG") { return process }
                    usleep(10_000)
                }
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                throw StoreError.unavailable("test redis-server did not start")
            }

            // Stopped with SHUTDOWN (or SIGKILL): a child started from a test thread inherits its
            // blocked signal mask, so SIGTERM would be ignored.
            func stop(_ process: Process) {
                let admin = RedisConnection(url: RedisURL(endpoint: .unix(path: socket)), timeoutMs: 1000)
                _ = try? admin.command(["SHUTDOWN", "NOSAVE"])
                let deadline = monotonicMs() + 3000
                while process.isRunning && monotonicMs() < deadline { usleep(10_000) }
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                process.waitUntilExit()
            }
            var process = try start()
            defer { if process.isRunning { stop(process) } }
            let store = RedisStore(url: RedisURL(endpoint: .unix(path: socket)), timeoutMs: 500)
            let item = SpendItem(poolId: "a", key: "charge:a", max: 5, intervalMs: 3_600_000, cost: 1, expires: false)
            let request = SpendRequest(items: [item], context: context())
            guard case .allowed(let first) = try store.spend(request), first.map(\.remaining) == [4] else {
                Issue.record("the first spend should pass")
                return
            }
            stop(process)
            process = try start()
            // The store's connection is idle and now closed by the old server.
            guard case .allowed(let results) = try store.spend(request) else {
                Issue.record("the first spend after the restart should pass")
                return
            }
            let remaining = results.map(\.remaining)
            #expect(remaining == [4], "a fresh server holds a full pool")
        }

        @Test("a server that stops answering gives .timeout; service resumes once it answers again")
        func debugSleepTimeout() throws {
            let fixture = try RedisFixture()
            let url = fixture.url
            let store = fixture.store(timeoutMs: 100)
            let item = SpendItem(poolId: "a", key: fixture.prefix + "a", max: 10, intervalMs: 3_600_000, cost: 1, expires: false)
            let request = SpendRequest(items: [item], context: context())
            _ = try store.spend(request)

            let sleeperReply = Collector<String>()
            let sleeperDone = DispatchSemaphore(value: 0)
            let sleeper = Thread {
                let connection = RedisConnection(url: url, timeoutMs: 5000)
                switch Result(catching: { () throws(StoreError) in try connection.command(["DEBUG", "SLEEP", "0.5"]) }) {
                case .success(let value): sleeperReply.append("\(value)")
                case .failure(let error): sleeperReply.append("\(error)")
                }
                sleeperDone.signal()
            }
            sleeper.start()
            usleep(100_000)
            let started = monotonicMs()
            #expect(throws: StoreError.timeout) { try store.spend(request) }
            let waited = monotonicMs() - started
            #expect(waited >= 90 && waited < 400, "timed out after \(waited) ms")
            sleeperDone.wait()
            #expect(sleeperReply.all == ["status(\"OK\")"], "DEBUG SLEEP must be allowed (scripts/with-redis enables it)")

            guard case .allowed(let results) = try store.spend(request) else {
                Issue.record("the spend after the server woke up should pass")
                return
            }
            let remaining = results.map(\.remaining)
            // The timed-out spend was written before the timeout, so Redis may have run it when it
            // woke up; it was never sent twice.
            #expect(remaining == [8] || remaining == [7], "remaining \(remaining)")
        }

        @Test("a command slower than the timeout gives .timeout without blocking other clients; the next command reconnects")
        func blockingTimeout() throws {
            let fixture = try RedisFixture()
            let connection = RedisConnection(url: fixture.url, timeoutMs: 100)
            #expect(try connection.command(["PING"]) == .status("PONG"))
            let started = monotonicMs()
            #expect(throws: StoreError.timeout) { try connection.command(["BLPOP", fixture.prefix + "never", "2"]) }
            #expect(monotonicMs() - started < 1000)
            #expect(!connection.isConnected, "the context is dropped after a timeout")
            #expect(try connection.command(["PING"]) == .status("PONG"))
        }

        @Test("a failed connect backs off, then retries; service resumes within a second of Redis returning")
        func backoffAndResume() throws {
            let fixture = try RedisFixture()
            guard case .unix(let realSocket) = fixture.url.endpoint else {
                Issue.record("the test server should be on a unix socket")
                return
            }
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cg-backoff-\(UInt64.random(in: 0...UInt64.max))")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let link = dir.appendingPathComponent("redis.sock").path
            let connection = RedisConnection(url: RedisURL(endpoint: .unix(path: link)), timeoutMs: 100)

            var first: StoreError?
            do { _ = try connection.command(["PING"]) } catch { first = error }
            guard case .unavailable(let why)? = first else {
                Issue.record("expected .unavailable, got \(String(describing: first))")
                return
            }
            #expect(why != "backing off")
            #expect(throws: StoreError.unavailable("backing off")) { try connection.command(["PING"]) }
            usleep(250_000)  // past the longest back-off
            do {
                _ = try connection.command(["PING"])
                Issue.record("nothing listens yet")
            } catch {
                #expect(error != .unavailable("backing off"), "after the back-off a new connect is tried")
            }
            // Keep failing for a while so the back-off reaches its cap, then "restart" Redis.
            let failUntil = monotonicMs() + 600
            while monotonicMs() < failUntil {
                _ = try? connection.command(["PING"])
                usleep(5_000)
            }
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: realSocket)
            let back = monotonicMs()
            var answered = false
            while monotonicMs() - back < 2000 {
                if (try? connection.command(["PING"])) == .status("PONG") {
                    answered = true
                    break
                }
                usleep(5_000)
            }
            let resumedAfter = monotonicMs() - back
            #expect(answered && resumedAfter < 1000, "resumed after \(resumedAfter) ms")
        }

        @Test("the password never appears in an error text")
        func passwordNeverShown() throws {
            let fixture = try RedisFixture()
            let secret = "hunter2-\(UInt32.random(in: 0...UInt32.max))"
            guard case .unix(let socket) = fixture.url.endpoint else {
                Issue.record("the test server should be on a unix socket")
                return
            }
            // The test server has no password: AUTH fails.
            var url = fixture.url
            url.password = secret
            for candidate in [url, RedisURL(endpoint: .unix(path: socket + ".missing"), password: secret)] {
                let connection = RedisConnection(url: candidate, timeoutMs: 500)
                do {
                    _ = try connection.command(["PING"])
                    Issue.record("connect with a wrong password succeeded")
                } catch {
                    guard case .unavailable = error else {
                        Issue.record("expected .unavailable, got \(error)")
                        continue
                    }
                    #expect(!error.description.contains(secret), "\(error.description)")
                    #expect(!"\(error)".contains(secret))
                }
                #expect(!candidate.description.contains(secret))
            }
        }
    }
}

extension RedisTests {
    /// The refusal to serve on a Redis that may evict keys. These tests change the shared
    /// server's `maxmemory-policy`: they live inside the serialized `RedisTests` suite (no other
    /// test runs meanwhile) and always set `noeviction` back, also when they fail.
    @Suite("Redis eviction policy")
    struct EvictionPolicy {
        /// Sets `maxmemory-policy` server-wide through `config` (which must allow eviction).
        private func setPolicy(_ policy: String, on config: RedisConnection) throws {
            #expect(try config.command(["CONFIG", "SET", "maxmemory-policy", policy]) == .status("OK"))
            #expect(try config.command(["CONFIG", "GET", "maxmemory-policy"]).elements?.last?.text == policy)
        }

        /// Puts `noeviction` back (called from `defer`: records, never throws).
        private func restoreNoEviction(on config: RedisConnection) {
            do {
                let reply = try config.command(["CONFIG", "SET", "maxmemory-policy", "noeviction"])
                if reply != .status("OK") { Issue.record("restoring noeviction answered \(reply)") }
            } catch {
                Issue.record("restoring noeviction failed: \(error)")
            }
        }

        /// A connection for CONFIG: it must keep working while the policy is not `noeviction`.
        private func configConnection(_ fixture: RedisFixture) -> RedisConnection {
            RedisConnection(url: fixture.url, timeoutMs: TestRedis.timeoutMs, allowEviction: true)
        }

        @Test("on allkeys-lru a new connection is refused with .unavailable naming the policy, and a spend fails closed")
        func refusesEvictingRedis() throws {
            let fixture = try RedisFixture()
            let config = configConnection(fixture)
            defer { restoreNoEviction(on: config) }
            try setPolicy("allkeys-lru", on: config)

            let connection = RedisConnection(url: fixture.url, timeoutMs: TestRedis.timeoutMs)
            var thrown: StoreError?
            do { _ = try connection.command(["PING"]) } catch { thrown = error }
            guard case .unavailable(let why)? = thrown else {
                Issue.record("expected .unavailable, got \(String(describing: thrown))")
                return
            }
            #expect(why.contains("has maxmemory-policy allkeys-lru"), "\(why)")
            #expect(why.contains("noeviction") && why.contains("--allow-eviction"), "\(why)")
            #expect(why.contains(fixture.url.description), "\(why)")
            #expect(!connection.isConnected, "the refused context is dropped")

            let store = RedisStore(url: fixture.url, timeoutMs: TestRedis.timeoutMs)
            #expect(store.connection.allowEviction == false, "refusing is the default")
            let item = SpendItem(poolId: "a", key: fixture.prefix + "a", max: 5, intervalMs: 3_600_000, cost: 1, expires: false)
            var spendError: StoreError?
            do {
                let outcome = try store.spend(SpendRequest(items: [item], context: context()))
                Issue.record("a spend on an evicting Redis must fail closed, got \(outcome)")
            } catch {
                spendError = error
            }
            guard case .unavailable(let spendWhy)? = spendError else {
                Issue.record("expected .unavailable from the spend, got \(String(describing: spendError))")
                return
            }
            #expect(spendWhy.contains("allkeys-lru"), "\(spendWhy)")
            #expect(try config.command(["EXISTS", item.key]) == .integer(0), "nothing was written")
        }

        @Test("with allowEviction the same Redis is served")
        func allowEvictionServes() throws {
            let fixture = try RedisFixture()
            let config = configConnection(fixture)
            defer { restoreNoEviction(on: config) }
            try setPolicy("allkeys-lru", on: config)

            let store = RedisStore(url: fixture.url, timeoutMs: TestRedis.timeoutMs, allowEviction: true)
            #expect(store.connection.allowEviction)
            let item = SpendItem(poolId: "a", key: fixture.prefix + "a", max: 5, intervalMs: 3_600_000, cost: 1, expires: false)
            guard case .allowed(let results) = try store.spend(SpendRequest(items: [item], context: context())) else {
                Issue.record("the spend should pass with allowEviction")
                return
            }
            let remaining = results.map(\.remaining)
            #expect(remaining == [4])
            #expect(try store.connection.command(["PING"]) == .status("PONG"))
        }

        @Test("a refusing connection serves again once noeviction is back and its back-off has passed")
        func resumesAfterNoEviction() throws {
            let fixture = try RedisFixture()
            let config = configConnection(fixture)
            defer { restoreNoEviction(on: config) }
            try setPolicy("volatile-ttl", on: config)

            let store = RedisStore(url: fixture.url, timeoutMs: TestRedis.timeoutMs)
            let item = SpendItem(poolId: "a", key: fixture.prefix + "a", max: 5, intervalMs: 3_600_000, cost: 1, expires: false)
            let request = SpendRequest(items: [item], context: context())
            // Refused a few times, so the back-off has grown past its first step.
            for _ in 0..<3 {
                #expect(throws: StoreError.self) { try store.spend(request) }
                usleep(60_000)
            }

            try setPolicy("noeviction", on: config)
            let back = monotonicMs()
            var outcome: SpendOutcome?
            var lastError: StoreError?
            while outcome == nil && monotonicMs() - back < 2000 {
                do {
                    outcome = try store.spend(request)
                } catch {
                    lastError = error
                    usleep(50_000)
                }
            }
            guard case .allowed(let results)? = outcome else {
                Issue.record("no spend passed within 2 s of noeviction; last error \(String(describing: lastError))")
                return
            }
            let remaining = results.map(\.remaining)
            #expect(remaining == [4], "the refused spends wrote nothing")
            #expect(monotonicMs() - back < 1000, "resumed within the back-off (at most 200 ms) and a poll")
        }

        @Test("a user that may not run INFO cannot show the policy: refused, and the password is never shown")
        func infoRefusedIsRefused() throws {
            let fixture = try RedisFixture()
            let config = configConnection(fixture)
            let user = "cgtest-noinfo-\(UInt32.random(in: 0...UInt32.max))"
            let secret = "pw-\(UInt64.random(in: 0...UInt64.max))"
            defer { _ = try? config.command(["ACL", "DELUSER", user]) }
            #expect(try config.command(["ACL", "SETUSER", user, "on", ">" + secret, "~*", "+@all", "-info"]) == .status("OK"))
            var url = fixture.url
            url.username = user
            url.password = secret

            let connection = RedisConnection(url: url, timeoutMs: TestRedis.timeoutMs)
            var thrown: StoreError?
            do { _ = try connection.command(["PING"]) } catch { thrown = error }
            guard case .unavailable(let why)? = thrown else {
                Issue.record("expected .unavailable, got \(String(describing: thrown))")
                return
            }
            #expect(why.hasPrefix("cannot read maxmemory-policy from Redis at"), "\(why)")
            #expect(why.contains("INFO memory: NOPERM"), "\(why)")
            #expect(why.contains("refusing to serve"), "\(why)")
            #expect(!why.contains(secret), "\(why)")
            #expect(!connection.isConnected)

            let allowed = RedisConnection(url: url, timeoutMs: TestRedis.timeoutMs, allowEviction: true)
            #expect(try allowed.command(["PING"]) == .status("PONG"), "with allowEviction INFO is not needed")
        }
    }
}

/// The `INFO` parsing behind the eviction check, without a server.
@Suite("maxmemory-policy parsing")
struct MaxmemoryPolicyParsingTests {
    @Test(
        "the maxmemory_policy line of INFO text",
        arguments: [
            (
                "# Memory\r\nused_memory:873432\r\nmaxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\nallocator_frag_ratio:1.00\r\n",
                "noeviction"
            ),
            ("# Memory\r\nmaxmemory:1048576\r\nmaxmemory_policy:allkeys-lru", "allkeys-lru"),
            ("maxmemory_policy:volatile-ttl\r\n", "volatile-ttl"),
            ("# Memory\nmaxmemory_policy:allkeys-random\n", "allkeys-random"),
            ("maxmemory_policy: noeviction \r\n", "noeviction"),
            ("# Memory\r\nmaxmemory_policy:\r\nmaxmemory:0\r\n", ""),
            ("# Memory\r\nused_memory:873432\r\nmaxmemory:0\r\n", nil),
            ("x_maxmemory_policy:allkeys-lru\r\n", nil),
            ("", nil),
        ] as [(String, String?)])
    func parses(info: String, expected: String?) {
        #expect(RedisConnection.maxmemoryPolicy(fromInfo: info) == expected)
    }
}

/// Secrets in URLs, without a server.
@Suite("Redis URL secrets")
struct RedisURLSecretTests {
    @Test("RedisURL's description masks the password")
    func masked() throws {
        let tcp = try RedisURL(parsing: "redis://alice:s3cr%40t-pw@127.0.0.1:6390/2")
        #expect(tcp.password == "s3cr@t-pw")
        #expect(!tcp.description.contains("s3cr"))
        #expect(tcp.description.contains("***"))
        let unix = try RedisURL(parsing: "unix:///run/redis.sock?db=1&password=s3cr3t-pw")
        #expect(unix.password == "s3cr3t-pw")
        #expect(!unix.description.contains("s3cr3t"))
    }

    @Test("a connect error does not contain the password")
    func connectErrorMasked() throws {
        let url = try RedisURL(parsing: "redis://:s3cr3t-pw@127.0.0.1:1/0")
        let connection = RedisConnection(url: url, timeoutMs: 200)
        do {
            _ = try connection.command(["PING"])
            Issue.record("nothing should listen on port 1")
        } catch {
            #expect(!error.description.contains("s3cr3t"), "\(error.description)")
            if case .unavailable(let why) = error { #expect(!why.contains("s3cr3t")) }
        }
    }
}
