/// Untrusted strings (subjects, idempotency keys) in a form safe for store keys, JSON, logs and
/// the event stream.
public enum SafeToken {
    /// The subject used for requests that carry none: they share one bucket, never a free pass.
    public static let anonymous = "_anonymous"

    /// The mark of a hashed form: `h:` + 32 hex digits.
    public static let hashedMark = "h:"

    /// `text` itself when it matches `[A-Za-z0-9._:@-]{1,64}` and does not start with `h:`,
    /// else `h:` + the first 32 hex digits of its SHA-256. An empty `text` becomes `_anonymous`.
    ///
    /// Hashing everything that starts with `h:` keeps the two forms apart: a client that sends
    /// another subject's hashed form as its own subject gets a hash of that text, not the other
    /// subject's bucket.
    public static func key(for text: String) -> String {
        if text.isEmpty { return anonymous }
        let utf8 = text.utf8
        if utf8.count <= 64 && utf8.allSatisfy(isAllowed) && !text.hasPrefix(hashedMark) { return text }
        return hashedMark + SHA256.hex(text).prefix(32)
    }

    /// The key form of a subject an admin names (`?subject=`, a top-off, an events filter, the
    /// CLI): a hashed form as usage JSON, events and logs show it (`h:` + 32 lowercase hex
    /// digits) names that hashed subject as it is; anything else is `key(for:)`. Only admins
    /// may address hashed subjects this way: a client's own subject always goes through
    /// `key(for:)`.
    public static func adminKey(for text: String) -> String {
        isHashed(text) ? text : key(for: text)
    }

    /// Whether `text` is a hashed form: `h:` + 32 lowercase hex digits.
    public static func isHashed(_ text: String) -> Bool {
        let utf8 = text.utf8
        return utf8.count == 34 && text.hasPrefix(hashedMark)
            && utf8.dropFirst(2).allSatisfy {
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
            }
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
