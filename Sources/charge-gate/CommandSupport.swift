import ArgumentParser
import ChargeGateCore
import ChargeGateRedis
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

/// The store an admin command reads and writes at `url` (a `ClusterStore` for a
/// `redis-cluster://` one), for `config`'s keys, serving whatever eviction policy Redis has.
func adminStore(url: RedisURL, config: GateConfig, timeoutMs: Int) -> any ChargeStore {
    if url.isCluster {
        return ClusterStore(url: url, keys: KeySpace(prefix: config.keyPrefix, cluster: true), timeoutMs: timeoutMs, allowEviction: true)
    }
    return RedisStore(url: url, timeoutMs: timeoutMs, allowEviction: true)
}

/// The key form of the subject `text` names: as nginx passes it, or, with `keyForm`, a key form
/// as usage and events show it (`AdminSubject`, the admin API's `subject` and `subjectKey`);
/// nil for nil. A text that is no key form under `keyForm` is a usage error naming `option`.
func adminSubjectKey(_ text: String?, keyForm: Bool, option: String) throws -> String? {
    do {
        return try AdminSubject.key(subject: keyForm ? nil : text, subjectKey: keyForm ? text : nil)
    } catch {
        throw ValidationError("\(option) with --key-form: \(error.reason)")
    }
}

/// Writes one line to standard error (the global `stderr` is not concurrency-safe in Swift 6).
func printError(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
