/// One Redis command encoded in RESP as its arguments are appended: a single byte buffer that a
/// store keeps and reuses, so sending a command allocates nothing once the buffer has grown.
///
/// The argument count heads a RESP command (`*N\r\n`) but is known only at the end, so the
/// buffer starts with `headroom` spare bytes and `withEncoded` writes the count into the end
/// of that space: the arguments are never moved.
///
/// The buffer is kept zero-filled past `end` and written through one pointer per argument:
/// a spend sends a few dozen short arguments, and appending them byte by byte (or through
/// `append(contentsOf:)`) cost a few hundred instructions each (`bench/run --instructions`).
///
/// Pure Swift (no hiredis): `RedisConnection` hands the encoded bytes to
/// `redisAppendFormattedCommand`, which copies them.
public struct RESPCommand: Sendable {
    /// Room for `*N\r\n` with any `Int` N.
    private static let headroom = 24
    /// The longest `$LEN\r\n` (any `Int` length) and the longest decimal `Int64` argument.
    private static let maxHeader = 24
    private static let maxNumber = 20

    /// `headroom` bytes, then the encoded arguments up to `end`, then spare zeroes.
    private var buffer: [UInt8]
    /// Where the next argument goes.
    private var end = RESPCommand.headroom
    /// Arguments appended so far.
    public private(set) var count = 0

    /// An empty command whose buffer holds `capacity` bytes of arguments before it grows.
    public init(capacity: Int = 512) {
        buffer = [UInt8](repeating: 0, count: Self.headroom + Swift.max(64, capacity))
    }

    /// A command of the given arguments.
    public init(_ arguments: [[UInt8]]) {
        self.init(capacity: arguments.reduce(0) { $0 + $1.count + 16 })
        for argument in arguments { append(argument) }
    }

    /// Drops every argument, keeping the buffer's storage.
    public mutating func removeAll() {
        end = Self.headroom
        count = 0
    }

