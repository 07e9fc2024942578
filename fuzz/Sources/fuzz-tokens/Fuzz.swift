// SafeToken, JSONWriter and EventFormat on arbitrary strings.
//
// Input: fields separated by NUL bytes (each decoded as UTF-8, invalid bytes as U+FFFD).
// The first field is the main token; up to 10 fields fill a usage event for EventFormat, and
// the first 7 give KeySpace a prefix, two (pool id, subject) pairs and two client keys.
import ChargeGateCore
import Foundation
import FuzzSupport

// MARK: SafeToken

func isKeyByte(_ b: UInt8) -> Bool {
    (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a)
        || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: ":") || b == UInt8(ascii: "@") || b == UInt8(ascii: "-")
}

/// Whether `text` is `h:` + 32 lower-case hex digits (byte-wise).
func isHashedForm(_ text: some StringProtocol) -> Bool {
    let bytes = Array(text.utf8)
    return bytes.count == 34 && bytes[0] == UInt8(ascii: "h") && bytes[1] == UInt8(ascii: ":")
        && bytes.dropFirst(2).allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
}

/// The hashed forms seen in this process, with the input each came from: no two different
/// inputs may get the same key. Bounded (cleared when full) so a long run keeps its speed.
nonisolated(unsafe) var hashedInputs: [String: [UInt8]] = [:]

func checkSafeToken(_ text: String) {
    let key = SafeToken.key(for: text)
    require(
        (1...66).contains(key.utf8.count) && key.utf8.allSatisfy(isKeyByte), "SafeToken.key matches [A-Za-z0-9._:@-]{1,66}",
        "key(for: \(show(text))) = \(show(key))")
    require(sameBytes(SafeToken.key(for: text), key), "SafeToken.key is deterministic")
    let startsHashed = text.utf8.starts(with: "h:".utf8)
    let passes = (1...64).contains(text.utf8.count) && text.utf8.allSatisfy(isKeyByte) && !startsHashed
    if text.isEmpty {
        require(key == SafeToken.anonymous, "an empty subject is _anonymous")
    } else if passes {
        require(sameBytes(key, text), "a token in the safe charset not starting with h: is kept as it is", show(text))
    } else {
        require(
            isHashedForm(key), "any other token (also any starting with h:) becomes h: + 32 hex digits",
            "key(for: \(show(text))) = \(show(key))")
    }
    if isHashedForm(key) {
        // A hashed form: flagged as one, hashed again when sent as a subject (a client cannot
        // take another subject's bucket by sending its hashed form, nor an admin who names it
        // as a subject), kept as is only when named as a key form (subjectKey).
        require(SafeToken.isHashed(key), "a hashed result satisfies isHashed", show(key))
        let again = SafeToken.key(for: key)
        require(!sameBytes(again, key), "key(for: hashed) is not the hashed form itself", show(key))
        require(isHashedForm(again), "key(for: hashed) is another hashed form", "\(show(key)) -> \(show(again))")
        require(
            (try? AdminSubject.key(subject: key, subjectKey: nil)).map { sameBytes($0 ?? "", again) } ?? false,
            "an admin's subject that looks hashed is key(for:) of it, like a client's", show(key))
        let bytes = Array(text.utf8)
        if let earlier = hashedInputs[key] {
            require(
                earlier == bytes, "two different inputs never get the same hashed form",
                "\(show(String(decoding: earlier, as: UTF8.self))) and \(show(text)) -> \(show(key))")
        } else {
            if hashedInputs.count >= 4096 { hashedInputs.removeAll(keepingCapacity: true) }
            hashedInputs[key] = bytes
        }
    } else {
        // Not hashed: the input itself (or _anonymous), never starting with h:, so it can never
        // be the hashed form of a different input.
        require(
            sameBytes(key, text) || (text.isEmpty && key == SafeToken.anonymous), "a result that is not hashed is the input itself",
            "key(for: \(show(text))) = \(show(key))")
        require(!key.utf8.starts(with: "h:".utf8), "a result that is not hashed never starts with h:", show(key))
        require(!SafeToken.isHashed(key), "a result that is not hashed is not isHashed", show(key))
    }
    require(SafeToken.isHashed(text) == isHashedForm(text), "isHashed is h:[0-9a-f]{32}", show(text))
    // Admins: `subject` is always key(for:); `subjectKey` is the text itself exactly when it is
    // a key form (what key(for:) answers for some text), else refused.
    require(SafeToken.isKey(key), "every result of key(for:) is a key form", show(key))
    let isKey = isHashedForm(text) || passes
    require(SafeToken.isKey(text) == isKey, "isKey is h:[0-9a-f]{32} or [A-Za-z0-9._:@-]{1,64} not starting with h:", show(text))
    let asSubject = try? AdminSubject.key(subject: text, subjectKey: nil)
    require(asSubject.map { sameBytes($0 ?? "", key) } ?? false, "an admin's subject is key(for:)", show(text))
    let asKey = try? AdminSubject.key(subject: nil, subjectKey: text)
    require(
        isKey ? asKey.map { sameBytes($0 ?? "", text) } ?? false : asKey == nil,
        "an admin's subjectKey is the text when it is a key form, else refused", show(text))
    let poolID =
        (1...64).contains(text.utf8.count) && text.utf8.allSatisfy { isKeyByte($0) && $0 != UInt8(ascii: ":") && $0 != UInt8(ascii: "@") }
    require(SafeToken.isPoolID(text) == poolID, "isPoolID is [A-Za-z0-9._-]{1,64}", show(text))
}

