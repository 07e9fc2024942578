/// The Lua script that settles holds inside Redis, each at most once and atomically across its
/// pools, up to `SettleLayout.chunk` in one run: the twin of `MemoryStore.settle` (with
/// `Settlement.resolve`, `Settlement.charges` and `Bucket.settle`), run by `RedisStore.settle`.
///
/// Kept as its own file, `settle.lua`, after the argument layout rendered from `SettleLayout`,
/// `period.lua` and `bucket.lua` (the bucket rules it shares with `ChargeScript`). A hold record
/// or a bucket that is not what the scripts write makes it answer an error (`CHARGEGATE corrupt
/// hold record at key K`, `... corrupt bucket state ...`) without writing. The clock is Redis
/// `TIME`.
public enum SettleScript {
    /// The Lua source sent to Redis: `SettleLayout.lua`, `period.lua`, `bucket.lua` then
    /// `settle.lua` (compiled in by the EmbedText plugin).
    public static let source: String =
        SettleLayout.lua + "\n" + embedded_period + "\n" + embedded_bucket + "\n" + embedded_settle

    /// The SHA-1 of `source` in lowercase hex: the name `EVALSHA` knows it by.
    public static let sha1: String = SHA1.hex(Array(source.utf8))
}
