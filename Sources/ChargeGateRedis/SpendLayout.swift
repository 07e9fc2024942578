/// Where every argument and reply field of `ChargeScript` sits, declared once with its name:
/// the spend's arguments, an item's fields, a hold's, the top-off's, and the replies' fields. The
/// encoder (`RedisStore+Script.swift`) appends in this order, the decoders read these
/// positions, the script reads its arguments through the Lua tables rendered from here
/// (`lua`, put before the script), and docs/redis.md's tables are `markdown` (a test checks
/// all three). Positions are 1-based, as `ARGV` and Lua tables count. A name is a case's raw
/// value, or `name` (no reflection: the script's source is built on a worker's first request).
enum SpendLayout {
    /// The spend's arguments before the items, in order (`ARGV[position]`); the raw value is
    /// the name.
    enum Argument: String, CaseIterable {
        case op
        case count
        case idempotent
        case idempotencyTtl
        case eventsMaxLen
        case subject
        case route
        case method
        case uri
        case idempotencyKey
        case fingerprint
        case maxRepeats
        case maxRecords
        case planTable
        case fallbackPlan
        case defaultPlan

        /// What the argument holds, for docs/redis.md.
        var meaning: String {
            switch self {
            case .op: "`spend` (`probe`: the plan and the idempotency decision alone, for a cluster spend across slots)"
            case .count: "n, the number of items (the first n `KEYS` are their buckets)"
            case .idempotent:
                "`1` when an idempotency record is checked (its record and the subject's record counter follow the buckets in `KEYS`), else `0`"
            case .idempotencyTtl: "the record's time to live in ms"
            case .eventsMaxLen: "the events stream's `MAXLEN ~` (`0`: no event; else the stream is in `KEYS`, as above)"
            case .subject: "the event's subject"
            case .route: "the event's route"
            case .method: "the event's method"
            case .uri: "the event's uri"
            case .idempotencyKey: "the event's idempotency key"
            case .fingerprint: "the request's fingerprint (`\"\"` without a record)"
            case .maxRepeats: "the free repeats allowed (`\"\"` without a record)"
            case .maxRecords: "the records one subject may create per window (`\"\"` without a record)"
            case .planTable: "the plan table (`\"\"` without plans; P = its lines; the plan record follows the idempotency keys in `KEYS`)"
            case .fallbackPlan: "the plan when none is stored (0-based)"
            case .defaultPlan: "the plan a stored id the config does not have counts as (0-based)"
            }
        }

        /// `ARGV[position]`: the order of declaration.
        var position: Int { (Self.allCases.firstIndex(of: self) ?? 0) + 1 }
    }

    /// How the script reads an item's field.
    enum Reading: String {
        /// As sent.
        case text
        /// A decimal integer; `""` is none.
        case number
        /// `1` is true, anything else false.
        case flag
        /// As sent; `""` is none.
        case name
    }

    /// One item's fields, in order (the raw value is the name): item i (0-based) of a spend
    /// at `ARGV[itemsBase + i * ItemField.count + position]`, a top-off's at
    /// `ARGV[topOffItemBase + position]`.
    enum ItemField: String, CaseIterable {
        case pool
        case max
        case interval
        case cost
        case expires
        case period
        case anchor
        case tracksLimit
        case baseMax
        case largestMax
        case slowestInterval

        /// The number of fields of an item.
        static let count = allCases.count

        /// Its place among an item's fields (1-based): the order of declaration.
        var position: Int { (Self.allCases.firstIndex(of: self) ?? 0) + 1 }

        /// How the script reads it.
        var reading: Reading {
            switch self {
            case .pool: .text
            case .max, .interval, .cost, .anchor, .baseMax, .largestMax, .slowestInterval: .number
            case .expires, .tracksLimit: .flag
            case .period: .name
            }
        }

        /// What the field holds, for docs/redis.md.
        var meaning: String {
            switch self {
            case .pool: "the pool id"
            case .max: "the cap (`\"\"`: unlimited); with plans, the chosen plan's replaces it"
            case .interval: "the recharge interval in ms (`\"\"`: never refills); with plans, the chosen plan's replaces it"
            case .cost: "the charges to spend"
            case .expires: "`1` for a per-subject pool (its key expires)"
            case .period: "the billing period: `day`, `week`, `month` (`\"\"`: a bucket)"
            case .anchor: "the period anchor in ms (`\"\"`: calendar periods); with plans, a per-subject pool takes the record's"
            case .tracksLimit: "`1` when the state records its cap (`\"max\"`) and is rebased when it changes"
            case .baseMax: "the pool's own max: what a state without `\"max\"` was counted against (`\"\"`: unlimited)"
            case .largestMax: "the largest max any plan gives the pool: what a rebase counts as used at most (`\"\"`: none)"
            case .slowestInterval: "the longest interval any plan gives the pool: what a per-subject bucket's TTL counts in (`\"\"`: none)"
            }
        }
    }

