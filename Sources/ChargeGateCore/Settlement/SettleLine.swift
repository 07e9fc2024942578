/// One settlement line as nginx sends it (`log_format charge_gate_settle` in
/// charge-gate-http.conf, over `access_log syslog:`), parsed strictly: bounded, every field
/// checked, never a crash on any bytes (fuzz target `fuzz-settle`).
///
/// A datagram is `<PRI>Mmm dd hh:mm:ss TAG: ` and the payload, ten fields split by `|`:
///
///     cg1|$charge_gate_hold|$charge_gate_origin|$status|$upstream_status|$upstream_bytes_sent|
///     $body_bytes_sent|$upstream_response_time|$msec|$upstream_http_x_charge_amount
///
/// Only the last field comes from the app (its amount header), so it is last: a `|` in it
/// cannot move a field.
public struct SettleLine: Sendable, Equatable {
    /// The hold's id.
    public var hold: String
    /// What the response delivered.
    public var facts: ResponseFacts

    /// Why a line was refused.
    public enum Rejection: String, Sendable, Equatable, Error {
        /// Longer than `maxBytes`.
        case tooLong = "too_long"
        /// Not a syslog datagram carrying a `cg1|` payload of ten fields.
        case malformed
        /// A field that is not what nginx writes there.
        case badField = "bad_field"
        /// A line about the auth location itself (`$charge_gate_origin` is not `main`): never
        /// settles anything.
        case authLocation = "auth_location"
    }

    /// The longest datagram accepted, in bytes (a line is about 120).
    public static let maxBytes = 2048
    /// The payload's version mark.
    static let mark = Array("cg1|".utf8)

    /// Creates a line.
    public init(hold: String, facts: ResponseFacts) {
        self.hold = hold
        self.facts = facts
    }

    /// Parses one datagram.
    public init(parsing datagram: some Collection<UInt8>) throws(Rejection) {
        guard datagram.count <= Self.maxBytes else { throw .tooLong }
        let bytes = Array(datagram)
        guard let payload = Self.payload(bytes) else { throw .malformed }
        let fields = payload.split(separator: UInt8(ascii: "|"), maxSplits: 9, omittingEmptySubsequences: false)
        guard fields.count == 10 else { throw .malformed }
        let hold = String(decoding: fields[1], as: UTF8.self)
        guard Gate.isHoldID(hold) else { throw .badField }
        guard fields[2].elementsEqual("main".utf8) else {
            if fields[2].elementsEqual("auth".utf8) { throw .authLocation }
            throw .badField
        }
        guard fields[3].count == 3, let status = Self.integer(fields[3], maxDigits: 3) else { throw .badField }
        guard let statuses = Self.list(fields[4], Self.statusToken) else { throw .badField }
        guard let sent = Self.list(fields[5], { Self.integer($0, maxDigits: 18) }) else { throw .badField }
        guard let bodyBytes = Self.integer(fields[6], maxDigits: 18) else { throw .badField }
        guard let times = Self.list(fields[7], Self.milliseconds) else { throw .badField }
        guard Self.milliseconds(fields[8]) != nil else { throw .badField }
        let amount: ResponseFacts.ReportedAmount
        if fields[9].elementsEqual("-".utf8) {
            amount = .missing
        } else if let value = Self.integer(fields[9], maxDigits: 16), value <= Settlement.maxAmount {
            amount = .value(value)
        } else {
            amount = .invalid
        }
        var upstreamMs: Int64 = 0
        for time in times { upstreamMs = Swift.min(Settlement.maxAmount, upstreamMs + (time ?? 0)) }
        self.hold = hold
        self.facts = ResponseFacts(
            status: Int(status), upstreamReached: sent.contains { ($0 ?? 0) > 0 }, upstreamAnswered: statuses.contains { $0 != nil },
            amount: amount, bytesSent: bodyBytes, upstreamMs: upstreamMs)
    }

    /// The payload after the syslog header (`<PRI>` then `TAG: ` within the first 64 bytes),
    /// without a trailing newline; nil when there is none.
    static func payload(_ bytes: [UInt8]) -> ArraySlice<UInt8>? {
        guard bytes.first == UInt8(ascii: "<") else { return nil }
        let window = bytes.prefix(64)
        guard
            let start = window.indices.first(where: { i in
                i >= 2 && bytes[i - 2] == UInt8(ascii: ":") && bytes[i - 1] == UInt8(ascii: " ")
                    && bytes[i...].starts(with: mark)
            })
        else { return nil }
        var end = bytes.endIndex
        while end > start, bytes[end - 1] == UInt8(ascii: "\n") { end -= 1 }
        return bytes[start..<end]
    }

    /// A non-negative decimal of 1...`maxDigits` digits.
    static func integer(_ field: some Collection<UInt8>, maxDigits: Int) -> Int64? {
        guard !field.isEmpty, field.count <= maxDigits else { return nil }
        var value: Int64 = 0
        for byte in field {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// nginx's list of per-try values (`502, 200`; `500 : 200` across an internal redirect),
    /// each parsed by `token` or `-` (nil); `-` alone is an empty try. nil when a token is bad.
    static func list<T>(_ field: some Collection<UInt8>, _ token: (ArraySlice<UInt8>) -> T?) -> [T?]? {
        let bytes = Array(field)
        guard !bytes.isEmpty, bytes.count <= 512 else { return nil }
        var values: [T?] = []
        var index = 0
        while index < bytes.count {
            var end = index
            while end < bytes.count, bytes[end] != UInt8(ascii: ","), bytes[end] != UInt8(ascii: " ") { end += 1 }
            let item = bytes[index..<end]
            if item.elementsEqual("-".utf8) {
                values.append(nil)
            } else if let value = token(item) {
                values.append(value)
            } else {
                return nil
            }
            // Separators: ", " or " : ".
            if end == bytes.count { break }
            if bytes[end...].starts(with: ", ".utf8) {
                index = end + 2
            } else if bytes[end...].starts(with: " : ".utf8) {
                index = end + 3
            } else {
                return nil
            }
            guard index < bytes.count else { return nil }
        }
        return values
    }

    /// A status in `$upstream_status`: three digits.
    static func statusToken(_ item: ArraySlice<UInt8>) -> Int64? {
        item.count == 3 ? integer(item, maxDigits: 3) : nil
    }

    /// Seconds with up to three decimals (`0.123`, `$msec`'s `1733491208.123`), as ms.
    static func milliseconds(_ item: some Collection<UInt8>) -> Int64? {
        let bytes = Array(item)
        guard let dot = bytes.firstIndex(of: UInt8(ascii: ".")) else { return integer(bytes, maxDigits: 12).map { $0 * 1000 } }
        guard let seconds = integer(bytes[..<dot], maxDigits: 12) else { return nil }
        let fraction = bytes[(dot + 1)...]
        guard !fraction.isEmpty, fraction.count <= 3, let digits = integer(fraction, maxDigits: 3) else { return nil }
        let scale: Int64 = fraction.count == 1 ? 100 : fraction.count == 2 ? 10 : 1
        return seconds * 1000 + digits * scale
    }
}
