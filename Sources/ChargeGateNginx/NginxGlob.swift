/// The file-name patterns of `include` (glob(3) with no flags, as `ngx_open_glob` calls it):
/// `*` and `?` match within one path component and never a leading `.`; `[…]` is a set (`!` or
/// `^` negates, `a-z` ranges); a backslash quotes the next character. Matches are sorted by
/// byte order, as glob sorts them in nginx's C locale.
public struct NginxGlob: Sendable {
    private let components: [[UInt8]]
    private let absolute: Bool

    /// Whether nginx treats `path` as a pattern: it contains `*`, `?` or `[`.
    public static func isPattern(_ path: String) -> Bool {
        path.utf8.contains { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "[") }
    }

    /// A pattern.
    public init(_ pattern: String) {
        let bytes = Array(pattern.utf8)
        absolute = bytes.first == UInt8(ascii: "/")
        components = bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true).map(Array.init)
    }

    /// The paths among `paths` that the pattern matches, sorted.
    public func matches(in paths: [String]) -> [String] {
        paths.filter(matches).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    /// Whether the pattern matches `path`.
    public func matches(_ path: String) -> Bool {
        let bytes = Array(path.utf8)
        guard (bytes.first == UInt8(ascii: "/")) == absolute else { return false }
        let parts = bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true).map(Array.init)
        guard parts.count == components.count else { return false }
        for (pattern, name) in zip(components, parts) where !Self.match(pattern[...], name[...], start: true) {
            return false
        }
        return true
    }

    /// fnmatch of one component (glibc: a leading `.` is never matched by `*`, `?` or a set),
    /// the usual two-pointer walk over `*`, so any input stays linear-ish.
    private static func match(_ pattern: ArraySlice<UInt8>, _ name: ArraySlice<UInt8>, start: Bool) -> Bool {
        if name.first == UInt8(ascii: "."), let first = pattern.first,
            first == UInt8(ascii: "*") || first == UInt8(ascii: "?") || first == UInt8(ascii: "[")
        {
            return false
        }
        var p = pattern.startIndex
        var n = name.startIndex
        var star: (p: Int, n: Int)?
        while n < name.endIndex {
            if p < pattern.endIndex, let next = step(pattern, at: p, byte: name[n]) {
                p = next
                n += 1
            } else if p < pattern.endIndex && pattern[p] == UInt8(ascii: "*") {
                star = (p, n)
                p += 1
            } else if let last = star {
                star = (last.p, last.n + 1)
                p = last.p + 1
                n = last.n + 1
            } else {
                return false
            }
        }
        while p < pattern.endIndex && pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.endIndex
    }

    /// Where the pattern continues when its token at `p` (not `*`) matches `byte`; nil otherwise.
    private static func step(_ pattern: ArraySlice<UInt8>, at p: Int, byte: UInt8) -> Int? {
        switch pattern[p] {
        case UInt8(ascii: "*"):
            return nil
        case UInt8(ascii: "?"):
            return p + 1
        case UInt8(ascii: "["):
            if let (matched, next) = matchSet(pattern, from: p, byte: byte) { return matched ? next : nil }
            return byte == UInt8(ascii: "[") ? p + 1 : nil
        case UInt8(ascii: "\\") where p + 1 < pattern.endIndex:
            return pattern[p + 1] == byte ? p + 2 : nil
        case let literal:
            return literal == byte ? p + 1 : nil
        }
    }

    /// A `[…]` set at `from`: whether `byte` is in it and where the pattern continues; nil when
    /// the `[` has no closing `]` (then it is a literal `[`).
    private static func matchSet(_ pattern: ArraySlice<UInt8>, from: Int, byte: UInt8) -> (Bool, Int)? {
        var i = from + 1
        var negate = false
        if i < pattern.endIndex && (pattern[i] == UInt8(ascii: "!") || pattern[i] == UInt8(ascii: "^")) {
            negate = true
            i += 1
        }
        var matched = false
        var first = true
        while i < pattern.endIndex {
            var c = pattern[i]
            if c == UInt8(ascii: "]") && !first { return (matched != negate, i + 1) }
            first = false
            if c == UInt8(ascii: "\\") && i + 1 < pattern.endIndex {
                i += 1
                c = pattern[i]
            }
            if i + 2 < pattern.endIndex && pattern[i + 1] == UInt8(ascii: "-") && pattern[i + 2] != UInt8(ascii: "]") {
                let high = pattern[i + 2]
                if c <= byte && byte <= high { matched = true }
                i += 3
            } else {
                if c == byte { matched = true }
                i += 1
            }
        }
        return nil
    }
}
