import ArgumentParser
import ChargeGateCore

/// `charge-gate check-config FILE`: validate like `nginx -t`.
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a config file: print 'config ok: N pools, M routes', or each error as FILE:LINE: message and exit 1."
    )

    @Argument(help: "The YAML config file.")
    var file: String

    func run() throws {
        let config = try loadConfig(file)
        print("config ok: \(config.pools.count) pools, \(config.routes.count) routes")
    }
}
