/// The body of `POST /api/usage/settle` (docs/http.md), read strictly: one JSON object with
/// the key `hold` and exactly one of `amount` (a whole number from 0 to 2^53, written as
/// digits) and `refund` (`true`), nothing else.
///
/// Not `JSONDecoder`: it reads `5.0` and `1e3` as the integers 5 and 1000, and of two `amount`
/// keys keeps the first. An amount is money: which of two an app meant, or whether `1e3` was
/// meant as a count, is not for the gate to guess, so each is refused. Bounded by the body's
/// size (4096 bytes), one pass, no recursion (an object or array value is refused where it
/// starts), never a trap on any bytes.
public struct SettleBody: Sendable, Equatable {
    /// The hold's id (`X-Charge-Hold`, nginx's `$request_id`).
    public var hold: String
    /// The real amount; nil for a refund.
    public var amount: Int64?

    /// Creates a body.
    public init(hold: String, amount: Int64?) {
        self.hold = hold
        self.amount = amount
    }

    /// Why a body was refused: each is a 400 with its `message`.
    public enum Refusal: Error, Sendable, Equatable {
        /// Not JSON, not an object, a key that is not ours or given twice, `hold` missing or
        /// not a string, neither or both of `amount` and `refund`, `refund` other than `true`.
        case shape
        /// `hold` is not a hold id (`Gate.isHoldID`).
        case hold
        /// `amount` is not a whole number from 0 to 2^53 written as digits.
        case amount

        /// The 400's message.
        public var message: String {
            switch self {
            case .shape: #"body: expected JSON {"hold":"ID","amount":N} or {"hold":"ID","refund":true}"#
            case .hold: "hold: expected the id X-Charge-Hold carried (1 to 64 of A-Z a-z 0-9 _ -, starting with a letter or digit)"
            case .amount: "amount: expected a whole number from 0 to 2^53, written as digits"
            }
        }
    }

    /// Parses `bytes`: the shape first, then `hold`, then `amount`.
    public static func parse(_ bytes: some Collection<UInt8>) throws(Refusal) -> SettleBody {
        var reader = Reader(bytes: Array(bytes))
        guard let members = reader.object() else { throw .shape }
        var hold: Value?
        var amount: Value?
        var refund: Value?
        for (key, value) in members {
            switch key {
            case "hold" where hold == nil: hold = value
            case "amount" where amount == nil: amount = value
            case "refund" where refund == nil: refund = value
            default: throw .shape
            }
        }
        guard case .string(let id)? = hold else { throw .shape }
        switch (amount, refund) {
        case (nil, .literal(.true)?):
            guard Gate.isHoldID(id) else { throw .hold }
            return SettleBody(hold: id, amount: nil)
        case (let given?, nil):
            guard Gate.isHoldID(id) else { throw .hold }
            guard case .number(let digits) = given, let value = wholeNumber(digits) else { throw .amount }
            return SettleBody(hold: id, amount: value)
        default:
            throw .shape
        }
    }

