/// Untrusted strings (subjects, idempotency keys) in a form safe for store keys, JSON, logs and
/// the event stream.
public enum SafeToken {
    /// The subject used for requests that carry none: they share one bucket, never a free pass.
    public static let anonymous = "_anonymous"

    /// `text` itself when it matches `[A-Za-z0-9._:@-]{1,64}`, else `h:` + the first 32 hex
    /// digits of its SHA-256. An empty `text` becomes `_anonymous`.
    public static func key(for text: String) -> String {
        if text.isEmpty { return anonymous }
        let utf8 = text.utf8
        if utf8.count <= 64 && utf8.allSatisfy(isAllowed) { return text }
        return "h:" + SHA256.hex(text).prefix(32)
    }

    /// Whether `text` matches `[A-Za-z0-9._-]{1,64}` (the pool id charset).
    public static func isPoolID(_ text: String) -> Bool {
        let utf8 = text.utf8
        return (1...64).contains(utf8.count) && utf8.allSatisfy { isAllowed($0) && $0 != UInt8(ascii: ":") && $0 != UInt8(ascii: "@") }
    }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "@"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}