    /// Appends one argument: the UTF-8 bytes of `text`.
    public mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { appendArgument(UnsafeRawBufferPointer($0)) }
    }

    /// Appends one argument: `head + ":{" + tag + "}"` (`KeySpace.events(_:tag:)`, a stream
    /// placed in a cluster slot), written in place without making that string.
    public mutating func append(_ head: String, tagged tag: String) {
        var head = head
        var tag = tag
        head.withUTF8 { head in
            tag.withUTF8 { tag in
                let length = head.count + tag.count + 3
                reserve(Self.maxHeader + length + 2)
                buffer.withUnsafeMutableBufferPointer { out in
                    var at = Self.writeHeader(length, into: out, at: end)
                    for byte in head {
                        out[at] = byte
                        at += 1
                    }
                    out[at] = UInt8(ascii: ":")
                    out[at + 1] = UInt8(ascii: "{")
                    at += 2
                    for byte in tag {
                        out[at] = byte
                        at += 1
                    }
                    out[at] = UInt8(ascii: "}")
                    out[at + 1] = UInt8(ascii: "\r")
                    out[at + 2] = UInt8(ascii: "\n")
                    end = at + 3
                }
            }
        }
        count += 1
    }

    /// Appends one argument: `bytes` as they are (binary-safe).
    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { appendArgument($0) }
    }

    /// Appends one argument: `number` in decimal.
    public mutating func append(_ number: Int64) {
        let digits = Self.decimalWidth(number.magnitude)
        let width = digits + (number < 0 ? 1 : 0)
        reserve(Self.maxHeader + Self.maxNumber + 2)
        buffer.withUnsafeMutableBufferPointer { out in
            var at = Self.writeHeader(width, into: out, at: end)
            if number < 0 {
                out[at] = UInt8(ascii: "-")
                at += 1
            }
            Self.writeDigits(number.magnitude, width: digits, into: out, at: at)
            at += digits
            out[at] = UInt8(ascii: "\r")
            out[at + 1] = UInt8(ascii: "\n")
            end = at + 2
        }
        count += 1
    }

    /// Appends one argument: `number` in decimal.
    public mutating func append(_ number: Int) {
        append(Int64(number))
    }

    /// A point in the command, to copy the arguments after it into another command.
    public struct Mark: Sendable {
        fileprivate let offset: Int
        fileprivate let count: Int
    }

    /// The current end of the command.
    public var mark: Mark { Mark(offset: end, count: count) }

    /// Appends the arguments that `other` holds after `mark` (taken on `other`), as they are.
    public mutating func append(argumentsOf other: RESPCommand, after mark: Mark) {
        // A mark from another command, or from before `removeAll()`, copies nothing.
        guard mark.offset >= Self.headroom, mark.offset <= other.end, mark.count <= other.count else { return }
        let length = other.end - mark.offset
        reserve(length)
        buffer.withUnsafeMutableBufferPointer { out in
            other.buffer.withUnsafeBufferPointer { source in
                if let to = out.baseAddress, let from = source.baseAddress, length > 0 {
                    (to + end).update(from: from + mark.offset, count: length)
                }
            }
        }
        end += length
        count += other.count - mark.count
    }

    /// Calls `body` with the whole encoded command (`*N\r\n` and every argument).
    public mutating func withEncoded<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        // Written backwards into the end of the headroom: "\r\n", the digits, "*".
        var start = Self.headroom - 2
        buffer[start] = UInt8(ascii: "\r")
        buffer[start + 1] = UInt8(ascii: "\n")
        var rest = count
        repeat {
            start -= 1
            buffer[start] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
        } while rest > 0
        start -= 1
        buffer[start] = UInt8(ascii: "*")
        let stop = end
        return try buffer.withUnsafeBytes { all in
            try body(UnsafeRawBufferPointer(rebasing: all[start..<stop]))
        }
    }

    // MARK: Writing

    /// Makes room for `bytes` more past `end` (at least doubling, so growth is amortised).
    private mutating func reserve(_ bytes: Int) {
        let needed = end + bytes
        guard needed > buffer.count else { return }
        buffer.append(contentsOf: repeatElement(0, count: Swift.max(needed - buffer.count, buffer.count)))
    }

    /// `$LEN\r\n`, `bytes`, `\r\n`.
    private mutating func appendArgument(_ bytes: UnsafeRawBufferPointer) {
        reserve(Self.maxHeader + bytes.count + 2)
        buffer.withUnsafeMutableBufferPointer { out in
            var at = Self.writeHeader(bytes.count, into: out, at: end)
            if let base = out.baseAddress, let source = bytes.baseAddress, !bytes.isEmpty {
                UnsafeMutableRawPointer(base + at).copyMemory(from: source, byteCount: bytes.count)
            }
            at += bytes.count
            out[at] = UInt8(ascii: "\r")
            out[at + 1] = UInt8(ascii: "\n")
            end = at + 2
        }
        count += 1
    }

    /// Writes `$LEN\r\n` at `at`; returns where the argument's bytes go.
    private static func writeHeader(_ length: Int, into out: UnsafeMutableBufferPointer<UInt8>, at: Int) -> Int {
        out[at] = UInt8(ascii: "$")
        let digits = decimalWidth(UInt64(length))
        writeDigits(UInt64(length), width: digits, into: out, at: at + 1)
        out[at + 1 + digits] = UInt8(ascii: "\r")
        out[at + 2 + digits] = UInt8(ascii: "\n")
        return at + 3 + digits
    }

    /// The decimal digits of `value` in `out[at ..< at + width]`.
    private static func writeDigits(_ value: UInt64, width: Int, into out: UnsafeMutableBufferPointer<UInt8>, at: Int) {
        var rest = value
        var i = at + width
        repeat {
            i -= 1
            out[i] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
        } while rest > 0
    }

    /// How many decimal digits `value` has.
    private static func decimalWidth(_ value: UInt64) -> Int {
        var width = 1
        var rest = value / 10
        while rest > 0 {
            width += 1
            rest /= 10
        }
        return width
    }
}
