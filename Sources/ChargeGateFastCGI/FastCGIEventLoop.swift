import CFastCGI
import Glibc

/// One worker thread's FastCGI connections, served one request at a time from an epoll set.
///
/// Every worker watches the shared listening socket (`EPOLLEXCLUSIVE`: a new connection wakes
/// one idle worker, not all) and the connections it accepted. A connection costs its worker
/// nothing while idle, so nginx can keep as many as it likes (`fastcgi_keep_conn on` with an
/// upstream `keepalive`). A request is handed to libfcgi only once its params have all arrived
/// (peeked, not read), so a slow or stalled nginx connection never holds the thread: libfcgi's
/// blocking reads then find everything in the socket.
///
/// The worker loop is `while let request = loop.next() { ...answer...; loop.finish(request) }`.
/// Not Sendable: it belongs to the thread that made it.
public final class FastCGIEventLoop {
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

    private let epoll: Int32
    private let listenFD: Int32
    private let stop: FastCGIStopSignal
    private var stopFD: Int32 { stop.descriptor }
    private let lingering: Bool
    private let observer: Observer
    /// Every open connection this thread accepted, by descriptor, and whether it is in the
    /// epoll set (a connection whose first request was already there when it was accepted is
    /// added only when kept).
    private var connections: [Int32: (request: FastCGIRequest, watched: Bool)] = [:]
    private let events: UnsafeMutablePointer<epoll_event>
    private static let eventCapacity: Int32 = 64
    private var readyCount = 0
    private var readyIndex = 0
    /// When the loop stops (monotonic ms), set once the stop descriptor is readable: until then
    /// it answers what comes on its connections, closing each after its answer, and accepts no
    /// more; then it closes the rest and `next()` returns nil.
    private var stopDeadlineMs: Int64?
    /// How long a stopping loop goes on answering on its kept connections. nginx picks a kept
    /// connection for its next request without asking whether it is still open, so one closed
    /// while idle can be the one a request was just sent on (that request is lost: nginx
    /// answers it 502, our 503); closed after an answer, it never is. Under traffic nginx
    /// sends on each kept connection within this time.
    public static let stopGraceMs: Int64 = 1000
    private let peekBuffer: UnsafeMutableRawBufferPointer
    /// How long a blocking read or write on a connection may wait (libfcgi's reads of a body,
    /// its writes of an answer) before the connection is dropped.
    private static let ioTimeoutSeconds = 3

    /// A loop over `listenFD` (set non-blocking by the caller, shared by every worker) that
    /// stops when `stop` (shared) fires. `lingering`: close TCP
    /// connections without a reset (see `FastCGIRequest.close()`). nil when the system
    /// refuses an epoll set.
    public init?(listenFD: Int32, stop: FastCGIStopSignal, lingering: Bool, observer: Observer) {
        let epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { return nil }
        self.epoll = epoll
        self.listenFD = listenFD
        self.stop = stop
        self.lingering = lingering
        self.observer = observer
        // Owned here, freed in deinit.
        events = .allocate(capacity: Int(Self.eventCapacity))
        peekBuffer = .allocate(byteCount: 16 * 1024, alignment: 8)
        guard Self.watch(epoll, listenFD, EPOLLIN.rawValue | EPOLLEXCLUSIVE.rawValue),
            Self.watch(epoll, stop.descriptor, EPOLLIN.rawValue)
        else {
            events.deallocate()
            peekBuffer.deallocate()
            Glibc.close(epoll)
            return nil
        }
    }

    deinit {
        closeAll()
        events.deallocate()
        peekBuffer.deallocate()
        Glibc.close(epoll)
    }

