import ChargeGateCore
import ChargeGateRedis
import ChargeGateTestSupport
import Testing

// Pure: the routing of one command through MOVED, ASK, TRYAGAIN, CLUSTERDOWN and connection
// errors, against scripted node answers and a clock the test moves. No Redis is needed.

/// What a scripted node does with the command sent to it.
enum NodeAnswer: Sendable {
    /// It answers.
    case reply(RedisValue)
    /// It cannot be reached: nothing was written.
    case notSent(StoreError)
    /// The connection failed after the command was written.
    case lost(StoreError)
}

/// What a scripted `CLUSTER SLOTS` refresh gives.
enum RefreshAnswer: Sendable {
    /// A reply, read into the driver's map.
    case slots(RedisValue)
    /// No node answered.
    case fails(StoreError)
}

private let a = "127.0.0.1:7000"
private let b = "127.0.0.1:7001"
private let c = "127.0.0.1:7002"  // "foo" (slot 12182) lives here in `threeShards`
private let f = "127.0.0.1:7005"  // c's replica
private let foo = 12182

private let ok = NodeAnswer.reply(.status("OK"))
private func error(_ text: String) -> NodeAnswer { .reply(.error(text)) }
private func moved(_ to: String, slot: Int = foo) -> NodeAnswer { error("MOVED \(slot) \(to)") }
private func ask(_ to: String, slot: Int = foo) -> NodeAnswer { error("ASK \(slot) \(to)") }
private let tryAgain = error("TRYAGAIN Multiple keys request during rehashing of slot")
private let refused = NodeAnswer.notSent(.unavailable("connect to 127.0.0.1:7002: Connection refused"))

/// `threeShards` after a failover of c: its replica f serves 10923...16383.
private let afterFailover: RedisValue = .array([
    slotsEntry(0, 5460, slotsNode("127.0.0.1", 7000, id: nodeID("a")), slotsNode("127.0.0.1", 7003, id: nodeID("d"))),
    slotsEntry(5461, 10922, slotsNode("127.0.0.1", 7001, id: nodeID("b")), slotsNode("127.0.0.1", 7004, id: nodeID("e"))),
    slotsEntry(10923, 16383, slotsNode("127.0.0.1", 7005, id: nodeID("f"))),
])

/// A scripted command: the answers of each node in order, the refreshes in order, and the
/// expected transcript (each send costs the clock 1 ms; a wait moves it to its end).
struct RoutingCase: Sendable, CustomTestStringConvertible {
    var name: String
    var slot = foo
    var timeoutMs = 1000
    var maxRedirects = ClusterRouting.defaultMaxRedirects
    var startEmpty = false
    var answers: [String: [NodeAnswer]] = [:]
    var refreshes: [RefreshAnswer] = []
    var transcript: [String]
    /// The map's primary for the slot at the end (nil: not checked).
    var primaryAfter: String?
    var refreshDueAfter = false
    var testDescription: String { name }
}

/// A reply, short.
private func short(_ reply: RedisValue) -> String {
    switch reply {
    case .status(let text): return text
    case .error(let text): return "error \(text)"
    case .integer(let value): return String(value)
    case .string(let bytes): return String(decoding: bytes, as: UTF8.self)
    case .null: return "nil"
    case .array(let items): return "[\(items.map(short).joined(separator: ", "))]"
    }
}

