import ArgumentParser
import ChargeGateCore
import ChargeGateRedis

/// `charge-gate status`: the usage table in the terminal.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Print every pool's state and the open holds as tables, read from Redis (for an operator with ssh and no browser)."
    )

    @Option(help: "The YAML config file (its pools, redis and keyPrefix are used).")
    var config: String

    @Option(help: "Whose bucket per-subject pools show (as nginx passes it; with --key-form, its key form as usage shows it).")
    var subject: String = ""

    @Flag(help: "--subject is a key form as usage and events show it (h:...), not the subject as nginx passes it.")
    var keyForm = false

    @Option(help: "Override the config's redis URL.")
    var redis: String?

    @Option(help: "How many of the oldest open holds to list (with settled routes in the config).")
    var holds: Int = 5

    func run() throws {
        var loaded = try loadConfig(config)
        guard let url = try redisURL(redis, default: loaded.redis) else {
            printError("status: the config names no redis; the memory store lives inside the responder: curl http://127.0.0.1/api/usage")
            throw ExitCode(1)
        }
        loaded.redis = url  // the keys follow the store read (a cluster's carry hash tags)
        let gate = Gate(config: loaded)
        let subjectKey = try adminSubjectKey(subject, keyForm: keyForm, option: "--subject") ?? SafeToken.anonymous
        let store = adminStore(url: url, config: loaded, timeoutMs: max(loaded.redisTimeoutMs, 2000))
        let snapshot: UsageSnapshot
        do {
            snapshot = try store.usage(gate: gate, subject: subjectKey, nginxPlan: nil)
        } catch {
            printError("status: \(error)")
            throw ExitCode(1)
        }
        if let plan = snapshot.plan {
            print("plan: \(loaded.plans[plan.index].id) (\(plan.source.rawValue))")
        }
        let rows = snapshot.pools.map { pool in
            UsagePage.Row(pool: pool.config, reading: pool.reading, subject: pool.config.scope == .subject ? subjectKey : "")
        }
        print(UsageTable.render(rows, now: snapshot.now), terminator: "")
        guard loaded.settles else { return }
        let open: (now: Int64, holds: [HoldRecord])
        do {
            open = try store.openHolds(prefix: gate.keys.holdPrefix, limit: HoldTable.countLimit)
        } catch {
            printError("status: open holds: \(error)")
            throw ExitCode(1)
        }
        print("")
        print(HoldTable.render(open.holds, shown: holds, now: open.now), terminator: "")
    }

    func validate() throws {
        guard (0...1000).contains(holds) else { throw ValidationError("--holds: expected a whole number from 0 to 1000") }
    }
}
