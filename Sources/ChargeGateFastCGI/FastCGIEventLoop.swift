import CFastCGI
import Glibc
import Synchronization

/// The responder's FastCGI connections, served from one epoll set by every worker thread.
///
/// The set holds the listening socket and every open connection, each armed for one event at a
/// time (`EPOLLONESHOT`): a worker that gets a connection's event owns that connection until it
/// has answered its request and armed it again, and any idle worker takes the next ready
/// connection, whichever worker accepted it. So an idle kept connection costs nothing (nginx can
/// keep as many as it likes: `fastcgi_keep_conn on` with an upstream `keepalive`), and a worker
/// held by a slow store round trip holds only the request it is answering. A request is handed
/// to libfcgi only once its params have all arrived (peeked, not read), so a slow or stalled
/// nginx connection never holds a worker: libfcgi's blocking reads find everything there.
///
/// Each worker thread makes its own `Worker` and runs
/// `while let request = worker.next() { ...answer...; worker.finish(request) }`.
public final class FastCGIEventLoop: Sendable {
    /// What the loop reports about connections (the process's metrics).
    public struct Observer: Sendable {
        /// A connection was accepted.
        public var opened: @Sendable () -> Void
        /// A connection was closed (by either side).
        public var closed: @Sendable () -> Void

        /// Creates an observer.
        public init(opened: @escaping @Sendable () -> Void, closed: @escaping @Sendable () -> Void) {
            self.opened = opened
            self.closed = closed
        }
    }

    /// What a peek at a connection found.
    enum Arrival: Equatable {
        /// The next request's params have all arrived (or more than the peek holds: libfcgi
        /// reads the rest).
        case complete
        /// Part of a request, or nothing yet: wait for more.
        case partial
        /// The peer closed the connection, or it broke.
        case ended
    }

    /// One open connection and whether it is in the epoll set yet (one whose first request was
    /// there when it was accepted is added only once kept).
    ///
    /// `@unchecked Sendable`: it moves between worker threads, but only one owns it at a time: a
    /// connection is either in `idle` (armed, owned by nobody, taken out under the lock by the
    /// worker that gets its event) or out of it, owned by the worker answering it; the one event
    /// `EPOLLONESHOT` allows is what hands it over.
    final class Connection: @unchecked Sendable {
        let request: FastCGIRequest
        var watched = false

        init(_ request: FastCGIRequest) {
            self.request = request
        }
    }

    private let epoll: Int32
    private let listenFD: Int32
    private let stop: FastCGIStopSignal
    private let lingering: Bool
    private let observer: Observer
    /// Open connections no worker is answering, by descriptor.
    private let idle = Mutex<[Int32: Connection]>([:])
    /// When the loop stops (monotonic ms; 0 while running), set once a worker sees the stop
    /// signal: until then the workers answer what comes on the connections, closing each after
    /// its answer, and accept no more; then they close the rest and `next()` returns nil.
    private let stopDeadlineMs = Atomic<Int64>(0)
    /// How long a stopping loop goes on answering on its kept connections. nginx picks a kept
    /// connection for its next request without asking whether it is still open, so one closed
    /// while idle can be the one a request was just sent on (that request is lost: nginx
    /// answers it 502, our 503); closed after an answer, it never is. Under traffic nginx
    /// sends on each kept connection within this time.
    public static let stopGraceMs: Int64 = 1000
    /// A worker waiting for events looks at the stop deadline at least this often (the stop
    /// signal wakes one worker; the others see the deadline it set).
    static let waitSliceMs: Int32 = 100
    /// How long a blocking read or write on a connection may wait (libfcgi's reads of a body,
    /// its writes of an answer) before the connection is dropped.
    private static let ioTimeoutSeconds = 3
    /// The most connections one worker accepts per event on the listening socket.
    static let acceptBatch = 64

    /// A loop over `listenFD` (set non-blocking by the caller) that stops when `stop` fires.
    /// `lingering`: close TCP connections without a reset (see `FastCGIRequest.close()`). nil
    /// when the system refuses an epoll set.
    public init?(listenFD: Int32, stop: FastCGIStopSignal, lingering: Bool, observer: Observer) {
        let epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { return nil }
        self.epoll = epoll
        self.listenFD = listenFD
        self.stop = stop
        self.lingering = lingering
        self.observer = observer
        guard Self.control(epoll, EPOLL_CTL_ADD, listenFD, EPOLLIN.rawValue),
            Self.control(epoll, EPOLL_CTL_ADD, stop.descriptor, EPOLLIN.rawValue | EPOLLONESHOT.rawValue)
        else {
            Glibc.close(epoll)
            return nil
        }
    }

