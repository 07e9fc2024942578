/// The numeric bounds every layer shares: the config loader refuses what passes them, the
/// Redis store checks the arguments it sends the script against them, and the script's own
/// `LIMIT` is the same number (a test reads it from the Lua source).
public enum Limits {
    /// 2^53: integers below it in magnitude are exact in a Lua number (a double), so every
    /// count and time the script handles stays below it. A pool's full refill
    /// (`maxCharges × interval`, about 285,000 years) must fit it too.
    public static let exactInteger: Int64 = 1 << 53
    /// The largest `maxCharges`, cost or top-off amount: 10^15.
    public static let maxCharges: Int64 = 1_000_000_000_000_000
}