// MARK: KeySpace

/// A valid pool id made of `text`: its bytes in the pool id charset, at most 64 (else `p`).
func poolID(from text: String) -> String {
    let kept = text.utf8.filter { isKeyByte($0) && $0 != UInt8(ascii: ":") && $0 != UInt8(ascii: "@") }.prefix(64)
    return kept.isEmpty ? "p" : String(decoding: kept, as: UTF8.self)
}

/// KeySpace on fields of the input: the prefix, two (pool, subject) pairs and two client keys.
/// Buckets and internal keys never meet, and each kind of key names one thing.
func checkKeySpace(_ fields: [String]) {
    func field(_ n: Int) -> String { n < fields.count ? fields[n] : "" }
    // Like a config's keyPrefix: at most 128 bytes (its charset does not matter here).
    let prefix = String(decoding: field(0).utf8.prefix(128), as: UTF8.self)
    let keys = KeySpace(prefix: prefix)
    let internalStart = Array((prefix + KeySpace.internalMark).utf8)
    func isInternal(_ key: String) -> Bool { key.utf8.starts(with: internalStart) }

    let pools = [poolID(from: field(1)), poolID(from: field(3))]
    let subjects = [SafeToken.key(for: field(2)), SafeToken.key(for: field(4))]
    let clientKeys = [field(5), field(6)]

    var buckets: [(key: String, meaning: String)] = []
    for pool in pools {
        buckets.append((keys.bucket(pool: pool), "global \(pool)"))
        for subject in subjects { buckets.append((keys.bucket(pool: pool, subject: subject), "bucket \(pool) \(subject)")) }
    }
    var internals: [(key: String, meaning: String)] = [(keys.events, "events")]
    for subject in subjects {
        internals.append((keys.idempotencyQuota(subject: subject), "quota \(subject)"))
        for client in clientKeys {
            internals.append((keys.idempotency(subject: subject, clientKey: client), "idem \(subject) \(hex(client.utf8))"))
        }
    }
    for (key, meaning) in buckets {
        require(!isInternal(key), "bucket keys never start with prefix + #", "\(meaning): \(show(key))")
        require(key.utf8.starts(with: prefix.utf8), "bucket keys start with the prefix", "\(meaning): \(show(key))")
    }
    for (key, meaning) in internals {
        require(isInternal(key), "internal keys always start with prefix + #", "\(meaning): \(show(key))")
    }
    // Byte-equal keys only for the same meaning (the pairs and client keys may repeat).
    let all = buckets + internals
    for i in all.indices {
        for j in all.indices where j > i && sameBytes(all[i].key, all[j].key) {
            require(
                all[i].meaning == all[j].meaning, "two different keys of the key space never meet",
                "\(all[i].meaning) and \(all[j].meaning): \(show(all[i].key))")
        }
    }
    if let legacy = keys.legacyEvents(poolIds: pools) {
        require(
            !pools.contains("events") && sameBytes(legacy, prefix + "events"),
            "the legacy stream is prefix + events, unless a pool is called events")
        require(!isInternal(legacy), "the legacy stream is not an internal key")
        require(!all.contains { sameBytes($0.key, legacy) }, "the legacy stream is no bucket and no internal key", show(legacy))
    } else {
        require(pools.contains("events"), "the legacy stream is read unless a pool is called events")
    }
}

