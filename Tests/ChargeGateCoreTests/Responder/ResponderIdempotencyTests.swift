import ChargeGateTestSupport
import Testing
@testable import ChargeGateCore

/// Idempotency keys at the responder, over the memory store: a repeat of an allowed request is
/// allowed and not charged again, a key is bound to its request (another URI, query, method or
/// route with the same key is a 422, neither charged nor passed), repeats and the records one
/// subject may create are bounded, and the header counts only on idempotent routes. The same
/// rules over both stores: `ResponderScenario.idempotency` (ResponderScenarioTests here, and
/// on the Redis store in ChargeGateRedisTests).
@Suite struct ResponderIdempotencyTests: CountingSuite {
    let fixture = CountingFixture()

    @Test func idempotentRepeatIsNotChargedTwice() {
        // The responder suites' config: /api/generate spends the global pool of 2.
        let gate = Gate(config: ResponderFixture.config())
        let request = FakeRequest.auth("/api/generate", headers: ["HTTP_IDEMPOTENCY_KEY": "order-1"])
        for _ in 0..<5 { #expect(responder.respond(to: request, gate: gate).status == 204) }
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204)
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 403)
        #expect(responder.respond(to: request, gate: gate).status == 204)
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
