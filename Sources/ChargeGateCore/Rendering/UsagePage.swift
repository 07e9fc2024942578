/// The usage endpoint as an HTML page, for people: what `GET /api/usage` answers when the
/// client asks for `text/html`.
///
/// One self-contained document: inline CSS, no script, no external asset, a
/// `<meta http-equiv="refresh">` instead of polling. Pools are grouped by `group` (groups in
/// order of first appearance, pools in config order inside; pools without a group come last,
/// under "Other", or without a visible heading when no pool has a group). Every value that comes from
/// the config or a client (labels, groups, subjects, plan labels, and ids too) is HTML-escaped.
///
/// With plans configured the subject's plan comes first, under the title: "Plan: Pro",
/// with "(default plan)" beside it when no stored plan or nginx variable chose it. Each card
/// shows the pool as that plan sets it.
///
/// A period pool (`period: day|week|month`) reads as an allowance, not a bucket:
/// - the line under the bar says when it resets, instead of "next charge in" and "full in"
///   (both would be the period's end): `"resets Dec 1"` more than 24 h ahead (the UTC date,
///   with the year when it is not this year's), else `"resets in 3h"` (`resetString`); then
///   the allowance, `"5 per month"`, instead of "+1 every …";
/// - a full one says `"full · 5 per month"`: the reset is left out, as it would change nothing;
/// - a used-up one carries the state word `"used up until reset"` instead of `"empty"` (an
///   empty bucket refills by the hour, an allowance does not), beside the reset phrase;
/// - an unlimited one (a meter) counts this period's use, `"7 used this month"` (`today`,
///   `this week`), and says when the count resets: `"unlimited · resets Dec 1"`.
///
/// A row with an `upgradeUrl` (the responder gives one to a used-up per-subject period or
/// credits pool when the config names where to upgrade: `Gate.upgradeUrl(usage:available:plan:)`)
/// ends with an "Upgrade" link to it, the URL HTML-escaped in the `href`.
public enum UsagePage {
    /// One pool's row: its config (as the subject's plan sets it), its state brought forward
    /// to `now`, and whose bucket it is.
    public struct Row: Sendable {
        /// The pool.
        public var pool: PoolConfig
        /// Its state now.
        public var reading: Bucket.Reading
        /// The subject for per-subject pools ("" for global ones).
        public var subject: String
        /// Where to upgrade, shown as an "Upgrade" link; nil: no link.
        public var upgradeUrl: String?

        /// Creates a row.
        public init(pool: PoolConfig, reading: Bucket.Reading, subject: String, upgradeUrl: String? = nil) {
            self.pool = pool
            self.reading = reading
            self.subject = subject
            self.upgradeUrl = upgradeUrl
        }
    }

    /// The subject's plan, shown at the top when plans are configured.
    public struct Plan: Sendable {
        /// The plan's label.
        public var label: String
        /// Where it comes from.
        public var source: SubjectPlan.Source

        /// Creates a plan line.
        public init(label: String, source: SubjectPlan.Source) {
            self.label = label
            self.source = source
        }
    }

    /// Seconds between the page's own reloads.
    public static let refreshSeconds = 30

    /// The whole page.
    public static func render(_ rows: [Row], plan: Plan? = nil, now: Int64) -> String {
        var html = ""
        html.reserveCapacity(3000 + rows.count * 900)
        let stamp = utc(now)
        html += """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="color-scheme" content="light dark">
            <meta http-equiv="refresh" content="\(refreshSeconds)">
            <title>Usage</title>
            <style>\(css)</style>
            </head>
            <body>
            <main>
            <h1>Usage</h1>
            \(planLine(plan))<p class="asof">As of <time datetime="\(stamp.iso)">\(stamp.text)</time> · updates every \(refreshSeconds) s</p>

            """
        let groups = sections(rows)
        if groups.isEmpty {
            html += "<p class=\"empty\">No pools are configured.</p>\n"
        }
        let headed = groups.contains { !$0.name.isEmpty }
        for (n, group) in groups.enumerated() {
            if headed {
                let title = group.name.isEmpty ? "Other" : group.name
                html += "<section aria-labelledby=\"g\(n)\">\n<h2 id=\"g\(n)\">\(escape(title))</h2>\n"
            } else {
                // No groups: no visible heading, but the outline still goes h1 → h2 → h3.
                html += "<section aria-labelledby=\"g\(n)\">\n<h2 id=\"g\(n)\" class=\"vh\">Pools</h2>\n"
            }
            html += "<ul class=\"pools\">\n"
            for row in group.rows { card(row, now: now, into: &html) }
            html += "</ul>\n</section>\n"
        }
        html += "</main>\n</body>\n</html>\n"
        return html
    }

