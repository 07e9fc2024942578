/// Parses one configuration file into directives, as `ngx_conf_parse` reads it: a `}` closes
/// the innermost block, a file that ends inside a block or with an unfinished directive is an
/// error. `include` is kept as a directive here; `NginxConfiguration` resolves it.
public enum NginxParser {
    /// Blocks nested deeper than this are refused (nginx has no such limit; real configs stay
    /// under 10 levels, and the bound keeps the recursion safe on any input).
    public static let maximumDepth = 200

    /// The directives of `bytes`, the text of `file`.
    public static func parse(_ bytes: [UInt8], file: String) throws(NginxParseError) -> [NginxDirective] {
        var tokenizer = NginxTokenizer(bytes, file: file)
        return try parseBlock(&tokenizer, file: file, depth: 0, opener: nil)
    }

    private static func parseBlock(
        _ tokenizer: inout NginxTokenizer, file: String, depth: Int, opener: NginxSourceLocation?
    ) throws(NginxParseError) -> [NginxDirective] {
        var directives: [NginxDirective] = []
        while true {
            switch try tokenizer.next() {
            case .end:
                if opener != nil {
                    throw NginxParseError(
                        "unexpected end of file, expecting \"}\"", at: NginxSourceLocation(file: file, line: tokenizer.line))
                }
                return directives
            case .blockEnd(let line):
                guard opener != nil else {
                    throw NginxParseError("unexpected \"}\"", at: NginxSourceLocation(file: file, line: line))
                }
                return directives
            case .directive(let words):
                directives.append(directive(words, file: file, block: nil))
            case .blockStart(let words):
                let location = NginxSourceLocation(file: file, line: words[0].line)
                guard depth < maximumDepth else { throw NginxParseError("blocks nested too deeply", at: location) }
                let inner = try parseBlock(&tokenizer, file: file, depth: depth + 1, opener: location)
                directives.append(directive(words, file: file, block: inner))
            }
        }
    }

    private static func directive(_ words: [NginxToken], file: String, block: [NginxDirective]?) -> NginxDirective {
        NginxDirective(
            name: words[0].text, args: Array(words.dropFirst()), location: NginxSourceLocation(file: file, line: words[0].line),
            block: block)
    }
}
