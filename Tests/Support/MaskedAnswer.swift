import ChargeGateCore

/// A responder's answer with every value that depends on the store's clock replaced by `*`, so
/// the answers of two stores can be compared: the memory store on a manual clock and the Redis
/// store, whose script reads Redis's own clock (TIME). What is masked:
///
/// - `X-Charge-Retry-After: N`, the `t=N` of `X-Charge-RateLimit`, `X-Accel-Expires: @N`;
/// - in JSON (a body or `X-Charge-Body`), the numbers of `retryAfterMs`, `nextRechargeAt`,
///   `fullAt` and `time`, and an event id (`"id":"MS-SEQ"`, `"next":"MS-SEQ"`).
///
/// `null` is kept, so "no time" and "some time" still differ. Everything else (statuses,
/// remaining charges, balances, pool ids, the `RateLimit-Policy`) is compared as it is.
public struct MaskedAnswer: Sendable, Equatable, CustomStringConvertible {
    /// One value masked out, kept to check its sign.
    public struct Time: Sendable, Equatable {
        /// Where it was: a header name or a JSON key (`t` for the RateLimit state).
        public var name: String
        /// The value masked.
        public var value: Int64
    }

    /// The HTTP status (204 or 403 for the auth role).
    public var status: Int
    /// The headers as `Name: value`, in order, masked.
    public var headers: [String]
    /// The body, masked.
    public var body: String
    /// The values masked out (not compared by `==`).
    public var times: [Time]

    /// `response` masked.
    public init(_ response: Response) {
        var times: [Time] = []
        status = response.status
        headers = response.headers.map { header in
            var value = header.value
            switch header.name {
            case WireProtocol.Header.retryAfter:
                value = Self.maskWhole(value, prefix: "", name: header.name, times: &times)
            case WireProtocol.Header.rateLimit:
                value = Self.mask(value, after: ";t=", name: "t", times: &times)
            case WireProtocol.Header.accelExpires:
                value = Self.maskWhole(value, prefix: "@", name: header.name, times: &times)
            case WireProtocol.Header.body:
                value = Self.maskJSON(value, times: &times)
            default:
                break
            }
            return header.name + ": " + value
        }
        body = Self.maskJSON(response.body, times: &times)
        self.times = times
    }

    /// The value of header `name` (masked), or nil.
    public func header(_ name: String) -> String? {
        headers.first { $0.hasPrefix(name + ": ") }.map { String($0.dropFirst(name.count + 2)) }
    }

    /// Status, headers and body, on one line.
    public var description: String {
        "\(status) [\(headers.joined(separator: "; "))]" + (body.isEmpty ? "" : " " + body)
    }

    /// Equal when status, masked headers and masked body are; the masked values do not count.
    public static func == (a: MaskedAnswer, b: MaskedAnswer) -> Bool {
        a.status == b.status && a.headers == b.headers && a.body == b.body
    }

    /// The JSON keys whose numbers are times or waits.
    static let timeKeys = ["retryAfterMs", "nextRechargeAt", "fullAt", "time"]
    /// The JSON keys whose strings may be event ids.
    static let eventIDKeys = ["id", "next"]

    /// `json` with its time values and event ids masked.
    static func maskJSON(_ json: String, times: inout [Time]) -> String {
        var json = json
        for key in timeKeys { json = mask(json, after: "\"\(key)\":", name: key, times: &times) }
        for key in eventIDKeys { json = maskEventIDs(json, after: "\"\(key)\":\"") }
        return json
    }

    /// `value` as `prefix*` when it is `prefix` and an integer (recorded under `name`), else as
    /// it is.
    static func maskWhole(_ value: String, prefix: String, name: String, times: inout [Time]) -> String {
        guard value.hasPrefix(prefix), let number = Int64(value.dropFirst(prefix.count)) else { return value }
        times.append(Time(name: name, value: number))
        return prefix + "*"
    }

    /// `text` with the integer after each `marker` replaced by `*`, each recorded under `name`.
    static func mask(_ text: String, after marker: String, name: String, times: inout [Time]) -> String {
        var out = ""
        var rest = Substring(text)
        while let found = rest.range(of: marker) {
            out += rest[..<found.upperBound]
            rest = rest[found.upperBound...]
            let sign = rest.first == "-" ? 1 : 0
            let digits = rest.dropFirst(sign).prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, let value = Int64(rest.prefix(sign + digits.count)) else { continue }
            times.append(Time(name: name, value: value))
            out += "*"
            rest = rest.dropFirst(sign + digits.count)
        }
        return out + rest
    }

    /// `json` with each `MS-SEQ` string after `marker` replaced by `*`.
    static func maskEventIDs(_ json: String, after marker: String) -> String {
        var out = ""
        var rest = Substring(json)
        while let found = rest.range(of: marker) {
            out += rest[..<found.upperBound]
            rest = rest[found.upperBound...]
            guard let close = rest.firstIndex(of: "\"") else { break }
            let parts = rest[..<close].split(separator: "-", omittingEmptySubsequences: false)
            if parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }) {
                out += "*"
                rest = rest[close...]
            }
        }
        return out + rest
    }
}