@Suite struct ClusterRoutingTests {
    static let cases: [RoutingCase] = [
        RoutingCase(
            name: "the slot's primary answers",
            answers: [c: [ok]], transcript: ["send \(c)", "done OK from \(c)"], primaryAfter: c),
        RoutingCase(
            name: "MOVED to another primary: the map learns it, a refresh is due",
            answers: [c: [moved(b)], b: [ok]], transcript: ["send \(c)", "send \(b)", "done OK from \(b)"],
            primaryAfter: b, refreshDueAfter: true),
        RoutingCase(
            name: "MOVED to a promoted replica",
            answers: [c: [moved(f)], f: [.reply(.integer(3))]], transcript: ["send \(c)", "send \(f)", "done 3 from \(f)"],
            primaryAfter: f, refreshDueAfter: true),
        RoutingCase(
            name: "MOVED with an empty host: the host of the node that answered",
            answers: [c: [moved(":7001")], b: [ok]], transcript: ["send \(c)", "send \(b)", "done OK from \(b)"],
            primaryAfter: b, refreshDueAfter: true),
        RoutingCase(
            name: "ASK: ASKING then the command on the importing node, the map unchanged",
            answers: [c: [ask(a)], a: [ok]], transcript: ["send \(c)", "send \(a) asking", "done OK from \(a)"],
            primaryAfter: c),
        RoutingCase(
            name: "ASK, then the importing node sends it back (the migration was aborted)",
            answers: [c: [ask(a), ok], a: [moved(c)]],
            transcript: ["send \(c)", "send \(a) asking", "send \(c)", "done OK from \(c)"],
            primaryAfter: c, refreshDueAfter: true),
        RoutingCase(
            name: "ASK, then TRYAGAIN on the importing node: retried there, with ASKING",
            answers: [c: [ask(a)], a: [tryAgain, ok]],
            transcript: ["send \(c)", "send \(a) asking", "wait +5", "send \(a) asking", "done OK from \(a)"],
            primaryAfter: c),
        RoutingCase(
            name: "TRYAGAIN waited out, the waits doubling",
            answers: [c: [tryAgain, tryAgain, tryAgain, ok]],
            transcript: ["send \(c)", "wait +5", "send \(c)", "wait +10", "send \(c)", "wait +20", "send \(c)", "done OK from \(c)"]),
        RoutingCase(
            name: "TRYAGAIN past redisTimeoutMs: unavailable",
            timeoutMs: 20, answers: [c: [tryAgain, tryAgain, tryAgain, ok]],
            transcript: [
                "send \(c)", "wait +5", "send \(c)", "wait +10", "send \(c)",
                "failed: store unavailable: slot 12182: still TRYAGAIN (a migration in progress) after 2 retries",
            ]),
        RoutingCase(
            name: "TRYAGAIN with redisTimeoutMs 0: no wait at all",
            timeoutMs: 0, answers: [c: [tryAgain]],
            transcript: ["send \(c)", "failed: store unavailable: slot 12182: still TRYAGAIN (a migration in progress) after 0 retries"]),
        RoutingCase(
            name: "CLUSTERDOWN: unavailable, a refresh due",
            answers: [c: [error("CLUSTERDOWN The cluster is down")]],
            transcript: ["send \(c)", "failed: store unavailable: \(c) answered CLUSTERDOWN The cluster is down"],
            primaryAfter: c, refreshDueAfter: true),
        RoutingCase(
            name: "two nodes sending each other MOVED: given up after 5 redirects",
            answers: [c: [moved(b), moved(b), moved(b)], b: [moved(c), moved(c), moved(c)]],
            transcript: [
                "send \(c)", "send \(b)", "send \(c)", "send \(b)", "send \(c)", "send \(b)",
                "failed: store unavailable: slot 12182: more than 5 redirects (the last: MOVED from \(b) to \(c))",
            ],
            refreshDueAfter: true),
        RoutingCase(
            name: "ASK loop: given up after 5 redirects",
            answers: [c: [ask(a), ask(a), ask(a)], a: [ask(c), ask(c), ask(c)]],
            transcript: [
                "send \(c)", "send \(a) asking", "send \(c) asking", "send \(a) asking", "send \(c) asking", "send \(a) asking",
                "failed: store unavailable: slot 12182: more than 5 redirects (the last: ASK from \(a) to \(c))",
            ],
            primaryAfter: c),
        RoutingCase(
            name: "maxRedirects 0: the first MOVED ends it",
            maxRedirects: 0, answers: [c: [moved(b)]],
            transcript: ["send \(c)", "failed: store unavailable: slot 12182: more than 0 redirects (the last: MOVED from \(c) to \(b))"],
            primaryAfter: c),
        RoutingCase(
            name: "an unreadable MOVED: a protocol error, not a resend",
            answers: [c: [error("MOVED 12182 127.0.0.1:0")]],
            transcript: ["send \(c)", "failed: store error: \(c) answered an unreadable redirect: MOVED 12182 127.0.0.1:0"]),
        RoutingCase(
            name: "a MOVED with a '?' host: a protocol error",
            answers: [c: [error("MOVED 12182 ?:7001")]],
            transcript: ["send \(c)", "failed: store error: \(c) answered an unreadable redirect: MOVED 12182 ?:7001"]),
        RoutingCase(
            name: "a MOVED for another slot: a protocol error",
            answers: [c: [moved(b, slot: 5)]],
            transcript: ["send \(c)", "failed: store error: \(c) answered MOVED for slot 5; the command's slot is 12182"],
            primaryAfter: c),
        RoutingCase(
            name: "an error that is no redirect is the command's answer",
            answers: [c: [error("NOSCRIPT No matching script. Please use EVAL.")]],
            transcript: ["send \(c)", "done error NOSCRIPT No matching script. Please use EVAL. from \(c)"]),
        RoutingCase(
            name: "CROSSSLOT is the command's answer (a key layout bug, not a redirect)",
            answers: [c: [error("CROSSSLOT Keys in request don't hash to the same slot")]],
            transcript: ["send \(c)", "done error CROSSSLOT Keys in request don't hash to the same slot from \(c)"]),
        RoutingCase(
            name: "the primary cannot be reached: a refresh, then the new primary",
            answers: [c: [refused], f: [ok]], refreshes: [.slots(afterFailover)],
            transcript: ["send \(c)", "refresh", "send \(f)", "done OK from \(f)"], primaryAfter: f),
        RoutingCase(
            name: "the primary cannot be reached and the refreshed map still names it",
            answers: [c: [refused]], refreshes: [.slots(threeShards)],
            transcript: [
                "send \(c)", "refresh",
                "failed: store unavailable: slot 12182: no primary can be reached: \(c): connect to 127.0.0.1:7002: Connection refused",
            ]),
        RoutingCase(
            name: "the new primary cannot be reached either: no second refresh",
            answers: [c: [refused], f: [.notSent(.timeout)]], refreshes: [.slots(afterFailover)],
            transcript: [
                "send \(c)", "refresh", "send \(f)",
                "failed: store unavailable: slot 12182: no primary can be reached: \(c): connect to 127.0.0.1:7002: Connection refused; "
                    + "\(f): no answer within redisTimeoutMs",
            ]),
        RoutingCase(
            name: "the primary cannot be reached and no node gives a map",
            answers: [c: [refused]], refreshes: [.fails(.unavailable("every seed refused"))],
            transcript: [
                "send \(c)", "refresh",
                "failed: store unavailable: slot 12182: \(c): connect to 127.0.0.1:7002: Connection refused; "
                    + "the slot map cannot be read: every seed refused",
            ]),
        RoutingCase(
            name: "a timeout after the command was written: never sent again",
            answers: [c: [.lost(.timeout), ok]],
            transcript: ["send \(c)", "failed: store timed out"]),
        RoutingCase(
            name: "a connection lost after a MOVED resend: never sent again",
            answers: [c: [moved(b), ok], b: [.lost(.unavailable("read from 127.0.0.1:7001: Connection reset by peer")), ok]],
            transcript: ["send \(c)", "send \(b)", "failed: store unavailable: read from 127.0.0.1:7001: Connection reset by peer"],
            primaryAfter: b, refreshDueAfter: true),
        RoutingCase(
            name: "the importing node of an ASK cannot be reached",
            answers: [c: [ask(a)], a: [.notSent(.unavailable("connect to 127.0.0.1:7000: Connection refused"))]],
            transcript: [
                "send \(c)", "send \(a) asking",
                "failed: store unavailable: slot 12182: the importing node of an ASK cannot be reached: \(a): connect to 127.0.0.1:7000: Connection refused",
            ]),
        RoutingCase(
            name: "an empty map: read first",
            startEmpty: true, answers: [c: [ok]], refreshes: [.slots(threeShards)],
            transcript: ["refresh", "send \(c)", "done OK from \(c)"], primaryAfter: c),
        RoutingCase(
            name: "an empty map, and the slot is served by no one",
            startEmpty: true, refreshes: [.slots(.array([slotsEntry(0, 100, slotsNode("127.0.0.1", 7000))]))],
            transcript: ["refresh", "failed: store unavailable: slot 12182 is served by no primary in the slot map"]),
        RoutingCase(
            name: "an empty map, then the primary cannot be reached: no second refresh",
            startEmpty: true, answers: [c: [refused]], refreshes: [.slots(threeShards)],
            transcript: [
                "refresh", "send \(c)",
                "failed: store unavailable: slot 12182: no primary can be reached: \(c): connect to 127.0.0.1:7002: Connection refused",
            ]),
        RoutingCase(
            name: "a slot out of range",
            slot: 16384, transcript: ["failed: store error: cluster routing: slot 16384 is not within 0...16383"]),
    ]

