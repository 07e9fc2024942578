// Responder.respond on FastCGI requests built from the input, over a MemoryStore and a fixed
// config.
//
// Input: lines. `NAME=VALUE` sets a param of the current request (`\n` and `\r` written as
// backslash-n and backslash-r in VALUE); `<TEXT` appends TEXT and a newline to its body; `~N`
// moves the clock N ms on; an empty line or `---` sends the current request and starts the next.
// Up to 64 requests per input, each checked on its own and against the store's state.
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
    config.pools = [
        PoolConfig(id: "generate-image", capacity: .limited(3), recharge: .every(intervalMs: 2 * hour), rechargeIntervalHours: 2, label: "Image <generation>", group: "AI"),
        PoolConfig(id: "api-calls", capacity: .limited(4), recharge: .every(intervalMs: 36_000), rechargeIntervalHours: 0.01, scope: .subject),
        PoolConfig(id: "credits", capacity: .limited(10), recharge: .none, scope: .subject),
        PoolConfig(id: "meter", capacity: .unlimited, recharge: .none, scope: .subject),
        PoolConfig(id: "global-credits", capacity: .limited(7), recharge: .none),
        PoolConfig(id: "fast", capacity: .limited(2), recharge: .every(intervalMs: 1000), rechargeIntervalHours: 1.0 / 3600),
    ]
    config.routes = [
        RouteConfig(prefix: "/api/generate", charges: [.init(poolIndex: 0, cost: 1)], methods: ["POST"]),
        RouteConfig(prefix: "/api/generate", charges: [.init(poolIndex: 0, cost: 2), .init(poolIndex: 5, cost: 1)], methods: ["GET", "PUT"]),
        RouteConfig(prefix: "/api/generate/hd", charges: [.init(poolIndex: 0, cost: 3)]),
        RouteConfig(prefix: "/api/paid", charges: [.init(poolIndex: 1, cost: 1), .init(poolIndex: 2, cost: 5), .init(poolIndex: 3, cost: 1)]),
        RouteConfig(prefix: "/api/read", charges: [.init(poolIndex: 1, cost: 1)], methods: ["GET"]),
        RouteConfig(prefix: "/api/buy", charges: [.init(poolIndex: 4, cost: 2), .init(poolIndex: 3, cost: 3)]),
        RouteConfig(prefix: "/caf\u{e9}", charges: [.init(poolIndex: 5, cost: 1)]),
        RouteConfig(prefix: "/", charges: [.init(poolIndex: 5, cost: 2)], methods: ["DELETE"]),
    ]
    return Gate(config: config)
}()
let knownStatuses: Set<Int> = [200, 204, 400, 401, 403, 404, 405, 413, 503]

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
    if let uri = request.params[Responder.Param.uri], !uri.isEmpty {
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

final class Session {
    let clock = FuzzClock()
    let store: MemoryStore
    let responder: Responder
    /// Idempotency records of allowed requests: store key -> expiry.
    var idempotency: [String: Int64] = [:]

    init() {
        store = MemoryStore(clock: clock)
        responder = Responder(store: store, clock: clock, denials: DenyCache())
    }

    func send(_ request: Request) {
        let role = request.params[Responder.Param.role]
        let subject = SafeToken.key(for: request.params[Responder.Param.subject] ?? "")
        let before = snapshot(store, subject: subject)
        let response = responder.respond(to: request, gate: gate)
        let after = snapshot(store, subject: subject)
        require(before.now == after.now, "the clock stands still during a request")
        let now = after.now

        // Every answer: a known status, header fields that cannot split the header block,
        // a JSON body that parses, and a serialisation that works.
        require(knownStatuses.contains(response.status), "a known status", "\(response.status)")
        for (name, value) in response.headers {
            require(!name.isEmpty && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: ":") }, "header names are tokens", show(name))
            require(value.utf8.allSatisfy { $0 >= 0x20 && $0 != 0x7f }, "header values hold no control characters (no header injection)",
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
            if response.status == 200, role == "events" || (role == "usage" && QueryString.value(of: "subject", in: request.params["QUERY_STRING"] ?? "") != nil) {
                require(request.params["HTTP_AUTHORIZATION"].map { sameBytes($0, "Bearer " + token) } ?? false, "admin answers need the token")
            }
        case "topoff":
            if response.status == 200 {
                require(request.params["HTTP_AUTHORIZATION"].map { sameBytes($0, "Bearer " + token) } ?? false, "a top-off needs the token")
                _ = parseJSON(response.body, "top-off answer")
            } else {
                require(changed.isEmpty, "a refused top-off changes nothing", "status \(response.status), pools \(changed)")
            }
        default:
            require(response.status == 403 && header(response, Responder.Header.status) == "503",
                    "an unknown role is denied with 503", "role \(role.map(show) ?? "nil"): \(response.status)")
            require(changed.isEmpty, "an unknown role consumes nothing")
        }
    }

    func checkAuth(_ request: Request, _ response: Response, subject: String, before: [BucketState?], after: [BucketState?], now: Int64) {
        let status = header(response, Responder.Header.status)
        switch response.status {
        case 204:
            require(status == "204", "an allow carries X-Charge-Status: 204", String(describing: status))
        case 403:
            require(["429", "402", "503"].contains(status ?? ""), "a denial carries X-Charge-Status 429, 402 or 503", String(describing: status))
            let body = parseJSON(header(response, Responder.Header.body) ?? "", "X-Charge-Body")
            let error = body["error"] as? String
            switch status {
            case "429":
                require(error == "out_of_charge", "a 429 says out_of_charge")
                let wait = (body["retryAfterMs"] as? NSNumber)?.int64Value ?? -1
                require(wait >= 1, "a 429 has retryAfterMs >= 1", "\(wait)")
                require(header(response, Responder.Header.retryAfter) == String((wait + 999) / 1000), "X-Charge-Retry-After is retryAfterMs in whole seconds, rounded up")
            case "402":
                require(error == "insufficient_credits", "a 402 says insufficient_credits")
            default:
                require(error == "service_unavailable", "a 503 says service_unavailable")
            }
        default:
            invariantFailed("the auth answer is 204 or 403", "\(response.status)")
        }

        // No free pass: the route nginx's path falls under (a byte-wise linear scan) must have
        // been charged, unless this was the repeat of an allowed idempotent request.
        var method = request.params["REQUEST_METHOD"] ?? ""
        if method == "HEAD" { method = "GET" }
        let path = referencePath(request)
        let changed = gate.config.pools.indices.filter { level(before[$0], pool: $0, now: now) != level(after[$0], pool: $0, now: now) }
        guard let routeIndex = Reference.match(gate.config.routes, path: path, method: method) else {
            require(response.status == 204 && changed.isEmpty, "an unrouted request passes and consumes nothing",
                    "path \(show(path)) \(method): status \(response.status), pools \(changed)")
            return
        }
        let route = gate.config.routes[routeIndex]
        guard response.status == 204 else {
            require(changed.isEmpty, "a denial consumes nothing (all pools or none)", "pools \(changed)")
            return
        }
        var idempotencyKey: String?
        if let key = request.params[gate.idempotencyParam], !key.isEmpty {
            idempotencyKey = gate.idempotencyKey(subject: subject, route: route.prefix, clientKey: key)
        }
        if changed.isEmpty, let idempotencyKey, let until = idempotency[idempotencyKey], until > now {
            return  // an idempotent repeat: allowed, nothing spent
        }
        for charge in route.charges {
            let pool = charge.poolIndex
            let was = level(before[pool], pool: pool, now: now)
            let left = level(after[pool], pool: pool, now: now)
            let spent = gate.config.pools[pool].maxCharges == nil ? left - was : was - left
            require(spent == charge.cost, "no free pass: an allowed request spends its route's cost from every pool of the route",
                    "path \(show(path)) \(method) route \(route.prefix) pool \(gate.config.pools[pool].id): \(was) -> \(left), cost \(charge.cost)")
        }
        let routePools = Set(route.charges.map(\.poolIndex))
        require(changed.allSatisfy(routePools.contains), "an allowed request spends only from its route's pools", "\(changed)")
        if let idempotencyKey {
            idempotency[idempotencyKey] = now + Int64(gate.config.idempotencyTtlSeconds) * 1000
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
