import ChargeGateCore
import ChargeGateTestSupport
import Foundation
import Testing

@testable import ChargeGateRedis

/// The script's argument and reply layout is `SpendLayout`, and only it: docs/redis.md's tables
/// are its rendering, charge.lua reads every argument and writes every reply field through the
/// names it renders (never a position of its own), and the encoder puts each value where its
/// name says. (That the script and the decoders agree on a real server is every twin test.)
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
        ("Spend reply", SpendLayout.replyTable),
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
    }

    /// Every `TABLE.name` charge.lua uses.
    static func names(_ table: String, in lua: String) throws -> Set<String> {
        let pattern = try Regex("\\b\(table)\\.([A-Za-z_]+)")
        return Set(lua.matches(of: pattern).compactMap { $0.output[1].substring.map(String.init) })
    }

    @Test func charge_luaReadsEveryArgumentByItsNameAndNoneByNumber() throws {
        let lua = try Self.file("Sources/ChargeGateRedis/charge.lua")
        #expect(try Self.names("ARG", in: lua) == Set(SpendLayout.Argument.allCases.map(\.rawValue)))
        #expect(try Self.names("TOPOFF", in: lua) == ["item", "amount"])
        #expect(try Self.names("HEAD", in: lua) == Set(SpendLayout.Head.allCases.map(\.name)))
        // Every item field is used by its name.
        let itemFields = try Self.names("item", in: lua)
        for field in SpendLayout.ItemField.allCases {
            #expect(itemFields.contains(field.rawValue), "charge.lua never reads item.\(field.rawValue)")
        }
        // No position of its own: ARGV is indexed through the layout only.
        #expect(lua.matches(of: try Regex("ARGV\\[\\s*[0-9]")).isEmpty, "charge.lua indexes ARGV by a number")
        #expect(lua.contains("ARGV[o + k]"), "the item reader reads ITEM's fields in order")
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
        let request = SpendRequest(
            items: items, idempotency: check, eventsKey: "ek", eventsMaxLen: 401,
            context: EventContext(subject: "s", route: "/r", method: "M", uri: "/u", idempotencyKey: "key"), plan: choice)
        var command = RESPCommand()
        try RedisStore.appendSpend(request, to: &command)
        let sent = Self.arguments(&command)
        #expect(sent.prefix(7) == ["6", "k0", "k1", "ik", "qk", "pk", "ek"])
        let argv = Array(sent.dropFirst(7))
        func arg(_ argument: SpendLayout.Argument) -> String { argv[argument.position - 1] }
        let expected: [SpendLayout.Argument: String] = [
            .op: "spend", .count: "2", .idempotent: "1", .idempotencyTtl: "301", .eventsMaxLen: "401", .subject: "s", .route: "/r",
            .method: "M", .uri: "/u", .idempotencyKey: "key", .fingerprint: "ab12", .maxRepeats: "302", .maxRecords: "303",
            .planTable: choice.table, .fallbackPlan: "2", .defaultPlan: "1",
        ]
        for argument in SpendLayout.Argument.allCases { #expect(arg(argument) == expected[argument], "\(argument)") }
        #expect(argv.count == SpendLayout.itemsBase + 2 * SpendLayout.ItemField.count)
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
}
