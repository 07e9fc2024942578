import CHiredis

/// One Redis reply, copied out of hiredis into Swift values: nothing in it points into C memory,
/// so it outlives the `redisReply` it came from (which `RedisConnection` frees at once).
public enum RedisValue: Sendable, Equatable {
    /// A bulk string, binary-safe.
    case string([UInt8])
    /// An integer reply.
    case integer(Int64)
    /// A multi-bulk reply.
    case array([RedisValue])
    /// A nil bulk or nil multi-bulk reply.
    case null
    /// A status reply (`+OK`).
    case status(String)
    /// An error reply (`-ERR ...`), with its code prefix (`NOSCRIPT ...`, `WRONGTYPE ...`).
    case error(String)

    /// Copies `reply` (and its elements, recursively). Reads only; does not free.
    init(reply: UnsafePointer<redisReply>) {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            self = .string(Self.bytes(r.str, r.len))
        case REDIS_REPLY_INTEGER:
            self = .integer(Int64(r.integer))
        case REDIS_REPLY_NIL:
            self = .null
        case REDIS_REPLY_STATUS:
            self = .status(String(decoding: Self.bytes(r.str, r.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            self = .error(String(decoding: Self.bytes(r.str, r.len), as: UTF8.self))
        case REDIS_REPLY_ARRAY:
            var items: [RedisValue] = []
            if let elements = r.element {
                items.reserveCapacity(r.elements)
                for index in 0..<r.elements {
                    if let element = elements[index] {
                        items.append(RedisValue(reply: UnsafePointer(element)))
                    } else {
                        items.append(.null)
                    }
                }
            }
            self = .array(items)
        default:
            self = .error("ERR unknown reply type \(r.type)")
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ length: Int) -> [UInt8] {
        guard let pointer, length > 0 else { return [] }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
    }

    /// A bulk string or status as text (UTF-8, invalid bytes replaced); nil for other kinds.
    public var text: String? {
        switch self {
        case .string(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .status(let text): return text
        default: return nil
        }
    }

    /// An integer reply, or a bulk string holding a decimal integer; nil otherwise.
    public var integer: Int64? {
        switch self {
        case .integer(let value): return value
        case .string(let bytes): return Int64(String(decoding: bytes, as: UTF8.self))
        default: return nil
        }
    }

    /// `integer` when it lies in `range`, nil otherwise (not a number, or out of range): how a
    /// reply decoder reads every number, so that no value from Redis reaches arithmetic that
    /// could overflow or an answer where it makes no sense (a negative wait).
    public func integer(in range: Range<Int64>) -> Int64? {
        guard let value = integer, range.contains(value) else { return nil }
        return value
    }

    /// The elements of an array reply; nil for other kinds.
    public var elements: [RedisValue]? {
        if case .array(let items) = self { return items }
        return nil
    }

    /// Whether this is the nil reply.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}