// MARK: JSONWriter

func checkJSONText(_ json: String) {
    for scalar in json.unicodeScalars {
        require(!"<>&'".unicodeScalars.contains(scalar), "JSONWriter output has no raw <, >, & or '", show(json))
        require(
            scalar.value >= 0x20 && scalar.value != 0x7f && scalar != "\u{2028}" && scalar != "\u{2029}",
            "JSONWriter output has no raw control characters, U+2028 or U+2029", show(json))
    }
}

func parse(_ json: String) -> Any {
    do {
        return try JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed])
    } catch {
        invariantFailed("JSONWriter output parses as JSON", "\(show(json)): \(error)")
    }
}

func checkJSONWriter(_ fields: [String], _ bytes: [UInt8]) {
    let text = fields[0]
    var number: Int64 = 0
    for byte in bytes.prefix(8) { number = number << 8 | Int64(byte) }
    let double = Double(bitPattern: UInt64(bitPattern: number))

    var w = JSONWriter()
    w.beginObject()
    w.field("s", text)
    w.key("k")
    w.beginObject()
    w.field(text, number)
    w.endObject()
    w.field("n", number)
    w.field("b", bytes.count % 2 == 0)
    w.key("d")
    w.value(double)
    w.field("none", nil)
    w.key("all")
    w.beginArray()
    for field in fields { w.value(field) }
    w.endArray()
    w.endObject()
    let json = w.text
    checkJSONText(json)

    guard let object = parse(json) as? [String: Any] else { invariantFailed("JSONWriter writes an object", show(json)) }
    require(
        (object["s"] as? String).map { sameBytes($0, text) } ?? false, "a string value parses back to the same string",
        "\(show(text)) written as \(show(json)), read back \(String(describing: object["s"]))")
    let inner = object["k"] as? [String: Any]
    require(inner?.count == 1 && inner!.keys.first.map { sameBytes($0, text) } ?? false, "a key parses back to the same string")
    require((object["n"] as? NSNumber)?.int64Value == number, "an Int64 parses back", "\(number) in \(json)")
    require(object["none"] is NSNull, "nil is null")
    if double.isFinite {
        // The number as written must be the double itself (Swift's own parser is exact; the
        // JSON parsers only need to see a number: swift-foundation's JSONSerialization rounds
        // some 17-digit numbers differently, which is not the writer's doing).
        var d = JSONWriter()
        d.value(double)
        let read = Double(d.text)
        require(
            read == double || (read == 0 && double == 0), "a finite Double is written as a number that reads back to itself",
            "\(double) written as \(d.text), read \(String(describing: read))")
        require(object["d"] is NSNumber, "a finite Double is a JSON number", json)
    } else {
        require(object["d"] is NSNull, "a non-finite Double is null")
    }
    let all = object["all"] as? [String] ?? []
    require(all.count == fields.count && zip(all, fields).allSatisfy { sameBytes($0, $1) }, "string arrays parse back")

    // The same through JSONDecoder.
    var s = JSONWriter()
    s.beginObject()
    s.field("value", text)
    s.endObject()
    let decoded = try? JSONDecoder().decode([String: String].self, from: Data(s.text.utf8))
    require(
        decoded?["value"].map { sameBytes($0, text) } ?? false, "JSONDecoder reads the string back",
        "\(show(s.text)) -> \(String(describing: decoded))")
}

// MARK: EventFormat

