/// A small, allocation-light JSON writer: the answers are flat and their shapes fixed, so a
/// writer that escapes correctly beats a reflective encoder on the request path.
public struct JSONWriter {
    /// The text written so far.
    public private(set) var text: String = ""
    private var needsComma: [Bool] = [false]

    /// Creates an empty writer.
    public init() { text.reserveCapacity(256) }

    /// `{`
    public mutating func beginObject() {
        separator()
        text += "{"
        needsComma.append(false)
    }
    /// `}`
    public mutating func endObject() {
        text += "}"
        needsComma.removeLast()
    }
    /// `[`
    public mutating func beginArray() {
        separator()
        text += "["
        needsComma.append(false)
    }
    /// `]`
    public mutating func endArray() {
        text += "]"
        needsComma.removeLast()
    }

    /// `"name":` inside an object; the next value follows.
    public mutating func key(_ name: String) {
        separator()
        Self.appendQuoted(name, to: &text)
        text += ":"
        needsComma[needsComma.count - 1] = false
    }

    /// A string value.
    public mutating func value(_ string: String) {
        separator()
        Self.appendQuoted(string, to: &text)
    }
    /// An integer value.
    public mutating func value(_ number: Int64) {
        separator()
        text += String(number)
    }
    /// A boolean value.
    public mutating func value(_ bool: Bool) {
        separator()
        text += bool ? "true" : "false"
    }
    /// A finite number; non-finite values become `null`.
    public mutating func value(_ number: Double) {
        separator()
        if !number.isFinite {
            text += "null"
        } else if number == number.rounded(), abs(number) < 1e15 {
            text += String(Int64(number))
        } else {
            text += String(number)
        }
    }
    /// `null`
    public mutating func null() {
        separator()
        text += "null"
    }
    /// An optional integer: the number or `null`.
    public mutating func value(_ number: Int64?) { if let number { value(number) } else { null() } }

    /// `"name":value` for the common cases.
    public mutating func field(_ name: String, _ string: String) {
        key(name)
        value(string)
    }
    /// `"name":number`
    public mutating func field(_ name: String, _ number: Int64?) {
        key(name)
        value(number)
    }
    /// `"name":bool`
    public mutating func field(_ name: String, _ bool: Bool) {
        key(name)
        value(bool)
    }

    private mutating func separator() {
        if needsComma[needsComma.count - 1] { text += "," }
        needsComma[needsComma.count - 1] = true
    }

    /// A printable ASCII byte that `appendQuoted` never escapes.
    private static func isPlain(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "&"), UInt8(ascii: "'"):
            return false
        default:
            return byte >= 0x20 && byte < 0x7f
        }
    }

    /// Appends `string` as a JSON string literal. Escapes `"`, `\`, control characters, and
    /// `<`, `>`, `&`, U+2028, U+2029 (so the text is also safe inside HTML and nginx `return`).
    public static func appendQuoted(_ string: String, to out: inout String) {
        out += "\""
        // Printable ASCII with nothing to escape (pool ids, routes, error codes): as it is.
        if string.utf8.allSatisfy(isPlain) {
            out += string
            out += "\""
            return
        }
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<", ">", "&", "'", "\u{2028}", "\u{2029}":
                out += unicodeEscape(scalar.value)
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    out += unicodeEscape(scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    private static func unicodeEscape(_ value: UInt32) -> String {
        let hex = String(value, radix: 16)
        return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }
}
