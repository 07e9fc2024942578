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
    /// The one function a subject becomes a key by, wherever it comes from: nginx's subject of
    /// a request, and a subject an admin names (`AdminSubject`). Hashing everything that starts
    /// with `h:` keeps the two forms apart: a client that sends another subject's hashed form as
    /// its own subject gets a hash of that text, not the other subject's bucket, and so does an
    /// admin who names it as a subject (a key form is named as such: `subjectKey`).
    public static func key(for text: String) -> String {
        if text.isEmpty { return anonymous }
        let utf8 = text.utf8
        if utf8.count <= 64 && utf8.allSatisfy(isAllowed) && !text.hasPrefix(hashedMark) { return text }
        return hashedMark + SHA256.hex(text).prefix(32)
    }

    /// Whether `text` is a key form: what `key(for:)` answers for some text (a hashed form, or
    /// a text it keeps as it is).
    public static func isKey(_ text: String) -> Bool {
        if isHashed(text) { return true }
        let utf8 = text.utf8
        return (1...64).contains(utf8.count) && utf8.allSatisfy(isAllowed) && !text.hasPrefix(hashedMark)
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
