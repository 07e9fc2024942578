import ChargeGateCore
import Glibc
import Testing

@testable import ChargeGateServer

/// A server with a settled route, its holds made on a memory store.
private struct Rig {
    let dir: String
    let path: String
    let server: Server
    let store: MemoryStore
    let gate: Gate
    let metrics: GateMetrics
    let capture = LogCapture()

    static let yaml = """
        pools:
          - id: credits
            maxCharges: 100000
            recharge: none
        routes:
          - prefix: /api/chat
            pools: [credits]
            cost: 1000
            settle:
              refund: [5xx]
              amount: header
        """

    init(yaml: String = Rig.yaml) throws {
        dir = SettleTestSupport.temporaryDirectory()
        path = dir + "/settle.sock"
        var parsed = try ConfigLoader.parse(yaml, file: "test.yaml").get()
        parsed.listen = .unix(path: dir + "/charge.sock")
        let config = parsed
        metrics = GateMetrics()
        server = Server(
            config: config, reload: { .success(config) }, overrides: ServeOverrides(), metrics: metrics, logger: capture.logger())
        store = MemoryStore(clock: SystemClock())
        gate = Gate(config: server.config)
    }

    /// Spends the route's cost for `ids`, each recording its hold.
    func hold(_ ids: [String]) throws {
        let route = try #require(gate.route(path: "/api/chat", method: "POST"))
        for id in ids {
            let hold = try #require(gate.holdRequest(route, id: id))
            let spend = SpendRequest(
                items: gate.items(route, subject: "s"), eventsKey: gate.eventsKey, eventsMaxLen: gate.config.eventsMaxLen,
                context: EventContext(subject: "s", route: "/api/chat", method: "POST", uri: "/api/chat", idempotencyKey: ""), hold: hold)
            guard case .allowed = try store.spend(spend) else {
                Issue.record("the spend for \(id) was denied")
                return
            }
        }
    }

    /// What the credits pool holds now.
    func credits() throws -> Int64? {
        let route = try #require(gate.route(path: "/api/chat", method: "POST"))
        return try store.peek(gate.items(route, subject: "s").map(\.key)).states[0]?.current
    }

    func value(_ series: String) -> Int? {
        SettleTestSupport.value(series, in: metrics)
    }