    /// A number token that is a plain whole number from 0 to `Settlement.maxAmount`: digits
    /// only (no sign, fraction or exponent), at most 16 of them; nil otherwise.
    static func wholeNumber(_ token: ArraySlice<UInt8>) -> Int64? {
        guard !token.isEmpty, token.count <= 16 else { return nil }
        var value: Int64 = 0
        for byte in token {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        return value <= Settlement.maxAmount ? value : nil
    }

    /// A JSON literal.
    enum Literal: Sendable, Equatable {
        case `true`, `false`, null
    }

    /// A member's value: the only kinds the body's keys may hold, besides those refused.
    enum Value: Sendable, Equatable {
        /// A string, unescaped.
        case string(String)
        /// A number token as written (valid JSON number grammar).
        case number(ArraySlice<UInt8>)
        /// `true`, `false` or `null`.
        case literal(Literal)
    }

    /// One pass over the bytes of a flat JSON object.
    struct Reader {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) {
            self.bytes = bytes
        }

        /// The members of the object that is the whole text (whitespace around it allowed), in
        /// order; nil when the text is not that, or a value is an object or array.
        mutating func object() -> [(String, Value)]? {
            skipSpace()
            guard take(UInt8(ascii: "{")) else { return nil }
            var members: [(String, Value)] = []
            skipSpace()
            if !take(UInt8(ascii: "}")) {
                while true {
                    skipSpace()
                    guard let key = string() else { return nil }
                    skipSpace()
                    guard take(UInt8(ascii: ":")) else { return nil }
                    skipSpace()
                    guard let value = value() else { return nil }
                    members.append((key, value))
                    skipSpace()
                    if take(UInt8(ascii: ",")) { continue }
                    guard take(UInt8(ascii: "}")) else { return nil }
                    break
                }
            }
            skipSpace()
            return index == bytes.count ? members : nil
        }

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        mutating func take(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        mutating func value() -> Value? {
            guard index < bytes.count else { return nil }
            switch bytes[index] {
            case UInt8(ascii: "\""): return string().map(Value.string)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return number().map(Value.number)
            case UInt8(ascii: "t"): return word("true") ? .literal(.true) : nil
            case UInt8(ascii: "f"): return word("false") ? .literal(.false) : nil
            case UInt8(ascii: "n"): return word("null") ? .literal(.null) : nil
            default: return nil
            }
        }

        mutating func word(_ text: StaticString) -> Bool {
            let count = text.utf8CodeUnitCount
            guard bytes.count - index >= count else { return false }
            let matches = text.withUTF8Buffer { bytes[index..<(index + count)].elementsEqual($0) }
            if matches { index += count }
            return matches
        }

        /// A number token: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
        mutating func number() -> ArraySlice<UInt8>? {
            let start = index
            _ = take(UInt8(ascii: "-"))
            if take(UInt8(ascii: "0")) {
                // no digit may follow a leading zero
            } else if digits() == 0 {
                return nil
            }
            if take(UInt8(ascii: ".")), digits() == 0 { return nil }
            if take(UInt8(ascii: "e")) || take(UInt8(ascii: "E")) {
                if !take(UInt8(ascii: "+")) { _ = take(UInt8(ascii: "-")) }
                if digits() == 0 { return nil }
            }
            if index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { return nil }
            return bytes[start..<index]
        }

        /// Skips digits; how many.
        mutating func digits() -> Int {
            let start = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            return index - start
        }

        /// A string token, unescaped; nil when it is not valid JSON (a control character, a bad
        /// escape, a lone surrogate, invalid UTF-8, no closing quote).
        mutating func string() -> String? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            var out: [UInt8] = []
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(validating: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard let scalar = escape() else { return nil }
                    out.append(contentsOf: Array(String(Character(scalar)).utf8))
                case 0..<0x20:
                    return nil
                default:
                    out.append(byte)
                }
            }
            return nil
        }

        /// The scalar an escape after `\` stands for.
        mutating func escape() -> Unicode.Scalar? {
            guard index < bytes.count else { return nil }
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""): return "\""
            case UInt8(ascii: "\\"): return "\\"
            case UInt8(ascii: "/"): return "/"
            case UInt8(ascii: "b"): return "\u{8}"
            case UInt8(ascii: "f"): return "\u{C}"
            case UInt8(ascii: "n"): return "\n"
            case UInt8(ascii: "r"): return "\r"
            case UInt8(ascii: "t"): return "\t"
            case UInt8(ascii: "u"):
                guard let high = hex4() else { return nil }
                if (0xD800..<0xDC00).contains(high) {
                    guard take(UInt8(ascii: "\\")), take(UInt8(ascii: "u")), let low = hex4(), (0xDC00..<0xE000).contains(low) else {
                        return nil
                    }
                    return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
                }
                return Unicode.Scalar(high)
            default:
                return nil
            }
        }

        /// Four hex digits.
        mutating func hex4() -> UInt32? {
            guard bytes.count - index >= 4 else { return nil }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                index += 1
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: return nil
                }
                value = value << 4 | digit
            }
            return value
        }
    }
}
