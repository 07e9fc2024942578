import ChargeGateTestSupport
import Testing
@testable import ChargeGateCore

/// The holes a hostile-input review found in the no-free-pass promise, each closed here at the
/// responder over the memory store: denials remembered per route (not per prefix), subjects
/// that look hashed, passes that charged nothing, and the snippets' own paths. (The
/// idempotency holes, keys bound to their request and repeats bounded, are in
/// ResponderIdempotencyTests.)
@Suite struct ResponderNoFreePassTests: CountingSuite {
    let fixture = CountingFixture()

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
