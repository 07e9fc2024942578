import ChargeGateTestSupport
import Testing
@testable import ChargeGateCore

/// The holes a hostile-input review found in the no-free-pass promise, each closed here at the
/// responder over the memory store: idempotency keys bound to their request and repeats
/// bounded, the header ignored on routes that are not idempotent, denials remembered per route
/// (not per prefix), and subjects that look hashed.
@Suite struct ResponderNoFreePassTests {
    static let hour: Int64 = 3_600_000

    /// `/api/dc`: POST spends `small` (1 charge), GET spends `big` (995); `/api/orders` is
    /// idempotent on `small2`; `/api/plain` is not idempotent.
    static func config(maxRepeats: Int = 5, maxKeys: Int = 10_000) -> GateConfig {
        var config = GateConfig()
        config.idempotencyMaxRepeats = maxRepeats
        config.idempotencyMaxKeysPerSubject = maxKeys
        config.pools = [
            PoolConfig(id: "small", capacity: .limited(1), recharge: .every(intervalMs: 100 * hour), rechargeIntervalHours: 100),
            PoolConfig(id: "big", capacity: .limited(995), recharge: .every(intervalMs: 100 * hour), rechargeIntervalHours: 100),
            PoolConfig(
                id: "small2", capacity: .limited(3), recharge: .every(intervalMs: 100 * hour), rechargeIntervalHours: 100, scope: .subject),
            PoolConfig(id: "meter", capacity: .unlimited, recharge: .none, scope: .subject),
        ]
        config.routes = [
            RouteConfig(prefix: "/api/dc", charges: [.init(poolIndex: 0, cost: 1)], methods: ["POST"], idempotent: true),
            RouteConfig(prefix: "/api/dc", charges: [.init(poolIndex: 1, cost: 1)], methods: ["GET"], idempotent: true),
            RouteConfig(prefix: "/api/orders", charges: [.init(poolIndex: 2, cost: 1)], idempotent: true),
            RouteConfig(prefix: "/api/plain", charges: [.init(poolIndex: 2, cost: 1)]),
            RouteConfig(prefix: "/api/meter", charges: [.init(poolIndex: 3, cost: 1)], idempotent: true),
        ]
        return config
    }

    let clock = ManualClock()
    let store: MemoryStore
    let counting: CountingStore
    let responder: Responder

    init() {
        store = MemoryStore(clock: clock)
        counting = CountingStore(store)
        responder = Responder(store: counting, clock: clock, denials: DenyCache())
    }

    func status(_ response: Response) -> String? {
        response.headers.first { $0.name == "X-Charge-Status" }?.value
    }

    func ask(_ gate: Gate, _ uri: String, method: String = "POST", subject: String = "alice", key: String? = nil) -> Response {
        responder.respond(
            to: FakeRequest.auth(uri, method: method, subject: subject, headers: key.map { ["HTTP_IDEMPOTENCY_KEY": $0] } ?? [:]),
            gate: gate)
    }

    @Test func aKeyReusedForAnotherURIIs422AndNeitherChargedNorPassed() {
        let gate = Gate(config: Self.config())
        #expect(status(ask(gate, "/api/orders/1", key: "K1")) == "204")
        for i in 0..<5 {
            let reused = ask(gate, "/api/orders/other-\(i)", key: "K1")
            #expect(reused.status == 403)
            #expect(status(reused) == "422")
            #expect(reused.headers.first { $0.name == "X-Charge-Body" }?.value == #"{"error":"idempotency_key_reused"}"#)
            #expect(reused.outcome == .denied(.idempotencyKeyReused, pools: ["small2"], fromMemory: false))
        }
        // Nothing was spent by the five: two charges are left.
        #expect(status(ask(gate, "/api/orders/2")) == "204")
        #expect(status(ask(gate, "/api/orders/3")) == "204")
        #expect(status(ask(gate, "/api/orders/4")) == "429")
    }

    /// Two requests with one idempotency key on one path, the client's raw `REQUEST_URI` of
    /// each (the query as sent), and whether the second is a free repeat (else a 422).
    static let queryCases: [QueryCase] = [
        QueryCase("/api/orders/x?prompt=a", "/api/orders/x?prompt=b", repeated: false),
        QueryCase("/api/orders/x?prompt=a", "/api/orders/x?prompt=a", repeated: true),
        QueryCase("/api/orders/x", "/api/orders/x?prompt=a", repeated: false),
        QueryCase("/api/orders/x?prompt=a", "/api/orders/x", repeated: false),
        // As sent: another order or spelling of the same parameters is another request.
        QueryCase("/api/orders/x?a=1&b=2", "/api/orders/x?b=2&a=1", repeated: false),
        QueryCase("/api/orders/x?p=a", "/api/orders/x?p=%61", repeated: false),
        // A `?` with nothing after it is no query.
        QueryCase("/api/orders/x", "/api/orders/x?", repeated: true),
    ]