    deinit {
        closeIdle()
        Glibc.close(epoll)
    }

    /// Makes `fd` non-blocking (the listening socket, before the workers start).
    public static func setNonBlocking(_ fd: Int32) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0
    }

    /// What one worker thread needs of its own to serve from the loop.
    public func worker() -> Worker {
        Worker(self)
    }

    /// One worker thread's handle on the loop: its own peek buffer and event. Not Sendable: it
    /// belongs to the thread that made it.
    public final class Worker {
        private let loop: FastCGIEventLoop
        private let peekBuffer: UnsafeMutableRawBufferPointer
        private var event = epoll_event()
        /// The connection of the request `next()` returned, until `finish(_:)`.
        private var current: Connection?

        init(_ loop: FastCGIEventLoop) {
            self.loop = loop
            // Owned here, freed in deinit.
            peekBuffer = .allocate(byteCount: 16 * 1024, alignment: 8)
        }

        deinit {
            peekBuffer.deallocate()
        }

        /// The next request whose params have been read, on any connection; nil once the loop
        /// has stopped (`stopGraceMs` after the stop signal, or sooner when no connection is
        /// left). Answer it, then call `finish(_:)`.
        public func next() -> FastCGIRequest? {
            while true {
                var timeoutMs: Int32 = FastCGIEventLoop.waitSliceMs
                let deadline = loop.stopDeadlineMs.load(ordering: .acquiring)
                if deadline != 0 {
                    let left = deadline - FastCGIEventLoop.monotonicMs()
                    guard left > 0, loop.hasIdleConnections else {
                        loop.closeIdle()
                        return nil
                    }
                    timeoutMs = Int32(clamping: min(left, Int64(FastCGIEventLoop.waitSliceMs)))
                }
                guard epoll_wait(loop.epoll, &event, 1, timeoutMs) == 1 else { continue }
                let fd = event.data.fd
                if fd == loop.listenFD {
                    current = loop.acceptWaiting(with: peekBuffer)
                } else if fd == loop.stop.descriptor {
                    loop.beginStopping()
                } else {
                    current = loop.take(fd, with: peekBuffer)
                }
                if let current { return current.request }
            }
        }

        /// Ends the current request on `request`'s connection: kept for the next request when
        /// nginx asked for it, closed otherwise (and always once the loop is stopping).
        public func finish(_ request: FastCGIRequest) {
            guard let connection = current, connection.request === request else { return }
            current = nil
            loop.finish(connection)
        }
    }

    // MARK: - Connections

    private var hasIdleConnections: Bool {
        idle.withLock { !$0.isEmpty }
    }

    /// Accepts every connection waiting (at most `acceptBatch`) and returns the first whose
    /// request is already there, read; the others are parked in the epoll set at once, for any
    /// worker. (One accept per event would leave new connections waiting behind a whole round
    /// of ready kept ones: with more connections than nginx keeps, that cost requests 0.6 s.)
    /// Accepts nothing once stopping.
    private func acceptWaiting(with buffer: UnsafeMutableRawBufferPointer) -> Connection? {
        guard stopDeadlineMs.load(ordering: .acquiring) == 0 else { return nil }
        var first: Connection?
        for _ in 0..<Self.acceptBatch {
            let fd = accept4(listenFD, nil, nil, Int32(SOCK_CLOEXEC.rawValue))
            guard fd >= 0 else {
                // EAGAIN: none left, or another worker took it. Out of descriptors or memory: the
                // connection stays queued and the listening socket readable, so pause before the
                // next try rather than spin on it.
                if errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM { usleep(1000) }
                break
            }
            var timeout = timeval(tv_sec: Self.ioTimeoutSeconds, tv_usec: 0)
            let size = socklen_t(MemoryLayout<timeval>.size)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, size)
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, size)
            let connection = Connection(FastCGIRequest(connection: fd, lingering: lingering))
            observer.opened()
            if first == nil {
                first = serve(connection, with: buffer)
            } else {
                park(connection)
            }
        }
        return first
    }

    /// The connection whose event this worker got, taken out of `idle` (it owns it now); its
    /// next request when that has arrived.
    private func take(_ fd: Int32, with buffer: UnsafeMutableRawBufferPointer) -> Connection? {
        guard let connection = idle.withLock({ $0.removeValue(forKey: fd) }) else { return nil }
        return serve(connection, with: buffer)
    }

    /// Reads the next request on an owned connection when its params have all arrived; else
    /// arms it again (part of a request) or closes it (ended).
    private func serve(_ connection: Connection, with buffer: UnsafeMutableRawBufferPointer) -> Connection? {
        switch Self.arrival(connection.request.descriptor, buffer) {
        case .complete:
            if connection.request.next() {
                return connection
            }
            close(connection)  // libfcgi found it broken (and closed it)
        case .partial:
            park(connection)
        case .ended:
            close(connection)
        }
        return nil
    }

    private func finish(_ connection: Connection) {
        if connection.request.finish() && stopDeadlineMs.load(ordering: .acquiring) == 0 {
            park(connection)
        } else {
            close(connection)
        }
    }

    /// Puts an owned connection back in `idle` and arms it for its next event (added to the
    /// epoll set the first time). In `idle` before it is armed: the event can come at once.
    private func park(_ connection: Connection) {
        let fd = connection.request.descriptor
        let operation = connection.watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD
        connection.watched = true
        idle.withLock { $0[fd] = connection }
        if !Self.control(epoll, operation, fd, EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLONESHOT.rawValue) {
            if let taken = idle.withLock({ $0.removeValue(forKey: fd) }) { close(taken) }
        }
    }

    private func close(_ connection: Connection) {
        connection.request.close()
        observer.closed()
    }

    /// Closes every connection no worker is answering.
    private func closeIdle() {
        let all = idle.withLock { idle in
            defer { idle.removeAll() }
            return Array(idle.values)
        }
        for connection in all { close(connection) }
    }

    /// Stops accepting (the listening socket leaves the epoll set) and starts the grace.
    private func beginStopping() {
        let deadline = Self.monotonicMs() + Self.stopGraceMs
        guard stopDeadlineMs.compareExchange(expected: 0, desired: deadline, ordering: .acquiringAndReleasing).exchanged else { return }
        epoll_ctl(epoll, EPOLL_CTL_DEL, listenFD, nil)
    }

    /// `CLOCK_MONOTONIC` in milliseconds, for the stop deadline (this module imports no other of
    /// the package's, so not ChargeGateRedis's `MonotonicClock`).
    private static func monotonicMs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// Whether the params of the next request on `fd` have all arrived.
    private static func arrival(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) -> Arrival {
        let count = recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_PEEK | MSG_DONTWAIT))
        if count == 0 { return .ended }
        if count < 0 { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? .partial : .ended }
        return arrival(in: UnsafeRawBufferPointer(rebasing: buffer[0..<count]), capacity: buffer.count)
    }

    /// Whether `bytes` (the start of what waits on a connection) hold a whole FastCGI PARAMS
    /// stream: a PARAMS record (type 4) with no content ends it. A peek that filled the
    /// buffer without one counts as complete (params larger than the buffer: libfcgi reads on).
    static func arrival(in bytes: UnsafeRawBufferPointer, capacity: Int) -> Arrival {
        var offset = 0
        while offset + 8 <= bytes.count {
            let type = bytes[offset + 1]
            let contentLength = Int(bytes[offset + 4]) << 8 | Int(bytes[offset + 5])
            let paddingLength = Int(bytes[offset + 6])
            if type == 4 && contentLength == 0 { return .complete }
            offset += 8 + contentLength + paddingLength
        }
        return bytes.count >= capacity ? .complete : .partial
    }

    @discardableResult
    private static func control(_ epoll: Int32, _ operation: Int32, _ fd: Int32, _ mask: UInt32) -> Bool {
        var event = epoll_event()
        event.events = mask
        event.data.fd = fd
        return epoll_ctl(epoll, operation, fd, &event) == 0
    }
}
