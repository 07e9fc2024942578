/// The usage as a plain-text table, for `charge-gate status` (an operator with ssh and no
/// browser). Same rows and time format as the HTML page.
public enum UsageTable {
    /// The table: one line per pool, in config order, columns aligned; values that could hold
    /// control characters (labels, groups, subjects) are shown with those replaced.
    public static func render(_ rows: [UsagePage.Row], now: Int64) -> String {
        var lines: [[String]] = [["POOL", "GROUP", "LEFT", "", "NEXT CHARGE", "FULL IN", "SUBJECT"]]
        for row in rows {
            let pool = row.pool
            var cells = [printable(pool.id), printable(pool.group)]
            let reading = row.reading
            if let max = reading.max, let available = reading.available {
                // A pool below zero shows its balance as it is: `-1200/4000`.
                cells.append("\(reading.owed > 0 ? -reading.owed : available)/\(max)")
                cells.append(bar(available: available, max: max))
                if pool.period != nil, let resets = reading.fullAt {
                    // The whole allowance comes back at once, when the period ends.
                    cells.append(UsagePage.resetString(at: resets, now: now))
                    cells.append(UsagePage.retryString(ms: resets - now))
                } else if let next = reading.nextRechargeAt, let full = reading.fullAt {
                    cells.append(UsagePage.retryString(ms: next - now))
                    cells.append(UsagePage.retryString(ms: full - now))
                } else {
                    cells.append(pool.isCredits ? "top-off only" : "-")
                    cells.append(available >= max ? "full" : "-")
                }
            } else {
                let per = pool.period.map { $0 == .day ? " today" : " this \($0.rawValue)" } ?? ""
                cells += [
                    "\(reading.used) used\(per)", "unlimited", reading.window.map { UsagePage.resetString(at: $0.end, now: now) } ?? "-",
                    "-",
                ]
            }
            cells.append(row.subject.isEmpty ? "" : printable(row.subject))
            lines.append(cells)
        }
        var widths = [Int](repeating: 0, count: lines[0].count)
        for line in lines {
            for (i, cell) in line.enumerated() { widths[i] = Swift.max(widths[i], cell.count) }
        }
        return lines.map { line in
            line.enumerated().map { i, cell in
                i == line.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count)
            }.joined(separator: "  ").trimmingTrailingSpaces()
        }.joined(separator: "\n") + "\n"
    }

    /// A 10-cell bar of what is left, with a warning mark at 75 % and 90 % used.
    static func bar(available: Int64, max: Int64) -> String {
        let filled = Int((available * 10 + max / 2) / Swift.max(1, max))
        let cells = String(repeating: "#", count: Swift.min(10, filled)) + String(repeating: ".", count: Swift.max(0, 10 - filled))
        switch UsagePage.level(available: available, max: max) {
        case .ok: return "[" + cells + "]"
        case .warn: return "[" + cells + "] low"
        case .danger: return "[" + cells + "] !!"
        }
    }

    static func printable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? "?" : $0 }))
    }
}

extension String {
    fileprivate func trimmingTrailingSpaces() -> String {
        var copy = self
        while copy.last == " " { copy.removeLast() }
        return copy
    }
}