    /// The spend's arguments before the first item.
    static let itemsBase = Argument.allCases.count

    /// The hold's arguments, after the items and only when the spend records one (a settled
    /// route): `ARGV[itemsBase + n × ItemField.count + position]`, and its key is the last of
    /// `KEYS`. A spend without a hold sends none of them, so a route without `settle:` sends
    /// exactly what it did before settlement. The raw value is the name.
    enum HoldArgument: String, CaseIterable {
        case id
        case ttl
        case window
        case policy
        case metered

        /// Its place after the items (1-based): the order of declaration.
        var position: Int { (Self.allCases.firstIndex(of: self) ?? 0) + 1 }

        /// What the argument holds, for docs/redis.md.
        var meaning: String {
            switch self {
            case .id: "the hold's id (nginx's `$request_id`)"
            case .ttl: "the hold key's time to live in ms (two settlement windows)"
            case .window: "the settlement window in ms: the record's `expiresAt` is the spend's clock plus it"
            case .policy: "the route's `settle:` as JSON (the record's `policy`, stored as sent)"
            case .metered: "one character per item: `1` when it is metered (settled to the amount), else `0`"
            }
        }
    }

    /// The top-off's arguments: `op` (`topoff`) at `ARGV[1]`, then the item's fields, then
    /// the amount.
    static let topOffItemBase = 1
    /// The top-off's amount (`""`: fill): `ARGV[topOffAmount]`.
    static let topOffAmount = topOffItemBase + ItemField.count + 1

    /// The first fields of every spend reply: position `rawValue`.
    enum Head: Int, CaseIterable {
        case tag = 1
        case now
        case plan
        case unknownPlan
        case anchor

        /// The 0-based index in the reply.
        var index: Int { rawValue - 1 }

        /// The field's name.
        var name: String {
            switch self {
            case .tag: "tag"
            case .now: "now"
            case .plan: "plan"
            case .unknownPlan: "unknownPlan"
            case .anchor: "anchor"
            }
        }

        /// What the field holds, for docs/redis.md.
        var meaning: String {
            switch self {
            case .tag: "`allowed`, `repeated`, `reused`, `void`, `out` or `credits` (`fresh`: a probe's key to decide afresh)"
            case .now: "Redis's clock (`TIME`) in epoch ms"
            case .plan:
                "with P > 0 only: plan × 4 + stored × 2 + more: the plan used (0-based), whether it is the stored one, whether the next two fields follow"
            case .unknownPlan: "when more is 1: a stored plan id the config does not have (nil: none; `\"\"`: an unreadable record)"
            case .anchor: "when more is 1: the stored period anchor (-1: none)"
            }
        }
    }

    /// The tag of a spend reply, and the fields that follow its head.
    enum Tag: String, CaseIterable {
        case allowed
        case repeated
        case reused
        case void
        case out
        case credits
        /// A probe's answer (op `probe`): the idempotency key is to be decided afresh; nothing
        /// was written.
        case fresh

        /// The fields after the head, in order.
        var fields: [ReplyField] {
            switch self {
            case .allowed: [.remaining, .fullAt]
            case .repeated, .reused, .void, .fresh: []
            case .out: [.item, .retryAfterMs]
            case .credits: [.item, .available, .required]
            }
        }

        /// The tag `text` names, nil for none (faster than `init(rawValue:)`'s table search).
        init?(named text: String) {
            for tag in Self.allCases where tag.rawValue == text {
                self = tag
                return
            }
            return nil
        }
    }

    /// A field after a spend reply's head.
    enum ReplyField: String, CaseIterable {
        case remaining
        case fullAt
        case item
        case retryAfterMs
        case available
        case required

        /// Whether the field is one value per item (n values) rather than one.
        var perItem: Bool { self == .remaining || self == .fullAt }

        /// The values it takes in a spend of `items` items.
        func width(items: Int) -> Int { perItem ? items : 1 }

        /// What the field holds, for docs/redis.md.
        var meaning: String {
            switch self {
            case .remaining: "n values: what each item holds afterwards (an unlimited pool: its use)"
            case .fullAt: "n values: when each item is full again (-1: never refills, or unlimited; a period pool: the period's end)"
            case .item: "the denying item (0-based)"
            case .retryAfterMs: "the longest wait over every pool short of charges, in ms"
            case .available: "the item's available balance (an owed one counts as 0)"
            case .required: "the item's cost"
            }
        }
    }

    /// A bucket state in a peek or top-off reply (`{current, lastUpdatedAt, max or nil}`);
    /// a top-off's reply is Redis's clock then these, a peek's the clock then one such array
    /// (or nil) per key.
    enum StateField: Int, CaseIterable {
        case current = 1
        case lastUpdatedAt
        case max

        /// The 0-based index among the state's fields.
        var index: Int { rawValue - 1 }
    }
}
