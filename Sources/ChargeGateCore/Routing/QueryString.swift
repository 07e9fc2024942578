/// `application/x-www-form-urlencoded` query strings.
public enum QueryString {
    /// The decoded value of the first `name=` pair, or nil when absent. Malformed pairs are
    /// skipped, never fatal. Pairs are split at every `&` and `=` byte, whatever follows it.
    public static func value(of name: String, in query: some StringProtocol) -> String? {
        let query = Substring(query)
        let utf8 = query.utf8
        var start = utf8.startIndex
        while start != utf8.endIndex {
            let end = utf8[start...].firstIndex(of: UInt8(ascii: "&")) ?? utf8.endIndex
            if start != end {
                let pair = query[start..<end]
                let equals = pair.utf8.firstIndex(of: UInt8(ascii: "="))
                if PercentDecoding.decode(pair[..<(equals ?? end)], plusAsSpace: true) == name {
                    guard let equals else { return "" }
                    return PercentDecoding.decode(pair[pair.utf8.index(after: equals)...], plusAsSpace: true)
                }
            }
            start = end == utf8.endIndex ? end : utf8.index(after: end)
        }
        return nil
    }
}
