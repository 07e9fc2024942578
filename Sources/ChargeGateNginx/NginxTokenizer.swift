/// nginx's configuration tokenizer, `ngx_conf_read_token` (src/core/ngx_conf_file.c) byte for
/// byte: words end at space, tab, CR, LF, `;` or `{`; `#` starts a comment only where a word
/// could start; `"…"` and `'…'` are one word and must be followed by a space, `;`, `{` or `)`;
/// a backslash protects the next byte; `${` does not open a block; a `}` inside a word is part of
/// it. Each call returns the words of one directive and how it ended.
public struct NginxTokenizer {
    /// How a directive ended.
    public enum Event: Sendable, Equatable {
        /// Words ended by `;`.
        case directive([NginxToken])
        /// Words ended by `{`: a block follows.
        case blockStart([NginxToken])
        /// A `}` where a word could start, on this line.
        case blockEnd(line: Int)
        /// The end of the text, outside any word.
        case end
    }

    private let bytes: [UInt8]
    private let file: String
    private var position = 0
    /// The current line, from 1.
    public private(set) var line = 1

    /// A tokenizer over one file's bytes; `file` names it in errors.
    public init(_ bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A
    }

    private func error(_ message: String) -> NginxParseError {
        NginxParseError(message, at: NginxSourceLocation(file: file, line: line))
    }

    private static func describe(_ byte: UInt8) -> String {
        byte >= 0x20 && byte < 0x7F ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
    }

    /// The next directive's words, a block's end, or the end of the text.
    public mutating func next() throws(NginxParseError) -> Event {
        var words: [NginxToken] = []
        var needSpace = false
        var lastSpace = true
        var sharpComment = false
        var variable = false
        var quoted = false
        var singleQuoted = false
        var doubleQuoted = false
        var quote = NginxToken.Quote.none
        var start = position
        var startLine = line

        while true {
            guard position < bytes.count else {
                if !words.isEmpty || !lastSpace {
                    throw error("unexpected end of file, expecting \";\" or \"}\"")
                }
                return .end
            }
            let byte = bytes[position]
            position += 1

            if byte == 0x0A {
                line += 1
                sharpComment = false
            }
            if sharpComment { continue }
            if quoted {
                quoted = false
                continue
            }

            if needSpace {
                if Self.isSpace(byte) {
                    lastSpace = true
                    needSpace = false
                    continue
                }
                if byte == UInt8(ascii: ";") { return .directive(words) }
                if byte == UInt8(ascii: "{") { return .blockStart(words) }
                guard byte == UInt8(ascii: ")") else { throw error("unexpected \"\(Self.describe(byte))\"") }
                lastSpace = true
                needSpace = false
            }

            if lastSpace {
                start = position - 1
                startLine = line
                quote = .none
                if Self.isSpace(byte) { continue }
                switch byte {
                case UInt8(ascii: ";"), UInt8(ascii: "{"):
                    guard !words.isEmpty else { throw error("unexpected \"\(Self.describe(byte))\"") }
                    return byte == UInt8(ascii: "{") ? .blockStart(words) : .directive(words)
                case UInt8(ascii: "}"):
                    guard words.isEmpty else { throw error("unexpected \"}\"") }
                    return .blockEnd(line: line)
                case UInt8(ascii: "#"):
                    sharpComment = true
                    continue
                case UInt8(ascii: "\\"):
                    quoted = true
                    lastSpace = false
                    continue
                case UInt8(ascii: "\""):
                    start += 1
                    doubleQuoted = true
                    quote = .double
                    lastSpace = false
                    continue
                case UInt8(ascii: "'"):
                    start += 1
                    singleQuoted = true
                    quote = .single
                    lastSpace = false
                    continue
                case UInt8(ascii: "$"):
                    variable = true
                    lastSpace = false
                    continue
                default:
                    lastSpace = false
                }
            } else {
                if byte == UInt8(ascii: "{") && variable { continue }
                variable = false
                if byte == UInt8(ascii: "\\") {
                    quoted = true
                    continue
                }
                if byte == UInt8(ascii: "$") {
                    variable = true
                    continue
                }
                var found = false
                if doubleQuoted {
                    if byte == UInt8(ascii: "\"") {
                        doubleQuoted = false
                        needSpace = true
                        found = true
                    }
                } else if singleQuoted {
                    if byte == UInt8(ascii: "'") {
                        singleQuoted = false
                        needSpace = true
                        found = true
                    }
                } else if Self.isSpace(byte) || byte == UInt8(ascii: ";") || byte == UInt8(ascii: "{") {
                    lastSpace = true
                    found = true
                }
                if found {
                    words.append(NginxToken(Self.unescape(bytes[start..<(position - 1)]), quote: quote, line: startLine))
                    if byte == UInt8(ascii: ";") { return .directive(words) }
                    if byte == UInt8(ascii: "{") { return .blockStart(words) }
                }
            }
        }
    }

    /// A word's bytes with nginx's escapes applied: `\"` `\'` `\\` give the character, `\t` `\r`
    /// `\n` the control character; any other backslash stays.
    private static func unescape(_ word: ArraySlice<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(word.count)
        var index = word.startIndex
        while index < word.endIndex {
            let byte = word[index]
            if byte == UInt8(ascii: "\\") && index + 1 < word.endIndex {
                switch word[index + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "\\"):
                    out.append(word[index + 1])
                    index += 2
                    continue
                case UInt8(ascii: "t"):
                    out.append(0x09)
                    index += 2
                    continue
                case UInt8(ascii: "r"):
                    out.append(0x0D)
                    index += 2
                    continue
                case UInt8(ascii: "n"):
                    out.append(0x0A)
                    index += 2
                    continue
                default:
                    break
                }
            }
            out.append(byte)
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}
