import ArgumentParser
import ChargeGateCore
import ChargeGateRedis

/// `charge-gate status`: the usage table in the terminal.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Print every pool's state as a table, read from Redis (for an operator with ssh and no browser)."
    )

    @Option(help: "The YAML config file (its pools, redis and keyPrefix are used).")
    var config: String

    @Option(help: "Whose bucket per-subject pools show (as nginx passes it, or its h:... key form).")
    var subject: String = ""

    @Option(help: "Override the config's redis URL.")
    var redis: String?

    func run() throws {
        let loaded = try loadConfig(config)
        guard let url = try redisURL(redis, default: loaded.redis) else {
            printError("status: the config names no redis; the memory store lives inside the responder: curl http://127.0.0.1/api/usage")
            throw ExitCode(1)
        }
        let gate = Gate(config: loaded)
        let subjectKey = SafeToken.adminKey(for: subject)
        let keys = loaded.pools.indices.map { gate.key(pool: $0, subject: subjectKey) }
        let store = RedisStore(url: url, timeoutMs: max(loaded.redisTimeoutMs, 2000), allowEviction: true)
        let peeked: (now: Int64, states: [BucketState?])
        do {
            peeked = try store.peek(keys)
        } catch {
            printError("status: \(error)")
            throw ExitCode(1)
        }
        let rows = loaded.pools.indices.map { index in
            UsagePage.Row(
                pool: loaded.pools[index], state: peeked.states[index], subject: loaded.pools[index].scope == .subject ? subjectKey : "")
        }
        print(UsageTable.render(rows, now: peeked.now), terminator: "")
    }
}
