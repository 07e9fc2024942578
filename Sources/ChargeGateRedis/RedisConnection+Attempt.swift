import ChargeGateCore

/// One send for the cluster driver, which must know whether a failed command may have run.
extension RedisConnection {
    /// What became of one command sent by `attempt`.
    enum Attempt {
        /// The command's reply (an error reply included).
        case replied(RedisValue)
        /// Nothing was written: the connection could not be made ready (connect refused or timed
        /// out, backing off after a failed connect, the handshake refused). The command cannot
        /// have run; sending it elsewhere is safe.
        case notSent(StoreError)
        /// The connection failed or timed out once the command may have been written: it may
        /// have run, and must never be sent again.
        case lost(StoreError)
    }

    /// Sends `command`, after `ASKING` in the same write when `asking` (its `+OK` dropped), and
    /// says which of the three outcomes it had. The connection is made ready first (connected,
    /// or an idle one the server closed replaced) exactly as `command(_:)` does; only a failure
    /// there is `.notSent`. Every failure once the bytes were handed to hiredis is `.lost`, even
    /// the rare one where hiredis could not queue them (a failed allocation): when in doubt, the
    /// command may have run. `command` is only read (`inout`: its buffer is reused).
    func attempt(_ command: inout RESPCommand, asking: Bool) -> Attempt {
        do throws(StoreError) {
            try ready()
        } catch {
            observer?.failed(error)
            return .notSent(error)
        }
        let start = MonotonicClock.nanoseconds()
        let reply: RedisValue
        if asking {
            // The context (ours since `ready`) writes both commands in one write, then reads
            // both replies; each reply tree is copied and freed inside `pipeline`.
            var pair = [RESPCommand([Array("ASKING".utf8)]), command]
            let result = context.pipeline(&pair)
            if let error = result.error {
                observer?.failed(error)
                return .lost(error)
            }
            guard result.replies.count == 2 else {
                let error = StoreError.protocolError("ASKING and a command answered \(result.replies.count) replies")
                observer?.failed(error)
                drop()
                return .lost(error)
            }
            // An ASKING refused (it never is by a cluster node) leaves the command's own reply,
            // most likely a MOVED, to the routing rules.
            reply = result.replies[1]
        } else {
            do throws(StoreError) {
                // The context (ours since `ready`) writes the command, reads its reply, and
                // frees the reply tree before returning a Swift value.
                reply = try context.send(&command)
            } catch {
                observer?.failed(error)
                return .lost(error)
            }
        }
        observer?.roundTrip(nanoseconds: MonotonicClock.nanoseconds() &- start)
        return .replied(reply)
    }
}
