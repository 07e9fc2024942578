/// A `map SOURCE $name { … }` block (ngx_http_map_module): strings compared ignoring case,
/// then the regexes (`~`, `~*`) in order, then `default` (empty when absent). The analysis
/// evaluates it when its value is certain: every entry gives the same value (so the source
/// does not matter), or the source is known and every regex that has to be tried can be (a
/// regex's value that uses its captures is not known).
public struct NginxMap: Sendable, Equatable {
    /// The source expression (`$remote_addr`).
    public var source: String
    /// String keys (lower-cased) and their values, in order.
    public var strings: [(key: String, value: String)]
    /// The regex entries' values, in order.
    public var regexValues: [String]
    /// The regex entries' patterns (`~*`: caseless), in order.
    var regexKeys: [(pattern: String, caseless: Bool)] = []
    /// `default`'s value.
    public var defaultValue: String

    /// The map of a `map` block's directives, or nil when it is not one nginx reads.
    public init?(source: String, body: [NginxDirective]) {
        self.source = source
        strings = []
        regexValues = []
        defaultValue = ""
        for entry in body {
            let values = entry.values
            switch entry.name {
            case "hostnames", "volatile":
                continue
            case "default" where values.count == 1:
                defaultValue = values[0]
            default:
                guard values.count == 1 else { return nil }
                if entry.name.hasPrefix("~") {
                    regexValues.append(values[0])
                    let caseless = entry.name.hasPrefix("~*")
                    let pattern = String(entry.name.dropFirst(caseless ? 2 : 1))
                    regexKeys.append((pattern, caseless))
                } else {
                    strings.append((Self.lowercased(entry.name.hasPrefix("\\") ? String(entry.name.dropFirst()) : entry.name), values[0]))
                }
            }
        }
    }

    /// Compares the entries.
    public static func == (lhs: NginxMap, rhs: NginxMap) -> Bool {
        lhs.source == rhs.source && lhs.strings.map(\.key) == rhs.strings.map(\.key) && lhs.strings.map(\.value) == rhs.strings.map(\.value)
            && lhs.regexValues == rhs.regexValues && lhs.regexKeys.map(\.pattern) == rhs.regexKeys.map(\.pattern)
            && lhs.regexKeys.map(\.caseless) == rhs.regexKeys.map(\.caseless) && lhs.defaultValue == rhs.defaultValue
    }

    private static func lowercased(_ text: String) -> String {
        String(decoding: text.utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }

    /// The value expression the map gives for a source value (`evaluate` turns it into text):
    /// nil when it cannot be known without trying a regex.
    public func valueExpression(for source: String?) -> String? {
        let all = strings.map(\.value) + regexValues + [defaultValue]
        if all.allSatisfy({ $0 == all[0] }) { return all[0] }
        guard let source else { return nil }
        let key = Self.lowercased(source)
        if let found = strings.first(where: { $0.key == key }) { return found.value }
        for (entry, value) in zip(regexKeys, regexValues) {
            guard let regex = try? NginxRegex(entry.pattern, caseless: entry.caseless) else { return nil }
            guard regex.match(source) != nil else { continue }
            return NginxRequestState.variableNames(in: value).contains(where: { Int($0) != nil }) ? nil : value
        }
        return defaultValue
    }
}
