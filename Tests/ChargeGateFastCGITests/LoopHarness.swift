import ChargeGateFastCGI
import ChargeGateServer
import ChargeGateTestSupport
import Glibc
import Synchronization

/// Why a harness could not be set up.
struct HarnessError: Error, CustomStringConvertible {
    /// What failed.
    var description: String
}

/// What the loops and their workers did, counted across threads.
final class LoopCounters: Sendable {
    /// Connections the loops accepted (the observer's `opened`).
    let opened = Atomic<Int>(0)
    /// Connections the loops closed or found closed (the observer's `closed`).
    let closed = Atomic<Int>(0)
    /// Requests a worker answered and handed back (`finish(_:)` returned).
    let finished = Atomic<Int>(0)
    /// Loops made (their epoll set exists: they watch the listening socket).
    let ready = Atomic<Int>(0)
    /// Loops whose `next()` returned nil (their thread is ending).
    let ended = Atomic<Int>(0)
    /// Loops the system refused (no epoll set).
    let refused = Atomic<Int>(0)
    /// A worker is waiting inside a request sent with the `HOLD` param.
    let holding = Atomic<Bool>(false)
    /// Lets a held worker answer.
    let released = Atomic<Bool>(false)

    /// `opened` now.
    var openedCount: Int { opened.load(ordering: .sequentiallyConsistent) }
    /// `closed` now.
    var closedCount: Int { closed.load(ordering: .sequentiallyConsistent) }
    /// `finished` now.
    var finishedCount: Int { finished.load(ordering: .sequentiallyConsistent) }
    /// `ended` now.
    var endedCount: Int { ended.load(ordering: .sequentiallyConsistent) }

    /// The loops' observer: counts into `opened` and `closed`.
    var observer: FastCGIEventLoop.Observer {
        FastCGIEventLoop.Observer(
            opened: { self.opened.add(1, ordering: .sequentiallyConsistent) },
            closed: { self.closed.add(1, ordering: .sequentiallyConsistent) })
    }
}

/// The worker every loop thread runs: `Status: 204` and the `X` param back as `X-Echo`. With
/// the `READ_BODY` param it reads the body first (to its end) and sends its length as
/// `X-Body-Length`; with `HOLD` it waits (at most 10 s) until the test releases it, so that
/// what arrives meanwhile waits for the loop.
enum EchoWorker {
    /// Answers `request` (does not finish it).
    static func answer(_ request: FastCGIRequest, counters: LoopCounters) {
        if request.param("HOLD") != nil {
            counters.holding.store(true, ordering: .sequentiallyConsistent)
            _ = eventually(withinMs: 10_000) { counters.released.load(ordering: .sequentiallyConsistent) }
        }
        var head = "Status: 204\r\nX-Echo: \(request.param("X") ?? "")\r\n"
        if request.param("READ_BODY") != nil {
            head += "X-Body-Length: \(request.readBody(limit: 1 << 20).map { "\($0.count)" } ?? "too long")\r\n"
        }
        request.write(Array((head + "\r\n").utf8))
    }

    /// The answer `answer(_:counters:)` gives for `x` (no body read).
    static func expected(_ x: String) -> String { "Status: 204\r\nX-Echo: \(x)\r\n\r\n" }
}

/// Polls `condition` every millisecond until it holds (true) or `withinMs` have passed (false).
func eventually(withinMs: Int = 3000, _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(withinMs)
    while true {
        if condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        usleep(1000)
    }
}

/// A unix listening socket in a temporary directory (mode 0600, non-blocking, as `Server.run`
/// makes it), a stop signal, and event loops on their own threads running `EchoWorker`, each
/// loop as `Server.work` runs it. `close()` (call it in a `defer`) stops and joins the loops,
/// closes the socket and removes the directory.
final class LoopHarness {
    /// The temporary directory.
    let directory: String
    /// The socket's path.
    let path: String
    /// The listening socket, shared by every loop.
    let listenFD: Int32
    /// The loops' stop signal.
    let stop: FastCGIStopSignal
    /// What the loops and workers did.
    let counters = LoopCounters()
    private var threads: [NativeThread] = []
    private var stopped = false
    private var closed = false