/// One RFC 4180 record, strictly: nil when malformed.
func parseCSVRecord(_ line: String) -> [[UInt8]]? {
    let bytes = Array(line.utf8)
    let quote = UInt8(ascii: "\"")
    let comma = UInt8(ascii: ",")
    var fields: [[UInt8]] = []
    var i = 0
    while true {
        var field: [UInt8] = []
        if i < bytes.count && bytes[i] == quote {
            i += 1
            while true {
                guard i < bytes.count else { return nil }
                if bytes[i] == quote {
                    if i + 1 < bytes.count && bytes[i + 1] == quote {
                        field.append(quote)
                        i += 2
                    } else {
                        i += 1
                        break
                    }
                } else {
                    field.append(bytes[i])
                    i += 1
                }
            }
        } else {
            while i < bytes.count && bytes[i] != comma {
                if bytes[i] == quote || bytes[i] == 0x0a || bytes[i] == 0x0d { return nil }
                field.append(bytes[i])
                i += 1
            }
        }
        fields.append(field)
        if i == bytes.count { return fields }
        guard bytes[i] == comma else { return nil }
        i += 1
    }
}

func checkEventFormat(_ fields: [String]) {
    func field(_ n: Int) -> String { n < fields.count ? fields[n] : "" }
    let time = Int64(field(1).utf8.count) * 1_000_003
    let amount = Int64(field(4).utf8.count) + 1
    // A settlement (signed amount, a status) when the id's length is odd, else a spend.
    let settle = field(0).utf8.count % 2 == 1
    let status: Int? = settle ? 100 + field(1).utf8.count % 500 : nil
    let event = UsageEvent(
        id: field(0), time: time, pool: field(2), amount: settle ? -amount : amount,
        context: EventContext(
            subject: field(3), route: field(5), method: field(6), uri: field(7), idempotencyKey: field(8), plan: field(9),
            hold: field(10)),
        kind: settle ? .settle : .spend, status: status)
    let expected = [
        event.id, String(time), event.pool, event.context.subject, String(event.amount), event.context.route,
        event.context.method, event.context.uri, event.context.idempotencyKey, event.context.plan,
        event.kind.rawValue, event.context.hold, status.map(String.init) ?? "",
    ]

    let csv = EventFormat.csv.line(event)
    guard let record = parseCSVRecord(csv) else {
        invariantFailed("an events CSV line is one well-formed RFC 4180 record", show(csv))
    }
    require(
        record.count == 13 && zip(record, expected).allSatisfy { $0.elementsEqual($1.utf8) },
        "an events CSV line reads back as the event's 13 fields", show(csv))
    require(EventFormat.csvHeader.split(separator: ",").count == 13, "the CSV header names 13 fields")

    let jsonl = EventFormat.jsonl.line(event)
    checkJSONText(jsonl)
    guard let object = parse(jsonl) as? [String: Any] else { invariantFailed("an events JSONL line is an object", show(jsonl)) }
    for (name, value) in [
        ("id", event.id), ("pool", event.pool), ("subject", event.context.subject), ("route", event.context.route),
        ("method", event.context.method), ("uri", event.context.uri), ("idempotencyKey", event.context.idempotencyKey),
        ("plan", event.context.plan), ("kind", event.kind.rawValue),
    ] {
        require(
            (object[name] as? String).map { sameBytes($0, value) } ?? false, "an events JSONL line reads back", "\(name) in \(show(jsonl))")
    }
    require(
        (object["time"] as? NSNumber)?.int64Value == time && (object["amount"] as? NSNumber)?.int64Value == event.amount,
        "an events JSONL line keeps time and amount")
    require(
        event.context.hold.isEmpty
            ? object["hold"] == nil : (object["hold"] as? String).map { sameBytes($0, event.context.hold) } ?? false,
        "an events JSONL line has the hold when there is one", show(jsonl))
    require((object["status"] as? NSNumber)?.intValue == status, "an events JSONL line has a settlement's status", show(jsonl))

    // parseTime never traps; whole non-negative numbers are taken as they are.
    let text = field(0)
    if text.utf8.count <= 64 {
        let parsed = EventFormat.parseTime(text)
        if let ms = Int64(text), ms >= 0 { require(parsed == ms, "parseTime reads epoch milliseconds", show(text)) }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzOne(data, size) { bytes in
        let fields = bytes.split(separator: 0, maxSplits: 10, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        let whole = String(decoding: bytes, as: UTF8.self)
        checkSafeToken(whole)
        for field in fields.prefix(4) { checkSafeToken(field) }
        checkKeySpace(fields)
        checkJSONWriter(fields, bytes)
        checkEventFormat(fields)
    }
}
