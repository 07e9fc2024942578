/// Where every argument and reply field of `SettleScript` (settle.lua) sits, declared once with
/// its name, as `SpendLayout` does for the spend: the encoder (`RedisStore+Settle.swift`)
/// appends in this order, the decoder reads these positions, the script reads its arguments and
/// writes its reply through the Lua tables rendered from here (`lua`, put before the script),
/// and docs/redis.md's tables are `markdown` (a test checks all three). Positions are 1-based.
///
/// One run settles up to `chunk` holds, each atomic on its own: `KEYS` are the holds
/// (`KeySpace.hold(id:)`), then the event stream when some hold's `eventsMaxLen` > 0 (the holds
/// of one run share it); hold k's arguments (1-based) are at `ARGV[(k - 1) × width + position]`;
/// the reply has one element per hold, in order: its settle reply, or its error. The pools'
/// keys are the hold record's.
enum SettleLayout {
    /// The settlement's arguments, in order (`ARGV[position]`); the raw value is the name.
    enum Argument: String, CaseIterable {
        case report
        case status
        case reached
        case answered
        case amount
        case bytesSent
        case upstreamMs
        case eventsMaxLen
        case voidTtlMs

        /// `ARGV[position]`: the order of declaration.
        var position: Int { (Self.allCases.firstIndex(of: self) ?? 0) + 1 }

        /// What the argument holds, for docs/redis.md.
        var meaning: String {
            switch self {
            case .report: "`nginx` (its settlement line) or `app` (`POST /api/usage/settle`)"
            case .status: "nginx's `$status` (`\"\"` for the app)"
            case .reached: "`1` when the upstream received the request (some try sent it bytes), else `0`"
            case .answered: "`1` when the upstream answered (some try has a status), else `0`"
            case .amount:
                "the amount, 0 to 2⁵³; `\"\"` when there is none (nginx: no header; the app: a refund); `bad` when it is not a non-negative integer (the app's: past 2⁵³)"
            case .bytesSent: "body bytes sent to the client (`$body_bytes_sent`), at most 2⁵³"
            case .upstreamMs: "upstream time over every try, in ms, at most 2⁵³"
            case .eventsMaxLen: "the events stream's `MAXLEN ~` (`0`: no event; else the stream is the last of `KEYS`, after the holds)"
            case .voidTtlMs:
                "how long, in ms, nginx's line voids a hold that does not exist when nothing was delivered (`HOLD_VOID` written; `0`: never, the app's call)"
            }
        }
    }

    /// The tag of a settle reply (the reply's first field).
    enum Tag: String, CaseIterable {
        case settled
        case unknown
        case voided
        case expired
        case duplicate
        case ignored

        /// What it means, for docs/redis.md.
        var meaning: String {
            switch self {
            case .settled: "settled (the hold may stand as held): the fields after `now` follow"
            case .unknown: "no such hold (never made, or its key expired)"
            case .voided:
                "no such hold yet, and nginx's line says nothing was delivered: the key now holds `HOLD_VOID`, so a spend under this id is refused"
            case .expired: "its window ended: it stays charged as held"
            case .duplicate: "already settled: nothing written"
            case .ignored: "nginx's line on a route the app settles (`by: app`): nothing written, the hold stays open"
            }
        }
    }

    /// How a settled hold was resolved (`Settlement.Resolution`, less `ignored`, which is a tag).
    enum Resolution: String, CaseIterable {
        case refund
        case amount
        case stands
        case badAmount = "bad_amount"
    }

    /// Why a hold was refunded: `detail` of a refund (`Settlement.RefundReason`'s raw values).
    static let refundReasons = ["status", "not_delivered", "app"]

    /// The head of a settle reply: position `rawValue`. `tag` and `now` always; the rest only
    /// when settled, followed by each pool's `PoolField`s.
    enum Head: Int, CaseIterable {
        case tag = 1
        case now
        case resolution
        case detail
        case record

        /// The 0-based index in the reply.
        var index: Int { rawValue - 1 }

