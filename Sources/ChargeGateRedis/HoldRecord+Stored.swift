import ChargeGateCore
import Foundation

/// A hold record as charge.lua stores it at `KeySpace.hold(id:)` (docs/redis.md, "The hold
/// record"): JSON whose every number is an integer below 2^53 in magnitude, the items' fields
/// named as `SpendLayout.ItemField`. Decoded by `HoldRecord(stored:)`.
private struct StoredHold: Decodable {
    /// `open` or `settled`.
    var status: String
    var id: String
    var createdAt: Int64
    var expiresAt: Int64
    var policy: Policy
    var context: Context
    var items: [Item]

    /// `SettlePolicy.storedText`.
    struct Policy: Decodable {
        var refund: [String]
        var amount: String?
        var unit: Int64?
        var by: String
    }

    /// The spend's `EventContext`, named as the event fields are.
    struct Context: Decodable {
        var subject: String
        var route: String
        var method: String
        var uri: String
        var idem: String
        var plan: String
        var hold: String
    }

    /// One `HoldRecord.Item`: the item as spent (`cost` is what was held), its key, whether it
    /// is metered, and the start of a period pool's period.
    struct Item: Decodable {
        var key: String
        var pool: String
        var max: Int64?
        var interval: Int64?
        var cost: Int64
        var expires: Bool
        var period: String?
        var anchor: Int64?
        var tracksLimit: Bool
        var baseMax: Int64?
        var largestMax: Int64?
        var slowestInterval: Int64?
        var metered: Bool
        var periodStart: Int64?
    }
}

extension HoldRecord {
    /// Every number of a record: what the script's doubles hold exactly.
    static let storedRange: Range<Int64> = (1 - Limits.exactInteger)..<Limits.exactInteger

    /// Reads a stored record strictly: nil when it is not JSON of `StoredHold`'s shape, a
    /// number lies outside ±(2^53 − 1) (a time or a held cost below 0), a period or a policy is
    /// not one the scripts write.
    init?(stored text: String) {
        guard let stored = try? JSONDecoder().decode(StoredHold.self, from: Data(text.utf8)) else { return nil }
        let range = Self.storedRange
        let status: Status
        switch stored.status {
        case "open": status = .open
        case "settled": status = .settled
        default: return nil
        }
        guard let policy = Self.policy(stored.policy), range.contains(stored.createdAt), stored.createdAt >= 0,
            range.contains(stored.expiresAt), stored.expiresAt >= 0
        else { return nil }
        var items: [Item] = []
        for item in stored.items {
            let numbers = [
                item.max, item.interval, item.cost, item.anchor, item.baseMax, item.largestMax, item.slowestInterval, item.periodStart,
            ]
            guard numbers.allSatisfy({ $0.map(range.contains) ?? true }), item.cost >= 0 else { return nil }
            var period: BillingPeriod?
            if let name = item.period {
                guard let known = BillingPeriod(rawValue: name) else { return nil }
                period = known
            }
            let spend = SpendItem(
                poolId: item.pool, key: item.key, max: item.max, intervalMs: item.interval, cost: item.cost, expires: item.expires,
                period: period, anchor: item.anchor, tracksLimit: item.tracksLimit, baseMax: item.baseMax, largestMax: item.largestMax,
                slowestIntervalMs: item.slowestInterval)
            items.append(Item(spend: spend, held: item.cost, metered: item.metered, periodStart: item.periodStart))
        }
        let c = stored.context
        self.init(
            id: stored.id, createdAt: stored.createdAt, expiresAt: stored.expiresAt, policy: policy,
            context: EventContext(
                subject: c.subject, route: c.route, method: c.method, uri: c.uri, idempotencyKey: c.idem, plan: c.plan, hold: c.hold),
            items: items, status: status)
    }

    /// The policy a record keeps (`SettlePolicy.storedText`), read back strictly: nil when any
    /// part is not one it writes.
    private static func policy(_ stored: StoredHold.Policy) -> SettlePolicy? {
        var matches: [SettlePolicy.StatusMatch] = []
        for text in stored.refund {
            let bytes = Array(text.utf8)
            let digit: (UInt8) -> Bool = { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
            guard bytes.count == 3, (UInt8(ascii: "1")...UInt8(ascii: "5")).contains(bytes[0]) else { return nil }
            let hundred = Int(bytes[0] - UInt8(ascii: "0"))
            if bytes[1] == UInt8(ascii: "x"), bytes[2] == UInt8(ascii: "x") {
                matches.append(.statusClass(hundred))
            } else if digit(bytes[1]), digit(bytes[2]) {
                matches.append(.status(hundred * 100 + Int(bytes[1] - UInt8(ascii: "0")) * 10 + Int(bytes[2] - UInt8(ascii: "0"))))
            } else {
                return nil
            }
        }
        let amount: SettlePolicy.Amount?
        switch (stored.amount, stored.unit) {
        case (nil, nil): amount = nil
        case ("header", nil): amount = .header
        case ("bytesSent", let unit?) where (1..<Limits.exactInteger).contains(unit): amount = .bytesSent(unit: unit)
        case ("upstreamMs", let unit?) where (1..<Limits.exactInteger).contains(unit): amount = .upstreamMs(unit: unit)
        default: return nil
        }
        guard let by = SettlePolicy.Settler(rawValue: stored.by) else { return nil }
        return SettlePolicy(refund: matches, amount: amount, by: by)
    }
}
