import CFastCGI
import Glibc

/// One FastCGI connection from nginx and the request being served on it: the single Swift
/// owner of a heap-allocated `FCGX_Request` (libfcgi's streams point back into it, so it must
/// not move) and of the connection's descriptor. Not Sendable: it belongs to the worker thread
/// that accepted the connection (`FastCGIEventLoop`).
///
/// libfcgi reads and writes the connection; it never accepts. The request is bound to an
/// accepted descriptor (`ipcFd`) and to no listening socket, so `FCGX_Accept_r` reads the next
/// request on that connection and, when the connection has ended, fails instead of accepting.
/// Whether the connection is kept after a request is decided here, not by libfcgi: nginx asks
/// for it per request (`fastcgi_keep_conn on` sets FCGI_KEEP_CONN), `finish()` reports it, and
/// the event loop closes what is not kept.
public final class FastCGIRequest {
    private let request: UnsafeMutablePointer<FCGX_Request>
    /// True outside a request (before `next()`, after `finish()`): params and streams are
    /// freed then, and reading them would touch freed memory.
    private var finished = true

    /// The connection's descriptor, as accepted.
    public let descriptor: Int32
    /// Whether `close()` shuts the write side and drops unread input first (TCP).
    private let lingering: Bool

    /// Takes over the accepted connection `descriptor`. `FastCGIListener.initialize()` must
    /// have run first. `lingering`: see `close()`.
    public init(connection descriptor: Int32, lingering: Bool) {
        self.descriptor = descriptor
        self.lingering = lingering
        request = .allocate(capacity: 1)
        request.initialize(to: FCGX_Request())
        // No listening socket (-1): an accept libfcgi would try once the connection ended
        // fails at once (EBADF) instead of taking a connection meant for another thread.
        FCGX_InitRequest(request, -1, 0)
        request.pointee.ipcFd = descriptor
        // libfcgi closes the descriptor at the end of a request unless this is set; closing is
        // the event loop's decision (finish()). `detached`: when libfcgi does close it (a
        // broken or ended connection), it closes at once instead of shutting the write side
        // and waiting up to 2 s for the peer, which would stall every connection of the thread.
        request.pointee.keepConnection = 1
        request.pointee.detached = 1
    }

    deinit {
        // Owned here: releases libfcgi's buffers and closes the descriptor if still open.
        request.pointee.detached = 1
        FCGX_Free(request, isOpen ? 1 : 0)
        request.deinitialize(count: 1)
        request.deallocate()
    }

    /// Whether the connection is still open (libfcgi closes it when reading or writing fails).
    public var isOpen: Bool { request.pointee.ipcFd >= 0 }

    /// Reads the next request's role and params from the connection (the event loop calls
    /// this only once they have all arrived); false when the connection ended or broke (its
    /// descriptor is closed then).
    public func next() -> Bool {
        request.pointee.detached = 1
        let accepted = FCGX_Accept_r(request) >= 0
        finished = !accepted
        return accepted
    }

    /// Finishes the current request: writes the end of the response and flushes it. True when
    /// nginx asked to keep the connection for another request and it is still open; false
    /// when it did not (the caller closes it) or the connection broke (already closed).
    public func finish() -> Bool {
        // Set by libfcgi from this request's FCGI_KEEP_CONN flag; forced back to 1 so that
        // FCGX_Finish_r leaves the descriptor open whatever nginx asked.
        var keeps = request.pointee.keepConnection != 0
        // A request whose body was not read to its end (the empty STDIN record) leaves bytes
        // that the next request on the connection would be read from: never kept then. For
        // the auth subrequest (no body) the end is already in libfcgi's buffer: no read.
        if keeps, let input = request.pointee.in, FCGX_GetChar(input) != EOF { keeps = false }
        request.pointee.keepConnection = 1
        FCGX_Finish_r(request)
        finished = true
        return keeps && isOpen
    }

    /// Closes the connection (nginx did not ask to keep it, or the worker is stopping).
    ///
    /// Over TCP (`lingering`) the write side is shut first and whatever nginx sent that was
    /// not read is read and dropped, so that closing sends no reset, which could make nginx
    /// discard a response it has not read yet (libfcgi's own close waits up to 2 s for the peer
    /// instead, stalling the thread). Over a unix socket nothing the peer has received can be
    /// discarded: closed at once.
    public func close() {
        guard isOpen else { return }
        if lingering {
            shutdown(descriptor, Int32(SHUT_WR))
            var scratch = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
            while withUnsafeMutableBytes(of: &scratch, { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }) > 0 {}
        }
        Glibc.close(descriptor)
        request.pointee.ipcFd = -1
    }

    /// The param `name`, copied into a Swift string at once (libfcgi's buffer dies with the
    /// request). nil between `finish()` and the next `next()`: the params are gone then.
    /// (`withCString` lends a native string's own NUL-terminated bytes; passing `name` as a
    /// `char *` argument copied it into a new array on every lookup.)
    public func param(_ name: String) -> String? {
        guard finished == false, let envp = request.pointee.envp else { return nil }
        guard let value = name.withCString({ FCGX_GetParam($0, envp) }) else { return nil }
        return String(cString: value)
    }

    /// Reads at most `limit` bytes of the body; nil when the body is longer.
    public func readBody(limit: Int) -> [UInt8]? {
        guard !finished, let input = request.pointee.in else { return [] }
        var body = [UInt8](repeating: 0, count: limit + 1)
        let count = body.withUnsafeMutableBufferPointer { buffer -> Int in
            guard let base = buffer.baseAddress else { return 0 }
            var total = 0
            while total < buffer.count {
                let n = base.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                    FCGX_GetStr($0 + total, Int32(buffer.count - total), input)
                }
                if n <= 0 { break }
                total += Int(n)
            }
            return total
        }
        guard count <= limit else { return nil }
        body.removeSubrange(count...)
        return body
    }

    /// Writes `bytes` (the whole CGI header block and body) in one `FCGX_PutStr`.
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        guard !finished, let out = request.pointee.out else { return false }
        return bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return true }
            return base.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                FCGX_PutStr($0, Int32(buffer.count), out) == Int32(buffer.count)
            }
        }
    }
}
