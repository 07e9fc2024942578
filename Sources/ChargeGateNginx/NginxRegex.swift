/// A regex of the configuration (a `location ~`, a `rewrite`, an `if (… ~ …)`, a `map` key),
/// evaluated as nginx's PCRE2 does (`NginxPCRE`: the bytes of the subject, `.` without `\n`, `$`
/// before a final `\n`, ASCII classes and case folding) with the standard library's `Regex`. As
/// in nginx (not anchored), a match anywhere in the subject counts; `~*` ignores case. A pattern
/// that cannot be translated or compiled makes the analysis say so instead of guessing.
public struct NginxRegex {
    /// The pattern as written.
    public let pattern: String
    /// `~*` / `!~*`.
    public let caseless: Bool
    private let regex: Regex<AnyRegexOutput>

    /// What a match captured: `$0` … `$n` (an unmatched group is empty, as in nginx) and the
    /// named groups.
    public struct Captures: Sendable, Equatable {
        /// `$0`, `$1`, …
        public var numbered: [String]
        /// `(?<name>…)` groups, which nginx also sets as `$name`.
        public var named: [String: String]

        /// Creates captures.
        public init(numbered: [String] = [], named: [String: String] = [:]) {
            self.numbered = numbered
            self.named = named
        }
    }

    /// Compiles `pattern`; throws `NginxPCRE.Unsupported` or the standard library's error when
    /// it cannot.
    public init(_ pattern: String, caseless: Bool) throws {
        self.pattern = pattern
        self.caseless = caseless
        regex = try Regex(NginxPCRE.translate(pattern, caseless: caseless)).matchingSemantics(.unicodeScalar)
            .wordBoundaryKind(.simple).asciiOnlyWordCharacters()
    }

    /// The captures of the first match in `subject`, nil when it does not match.
    public func match(_ subject: String) -> Captures? {
        guard let found = try? regex.firstMatch(in: NginxPCRE.subject(subject)) else { return nil }
        var captures = Captures()
        for index in 0..<found.output.count {
            let text = found.output[index].substring.map(NginxPCRE.text) ?? ""
            captures.numbered.append(text)
            if let name = found.output[index].name { captures.named[name] = text }
        }
        return captures
    }
}
