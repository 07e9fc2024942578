import ArgumentParser
import ChargeGateCore
import Glibc

/// `charge-gate check-config FILE`: validate like `nginx -t`.
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a config file: print 'config ok: N pools, M routes', or each error as FILE:LINE: message and exit 1."
    )

    @Argument(help: "The YAML config file.")
    var file: String

    func run() throws {
        switch ConfigLoader.load(path: file) {
        case .success(let config):
            print("config ok: \(config.pools.count) pools, \(config.routes.count) routes")
        case .failure(let errors):
            for error in errors.errors { printError("\(error)") }
            throw ExitCode(1)
        }
    }
}

/// Writes one line to standard error (the global `stderr` is not concurrency-safe in Swift 6).
func printError(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
