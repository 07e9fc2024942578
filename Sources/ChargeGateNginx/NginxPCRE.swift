/// A regex of the configuration as nginx's PCRE2 runs it, rewritten for the standard library's
/// `Regex`. nginx compiles with no option but `PCRE2_CASELESS` for `~*` (src/core/ngx_regex.c:
/// no UTF, no `DOLLAR_ENDONLY`, no `DOTALL`, no `MULTILINE`) and matches the bytes of `$uri`, so:
/// the subject is one scalar per byte (`subject(_:)`); `.` is any byte but `\n`; `$` is the end
/// or before a final `\n`; `^` is the start; `\d`, `\w`, `\s`, `\h`, `\v`, `\N` and the POSIX
/// classes (`[[:digit:]]`) are ASCII (PCRE2's default "C" tables); `~*` folds ASCII letters only;
/// `{` is a quantifier only as `{n}`, `{n,}`, `{n,m}`. Each of these becomes an explicit byte
/// class or lookahead, so nothing depends on the standard library's Unicode defaults. What this
/// reader does not model (lookbehind, `\p`, `(?m)`, `(?x)`, recursion, conditionals, verbs) is
/// refused with the reason: the analysis then says UNDECIDED instead of guessing.
public enum NginxPCRE {
    /// A construct the translation does not model.
    public struct Unsupported: Error, Sendable, Equatable, CustomStringConvertible {
        /// What it is.
        public var message: String

        /// `PCRE construct not modelled: …`.
        public var description: String { "PCRE construct not modelled: \(message)" }
    }

    /// `text` as PCRE sees it: one scalar (U+0000…U+00FF) per UTF-8 byte.
    public static func subject(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        for byte in text.utf8 { scalars.append(Unicode.Scalar(byte)) }
        return String(scalars)
    }

