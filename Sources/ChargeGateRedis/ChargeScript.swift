/// The one Lua script that runs the bucket arithmetic inside Redis: the twin of `Bucket.plan`
/// (spend), `Bucket.topOff` (top-off) and, for reads, the same state decoder (peek).
///
/// Kept as its own file, `charge.lua`; the keys and arguments each operation takes are
/// documented in `RedisStore+Script.swift`, beside the Swift that builds them. A key whose
/// value is not `{"current":N,"lastUpdatedAt":MS}` with integers (|N| < 2^53) makes the script
/// answer the error `CHARGEGATE corrupt bucket state at key K` without writing. The clock is
/// Redis `TIME`.
public enum ChargeScript {
    /// The Lua source: `charge.lua` beside this file, compiled in by the EmbedText plugin.
    public static let source: String = embedded_charge

    /// The SHA-1 of `source` in lowercase hex: the name `EVALSHA` knows it by.
    public static let sha1: String = SHA1.hex(Array(source.utf8))
}
