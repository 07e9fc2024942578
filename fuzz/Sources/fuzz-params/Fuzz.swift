// Responder.respond on FastCGI requests built from the input, over a MemoryStore and a fixed
// config.
//
// Input: lines. `NAME=VALUE` sets a param of the current request (`\n` and `\r` written as
// backslash-n and backslash-r in VALUE); `<TEXT` appends TEXT and a newline to its body; `~N`
// moves the clock N ms on; an empty line or `---` sends the current request and starts the next.
// Up to 64 requests per input, each checked on its own and against the store's state, and the
// auth answers against a model of the idempotency records (by subject and key: the request
// that made each (route, method, URI and raw query), its free repeats, its expiry; records per subject per TTL window).
import ChargeGateCore
import Foundation
import FuzzSupport
import Synchronization

final class FuzzClock: GateClock, Sendable {
    let now = Atomic<Int64>(1_700_000_000_000)
    func nowMs() -> Int64 { now.load(ordering: .relaxed) }
    func advance(_ ms: Int64) { now.add(ms, ordering: .relaxed) }
}

struct Request: RequestParams {
    var params: [String: String] = [:]
    var bodyBytes: [UInt8] = []
    func param(_ name: String) -> String? { params[name] }
    func body(limit: Int) -> [UInt8]? { bodyBytes.count > limit ? nil : bodyBytes }
}

let hour: Int64 = 3_600_000
let token = "s3cret"
let gate: Gate = {
    var config = GateConfig()
    config.adminToken = token
    config.eventsMaxLen = 50
    config.idempotencyTtlSeconds = 60
    // Small, so that inputs reach the bounds: a third repeat is charged, a fourth key of one
    // subject within a minute is not recorded.
    config.idempotencyMaxRepeats = 2
    config.idempotencyMaxKeysPerSubject = 3
    config.pools = [
        PoolConfig(
            id: "generate-image", capacity: .limited(3), recharge: .every(intervalMs: 2 * hour), rechargeIntervalHours: 2,
            label: "Image <generation>", group: "AI"),
        PoolConfig(
            id: "api-calls", capacity: .limited(4), recharge: .every(intervalMs: 36_000), rechargeIntervalHours: 0.01, scope: .subject),
        PoolConfig(id: "credits", capacity: .limited(10), recharge: .none, scope: .subject),
        PoolConfig(id: "meter", capacity: .unlimited, recharge: .none, scope: .subject),
        PoolConfig(id: "global-credits", capacity: .limited(7), recharge: .none),
        PoolConfig(id: "fast", capacity: .limited(2), recharge: .every(intervalMs: 1000), rechargeIntervalHours: 1.0 / 3600),
    ]
    config.routes = [
        // Idempotent: POST on /api/generate, anything on /api/generate/hd, /api/paid and
        // /api/meter (one key used on two of them is a reuse); GET/PUT on /api/generate (same
        // prefix) and the rest are not: their Idempotency-Key header is ignored.
        RouteConfig(prefix: "/api/generate", charges: [.init(poolIndex: 0, cost: 1)], methods: ["POST"], idempotent: true),
        RouteConfig(
            prefix: "/api/generate", charges: [.init(poolIndex: 0, cost: 2), .init(poolIndex: 5, cost: 1)], methods: ["GET", "PUT"]),
        RouteConfig(prefix: "/api/generate/hd", charges: [.init(poolIndex: 0, cost: 3)], idempotent: true),
        RouteConfig(
            prefix: "/api/paid", charges: [.init(poolIndex: 1, cost: 1), .init(poolIndex: 2, cost: 5), .init(poolIndex: 3, cost: 1)],
            idempotent: true),
        RouteConfig(prefix: "/api/read", charges: [.init(poolIndex: 1, cost: 1)], methods: ["GET"]),
        RouteConfig(prefix: "/api/buy", charges: [.init(poolIndex: 4, cost: 2), .init(poolIndex: 3, cost: 3)]),
        RouteConfig(prefix: "/caf\u{e9}", charges: [.init(poolIndex: 5, cost: 1)]),
        // Never denied (an unlimited pool): inputs reach idempotencyMaxKeysPerSubject quickly.
        RouteConfig(prefix: "/api/meter", charges: [.init(poolIndex: 3, cost: 1)], idempotent: true),
        RouteConfig(prefix: "/", charges: [.init(poolIndex: 5, cost: 2)], methods: ["DELETE"]),
        // Settled: an allow records a hold under CHARGE_GATE_REQUEST_ID, which the settle role
        // settles (the app's amount on credits, per call on api-calls and the meter); one nginx
        // settles, which the app may settle first.
        RouteConfig(
            prefix: "/api/settled", charges: [.init(poolIndex: 2, cost: 4), .init(poolIndex: 1, cost: 1), .init(poolIndex: 3, cost: 4)],
            settle: SettlePolicy(amount: .header, by: .app), cost: 4),
        RouteConfig(prefix: "/api/settled/nginx", charges: [.init(poolIndex: 4, cost: 2)], settle: SettlePolicy(), cost: 2),
    ]
    return Gate(config: config)
}()
let knownStatuses: Set<Int> = [200, 204, 400, 401, 403, 404, 405, 409, 413, 503]

