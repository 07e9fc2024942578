/// The Lua script that runs the bucket arithmetic of a spend inside Redis: the twin of
/// `Bucket.plan` (spend, recording the hold of a settled route: `HoldRecord.opened`),
/// `Bucket.topOff` (top-off) and, for reads, the same state decoder (peek).
///
/// Kept as its own files, `period.lua` (the billing-period math, the twin of
/// `BillingPeriod.window`), `bucket.lua` (the bucket rules it shares with `SettleScript`) then
/// `charge.lua`, after the argument layout rendered from `SpendLayout`, where the keys and
/// arguments each operation takes are declared. A key whose value is not
/// `{"current":N,"lastUpdatedAt":MS}` with integers (|N| < 2^53) makes the script answer the
/// error `CHARGEGATE corrupt bucket state at key K` without writing. The clock is Redis `TIME`.
public enum ChargeScript {
    /// The Lua source sent to Redis: the argument layout (`SpendLayout.lua`), `period.lua`,
    /// `bucket.lua` then `charge.lua` (beside this file, compiled in by the EmbedText plugin).
    /// The layout and the shared rules come first so that charge.lua's operations can read
    /// arguments by name and call `period_window` and the bucket functions.
    public static let source: String = SpendLayout.lua + "\n" + embedded_period + "\n" + embedded_bucket + "\n" + embedded_charge

    /// The billing-period math alone: `period.lua`, the twin of `BillingPeriod.window`, which
    /// defines the local function `period_window(kind, anchor, now) -> start, finish`. It
    /// comes first in both scripts' sources so that the rest can call `period_window`.
    public static let periodSource: String = embedded_period

    /// The bucket rules both scripts share: `bucket.lua` (Redis's clock as `now`, the state
    /// codec, levels, rebasing, periods of an item).
    public static let bucketSource: String = embedded_bucket

    /// The SHA-1 of `source` in lowercase hex: the name `EVALSHA` knows it by.
    public static let sha1: String = SHA1.hex(Array(source.utf8))
}
