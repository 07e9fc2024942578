import Glibc

/// What a FastCGI responder answered to one request: its STDOUT and STDERR streams and the
/// FCGI_END_REQUEST record's statuses.
public struct FastCGIAnswer: Sendable, Equatable {
    /// The STDOUT stream (CGI headers, blank line, body).
    public var stdout: [UInt8] = []
    /// The STDERR stream.
    public var stderr: [UInt8] = []
    /// END_REQUEST's appStatus.
    public var appStatus: UInt32 = 0
    /// END_REQUEST's protocolStatus (0: FCGI_REQUEST_COMPLETE).
    public var protocolStatus: UInt8 = 0

    /// STDOUT as text.
    public var text: String { String(decoding: stdout, as: UTF8.self) }
}

/// Why a FastCGI client could not send a request or read its answer.
public enum FastCGIClientError: Error, Equatable {
    /// Nothing (or not enough) arrived before the deadline.
    case timedOut
    /// The responder closed the connection (a read returned 0).
    case closed
    /// The connection was reset (ECONNRESET: over a unix socket, closed with unread bytes).
    case reset
    /// A system call failed with this errno.
    case failed(Int32)
    /// A record the client does not expect from a responder (its type).
    case unexpectedRecord(UInt8)
}

/// How a connection looks to the client once it expects no more answers.
public enum FastCGIConnectionEnd: Equatable {
    /// The responder closed it: a read returned 0.
    case closed
    /// The responder closed it with bytes of ours unread: ECONNRESET (unix sockets).
    case reset
    /// Still open when the wait ended: nothing arrived.
    case open
    /// Bytes arrived instead of an end.
    case data([UInt8])
    /// Reading failed otherwise.
    case broken(FastCGIClientError)
}

/// A blocking FastCGI client on one unix-socket connection, as nginx's side of it: sends
/// records, reads records back until FCGI_END_REQUEST, every read bounded by a deadline. Not
/// Sendable: one per thread. Closes its descriptor in deinit (or `close()`).
public final class FastCGIClient {
    /// The connection's descriptor; -1 once closed.
    public private(set) var descriptor: Int32
    /// Bytes read past the last record handed back.
    private var pending: [UInt8] = []

    /// Connects to the unix socket at `path`.
    public init(unixPath path: String) throws(FastCGIClientError) {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .failed(errno) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            Glibc.close(fd)
            throw .failed(ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            let error = errno
            Glibc.close(fd)
            throw .failed(error)
        }
        descriptor = fd
    }

    deinit {
        close()
    }

    /// Closes the connection (idempotent).
    public func close() {
        guard descriptor >= 0 else { return }
        Glibc.close(descriptor)
        descriptor = -1
    }

    /// Writes all of `bytes` (no SIGPIPE: a closed peer is an error).
    public func send(_ bytes: [UInt8]) throws(FastCGIClientError) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                Glibc.send(descriptor, raw.baseAddress.map { $0 + sent }, raw.count - sent, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw errno == ECONNRESET ? .reset : .failed(errno)
            }
            sent += n
        }
    }

    /// Sends a whole request (`FastCGIRecord.request`) and reads its answer.
    public func request(
        _ pairs: [(String, String)], body: [UInt8] = [], keepConnection: Bool, timeoutMs: Int = 5000
    ) throws(FastCGIClientError) -> FastCGIAnswer {
        try send(FastCGIRecord.request(pairs, body: body, keepConnection: keepConnection))
        return try answer(timeoutMs: timeoutMs)
    }

    /// Reads records until FCGI_END_REQUEST: the answer. Throws when the deadline passes first,
    /// the connection ends first, or a record is not one a responder sends.
    public func answer(timeoutMs: Int) throws(FastCGIClientError) -> FastCGIAnswer {
        let deadline = ContinuousClock.now + .milliseconds(timeoutMs)
        var answer = FastCGIAnswer()
        while true {
            while let record = nextRecord() {
                switch record.type {
                case FastCGIRecord.stdoutType: answer.stdout += record.content
                case FastCGIRecord.stderrType: answer.stderr += record.content
                case FastCGIRecord.endRequestType where record.content.count == 8:
                    answer.appStatus = record.content[0..<4].reduce(0) { $0 << 8 | UInt32($1) }
                    answer.protocolStatus = record.content[4]
                    return answer
                default: throw .unexpectedRecord(record.type)
                }
            }
            let chunk = try read(until: deadline)
            if chunk.isEmpty { throw .closed }
            pending += chunk
        }
    }

    /// Waits at most `timeoutMs` for the responder to end the connection: how it ended, or
    /// `.open` when nothing arrived, or the bytes that arrived instead.
    public func end(timeoutMs: Int) -> FastCGIConnectionEnd {
        if !pending.isEmpty { return .data(pending) }
        let deadline = ContinuousClock.now + .milliseconds(timeoutMs)
        switch Result(catching: { () throws(FastCGIClientError) -> [UInt8] in try read(until: deadline) }) {
        case .success(let chunk): return chunk.isEmpty ? .closed : .data(chunk)
        case .failure(.reset): return .reset
        case .failure(.timedOut): return .open
        case .failure(let error): return .broken(error)
        }
    }

    /// The first whole record in `pending`, taken out of it (its padding dropped).
    private func nextRecord() -> (type: UInt8, content: [UInt8])? {
        guard pending.count >= 8 else { return nil }
        let contentLength = Int(pending[4]) << 8 | Int(pending[5])
        let total = 8 + contentLength + Int(pending[6])
        guard pending.count >= total else { return nil }
        let record = (pending[1], Array(pending[8..<8 + contentLength]))
        pending.removeFirst(total)
        return record
    }

    /// One read once the connection is readable, before `deadline`: the bytes, or none when the
    /// peer closed it.
    private func read(until deadline: ContinuousClock.Instant) throws(FastCGIClientError) -> [UInt8] {
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            let leftMs = max(0, Int(left.components.seconds) * 1000 + Int(left.components.attoseconds / 1_000_000_000_000_000))
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, Int32(min(leftMs, Int(Int32.max))))
            if ready < 0 {
                if errno == EINTR { continue }
                throw .failed(errno)
            }
            if ready == 0 { throw .timedOut }
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            let n = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw errno == ECONNRESET ? .reset : .failed(errno)
            }
            return Array(buffer[0..<n])
        }
    }
}
