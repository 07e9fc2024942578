import ChargeGateFastCGI
import ChargeGateServer
import ChargeGateTestSupport
import Synchronization
import Testing

/// What the pool test's client threads report.
final class PoolTally: Sendable {
    /// Clients connected.
    let connected = Atomic<Int>(0)
    /// Requests answered with their own echo.
    let answered = Atomic<Int>(0)
    /// What went wrong, per client.
    let failures = Mutex<[String]>([])
}

extension EventLoopTests {
    /// Two loops sharing the listening socket, 64 kept connections open at once, 20 requests
    /// on each: every request answered with its own echo, every connection kept throughout
    /// (opened exactly 64 times).
    @Test func aPoolOfTwoLoopsServesSixtyFourKeptConnections() throws {
        let clients = 64
        let requests = 20
        let harness = try LoopHarness()
        defer { harness.close() }
        try harness.start(loops: 2)
        let tally = PoolTally()
        let path = harness.path
        var threads: [NativeThread] = []
        for index in 0..<clients {
            let thread = NativeThread.start {
                do {
                    let client = try FastCGIClient(unixPath: path)
                    tally.connected.add(1, ordering: .sequentiallyConsistent)
                    // All open before the first request: the loops serve 64 at once.
                    _ = eventually(withinMs: 10_000) { tally.connected.load(ordering: .sequentiallyConsistent) == clients }
                    for round in 0..<requests {
                        let x = "c\(index)-r\(round)"
                        let answer = try client.request([("X", x)], keepConnection: true, timeoutMs: 10_000)
                        if answer.text == EchoWorker.expected(x) {
                            tally.answered.add(1, ordering: .sequentiallyConsistent)
                        } else {
                            tally.failures.withLock { $0.append("client \(index) request \(round): \(answer.text)") }
                        }
                    }
                } catch {
                    tally.failures.withLock { $0.append("client \(index): \(error)") }
                }
            }
            if let thread { threads.append(thread) } else { tally.failures.withLock { $0.append("client \(index): no thread") } }
        }
        for thread in threads { thread.join() }

        #expect(tally.failures.withLock { $0 } == [])
        #expect(tally.answered.load(ordering: .sequentiallyConsistent) == clients * requests)
        #expect(eventually { harness.counters.finishedCount == clients * requests })
        #expect(harness.counters.openedCount == clients)
        // The clients closed their connections as their threads ended.
        #expect(eventually { harness.counters.closedCount == clients })
    }
}