    @Test(arguments: queryCases)
    func aKeyReusedWithAnotherQueryIs422(_ c: QueryCase) {
        let gate = Gate(config: Self.config())
        func ask(_ requestURI: String) -> Response {
            responder.respond(
                to: FakeRequest.auth("/api/orders/x", subject: "alice", headers: ["HTTP_IDEMPOTENCY_KEY": "K", "REQUEST_URI": requestURI]),
                gate: gate)
        }
        #expect(status(ask(c.first)) == "204")  // small2: 3 -> 2
        #expect(status(ask(c.second)) == (c.repeated ? "204" : "422"))
        #expect(counting.spends == 2)
        // Nothing more was spent: two charges are left.
        #expect(status(self.ask(gate, "/api/orders/1")) == "204")
        #expect(status(self.ask(gate, "/api/orders/2")) == "204")
        #expect(status(self.ask(gate, "/api/orders/3")) == "429")
    }

    @Test func aKeyFirstUsedOnAnotherRouteWithTheSamePrefixIs422() {
        let gate = Gate(config: Self.config())
        #expect(status(ask(gate, "/api/dc", method: "GET", key: "K")) == "204")
        #expect(status(ask(gate, "/api/dc", method: "POST")) == "204")  // small: 1 -> 0
        for _ in 0..<3 { #expect(status(ask(gate, "/api/dc", method: "POST", key: "K")) == "422") }
        #expect(status(ask(gate, "/api/dc", method: "POST", key: "other")) == "429")
    }

    @Test(arguments: [1, 2, 5])
    func repeatsOfOneAllowedRequestAreBounded(maxRepeats: Int) {
        let gate = Gate(config: Self.config(maxRepeats: maxRepeats))
        #expect(status(ask(gate, "/api/orders/x", key: "K")) == "204")  // 3 -> 2
        for _ in 0..<maxRepeats { #expect(status(ask(gate, "/api/orders/x", key: "K")) == "204") }
        #expect(counting.spends == 1 + maxRepeats)
        // Past the bound every repeat is decided afresh, and charged.
        #expect(status(ask(gate, "/api/orders/x", key: "K")) == "204")  // 2 -> 1
        #expect(status(ask(gate, "/api/orders/x", key: "K")) == "204")  // 1 -> 0
        #expect(status(ask(gate, "/api/orders/x", key: "K")) == "429")
        // A key used again for another request is still refused after the repeats ran out.
        #expect(status(ask(gate, "/api/orders/y", key: "K")) == "422")
    }

    @Test func theHeaderIsIgnoredOnRoutesThatAreNotIdempotent() {
        let gate = Gate(config: Self.config())
        for _ in 0..<3 { #expect(status(ask(gate, "/api/plain/x", key: "K")) == "204") }
        #expect(status(ask(gate, "/api/plain/x", key: "K")) == "429")
        // ... and recorded as no key in the events.
        #expect(status(ask(gate, "/api/plain/y", subject: "bob", key: "K")) == "204")
    }

    @Test func recordsOneSubjectMayCreateAreBounded() {
        let gate = Gate(config: Self.config(maxKeys: 3))
        for i in 0..<10 { #expect(status(ask(gate, "/api/meter", key: "k\(i)")) == "204") }
        // The first three keys were recorded: their repeats are free. The rest were not:
        // their repeats are charged as new requests (counted by the unlimited meter).
        let before = counting.spends
        for i in 0..<10 { #expect(status(ask(gate, "/api/meter", key: "k\(i)")) == "204") }
        #expect(counting.spends == before + 10)
        let usage = responder.respond(to: FakeRequest.endpoint("usage", subject: "alice"), gate: gate)
        #expect(usage.body.contains(#""id":"meter","#))
        #expect(usage.body.contains(#""usedBalance":17"#))
        // Another subject has its own quota.
        #expect(status(ask(gate, "/api/meter", subject: "bob", key: "k0")) == "204")
        let bob = responder.respond(to: FakeRequest.endpoint("usage", subject: "bob"), gate: gate)
        #expect(bob.body.contains(#""usedBalance":1"#))
        #expect(status(ask(gate, "/api/meter", subject: "bob", key: "k0")) == "204")
        #expect(responder.respond(to: FakeRequest.endpoint("usage", subject: "bob"), gate: gate).body.contains(#""usedBalance":1"#))
    }

    @Test func aDenialIsRememberedForItsRouteNotForItsPrefix() {
        let gate = Gate(config: Self.config())
        #expect(status(ask(gate, "/api/dc", method: "POST")) == "204")
        for _ in 0..<50 { #expect(status(ask(gate, "/api/dc", method: "POST")) == "429") }
        #expect(counting.spends == 2, "the flood is answered from memory")
        for _ in 0..<20 {
            let get = ask(gate, "/api/dc", method: "GET")
            #expect(status(get) == "204")
            #expect(status(ask(gate, "/api/dc", method: "POST")) == "429")
        }
    }

    /// An admin names a subject as nginx passes it (`subject`) or by its key form
    /// (`subjectKey`), never one guessed from the other: a top-off, a usage read or an events
    /// filter for the subject literally called `h:<32 hex>` (the victim's key form) is that
    /// subject's, and the victim is reached only through `subjectKey`.
    @Test func anAdminNamingALiteralHashedSubjectNeverReachesTheVictim() {
        var config = Self.config()
        config.adminToken = "s3cret"
        config.eventsMaxLen = 100
        let gate = Gate(config: config)
        let victim = "victim key/with spaces"
        let hashed = SafeToken.key(for: victim)
        let literal = SafeToken.key(for: hashed)
        for _ in 0..<3 { #expect(status(ask(gate, "/api/plain", subject: victim)) == "204") }
        #expect(status(ask(gate, "/api/plain", subject: victim)) == "429")
        #expect(status(ask(gate, "/api/plain", subject: hashed)) == "204")  // the literal subject: its own bucket

        func admin(_ role: String, query: String = "", method: String = "GET", body: String = "") -> Response {
            responder.respond(to: FakeRequest.endpoint(role, query: query, method: method, token: "s3cret", body: body), gate: gate)
        }
        // A top-off for the literal subject fills the literal subject's bucket, not the victim's.
        let topOff = admin("topoff", method: "POST", body: #"{"poolId":"small2","subject":"\#(hashed)"}"#)
        #expect(topOff.status == 200)
        #expect(topOff.body.contains(#""subject":"\#(literal)""#))
        #expect(status(ask(gate, "/api/plain", subject: victim)) == "429")
        // Reads and filters alike.
        #expect(admin("usage", query: "subject=" + hashed).body.contains(#""subject":"\#(literal)""#))
        let events = admin("events", query: "subject=" + hashed).body
        #expect(events.contains(#""subject":"\#(literal)""#) && !events.contains(#""subject":"\#(hashed)""#))
        // The key form, named as such, is the victim.
        let named = admin("topoff", method: "POST", body: #"{"poolId":"small2","subjectKey":"\#(hashed)"}"#)
        #expect(named.status == 200)
        #expect(named.body.contains(#""subject":"\#(hashed)""#))
        #expect(status(ask(gate, "/api/plain", subject: victim)) == "204")
        #expect(admin("usage", query: "subjectKey=" + hashed).body.contains(#""subject":"\#(hashed)""#))
        let victims = admin("events", query: "subjectKey=" + hashed).body
        #expect(victims.contains(#""subject":"\#(hashed)""#) && !victims.contains(#""subject":"\#(literal)""#))
    }

    @Test func aSubjectWrittenInTheHashedFormGetsItsOwnBucket() {
        let gate = Gate(config: Self.config())
        let victim = "key with spaces"
        let hashed = SafeToken.key(for: victim)
        #expect(SafeToken.isHashed(hashed))
        for _ in 0..<3 { #expect(status(ask(gate, "/api/plain", subject: hashed)) == "204") }
        #expect(status(ask(gate, "/api/plain", subject: hashed)) == "429")
        for _ in 0..<3 { #expect(status(ask(gate, "/api/plain", subject: victim)) == "204") }
        #expect(status(ask(gate, "/api/plain", subject: victim)) == "429")
    }

    /// Only a pass on a route says `204`, the status the auth location replays for a later pass
    /// of the same request; a pass that matched no route (path or method) says `unrouted`.
    @Test(arguments: [("/nowhere", "POST"), ("/api/dcx", "POST"), ("/api/dc", "PUT")])
    func aPassThatChargedNothingIsNotA204(uri: String, method: String) {
        let gate = Gate(config: Self.config())
        let pass = ask(gate, uri, method: method)
        #expect(pass.status == 204)
        #expect(status(pass) == "unrouted")
        #expect(counting.spends == 0)
        #expect(status(ask(gate, "/api/dc")) == "204")
    }

    /// The auth location asked about its own path (`$charge_gate_uri` overwritten inside the
    /// subrequest): nothing under `/_charge_gate/` is a pass, whatever routes exist (a route
    /// for `/` included).
    @Test(arguments: ["/_charge_gate/auth", "/_charge_gate//auth", "/_charge_gate/x/../auth", "/_charge_gate/other"])
    func theSnippetsOwnPathsAreDenied(charged: String) {
        var config = Self.config()
        config.routes.append(RouteConfig(prefix: "/", charges: [.init(poolIndex: 1, cost: 1)]))
        let gate = Gate(config: config)
        let response = ask(gate, charged)
        #expect(response.status == 403)
        #expect(status(response) == "503")
        #expect(response.note?.isError == true)
        #expect(counting.spends == 0)
    }

    @Test(arguments: ["/_charge_gatex/auth", "/_charge_gate", "/api/_charge_gate/auth"])
    func pathsBesideTheReservedOnesAreRoutedAsUsual(charged: String) {
        let gate = Gate(config: Self.config())
        #expect(status(ask(gate, charged)) == "unrouted")
    }
}

/// Two requests with one idempotency key, as their raw `REQUEST_URI`s, and whether the second
/// is a free repeat of the first (else a 422).
struct QueryCase: Sendable, CustomTestStringConvertible {
    var first: String
    var second: String
    var repeated: Bool

    init(_ first: String, _ second: String, repeated: Bool) {
        self.first = first
        self.second = second
        self.repeated = repeated
    }

    var testDescription: String { "\(first) then \(second)" }
}
