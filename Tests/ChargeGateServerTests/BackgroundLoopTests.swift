import ChargeGateCore
import Glibc
import Synchronization
import Testing

@testable import ChargeGateServer

/// A loop that counts its rounds and where its state was made.
private struct CountingLoop: BackgroundLoop {
    let rounds = Counter()
    let name = "counting loop"
    let intervalMs: Int

    func makeThreadState() -> pthread_t { pthread_self() }

    func round(_ state: inout pthread_t) {
        // The state is the thread's own: made on the thread that runs every round.
        if pthread_equal(state, pthread_self()) != 0 { rounds.add() }
    }
}

private final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    var value: Int { count.load(ordering: .acquiring) }
    func add() { count.add(1, ordering: .releasing) }
}

/// The server's background loops: rounds on their own thread, ended by `stopLoops` at once.
@Suite struct BackgroundLoopTests {
    @Test func loopsRunInRoundsAndStopWithinAKnock() throws {
        Server.prepareSignals()  // the SIGUSR2 handler the knock needs
        let server = Server(
            config: GateConfig(), reload: { .success(GateConfig()) }, overrides: ServeOverrides(), metrics: GateMetrics(),
            logger: LogCapture().logger())
        // A long pause: only the knock can end it in time.
        let slow = CountingLoop(intervalMs: 60_000)
        let fast = CountingLoop(intervalMs: 1)
        // The loops inherit this thread's mask, as they inherit the main thread's in `serve`; a
        // test runs on a pool thread that blocks SIGUSR2, so it is unblocked while they start.
        var knock = sigset_t()
        sigemptyset(&knock)
        sigaddset(&knock, SIGUSR2)
        var saved = sigset_t()
        pthread_sigmask(SIG_UNBLOCK, &knock, &saved)
        let threads = server.startLoops([slow, fast])
        pthread_sigmask(SIG_SETMASK, &saved, nil)
        #expect(threads.count == 2)
        var waitedMs = 0
        while (fast.rounds.value < 3 || slow.rounds.value < 1) && waitedMs < 5000 {
            usleep(5000)
            waitedMs += 5
        }
        #expect(slow.rounds.value == 1)
        #expect(fast.rounds.value >= 3)
        var started = timespec()
        clock_gettime(CLOCK_MONOTONIC, &started)
        server.stopLoops(threads)
        var ended = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ended)
        #expect(server.loopsRunning.load(ordering: .acquiring) == 0)
        #expect(ended.tv_sec - started.tv_sec < 2)
        let after = fast.rounds.value
        usleep(20_000)
        #expect(fast.rounds.value == after)
    }
}