    @Test(arguments: cases)
    func route(_ c: RoutingCase) throws {
        var map = c.startEmpty ? ClusterSlotMap() : try ClusterSlotMap(clusterSlots: threeShards, answeredBy: seedNode)
        var now: Int64 = 1_000
        var answers = c.answers
        var refreshes = c.refreshes[...]
        var machine = ClusterRouting(slot: c.slot, redisTimeoutMs: c.timeoutMs, nowMs: now, maxRedirects: c.maxRedirects)
        var transcript: [String] = []
        var step = machine.start(map: map)
        for _ in 0..<40 {
            switch step {
            case .send(let node, let asking):
                transcript.append("send \(node)\(asking ? " asking" : "")")
                now += 1
                guard let answer = answers[node.description]?.first else {
                    Issue.record("\(node) has no answer scripted: \(transcript)")
                    return
                }
                answers[node.description]?.removeFirst()
                switch answer {
                case .reply(let reply): step = machine.replied(reply, map: &map, nowMs: now)
                case .notSent(let error): step = machine.notSent(error)
                case .lost(let error): step = machine.lostAfterSending(error)
                }
            case .refresh:
                transcript.append("refresh")
                guard let refresh = refreshes.popFirst() else {
                    Issue.record("no refresh scripted: \(transcript)")
                    return
                }
                switch refresh {
                case .slots(let reply):
                    map = try ClusterSlotMap(clusterSlots: reply, answeredBy: seedNode)
                    step = machine.mapRefreshed(map)
                case .fails(let error):
                    step = machine.refreshFailed(error)
                }
            case .wait(let until):
                transcript.append("wait +\(until - now)")
                now = until
                step = machine.waited()
            case .done(let reply, let node):
                transcript.append("done \(short(reply)) from \(node)")
                return finish(c, transcript, map)
            case .failed(let error):
                transcript.append("failed: \(error)")
                return finish(c, transcript, map)
            }
        }
        Issue.record("no end after 40 steps: \(transcript)")
    }