    func lines(_ result: String) -> Int {
        value(#"charge_gate_settle_lines_total{result="\#(result)"}"#) ?? -1
    }

    func holds(_ outcome: String) -> Int {
        value(#"charge_gate_holds_total{outcome="\#(outcome)"}"#) ?? -1
    }

    /// The server's transport and its two loops running (the applier on `store`, or the
    /// given one).
    func start(store: (any ChargeStore & Sendable)? = nil, retry: SettleRetry = SettleRetry(), queue: SettleQueue = SettleQueue())
        throws -> (SettleTransport, [NativeThread])
    {
        Server.prepareSignals()
        let socket = try SettleSocket.bind(path: path, mode: 0o660, group: nil)
        let transport = SettleTransport(socket: socket, queue: queue)
        let chosen: any ChargeStore & Sendable = store ?? self.store
        let loops: [any BackgroundLoop] = [
            transport.reader(metrics: metrics, logger: capture.logger()),
            transport.applier(box: server.box, makeStore: { _ in chosen }, metrics: metrics, logger: capture.logger(), retry: retry),
        ]
        let threads = SettleTestSupport.withKnockUnblocked { server.startLoops(loops) }
        return (transport, threads)
    }

    /// The stop as `run` does it, and the directory removed.
    func stop(_ transport: SettleTransport, _ threads: [NativeThread], drainMs: Int = Server.settleDrainMs) {
        server.drainSettlement(transport, limitMs: drainMs)
        server.stopLoops(threads)
        server.reportSettlementLeft(transport)
        SettleTestSupport.remove(dir)
    }
}

/// nginx's settlement lines through the real socket: read, parsed, counted, queued and
/// settled on the store by the two loops the server runs; the stop reads what is left and
/// brings it to the store.
@Suite(.serialized) struct SettleTransportTests {
    @Test func linesSentToTheSocketSettleTheirHolds() throws {
        let rig = try Rig()
        try rig.hold(["h1", "h2", "h3", "h4"])
        #expect(try rig.credits() == 96000)
        let (transport, threads) = try rig.start()
        let sent = SettleTestSupport.send(
            [
                SettleTestSupport.line(hold: "h1", amount: "250"),  // charged 250: 750 back
                SettleTestSupport.line(hold: "h2", status: 502, upstreamStatus: "502"),  // refund: 1000 back
                SettleTestSupport.line(hold: "h3"),  // no amount header: the hold stands
                SettleTestSupport.line(hold: "h4", amount: "1500"),  // 500 past the hold
                SettleTestSupport.line(hold: "h1", amount: "10"),  // settled already
                SettleTestSupport.line(hold: "nosuchhold", amount: "10"),
                SettleTestSupport.line(hold: "h3", origin: "auth"),
                SettleTestSupport.line(hold: "h3", status: 20),
                Array("hello".utf8),
                [UInt8](repeating: 65, count: SettleLine.maxBytes + 1),
            ], to: rig.path)
        #expect(sent == 10)
        let settled = SettleTestSupport.wait {
            // The gauge is set once the applier's batch is done, after its settlements count.
            ["refund", "amount", "overage", "bad_amount", "duplicate", "unknown"].allSatisfy { rig.holds($0) == 1 }
                && rig.value("charge_gate_settle_queue_lines") == 0
        }
        #expect(settled)
        #expect(try rig.credits() == 96000 + 750 + 1000 - 500)
        #expect(rig.lines("accepted") == 6)
        #expect(rig.lines("auth_location") == 1)
        #expect(rig.lines("bad_field") == 1)
        #expect(rig.lines("malformed") == 1)
        #expect(rig.lines("too_long") == 1)
        #expect(rig.lines("dropped") == 0)
        #expect(rig.value("charge_gate_settle_queue_lines") == 0)
        // The settle events: one per pool, with the signed difference.
        let events = try rig.store.events(stream: try #require(rig.gate.eventsKey), EventQuery()).events
        #expect(events.filter { $0.kind == .settle }.map(\.amount) == [-750, -1000, 500])
        rig.stop(transport, threads)
        let readerDone = transport.readerDone.load(ordering: .acquiring)
        #expect(readerDone)
        // The path the server bound is gone with it.
        #expect(access(rig.path, F_OK) != 0)
    }

    @Test func theStopBringsTheLastLinesToTheStore() throws {
        let rig = try Rig()
        try rig.hold((1...50).map { "s\($0)" })
        // A store slow to answer at first: the lines wait in the queue when the stop begins.
        let slow = FlakyStore(inner: rig.store, failures: 3)
        let (transport, threads) = try rig.start(store: slow, retry: SettleRetry(firstDelayMs: 20, maxDelayMs: 20))
        #expect(SettleTestSupport.send((1...50).map { SettleTestSupport.line(hold: "s\($0)", status: 500) }, to: rig.path) == 50)
        rig.stop(transport, threads)
        #expect(rig.holds("refund") == 50)
        #expect(slow.settled == (1...50).map { "s\($0)" })
        #expect(rig.lines("dropped") == 0)
        #expect(try rig.credits() == 100000)
    }

    @Test func theApplierSettlesTheQueuedLinesInBatches() throws {
        let rig = try Rig()
        try rig.hold((1...40).map { "b\($0)" })
        // The first batch times out: the lines sent meanwhile queue up and go in batches.
        let counting = BatchCountingStore(inner: rig.store, failures: 1)
        let (transport, threads) = try rig.start(store: counting, retry: SettleRetry(firstDelayMs: 200, maxDelayMs: 200))
        #expect(SettleTestSupport.send((1...40).map { SettleTestSupport.line(hold: "b\($0)", status: 500) }, to: rig.path) == 40)
        #expect(SettleTestSupport.wait { rig.holds("refund") == 40 && rig.value("charge_gate_settle_queue_lines") == 0 })
        let sizes = counting.batchSizes
        #expect(sizes.dropFirst().contains { $0 > 1 }, "batch sizes \(sizes)")
        #expect(sizes.allSatisfy { $0 <= SettleTransport.batch })
        #expect(counting.singles.load(ordering: .relaxed) == 0)
        // Each line counted once: the failed first batch was sent again, not counted.
        #expect(rig.holds("refund") == 40)
        #expect(rig.holds("duplicate") == 0)
        rig.stop(transport, threads)
        #expect(try rig.credits() == 100000)
    }

    @Test func linesThatArriveTogetherAreSettledTogether() throws {
        // The applier waits a moment (SettleApplier.lingerUs) before it takes a batch that is not
        // full: lines sent one after the other go to the store in one call, not one each.
        let rig = try Rig()
        try rig.hold((1...30).map { "t\($0)" })
        let counting = BatchCountingStore(inner: rig.store, failures: 0)
        let (transport, threads) = try rig.start(store: counting)
        #expect(SettleTestSupport.send((1...30).map { SettleTestSupport.line(hold: "t\($0)", status: 500) }, to: rig.path) == 30)
        #expect(SettleTestSupport.wait { rig.holds("refund") == 30 })
        let sizes = counting.batchSizes
        #expect(sizes.count < 10 && (sizes.max() ?? 0) >= 10, "batch sizes \(sizes)")
        rig.stop(transport, threads)
    }

    @Test func theReaderPausesOnlyWhenTheKernelQueueIsLong() throws {
        let dir = SettleTestSupport.temporaryDirectory()
        defer { SettleTestSupport.remove(dir) }
        for (queue, pause) in [(nil, 0), (10, 0), (255, 0), (256, 1000), (512, 1000)] as [(Int?, UInt32)] {
            let socket = try SettleSocket.bind(path: dir + "/s\(queue ?? 0).sock", mode: 0o660, group: nil)
            #expect(SettleTransport(socket: socket, kernelQueue: queue).readerLingerUs == pause)
        }
    }

    @Test func aStoreThatIsAwayKeepsTheLineAndItsOrder() throws {
        let rig = try Rig()
        try rig.hold(["a", "b", "c"])
        let flaky = FlakyStore(inner: rig.store, failures: 5, error: .unavailable("connection refused"))
        let (transport, threads) = try rig.start(store: flaky, retry: SettleRetry(firstDelayMs: 1, maxDelayMs: 4))
        SettleTestSupport.send(["a", "b", "c"].map { SettleTestSupport.line(hold: $0, amount: "100") }, to: rig.path)
        #expect(SettleTestSupport.wait { rig.holds("amount") == 3 })
        #expect(flaky.settled == ["a", "b", "c"])
        #expect(flaky.attempts.load(ordering: .relaxed) == 8)
        #expect(rig.capture.messages(at: .warning).contains { $0.hasPrefix("settlement: store unavailable: connection refused") })
        #expect(rig.capture.messages(at: .info).contains("settlement: the store answers again; settling the queued lines"))
        rig.stop(transport, threads)
    }

    @Test func aLineTheStoreKeepsRefusingIsGivenUpAndCounted() throws {
        let rig = try Rig()
        try rig.hold(["bad", "good"])
        let flaky = FlakyStore(inner: rig.store, poisoned: "bad")
        let (transport, threads) = try rig.start(store: flaky, retry: SettleRetry(firstDelayMs: 1, maxDelayMs: 4))
        SettleTestSupport.send(
            [SettleTestSupport.line(hold: "bad", amount: "1"), SettleTestSupport.line(hold: "good", amount: "1")], to: rig.path)
        // Both in one batch (the applier waits for a fuller one): the good line is done at once,
        // the bad one after its last attempt.
        #expect(SettleTestSupport.wait { rig.holds("amount") == 1 && rig.lines("dropped") == 1 })
        #expect(flaky.settled == ["good"])
        #expect(rig.capture.messages(at: .error).contains { $0.hasPrefix("settlement: gave the line up after 3 attempts") })
        rig.stop(transport, threads)
        // The given-up hold stands as held: 1000 spent for it, 1 for the good one.
        #expect(try rig.credits() == 100000 - 1000 - 1)
    }

    @Test func aFullQueueDropsTheArrivingLinesAndCountsThem() throws {
        let rig = try Rig()
        try rig.hold((1...5).map { "q\($0)" })
        // A store that is away for good, and room for two lines.
        let away = FlakyStore(inner: rig.store, failures: Int.max, error: .timeout)
        let (transport, threads) = try rig.start(
            store: away, retry: SettleRetry(firstDelayMs: 5, maxDelayMs: 5), queue: SettleQueue(capacity: 2))
        SettleTestSupport.send((1...5).map { SettleTestSupport.line(hold: "q\($0)", amount: "1") }, to: rig.path)
        #expect(SettleTestSupport.wait { rig.lines("accepted") + rig.lines("dropped") == 5 })
        #expect(rig.lines("accepted") == 2)
        #expect(rig.lines("dropped") == 3)
        #expect(rig.value("charge_gate_settle_queue_lines") == 2)
        #expect(rig.capture.messages(at: .warning).contains { $0.hasPrefix("settlement: the queue is full (2 lines") })
        // The stop gives up on the two queued lines after its limit, and says so.
        rig.stop(transport, threads, drainMs: 100)
        #expect(rig.lines("dropped") == 5)
        #expect(
            rig.capture.messages(at: .error).contains {
                $0.hasPrefix("settlement: 2 lines were not applied before the stop")
            })
        #expect(rig.holds("amount") == 0)
        #expect(try rig.credits() == 95000)  // every hold stands as held
    }

    @Test func aReloadAppliesToTheNextBatch() throws {
        let rig = try Rig()
        try rig.hold(["r1"])
        let (transport, threads) = try rig.start()
        // The reloaded config has another keyPrefix: the hold is looked for under it.
        var reloaded = rig.server.config
        reloaded.keyPrefix = "other:"
        rig.server.box.replace(with: Gate(config: reloaded))
        SettleTestSupport.send([SettleTestSupport.line(hold: "r1", amount: "1")], to: rig.path)
        #expect(SettleTestSupport.wait { rig.holds("unknown") == 1 })
        rig.server.box.replace(with: rig.gate)
        SettleTestSupport.send([SettleTestSupport.line(hold: "r1", amount: "1")], to: rig.path)
        #expect(SettleTestSupport.wait { rig.holds("amount") == 1 })
        rig.stop(transport, threads)
    }

    @Test func openSettlementBindsBesideTheFastCGISocketOnlyWhenARouteSettles() throws {
        let rig = try Rig()
        defer { SettleTestSupport.remove(rig.dir) }
        let transport = try #require(try rig.server.openSettlement(rig.server.config))
        #expect(transport.socket.boundPath == rig.dir + "/settle.sock")
        #expect(rig.capture.messages(at: .info).contains { $0.hasPrefix("settlement: receiving nginx's lines on \(rig.dir)/settle.sock") })
        transport.socket.unlinkBoundPath()

        var plain = rig.server.config
        plain.routes = plain.routes.map {
            var route = $0
            route.settle = nil
            return route
        }
        #expect(try rig.server.openSettlement(plain) == nil)

        var inherited = rig.server.config
        inherited.listen = .inherit
        #expect {
            try rig.server.openSettlement(inherited)
        } throws: { error in
            "\(error)".contains("no settlement socket is known: set settleListen or pass --settle-listen PATH")
        }
    }
}
