import ChargeGateTestSupport
import Testing
@testable import ChargeGateCore

/// The store's keys: every kind of key, for any pool id and any subject, is distinct from
/// every other, and the subject's raw and hashed forms never meet.
@Suite struct KeySpaceTests {
    static let poolChars = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    static let subjectChars = Array("abcdefh0123456789:._@-# /%\u{e9}")
    /// Pool ids that name, or start, internal keys in other designs.
    static let namedPools = ["events", "idem", "idemq", "plan", "h", "events.1", "_anonymous", "-", "."]

    static func poolID(_ rng: inout SplitMix) -> String {
        String((0..<Int.random(in: 1...6, using: &rng)).map { _ in poolChars.randomElement(using: &rng) ?? "a" })
    }

    static func rawSubject(_ rng: inout SplitMix) -> String {
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: return SafeToken.key(for: String(Int.random(in: 0..<1000, using: &rng)) + " x")  // a hashed form, sent raw
        case 1: return "h:" + String(String(Int.random(in: 0..<1_000_000, using: &rng), radix: 16))
        case 2: return ""
        default: return String((0..<Int.random(in: 1...8, using: &rng)).map { _ in subjectChars.randomElement(using: &rng) ?? "a" })
        }
    }

    @Test(arguments: ["charge:", "", "app#1:", "x"], [false, true])
    func everyKindOfKeyIsDistinct(prefix: String, cluster: Bool) {
        var rng = SplitMix(state: 20_261_130)
        let keys = KeySpace(prefix: prefix, cluster: cluster)
        let pools = Set(Self.namedPools + (0..<60).map { _ in Self.poolID(&rng) })
        let subjects = Set(
            (0..<200).map { _ in SafeToken.key(for: Self.rawSubject(&rng)) } + ["_anonymous", "h:x"].map(SafeToken.key(for:)))
        let clientKeys = ["k", "K1", "order-1", "", "h:00"]
        // Every key, with what it stands for.
        var named: [String: String] = [:]
        var clashes: [String] = []
        func add(_ key: String, _ meaning: String) {
            if let earlier = named[key], earlier != meaning { clashes.append("\(key): \(earlier) vs \(meaning)") }
            named[key] = meaning
        }
        for pool in pools {
            add(keys.bucket(pool: pool), "global \(pool)")
            #expect(!keys.bucket(pool: pool).hasPrefix(prefix + KeySpace.internalMark))
            for subject in subjects {
                add(keys.bucket(pool: pool, subject: subject), "bucket \(pool) \(subject)")
            }
        }
        add(keys.events, "events")
        if let legacy = keys.legacyEvents(poolIds: Array(pools)) { add(legacy, "legacy events") }
        for subject in subjects {
            add(keys.idempotencyQuota(subject: subject), "quota \(subject)")
            add(keys.plan(subject: subject), "plan \(subject)")
            for client in clientKeys { add(keys.idempotency(subject: subject, clientKey: client), "idem \(subject) \(client)") }
        }
        #expect(clashes.isEmpty, "\(clashes.prefix(5))")
        for key in [keys.events, keys.idempotencyQuota(subject: "s"), keys.idempotency(subject: "s", clientKey: "k")] {
            #expect(key.hasPrefix(prefix + KeySpace.internalMark))
        }
    }

    /// The hash tag Redis Cluster hashes: what is between the first `{` and the first `}`
    /// after it, when not empty; nil otherwise (the whole key is hashed).
    static func hashTag(_ key: String) -> Substring? {
        guard let open = key.firstIndex(of: "{"), let close = key[key.index(after: open)...].firstIndex(of: "}"),
            key.index(after: open) < close
        else { return nil }
        return key[key.index(after: open)..<close]
    }

    @Test(
        "cluster layout: every key of a subject is tagged with it, every global bucket with its pool; outside cluster mode no key has a tag"
    )
    func clusterKeysCarryTheirTags() {
        var rng = SplitMix(state: 20_261_207)
        let subjects = (0..<200).map { _ in SafeToken.key(for: Self.rawSubject(&rng)) } + ["", "-"]
        let pools = Self.namedPools + (0..<40).map { _ in Self.poolID(&rng) }
        for prefix in ["charge:", "", "app#1:"] {
            let cluster = KeySpace(prefix: prefix, cluster: true)
            let plain = KeySpace(prefix: prefix)
            for subject in subjects {
                let tag = subject.isEmpty ? "#" : subject
                let keys =
                    [
                        cluster.idempotency(subject: subject, clientKey: "k"), cluster.idempotencyQuota(subject: subject),
                        cluster.plan(subject: subject),
                    ] + pools.map { cluster.bucket(pool: $0, subject: subject) }
                for key in keys { #expect(Self.hashTag(key) == Substring(tag), "\(key)") }
                for pool in pools.prefix(5) {
                    #expect(cluster.subject(ofBucket: cluster.bucket(pool: pool, subject: subject), pool: pool) == subject)
                    #expect(plain.subject(ofBucket: plain.bucket(pool: pool, subject: subject), pool: pool) == subject)
                }
            }
            for pool in pools {
                #expect(Self.hashTag(cluster.bucket(pool: pool)) == Substring(pool))
                #expect(Self.hashTag(plain.bucket(pool: pool)) == nil)
                #expect(plain.bucket(pool: pool) == prefix + pool, "next-charge's key outside cluster mode")
            }
            #expect(cluster.legacyEvents(poolIds: ["a"]) == nil, "no legacy stream on a cluster")
        }
    }

    @Test("cluster placement: a stream and a hold in a slot's tag, the claim in the id's own")
    func clusterPlacement() {
        let keys = KeySpace(prefix: "charge:", cluster: true)
        #expect(KeySpace.events(keys.events, tag: "1a") == "charge:#events:{1a}")
        #expect(KeySpace.hold(keys.hold(id: "r1"), id: "r1", tag: "1a") == "charge:#hold:{1a}:r1")
        #expect(KeySpace.hold(keys.hold(id: "r1"), id: "r1", tag: "1a").hasPrefix(keys.holdPrefix))
        #expect(KeySpace.holdClaim(keys.hold(id: "r1"), id: "r1") == "charge:#holdref:{r1}")
        #expect(!KeySpace.holdClaim(keys.hold(id: "r1"), id: "r1").hasPrefix(keys.holdPrefix))
        #expect(keys.stepHold(id: "s9", tag: "1a") == "charge:#step:{1a}:s9")
        #expect(!keys.stepHold(id: "s9", tag: "1a").hasPrefix(keys.holdPrefix), "status lists no step hold")
        #expect(keys.absentPlan(tag: "1a") == "charge:#noplan:{1a}")
        #expect(keys.absentPlan(tag: "alice") != keys.plan(subject: "alice"), "no subject's plan record")
    }

    @Test func theLegacyStreamIsNotReadWhenAGlobalPoolOwnsItsKey() {
        let keys = KeySpace(prefix: "charge:")
        #expect(keys.legacyEvents(poolIds: ["a", "b"]) == "charge:events")
        #expect(keys.legacyEvents(poolIds: ["a", "events"]) == nil)
        #expect(keys.events == "charge:#events")
    }

    @Test(arguments: [
        ("alice", "alice"),
        ("203.0.113.7", "203.0.113.7"),
        ("user:42@example.org", "user:42@example.org"),
        ("h", "h"),
        ("hx:1", "hx:1"),
        ("", "_anonymous"),
    ])
    func subjectsInTheSafeFormAreKept(raw: String, key: String) {
        #expect(SafeToken.key(for: raw) == key)
    }

    @Test(arguments: ["h:", "h:0", "h:0123456789abcdef0123456789abcdef", "h:zz", "key with spaces", String(repeating: "a", count: 65)])
    func everythingElseIsHashedAndNoRawSubjectTakesAHashedForm(raw: String) {
        let key = SafeToken.key(for: raw)
        #expect(key != raw)
        #expect(SafeToken.isHashed(key))
        #expect(key == "h:" + SHA256.hex(raw).prefix(32))
    }

    static let victim = SafeToken.key(for: "key with spaces")

    /// How an admin names a subject: `subject` always through `SafeToken.key(for:)`, as a
    /// client's (a text that looks like a key form is another subject); `subjectKey` only a key
    /// form, as it is; never both.
    @Test(arguments: [
        (String?("key with spaces"), String?.none, Result<String?, AdminSubject.Refusal>.success(victim)),
        (victim, nil, .success(SafeToken.key(for: victim))),
        ("alice", nil, .success("alice")),
        ("", nil, .success("_anonymous")),
        ("h:ABC", nil, .success(SafeToken.key(for: "h:ABC"))),
        (nil, victim, .success(victim)),
        (nil, "alice", .success("alice")),
        (nil, "_anonymous", .success("_anonymous")),
        (nil, "h:ABC", .failure(.init(parameter: "subjectKey", reason: AdminSubject.notAKey))),
        (nil, "h:0123", .failure(.init(parameter: "subjectKey", reason: AdminSubject.notAKey))),
        (nil, "key with spaces", .failure(.init(parameter: "subjectKey", reason: AdminSubject.notAKey))),
        (nil, "", .failure(.init(parameter: "subjectKey", reason: AdminSubject.notAKey))),
        (nil, String(repeating: "a", count: 65), .failure(.init(parameter: "subjectKey", reason: AdminSubject.notAKey))),
        ("alice", "alice", .failure(.init(parameter: "subject, subjectKey", reason: "give one of them, not both"))),
        (nil, nil, .success(nil)),
    ])
    func anAdminNamesASubjectOrAKeyFormNeverOneForTheOther(
        subject: String?, subjectKey: String?, expected: Result<String?, AdminSubject.Refusal>
    ) {
        let got = Result { () throws(AdminSubject.Refusal) in try AdminSubject.key(subject: subject, subjectKey: subjectKey) }
        #expect(got == expected)
    }

    /// `isKey` holds exactly for what `key(for:)` can answer.
    @Test(arguments: [
        "alice", "_anonymous", victim, "h:ABC", "h:", "", "a b", String(repeating: "a", count: 64), String(repeating: "a", count: 65),
    ])
    func aKeyFormIsWhatKeyForAnswers(text: String) {
        #expect(SafeToken.isKey(SafeToken.key(for: text)))
        #expect(SafeToken.isKey(text) == (SafeToken.isHashed(text) || SafeToken.key(for: text) == text))
    }
}
