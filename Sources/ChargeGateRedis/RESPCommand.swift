/// One Redis command encoded in RESP as its arguments are appended: a single byte buffer that a
/// store keeps and reuses, so sending a command allocates nothing once the buffer has grown.
///
/// The argument count heads a RESP command (`*N\r\n`) but is known only at the end, so the
/// buffer starts with `headroom` spare bytes and `withEncoded` writes the count into the end
/// of that space: the arguments are never moved.
///
/// Pure Swift (no hiredis): `RedisConnection` hands the encoded bytes to
/// `redisAppendFormattedCommand`, which copies them.
public struct RESPCommand: Sendable {
    /// Room for `*N\r\n` with any `Int` N.
    private static let headroom = 24

    /// `headroom` bytes, then the encoded arguments.
    private var buffer: [UInt8]
    /// Arguments appended so far.
    public private(set) var count = 0

    /// An empty command whose buffer holds `capacity` bytes of arguments before it grows.
    public init(capacity: Int = 512) {
        buffer = []
        buffer.reserveCapacity(Self.headroom + Swift.max(0, capacity))
        buffer.append(contentsOf: repeatElement(0, count: Self.headroom))
    }

    /// A command of the given arguments.
    public init(_ arguments: [[UInt8]]) {
        self.init(capacity: arguments.reduce(0) { $0 + $1.count + 16 })
        for argument in arguments { append(argument) }
    }

    /// Drops every argument, keeping the buffer's storage.
    public mutating func removeAll() {
        buffer.removeSubrange(Self.headroom...)
        count = 0
    }

    /// Appends one argument: the UTF-8 bytes of `text`.
    public mutating func append(_ text: String) {
        beginArgument(length: text.utf8.count)
        buffer.appendUTF8(text)
        endArgument()
    }

    /// Appends one argument: `bytes` as they are (binary-safe).
    public mutating func append(_ bytes: [UInt8]) {
        beginArgument(length: bytes.count)
        buffer.append(contentsOf: bytes)
        endArgument()
    }

    /// Appends one argument: `number` in decimal. The whole argument (`$LEN\r\n`, the digits,
    /// `\r\n`) is written back to front into a buffer on the stack and appended in one copy:
    /// a spend sends a dozen numbers, and a byte-by-byte append cost about 400 instructions
    /// each (`bench/run --instructions`).
    public mutating func append(_ number: Int64) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { out in
            var start = out.count
            func put(_ byte: UInt8) {
                start -= 1
                out[start] = byte
            }
            put(UInt8(ascii: "\n"))
            put(UInt8(ascii: "\r"))
            let end = start
            var rest = number.magnitude
            repeat {
                put(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10))
                rest /= 10
            } while rest > 0
            if number < 0 { put(UInt8(ascii: "-")) }
            var length = end - start
            put(UInt8(ascii: "\n"))
            put(UInt8(ascii: "\r"))
            repeat {
                put(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: length % 10))
                length /= 10
            } while length > 0
            put(UInt8(ascii: "$"))
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: out[start...]))
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
    public var mark: Mark { Mark(offset: buffer.count, count: count) }

    /// Appends the arguments that `other` holds after `mark` (taken on `other`), as they are.
    public mutating func append(argumentsOf other: RESPCommand, after mark: Mark) {
        // A mark from another command, or from before `removeAll()`, copies nothing.
        guard mark.offset >= Self.headroom, mark.offset <= other.buffer.count, mark.count <= other.count else { return }
        buffer.append(contentsOf: other.buffer[mark.offset...])
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
        return try buffer.withUnsafeBytes { all in
            try body(UnsafeRawBufferPointer(rebasing: all[start...]))
        }
    }

    /// `$len\r\n` before an argument's bytes, in one copy (as `append(_: Int64)` does).
    private mutating func beginArgument(length: Int) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { out in
            var start = out.count - 2
            out[start] = UInt8(ascii: "\r")
            out[start + 1] = UInt8(ascii: "\n")
            var rest = UInt(bitPattern: length)
            repeat {
                start -= 1
                out[start] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            } while rest > 0
            start -= 1
            out[start] = UInt8(ascii: "$")
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: out[start...]))
        }
    }

    /// `\r\n` after an argument's bytes.
    private mutating func endArgument() {
        buffer.append(UInt8(ascii: "\r"))
        buffer.append(UInt8(ascii: "\n"))
        count += 1
    }
}
