/// Redis Cluster's key-to-slot rule, as in Redis's `crc16.c` and `keyHashSlot` (`cluster.c`):
/// a key's slot is the CRC16 (XMODEM) of its hashed part, modulo 16384.
///
/// The hashed part is the hash tag when the key has one: the bytes between the first `{` and
/// the first `}` after it, when there is at least one byte between them. A key without `{`,
/// without a `}` after its first `{`, or whose first `{` is followed at once by `}` (`{}`) is
/// hashed whole. So `{user1000}.following` and `{user1000}.followers` share a slot,
/// `foo{}{bar}` is hashed whole, `foo{{bar}}zap` hashes `{bar`, and `foo{bar}{zap}` hashes
/// `bar`. Keys are bytes: a `String` is hashed as its UTF-8.
///
/// Pure: no I/O, no Foundation, no trap on any input.
public enum ClusterSlot {
    /// The number of hash slots of a Redis Cluster: 16384 (slots 0...16383).
    public static let count = 16384

    /// Every slot: `0...16383`.
    public static let all: ClosedRange<Int> = 0...(count - 1)

    /// CRC16 as Redis computes it (`crc16.c`): CRC-16/XMODEM, polynomial 0x1021, initial value
    /// 0, bits not reflected, no final XOR. `crc16("123456789") == 0x31C3`.
    public static func crc16(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            // `<<` drops the bits shifted out (it never traps); the index is below 256.
            crc = (crc << 8) ^ table[Int((crc >> 8) ^ UInt16(byte))]
        }
        return crc
    }

    /// The part of `key` that is hashed: its hash tag, or the whole key (see the type's rules).
    public static func hashedPart<Key: Collection<UInt8>>(of key: Key) -> Key.SubSequence {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")) else { return key[...] }
        let afterOpen = key.index(after: open)
        guard let close = key[afterOpen...].firstIndex(of: UInt8(ascii: "}")), close != afterOpen else { return key[...] }
        return key[afterOpen..<close]
    }

    /// The slot of `key` (0...16383), as `CLUSTER KEYSLOT` answers it.
    public static func slot(forKey key: some Collection<UInt8>) -> Int {
        Int(crc16(hashedPart(of: key)) & 0x3FFF)
    }

    /// The slot of `key`'s UTF-8 bytes (0...16383), as `CLUSTER KEYSLOT` answers it. A native
    /// string's bytes are read in place (every spend computes its keys' slots: a walk over
    /// `String.UTF8View`'s indices cost about four times as much).
    public static func slot(forKey key: String) -> Int {
        if let slot = key.utf8.withContiguousStorageIfAvailable({ slot(forKey: $0) }) { return slot }
        return slot(forKey: key.utf8)
    }

    /// The one slot every key of `keys` lives in, or nil when they are in different slots (Redis
    /// would answer `CROSSSLOT`) or there is no key: what a script's keys must share to run as
    /// one command on a cluster.
    public static func slot<Keys: Sequence>(forKeys keys: Keys) -> Int? where Keys.Element: Collection, Keys.Element.Element == UInt8 {
        var common: Int?
        for key in keys {
            let slot = slot(forKey: key)
            if let common, common != slot { return nil }
            common = slot
        }
        return common
    }

    /// Redis's `crc16tab`: the CRC of each byte value shifted to the top, for one step per byte.
    private static let table: [UInt16] = (0..<256).map { (value: Int) -> UInt16 in
        var crc = UInt16(truncatingIfNeeded: value) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }
}
