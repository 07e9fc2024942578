/// Byte-level appends for what the request path builds (the answer to nginx, the commands to
/// Redis): numbers and text go straight into a byte buffer, without a `String` in between.
/// Inlinable: they run a few dozen times per request, from two modules.
extension Array where Element == UInt8 {
    /// Appends `value` in decimal, `-` first when it is negative.
    @inlinable
    public mutating func appendDecimal(_ value: Int64) {
        if value < 0 { append(UInt8(ascii: "-")) }
        appendDigits(value.magnitude)
    }

    /// Appends the UTF-8 of `text` in one copy (a native string's bytes are contiguous).
    @inlinable
    public mutating func appendUTF8(_ text: String) {
        var text = text
        text.withUTF8 { append(contentsOf: $0) }
    }

    /// How many bytes `appendDecimal(value)` appends.
    @inlinable
    public static func decimalWidth(_ value: Int64) -> Int {
        var width = value < 0 ? 2 : 1
        var rest = value.magnitude / 10
        while rest > 0 {
            width += 1
            rest /= 10
        }
        return width
    }

    /// The digits of `magnitude`, most significant first.
    @usableFromInline
    mutating func appendDigits(_ magnitude: UInt64) {
        if magnitude >= 10 { appendDigits(magnitude / 10) }
        append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: magnitude % 10))
    }
}
