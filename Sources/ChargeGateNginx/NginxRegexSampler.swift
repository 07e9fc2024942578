/// A few short strings that a regex might match, read from its pattern (literals, classes,
/// groups, alternatives, quantifiers at their minimum and one more; assertions and anchors
/// match the empty string). The analysis turns them into request paths under a route and
/// keeps only those the regex really matches, so a sample never has to be right, only useful:
/// `\.(png|jpg)$` gives `.png` and `.jpg`, hence `/api/describe/x.png`. A pattern this reader
/// does not follow (backreferences, `\p{…}`) gives no samples (the analysis then says
/// UNDECIDED where the regex may match a path under a route).
public enum NginxRegexSampler {
    /// At most this many samples per pattern (and per part of it).
    public static let maximumSamples = 16

    /// Samples of `pattern`; `dot` is what `.` and `\N` give (the analysis marks them to try a
    /// newline there, which PCRE's `.` does not match). Where there are more than the maximum,
    /// those with one of the `prefer` words (a route's path segments) are kept first.
    public static func samples(_ pattern: String, dot: String = "x", prefer: [String] = []) -> [String] {
        var reader = Reader(Array(pattern.unicodeScalars), dot: dot, prefer: prefer)
        guard let samples = reader.alternation(depth: 0), reader.atEnd else { return [] }
        return samples
    }

    /// A recursive-descent reader of the pattern that returns samples instead of a tree.
    private struct Reader {
        /// The pattern.
        let scalars: [Unicode.Scalar]
        /// Where the reader is.
        var index = 0
        /// What `.` gives.
        let dot: String
        /// Words whose samples are kept first.
        let prefer: [String]

        /// A reader at the start of `scalars`.
        init(_ scalars: [Unicode.Scalar], dot: String, prefer: [String]) {
            self.scalars = scalars
            self.dot = dot
            self.prefer = prefer
        }

        /// Whether the whole pattern was read.
        var atEnd: Bool { index >= scalars.count }

        private func peek(_ offset: Int = 0) -> Unicode.Scalar? {
            index + offset < scalars.count ? scalars[index + offset] : nil
        }

        private func capped(_ values: [String]) -> [String] {
            var seen = Set<String>()
            var out: [String] = []
            var ordered = values
            if values.count > NginxRegexSampler.maximumSamples && !prefer.isEmpty {
                let preferred = values.filter { value in prefer.contains { value.contains($0) } }
                ordered = preferred + values.filter { value in !prefer.contains { value.contains($0) } }
            }
            for value in ordered where seen.insert(value).inserted {
                out.append(value)
                if out.count == NginxRegexSampler.maximumSamples { break }
            }
            return out
        }

        /// `a|b|…` up to a `)` or the end: the samples of every branch.
        mutating func alternation(depth: Int) -> [String]? {
            guard depth < 32 else { return nil }
            var branches: [String] = []
            while true {
                guard let branch = sequence(depth: depth) else { return nil }
                branches += branch
                guard peek() == "|" else { break }
                index += 1
            }
            return capped(branches)
        }

        private mutating func sequence(depth: Int) -> [String]? {
            var samples = [""]
            while let next = peek(), next != "|", next != ")" {
                guard var atom = atom(depth: depth) else { return nil }
                atom = quantified(atom)
                var product: [String] = []
                for prefix in samples {
                    for suffix in atom { product.append(prefix + suffix) }
                }
                samples = capped(product)
            }
            return samples
        }

        /// `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}` (and a lazy or possessive mark) after an atom.
        private mutating func quantified(_ atom: [String]) -> [String] {
            var counts: [Int]
            switch peek() {
            case "*":
                index += 1
                counts = [0, 1]
            case "+":
                index += 1
                counts = [1, 2]
            case "?":
                index += 1
                counts = [0, 1]
            case "{":
                guard let (low, high, length) = braces() else { return atom }
                index += length
                counts = [low]
                if high.map({ $0 > low }) ?? true { counts.append(low + 1) }
            default:
                return atom
            }
            if peek() == "?" || peek() == "+" { index += 1 }
            var out: [String] = []
            for count in counts {
                if count == 0 {
                    out.append("")
                    continue
                }
                for sample in atom { out.append(String(repeating: sample, count: min(count, 4))) }
            }
            return capped(out)
        }

