/// The small text formats of the usage page: durations, reset dates, numbers, times, HTML
/// escaping.
extension UsagePage {
    /// The reference library's human retry string (next-charge's `useChargeFetch`): whole
    /// minutes, rounded up; under an hour `"45m"`, then `"2h 15m"`, or `"1h"` when the minutes
    /// are zero. Hours are not folded into days (`"25h"`). 0 ms (or less) is `"0m"`.
    /// `nginx/charge-fetch.js` has the same function; both are tested with the same table.
    public static func retryString(ms: Int64) -> String {
        let clamped = Swift.max(0, ms)
        let minutes = clamped / 60_000 + (clamped % 60_000 > 0 ? 1 : 0)
        if minutes < 60 { return "\(minutes)m" }
        let hours = minutes / 60
        let rest = minutes % 60
        return rest == 0 ? "\(hours)h" : "\(hours)h \(rest)m"
    }

    /// A recharge interval for people: whole seconds (rounded up) under a minute (`"36s"`),
    /// else the retry string (`"20m"`, `"2h"`).
    public static func intervalString(ms: Int64) -> String {
        if ms < 60_000 {
            let seconds = Swift.max(1, ms / 1000 + (ms % 1000 > 0 ? 1 : 0))
            return "\(seconds)s"
        }
        return retryString(ms: ms)
    }

    /// `string` escaped for HTML text and quoted attribute values: `& < > " '`; NUL becomes
    /// U+FFFD (HTML parsers drop or replace it anyway).
    public static func escape(_ string: String) -> String {
        var out = ""
        out.reserveCapacity(string.utf8.count + 8)
        for scalar in string.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\u{0}": out += "\u{FFFD}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// A whole number with thousands separators: `1234567` → `"1,234,567"`.
    public static func grouped(_ number: Int64) -> String {
        let digits = String(number.magnitude)
        var out = number < 0 ? "-" : ""
        for (n, digit) in digits.enumerated() {
            if n > 0, (digits.count - n) % 3 == 0 { out += "," }
            out.append(digit)
        }
        return out
    }

    /// Epoch milliseconds as UTC: `("2025-11-21T20:54:16Z", "2025-11-21 20:54 UTC")`, for a
    /// `<time datetime>` and its text. Clamped to the years 1970–9999.
    static func utc(_ ms: Int64) -> (iso: String, text: String) {
        let (year, month, day, second) = civil(ms)
        func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let date = "\(year)-\(two(month))-\(two(day))"
        let hh = two(second / 3600)
        let mm = two(second % 3600 / 60)
        let ss = two(second % 60)
        return ("\(date)T\(hh):\(mm):\(ss)Z", "\(date) \(hh):\(mm) UTC")
    }

    /// Epoch milliseconds as a UTC date (month 1...12) and the second of that day, clamped to
    /// the years 1970–9999.
    static func civil(_ ms: Int64) -> (year: Int64, month: Int64, day: Int64, second: Int64) {
        let seconds = clampedMs(ms) / 1000
        let days = seconds / 86_400
        // Civil date from days since 1970-01-01 (H. Hinnant's algorithm; days >= 0 here).
        let z = days + 719_468
        let era = z / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day, seconds % 86_400)
    }

    /// When a period pool's allowance comes back (at the period's end), for people, `now` and `resetsAt`
    /// in epoch ms:
    /// - more than 24 h away: the UTC date of the reset, `"resets Dec 1"`, with the year when
    ///   it is not `now`'s (`"resets Jan 1, 2026"`);
    /// - 24 h or less: the wait as the retry string, `"resets in 3h"`, `"resets in 25m"`,
    ///   `"resets in 2h 15m"` (minutes rounded up, as "next charge in" on the same page);
    /// - `resetsAt` at or before `now`: `"resets now"` (a stale reading; the page never shows it).
    ///
    /// `nginx/charge-fetch.js` has the same function (`resetString`); both are tested with the
    /// same table.
    public static func resetString(at resetsAt: Int64, now: Int64) -> String {
        // Both clamped to the years 1970–9999 as the dates are, so the difference cannot overflow.
        let wait = clampedMs(resetsAt) - clampedMs(now)
        if wait <= 0 { return "resets now" }
        if wait <= dayMs { return "resets in \(retryString(ms: wait))" }
        let date = civil(resetsAt)
        let text = "resets \(monthNames[Int(date.month - 1)]) \(date.day)"
        return date.year == civil(now).year ? text : "\(text), \(date.year)"
    }

    /// What "this period" is called in a period meter's count (`"7 used this month"`).
    static func thisPeriod(_ period: BillingPeriod) -> String {
        switch period {
        case .day: return "today"
        case .week: return "this week"
        case .month: return "this month"
        }
    }

    /// `ms` clamped to the years 1970–9999.
    private static func clampedMs(_ ms: Int64) -> Int64 {
        Swift.min(Swift.max(0, ms), 253_402_300_799_999)
    }

    /// Milliseconds in a day: the reset phrase names the date beyond it.
    private static let dayMs: Int64 = 86_400_000

    /// English month abbreviations, January first.
    private static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// How full a limited pool looks: `ok`, `warn` from 75 % used, `danger` from 90 % used.
    public enum Level: String, Sendable {
        /// Less than 75 % used.
        case ok
        /// 75 % used or more (amber).
        case warn
        /// 90 % used or more (red).
        case danger
    }

    /// The warning level of a pool holding `available` of `max`.
    public static func level(available: Int64, max: Int64) -> Level {
        let used = Swift.max(0, max - Swift.max(0, available))
        if atLeast(90, used: used, of: max) { return .danger }
        if atLeast(75, used: used, of: max) { return .warn }
        return .ok
    }

    /// Whether `used` is at least `percent` % of `max`, exactly (no floating point unless the
    /// products overflow, far beyond the 10¹⁵ cap).
    private static func atLeast(_ percent: Int64, used: Int64, of max: Int64) -> Bool {
        guard max > 0 else { return true }
        let left = used.multipliedReportingOverflow(by: 100)
        let right = max.multipliedReportingOverflow(by: percent)
        if left.overflow || right.overflow { return Double(used) * 100 >= Double(max) * Double(percent) }
        return left.partialValue >= right.partialValue
    }

    /// The bar's width for `available` of `max`, as CSS: `"60%"`, `"33.3%"`; at least `"1%"`
    /// when anything is left, so that a nearly empty pool still shows a sliver.
    static func width(available: Int64, max: Int64) -> String {
        guard max > 0, available > 0 else { return "0%" }
        if available >= max { return "100%" }
        let tenths = Swift.max(10, Int64((Double(available) * 1000 / Double(max)).rounded(.down)))
        return tenths % 10 == 0 ? "\(tenths / 10)%" : "\(tenths / 10).\(tenths % 10)%"
    }
}
