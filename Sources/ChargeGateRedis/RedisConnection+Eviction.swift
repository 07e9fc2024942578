import ChargeGateCore

/// The eviction-policy handshake: unless `allowEviction`, a new connection serves only a Redis
/// whose `maxmemory-policy` is `noeviction` (an evicted bucket would come back full).
extension RedisConnection {
    /// Reads `maxmemory-policy` with `INFO memory` on the new connection; drops it and throws
    /// `.unavailable` unless it is `noeviction` (also when it cannot be read: INFO refused or
    /// renamed away).
    func requireNoEviction() throws(StoreError) {
        var encoded = RESPCommand([Array("INFO".utf8), Array("memory".utf8)])
        let reply = try context.send(&encoded)
        let advice = "set maxmemory-policy noeviction (or serve --allow-eviction)"
        if case .error(let message) = reply {
            drop()
            throw .unavailable(
                context.scrub("cannot read maxmemory-policy from Redis at \(url) (INFO memory: \(message)): refusing to serve; \(advice)"))
        }
        guard let policy = reply.text.flatMap(Self.maxmemoryPolicy(fromInfo:)) else {
            drop()
            throw .unavailable(
                context.scrub(
                    "cannot read maxmemory-policy from Redis at \(url) (INFO memory: no maxmemory_policy line): refusing to serve; \(advice)"
                ))
        }
        if policy != "noeviction" {
            drop()
            let shown = policy.isEmpty ? "(empty)" : String(policy.prefix(64))
            throw .unavailable(
                context.scrub("Redis at \(url) has maxmemory-policy \(shown): evicted keys would refill buckets; \(advice)"))
        }
    }

    /// The value of the `maxmemory_policy:` line in `INFO` text (lines end in `\r\n`; the last
    /// one may not), trimmed of surrounding whitespace; nil when there is no such line. An empty
    /// value is `""`: the caller refuses it like any policy other than `noeviction`.
    public static func maxmemoryPolicy(fromInfo info: String) -> String? {
        let field = "maxmemory_policy:"
        for line in info.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
            guard line.hasPrefix(field) else { continue }
            let value = line.dropFirst(field.count).drop(while: \.isWhitespace)
            return String(value.reversed().drop(while: \.isWhitespace).reversed())
        }
        return nil
    }
}
