import Yams

extension ConfigLoader.Reader {
    /// Whether the node is a plain null (`~`, `null`, or nothing at all).
    static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    /// Whether plain `text` reads as a number or a boolean in YAML.
    static func looksTyped(_ text: String) -> Bool {
        if ["true", "false", "True", "False", "TRUE", "FALSE", ".inf", "-.inf", "+.inf", ".nan"].contains(text) {
            return true
        }
        if !wholeNumber(text).isNotWhole { return true }
        return decimal(text) != nil || text.hasPrefix("0x") || text.hasPrefix("0o")
    }

    /// The node as shown after "got": a number as written, text in quotes.
    static func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            let text = scalar.string
            if scalar.style == .plain {
                if text.isEmpty { return "nothing" }
                if isNull(node) { return "null" }
                return looksTyped(text) ? sanitize(text) : quote(text)
            }
            return looksTyped(text) ? "\(quote(text)) (a quoted string)" : quote(text)
        }
    }

    /// `'text'`, shortened and with control characters escaped.
    static func quote(_ text: String) -> String {
        "'\(sanitize(text))'"
    }

    /// `text` shortened to 64 characters, with control characters escaped.
    static func sanitize(_ text: String) -> String {
        var result = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count == 64 {
                result += "..."
                break
            }
            count += 1
            switch scalar {
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            default:
                if scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format {
                    result += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result
    }

    /// Whitespace or a control character.
    static func isSpaceOrControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isWhitespace || scalar.properties.generalCategory == .control
    }

    /// `[A-Za-z0-9-]`.
    static func isHeaderByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    /// A plain scalar read as a whole number.
    enum WholeNumber {
        /// A whole number that fits in 64 bits.
        case value(Int64)
        /// Decimal digits, but too large for 64 bits.
        case tooLarge
        /// Not a whole number.
        case notWhole

        /// Whether the text was not a whole number at all.
        var isNotWhole: Bool {
            if case .notWhole = self { return true }
            return false
        }
    }

    /// Reads `[-+]?[0-9]+`.
    static func wholeNumber(_ text: String) -> WholeNumber {
        var digits = Substring(text)
        if digits.first == "-" || digits.first == "+" { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
            return .notWhole
        }
        guard let value = Int64(text) else { return .tooLarge }
        return .value(value)
    }

    /// Reads a finite decimal number (`2`, `0.25`, `.5`, `1e-3`).
    static func decimal(_ text: String) -> Double? {
        let allowed = Set("0123456789+-.eE".utf8)
        guard text.utf8.allSatisfy(allowed.contains), text.utf8.contains(where: { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            let value = Double(text), value.isFinite
        else { return nil }
        return value
    }

    /// The node as a string: any scalar but null, its text (a number is taken as written).
    mutating func string(_ node: Node, _ path: String) -> String? {
        guard case .scalar(let scalar) = node, !Self.isNull(node) else {
            fail(node, "\(path): expected a string, got \(Self.describe(node))")
            return nil
        }
        return scalar.string
    }

    /// The node as a whole number in `min...max`: only an unquoted number. A range with no
    /// practical top (nil or >= 10^15) is described by whichever bound was crossed.
    mutating func int(_ node: Node, _ path: String, min: Int64, max: Int64?) -> Int64? {
        guard case .scalar(let scalar) = node, scalar.style == .plain else {
            fail(node, "\(path): expected a whole number, got \(Self.describe(node))")
            return nil
        }
        let text = scalar.string
        let below: Bool
        switch Self.wholeNumber(text) {
        case .notWhole:
            fail(node, "\(path): expected a whole number, got \(Self.describe(node))")
            return nil
        case .tooLarge:
            below = text.hasPrefix("-")
        case .value(let value):
            if value >= min && value <= (max ?? Int64.max) { return value }
            below = value < min
        }
        if let max, max < Limits.maxCharges {
            fail(node, "\(path): must be a whole number from \(min) to \(max), got \(text)")
        } else if below || max == nil {
            fail(node, "\(path): must be a whole number >= \(min), got \(text)")
        } else {
            fail(node, "\(path): must be at most \(max ?? Int64.max), got \(text)")
        }
        return nil
    }

    /// The node as a boolean: only unquoted `true` or `false`.
    mutating func bool(_ node: Node, _ path: String) -> Bool? {
        if case .scalar(let scalar) = node, scalar.style == .plain {
            if scalar.string == "true" { return true }
            if scalar.string == "false" { return false }
        }
        fail(node, "\(path): expected true or false, got \(Self.describe(node))")
        return nil
    }
}
