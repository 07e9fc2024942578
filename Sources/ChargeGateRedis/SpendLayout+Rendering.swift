extension SpendLayout {
    /// The layout as Lua tables, put before the script (`ChargeScript.source`) so that it reads
    /// every argument by name: `ARG` (a spend's arguments), `ITEMS` (where its items start),
    /// `ITEM` (an item's fields in order, each with its `Reading`), `HOLD` (the hold's
    /// arguments, after the items), `TOPOFF` (where a top-off's
    /// item and amount are), `HEAD` (a spend reply's head) and `REPLY` (each tag's fields).
    static let lua: String = {
        let arguments = luaTable(Argument.allCases.map { ($0.rawValue, $0.position) })
        let head = luaTable(Head.allCases.map { ($0.name, $0.rawValue) })
        let replies = Tag.allCases.map { tag in
            "\(tag.rawValue) = {" + tag.fields.map { "'\($0.rawValue)'" }.joined(separator: ", ") + "}"
        }.joined(separator: ", ")
        return """
            -- Rendered from SpendLayout (Sources/ChargeGateRedis/SpendLayout.swift): where each
            -- argument and reply field is, by name.
            local ARG = \(arguments)
            local ITEMS = \(itemsBase)
            \(itemLua)
            \(holdVoidLua)
            local HOLD = \(luaTable(HoldArgument.allCases.map { ($0.rawValue, $0.position) }))
            local TOPOFF = \(luaTable([("item", topOffItemBase), ("amount", topOffAmount)]))
            local HEAD = \(head)
            local REPLY = {\(replies)}
            """
    }()

    /// `ITEM`: an item's fields in order, each with its `Reading` (the spend's items, and the
    /// fields of the items of a hold record, which settle.lua reads by the same names).
    static let itemLua: String = {
        let fields = ItemField.allCases.map { "{'\($0.rawValue)', '\($0.reading.rawValue)'}" }.joined(separator: ", ")
        return "local ITEM = {\(fields)}"
    }()

    /// What a voided hold id's key holds (`SettleOutcome.voided`): settle.lua writes it for
    /// nginx's line that comes before the hold's spend, charge.lua refuses a spend under it.
    static let holdVoid = #"{"status":"void"}"#

    /// `HOLD_VOID`: `holdVoid`, for both scripts.
    static let holdVoidLua = "local HOLD_VOID = '\(holdVoid)'"

    /// A Lua table constructor of `pairs` (`{name = position, ...}`).
    static func luaTable(_ pairs: [(String, Int)]) -> String {
        "{" + pairs.map { "\($0.0) = \($0.1)" }.joined(separator: ", ") + "}"
    }

    /// docs/redis.md's table of the spend's arguments before the items.
    static var argumentsTable: String {
        markdown(["ARGV", "name", "what"], Argument.allCases.map { ["\($0.position)", "`\($0.rawValue)`", $0.meaning] })
    }

    /// docs/redis.md's table of the hold's arguments after the items.
    static var holdTable: String {
        markdown(
            ["after the items", "name", "what"], HoldArgument.allCases.map { ["\($0.position)", "`\($0.rawValue)`", $0.meaning] })
    }

    /// docs/redis.md's table of an item's fields.
    static var itemTable: String {
        markdown(
            ["field", "name", "read as", "what"],
            ItemField.allCases.map { ["\($0.position)", "`\($0.rawValue)`", $0.reading.rawValue, $0.meaning] })
    }

    /// docs/redis.md's table of a spend reply: the head, then each tag's fields.
    static var replyTable: String {
        var rows = Head.allCases.map { ["\($0.rawValue)", "`\($0.name)`", $0.meaning] }
        for tag in Tag.allCases where !tag.fields.isEmpty {
            for field in tag.fields { rows.append(["then, for `\(tag.rawValue)`", "`\(field.rawValue)`", field.meaning]) }
        }
        return markdown(["position", "name", "what"], rows)
    }

    /// A markdown table with `header` and `rows`.
    static func markdown(_ header: [String], _ rows: [[String]]) -> String {
        let lines = [header, header.map { _ in "---" }] + rows
        return lines.map { "| " + $0.joined(separator: " | ") + " |" }.joined(separator: "\n")
    }
}