    /// The plan line under the title ("" without plans): the label, and a note when it is the
    /// default plan.
    static func planLine(_ plan: Plan?) -> String {
        guard let plan else { return "" }
        let note = plan.source == .default ? " <span class=\"note\">(default plan)</span>" : ""
        return "<p class=\"plan\">Plan: <b>\(escape(plan.label))</b>\(note)</p>\n"
    }

    /// Rows grouped by `group`: groups in order of first appearance, rows in their given order;
    /// the "" group last.
    static func sections(_ rows: [Row]) -> [(name: String, rows: [Row])] {
        var order: [String] = []
        var members: [String: [Row]] = [:]
        for row in rows {
            if members[row.pool.group] == nil { order.append(row.pool.group) }
            members[row.pool.group, default: []].append(row)
        }
        if let blank = order.firstIndex(of: "") { order.append(order.remove(at: blank)) }
        return order.map { ($0, members[$0] ?? []) }
    }

    /// One pool as a list item.
    static func card(_ row: Row, now: Int64, into html: inout String) {
        let pool = row.pool
        let label = escape(pool.label)
        let perSubject = pool.scope == .subject
        // A period pool's reset: the end of the current period (see the type's comment).
        let reset = pool.period.flatMap { period in row.reading.window.map { (period: period, at: $0.end) } }
        guard let max = row.reading.max, let available = row.reading.available else {
            // A meter: the use count, no bar.
            let used = row.reading.used
            html += "<li class=\"pool unlimited\" id=\"pool-\(escape(pool.id))\">\n"
            heading(pool, label: label, into: &html)
            if perSubject { who("your use", row.subject, into: &html) }
            if let reset {
                html += "<p class=\"count\"><b>\(grouped(used))</b> used \(thisPeriod(reset.period))</p>\n"
                html += whenLine(["unlimited", resetString(at: reset.at, now: now)]) + "</li>\n"
            } else {
                html += "<p class=\"count\"><b>\(grouped(used))</b> used</p>\n"
                html += whenLine(["unlimited", "every use is counted"]) + "</li>\n"
            }
            return
        }
        let warning = Self.level(available: available, max: max)
        let credits = pool.isCredits
        html += "<li class=\"pool \(warning.rawValue)\(credits ? " credits" : "")\" id=\"pool-\(escape(pool.id))\">\n"
        heading(pool, label: label, into: &html)
        if perSubject { who("your balance", row.subject, into: &html) }

        let amount = "\(grouped(available)) of \(grouped(max)) left"
        html += "<p class=\"count\"><b>\(grouped(available))</b> of \(grouped(max)) left"
        if let state = stateWord(available: available, warning: warning, period: reset != nil) {
            html += " <span class=\"state\">\(state)</span>"
        }
        html += "</p>\n"
        html +=
            "<div class=\"bar\" role=\"meter\" aria-label=\"\(label)\" aria-valuemin=\"0\" aria-valuemax=\"\(max)\" aria-valuenow=\"\(available)\" aria-valuetext=\"\(amount)\">"
        html += "<span style=\"width:\(width(available: available, max: max))\"></span></div>\n"

        var when: [String] = []
        if let reset {
            when.append(available >= max ? "full" : resetString(at: reset.at, now: now))
            when.append("\(grouped(max)) per \(reset.period.rawValue)")
        } else {
            if available >= max {
                when.append("full")
            } else if let next = row.reading.nextRechargeAt, let full = row.reading.fullAt {
                when.append("next charge in \(retryString(ms: next - now))")
                when.append("full in \(retryString(ms: full - now))")
            }
            if credits {
                when.append("top-off only")
            } else if let interval = pool.intervalMs {
                when.append("+1 every \(intervalString(ms: interval))")
            }
        }
        html += whenLine(when)
        if let upgradeUrl = row.upgradeUrl {
            html += "<p class=\"upgrade\"><a href=\"\(escape(upgradeUrl))\">Upgrade</a></p>\n"
        }
        html += "</li>\n"
    }

    /// The small line under the bar; each phrase kept on one line (a narrow card wraps between
    /// phrases, not inside "2h 15m").
    static func whenLine(_ parts: [String]) -> String {
        "<p class=\"when\">" + parts.map { "<span>\($0)</span>" }.joined(separator: " · ") + "</p>\n"
    }

    private static func heading(_ pool: PoolConfig, label: String, into html: inout String) {
        html += "<h3>\(label)</h3>\n"
        if pool.label != pool.id { html += "<small class=\"id\">\(escape(pool.id))</small>\n" }
    }

