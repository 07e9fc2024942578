/// The open holds as plain text, for `charge-gate status` under the pools' table: how many
/// requests on settled routes are still waiting for their settlement, and the oldest of them
/// (a hold that stays open long means no settlement is arriving: nginx's line is not written
/// or not received, or the app does not call).
public enum HoldTable {
    /// How many open holds `status` reads at most to count them.
    public static let countLimit = 10_000

    /// A count line, `open holds: N` (`N or more` when `holds` reached `countLimit`), then,
    /// when there are any, a table of the oldest `shown`: id, subject, route, age, time left
    /// to settle, and what each pool holds. Values that could hold control characters are
    /// shown with those replaced.
    public static func render(_ holds: [HoldRecord], shown: Int, now: Int64) -> String {
        let more = holds.count >= countLimit ? " or more" : ""
        let listed = holds.prefix(Swift.max(0, shown))
        var text = "open holds: \(holds.count)\(more)"
        if listed.count < holds.count { text += " (the oldest \(listed.count))" }
        text += "\n"
        guard !listed.isEmpty else { return text }
        var lines: [[String]] = [["HOLD", "SUBJECT", "ROUTE", "AGE", "SETTLE WITHIN", "HELD"]]
        for hold in listed {
            let held = hold.items.map { "\(UsageTable.printable($0.poolId)) \($0.held)" }.joined(separator: ", ")
            lines.append([
                UsageTable.printable(hold.id), UsageTable.printable(hold.context.subject), UsageTable.printable(hold.context.route),
                UsagePage.intervalString(ms: now.saturatingSubtracting(hold.createdAt)),
                UsagePage.intervalString(ms: hold.expiresAt.saturatingSubtracting(now)), held,
            ])
        }
        var widths = [Int](repeating: 0, count: lines[0].count)
        for line in lines {
            for (i, cell) in line.enumerated() { widths[i] = Swift.max(widths[i], cell.count) }
        }
        for line in lines {
            let cells = line.enumerated().map { i, cell in
                i == line.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count)
            }
            text += cells.joined(separator: "  ") + "\n"
        }
        return text
    }
}
