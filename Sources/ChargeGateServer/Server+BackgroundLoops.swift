import ChargeGateCore
import Glibc

/// Every background loop of the process, each on a thread of its own, started by `run` after
/// the signal set-up and stopped after the workers.
extension Server {
    /// Starts each loop on a thread of its own; one whose thread cannot start is logged and left
    /// out (the process serves without it). Called after `prepareSignals`: the threads inherit
    /// the blocked stop and reload signals, and SIGUSR2 has its no-op handler.
    func startLoops(_ loops: [any BackgroundLoop]) -> [NativeThread] {
        var threads: [NativeThread] = []
        for loop in loops {
            // Counted before the thread runs, so a stop right after start waits for it.
            loopsRunning.add(1, ordering: .relaxed)
            guard let thread = NativeThread.start({ [self] in self.runLoop(loop) }) else {
                loopsRunning.subtract(1, ordering: .relaxed)
                logger.warning("cannot start the \(loop.name) thread; serving without it")
                continue
            }
            threads.append(thread)
        }
        return threads
    }

    /// Rounds until `loopsStopping`, `intervalMs` apart (a knock ends the pause).
    private func runLoop(_ loop: some BackgroundLoop) {
        defer { loopsRunning.subtract(1, ordering: .releasing) }
        var state = loop.makeThreadState()
        while !loopsStopping.load(ordering: .acquiring) {
            loop.round(&state)
            if loopsStopping.load(ordering: .acquiring) { break }
            if loop.intervalMs > 0 { usleep(useconds_t(clamping: loop.intervalMs * 1000)) }
        }
    }

    /// Stops the loops on `threads`: the flag set, then a SIGUSR2 every 10 ms (it ends a pause
    /// or a blocking call that returns EINTR) until every one has ended, `limitMs` at most. A
    /// round still blocked after that (a slow Redis) is left to end with the process.
    func stopLoops(_ threads: [NativeThread], limitMs: Int = 2000) {
        loopsStopping.store(true, ordering: .releasing)
        var waitedMs = 0
        while loopsRunning.load(ordering: .acquiring) > 0 && waitedMs < limitMs {
            for thread in threads { thread.signal(SIGUSR2) }
            usleep(10_000)
            waitedMs += 10
        }
        if loopsRunning.load(ordering: .acquiring) == 0 {
            for thread in threads { thread.join() }
        } else {
            logger.warning("a background loop is still in a round after \(limitMs) ms; exiting without it")
        }
    }
}
