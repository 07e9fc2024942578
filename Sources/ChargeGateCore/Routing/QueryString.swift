/// `application/x-www-form-urlencoded` query strings.
public enum QueryString {
    /// The decoded value of the first `name=` pair, or nil when absent. Malformed pairs are
    /// skipped, never fatal. Pairs are split at every `&` and `=` byte, whatever follows it.
    public static func value(of name: String, in query: some StringProtocol) -> String? {
        values(of: name, in: query, first: true).first
    }

    /// The decoded value of every `name=` pair, in order (`name` alone counts as `""`).
    public static func values(of name: String, in query: some StringProtocol) -> [String] {
        values(of: name, in: query, first: false)
    }

    /// The first of `names` that appears more than once, with how often; nil when none does.
    /// A repeated parameter is refused, never half read (`?pools=a&pools=b` once answered about
    /// `a` only).
    public static func repeated(_ names: [String], in query: some StringProtocol) -> (name: String, count: Int)? {
        for name in names {
            let count = values(of: name, in: query).count
            if count > 1 { return (name, count) }
        }
        return nil
    }

    private static func values(of name: String, in query: some StringProtocol, first: Bool) -> [String] {
        let query = Substring(query)
        let utf8 = query.utf8
        var found: [String] = []
        var start = utf8.startIndex
        while start != utf8.endIndex {
            let end = utf8[start...].firstIndex(of: UInt8(ascii: "&")) ?? utf8.endIndex
            if start != end {
                let pair = query[start..<end]
                let equals = pair.utf8.firstIndex(of: UInt8(ascii: "="))
                if PercentDecoding.decode(pair[..<(equals ?? end)], plusAsSpace: true) == name {
                    if let equals {
                        found.append(PercentDecoding.decode(pair[pair.utf8.index(after: equals)...], plusAsSpace: true))
                    } else {
                        found.append("")
                    }
                    if first { return found }
                }
            }
            start = end == utf8.endIndex ? end : utf8.index(after: end)
        }
        return found
    }
}
