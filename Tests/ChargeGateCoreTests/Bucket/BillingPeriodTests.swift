import ChargeGateTestSupport
import Testing

@testable import ChargeGateCore

/// Test-side UTC calendar, written independently of the code under test (a walk over years and
/// a table of month lengths, no Hinnant), so that expected values never come from `BillingPeriod`.
enum TestUTC {
    static let dayMs: Int64 = 86_400_000

    static func isLeap(_ year: Int) -> Bool { (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 }

    static func daysIn(_ year: Int, _ month: Int) -> Int {
        month == 2 ? (isLeap(year) ? 29 : 28) : [31, 0, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    }

    /// Epoch ms of `year`-`month`-`day` `hour`:`minute`:`second`.`ms` UTC (any year, 1969 too).
    static func ms(_ year: Int, _ month: Int, _ day: Int, _ hour: Int = 0, _ minute: Int = 0, _ second: Int = 0, _ ms: Int = 0) -> Int64 {
        var days = 0
        if year >= 1970 {
            for y in 1970..<year { days += isLeap(y) ? 366 : 365 }
        } else {
            for y in year..<1970 { days -= isLeap(y) ? 366 : 365 }
        }
        for m in 1..<month { days += daysIn(year, m) }
        days += day - 1
        return Int64(days) * dayMs + Int64(((hour * 60 + minute) * 60 + second) * 1000 + ms)
    }

    /// Epoch ms of "YYYY-MM-DD", "YYYY-MM-DD HH:MM", "YYYY-MM-DD HH:MM:SS" or
    /// "YYYY-MM-DD HH:MM:SS.mmm" (UTC).
    static func ms(_ text: String) -> Int64 {
        let parts = text.split(whereSeparator: { "-: .".contains($0) }).map { Int($0)! }
        precondition([3, 5, 6, 7].contains(parts.count), "bad date \(text)")
        let p = parts + Array(repeating: 0, count: 7 - parts.count)
        return ms(p[0], p[1], p[2], p[3], p[4], p[5], p[6])
    }

    /// The UTC date of epoch ms `value` (>= 0... or before 1970): year, month, day, ms into the day.
    static func date(_ value: Int64) -> (year: Int, month: Int, day: Int, msOfDay: Int64) {
        var days = Int(value / dayMs)
        var msOfDay = value % dayMs
        if msOfDay < 0 {
            msOfDay += dayMs
            days -= 1
        }
        var year = 1970
        while days < 0 {
            year -= 1
            days += isLeap(year) ? 366 : 365
        }
        while days >= (isLeap(year) ? 366 : 365) {
            days -= isLeap(year) ? 366 : 365
            year += 1
        }
        var month = 1
        while days >= daysIn(year, month) {
            days -= daysIn(year, month)
            month += 1
        }
        return (year, month, days + 1, msOfDay)
    }
}

@Suite struct BillingPeriodTests {
    /// The test calendar against literal epochs checked with `date -u -d @SECONDS`.
    @Test(arguments: [
        ("1970-01-01", 0 as Int64),
        ("1970-01-05", 345_600_000),
        ("1969-12-29", -259_200_000),
        ("2000-02-29", 951_782_400_000),
        ("2024-02-29 14:30:15.250", 1_709_217_015_250),
        ("2100-03-01", 4_107_542_400_000),
        ("2200-12-31 23:59:59.999", 7_289_654_399_999),
    ])
    func theTestCalendarAgreesWithDate(text: String, epochMs: Int64) {
        #expect(TestUTC.ms(text) == epochMs)
        let date = TestUTC.date(epochMs)
        #expect(TestUTC.ms(date.year, date.month, date.day) + date.msOfDay == epochMs)
    }

    /// One table row: `period.window(at: now, anchor: anchor)` is [start, end), all dates in
    /// the test calendar's "YYYY-MM-DD[ HH:MM[:SS[.mmm]]]" UTC.
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var period: BillingPeriod
        var anchor: String?
        var now: String
        var start: String
        var end: String
        var testDescription: String { name }

        init(_ name: String, _ period: BillingPeriod, anchor: String? = nil, now: String, _ start: String, _ end: String) {
            self.name = name
            self.period = period
            self.anchor = anchor
            self.now = now
            self.start = start
            self.end = end
        }
    }

    static let calendarCases: [Case] = [
        Case("day: mid-day", .day, now: "2024-03-15 13:45:10.123", "2024-03-15", "2024-03-16"),
        Case("day: exactly 00:00 is the start", .day, now: "2024-03-15", "2024-03-15", "2024-03-16"),
        Case("day: 1 ms before 00:00 is the day before", .day, now: "2024-03-15 23:59:59.999", "2024-03-15", "2024-03-16"),
        Case("day: the epoch", .day, now: "1970-01-01", "1970-01-01", "1970-01-02"),
        Case("day: Dec 31 ends at Jan 1", .day, now: "2023-12-31 12:00", "2023-12-31", "2024-01-01"),
        Case("day: a leap day", .day, now: "2024-02-29 06:00", "2024-02-29", "2024-03-01"),
        Case("week: Monday 00:00 starts the week", .week, now: "2024-03-11", "2024-03-11", "2024-03-18"),
        Case("week: Sunday 23:59:59.999 is the week's last ms", .week, now: "2024-03-17 23:59:59.999", "2024-03-11", "2024-03-18"),
        Case("week: a Wednesday", .week, now: "2024-03-13 10:00", "2024-03-11", "2024-03-18"),
        Case("week: 1970-01-01, a Thursday, is in the week of Monday 1969-12-29", .week, now: "1970-01-01", "1969-12-29", "1970-01-05"),
        Case("week: across a year end", .week, now: "2025-01-01 08:00", "2024-12-30", "2025-01-06"),
        Case("week: the leap day", .week, now: "2024-02-29", "2024-02-26", "2024-03-04"),
        Case("month: mid-month", .month, now: "2024-03-15 09:00", "2024-03-01", "2024-04-01"),
        Case("month: the 1st at 00:00 starts the month", .month, now: "2024-04-01", "2024-04-01", "2024-05-01"),
        Case("month: 1 ms before the 1st", .month, now: "2024-03-31 23:59:59.999", "2024-03-01", "2024-04-01"),
        Case("month: February of a leap year", .month, now: "2024-02-29 12:00", "2024-02-01", "2024-03-01"),
        Case("month: February of 2100 (not leap)", .month, now: "2100-02-28 23:59:59.999", "2100-02-01", "2100-03-01"),
        Case("month: December ends at January", .month, now: "2023-12-31 23:00", "2023-12-01", "2024-01-01"),
        Case("month: the epoch", .month, now: "1970-01-01", "1970-01-01", "1970-02-01"),
    ]

    @Test(arguments: calendarCases)
    func calendarUTC(_ c: Case) {
        check(c)
    }

    static let anchoredMonthCases: [Case] = [
        // Anchor on the 31st, leap 2024.
        Case(
            "31st, 2024: mid-February is in the period from Jan 31", .month,
            anchor: "2024-01-31", now: "2024-02-15", "2024-01-31", "2024-02-29"),
        Case(
            "31st, 2024: Feb 28 23:59:59.999 still before the clamped Feb 29", .month,
            anchor: "2024-01-31", now: "2024-02-28 23:59:59.999", "2024-01-31", "2024-02-29"),
        Case(
            "31st, 2024: Feb 29 00:00 is the boundary", .month,
            anchor: "2024-01-31", now: "2024-02-29", "2024-02-29", "2024-03-31"),
        Case(
            "31st, 2024: April clamps to the 30th", .month,
            anchor: "2024-01-31", now: "2024-04-15", "2024-03-31", "2024-04-30"),
        Case(
            "31st, 2024: Apr 30 to May 31", .month,
            anchor: "2024-01-31", now: "2024-04-30", "2024-04-30", "2024-05-31"),
        // Anchor on the 31st, common 2023.
        Case(
            "31st, 2023: Feb 27 is before the clamped Feb 28", .month,
            anchor: "2023-01-31", now: "2023-02-27", "2023-01-31", "2023-02-28"),
        Case(
            "31st, 2023: Feb 28 to Mar 31", .month,
            anchor: "2023-01-31", now: "2023-02-28", "2023-02-28", "2023-03-31"),
        // Anchor on the 31st, 2000 (leap: divisible by 400) and 2100 (common: by 100 only).
        Case(
            "31st, 2000: Feb 28 is before the clamped Feb 29", .month,
            anchor: "2000-01-31", now: "2000-02-28", "2000-01-31", "2000-02-29"),
        Case(
            "31st, 2000: Feb 29 to Mar 31", .month,
            anchor: "2000-01-31", now: "2000-02-29", "2000-02-29", "2000-03-31"),
        Case(
            "31st, 2100: Feb 27 is before the clamped Feb 28", .month,
            anchor: "2099-12-31", now: "2100-02-27", "2100-01-31", "2100-02-28"),
        Case(
            "31st, 2100: Feb 28 noon to Mar 31", .month,
            anchor: "2099-12-31", now: "2100-02-28 12:00", "2100-02-28", "2100-03-31"),
        // Anchor on the 30th.
        Case(
            "30th, 2023: Mar 1 is in the period from Feb 28", .month,
            anchor: "2023-01-30", now: "2023-03-01", "2023-02-28", "2023-03-30"),
        Case(
            "30th, 2024: Mar 1 is in the period from Feb 29", .month,
            anchor: "2023-01-30", now: "2024-03-01", "2024-02-29", "2024-03-30"),
        Case(
            "30th, 2000: Feb 29 to Mar 30", .month,
            anchor: "1999-11-30", now: "2000-03-29 23:59:59.999", "2000-02-29", "2000-03-30"),
        Case(
            "30th, 2100: mid-March is in the period from Feb 28", .month,
            anchor: "2100-01-30", now: "2100-03-15", "2100-02-28", "2100-03-30"),
        // Anchor on the 29th.
        Case(
            "29th, 2024: Feb 29 is its own day", .month,
            anchor: "2024-01-29", now: "2024-02-29", "2024-02-29", "2024-03-29"),
        Case(
            "29th, 2024: Feb 28 is before it", .month,
            anchor: "2024-01-29", now: "2024-02-28 23:59", "2024-01-29", "2024-02-29"),
        Case(
            "29th, 2023: clamped to Feb 28", .month,
            anchor: "2023-01-29", now: "2023-02-28", "2023-02-28", "2023-03-29"),
        Case(
            "29th, 2023: Feb 27 is before the clamped Feb 28", .month,
            anchor: "2023-01-29", now: "2023-02-27", "2023-01-29", "2023-02-28"),
        Case(
            "29th, 2000: Feb 29 noon", .month,
            anchor: "2000-01-29", now: "2000-02-29 12:00", "2000-02-29", "2000-03-29"),
        Case(
            "29th, 2100: clamped to Feb 28", .month,
            anchor: "2099-01-29", now: "2100-03-01", "2100-02-28", "2100-03-29"),
        // December to January.
        Case(
            "31st: Dec 31 to Jan 31", .month,
            anchor: "2023-05-31", now: "2023-12-31 12:00", "2023-12-31", "2024-01-31"),
        Case(
            "31st: mid-January is in the period from Dec 31", .month,
            anchor: "2023-05-31", now: "2024-01-15", "2023-12-31", "2024-01-31"),
        Case(
            "15th: Jan 10 is in the period from Dec 15", .month,
            anchor: "2022-06-15", now: "2024-01-10", "2023-12-15", "2024-01-15"),
        Case(
            "15th: Dec 20 runs to Jan 15", .month,
            anchor: "2022-06-15", now: "2023-12-20", "2023-12-15", "2024-01-15"),
        // A time of day.
        Case(
            "14:30:15.250: 1 ms before the boundary", .month,
            anchor: "2024-01-31 14:30:15.250", now: "2024-02-29 14:30:15.249", "2024-01-31 14:30:15.250", "2024-02-29 14:30:15.250"),
        Case(
            "14:30:15.250: at the boundary", .month,
            anchor: "2024-01-31 14:30:15.250", now: "2024-02-29 14:30:15.250", "2024-02-29 14:30:15.250", "2024-03-31 14:30:15.250"),
        Case(
            "14:30:15.250: the boundary's day, before its time", .month,
            anchor: "2024-01-31 14:30:15.250", now: "2024-02-29", "2024-01-31 14:30:15.250", "2024-02-29 14:30:15.250"),
        // Anchors in the future, a year back, now itself, the calendar's own.
        Case(
            "future anchor: Feb 10 is in the period from Jan 31", .month,
            anchor: "2030-07-31 10:00", now: "2024-02-10", "2024-01-31 10:00", "2024-02-29 10:00"),
        Case(
            "future anchor: 1 ms before Mar 31 10:00", .month,
            anchor: "2030-07-31 10:00", now: "2024-03-31 09:59:59.999", "2024-02-29 10:00", "2024-03-31 10:00"),
        Case(
            "a year back: 1 ms before the anniversary", .month,
            anchor: "2023-03-15 08:00", now: "2024-03-15 07:59:59.999", "2024-02-15 08:00", "2024-03-15 08:00"),
        Case(
            "a year back: the anniversary", .month,
            anchor: "2023-03-15 08:00", now: "2024-03-15 08:00", "2024-03-15 08:00", "2024-04-15 08:00"),
        Case(
            "anchor = now: the first period starts now", .month,
            anchor: "2024-05-31 09:00", now: "2024-05-31 09:00", "2024-05-31 09:00", "2024-06-30 09:00"),
        Case(
            "anchor on a 1st at 00:00 is the calendar month", .month,
            anchor: "2020-01-01", now: "2024-03-15", "2024-03-01", "2024-04-01"),
    ]

    @Test(arguments: anchoredMonthCases)
    func anchoredMonth(_ c: Case) {
        check(c)
    }

    static let anchoredDayWeekCases: [Case] = [
        Case(
            "day at 14:30:15.250: at the boundary", .day,
            anchor: "2024-01-10 14:30:15.250", now: "2024-03-15 14:30:15.250", "2024-03-15 14:30:15.250", "2024-03-16 14:30:15.250"),
        Case(
            "day at 14:30:15.250: 1 ms before", .day,
            anchor: "2024-01-10 14:30:15.250", now: "2024-03-15 14:30:15.249", "2024-03-14 14:30:15.250", "2024-03-15 14:30:15.250"),
        Case(
            "day: across the leap day", .day,
            anchor: "2023-06-01 18:00", now: "2024-02-29 20:00", "2024-02-29 18:00", "2024-03-01 18:00"),
        Case(
            "day: future anchor", .day,
            anchor: "2030-01-01 06:00", now: "2024-02-29 05:00", "2024-02-28 06:00", "2024-02-29 06:00"),
        Case(
            "day: anchor = now", .day,
            anchor: "2024-02-29 05:00", now: "2024-02-29 05:00", "2024-02-29 05:00", "2024-03-01 05:00"),
        Case(
            "week from a Wednesday 09:00: at the boundary", .week,
            anchor: "2024-01-03 09:00", now: "2024-03-13 09:00", "2024-03-13 09:00", "2024-03-20 09:00"),
        Case(
            "week from a Wednesday 09:00: 1 ms before", .week,
            anchor: "2024-01-03 09:00", now: "2024-03-13 08:59:59.999", "2024-03-06 09:00", "2024-03-13 09:00"),
        Case(
            "week: future anchor on a Sunday", .week,
            anchor: "2025-06-01", now: "2024-03-13", "2024-03-10", "2024-03-17"),
        Case(
            "week: anchor a year back (Monday noon)", .week,
            anchor: "2023-03-13 12:00", now: "2024-03-13", "2024-03-11 12:00", "2024-03-18 12:00"),
        Case(
            "week: across a year end", .week,
            anchor: "2024-01-03 09:00", now: "2025-01-01 10:00", "2025-01-01 09:00", "2025-01-08 09:00"),
    ]

    @Test(arguments: anchoredDayWeekCases)
    func anchoredDayAndWeek(_ c: Case) {
        check(c)
    }

    private func check(_ c: Case, sourceLocation: SourceLocation = #_sourceLocation) {
        let window = c.period.window(at: TestUTC.ms(c.now), anchor: c.anchor.map(TestUTC.ms))
        #expect(window == .init(start: TestUTC.ms(c.start), end: TestUTC.ms(c.end)), sourceLocation: sourceLocation)
    }

    /// 6,000 SplitMix (period, anchor, now) cases over 1970–2200, a third of them with `now`
    /// within a day of its month's boundary: the window holds `now`, abuts its neighbours, has
    /// the right length, and starts on the right day and time (checked with the test calendar).
    @Test func invariantsOverRandomCases() {
        var rng = SplitMix(state: 20_260_301)
        let limit = TestUTC.ms(2200, 1, 1)
        for index in 0..<6_000 {
            let period = BillingPeriod.allCases[index % 3]
            let anchor: Int64? = index % 4 == 0 ? nil : Int64.random(in: 0..<limit, using: &rng)
            var now = Int64.random(in: 0..<limit, using: &rng)
            if index % 3 == 1 {
                // Near a month boundary: the anchor's day (clamped) and time in now's month, ± a day.
                let date = TestUTC.date(now)
                let anchorDate = anchor.map(TestUTC.date) ?? (year: 1970, month: 1, day: 1, msOfDay: 0)
                let day = min(anchorDate.day, TestUTC.daysIn(date.year, date.month))
                now =
                    TestUTC.ms(date.year, date.month, day) + anchorDate.msOfDay
                    + Int64.random(in: -TestUTC.dayMs...TestUTC.dayMs, using: &rng)
                now = max(0, now)
            }
            let window = period.window(at: now, anchor: anchor)
            let label = "\(period) anchor \(anchor.map(String.init) ?? "nil") now \(now) case \(index)"
            #expect(window.start <= now && now < window.end, "\(label)")
            #expect(period.window(at: window.end, anchor: anchor).start == window.end, "\(label)")
            if window.start >= 1 {
                #expect(period.window(at: window.start - 1, anchor: anchor).end == window.start, "\(label)")
            }
            let length = window.end - window.start
            switch period {
            case .day, .week:
                let expectedLength = period == .day ? TestUTC.dayMs : 7 * TestUTC.dayMs
                #expect(length == expectedLength, "\(label)")
                let origin = anchor ?? TestUTC.ms(1970, 1, 5)  // calendar weeks from a Monday, days from the epoch
                #expect((window.start - origin) % expectedLength == 0, "\(label)")
            case .month:
                #expect(length % TestUTC.dayMs == 0 && (28...31).contains(length / TestUTC.dayMs), "\(label)")
                let anchorDate = anchor.map(TestUTC.date) ?? (year: 1970, month: 1, day: 1, msOfDay: 0)
                let start = TestUTC.date(window.start)
                let end = TestUTC.date(window.end)
                #expect(start.day == min(anchorDate.day, TestUTC.daysIn(start.year, start.month)), "\(label)")
                #expect(end.day == min(anchorDate.day, TestUTC.daysIn(end.year, end.month)), "\(label)")
                #expect(start.msOfDay == anchorDate.msOfDay && end.msOfDay == anchorDate.msOfDay, "\(label)")
                #expect(end.year * 12 + end.month == start.year * 12 + start.month + 1, "\(label)")
            }
        }
    }
}