    /// A listening socket; no loop yet (`start(loops:)`).
    init() throws(HarnessError) {
        // FCGX_Init takes SIGTERM and SIGUSR1 over (handlers that only set a flag): the test
        // process keeps its own, so that a SIGTERM still ends it. SIGPIPE ignored, as the server
        // does.
        var term = sigaction()
        var usr1 = sigaction()
        sigaction(SIGTERM, nil, &term)
        sigaction(SIGUSR1, nil, &usr1)
        FastCGIListener.initialize()
        sigaction(SIGTERM, &term, nil)
        sigaction(SIGUSR1, &usr1, nil)
        signal(SIGPIPE, SIG_IGN)
        var template = Array("/tmp/cg-loop-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer -> String? in
            guard let base = buffer.baseAddress, let made = mkdtemp(base) else { return nil }
            return String(cString: made)
        }
        guard let made else { throw HarnessError(description: "mkdtemp: \(String(cString: strerror(errno)))") }
        directory = made
        path = made + "/fcgi.sock"
        let fd: Int32
        do {
            fd = try FastCGIListener.openUnix(path: path, backlog: 128, mode: 0o600, group: nil)
        } catch {
            rmdir(made)
            throw HarnessError(description: "\(error)")
        }
        guard FastCGIEventLoop.setNonBlocking(fd), let stop = FastCGIStopSignal() else {
            Glibc.close(fd)
            unlink(path)
            rmdir(made)
            throw HarnessError(description: "non-blocking or eventfd: \(String(cString: strerror(errno)))")
        }
        listenFD = fd
        self.stop = stop
    }

    /// Starts `loops` more loop threads and waits until each has its epoll set.
    func start(loops: Int = 1) throws(HarnessError) {
        let (listenFD, stop, counters) = (self.listenFD, self.stop, self.counters)
        let target = threads.count + loops
        for _ in 0..<loops {
            let thread = NativeThread.start {
                guard
                    let loop = FastCGIEventLoop(listenFD: listenFD, stop: stop, lingering: false, observer: counters.observer)
                else {
                    counters.refused.add(1, ordering: .sequentiallyConsistent)
                    counters.ended.add(1, ordering: .sequentiallyConsistent)
                    return
                }
                counters.ready.add(1, ordering: .sequentiallyConsistent)
                while let request = loop.next() {
                    EchoWorker.answer(request, counters: counters)
                    loop.finish(request)
                    counters.finished.add(1, ordering: .sequentiallyConsistent)
                }
                counters.ended.add(1, ordering: .sequentiallyConsistent)
            }
            guard let thread else { throw HarnessError(description: "cannot start a loop thread") }
            threads.append(thread)
        }
        guard eventually(withinMs: 5000, { counters.ready.load(ordering: .sequentiallyConsistent) == target }) else {
            throw HarnessError(description: "loops not ready: \(counters.ready.load(ordering: .sequentiallyConsistent)) of \(target)")
        }
    }

    /// A client connected to the socket.
    func connect() throws(FastCGIClientError) -> FastCGIClient {
        try FastCGIClient(unixPath: path)
    }

    /// Fires the stop signal and waits (at most `withinMs`) for every loop's `next()` to return
    /// nil; joins the threads when they all ended. Whether they did (idempotent).
    @discardableResult
    func stopLoops(withinMs: Int = 5000) -> Bool {
        if stopped { return true }
        stop.fire()
        let total = threads.count
        guard eventually(withinMs: withinMs, { counters.ended.load(ordering: .sequentiallyConsistent) == total }) else { return false }
        for thread in threads { thread.join() }
        stopped = true
        return true
    }

    /// Stops the loops (a held worker released), closes the listening socket, removes the
    /// directory. A loop that does not end is left running (not joined) rather than hanging
    /// the test run.
    func close() {
        guard !closed else { return }
        closed = true
        counters.released.store(true, ordering: .sequentiallyConsistent)
        let ended = stopLoops()
        if ended { Glibc.close(listenFD) }
        unlink(path)
        rmdir(directory)
    }
}
