import ArgumentParser
import ChargeGateCore
import ChargeGateRedis
import Glibc

/// `charge-gate events`: export the usage event log, page by page.
struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Export usage events from Redis as JSON Lines or CSV, page by page (constant memory), or their totals (--sum)."
    )

    @Option(help: "The YAML config file (its redis and keyPrefix are used).")
    var config: String

    @Option(help: "Only events at or after this time: epoch ms or ISO 8601.")
    var since: String?

    @Option(help: "Only events at or before this time: epoch ms or ISO 8601.")
    var until: String?

    @Option(help: "Only this pool.")
    var pool: String?

    @Option(help: "Only this subject (as nginx passes it; with --key-form, its key form as events show it).")
    var subject: String?

    @Flag(help: "--subject is a key form as usage and events show it (h:...), not the subject as nginx passes it.")
    var keyForm = false

    @Option(help: "Override the config's redis URL.")
    var redis: String?

    @Option(help: "jsonl or csv.")
    var format: String = "jsonl"

    @Flag(
        help: ArgumentHelp(
            "Print totals per subject and pool instead of the events: spends plus settlements, what was charged.",
            discussion: "A settlement counts in the range its own event falls in (docs/cli.md)."))
    var sum = false

    func run() throws {
        guard let format = EventFormat(rawValue: format) else { throw ValidationError("--format: expected jsonl or csv") }
        var query = EventQuery(limit: 1000)
        if let since {
            guard let t = EventFormat.parseTime(since) else { throw ValidationError("--since: expected epoch ms or ISO 8601") }
            query.since = t
        }
        if let until {
            guard let t = EventFormat.parseTime(until) else { throw ValidationError("--until: expected epoch ms or ISO 8601") }
            query.until = t
        }
        query.pool = pool
        query.subject = try adminSubjectKey(subject, keyForm: keyForm, option: "--subject")

        var loaded = try loadConfig(config)
        guard let url = try redisURL(redis, default: loaded.redis) else {
            printError("events: the config names no redis; the memory store keeps events inside the responder (GET /api/usage/events)")
            throw ExitCode(1)
        }
        guard loaded.eventsMaxLen > 0 else {
            printError("events: eventsMaxLen is 0 in the config: no event log is kept")
            throw ExitCode(1)
        }
        loaded.redis = url  // the stream's key follows the store read (a cluster has one per slot)
        let store = adminStore(url: url, config: loaded, timeoutMs: max(loaded.redisTimeoutMs, 5000))
        let streams = Gate(config: loaded).eventStreams
        var out = StandardOutput()
        var totals = EventTotals()
        if format == .csv { out.write(sum ? EventTotals.csvHeader : EventFormat.csvHeader) }
        while true {
            let page: EventPage
            do {
                page = try store.events(streams: streams, query)
            } catch {
                printError("events: \(error)")
                throw ExitCode(1)
            }
            if sum {
                for event in page.events { totals.add(event) }
            } else {
                for event in page.events { out.write(format.line(event)) }
            }
            guard let next = page.next else { break }
            query.after = next
        }
        for total in totals.rows { out.write(EventTotals.line(total, format: format)) }
        out.flush()
    }
}
