import ChargeGateFastCGI
import ChargeGateTestSupport
import Glibc
import Testing

/// The event loop at the socket level, no nginx: a unix socket, loops on their own threads
/// running `EchoWorker`, `FastCGIClient` as nginx. Serialized: the timing bounds (a stalled
/// connection must not delay another by 1 s) should not compete with the pool test's threads.
@Suite(.serialized) struct EventLoopTests {
    // MARK: Kept and closed connections

    @Test func aKeptConnectionServesRequestAfterRequest() throws {
        let harness = try LoopHarness()
        defer { harness.close() }
        try harness.start()
        let client = try harness.connect()
        for x in ["one", "two", "three"] {
            let answer = try client.request([("X", x)], keepConnection: true)
            #expect(answer.text == EchoWorker.expected(x))
            #expect(answer.protocolStatus == 0)
        }
        // Once finish() has returned for the third, a connection it closed would be counted.
        #expect(eventually { harness.counters.finishedCount == 3 })
        #expect(harness.counters.openedCount == 1)
        #expect(harness.counters.closedCount == 0)
        #expect(client.end(timeoutMs: 0) == .open)
    }

    @Test func withoutKeepConnTheResponderClosesAfterTheAnswer() throws {
        let harness = try LoopHarness()
        defer { harness.close() }
        try harness.start()
        let client = try harness.connect()
        let answer = try client.request([("X", "once")], keepConnection: false)
        #expect(answer.text == EchoWorker.expected("once"))
        #expect(client.end(timeoutMs: 2000) == .closed)
        #expect(eventually { harness.counters.finishedCount == 1 })
        #expect(harness.counters.closedCount == 1)
    }

    /// A connection whose first request was already there when it was accepted is read at
    /// once and watched only from `finish(_:)` on: its second request must still be seen.
    @Test func aKeptConnectionWhoseFirstRequestCameWithTheConnectServesASecond() throws {
        let harness = try LoopHarness()
        defer { harness.close() }
        let client = try harness.connect()
        try client.send(FastCGIRecord.request([("X", "early")], keepConnection: true))
        try harness.start()
        #expect(try client.answer(timeoutMs: 2000).text == EchoWorker.expected("early"))
        #expect(try client.request([("X", "second")], keepConnection: true, timeoutMs: 2000).text == EchoWorker.expected("second"))
        #expect(harness.counters.openedCount == 1)
        client.close()
        #expect(eventually { harness.counters.closedCount == 1 })
    }

    // MARK: Stalled and slow connections

    /// One loop: a connection stalled halfway through its params does not hold the thread
    /// (libfcgi would block on it up to the 3-s receive timeout), and is answered once the rest
    /// comes.
    @Test func aStalledConnectionDoesNotDelayAnother() throws {
        let harness = try LoopHarness()
        defer { harness.close() }
        try harness.start(loops: 1)
        let stalled = try harness.connect()
        let request = FastCGIRecord.request([("X", "stalled"), ("PAD", String(repeating: "p", count: 100))], keepConnection: true)
        let cut = FastCGIRecord.begin(keepConnection: true).count + 20
        try stalled.send(Array(request[..<cut]))
        // Accepted (and its half-request peeked) by the only loop before the other connects.
        #expect(eventually { harness.counters.openedCount == 1 })

        let other = try harness.connect()
        let started = ContinuousClock.now
        let answer = try other.request([("X", "other")], keepConnection: true, timeoutMs: 1000)
        #expect(answer.text == EchoWorker.expected("other"))
        #expect(ContinuousClock.now - started < .seconds(1))
        // Not answered after the stalled one was given up: nothing was closed.
        #expect(eventually { harness.counters.finishedCount == 1 })
        #expect(harness.counters.closedCount == 0)
        #expect(stalled.end(timeoutMs: 0) == .open)

        try stalled.send(Array(request[cut...]))
        #expect(try stalled.answer(timeoutMs: 2000).text == EchoWorker.expected("stalled"))
        #expect(harness.counters.openedCount == 2)
    }

    /// A request that trickles in a few bytes at a time (one edge-triggered wake per piece,
    /// each a partial peek) is answered once whole.
    @Test func aRequestArrivingInPiecesIsAnsweredOnceWhole() throws {
        let harness = try LoopHarness()
        defer { harness.close() }
        try harness.start()
        let client = try harness.connect()
        #expect(eventually { harness.counters.openedCount == 1 })
        let request = FastCGIRecord.request([("X", "pieces"), ("PAD", String(repeating: "p", count: 40))], keepConnection: true)
        var start = 0
        while start < request.count {
            let end = min(start + 5, request.count)
            try client.send(Array(request[start..<end]))
            start = end
            usleep(500)  // pacing, so that the pieces arrive apart; not an assertion
        }
        #expect(try client.answer(timeoutMs: 2000).text == EchoWorker.expected("pieces"))
        #expect(eventually { harness.counters.finishedCount == 1 })
    }

    /// Params longer than the loop's 16-KiB peek (4-byte lengths): complete by capacity, read
    /// whole by libfcgi; the connection is kept.
    @Test func paramsLongerThanThePeekAreReadWhole() throws {
        let harness = try LoopHarness()
        defer { harness.close() }
        try harness.start()
        let client = try harness.connect()
        let long = String(repeating: "0123456789", count: 2500)
        let answer = try client.request([("X", long), ("ALSO", String(repeating: "a", count: 200))], keepConnection: true)
        #expect(answer.text == EchoWorker.expected(long))
        #expect(try client.request([("X", "after")], keepConnection: true).text == EchoWorker.expected("after"))
        #expect(harness.counters.openedCount == 1)
    }

