import ChargeGateCore

/// `WAIT` for replicas after a spend that wrote (`redisMinReplicas`).
extension RedisConnection {
    /// Sends `WAIT replicas timeoutMs` on the connection the last command went to (never on a new
    /// one: a fresh connection has written nothing, so its WAIT would acknowledge nothing) and
    /// returns how many replicas acknowledged this connection's writes. The socket timeout is
    /// raised for this one reply when `timeoutMs` would not leave room for the round trip.
    public func waitForReplicas(_ replicas: Int, timeoutMs waitMs: Int) throws(StoreError) -> Int {
        guard context.isOpen else { throw .unavailable("connection lost before WAIT") }
        var encoded = RESPCommand([Array("WAIT".utf8), Array(String(replicas).utf8), Array(String(waitMs).utf8)])
        let longer = waitMs * 2 > timeoutMs
        if longer { context.setTimeout(ms: waitMs + timeoutMs) }
        let reply: RedisValue
        do {
            let start = MonotonicClock.nanoseconds()
            reply = try context.send(&encoded)
            observer?.roundTrip(nanoseconds: MonotonicClock.nanoseconds() &- start)
        } catch {
            observer?.failed(error)
            if let master { watch?.failed(on: master.address) }
            throw error
        }
        if longer { context.setTimeout(ms: timeoutMs) }
        if case .error(let message) = reply { throw .protocolError("WAIT: \(message)") }
        guard let acknowledged = reply.integer else { throw .protocolError("unexpected WAIT reply") }
        return Int(clamping: acknowledged)
    }
}