    private func finish(_ c: RoutingCase, _ transcript: [String], _ map: ClusterSlotMap) {
        #expect(transcript == c.transcript)
        if let primary = c.primaryAfter {
            #expect(map.primary(forSlot: c.slot)?.address.description == primary)
        }
        #expect(map.refreshDue == c.refreshDueAfter)
    }

    @Test func tryAgainWaits() {
        #expect((1...7).map { ClusterRouting.tryAgainWait(number: $0) } == [5, 10, 20, 40, 80, 100, 100])
        #expect(ClusterRouting.tryAgainWait(number: 0) == 5)
        #expect(ClusterRouting.tryAgainWait(number: .max) == 100)
    }

    @Test func aDeadlineNearTheEndOfTimeSaturates() {
        let machine = ClusterRouting(slot: 1, redisTimeoutMs: 1000, nowMs: .max - 10)
        #expect(machine.deadlineMs == .max)
        let negative = ClusterRouting(slot: 1, redisTimeoutMs: -5, nowMs: 100, maxRedirects: -1)
        #expect(negative.deadlineMs == 100 && negative.maxRedirects == 0)
    }

    @Test func callsOutOfOrderEndTheCommandWithoutATrap() throws {
        let map = try ClusterSlotMap(clusterSlots: threeShards, answeredBy: seedNode)
        var copy = map
        var early = ClusterRouting(slot: foo, redisTimeoutMs: 100, nowMs: 0)
        #expect(
            early.replied(.status("OK"), map: &copy, nowMs: 0) == .failed(.protocolError("cluster routing: a reply was not expected now")))
        var twice = ClusterRouting(slot: foo, redisTimeoutMs: 100, nowMs: 0)
        #expect(twice.start(map: map) == .send(RedisURL.HostPort(host: "127.0.0.1", port: 7002), asking: false))
        #expect(twice.start(map: map) == .failed(.protocolError("cluster routing: start was not expected now")))
        #expect(twice.lostAfterSending(.timeout) == .failed(.protocolError("cluster routing: a lost connection was not expected now")))
        var noWait = ClusterRouting(slot: foo, redisTimeoutMs: 100, nowMs: 0)
        _ = noWait.start(map: map)
        #expect(noWait.waited() == .failed(.protocolError("cluster routing: the end of a wait was not expected now")))
        var noRefresh = ClusterRouting(slot: foo, redisTimeoutMs: 100, nowMs: 0)
        _ = noRefresh.start(map: map)
        #expect(noRefresh.mapRefreshed(map) == .failed(.protocolError("cluster routing: a refreshed map was not expected now")))
        #expect(noRefresh.refreshFailed(.timeout) == .failed(.protocolError("cluster routing: a failed refresh was not expected now")))
        #expect(noRefresh.notSent(.timeout) == .failed(.protocolError("cluster routing: a send failure was not expected now")))
    }

    /// Random answers from every kind: the machine always ends, never sends after a lost
    /// connection, follows at most `maxRedirects` redirects, and never waits past its deadline.
    @Test func randomAnswersKeepTheRules() throws {
        let nodes = (7000...7005).map { RedisURL.HostPort(host: "127.0.0.1", port: $0) }
        let start = try ClusterSlotMap(clusterSlots: threeShards, answeredBy: seedNode)
        for n: UInt64 in 0..<3_000 {
            var rng = SplitMix(state: n)
            var map = start
            var now: Int64 = 0
            let timeoutMs = Int(rng.next() % 200)
            var machine = ClusterRouting(slot: Int(rng.next() % 16384), redisTimeoutMs: timeoutMs, nowMs: now)
            var step = machine.start(map: map)
            var sends = 0
            var redirectsSeen = 0
            var ended = false
            for _ in 0..<300 {
                switch step {
                case .send:
                    sends += 1
                    now += Int64(rng.next() % 5)
                    let node = nodes[Int(rng.next() % 6)]
                    switch rng.next() % 10 {
                    case 0: step = machine.replied(.status("OK"), map: &map, nowMs: now)
                    case 1, 2:
                        redirectsSeen += 1
                        step = machine.replied(.error("MOVED \(machine.slot) \(node.host):\(node.port)"), map: &map, nowMs: now)
                    case 3:
                        redirectsSeen += 1
                        step = machine.replied(.error("ASK \(machine.slot) \(node.host):\(node.port)"), map: &map, nowMs: now)
                    case 4, 5: step = machine.replied(.error("TRYAGAIN x"), map: &map, nowMs: now)
                    case 6: step = machine.notSent(.unavailable("refused"))
                    case 7:
                        step = machine.lostAfterSending(.timeout)
                        #expect(step == .failed(.timeout), "seed \(n)")
                    case 8: step = machine.replied(.error(rng.next() % 2 == 0 ? "CLUSTERDOWN down" : "MOVED 1 ?:1"), map: &map, nowMs: now)
                    default: step = machine.replied(.error("ERR other"), map: &map, nowMs: now)
                    }
                case .refresh:
                    if rng.next() % 3 == 0 {
                        step = machine.refreshFailed(.timeout)
                    } else {
                        map = start
                        step = machine.mapRefreshed(map)
                    }
                case .wait(let until):
                    #expect(until <= machine.deadlineMs && until >= now, "seed \(n)")
                    now = until
                    step = machine.waited()
                case .done(let reply, _):
                    #expect(ClusterRedirect(reply, answeredBy: nodes[0]) == nil, "seed \(n)")
                    ended = true
                case .failed:
                    ended = true
                }
                if ended { break }
            }
            #expect(ended, "seed \(n): no end after 300 steps")
            #expect(machine.redirects <= machine.maxRedirects + 1 && machine.redirects <= redirectsSeen, "seed \(n)")
            #expect(
                sends <= 1 + min(machine.redirects, machine.maxRedirects) + machine.tryAgains + (machine.refreshed ? 1 : 0), "seed \(n)")
        }
    }
}
