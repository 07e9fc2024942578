/// A billing period (`period: day | week | month`): the whole allowance comes back at each period start.
///
/// Pure integer arithmetic on epoch milliseconds (UTC, no leap seconds, no Foundation): the twin
/// of `period_window` in `Sources/ChargeGateRedis/period.lua`, which the charge script runs with
/// Redis `TIME` as `now`.
public enum BillingPeriod: String, Sendable, CaseIterable {
    /// A day: UTC 00:00 to 00:00, or anchor + k × 24 h.
    case day
    /// A week: UTC Monday 00:00 to Monday 00:00, or anchor + k × 7 days.
    case week
    /// A calendar month: the 1st, 00:00 UTC, or the anchor's day of month (clamped to the
    /// month's last day) at the anchor's time of day.
    case month

    /// One period: [start, end) in epoch milliseconds.
    public struct Window: Sendable, Equatable {
        /// The first millisecond of the period (epoch ms, inclusive).
        public var start: Int64
        /// The first millisecond of the next period (epoch ms, exclusive): when the allowance
        /// comes back.
        public var end: Int64

        /// A window from `start` (inclusive) to `end` (exclusive), both epoch ms.
        public init(start: Int64, end: Int64) {
            self.start = start
            self.end = end
        }
    }

    /// The period that contains `now` (epoch ms), calendar UTC when `anchor` is nil (day: 00:00;
    /// week: Monday 00:00; month: the 1st 00:00), else anchored at `anchor` (epoch ms): day/week
    /// periods start at anchor + k days/weeks (k may be negative: an anchor in the future works
    /// too); month periods start on the anchor's day of month and time of day, clamped to the
    /// month's last day (anchor Jan 31 → Feb 28/29, Mar 31, Apr 30 ...), so every month has
    /// exactly one boundary.
    ///
    /// `now` and `anchor` must lie in `0 ..< 2^53` (the integers a Lua double holds exactly);
    /// the result is then exact, with `start <= now < end`. The Lua twin agrees whenever
    /// `end <= 2^53`: for every `now` but the last period before 2^53 ms (the year 287,396),
    /// where the double `end` rounds.
    public func window(at now: Int64, anchor: Int64?) -> Window {
        switch self {
        case .day:
            return Self.fixedWindow(at: now, anchor: anchor ?? 0, length: Self.dayMs)
        case .week:
            return Self.fixedWindow(at: now, anchor: anchor ?? Self.firstMondayMs, length: Self.weekMs)
        case .month:
            return Self.monthWindow(at: now, anchor: anchor)
        }
    }
}

extension BillingPeriod {
    /// Milliseconds in a day.
    static let dayMs: Int64 = 86_400_000
    /// Milliseconds in a week.
    static let weekMs: Int64 = 7 * dayMs
    /// 1970-01-05 00:00 UTC, the first Monday of the epoch (1970-01-01 was a Thursday): the
    /// anchor of the calendar weeks.
    static let firstMondayMs: Int64 = 4 * dayMs

    /// The period of fixed `length` ms containing `now`, its starts at `anchor` + k × `length`.
    private static func fixedWindow(at now: Int64, anchor: Int64, length: Int64) -> Window {
        let start = anchor + floorDiv(now - anchor, length) * length
        return Window(start: start, end: start + length)
    }

    /// The month period containing `now`. Each month (y, m) holds exactly one boundary: the
    /// anchor's day (clamped) and time of day, or the 1st at 00:00. So `now` lies either in
    /// [boundary of its month, boundary of the next) or in [boundary of the previous, boundary
    /// of its month).
    private static func monthWindow(at now: Int64, anchor: Int64?) -> Window {
        var anchorDay: Int64 = 1
        var timeOfDay: Int64 = 0
        if let anchor {
            let anchorDays = floorDiv(anchor, dayMs)
            timeOfDay = anchor - anchorDays * dayMs
            anchorDay = civil(fromDays: anchorDays).day
        }
        let date = civil(fromDays: floorDiv(now, dayMs))
        let boundary = monthBoundary(year: date.year, month: date.month, day: anchorDay, timeOfDay: timeOfDay)
        if now >= boundary {
            let next = date.month == 12 ? (year: date.year + 1, month: Int64(1)) : (year: date.year, month: date.month + 1)
            return Window(start: boundary, end: monthBoundary(year: next.year, month: next.month, day: anchorDay, timeOfDay: timeOfDay))
        }
        let previous = date.month == 1 ? (year: date.year - 1, month: Int64(12)) : (year: date.year, month: date.month - 1)
        return Window(start: monthBoundary(year: previous.year, month: previous.month, day: anchorDay, timeOfDay: timeOfDay), end: boundary)
    }

    /// The boundary of month `month` of `year`: `day` clamped to the month's last day, at
    /// `timeOfDay` ms after 00:00 UTC.
    private static func monthBoundary(year: Int64, month: Int64, day: Int64, timeOfDay: Int64) -> Int64 {
        let clamped = min(day, lastDay(year: year, month: month))
        return days(fromCivil: year, month: month, day: clamped) * dayMs + timeOfDay
    }
}
