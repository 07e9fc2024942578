import ArgumentParser
import ChargeGateCore
import Glibc

// Helpers every subcommand shares.

/// The validated config at `path`; on errors, prints each as `FILE:LINE: message` and exits 1.
func loadConfig(_ path: String) throws -> GateConfig {
    switch ConfigLoader.load(path: path) {
    case .success(let config):
        return config
    case .failure(let errors):
        for error in errors.errors { printError("\(error)") }
        throw ExitCode(1)
    }
}

/// The `--redis` override parsed (a sentinel URL keeps the config's `sentinelPassword`), or the
/// config's URL.
func redisURL(_ override: String?, default configured: RedisURL?) throws -> RedisURL? {
    guard let override else { return configured }
    do {
        return try RedisURL(parsing: override).inheritingSentinelPassword(from: configured)
    } catch {
        throw ValidationError("--redis: \(error.text)")
    }
}

/// Writes one line to standard error (the global `stderr` is not concurrency-safe in Swift 6).
func printError(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
