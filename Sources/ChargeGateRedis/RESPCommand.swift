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
        var text = text
        text.withUTF8 { append(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// Appends one argument: `bytes` as they are (binary-safe).
    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append(bytes: $0) }
    }

    /// Appends one argument: `number` in decimal.
    public mutating func append(_ number: Int64) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for any Int64
        withUnsafeMutableBytes(of: &digits) { scratch in
            let used = Self.decimal(number, into: scratch)
            append(bytes: UnsafeRawBufferPointer(rebasing: scratch[(scratch.count - used)...]))
        }
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
        var header: (UInt64, UInt64, UInt64) = (0, 0, 0)
        let headerCount = withUnsafeMutableBytes(of: &header) { scratch -> Int in
            // Written backwards: "\r\n", the digits, "*".
            scratch[scratch.count - 1] = UInt8(ascii: "\n")
            scratch[scratch.count - 2] = UInt8(ascii: "\r")
            let digits = Self.decimal(Int64(count), into: UnsafeMutableRawBufferPointer(rebasing: scratch[..<(scratch.count - 2)]))
            scratch[scratch.count - 3 - digits] = UInt8(ascii: "*")
            let used = digits + 3
            for i in 0..<used { buffer[Self.headroom - used + i] = scratch[scratch.count - used + i] }
            return used
        }
        return try buffer.withUnsafeBytes { all in
            try body(UnsafeRawBufferPointer(rebasing: all[(Self.headroom - headerCount)...]))
        }
    }

    /// `$len\r\n`, the bytes, `\r\n`.
    private mutating func append(bytes: UnsafeRawBufferPointer) {
        buffer.append(UInt8(ascii: "$"))
        appendDigits(of: bytes.count)
        buffer.append(UInt8(ascii: "\r"))
        buffer.append(UInt8(ascii: "\n"))
        // Typed as UInt8 so that Array copies them with one memcpy.
        buffer.append(contentsOf: bytes.assumingMemoryBound(to: UInt8.self))
        buffer.append(UInt8(ascii: "\r"))
        buffer.append(UInt8(ascii: "\n"))
        count += 1
    }

    /// `value` (≥ 0) in decimal, most significant digit first.
    private mutating func appendDigits(of value: Int) {
        if value >= 10 { appendDigits(of: value / 10) }
        buffer.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: value % 10))
    }

    /// Writes `number` in decimal at the end of `scratch` (at least 20 bytes); returns how many
    /// bytes it used.
    private static func decimal(_ number: Int64, into scratch: UnsafeMutableRawBufferPointer) -> Int {
        var magnitude = number.magnitude
        var index = scratch.count
        repeat {
            index -= 1
            scratch[index] = UInt8(ascii: "0") + UInt8(magnitude % 10)
            magnitude /= 10
        } while magnitude > 0
        if number < 0 {
            index -= 1
            scratch[index] = UInt8(ascii: "-")
        }
        return scratch.count - index
    }
}