        /// A `{n}`, `{n,}` or `{n,m}` at the current position: (n, m, length); nil when it is a
        /// literal `{`.
        private func braces() -> (Int, Int?, Int)? {
            var offset = 1
            var low = ""
            var high = ""
            var comma = false
            while let c = peek(offset), c != "}" {
                if c == "," && !comma {
                    comma = true
                } else if c.properties.numericType != nil && c.isASCII {
                    if comma { high.unicodeScalars.append(c) } else { low.unicodeScalars.append(c) }
                } else {
                    return nil
                }
                offset += 1
            }
            guard peek(offset) == "}", let n = Int(low) else { return nil }
            if !comma { return (n, n, offset + 1) }
            return (n, high.isEmpty ? nil : Int(high), offset + 1)
        }

        private mutating func atom(depth: Int) -> [String]? {
            guard let c = peek() else { return nil }
            index += 1
            switch c {
            case "(":
                return group(depth: depth)
            case "[":
                return characterClass()
            case ".":
                return [dot]
            case "^", "$":
                return [""]
            case "\\":
                return escape()
            case "*", "+", "?":
                return nil
            default:
                return [String(c)]
            }
        }

        private mutating func group(depth: Int) -> [String]? {
            var assertion = false
            if peek() == "?" {
                index += 1
                switch peek() {
                case ":", ">", "|":
                    index += 1
                case "=", "!":
                    index += 1
                    assertion = true
                case "<" where peek(1) == "=" || peek(1) == "!":
                    index += 2
                    assertion = true
                case "<", "P", "'":
                    if peek() == "P" { index += 1 }
                    let close: Unicode.Scalar = peek() == "'" ? "'" : ">"
                    index += 1
                    while let n = peek(), n != close { index += 1 }
                    guard !atEnd else { return nil }
                    index += 1
                default:
                    // Inline flags: (?i) or (?i:…).
                    while let n = peek(), n != ")" && n != ":" { index += 1 }
                    guard let n = peek() else { return nil }
                    index += 1
                    if n == ")" { return [""] }
                }
            }
            guard let inner = alternation(depth: depth + 1), peek() == ")" else { return nil }
            index += 1
            return assertion ? [""] : inner
        }

        /// `[…]`: its first two members as written (a range gives its ends), a POSIX class or a
        /// class escape a typical member; a negated class a common character it excludes.
        private mutating func characterClass() -> [String]? {
            var negate = false
            if peek() == "^" {
                negate = true
                index += 1
            }
            var members: [Unicode.Scalar] = []
            var set = NginxPCRE.ByteSet()
            func add(_ scalar: Unicode.Scalar) {
                members.append(scalar)
                if scalar.isASCII { set.members[Int(scalar.value)] = true }
            }
            var first = true
            while let c = peek() {
                if c == "]" && !first { break }
                first = false
                if c == "[" && peek(1) == ":" {
                    guard let (posix, typical) = posixClass() else { return nil }
                    set = set.union(posix)
                    members.append(typical)
                    continue
                }
                index += 1
                if c == "\\", let e = peek() {
                    index += 1
                    switch e {
                    case "d": (set, members) = (set.union(.digit), members + ["1"])
                    case "w": (set, members) = (set.union(.word), members + ["x"])
                    case "s": (set, members) = (set.union(.space), members + [" "])
                    case "n": add("\n")
                    case "t": add("\t")
                    default: add(e)
                    }
                    continue
                }
                if peek() == "-", let high = peek(1), high != "]" {
                    index += 2
                    members.append(c)
                    members.append(high)
                    if c.isASCII && high.isASCII && c.value <= high.value {
                        set = set.union(.range(UInt8(c.value), UInt8(high.value)))
                    }
                    continue
                }
                add(c)
            }
            guard peek() == "]" else { return nil }
            index += 1
            if negate {
                let common = ["x", "a", "1", "-", "_"].first { !set.members[Int(Unicode.Scalar($0)?.value ?? 0)] }
                let any = (0x21...0x7E).first { !set.members[$0] }.map { String(Unicode.Scalar(UInt8($0))) }
                return (common ?? any).map { [$0] } ?? []
            }
            return Array(members.prefix(2).map { String($0) })
        }