        /// The field's name.
        var name: String {
            switch self {
            case .tag: "tag"
            case .now: "now"
            case .resolution: "resolution"
            case .detail: "detail"
            case .record: "record"
            }
        }

        /// What the field holds, for docs/redis.md.
        var meaning: String {
            switch self {
            case .tag: "`settled`, `unknown`, `voided`, `expired`, `duplicate` or `ignored`"
            case .now: "Redis's clock (`TIME`) in epoch ms"
            case .resolution: "when settled: `refund`, `amount`, `stands` or `bad_amount`"
            case .detail: "when settled: a refund's reason (`status`, `not_delivered`, `app`), the amount charged (0 to 2⁵³), else `\"\"`"
            case .record: "when settled: the hold record as it now stands (status `settled`)"
            }
        }
    }

    /// One pool's fields after a settled reply's head, pool i (0-based) at
    /// `Head.allCases.count + i * PoolField.allCases.count + rawValue`.
    enum PoolField: Int, CaseIterable {
        case difference = 1
        case state

        /// The field's name.
        var name: String {
            switch self {
            case .difference: "difference"
            case .state: "state"
            }
        }

        /// What the field holds, for docs/redis.md.
        var meaning: String {
            switch self {
            case .difference: "the signed difference charged to the hold: the final charge less the held cost (0 when the hold stands)"
            case .state: "the pool's state afterwards, `{current, lastUpdatedAt, max or nil}`; nil when its key is missing (a full pool)"
            }
        }
    }

    /// The values before the first pool's fields.
    static let poolsBase = Head.allCases.count

    /// The arguments of one hold.
    static let width = Argument.allCases.count

    /// The most holds one run settles: a run blocks Redis for its length (a hold is tens of µs),
    /// and the script's set-up (its functions and tables, about 11 µs a run on this machine) is
    /// paid once per run.
    static let chunk = 16

    /// The layout as Lua tables, put before settle.lua: `SETTLE` (a hold's arguments),
    /// `SETTLED` (a settled reply's head), `POOLS` (the values before the first pool), `POOL` and
    /// `POOL_WIDTH` (a pool's fields), `SETTLE_WIDTH` and `SETTLE_CHUNK` (a hold's arguments, the
    /// most holds a run), `ITEM` (a hold item's fields, as the spend's) and `HOLD_VOID`.
    static let lua: String = {
        """
        -- Rendered from SettleLayout (Sources/ChargeGateRedis/SettleLayout.swift): where each
        -- argument and reply field is, by name.
        local SETTLE = \(SpendLayout.luaTable(Argument.allCases.map { ($0.rawValue, $0.position) }))
        local SETTLED = \(SpendLayout.luaTable(Head.allCases.map { ($0.name, $0.rawValue) }))
        local POOLS = \(poolsBase)
        local POOL = \(SpendLayout.luaTable(PoolField.allCases.map { ($0.name, $0.rawValue) }))
        local POOL_WIDTH = \(PoolField.allCases.count)
        local SETTLE_WIDTH = \(width)
        local SETTLE_CHUNK = \(chunk)
        \(SpendLayout.itemLua)
        \(SpendLayout.holdVoidLua)
        """
    }()

    /// docs/redis.md's table of a hold's arguments (hold k's at `(k - 1) × width` + the position).
    static var argumentsTable: String {
        SpendLayout.markdown(
            ["ARGV (hold k: (k − 1) × \(width) +)", "name", "what"],
            Argument.allCases.map { ["\($0.position)", "`\($0.rawValue)`", $0.meaning] })
    }

    /// docs/redis.md's table of a settle reply: the head, then each pool's fields.
    static var replyTable: String {
        var rows = Head.allCases.map { ["\($0.rawValue)", "`\($0.name)`", $0.meaning] }
        for field in PoolField.allCases {
            rows.append(["then, per pool", "`\(field.name)`", field.meaning])
        }
        return SpendLayout.markdown(["position", "name", "what"], rows)
    }

    /// docs/redis.md's table of the tags.
    static var tagTable: String {
        SpendLayout.markdown(["tag", "what"], Tag.allCases.map { ["`\($0.rawValue)`", $0.meaning] })
    }
}