    /// A part of a `subject(_:)` string back as text (its bytes read as UTF-8).
    public static func text(_ subject: Substring) -> String {
        String(decoding: subject.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }, as: UTF8.self)
    }

    /// The standard library pattern that matches `subject(_:)` strings as PCRE2 matches the
    /// bytes with `pattern` (caseless for `~*`).
    public static func translate(_ pattern: String, caseless: Bool) throws(Unsupported) -> String {
        var translator = Translator(bytes: Array(pattern.utf8), caseless: caseless)
        return try translator.run()
    }

    /// A set of bytes.
    struct ByteSet: Equatable {
        /// One flag per byte.
        var members = [Bool](repeating: false, count: 256)

        /// The bytes from `low` through `high`.
        static func range(_ low: UInt8, _ high: UInt8) -> ByteSet {
            var set = ByteSet()
            if low <= high { for byte in low...high { set.members[Int(byte)] = true } }
            return set
        }

        /// These bytes.
        static func of(_ bytes: [UInt8]) -> ByteSet {
            var set = ByteSet()
            for byte in bytes { set.members[Int(byte)] = true }
            return set
        }

        static let digit = range(0x30, 0x39)
        static let upper = range(0x41, 0x5A)
        static let lower = range(0x61, 0x7A)
        static let alpha = upper.union(lower)
        static let alnum = alpha.union(digit)
        static let word = alnum.union(of([0x5F]))
        /// PCRE2's `\s`: HT, LF, VT, FF, CR, space.
        static let space = range(0x09, 0x0D).union(of([0x20]))
        /// `\h` in 8-bit non-UTF mode: HT, space, NBSP.
        static let horizontal = of([0x09, 0x20, 0xA0])
        /// `\v` in 8-bit non-UTF mode: LF, VT, FF, CR, NEL.
        static let vertical = range(0x0A, 0x0D).union(of([0x85]))
        static let graph = range(0x21, 0x7E)
        static let all = range(0x00, 0xFF)

        /// The POSIX class `[:name:]`.
        static func posix(_ name: String) -> ByteSet? {
            switch name {
            case "alnum": alnum
            case "alpha": alpha
            case "ascii": range(0x00, 0x7F)
            case "blank": of([0x09, 0x20])
            case "cntrl": range(0x00, 0x1F).union(of([0x7F]))
            case "digit": digit
            case "graph": graph
            case "lower": lower
            case "print": range(0x20, 0x7E)
            case "punct": graph.subtracting(alnum)
            case "space": space
            case "upper": upper
            case "word": word
            case "xdigit": digit.union(range(0x41, 0x46)).union(range(0x61, 0x66))
            default: nil
            }
        }

        func union(_ other: ByteSet) -> ByteSet {
            var out = self
            for index in 0..<256 where other.members[index] { out.members[index] = true }
            return out
        }

        func subtracting(_ other: ByteSet) -> ByteSet {
            var out = self
            for index in 0..<256 where other.members[index] { out.members[index] = false }
            return out
        }

        var inverted: ByteSet {
            var out = self
            for index in 0..<256 { out.members[index].toggle() }
            return out
        }

        /// With the other case of every ASCII letter (PCRE2's caseless "C" tables).
        var caseFolded: ByteSet {
            var out = self
            for index in 0x41...0x5A where members[index] || members[index + 0x20] {
                out.members[index] = true
                out.members[index + 0x20] = true
            }
            return out
        }

        /// A class of the standard library's syntax with these bytes (never empty: a class
        /// that matches nothing is one that no byte of a subject is in).
        var pattern: String {
            var out = "["
            var index = 0
            while index < 256 {
                guard members[index] else {
                    index += 1
                    continue
                }
                var end = index
                while end + 1 < 256 && members[end + 1] { end += 1 }
                out += Translator.hex(index)
                if end > index { out += "-" + Translator.hex(end) }
                index = end + 1
            }
            if out == "[" { return "[^\\x{0}-\\x{FF}]" }
            return out + "]"
        }
    }

    /// One pass over the pattern's bytes.
    private struct Translator {
        let bytes: [UInt8]
        var index = 0
        /// The flags in effect: `(?i)` and `(?s)`, scoped by groups.
        var caseless: Bool
        var dotAll = false
        /// The flags to restore at each open group's `)`.
        var scopes: [(caseless: Bool, dotAll: Bool)] = []
        var out = ""

        init(bytes: [UInt8], caseless: Bool) {
            self.bytes = bytes
            self.caseless = caseless
        }

        static func hex(_ value: Int) -> String {
            "\\x{" + String(value, radix: 16, uppercase: true) + "}"
        }

        private func peek(_ offset: Int = 0) -> UInt8? {
            index + offset < bytes.count ? bytes[index + offset] : nil
        }

        private func unsupported(_ what: String) -> Unsupported {
            Unsupported(message: what)
        }

        mutating func run() throws(Unsupported) -> String {
            while let byte = peek() {
                index += 1
                switch byte {
                case UInt8(ascii: "\\"):
                    try escape()
                case UInt8(ascii: "["):
                    out += try characterClass().pattern
                case UInt8(ascii: "."):
                    out += (dotAll ? ByteSet.all : ByteSet.all.subtracting(.of([0x0A]))).pattern
                case UInt8(ascii: "^"):
                    out += "\\A"
                case UInt8(ascii: "$"):
                    out += "(?=\\x{A}?\\z)"
                case UInt8(ascii: "("):
                    try group()
                case UInt8(ascii: ")"):
                    guard let scope = scopes.popLast() else { throw unsupported("an unmatched )") }
                    (caseless, dotAll) = scope
                    out += ")"
                case UInt8(ascii: "|"):
                    out += "|"
                case UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "?"):
                    out += String(UnicodeScalar(byte))
                case UInt8(ascii: "{"):
                    if let length = quantifierLength() {
                        out += "{" + String(decoding: bytes[index..<(index + length)], as: UTF8.self)
                        index += length
                    } else {
                        literal(byte)
                    }
                default:
                    literal(byte)
                }
            }
            guard scopes.isEmpty else { throw unsupported("a missing )") }
            return out
        }

        /// The length after `{` of `n}`, `n,}` or `n,m}`; nil when the `{` is a literal (PCRE2
        /// 10.42 reads `{,m}` as one).
        private func quantifierLength() -> Int? {
            var offset = 0
            var low = 0
            while let byte = peek(offset), byte >= 0x30 && byte <= 0x39 {
                offset += 1
                low += 1
            }
            guard low > 0 else { return nil }
            if peek(offset) == UInt8(ascii: ",") {
                offset += 1
                while let byte = peek(offset), byte >= 0x30 && byte <= 0x39 { offset += 1 }
            }
            guard peek(offset) == UInt8(ascii: "}") else { return nil }
            return offset + 1
        }

        /// A literal byte (both cases under `(?i)`).
        private mutating func literal(_ byte: UInt8) {
            if caseless && ByteSet.alpha.members[Int(byte)] {
                out += ByteSet.of([byte]).caseFolded.pattern
            } else if ByteSet.alnum.members[Int(byte)] {
                out += String(UnicodeScalar(byte))
            } else {
                out += Self.hex(Int(byte))
            }
        }

        private mutating func group() throws(Unsupported) {
            scopes.append((caseless, dotAll))
            guard peek() == UInt8(ascii: "?") else {
                guard peek() != UInt8(ascii: "*") else { throw unsupported("a (*VERB)") }
                out += "("
                return
            }
            index += 1
            guard let kind = peek() else { throw unsupported("a ( at the end") }
            switch kind {
            case UInt8(ascii: ":"), UInt8(ascii: "="), UInt8(ascii: "!"), UInt8(ascii: ">"):
                index += 1
                out += "(?" + String(UnicodeScalar(kind))
            case UInt8(ascii: "<") where peek(1) == UInt8(ascii: "=") || peek(1) == UInt8(ascii: "!"):
                throw unsupported("a lookbehind (?<\(UnicodeScalar(peek(1) ?? 0)))")
            case UInt8(ascii: "<"), UInt8(ascii: "'"), UInt8(ascii: "P"):
                if kind == UInt8(ascii: "P") {
                    index += 1
                    guard peek() == UInt8(ascii: "<") else { throw unsupported("(?P= or (?P>") }
                }
                let close = peek() == UInt8(ascii: "'") ? UInt8(ascii: "'") : UInt8(ascii: ">")
                index += 1
                var name: [UInt8] = []
                while let byte = peek(), byte != close {
                    guard ByteSet.word.members[Int(byte)] else { throw unsupported("a group name with \(UnicodeScalar(byte))") }
                    name.append(byte)
                    index += 1
                }
                guard peek() == close, !name.isEmpty else { throw unsupported("an unterminated group name") }
                index += 1
                out += "(?<" + String(decoding: name, as: UTF8.self) + ">"
            case UInt8(ascii: "#"):
                while let byte = peek(), byte != UInt8(ascii: ")") { index += 1 }
                guard peek() != nil else { throw unsupported("an unterminated (?#") }
                index += 1
                scopes.removeLast()
            default:
                try flags()
            }
        }

        /// `(?i)`, `(?-i)`, `(?is:…)`: only `i` and `s` are modelled.
        private mutating func flags() throws(Unsupported) {
            var on = true
            var newCaseless = caseless
            var newDotAll = dotAll
            while let byte = peek(), byte != UInt8(ascii: ")") && byte != UInt8(ascii: ":") {
                index += 1
                switch byte {
                case UInt8(ascii: "-") where on: on = false
                case UInt8(ascii: "i"): newCaseless = on
                case UInt8(ascii: "s"): newDotAll = on
                default: throw unsupported("the option or group (?\(UnicodeScalar(byte))")
                }
            }
            guard let end = peek() else { throw unsupported("an unterminated (?") }
            index += 1
            if end == UInt8(ascii: ")") {
                // Until the end of the enclosing group: this ( opened no group.
                scopes.removeLast()
                caseless = newCaseless
                dotAll = newDotAll
            } else {
                caseless = newCaseless
                dotAll = newDotAll
                out += "(?:"
            }
        }

        private mutating func escape() throws(Unsupported) {
            guard let byte = peek() else { throw unsupported("a \\ at the end") }
            index += 1
            if let set = try classEscape(byte) {
                out += set.pattern
                return
            }
            switch byte {
            case UInt8(ascii: "A"): out += "\\A"
            case UInt8(ascii: "z"): out += "\\z"
            case UInt8(ascii: "Z"): out += "(?=\\x{A}?\\z)"
            case UInt8(ascii: "b"), UInt8(ascii: "B"):
                // An ASCII word boundary: the regex is compiled with simple, ASCII word boundaries.
                out += "\\" + String(UnicodeScalar(byte))
            case UInt8(ascii: "R"):
                out += "(?:\\x{D}\\x{A}|" + ByteSet.vertical.pattern + ")"
            case UInt8(ascii: "Q"):
                while index < bytes.count {
                    if peek() == UInt8(ascii: "\\") && peek(1) == UInt8(ascii: "E") {
                        index += 2
                        return
                    }
                    literal(bytes[index])
                    index += 1
                }
            case UInt8(ascii: "E"):
                return
            case UInt8(ascii: "1")...UInt8(ascii: "9"):
                guard !caseless else { throw unsupported("a backreference under ~*") }
                guard peek().map({ $0 < 0x30 || $0 > 0x39 }) ?? true else { throw unsupported("\\ with several digits") }
                out += "\\" + String(UnicodeScalar(byte))
            case UInt8(ascii: "k"), UInt8(ascii: "g"):
                guard !caseless else { throw unsupported("a backreference under ~*") }
                guard byte == UInt8(ascii: "k"), peek() == UInt8(ascii: "<") else { throw unsupported("\\\(UnicodeScalar(byte))") }
                var name = ""
                index += 1
                while let next = peek(), next != UInt8(ascii: ">") {
                    guard ByteSet.word.members[Int(next)] else { throw unsupported("a backreference name") }
                    name.unicodeScalars.append(UnicodeScalar(next))
                    index += 1
                }
                guard peek() != nil else { throw unsupported("an unterminated \\k<") }
                index += 1
                out += "\\k<" + name + ">"
            default:
                guard let value = try escapedByte(byte) else {
                    throw unsupported("the escape \\\(UnicodeScalar(byte))")
                }
                literal(value)
            }
        }

        /// `\d`, `\D`, `\w`, `\W`, `\s`, `\S`, `\h`, `\H`, `\v`, `\V`, `\N` as byte sets.
        private func classEscape(_ byte: UInt8) throws(Unsupported) -> ByteSet? {
            switch byte {
            case UInt8(ascii: "d"): .digit
            case UInt8(ascii: "D"): ByteSet.digit.inverted
            case UInt8(ascii: "w"): .word
            case UInt8(ascii: "W"): ByteSet.word.inverted
            case UInt8(ascii: "s"): .space
            case UInt8(ascii: "S"): ByteSet.space.inverted
            case UInt8(ascii: "h"): .horizontal
            case UInt8(ascii: "H"): ByteSet.horizontal.inverted
            case UInt8(ascii: "v"): .vertical
            case UInt8(ascii: "V"): ByteSet.vertical.inverted
            case UInt8(ascii: "N"): ByteSet.all.subtracting(.of([0x0A]))
            case UInt8(ascii: "p"), UInt8(ascii: "P"), UInt8(ascii: "X"), UInt8(ascii: "C"):
                throw unsupported("\\\(UnicodeScalar(byte))")
            default: nil
            }
        }

        /// The byte an escape stands for (`\n`, `\x41`, `\x{41}`, `\0`, `\.`); nil for an escape
        /// that PCRE2 refuses or this reader does not model.
        private mutating func escapedByte(_ byte: UInt8) throws(Unsupported) -> UInt8? {
            switch byte {
            case UInt8(ascii: "n"): return 0x0A
            case UInt8(ascii: "t"): return 0x09
            case UInt8(ascii: "r"): return 0x0D
            case UInt8(ascii: "f"): return 0x0C
            case UInt8(ascii: "e"): return 0x1B
            case UInt8(ascii: "a"): return 0x07
            case UInt8(ascii: "0"):
                var value = 0
                var count = 0
                while count < 2, let next = peek(), next >= 0x30 && next <= 0x37 {
                    value = value * 8 + Int(next - 0x30)
                    index += 1
                    count += 1
                }
                return UInt8(value)
            case UInt8(ascii: "x"):
                var digits: [UInt8] = []
                if peek() == UInt8(ascii: "{") {
                    index += 1
                    while let next = peek(), next != UInt8(ascii: "}") {
                        digits.append(next)
                        index += 1
                    }
                    guard peek() != nil else { throw unsupported("an unterminated \\x{") }
                    index += 1
                } else {
                    while digits.count < 2, let next = peek(), ByteSet.posix("xdigit")?.members[Int(next)] == true {
                        digits.append(next)
                        index += 1
                    }
                }
                guard digits.count <= 2 else { throw unsupported("\\x above 0xFF") }
                if digits.isEmpty { return 0 }
                return UInt8(String(decoding: digits, as: UTF8.self), radix: 16)
            case UInt8(ascii: "c"):
                guard let next = peek(), next < 0x80 else { throw unsupported("\\c at the end") }
                index += 1
                let upper = next >= 0x61 && next <= 0x7A ? next - 0x20 : next
                return upper ^ 0x40
            default:
                // An escaped letter or digit PCRE2 does not know is an error in nginx; any other
                // escaped byte is itself.
                return ByteSet.alnum.members[Int(byte)] ? nil : byte
            }
        }

        /// `[…]` after its `[`: the bytes it matches.
        private mutating func characterClass() throws(Unsupported) -> ByteSet {
            var negated = false
            if peek() == UInt8(ascii: "^") {
                negated = true
                index += 1
            }
            var set = ByteSet()
            var first = true
            while true {
                guard let byte = peek() else { throw unsupported("an unterminated [") }
                if byte == UInt8(ascii: "]") && !first {
                    index += 1
                    break
                }
                first = false
                let low: UInt8
                switch try classAtom() {
                case .set(let members):
                    set = set.union(members)
                    continue
                case .byte(let value):
                    low = value
                }
                // A range `a-z` (a `-` before `]` is a literal; PCRE2 refuses `a-\d`).
                guard peek() == UInt8(ascii: "-"), let after = peek(1), after != UInt8(ascii: "]") else {
                    set.members[Int(low)] = true
                    continue
                }
                index += 1
                guard case .byte(let high) = try classAtom(), low <= high else { throw unsupported("an invalid range in a class") }
                set = set.union(.range(low, high))
            }
            if caseless { set = set.caseFolded }
            return negated ? set.inverted : set
        }

        /// One member of a class: a byte, or a set (a class escape, a POSIX class).
        private enum ClassAtom {
            case byte(UInt8)
            case set(ByteSet)
        }

        private mutating func classAtom() throws(Unsupported) -> ClassAtom {
            guard let byte = peek() else { throw unsupported("an unterminated [") }
            if byte == UInt8(ascii: "[") && peek(1) == UInt8(ascii: ":") { return .set(try posixClass()) }
            index += 1
            guard byte == UInt8(ascii: "\\") else { return .byte(byte) }
            guard let escaped = peek() else { throw unsupported("an unterminated [") }
            index += 1
            if let set = try classEscape(escaped) { return .set(set) }
            if escaped == UInt8(ascii: "b") { return .byte(0x08) }
            guard let value = try escapedByte(escaped) else { throw unsupported("the escape \\\(UnicodeScalar(escaped)) in a class") }
            return .byte(value)
        }

        /// `[:name:]` or `[:^name:]` at `[`.
        private mutating func posixClass() throws(Unsupported) -> ByteSet {
            index += 2
            var negated = false
            if peek() == UInt8(ascii: "^") {
                negated = true
                index += 1
            }
            var name = ""
            while let byte = peek(), byte != UInt8(ascii: ":") {
                name.unicodeScalars.append(UnicodeScalar(byte))
                index += 1
            }
            guard peek() == UInt8(ascii: ":"), peek(1) == UInt8(ascii: "]"), let set = ByteSet.posix(name) else {
                throw unsupported("the POSIX class [:\(name):]")
            }
            index += 2
            return negated ? set.inverted : set
        }
    }
}
