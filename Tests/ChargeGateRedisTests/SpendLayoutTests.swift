import ChargeGateCore
import ChargeGateTestSupport
import Foundation
import Testing

@testable import ChargeGateRedis

/// The scripts' argument and reply layouts are `SpendLayout` and `SettleLayout`, and only they:
/// docs/redis.md's tables are their rendering, charge.lua and settle.lua read every argument and
/// write every reply field through the names they render (never a position of their own), and
/// the encoders put each value where its name says. (That the scripts and the decoders agree on
/// a real server is every twin test.)
@Suite struct SpendLayoutTests {
    static let root = repositoryRoot()

    static func file(_ path: String) throws -> String {
        try String(contentsOf: root.appending(path: path), encoding: .utf8)
    }

    /// The lines of the first table under the `### heading` section.
    static func table(under heading: String, in doc: String) -> String {
        var inSection = false
        var lines: [Substring] = []
        for line in doc.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("#") {
                if !lines.isEmpty { break }
                inSection = line == "### " + heading
                continue
            }
            guard inSection else { continue }
            if line.hasPrefix("|") {
                lines.append(line)
            } else if !lines.isEmpty {
                break
            }
        }
        return lines.joined(separator: "\n")
    }

    @Test(arguments: [
        ("Spend arguments", SpendLayout.argumentsTable),
        ("Item fields", SpendLayout.itemTable),
        ("Hold arguments", SpendLayout.holdTable),
        ("Spend reply", SpendLayout.replyTable),
        ("Settle arguments", SettleLayout.argumentsTable),
        ("Settle reply", SettleLayout.replyTable),
        ("Settle tags", SettleLayout.tagTable),
    ])
    func theDocsTableIsTheLayout(heading: String, rendered: String) throws {
        let documented = Self.table(under: heading, in: try Self.file("docs/redis.md"))
        #expect(documented == rendered, "docs/redis.md, ### \(heading), should read:\n\(rendered)")
    }

    @Test func theDocsSayWhereEachItemIs() throws {
        let doc = try Self.file("docs/redis.md")
        let base = SpendLayout.itemsBase
        let count = SpendLayout.ItemField.count
        #expect(doc.contains("`ARGV[\(base) + \(count)i + field]`"))
        #expect(doc.contains("`ARGV[\(base) + \(count)n + position]`"), "where the hold's arguments are")
    }

    /// Every `TABLE.name` charge.lua uses.
    static func names(_ table: String, in lua: String) throws -> Set<String> {
        let pattern = try Regex("\\b\(table)\\.([A-Za-z_]+)")
        return Set(lua.matches(of: pattern).compactMap { $0.output[1].substring.map(String.init) })
    }

    @Test func charge_luaReadsEveryArgumentByItsNameAndNoneByNumber() throws {
        let lua = try Self.file("Sources/ChargeGateRedis/charge.lua")
        let bucket = try Self.file("Sources/ChargeGateRedis/bucket.lua")
        #expect(try Self.names("ARG", in: lua) == Set(SpendLayout.Argument.allCases.map(\.rawValue)))
        #expect(try Self.names("TOPOFF", in: lua) == ["item", "amount"])
        #expect(try Self.names("HEAD", in: lua) == Set(SpendLayout.Head.allCases.map(\.name)))
        #expect(try Self.names("HOLD", in: lua) == Set(SpendLayout.HoldArgument.allCases.map(\.rawValue)))
        #expect(lua.contains("local holdAt = ITEMS + n * #ITEM"), "the hold's arguments follow the items")
        // Every item field is used by its name (the shared bucket rules read most of them).
        let itemFields = try Self.names("item", in: lua + bucket)
        for field in SpendLayout.ItemField.allCases {
            #expect(itemFields.contains(field.rawValue), "charge.lua and bucket.lua never read item.\(field.rawValue)")
        }
        // No position of its own: ARGV is indexed through the layout only.
        for (name, text) in [("charge.lua", lua), ("bucket.lua", bucket)] {
            #expect(text.matches(of: try Regex("ARGV\\[\\s*[0-9]")).isEmpty, "\(name) indexes ARGV by a number")
        }
        #expect(!bucket.contains("ARGV"), "the shared rules read no argument: each script reads its own")
        #expect(lua.contains("ARGV[o + k]"), "the item reader reads ITEM's fields in order")
    }

    @Test func settle_luaReadsEveryArgumentByItsNameAndNoneByNumber() throws {
        let lua = try Self.file("Sources/ChargeGateRedis/settle.lua")
        #expect(try Self.names("SETTLE", in: lua) == Set(SettleLayout.Argument.allCases.map(\.rawValue)))
        #expect(try Self.names("SETTLED", in: lua) == Set(SettleLayout.Head.allCases.map(\.name)))
        #expect(try Self.names("POOL", in: lua) == Set(SettleLayout.PoolField.allCases.map(\.name)))
        #expect(lua.matches(of: try Regex("ARGV\\[\\s*[0-9]")).isEmpty, "settle.lua indexes ARGV by a number")
        #expect(lua.contains("POOLS + (i - 1) * POOL_WIDTH"), "each pool's fields follow the head")
        // The record's items are read by ITEM's names, as the spend wrote them.
        #expect(lua.contains("for k = 1, #ITEM do"))
    }

    @Test func settle_luaAnswersEveryTagAndResolutionByItsName() throws {
        let lua = try Self.file("Sources/ChargeGateRedis/settle.lua")
        for tag in SettleLayout.Tag.allCases {
            #expect(lua.contains("'\(tag.rawValue)'"), "settle.lua never answers \(tag.rawValue)")
        }
        for resolution in SettleLayout.Resolution.allCases {
            #expect(lua.contains("'\(resolution.rawValue)'"), "settle.lua never resolves \(resolution.rawValue)")
        }
        for reason in SettleLayout.refundReasons {
            #expect(Settlement.RefundReason(rawValue: reason) != nil)
            #expect(lua.contains("'refund', '\(reason)'"), "settle.lua never refunds for \(reason)")
        }
    }

    @Test func charge_luaAnswersEveryReplyFieldByItsName() throws {
        let lua = try Self.file("Sources/ChargeGateRedis/charge.lua")
        for tag in SpendLayout.Tag.allCases {
            #expect(lua.contains("'\(tag.rawValue)'"), "charge.lua never answers \(tag.rawValue)")
            for field in tag.fields {
                #expect(lua.contains("\(field.rawValue) = "), "charge.lua never names the reply field \(field.rawValue)")
            }
        }
    }

    @Test func aHeadFieldsNameIsItsCase() {
        for head in SpendLayout.Head.allCases { #expect(head.name == "\(head)") }
    }

    @Test func theScriptStartsWithTheRenderedLayout() {
        #expect(ChargeScript.source.hasPrefix(SpendLayout.lua + "\n"))
        #expect(SettleScript.source.hasPrefix(SettleLayout.lua + "\n"))
        #expect(SettleLayout.lua.contains("local POOLS = \(SettleLayout.Head.allCases.count)\n"))
        #expect(SettleLayout.lua.contains(SpendLayout.itemLua))
        #expect(SpendLayout.lua.contains("local ITEMS = \(SpendLayout.Argument.allCases.count)\n"))
        #expect(SpendLayout.lua.contains("{'pool', 'text'}, {'max', 'number'}"))
        #expect(SpendLayout.topOffAmount == 2 + SpendLayout.ItemField.count)
    }

    /// The arguments of an encoded command (after EVALSHA and the SHA).
    static func arguments(_ command: inout RESPCommand) -> [String] {
        let bytes = command.withEncoded { Array($0) }
        var values: [String] = []
        var at = bytes.firstIndex(of: UInt8(ascii: "\n"))! + 1
        while at < bytes.count {
            let end = bytes[at...].firstIndex(of: UInt8(ascii: "\r"))!
            let length = Int(String(decoding: bytes[(at + 1)..<end], as: UTF8.self))!
            values.append(String(decoding: bytes[(end + 2)..<(end + 2 + length)], as: UTF8.self))
            at = end + 2 + length + 2
        }
        return values
    }

    @Test func theEncoderPutsEveryValueWhereItsNameSays() throws {
        let items = [
            SpendItem(
                poolId: "p0", key: "k0", max: 101, intervalMs: 102, cost: 103, expires: true, period: .week, anchor: 104,
                tracksLimit: true, baseMax: 105, largestMax: 106, slowestIntervalMs: 107),
            SpendItem(poolId: "p1", key: "k1", max: nil, intervalMs: nil, cost: 203, expires: false),
        ]
        let check = IdempotencyCheck(key: "ik", fingerprint: "ab12", ttlMs: 301, maxRepeats: 302, quotaKey: "qk", maxRecords: 303)
        let choice = PlanChoice(
            recordKey: "pk", ids: ["a", "b", "c"],
            limits: Array(repeating: Array(repeating: .init(max: 1, intervalMs: 2), count: 2), count: 3),
            fallback: 2, defaultPlan: 1)
        let hold = HoldRequest(
            key: "hk", id: "h1", policy: SettlePolicy(refund: [.statusClass(5), .status(429)], amount: .bytesSent(unit: 1024)),
            metered: [false, true], windowMs: 501)
        let request = SpendRequest(
            items: items, idempotency: check, eventsKey: "ek", eventsMaxLen: 401,
            context: EventContext(subject: "s", route: "/r", method: "M", uri: "/u", idempotencyKey: "key"), plan: choice, hold: hold)
        var command = RESPCommand()
        try RedisStore.appendSpend(request, to: &command)
        let sent = Self.arguments(&command)
        #expect(sent.prefix(8) == ["7", "k0", "k1", "ik", "qk", "pk", "ek", "hk"])
        let argv = Array(sent.dropFirst(8))
        let holdAt = SpendLayout.itemsBase + 2 * SpendLayout.ItemField.count
        #expect(argv.count == holdAt + SpendLayout.HoldArgument.allCases.count)
        let holdArguments: [SpendLayout.HoldArgument: String] = [
            .id: "h1", .ttl: "1002", .window: "501", .policy: #"{"refund":["5xx","429"],"amount":"bytesSent","unit":1024,"by":"nginx"}"#,
            .metered: "01",
        ]
        for argument in SpendLayout.HoldArgument.allCases {
            #expect(argv[holdAt + argument.position - 1] == holdArguments[argument], "\(argument)")
        }
        func arg(_ argument: SpendLayout.Argument) -> String { argv[argument.position - 1] }
        let expected: [SpendLayout.Argument: String] = [
            .op: "spend", .count: "2", .idempotent: "1", .idempotencyTtl: "301", .eventsMaxLen: "401", .subject: "s", .route: "/r",
            .method: "M", .uri: "/u", .idempotencyKey: "key", .fingerprint: "ab12", .maxRepeats: "302", .maxRecords: "303",
            .planTable: choice.table, .fallbackPlan: "2", .defaultPlan: "1",
        ]
        for argument in SpendLayout.Argument.allCases { #expect(arg(argument) == expected[argument], "\(argument)") }
        func field(_ item: Int, _ field: SpendLayout.ItemField) -> String {
            argv[SpendLayout.itemsBase + item * SpendLayout.ItemField.count + field.position - 1]
        }
        let first: [SpendLayout.ItemField: String] = [
            .pool: "p0", .max: "101", .interval: "102", .cost: "103", .expires: "1", .period: "week", .anchor: "104", .tracksLimit: "1",
            .baseMax: "105", .largestMax: "106", .slowestInterval: "107",
        ]
        let second: [SpendLayout.ItemField: String] = [
            .pool: "p1", .max: "", .interval: "", .cost: "203", .expires: "0", .period: "", .anchor: "", .tracksLimit: "0", .baseMax: "",
            .largestMax: "", .slowestInterval: "",
        ]
        for f in SpendLayout.ItemField.allCases {
            #expect(field(0, f) == first[f], "item 0 \(f)")
            #expect(field(1, f) == second[f], "item 1 \(f)")
        }
    }

    @Test func withoutAHoldTheSpendSendsWhatItSentBeforeSettlement() throws {
        let item = SpendItem(poolId: "p0", key: "k0", max: 1, intervalMs: nil, cost: 1, expires: false)
        let request = SpendRequest(
            items: [item], context: EventContext(subject: "s", route: "/r", method: "M", uri: "/u", idempotencyKey: ""))
        var command = RESPCommand()
        try RedisStore.appendSpend(request, to: &command)
        let sent = Self.arguments(&command)
        #expect(sent.prefix(2) == ["1", "k0"])
        #expect(sent.count == 2 + SpendLayout.itemsBase + SpendLayout.ItemField.count, "no hold argument")
    }

    @Test(arguments: [
        (
            SettleReport.nginx(
                ResponseFacts(status: 502, upstreamReached: true, upstreamAnswered: false, amount: .value(7), bytesSent: 9, upstreamMs: 11)),
            ["nginx", "502", "1", "0", "7", "9", "11", "300", "0"]
        ),
        (
            SettleReport.nginx(
                ResponseFacts(
                    status: 200, upstreamReached: false, upstreamAnswered: true, amount: .invalid, bytesSent: Int64.max, upstreamMs: -5)),
            ["nginx", "200", "0", "1", "bad", "9007199254740992", "0", "300", "0"]
        ),
        (
            SettleReport.nginx(ResponseFacts(status: 204, upstreamReached: true, upstreamAnswered: true)),
            ["nginx", "204", "1", "1", "", "0", "0", "300", "0"]
        ),
        (SettleReport.app(amount: nil), ["app", "", "0", "0", "", "0", "0", "300", "0"]),
        (SettleReport.app(amount: 1 << 53), ["app", "", "0", "0", "9007199254740992", "0", "0", "300", "0"]),
        (SettleReport.app(amount: (1 << 53) + 1), ["app", "", "0", "0", "bad", "0", "0", "300", "0"]),
        (SettleReport.app(amount: -1), ["app", "", "0", "0", "bad", "0", "0", "300", "0"]),
    ])
    func theSettleEncoderPutsEveryValueWhereItsNameSays(report: SettleReport, expected: [String]) {
        var command = RESPCommand()
        RedisStore.appendSettle([SettleRequest(key: "hk", id: "h1", report: report, eventsKey: "ek", eventsMaxLen: 300)][...], to: &command)
        let sent = Self.arguments(&command)
        #expect(sent.prefix(3) == ["2", "hk", "ek"])
        let argv = Array(sent.dropFirst(3))
        #expect(argv.count == SettleLayout.Argument.allCases.count)
        for argument in SettleLayout.Argument.allCases {
            #expect(argv[argument.position - 1] == expected[argument.position - 1], "\(argument)")
        }
        // Without events: the hold alone, and MAXLEN 0.
        var bare = RESPCommand()
        RedisStore.appendSettle([SettleRequest(key: "hk", id: "h1", report: report)][...], to: &bare)
        let alone = Self.arguments(&bare)
        #expect(alone.prefix(2) == ["1", "hk"])
        #expect(alone[2 + SettleLayout.Argument.eventsMaxLen.position - 1] == "0")
        // A line that may void its hold: the void's TTL last.
        var voiding = RESPCommand()
        RedisStore.appendSettle([SettleRequest(key: "hk", id: "h1", report: report, voidTtlMs: 7_200_000)][...], to: &voiding)
        #expect(Self.arguments(&voiding).last == "7200000")
    }
}
