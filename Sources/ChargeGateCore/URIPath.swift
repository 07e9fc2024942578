/// The path nginx routes, in the form routes are matched against.
public enum URIPath {
    /// Normalises an already decoded path (nginx's `$uri`) the way nginx does: merges `//`,
    /// resolves `.` and `..` (never above the root). A `?` or `#` here is part of the path
    /// (it came from `%3F` or `%23`), so nothing is cut. The result always starts with `/`;
    /// on nginx's own `$uri` (with `merge_slashes on`) it changes nothing.
    public static func normalize(_ path: some StringProtocol) -> String {
        var segments: [Substring] = []
        let text = Substring(path)
        for segment in text.split(separator: "/", omittingEmptySubsequences: true) {
            switch segment {
            case ".": continue
            case "..": if !segments.isEmpty { segments.removeLast() }
            default: segments.append(segment)
            }
        }
        let endsWithSlash = text.hasSuffix("/") || text.hasSuffix("/.") || text.hasSuffix("/..")
        var result = "/" + segments.joined(separator: "/")
        if endsWithSlash && !segments.isEmpty { result += "/" }
        return result
    }

    /// The path nginx would route for a raw request target (`REQUEST_URI`): cut at the query
    /// string, `%XX` decoded once, then normalised.
    public static func fromRequestURI(_ raw: some StringProtocol) -> String {
        var path = Substring(raw)
        if let q = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = path[..<q] }
        return normalize(PercentDecoding.decode(path))
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
