import ChargeGateFastCGI
import ChargeGateTestSupport
import Testing

/// The stop: a loop that has seen the signal accepts no more, answers what comes on its
/// connections for `FastCGIEventLoop.stopGraceMs` closing each after its answer, closes the
/// rest at the end of that grace (sooner when none is left), and its `next()` returns nil.
extension EventLoopTests {
    /// The grace, in milliseconds.
    static let graceMs = Int(FastCGIEventLoop.stopGraceMs)

    /// As the stop happens in production: a request sent on a kept connection and the signal
    /// fired at once. Whether the loop takes the request before or after it sees the signal
    /// varies from round to round; it is answered either way, and every connection is closed
    /// by the end of the grace.
    @Test func aRequestSentJustBeforeTheStopIsAnswered() throws {
        for round in 0..<3 {
            let harness = try LoopHarness()
            defer { harness.close() }
            try harness.start()
            let idle = try harness.connect()
            #expect(try idle.request([("X", "idle")], keepConnection: true).text == EchoWorker.expected("idle"))
            let waiting = try harness.connect()
            #expect(try waiting.request([("X", "first")], keepConnection: true).text == EchoWorker.expected("first"))
            #expect(eventually { harness.counters.finishedCount == 2 })

            try waiting.send(FastCGIRecord.request([("X", "waiting")], keepConnection: true))
            harness.stop.fire()

            #expect(try waiting.answer(timeoutMs: 2000).text == EchoWorker.expected("waiting"), "round \(round)")
            #expect(waiting.end(timeoutMs: Self.graceMs + 2000) == .closed, "round \(round)")
            #expect(idle.end(timeoutMs: Self.graceMs + 2000) == .closed, "round \(round)")
            #expect(harness.stopLoops(), "round \(round): the loop did not end")
            #expect(harness.counters.openedCount == 2)
            #expect(harness.counters.closedCount == 2)
        }
    }

    /// An idle kept connection is not closed at the signal (nginx may be sending a request on
    /// it at that very moment) but once the grace is out.
    @Test func anIdleKeptConnectionIsClosedAtTheEndOfTheGrace() throws {
        let harness = try LoopHarness()
        defer { harness.close() }
        try harness.start()
        let idle = try harness.connect()
        #expect(try idle.request([("X", "idle")], keepConnection: true).text == EchoWorker.expected("idle"))
        #expect(eventually { harness.counters.finishedCount == 1 })

        let fired = ContinuousClock.now
        harness.stop.fire()
        // The loop counts the grace from when it sees the signal, after this.
        #expect(idle.end(timeoutMs: Self.graceMs / 3) == .open)
        #expect(idle.end(timeoutMs: Self.graceMs + 2000) == .closed)
        // Its clock is in whole milliseconds: a few early at most.
        #expect(ContinuousClock.now - fired >= .milliseconds(Self.graceMs - 5))
        #expect(harness.stopLoops(), "the loop did not end")
    }

