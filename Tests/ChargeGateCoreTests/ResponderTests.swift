import Testing
@testable import ChargeGateCore

/// A request made of a dictionary of params.
struct FakeRequest: RequestParams {
    var params: [String: String]
    var bodyBytes: [UInt8] = []

    func param(_ name: String) -> String? { params[name] }
    func body(limit: Int) -> [UInt8]? { bodyBytes.count > limit ? nil : bodyBytes }

    static func auth(_ uri: String, method: String = "POST", subject: String = "203.0.113.7", headers: [String: String] = [:]) -> FakeRequest {
        var params = ["CHARGE_GATE_ROLE": "auth", "CHARGE_GATE_URI": uri, "REQUEST_METHOD": method, "CHARGE_GATE_SUBJECT": subject]
        params.merge(headers) { $1 }
        return FakeRequest(params: params)
    }

    static func endpoint(_ role: String, query: String = "", method: String = "GET", token: String? = nil, subject: String = "203.0.113.7", body: String = "") -> FakeRequest {
        var params = ["CHARGE_GATE_ROLE": role, "QUERY_STRING": query, "REQUEST_METHOD": method, "CHARGE_GATE_SUBJECT": subject]
        if let token { params["HTTP_AUTHORIZATION"] = "Bearer " + token }
        return FakeRequest(params: params, bodyBytes: Array(body.utf8))
    }
}

/// A store that counts how often it is asked, over a memory store.
final class CountingStore: ChargeStore {
    let inner: MemoryStore
    var spends = 0
    init(_ inner: MemoryStore) { self.inner = inner }
    func spend(_ request: SpendRequest) throws(StoreError) -> SpendOutcome { spends += 1; return try inner.spend(request) }
    func peek(_ keys: [String]) throws(StoreError) -> (now: Int64, states: [BucketState?]) { try inner.peek(keys) }
    func topOff(_ item: SpendItem, amount: Int64?) throws(StoreError) -> (now: Int64, state: BucketState) { try inner.topOff(item, amount: amount) }
    func events(stream: String, _ query: EventQuery) throws(StoreError) -> EventPage { try inner.events(stream: stream, query) }
}

/// A store that always fails, for the fail-closed answers.
final class DownStore: ChargeStore {
    func spend(_ request: SpendRequest) throws(StoreError) -> SpendOutcome { throw .timeout }
    func peek(_ keys: [String]) throws(StoreError) -> (now: Int64, states: [BucketState?]) { throw .unavailable("down") }
    func topOff(_ item: SpendItem, amount: Int64?) throws(StoreError) -> (now: Int64, state: BucketState) { throw .timeout }
    func events(stream: String, _ query: EventQuery) throws(StoreError) -> EventPage { throw .timeout }
}

@Suite struct ResponderTests {
    static let hour: Int64 = 3_600_000

    static func config(devBypass: Bool = false) -> GateConfig {
        var config = GateConfig()
        config.devBypass = devBypass
        config.adminToken = "s3cret"
        config.pools = [
            PoolConfig(id: "generate-image", capacity: .limited(2), recharge: .every(intervalMs: 2 * hour), rechargeIntervalHours: 2, label: "Image generation", group: "AI"),
            PoolConfig(id: "api-calls", capacity: .limited(3), recharge: .every(intervalMs: 36_000), rechargeIntervalHours: 0.01, scope: .subject),
            PoolConfig(id: "credits", capacity: .limited(10), recharge: .none, scope: .subject),
            PoolConfig(id: "meter", capacity: .unlimited, recharge: .none, scope: .subject),
        ]
        config.routes = [
            RouteConfig(prefix: "/api/generate", charges: [.init(poolIndex: 0, cost: 1)], methods: ["POST"], idempotent: true),
            RouteConfig(prefix: "/api/paid", charges: [.init(poolIndex: 1, cost: 1), .init(poolIndex: 2, cost: 5), .init(poolIndex: 3, cost: 1)], idempotent: true),
            RouteConfig(prefix: "/api/read", charges: [.init(poolIndex: 1, cost: 1)], methods: ["GET"], idempotent: true),
            RouteConfig(prefix: "/api/read", charges: [.init(poolIndex: 0, cost: 1)], methods: ["PUT"]),
        ]
        return config
    }