/// The wire names, spelled out: what nginx's snippets send and read back (a change of them is
/// a change of the protocol, which the harness should notice).
enum Param {
    static let role = "CHARGE_GATE_ROLE"
    static let uri = "CHARGE_GATE_URI"
    static let subject = "CHARGE_GATE_SUBJECT"
}
enum ChargeHeader {
    static let status = "X-Charge-Status"
    static let body = "X-Charge-Body"
    static let retryAfter = "X-Charge-Retry-After"
}

func header(_ response: Response, _ name: String) -> String? {
    response.headers.first { $0.name == name }?.value
}

func parseJSON(_ text: String, _ what: String) -> [String: Any] {
    guard let data = text.data(using: .utf8), let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
        invariantFailed("JSON bodies parse as an object", "\(what): \(show(text))")
    }
    return object
}

/// The charged path the way nginx sees it (byte-wise), for the no-free-pass check.
func referencePath(_ request: Request) -> String {
    if let uri = request.params[Param.uri], !uri.isEmpty {
        return String(decoding: Reference.normalize(uri), as: UTF8.self)
    }
    let raw = Array((request.params["REQUEST_URI"] ?? "/").utf8)
    let cut = raw.prefix { $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") }
    let decoded = String(decoding: Reference.percentDecode(String(decoding: cut, as: UTF8.self)), as: UTF8.self)
    return String(decoding: Reference.normalize(decoded), as: UTF8.self)
}

/// Every bucket state a request could touch: global pools and the subject's pools.
func snapshot(_ store: MemoryStore, subject: String) -> (now: Int64, states: [BucketState?]) {
    do {
        return try store.peek(gate.config.pools.indices.map { gate.key(pool: $0, subject: subject) })
    } catch {
        invariantFailed("the memory store never fails", "\(error)")
    }
}

func level(_ state: BucketState?, pool: Int, now: Int64) -> Int64 {
    let config = gate.config.pools[pool]
    guard let max = config.maxCharges else { return state?.current ?? 0 }
    return Bucket.level(state, max: max, intervalMs: config.intervalMs, now: now).available
}

/// The query of the client's request as sent: the bytes of `REQUEST_URI` after its first `?`
/// (empty when none), byte-wise.
func referenceQuery(_ request: Request) -> String {
    let raw = Array((request.params["REQUEST_URI"] ?? "").utf8)
    guard let q = raw.firstIndex(of: UInt8(ascii: "?")) else { return "" }
    return String(decoding: raw[(q + 1)...], as: UTF8.self)
}

/// What an idempotency record stands for in the model: the request that created it.
struct ModelRequest: Equatable {
    var route: Int
    var method: String
    var uri: String
    var query: String

    /// The same request: route, method, URI and raw query byte for byte (fuzz/README.md,
    /// Findings, 4: the fingerprint once joined method and URI with a newline, so a method
    /// holding one could pass as another request; its fields are length-prefixed now. The query
    /// once did not count: `?prompt=b` with the key of `?prompt=a` was a free repeat).
    func same(as other: ModelRequest) -> Bool {
        route == other.route && sameBytes(method, other.method) && sameBytes(uri, other.uri) && sameBytes(query, other.query)
    }
}

/// The model of one idempotency record: the allowed request that made it, its free repeats
/// so far, its expiry.
struct ModelRecord {
    var request: ModelRequest
    var repeats: Int64
    var expiresAt: Int64
}

final class Session {
    let clock = FuzzClock()
    let store: MemoryStore
    let responder: Responder
    /// Idempotency records, by (subject in key form, client key as sent).
    var records: [String: ModelRecord] = [:]
    /// Records created per subject in the current window: (count, window end).
    var quota: [String: (count: Int64, expiresAt: Int64)] = [:]
    /// Per request id: allows on a settled route that spent (each records at most one hold),
    /// and settlements the settle role answered 200.
    var holdsMade: [String: Int] = [:]
    var holdsSettled: [String: Int] = [:]

    init() {
        store = MemoryStore(clock: clock)
        responder = Responder(store: store, clock: clock, denials: DenyCache())
    }

    func send(_ request: Request) {
        let role = request.params[Param.role]
        let subject = SafeToken.key(for: request.params[Param.subject] ?? "")
        let before = snapshot(store, subject: subject)
        let response = responder.respond(to: request, gate: gate)
        let after = snapshot(store, subject: subject)
        require(before.now == after.now, "the clock stands still during a request")
        let now = after.now

        // Every answer: a known status, header fields that cannot split the header block,
        // a JSON body that parses, and a serialisation that works.
        require(knownStatuses.contains(response.status), "a known status", "\(response.status)")
        for (name, value) in response.headers {
            require(
                !name.isEmpty && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: ":") }, "header names are tokens",
                show(name))
            require(
                value.utf8.allSatisfy { $0 >= 0x20 && $0 != 0x7f }, "header values hold no control characters (no header injection)",
                "\(name): \(show(value))")
        }
        if header(response, "Content-Type") == "application/json" { _ = parseJSON(response.body, "body of a \(response.status)") }
        _ = response.serialized()

        let changed = gate.config.pools.indices.filter {
            level(before.states[$0], pool: $0, now: now) != level(after.states[$0], pool: $0, now: now)
        }

        switch role {
        case "auth":
            checkAuth(request, response, subject: subject, before: before.states, after: after.states, now: now)
        case "usage", "check", "events":
            require(changed.isEmpty, "usage, check and events never consume", "role \(role!), pools \(changed)")
            if response.status == 200,
                role == "events" || (role == "usage" && QueryString.value(of: "subject", in: request.params["QUERY_STRING"] ?? "") != nil)
            {
                require(
                    request.params["HTTP_AUTHORIZATION"].map { sameBytes($0, "Bearer " + token) } ?? false, "admin answers need the token")
            }
        case "topoff":
            if response.status == 200 {
                require(request.params["HTTP_AUTHORIZATION"].map { sameBytes($0, "Bearer " + token) } ?? false, "a top-off needs the token")
                _ = parseJSON(response.body, "top-off answer")
            } else {
                require(changed.isEmpty, "a refused top-off changes nothing", "status \(response.status), pools \(changed)")
            }
        case "plan":
            // The config has no plans: every name is unknown, so nothing is ever stored; GET and
            // DELETE answer the default (null) with the token, and nothing is ever spent.
            require(changed.isEmpty, "the plan endpoint never consumes", "pools \(changed)")
            if response.status == 200 {
                require(
                    request.params["HTTP_AUTHORIZATION"].map { sameBytes($0, "Bearer " + token) } ?? false, "plan answers need the token")
                require(request.params["REQUEST_METHOD"] != "PUT", "no plan is stored without plans")
                let answer = parseJSON(response.body, "plan answer")
                require(answer["plan"] is NSNull && answer["source"] as? String == "default", "without plans the plan is the default")
            }
            require(
                (try? store.plan(at: gate.keys.plan(subject: SafeToken.key(for: "x")))) == nil,
                "no plan record is ever written without plans")
        case "settle":
            // The app's settlement: only with the token; a refused one changes nothing; a hold
            // settles at most once, and only a hold an allow made (per id: no more 200s than
            // allows that spent on a settled route with that id).
            if response.status == 200 {
                require(
                    request.params["HTTP_AUTHORIZATION"].map { sameBytes($0, "Bearer " + token) } ?? false, "a settlement needs the token")
                let answer = parseJSON(response.body, "settle answer")
                let hold = answer["hold"] as? String ?? ""
                holdsSettled[hold, default: 0] += 1
                require(
                    holdsSettled[hold, default: 0] <= holdsMade[hold, default: 0],
                    "a hold settles at most once, and only one an allow made",
                    "hold \(show(hold)): \(holdsSettled[hold, default: 0]) settled, \(holdsMade[hold, default: 0]) made")
                require(answer["pools"] is [Any], "a settlement answers its pools")
            } else {
                require(changed.isEmpty, "a refused settlement changes nothing", "status \(response.status), pools \(changed)")
                require(
                    [400, 401, 404, 405, 409, 413].contains(response.status), "a settlement is refused with 400/401/404/405/409/413",
                    "\(response.status)")
            }
        case "metrics":
            // The Prometheus text where a responder has it, else 404 (or, in a build without
            // this role, the unknown-role 503): never a spend.
            require(changed.isEmpty, "metrics never consumes", "pools \(changed)")
        default:
            require(
                response.status == 403 && header(response, ChargeHeader.status) == "503",
                "an unknown role is denied with 503", "role \(role.map(show) ?? "nil"): \(response.status)")
            require(changed.isEmpty, "an unknown role consumes nothing")
        }
    }

    func checkAuth(_ request: Request, _ response: Response, subject: String, before: [BucketState?], after: [BucketState?], now: Int64) {
        let status = header(response, ChargeHeader.status)
        switch response.status {
        case 204:
            require(
                status == "204" || status == "unrouted", "an allow carries X-Charge-Status: 204 (or unrouted)", String(describing: status))
        case 403:
            require(
                ["429", "402", "422", "503"].contains(status ?? ""), "a denial carries X-Charge-Status 429, 402, 422 or 503",
                String(describing: status))
            let body = parseJSON(header(response, ChargeHeader.body) ?? "", "X-Charge-Body")
            let error = body["error"] as? String
            switch status {
            case "429":
                require(error == "out_of_charge", "a 429 says out_of_charge")
                let wait = (body["retryAfterMs"] as? NSNumber)?.int64Value ?? -1
                require(wait >= 1, "a 429 has retryAfterMs >= 1", "\(wait)")
                require(
                    header(response, ChargeHeader.retryAfter) == String((wait + 999) / 1000),
                    "X-Charge-Retry-After is retryAfterMs in whole seconds, rounded up")
            case "402":
                require(error == "insufficient_credits", "a 402 says insufficient_credits")
            case "422":
                require(error == "idempotency_key_reused", "a 422 says idempotency_key_reused")
            default:
                require(error == "service_unavailable", "a 503 says service_unavailable")
            }
        default:
            invariantFailed("the auth answer is 204 or 403", "\(response.status)")
        }

        // No free pass: the route nginx's path falls under (a byte-wise linear scan) must have
        // been charged, unless this was a repeat of an allowed idempotent request (same subject,
        // key, route, method, URI and raw query) within idempotencyMaxRepeats and the TTL.
        var method = request.params["REQUEST_METHOD"] ?? ""
        if method == "HEAD" { method = "GET" }
        let path = referencePath(request)
        let changed = gate.config.pools.indices.filter { level(before[$0], pool: $0, now: now) != level(after[$0], pool: $0, now: now) }
        // The snippets' own locations (/_charge_gate/...) are never a charged path: denied 503,
        // whatever routes exist (the subrequest overwrote the protected request's path).
        if path.utf8.starts(with: "/_charge_gate/".utf8) {
            require(
                response.status == 403 && status == "503" && changed.isEmpty, "a path under /_charge_gate/ is denied 503, nothing spent",
                "path \(show(path)): status \(response.status) \(status ?? "nil"), pools \(changed)")
            return
        }
        guard let routeIndex = Reference.match(gate.config.routes, path: path, method: method) else {
            require(
                response.status == 204 && status == "unrouted" && changed.isEmpty,
                "an unrouted request passes as unrouted and consumes nothing",
                "path \(show(path)) \(method): status \(response.status) \(status ?? "nil"), pools \(changed)")
            return
        }
        require(response.status != 204 || status == "204", "a routed allow carries X-Charge-Status: 204", "\(status ?? "nil")")
        let route = gate.config.routes[routeIndex]
        let spent = !changed.isEmpty

        // The idempotency model: on an idempotent route, a non-empty key header names the record
        // of (subject, key), whatever the route; elsewhere the header is ignored.
        let clientKey = request.params[gate.idempotencyParam].flatMap { $0.isEmpty ? nil : $0 }
        let config = gate.config
        let ttl = Int64(config.idempotencyTtlSeconds) * 1000
        let this = ModelRequest(
            route: routeIndex, method: request.params["REQUEST_METHOD"] ?? "", uri: path, query: referenceQuery(request))
        var recordID: String?
        var live: ModelRecord?
        if route.idempotent, let clientKey {
            let id = subject + "\n" + clientKey
            recordID = id
            live = records[id].flatMap { $0.expiresAt > now ? $0 : nil }
        }
        let detail =
            "path \(show(path)) \(show(this.method)) route \(routeIndex) \(route.prefix) subject \(show(subject)) key \(show(clientKey ?? "-"))"
        if let live, !live.request.same(as: this) {
            // The key was first used for another request: 422, nothing spent.
            require(
                response.status == 403 && status == "422",
                "a key reused for another request (route, method, URI, query) is refused with 422",
                "\(detail): status \(response.status) \(status ?? "nil"), first used for route \(live.request.route) \(show(live.request.method)) \(show(live.request.uri)) query \(show(live.request.query)), pools \(changed)"
            )
            require(!spent, "a 422 spends nothing", "\(detail): pools \(changed)")
            let body = parseJSON(header(response, ChargeHeader.body) ?? "", "X-Charge-Body of a 422")
            require(body["error"] as? String == "idempotency_key_reused", "a 422 says idempotency_key_reused")
            return
        }
        require(status != "422", "a 422 only for a live key first used for another request", "\(detail): \(response.status)")
        if let recordID, let live, live.repeats < config.idempotencyMaxRepeats {
            // A repeat of the allowed request, within the bound: allowed free.
            require(
                response.status == 204 && !spent,
                "a repeat of an allowed idempotent request (within idempotencyMaxRepeats) is allowed free",
                "\(detail): status \(response.status) \(status ?? "nil"), repeats \(live.repeats), pools \(changed)")
            records[recordID]?.repeats += 1
            return
        }
        guard response.status == 204 else {
            require(!spent, "a denial consumes nothing (all pools or none)", "\(detail): pools \(changed)")
            return
        }
        // No free pass: anything else allowed (no key, a route that is not idempotent, a first
        // use, repeats used up, an expired record) spent its route's cost from each of its pools.
        require(
            spent,
            """
            no free pass: an allowed request that is not a repeat within the bound (same subject, key, route, method, URI, \
            query) spends
            """,
            "\(detail): record \(live.map { "repeats \($0.repeats) of route \($0.request.route) \(show($0.request.method)) \(show($0.request.uri))" } ?? "none")"
        )
        for charge in route.charges {
            let pool = charge.poolIndex
            let was = level(before[pool], pool: pool, now: now)
            let left = level(after[pool], pool: pool, now: now)
            let spent = gate.config.pools[pool].maxCharges == nil ? left - was : was - left
            require(
                spent == charge.cost, "no free pass: an allowed request spends its route's cost from every pool of the route",
                "path \(show(path)) \(method) route \(route.prefix) pool \(gate.config.pools[pool].id): \(was) -> \(left), cost \(charge.cost)"
            )
        }
        let routePools = Set(route.charges.map(\.poolIndex))
        require(changed.allSatisfy(routePools.contains), "an allowed request spends only from its route's pools", "\(changed)")
        if route.settle != nil, let id = request.params["CHARGE_GATE_REQUEST_ID"], Gate.isHoldID(id) {
            holdsMade[id, default: 0] += 1
        }
        if let recordID, live == nil {
            // A first use: recorded, unless the subject made idempotencyMaxKeysPerSubject records
            // in the window already (then its retries are charged again).
            var window = quota[subject].flatMap { $0.expiresAt > now ? $0 : nil } ?? (count: 0, expiresAt: now + ttl)
            window.count += 1
            quota[subject] = window
            if window.count <= config.idempotencyMaxKeysPerSubject {
                records[recordID] = ModelRecord(request: this, repeats: 0, expiresAt: now + ttl)
            }
        }
    }
}

func unescape(_ value: Substring) -> String {
    value.replacingOccurrences(of: "\\n", with: "\n").replacingOccurrences(of: "\\r", with: "\r")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzOne(data, size) { bytes in
        let session = Session()
        var request = Request()
        var pending = false
        var sent = 0
        func flush() {
            if pending && sent < 64 { session.send(request) }
            sent += 1
            request = Request()
            pending = false
        }
        for lineBytes in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            let line = String(decoding: lineBytes, as: UTF8.self)
            if line.isEmpty || line == "---" {
                flush()
            } else if line.hasPrefix("~") {
                if let ms = Int64(line.dropFirst()), ms > 0 { session.clock.advance(min(ms, 1_000_000_000_000)) }
            } else if line.hasPrefix("<") {
                request.bodyBytes += Array(line.utf8.dropFirst()) + [UInt8(ascii: "\n")]
                pending = true
            } else if let equals = lineBytes.firstIndex(of: UInt8(ascii: "=")) {
                let name = String(decoding: lineBytes[..<equals], as: UTF8.self)
                request.params[name] = unescape(String(decoding: lineBytes[(equals + 1)...], as: UTF8.self)[...])
                pending = true
            }
        }
        flush()
    }
}