    /// The loop held inside a request while the signal fires, then a kept connection's next
    /// request and half of another's arrive. Once released, the loop sees the signal first:
    /// the waiting request is answered and its connection closed at once (kept no more,
    /// whatever nginx asked); during the grace the rest of the half request and a request on
    /// a connection idle until then are answered, each connection closed after its answer; a
    /// connection made during the grace is not accepted; with no connection left the loop
    /// ends before the grace is out.
    @Test func duringTheGraceEachRequestIsAnsweredAndItsConnectionClosed() throws {
        let harness = try LoopHarness()
        defer { harness.close() }
        try harness.start(loops: 1)
        let counters = harness.counters
        let idle = try harness.connect()
        #expect(try idle.request([("X", "idle")], keepConnection: true).text == EchoWorker.expected("idle"))
        let waiting = try harness.connect()
        #expect(try waiting.request([("X", "first")], keepConnection: true).text == EchoWorker.expected("first"))
        let half = try harness.connect()
        #expect(try half.request([("X", "first")], keepConnection: true).text == EchoWorker.expected("first"))
        #expect(eventually { counters.finishedCount == 3 })
        let held = try harness.connect()
        try held.send(FastCGIRecord.request([("X", "held"), ("HOLD", "1")], keepConnection: false))
        #expect(eventually { counters.holding.load(ordering: .sequentiallyConsistent) })

        harness.stop.fire()
        try waiting.send(FastCGIRecord.request([("X", "waiting")], keepConnection: true))
        let halfRequest = FastCGIRecord.request([("X", "half")], keepConnection: true)
        let cut = halfRequest.count / 2
        try half.send(Array(halfRequest[..<cut]))
        let released = ContinuousClock.now
        counters.released.store(true, ordering: .sequentiallyConsistent)

        #expect(try held.answer(timeoutMs: 2000).text == EchoWorker.expected("held"))
        #expect(held.end(timeoutMs: 500) == .closed)
        #expect(try waiting.answer(timeoutMs: 2000).text == EchoWorker.expected("waiting"))
        #expect(waiting.end(timeoutMs: 500) == .closed)

        // The loop is stopping (it closed a connection nginx asked to keep).
        let late = try harness.connect()
        try late.send(FastCGIRecord.request([("X", "late")], keepConnection: true))
        try half.send(Array(halfRequest[cut...]))
        #expect(try half.answer(timeoutMs: 2000).text == EchoWorker.expected("half"))
        #expect(half.end(timeoutMs: 500) == .closed)
        #expect(try idle.request([("X", "idle again")], keepConnection: true, timeoutMs: 2000).text == EchoWorker.expected("idle again"))
        #expect(idle.end(timeoutMs: 500) == .closed)

        #expect(eventually(withinMs: 2000) { counters.endedCount == 1 })
        #expect(ContinuousClock.now - released < .milliseconds(Self.graceMs))
        #expect(throws: FastCGIClientError.timedOut) { try late.answer(timeoutMs: 100) }
        #expect(harness.stopLoops(), "the loop did not end")
        #expect(counters.openedCount == 4)
        #expect(counters.closedCount == 4)
        #expect(counters.finishedCount == 7)
    }

    /// A loop sees at most 64 events at a time: with the signal first and 70 requests behind
    /// it (sent while the loop was held), the batch that holds the signal holds 63 of them;
    /// the other 7 are answered too, in the grace.
    @Test func requestsBeyondTheStoppingBatchAreAnswered() throws {
        let harness = try LoopHarness()
        defer { harness.close() }
        try harness.start(loops: 1)
        let counters = harness.counters
        var kept: [FastCGIClient] = []
        for index in 0..<70 {
            let client = try harness.connect()
            #expect(try client.request([("X", "k\(index)")], keepConnection: true).text == EchoWorker.expected("k\(index)"))
            kept.append(client)
        }
        let held = try harness.connect()
        try held.send(FastCGIRecord.request([("X", "held"), ("HOLD", "1")], keepConnection: false))
        #expect(eventually { counters.holding.load(ordering: .sequentiallyConsistent) })

        harness.stop.fire()
        for (index, client) in kept.enumerated() {
            try client.send(FastCGIRecord.request([("X", "w\(index)")], keepConnection: true))
        }
        counters.released.store(true, ordering: .sequentiallyConsistent)

        #expect(try held.answer(timeoutMs: 2000).text == EchoWorker.expected("held"))
        var unanswered: [Int] = []
        for (index, client) in kept.enumerated() {
            let answer = try? client.answer(timeoutMs: 2000)
            if answer?.text != EchoWorker.expected("w\(index)") { unanswered.append(index) }
            #expect(client.end(timeoutMs: 2000) == .closed, "connection \(index)")
        }
        #expect(unanswered == [])
        #expect(harness.stopLoops(), "the loop did not end")
        #expect(counters.closedCount == 71)
    }

    /// Stopping with nothing open: the loops end at once.
    @Test func idleLoopsEndAtTheStop() throws {
        let harness = try LoopHarness()
        defer { harness.close() }
        try harness.start(loops: 2)
        #expect(harness.stopLoops(withinMs: 500))
        #expect(harness.counters.endedCount == 2)
    }
}