    private static func who(_ what: String, _ subject: String, into html: inout String) {
        html += "<p class=\"who\">\(what)"
        if !subject.isEmpty { html += " · <span class=\"subject\">\(escape(subject))</span>" }
        html += "</p>\n"
    }

    /// The warning in words, so that colour is not the only signal. A used-up period pool says
    /// that it stays so until the reset.
    private static func stateWord(available: Int64, warning: Level, period: Bool) -> String? {
        if available <= 0 { return period ? "used up until reset" : "empty" }
        switch warning {
        case .ok: return nil
        case .warn: return "running low"
        case .danger: return "almost empty"
        }
    }

    /// The page's style sheet: system fonts, a fluid grid of cards, light and dark schemes.
    static let css = """
        :root{color-scheme:light dark;--bg:#f5f6f8;--card:#fff;--fg:#1f2328;--muted:#59636e;\
        --line:#d5dae0;--track:#e3e7ec;--ok:#1f883d;--warn:#9a6700;--warn-bar:#c98a00;--danger:#cf222e;--accent:#0969da}\
        @media (prefers-color-scheme:dark){:root{--bg:#0f1318;--card:#171c23;--fg:#e6edf3;\
        --muted:#9aa4af;--line:#2f3742;--track:#2b333d;--ok:#3fb950;--warn:#e3a21a;--warn-bar:#e3a21a;\
        --danger:#f8514e;--accent:#1f6feb}}\
        *{box-sizing:border-box}\
        body{margin:0;background:var(--bg);color:var(--fg);\
        font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Helvetica Neue",Arial,sans-serif;\
        -webkit-text-size-adjust:100%;text-size-adjust:100%}\
        main{max-width:66rem;margin:0 auto;padding:1.25rem max(1rem,env(safe-area-inset-left)) 2.5rem}\
        h1{font-size:1.625rem;line-height:1.2;margin:0 0 .25rem}\
        .asof,.empty{margin:0 0 1rem;color:var(--muted);font-size:.875rem}\
        .plan{margin:0 0 .25rem;font-size:1rem;overflow-wrap:anywhere}.plan .note{color:var(--muted);font-size:.875rem}\
        h2{font-size:.8125rem;font-weight:600;text-transform:uppercase;letter-spacing:.06em;\
        color:var(--muted);margin:1.5rem 0 .5rem}\
        .pools{list-style:none;margin:0;padding:0;display:grid;gap:.75rem;\
        grid-template-columns:repeat(auto-fill,minmax(min(100%,18rem),1fr))}\
        .pool{background:var(--card);border:1px solid var(--line);border-radius:.75rem;\
        padding:.875rem 1rem 1rem;min-width:0}\
        .pool h3{font-size:1.0625rem;line-height:1.3;margin:0;overflow-wrap:anywhere}\
        .id,.subject{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;\
        overflow-wrap:anywhere}\
        .id{display:block;font-size:.75rem;color:var(--muted);margin-top:.125rem}\
        .who{margin:.5rem 0 0;font-size:.8125rem;color:var(--muted)}\
        .subject{color:var(--fg)}\
        .count{margin:.5rem 0 .5rem;color:var(--muted);font-size:.9375rem}\
        .count b{color:var(--fg);font-size:1.75rem;line-height:1;font-weight:650;\
        font-variant-numeric:tabular-nums;margin-right:.125rem}\
        .state{display:inline-block;margin-left:.375rem;padding:.0625rem .5rem;border-radius:1rem;\
        font-size:.75rem;font-weight:600;vertical-align:.2em;border:1px solid currentColor}\
        .warn .state{color:var(--warn)}.danger .state{color:var(--danger)}\
        .bar{height:.625rem;border-radius:.3125rem;background:var(--track);overflow:hidden}\
        .bar>span{display:block;height:100%;border-radius:inherit;background:var(--ok)}\
        .warn .bar>span{background:var(--warn-bar)}.danger .bar>span{background:var(--danger)}\
        .when{margin:.5rem 0 0;font-size:.875rem;color:var(--muted)}.when>span{white-space:nowrap}\
        .upgrade{margin:.625rem 0 0}.upgrade a{display:inline-block;padding:.25rem .875rem;border-radius:1rem;\
        background:var(--accent);color:#fff;font-size:.875rem;font-weight:600;text-decoration:none}\
        .upgrade a:hover{text-decoration:underline}.upgrade a:focus-visible{outline:2px solid var(--accent);outline-offset:2px}\
        .vh{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}\
        @media (forced-colors:active){.bar{border:1px solid CanvasText}.bar>span{background:CanvasText}}
        """
}
