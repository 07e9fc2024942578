/// The path nginx routes, in the form routes are matched against.
///
/// Everything here works on UTF-8 bytes, as nginx does: a `/`, `.`, `?` or `#` byte is one
/// whatever follows it. (Swift's `Character`s would glue a combining mark to the `/` before it,
/// so `/api/generate/\u{301}x` would have had one segment `generate/\u{301}x`.)
public enum URIPath {
    private static let slash = UInt8(ascii: "/")
    private static let dot = UInt8(ascii: ".")

    /// Normalises an already decoded path (nginx's `$uri`) the way nginx does: merges `//`,
    /// resolves `.` and `..` (never above the root). A `?` or `#` here is part of the path
    /// (it came from `%3F` or `%23`), so nothing is cut. The result always starts with `/`;
    /// on nginx's own `$uri` (with `merge_slashes on`) it changes nothing.
    public static func normalize(_ path: some StringProtocol) -> String {
        // nginx's own `$uri` is already normal: keep it as it is, without rebuilding it.
        if isNormal(path.utf8) { return String(path) }
        let bytes = Array(path.utf8)
        var segments: [ArraySlice<UInt8>] = []
        for segment in bytes.split(separator: slash, omittingEmptySubsequences: true) {
            if segment.count == 1 && segment.first == dot { continue }
            if segment.count == 2 && segment.allSatisfy({ $0 == dot }) {
                if !segments.isEmpty { segments.removeLast() }
                continue
            }
            segments.append(segment)
        }
        let endsWithSlash =
            bytes.last == slash || bytes.suffix(2).elementsEqual([slash, dot])
            || bytes.suffix(3).elementsEqual([slash, dot, dot])
        var out: [UInt8] = [slash]
        out.reserveCapacity(bytes.count + 1)
        for (index, segment) in segments.enumerated() {
            if index > 0 { out.append(slash) }
            out.append(contentsOf: segment)
        }
        if endsWithSlash && !segments.isEmpty { out.append(slash) }
        // Cut only at ASCII bytes of valid UTF-8: the result is valid UTF-8 as it is.
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether `normalize` would return `utf8` unchanged: it starts with `/`, and no segment
    /// is empty (`//`; a trailing `/` is kept), `.` or `..`.
    static func isNormal(_ utf8: some Collection<UInt8>) -> Bool {
        guard utf8.first == slash else { return false }
        // Bytes of the current segment so far (0 right after a `/`), and whether all are dots.
        var length = -1  // the leading `/` opens the first segment
        var dotsOnly = true
        for byte in utf8 {
            if byte == slash {
                if length == 0 || (dotsOnly && length > 0 && length <= 2) { return false }
                length = 0
                dotsOnly = true
            } else {
                length += 1
                if byte != dot { dotsOnly = false }
            }
        }
        return !(dotsOnly && length > 0 && length <= 2)
    }

    /// The path nginx would route for a raw request target (`REQUEST_URI`): cut at the first
    /// `?` or `#` byte, `%XX` decoded once, then normalised.
    public static func fromRequestURI(_ raw: some StringProtocol) -> String {
        var path = Substring(raw)
        if let q = path.utf8.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) {
            path = path[..<q]
        }
        return normalize(PercentDecoding.decode(path))
    }

    /// The query of a raw request URI (`$request_uri`) exactly as the client sent it: the bytes
    /// after its first `?`, not decoded; empty when there is none (or nothing follows the `?`).
    public static func query(ofRequestURI raw: some StringProtocol) -> Substring {
        let text = Substring(raw)
        guard let q = text.utf8.firstIndex(of: UInt8(ascii: "?")) else { return "" }
        return text[text.utf8.index(after: q)...]
    }

    /// The non-empty segments of a normalised path, split at every `/` byte.
    public static func segments(_ path: String) -> [Substring] {
        var result: [Substring] = []
        let utf8 = path.utf8
        var start = utf8.startIndex
        var index = start
        while index != utf8.endIndex {
            if utf8[index] == slash {
                if start != index { result.append(path[start..<index]) }
                start = utf8.index(after: index)
            }
            index = utf8.index(after: index)
        }
        if start != utf8.endIndex { result.append(path[start...]) }
        return result
    }
}
