/// One word of a directive, unquoted and unescaped as nginx's tokenizer does it.
public struct NginxToken: Sendable, Hashable, CustomStringConvertible {
    /// How the word was written.
    public enum Quote: Sendable, Hashable {
        /// Bare.
        case none
        /// Between `'` and `'`.
        case single
        /// Between `"` and `"`.
        case double
    }

    /// The word: quotes removed, `\"` `\'` `\\` `\t` `\r` `\n` replaced; other backslashes kept.
    public var text: String
    /// How it was quoted.
    public var quote: Quote
    /// The line the word starts on.
    public var line: Int

    /// Creates a token.
    public init(_ text: String, quote: Quote = .none, line: Int = 1) {
        self.text = text
        self.quote = quote
        self.line = line
    }

    /// Bytes a bare word may hold and still read back the same (no space, quote, backslash,
    /// `;`, `{`, `}` or `#`).
    private static let bare = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-:$@=^~*+,()<>!?%&|[]".utf8)

    /// The word as it could be written back, reading as the same word: bare when that is safe,
    /// else between double quotes with `"` and `\` (and newlines, tabs, CRs) escaped.
    public var description: String {
        if !text.isEmpty && text.utf8.allSatisfy(Self.bare.contains) { return text }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
