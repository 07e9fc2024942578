import ChargeGateRedis
import ChargeGateTestSupport
import Testing

// Pure: Redis Cluster's CRC16 and key-to-slot rule. No Redis is needed.

@Suite struct ClusterSlotTests {
    /// Known answers: Redis's `crc16.c` ("123456789" -> 0x31C3, the CRC-16/XMODEM check value)
    /// and the slots of the cluster tutorial and `CLUSTER KEYSLOT`'s documentation.
    @Test func crc16KnownAnswer() {
        #expect(ClusterSlot.crc16("123456789".utf8) == 0x31C3)
        #expect(ClusterSlot.crc16([UInt8]()) == 0)
        #expect(ClusterSlot.crc16([0]) == 0)
        #expect(ClusterSlot.crc16([0xFF, 0xFF, 0xFF, 0xFF]) == ClusterSlot.crc16(Array(repeating: 0xFF, count: 4)))
    }

    @Test(arguments: [
        ("foo", 12182), ("bar", 5061), ("somekey", 11058), ("foo{hello}zz", 866),
        ("{user1000}.following", 3443), ("{user1000}.followers", 3443),
    ])
    func documentedSlots(_ key: String, _ slot: Int) {
        #expect(ClusterSlot.slot(forKey: key) == slot)
    }

    /// Redis's hash-tag rule: the first `{`, then the first `}` after it; `{}` hashes the whole key.
    @Test(arguments: [
        ("{user1000}.following", "user1000"),
        ("foo{}{bar}", "foo{}{bar}"),
        ("foo{{bar}}zap", "{bar"),
        ("foo{bar}{zap}", "bar"),
        ("{}", "{}"),
        ("{", "{"),
        ("}{", "}{"),
        ("a{b", "a{b"),
        ("a}b{c}", "c"),
        ("{ }", " "),
        ("no tag", "no tag"),
        ("", ""),
    ])
    func hashedPart(_ key: String, _ hashed: String) {
        #expect(String(decoding: ClusterSlot.hashedPart(of: Array(key.utf8)), as: UTF8.self) == hashed)
        #expect(ClusterSlot.slot(forKey: key) == Int(ClusterSlot.crc16(hashed.utf8) % 16384))
    }

    /// Slots as a real Redis answers them. Produced once (Redis 7.0.15, Debian's) with
    /// `redis-server --port P --cluster-enabled yes --cluster-config-file DIR/nodes.conf --dir DIR`
    /// in a temp dir on a free port and, for each key, `redis-cli -p P cluster keyslot KEY`
    /// (the documented slots above were checked the same way); hard-coded so the test needs no
    /// Redis.
    static let redisKeySlots: [(String, Int)] = [
        ("", 0),
        ("a", 15495),
        ("charge:alice", 6350),
        ("charge:{alice}:bucket", 749),
        ("{alice}", 749),
        ("{}", 15257),
        ("}{", 12793),
        ("{a}{b}", 15495),
        ("x{}y{z}", 15453),
        ("{{}}", 4092),
        ("user:1000", 1649),
        ("{user:1000}:profile", 1649),
        ("héllo", 11061),
        ("日本語", 12788),
        ("charge-gate", 14358),
        ("idem:{sk_live_42}:req-7", 11990),
        ("hold:{sub}:abc", 14864),
        ("plan:{team/ops}", 1429),
        ("a{b", 13340),
        ("a}b{c}", 7365),
        ("123456789", 12739),
        ("key with spaces", 13638),
        ("{ }", 9314),
        ("pool:global:gpu", 4928),
        ("{pool:global:gpu}:events", 4928),
        ("foo{}{bar}", 8363),
        ("foo{{bar}}zap", 4015),
        ("foo{bar}{zap}", 5061),
    ]

    @Test(arguments: redisKeySlots)
    func slotAsRedisAnswers(_ key: String, _ slot: Int) {
        #expect(ClusterSlot.slot(forKey: key) == slot)
        #expect(ClusterSlot.slot(forKey: Array(key.utf8)) == slot)
        #expect(ClusterSlot.slot(forKey: Array(key.utf8)[...]) == slot)
    }

    @Test func everySlotIsWithinRange() {
        var rng = SplitMix(state: 7)
        for length in 0..<64 {
            let key = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            #expect(ClusterSlot.all.contains(ClusterSlot.slot(forKey: key)))
        }
    }

    @Test func keysSharingATagShareASlot() {
        let keys = ["charge:{sub:alice}:pool:a", "idem:{sub:alice}:r1", "hold:{sub:alice}:h9", "plan:{sub:alice}"]
        #expect(ClusterSlot.slot(forKeys: keys.map { Array($0.utf8) }) == ClusterSlot.slot(forKey: "sub:alice"))
        #expect(ClusterSlot.slot(forKeys: [Array("foo".utf8), Array("bar".utf8)]) == nil)
        #expect(ClusterSlot.slot(forKeys: [[UInt8]]()) == nil)
        #expect(ClusterSlot.slot(forKeys: [Array("{user1000}.following".utf8), Array("{user1000}.followers".utf8)]) == 3443)
    }

    @Test("a string's slot read in place is the slot of its bytes, braces anywhere")
    func stringsReadInPlace() {
        var rng = SplitMix(state: 20_261_207)
        let pieces = ["{", "}", "a", "user", "{}", "}{", "é", ":", "#", "{x}", ""]
        for _ in 0..<2000 {
            let key = (0..<Int.random(in: 0...6, using: &rng)).map { _ in pieces.randomElement(using: &rng) ?? "" }.joined()
            #expect(ClusterSlot.slot(forKey: key) == ClusterSlot.slot(forKey: Array(key.utf8)), "\(key)")
        }
        // A bridged or substring-made string without contiguous UTF-8 takes the generic path.
        #expect(ClusterSlot.slot(forKey: String("x{user1000}y".dropFirst())) == ClusterSlot.slot(forKey: "user1000"))
    }
}
