/// The path nginx routes, in the form routes are matched against.
public enum URIPath {
    /// Normalises a path the way nginx does for `$uri`: drops the query string, decodes `%XX`
    /// once, merges `//`, resolves `.` and `..` (never above the root). The result always
    /// starts with `/`. nginx hands the responder an already normalised `$uri`; running this
    /// again on it changes nothing, and it makes a raw `REQUEST_URI` safe to route as a fallback.
    public static func normalize(_ raw: some StringProtocol, decode: Bool) -> String {
        var path = Substring(raw)
        if let q = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = path[..<q] }
        let decoded = decode ? PercentDecoding.decode(path) : String(path)
        var segments: [Substring] = []
        for segment in decoded.split(separator: "/", omittingEmptySubsequences: true) {
            switch segment {
            case ".": continue
            case "..": if !segments.isEmpty { segments.removeLast() }
            default: segments.append(segment)
            }
        }
        let endsWithSlash = decoded.hasSuffix("/") || decoded.hasSuffix("/.") || decoded.hasSuffix("/..")
        var result = "/" + segments.joined(separator: "/")
        if endsWithSlash && !segments.isEmpty { result += "/" }
        return result
    }

    /// The non-empty segments of a normalised path.
    public static func segments(_ path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: true)
    }
}

/// `application/x-www-form-urlencoded` query strings.
public enum QueryString {
    /// The decoded value of the first `name=` pair, or nil when absent. Malformed pairs are
    /// skipped, never fatal.
    public static func value(of name: String, in query: some StringProtocol) -> String? {
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if PercentDecoding.decode(parts[0], plusAsSpace: true) == name {
                return parts.count > 1 ? PercentDecoding.decode(parts[1], plusAsSpace: true) : ""
            }
        }
        return nil
    }
}