    /// Makes `fd` non-blocking (the listening socket, before the workers start).
    public static func setNonBlocking(_ fd: Int32) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0
    }

    /// The next request whose params have been read, on any of this thread's connections;
    /// nil once the loop has stopped (`stopGraceMs` after the stop signal, or sooner when every
    /// connection is closed). Answer it, then call `finish(_:)`.
    public func next() -> FastCGIRequest? {
        while true {
            while readyIndex < readyCount {
                let fd = events[readyIndex].data.fd
                readyIndex += 1
                if fd == listenFD {
                    if stopDeadlineMs == nil, let request = acceptOne() { return request }
                } else if fd == stopFD {
                    beginStopping()
                } else if let request = connections[fd]?.request, let ready = take(request) {
                    return ready
                }
            }
            var timeoutMs: Int32 = -1
            if let deadline = stopDeadlineMs {
                let left = deadline - Self.monotonicMs()
                guard left > 0, !connections.isEmpty else {
                    closeAll()
                    return nil
                }
                timeoutMs = Int32(clamping: left)
            }
            let count = epoll_wait(epoll, events, Self.eventCapacity, timeoutMs)
            readyIndex = 0
            readyCount = count > 0 ? Int(count) : 0
        }
    }

    /// Ends the current request on `request`'s connection: kept for the next request when
    /// nginx asked for it, closed otherwise (and always once the loop is stopping).
    public func finish(_ request: FastCGIRequest) {
        let fd = request.descriptor
        if request.finish() && stopDeadlineMs == nil {
            if connections[fd]?.watched == false {
                guard Self.watch(epoll, fd, EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue) else {
                    drop(fd)
                    return
                }
                connections[fd]?.watched = true
            }
            return
        }
        drop(fd)
    }

    // MARK: - Connections

    /// Stops accepting (the listening socket and the stop descriptor leave the epoll set: both
    /// stay readable) and starts the grace.
    private func beginStopping() {
        guard stopDeadlineMs == nil else { return }
        stopDeadlineMs = Self.monotonicMs() + Self.stopGraceMs
        epoll_ctl(epoll, EPOLL_CTL_DEL, listenFD, nil)
        epoll_ctl(epoll, EPOLL_CTL_DEL, stopFD, nil)
    }

    private static func monotonicMs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// Accepts one connection (another worker takes the next) and, when its first request is
    /// already there, reads it.
    private func acceptOne() -> FastCGIRequest? {
        let fd = accept4(listenFD, nil, nil, Int32(SOCK_CLOEXEC.rawValue))
        guard fd >= 0 else { return nil }  // EAGAIN: another worker took it; EMFILE...: retried on the next wake
        var timeout = timeval(tv_sec: Self.ioTimeoutSeconds, tv_usec: 0)
        let size = socklen_t(MemoryLayout<timeval>.size)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, size)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, size)
        let request = FastCGIRequest(connection: fd, lingering: lingering)
        connections[fd] = (request, false)
        observer.opened()
        switch arrival(fd) {
        case .complete:
            return readParams(request)
        case .partial:
            // Edge-triggered: data that arrived since the peek is reported at once.
            if Self.watch(epoll, fd, EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue) {
                connections[fd]?.watched = true
            } else {
                drop(fd)
            }
            return nil
        case .ended:
            drop(fd)
            return nil
        }
    }

    /// The next request on a watched connection when it has arrived; closes an ended one.
    private func take(_ request: FastCGIRequest) -> FastCGIRequest? {
        switch arrival(request.descriptor) {
        case .complete: return readParams(request)
        case .partial: return nil
        case .ended:
            drop(request.descriptor)
            return nil
        }
    }

    /// Reads the request's params (all there); nil when libfcgi found the connection broken.
    private func readParams(_ request: FastCGIRequest) -> FastCGIRequest? {
        if request.next() { return request }
        drop(request.descriptor)
        return nil
    }

    /// Closes and forgets a connection (closing also takes it out of the epoll set).
    private func drop(_ fd: Int32) {
        guard let connection = connections.removeValue(forKey: fd) else { return }
        connection.request.close()
        observer.closed()
    }

    private func closeAll() {
        for fd in Array(connections.keys) { drop(fd) }
    }

    /// Whether the params of the next request on `fd` have all arrived.
    private func arrival(_ fd: Int32) -> Arrival {
        let count = recv(fd, peekBuffer.baseAddress, peekBuffer.count, Int32(MSG_PEEK | MSG_DONTWAIT))
        if count == 0 { return .ended }
        if count < 0 { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? .partial : .ended }
        return Self.arrival(in: UnsafeRawBufferPointer(rebasing: peekBuffer[0..<count]), capacity: peekBuffer.count)
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
    private static func watch(_ epoll: Int32, _ fd: Int32, _ mask: UInt32) -> Bool {
        var event = epoll_event()
        event.events = mask
        event.data.fd = fd
        return epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) == 0
    }
}