    // MARK: Connections that end

    @Test(arguments: [false, true])
    func anIdleKeptConnectionClosedByTheClientIsClosedAndTheLoopServesOn(requestBeforeTheLoop: Bool) throws {
        let harness = try LoopHarness()
        defer { harness.close() }
        let client = try harness.connect()
        if requestBeforeTheLoop {
            // Read at accept, watched only from finish().
            try client.send(FastCGIRecord.request([("X", "kept")], keepConnection: true))
            try harness.start()
        } else {
            // Watched at accept (nothing there yet).
            try harness.start()
            #expect(eventually { harness.counters.openedCount == 1 })
            try client.send(FastCGIRecord.request([("X", "kept")], keepConnection: true))
        }
        #expect(try client.answer(timeoutMs: 2000).text == EchoWorker.expected("kept"))
        #expect(eventually { harness.counters.finishedCount == 1 })
        #expect(harness.counters.closedCount == 0)

        client.close()
        #expect(eventually { harness.counters.closedCount == 1 })

        let next = try harness.connect()
        #expect(try next.request([("X", "next")], keepConnection: false).text == EchoWorker.expected("next"))
        #expect(harness.counters.openedCount == 2)
    }

    /// A body the worker did not read would be read as the next request: the connection is
    /// closed after the answer even though nginx asked to keep it.
    @Test func anUnreadBodyClosesAKeptConnection() throws {
        let harness = try LoopHarness()
        defer { harness.close() }
        try harness.start()
        let client = try harness.connect()
        let answer = try client.request([("X", "body")], body: Array("0123456789".utf8), keepConnection: true)
        #expect(answer.text == EchoWorker.expected("body"))
        // libfcgi read the whole small request: nothing unread, a plain end.
        #expect(client.end(timeoutMs: 2000) == .closed)
        #expect(eventually { harness.counters.finishedCount == 1 })
        #expect(harness.counters.closedCount == 1)
    }

    /// A body read to its end (the empty STDIN included) leaves nothing behind: kept.
    @Test func aBodyReadToItsEndKeepsTheConnection() throws {
        let harness = try LoopHarness()
        defer { harness.close() }
        try harness.start()
        let client = try harness.connect()
        let answer = try client.request([("X", "read"), ("READ_BODY", "1")], body: Array("0123456789".utf8), keepConnection: true)
        #expect(answer.text == "Status: 204\r\nX-Echo: read\r\nX-Body-Length: 10\r\n\r\n")
        #expect(try client.request([("X", "again")], keepConnection: true).text == EchoWorker.expected("again"))
        #expect(harness.counters.openedCount == 1)
        #expect(harness.counters.closedCount == 0)
    }

    /// A large unread body is still in the socket when the loop closes it: over a unix socket
    /// the client reads the whole answer first, then the reset.
    @Test func anAnswerBeforeALargeUnreadBodyArrivesWholeBeforeTheReset() throws {
        let harness = try LoopHarness()
        defer { harness.close() }
        try harness.start()
        let client = try harness.connect()
        let body = [UInt8](repeating: 0x62, count: 64 * 1024)
        let answer = try client.request([("X", "large")], body: body, keepConnection: true)
        #expect(answer.text == EchoWorker.expected("large"))
        #expect(client.end(timeoutMs: 2000) == .reset)
        #expect(eventually { harness.counters.closedCount == 1 })
    }

    /// A client that leaves right after sending (nginx gave up on the request): the answer's
    /// write fails, the connection is closed, the loop serves on.
    @Test func aClientThatLeavesBeforeItsAnswerCostsOnlyItsConnection() throws {
        let harness = try LoopHarness()
        defer { harness.close() }
        try harness.start()
        let leaving = try harness.connect()
        try leaving.send(FastCGIRecord.request([("X", "gone")], keepConnection: true))
        leaving.close()
        #expect(eventually { harness.counters.closedCount == 1 })
        let next = try harness.connect()
        #expect(try next.request([("X", "next")], keepConnection: true).text == EchoWorker.expected("next"))
        #expect(harness.counters.openedCount == 2)
    }

    /// A request libfcgi refuses (role 9: none of responder, authorizer, filter) closes that
    /// connection without an answer; the loop serves on.
    @Test func aRequestLibfcgiRefusesClosesOnlyItsConnection() throws {
        let harness = try LoopHarness()
        defer { harness.close() }
        try harness.start()
        let kept = try harness.connect()
        #expect(try kept.request([("X", "kept")], keepConnection: true).text == EchoWorker.expected("kept"))
        let refused = try harness.connect()
        try refused.send(
            FastCGIRecord.begin(keepConnection: true, role: 9) + FastCGIRecord.params([("X", "refused")])
                + FastCGIRecord.stream(FastCGIRecord.stdinType, []))
        #expect(refused.end(timeoutMs: 2000) == .closed)
        #expect(eventually { harness.counters.closedCount == 1 })
        #expect(try kept.request([("X", "still")], keepConnection: true).text == EchoWorker.expected("still"))
        #expect(eventually { harness.counters.finishedCount == 2 })
    }
}