        /// `[:name:]` or `[:^name:]` at `[`: its bytes and a typical member.
        private mutating func posixClass() -> (NginxPCRE.ByteSet, Unicode.Scalar)? {
            index += 2
            var negated = false
            if peek() == "^" {
                negated = true
                index += 1
            }
            var name = ""
            while let c = peek(), c != ":" {
                name.unicodeScalars.append(c)
                index += 1
            }
            guard peek() == ":", peek(1) == "]", let set = NginxPCRE.ByteSet.posix(name) else { return nil }
            index += 2
            let typical: [String: Unicode.Scalar] = [
                "alnum": "a", "alpha": "a", "ascii": "x", "blank": " ", "cntrl": "\u{1}", "digit": "1", "graph": "x", "lower": "a",
                "print": "x", "punct": "-", "space": " ", "upper": "A", "word": "x", "xdigit": "a",
            ]
            if negated {
                let pick = ["x", "1", "-", "A", " "].first { !set.members[Int(Unicode.Scalar($0)?.value ?? 0)] } ?? "x"
                return (set.inverted, Unicode.Scalar(pick) ?? "x")
            }
            return (set, typical[name] ?? "x")
        }

        private mutating func escape() -> [String]? {
            guard let e = peek() else { return nil }
            index += 1
            switch e {
            case "d": return ["1"]
            case "N": return [dot]
            case "D", "w", "S", "H", "V", "R", "X": return ["x"]
            case "W": return ["-"]
            case "s", "h": return [" "]
            case "v": return ["\u{0B}"]
            case "b", "B", "A", "z", "Z", "G", "K": return [""]
            case "n": return ["\n"]
            case "t": return ["\t"]
            case "r": return ["\r"]
            case "x":
                return hexEscape()
            case "Q":
                var literal = ""
                while let c = peek(), !(c == "\\" && peek(1) == "E") {
                    literal.unicodeScalars.append(c)
                    index += 1
                }
                if !atEnd { index += 2 }
                return [literal]
            case "E":
                return [""]
            case "0":
                var value: UInt32 = 0
                for _ in 0..<2 {
                    guard let c = peek(), c.value >= 0x30 && c.value <= 0x37 else { break }
                    value = value * 8 + c.value - 0x30
                    index += 1
                }
                return [String(Unicode.Scalar(UInt8(value)))]
            case "c":
                guard let c = peek(), c.isASCII else { return nil }
                index += 1
                return [String(Unicode.Scalar(UInt8(c.value & 0x1F)))]
            case "1", "2", "3", "4", "5", "6", "7", "8", "9", "g", "k", "p", "P":
                return nil
            default:
                return [String(e)]
            }
        }

        private mutating func hexEscape() -> [String]? {
            var digits = ""
            if peek() == "{" {
                index += 1
                while let c = peek(), c != "}" {
                    digits.unicodeScalars.append(c)
                    index += 1
                }
                guard peek() == "}" else { return nil }
                index += 1
            } else {
                for _ in 0..<2 {
                    guard let c = peek(), c.properties.isASCIIHexDigit else { break }
                    digits.unicodeScalars.append(c)
                    index += 1
                }
            }
            guard let value = UInt32(digits, radix: 16), let scalar = Unicode.Scalar(value) else { return nil }
            return [String(scalar)]
        }
    }
}