    let clock = ManualClock()
    let gate = Gate(config: ResponderTests.config())
    let denials = DenyCache()
    var responder: Responder { Responder(store: store, clock: clock, denials: denials) }
    let store: MemoryStore

    init() { store = MemoryStore(clock: clock) }

    func header(_ response: Response, _ name: String) -> String? {
        response.headers.first { $0.name == name }?.value
    }

    @Test func allowsThenDeniesWithExactBody() {
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204)
        clock.advance(1000)
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204)
        clock.advance(500)
        let denied = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        #expect(denied.status == 403)
        #expect(header(denied, "X-Charge-Status") == "429")
        let wait = 2 * Self.hour - 1500
        #expect(header(denied, "X-Charge-Body") == #"{"error":"out_of_charge","retryAfterMs":\#(wait),"poolId":"generate-image"}"#)
        #expect(header(denied, "X-Charge-Retry-After") == String((wait + 999) / 1000))
        clock.advance(wait - 1)
        #expect(header(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate), "X-Charge-Status") == "429")
        clock.advance(1)
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204)
    }

    @Test func unmatchedMethodsAndPathsPass() {
        for _ in 0..<5 {
            #expect(responder.respond(to: FakeRequest.auth("/api/generate", method: "GET"), gate: gate).status == 204)
            #expect(responder.respond(to: FakeRequest.auth("/api/generated"), gate: gate).status == 204)
        }
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204)
    }

    @Test func anEncodedQuestionMarkInNginxsPathIsPartOfThePath() {
        for _ in 0..<5 {
            #expect(responder.respond(to: FakeRequest.auth("/api/generate?a"), gate: gate).status == 204)
            #expect(responder.respond(to: FakeRequest.auth("/api/generate#b"), gate: gate).status == 204)
        }
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204)
        #expect(responder.respond(to: FakeRequest.auth("/api/generate/?a"), gate: gate).status == 204)
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 403)
    }

    @Test func headIsChargedLikeGet() {
        for _ in 0..<3 { #expect(responder.respond(to: FakeRequest.auth("/api/read", method: "HEAD"), gate: gate).status == 204) }
        #expect(responder.respond(to: FakeRequest.auth("/api/read", method: "GET"), gate: gate).status == 403)
    }

    @Test func rawRequestURIIsNormalisedWhenNginxSendsNoURI() {
        var request = FakeRequest.auth("")
        request.params["REQUEST_URI"] = "/api/x/..//%67enerate?q=1"
        #expect(responder.respond(to: request, gate: gate).status == 204)
        #expect(responder.respond(to: request, gate: gate).status == 204)
        #expect(responder.respond(to: request, gate: gate).status == 403)
    }

    @Test func creditsAnswer402AndSubjectsDoNotShare() {
        let a = FakeRequest.auth("/api/paid", subject: "alice")
        #expect(responder.respond(to: a, gate: gate).status == 204)
        #expect(responder.respond(to: a, gate: gate).status == 204)
        let denied = responder.respond(to: a, gate: gate)
        #expect(header(denied, "X-Charge-Status") == "402")
        #expect(header(denied, "X-Charge-Body") == #"{"error":"insufficient_credits","poolId":"credits","availableBalance":0,"required":5}"#)
        #expect(header(denied, "X-Charge-Retry-After") == nil)
        #expect(responder.respond(to: FakeRequest.auth("/api/paid", subject: "bob"), gate: gate).status == 204)
    }

    @Test func idempotentRepeatIsNotChargedTwice() {
        let request = FakeRequest.auth("/api/generate", headers: ["HTTP_IDEMPOTENCY_KEY": "order-1"])
        for _ in 0..<5 { #expect(responder.respond(to: request, gate: gate).status == 204) }
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204)
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 403)
        #expect(responder.respond(to: request, gate: gate).status == 204)
    }

    @Test func devBypassNeverDenies() {
        let bypass = Gate(config: Self.config(devBypass: true))
        for _ in 0..<10 { #expect(Responder(store: DownStore(), clock: clock).respond(to: FakeRequest.auth("/api/generate"), gate: bypass).status == 204) }
    }

    @Test func storeDownFailsClosed() {
        let response = Responder(store: DownStore(), clock: clock).respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        #expect(response.status == 403)
        #expect(header(response, "X-Charge-Status") == "503")
        #expect(header(response, "X-Charge-Body") == #"{"error":"service_unavailable"}"#)
        #expect(Responder(store: DownStore(), clock: clock).respond(to: FakeRequest.endpoint("usage"), gate: gate).status == 503)
    }

    @Test(arguments: [nil, "", "bogus"] as [String?])
    func unknownRoleIsDenied(role: String?) {
        var request = FakeRequest.auth("/nothing/charged/here")
        request.params["CHARGE_GATE_ROLE"] = role
        let response = responder.respond(to: request, gate: gate)
        #expect(response.status == 403)
        #expect(header(response, "X-Charge-Status") == "503")
    }

    @Test func usageJSONIsExact() {
        let t = clock.nowMs()
        _ = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        let usage = responder.respond(to: FakeRequest.endpoint("usage"), gate: gate)
        #expect(usage.status == 200)
        #expect(header(usage, "Content-Type") == "application/json")
        #expect(usage.body == #"{"pools":[{"id":"generate-image","label":"Image generation","group":"AI","current":1,"max":2,"rechargeIntervalHours":2,"nextRechargeAt":\#(t + 2 * Self.hour),"fullAt":\#(t + 2 * Self.hour),"availableBalance":1,"usedBalance":1,"balanceLimit":2},{"id":"api-calls","label":"api-calls","group":"","current":3,"max":3,"rechargeIntervalHours":0.01,"nextRechargeAt":null,"fullAt":null,"availableBalance":3,"usedBalance":0,"balanceLimit":3,"subject":"203.0.113.7"},{"id":"credits","label":"credits","group":"","current":10,"max":10,"rechargeIntervalHours":null,"nextRechargeAt":null,"fullAt":null,"availableBalance":10,"usedBalance":0,"balanceLimit":10,"subject":"203.0.113.7"},{"id":"meter","label":"meter","group":"","current":null,"max":null,"rechargeIntervalHours":null,"nextRechargeAt":null,"fullAt":null,"availableBalance":null,"usedBalance":0,"balanceLimit":null,"subject":"203.0.113.7"}]}"#)
    }

    @Test func usageForAnotherSubjectNeedsTheToken() {
        #expect(responder.respond(to: FakeRequest.endpoint("usage", query: "subject=bob"), gate: gate).status == 401)
        #expect(responder.respond(to: FakeRequest.endpoint("usage", query: "subject=bob", token: "wrong"), gate: gate).status == 401)
        let ok = responder.respond(to: FakeRequest.endpoint("usage", query: "subject=bob", token: "s3cret"), gate: gate)
        #expect(ok.status == 200)
        #expect(ok.body.contains(#""subject":"bob""#))
    }

    @Test func checkAnswers() {
        let ok = responder.respond(to: FakeRequest.endpoint("check", query: "pools=generate-image,api-calls"), gate: gate)
        #expect(ok.body == #"{"ok":true,"pools":[{"id":"generate-image","available":true},{"id":"api-calls","available":true}]}"#)
        _ = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        _ = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        let empty = responder.respond(to: FakeRequest.endpoint("check", query: "pools=generate-image,meter"), gate: gate)
        #expect(empty.body == #"{"ok":false,"pools":[{"id":"generate-image","available":false},{"id":"meter","available":true}]}"#)
        for query in ["", "pools=", "pools=,,", "other=x"] {
            let bad = responder.respond(to: FakeRequest.endpoint("check", query: query), gate: gate)
            #expect(bad.status == 400)
            #expect(bad.body == #"{"error":"bad_request","message":"pools: give one or more pool ids, as ?pools=a,b"}"#)
        }
        let unknown = responder.respond(to: FakeRequest.endpoint("check", query: "pools=api-calls,nope%22"), gate: gate)
        #expect(unknown.status == 404)
        #expect(unknown.body == #"{"error":"unknown_pool","poolId":"nope\""}"#)
    }

    @Test func usageEndpointsNeverConsume() {
        for _ in 0..<10 {
            _ = responder.respond(to: FakeRequest.endpoint("usage"), gate: gate)
            _ = responder.respond(to: FakeRequest.endpoint("check", query: "pools=generate-image"), gate: gate)
        }
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204)
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204)
    }

    @Test func topOffWithAndWithoutAmount() {
        for _ in 0..<2 { _ = responder.respond(to: FakeRequest.auth("/api/paid", subject: "alice"), gate: gate) }
        #expect(responder.respond(to: FakeRequest.endpoint("topoff", method: "POST", body: #"{"poolId":"credits","subject":"alice"}"#), gate: gate).status == 401)
        let noToken = Gate(config: { var c = Self.config(); c.adminToken = nil; return c }())
        #expect(responder.respond(to: FakeRequest.endpoint("topoff", method: "POST", token: "s3cret", body: "{}"), gate: noToken).status == 403)
        let added = responder.respond(to: FakeRequest.endpoint("topoff", method: "POST", token: "s3cret", body: #"{"poolId":"credits","subject":"alice","amount":3}"#), gate: gate)
        #expect(added.status == 200)
        #expect(added.body.contains(#""current":3,"#))
        let filled = responder.respond(to: FakeRequest.endpoint("topoff", method: "POST", token: "s3cret", body: #"{"poolId":"credits","subject":"alice"}"#), gate: gate)
        #expect(filled.body.contains(#""current":10,"#))
        let cases: [(String, Int)] = [
            ("not json", 400), (#"{"poolId":"nope"}"#, 404), (#"{"poolId":"meter","subject":"a"}"#, 400),
            (#"{"poolId":"credits"}"#, 400), (#"{"poolId":"credits","subject":"a","amount":0}"#, 400),
            (#"{"poolId":"credits","subject":"a","amount":2.5}"#, 400), (#"{"poolId":"generate-image","subject":"a"}"#, 400),
        ]
        for (body, status) in cases {
            #expect(responder.respond(to: FakeRequest.endpoint("topoff", method: "POST", token: "s3cret", body: body), gate: gate).status == status, "\(body)")
        }
        #expect(responder.respond(to: FakeRequest.endpoint("topoff", method: "GET", token: "s3cret"), gate: gate).status == 405)
    }

    @Test func eventsRecordEverySpendAndPage() {
        var config = Self.config()
        config.eventsMaxLen = 100
        let gate = Gate(config: config)
        for i in 0..<3 {
            _ = responder.respond(to: FakeRequest.auth("/api/paid", subject: "s\(i)", headers: ["HTTP_IDEMPOTENCY_KEY": "k\(i)"]), gate: gate)
            _ = responder.respond(to: FakeRequest.auth("/api/paid", subject: "s\(i)", headers: ["HTTP_IDEMPOTENCY_KEY": "k\(i)"]), gate: gate)
            clock.advance(1)
        }
        let page = responder.respond(to: FakeRequest.endpoint("events", query: "pool=credits&limit=2", token: "s3cret"), gate: gate)
        #expect(page.status == 200)
        let t = clock.nowMs() - 3
        #expect(page.body == #"{"events":[{"id":"\#(t)-1","time":\#(t),"pool":"credits","subject":"s0","amount":5,"route":"/api/paid","method":"POST","uri":"/api/paid","idempotencyKey":"k0"},{"id":"\#(t + 1)-1","time":\#(t + 1),"pool":"credits","subject":"s1","amount":5,"route":"/api/paid","method":"POST","uri":"/api/paid","idempotencyKey":"k1"}],"next":"\#(t + 1)-1"}"#)
        let rest = responder.respond(to: FakeRequest.endpoint("events", query: "pool=credits&after=\(t + 1)-1", token: "s3cret"), gate: gate)
        #expect(rest.body.hasSuffix(#""next":null}"#))
        #expect(rest.body.contains(#""subject":"s2""#))
        #expect(responder.respond(to: FakeRequest.endpoint("events", query: "limit=0", token: "s3cret"), gate: gate).status == 400)
        #expect(responder.respond(to: FakeRequest.endpoint("events"), gate: gate).status == 401)
    }

    // MARK: The deny cache

    @Test func aFloodOnAnEmptyPoolIsAnsweredFromMemory() {
        let counting = CountingStore(store)
        let responder = Responder(store: counting, clock: clock, denials: DenyCache(maxAgeMs: 1000))
        for _ in 0..<2 { #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204) }
        let first = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        #expect(header(first, "X-Charge-Status") == "429")
        #expect(counting.spends == 3)
        clock.advance(400)
        for _ in 0..<1000 {
            let denied = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
            #expect(header(denied, "X-Charge-Status") == "429")
        }
        #expect(counting.spends == 3)
        let cached = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        #expect(header(cached, "X-Charge-Body") == #"{"error":"out_of_charge","retryAfterMs":\#(2 * Self.hour - 400),"poolId":"generate-image"}"#)
        #expect(cached.note == nil)
        // Trusted for at most a second: then the store is asked again, and its denial's log
        // line accounts for the ones answered from memory.
        clock.advance(600)
        let relearned = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        #expect(counting.spends == 4)
        #expect(relearned.note?.field("deniedFromMemoryBefore") == "1001")
        #expect(relearned.note?.message == "denied out_of_charge")
        #expect(relearned.note?.field("pool") == "generate-image")
        #expect(relearned.note?.field("subject") == "203.0.113.7")
    }

    @Test func theDenyCacheNeverAllowsAndEndsWhenChargesAreBack() {
        var config = Self.config()
        config.pools[0] = PoolConfig(id: "generate-image", capacity: .limited(1), recharge: .every(intervalMs: 300), rechargeIntervalHours: 300.0 / 3_600_000)
        let gate = Gate(config: config)
        let counting = CountingStore(store)
        let responder = Responder(store: counting, clock: clock, denials: DenyCache(maxAgeMs: 10_000))
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204)
        #expect(header(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate), "X-Charge-Status") == "429")
        clock.advance(299)
        #expect(header(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate), "X-Charge-Status") == "429")
        #expect(counting.spends == 2)
        clock.advance(1)
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204)
        #expect(counting.spends == 3)
    }

    @Test func idempotentRetriesAndOtherSubjectsAlwaysAskTheStore() {
        let counting = CountingStore(store)
        let responder = Responder(store: counting, clock: clock, denials: DenyCache())
        let keyed = FakeRequest.auth("/api/read", method: "GET", subject: "alice", headers: ["HTTP_IDEMPOTENCY_KEY": "r1"])
        #expect(responder.respond(to: keyed, gate: gate).status == 204)
        for _ in 0..<2 { #expect(responder.respond(to: FakeRequest.auth("/api/read", method: "GET", subject: "alice"), gate: gate).status == 204) }
        #expect(responder.respond(to: FakeRequest.auth("/api/read", method: "GET", subject: "alice"), gate: gate).status == 403)
        let asked = counting.spends
        // The repeat of an allowed request is still allowed: the cache is not consulted.
        #expect(responder.respond(to: keyed, gate: gate).status == 204)
        #expect(counting.spends == asked + 1)
        // Another subject's bucket is its own: not denied by alice's entry.
        #expect(responder.respond(to: FakeRequest.auth("/api/read", method: "GET", subject: "bob"), gate: gate).status == 204)
    }

    @Test func aReloadForgetsCachedDenials() {
        let counting = CountingStore(store)
        let responder = Responder(store: counting, clock: clock, denials: DenyCache())
        for _ in 0..<3 { _ = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate) }
        let reloaded = Gate(config: Self.config())
        _ = responder.respond(to: FakeRequest.auth("/api/generate"), gate: reloaded)
        #expect(counting.spends == 4)
    }

    @Test func aTopOffClearsEveryWorkersCachedDenials() {
        let epoch = DenyEpoch()
        let counting = CountingStore(store)
        let worker1 = Responder(store: counting, clock: clock, denials: DenyCache(epoch: epoch))
        let worker2 = Responder(store: counting, clock: clock, denials: DenyCache(epoch: epoch))
        for _ in 0..<3 { _ = worker1.respond(to: FakeRequest.auth("/api/generate"), gate: gate) }
        #expect(worker1.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 403)
        let topped = worker2.respond(to: FakeRequest.endpoint("topoff", method: "POST", token: "s3cret", body: #"{"poolId":"generate-image"}"#), gate: gate)
        #expect(topped.status == 200)
        #expect(worker1.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204)
    }

    @Test func routesWithCreditsAlwaysAskTheStoreSoA402CanWin() {
        // /api/paid spends api-calls (3 per 36 s, per subject) and credits (10, cost 5).
        let counting = CountingStore(store)
        let responder = Responder(store: counting, clock: clock, denials: DenyCache())
        let paid = FakeRequest.auth("/api/paid", subject: "carol")
        let read = FakeRequest.auth("/api/read", method: "GET", subject: "carol")
        #expect(responder.respond(to: paid, gate: gate).status == 204)
        for _ in 0..<2 { #expect(responder.respond(to: read, gate: gate).status == 204) }
        #expect(header(responder.respond(to: paid, gate: gate), "X-Charge-Status") == "429")
        // Credits drop from 5 to 0 by a spend elsewhere: the next answer must be the 402.
        _ = try? store.topOff(gate.item(pool: 2, cost: 0, subject: "carol"), amount: nil)
        let asked = counting.spends
        #expect(header(responder.respond(to: paid, gate: gate), "X-Charge-Status") == "429")
        #expect(counting.spends == asked + 1)
    }

    // MARK: RateLimit headers

    @Test func allowedAnswersCarryTheRateLimitState() {
        let first = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        #expect(header(first, "X-Charge-RateLimit-Policy") == #""generate-image";q=2;w=14400"#)
        #expect(header(first, "X-Charge-RateLimit") == #""generate-image";r=1;t=7200"#)
        clock.advance(1500)
        let second = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        // The first charge comes back 2 h after the first spend: 7200 s - 1.5 s, rounded up.
        #expect(header(second, "X-Charge-RateLimit") == #""generate-image";r=0;t=7199"#)
        let denied = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        #expect(header(denied, "X-Charge-RateLimit-Policy") == #""generate-image";q=2;w=14400"#)
        #expect(header(denied, "X-Charge-RateLimit") == #""generate-image";r=0;t=7199"#)
    }

    @Test func creditsHaveNoWindowAndMetersAreNotListed() {
        let paid = FakeRequest.auth("/api/paid", subject: "dave")
        let allowed = responder.respond(to: paid, gate: gate)
        #expect(header(allowed, "X-Charge-RateLimit-Policy") == #""api-calls";q=3;w=108, "credits";q=10"#)
        #expect(header(allowed, "X-Charge-RateLimit") == #""api-calls";r=2;t=36, "credits";r=5"#)
        _ = responder.respond(to: paid, gate: gate)
        let denied = responder.respond(to: paid, gate: gate)
        #expect(header(denied, "X-Charge-Status") == "402")
        #expect(header(denied, "X-Charge-RateLimit") == #""credits";r=0"#)
    }
}
