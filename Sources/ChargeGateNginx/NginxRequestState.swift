import ChargeGateCore

/// What the analysis knows about one request while it follows nginx's phases: the current
/// `$uri`, the method, the variables set so far, the last regex captures, and how it got here
/// (rewrites, the conditions it assumed).
public struct NginxRequestState: Sendable, Equatable {
    /// nginx's `$uri` now (decoded and normalised by nginx for a client request; a rewrite sets
    /// it as written).
    public var uri: String
    /// The client's request target as sent (`$request_uri`: not decoded, with its query).
    public let requestURI: String
    /// The query string (`$args`, `$query_string`): what follows the first `?`.
    public var args: String
    /// The client's method (GET after an `error_page` redirect to a URI, unless HEAD).
    public var method: String
    /// Variables set by `set` or by named captures: a value, or nil when it is unknown.
    public var variables: [String: String?] = [:]
    /// Variables that are empty until the access phase sets them (declared only by
    /// `auth_request_set`): `$charge_gate_status` in the rewrite phase.
    public var emptyUntilAccess: Set<String> = []
    /// The configuration's `map`s, by the variable they define.
    public var maps: [String: NginxMap] = [:]
    /// `$1` … `$9` of the last regex that matched (index 0 is the whole match).
    public var captures: [String] = []
    /// Whether nginx treats the request as internal (after a rewrite or an internal redirect).
    public var isInternal = false
    /// nginx's `uri_changed`: a rewrite changed `$uri` and the location is searched again.
    public var uriChanged = false
    /// nginx's `valid_location`: cleared when `break` keeps a changed `$uri` in its location
    /// (`proxy_pass` then ignores its URI part and passes the whole `$uri`).
    public var validLocation = true
    /// nginx's `uri_changes` countdown: at 0 a rewrite or internal redirect is a 500.
    public var uriChangesLeft = 11
    /// Whether an `error_page` redirect already happened (nginx follows one).
    public var errorPageUsed = false
    /// The conditions this path assumed.
    public var assumptions: [NginxAssumption] = []
    /// The directives that changed `$uri`, in order.
    public var rewrites: [NginxDirective] = []
    /// The `set` that last assigned each variable.
    public var assignedBy: [String: NginxDirective] = [:]

    /// A request whose `$uri` is `path` (decoded, as nginx routes it), sent as `target` (the
    /// request line's, for `$request_uri` and the query string).
    public init(path: String, target: String, method: String) {
        self.requestURI = target
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        self.args = parts.count > 1 ? String(parts[1]) : ""
        self.uri = path
        self.method = method
    }

    /// The state of a client request for the target `uri` (as sent: `$request_uri`) with
    /// `method`: `$uri` is its path, `%XX` decoded and normalised as nginx does, `$args` its
    /// query.
    public init(uri: String, method: String) {
        self.requestURI = uri
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        self.args = parts.count > 1 ? String(parts[1]) : ""
        let raw = uri.utf8.contains { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }
        self.uri = raw ? URIPath.fromRequestURI(uri) : uri
        self.method = method
    }

    /// The value of `$name`, nil when unknown.
    public func value(of name: String) -> String? {
        value(of: name, depth: 0)
    }

    private func value(of name: String, depth: Int) -> String? {
        if let set = variables[name] { return set }
        if let map = maps[name] {
            guard depth < 8, let expression = map.valueExpression(for: evaluate(map.source, depth: depth + 1)) else { return nil }
            return evaluate(expression, depth: depth + 1)
        }
        if emptyUntilAccess.contains(name) { return "" }
        if let digit = Int(name), name.count == 1, digit >= 1 {
            return digit < captures.count ? captures[digit] : ""
        }
        switch name {
        case "uri", "document_uri": return uri
        case "request_uri": return requestURI
        case "args", "query_string": return args
        case "is_args": return args.isEmpty ? "" : "?"
        case "request_method": return method
        default: return nil
        }
    }

    /// The names of the variables in `text` (nginx's complex value syntax: `$name`,
    /// `${name}`, `$1`…`$9`).
    public static func variableNames(in text: String) -> [String] {
        parts(of: text).compactMap { part in
            if case .variable(let name) = part { return name }
            return nil
        }
    }

    /// `text` with its variables replaced; nil when one of them is unknown.
    public func evaluate(_ text: String) -> String? {
        evaluate(text, depth: 0)
    }

    private func evaluate(_ text: String, depth: Int) -> String? {
        var out = ""
        for part in Self.parts(of: text) {
            switch part {
            case .literal(let literal):
                out += literal
            case .variable(let name):
                guard let value = value(of: name, depth: depth) else { return nil }
                out += value
            }
        }
        return out
    }

    /// A piece of a complex value.
    private enum Part {
        /// Text as written.
        case literal(String)
        /// `$name`, `${name}` or a capture `$1`…`$9` (its digit as the name).
        case variable(String)
    }

    /// `ngx_http_script_compile`'s split of a value into literal text and variables.
    private static func parts(of text: String) -> [Part] {
        let bytes = Array(text.utf8)
        var parts: [Part] = []
        var literal: [UInt8] = []
        var index = 0
        func isNameByte(_ byte: UInt8) -> Bool {
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_")
        }
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "$"), index + 1 < bytes.count else {
                literal.append(bytes[index])
                index += 1
                continue
            }
            if !literal.isEmpty {
                parts.append(.literal(String(decoding: literal, as: UTF8.self)))
                literal.removeAll()
            }
            index += 1
            if bytes[index] >= UInt8(ascii: "1") && bytes[index] <= UInt8(ascii: "9") {
                parts.append(.variable(String(UnicodeScalar(bytes[index]))))
                index += 1
                continue
            }
            let bracket = bytes[index] == UInt8(ascii: "{")
            if bracket { index += 1 }
            var name: [UInt8] = []
            while index < bytes.count {
                if bracket && bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    break
                }
                guard isNameByte(bytes[index]) else { break }
                name.append(bytes[index])
                index += 1
            }
            parts.append(.variable(String(decoding: name, as: UTF8.self)))
        }
        if !literal.isEmpty { parts.append(.literal(String(decoding: literal, as: UTF8.self))) }
        return parts
    }
}
