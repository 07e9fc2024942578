import CFastCGI

/// One worker thread's FastCGI request: the single Swift owner of a heap-allocated
/// `FCGX_Request` (libfcgi's streams point back into it, so it must not move). Not Sendable:
/// it belongs to the thread that made it.
public final class FastCGIRequest {
    private let request: UnsafeMutablePointer<FCGX_Request>
    /// True outside a request (before the first accept, after finish): params and streams are
    /// freed then, and reading them would touch freed memory.
    private var finished = true

    /// Prepares a request that accepts on `listenFD`. `FastCGIListener.initialize()` must have
    /// run first. An accept interrupted by a signal returns (so shutdown can wake workers).
    public init(listenFD: Int32) {
        request = .allocate(capacity: 1)
        request.initialize(to: FCGX_Request())
        // Owned here; FCGX_Free in deinit releases what libfcgi allocated inside it.
        FCGX_InitRequest(request, listenFD, FCGI_FAIL_ACCEPT_ON_INTR)
    }

    deinit {
        FCGX_Free(request, 1)
        request.deinitialize(count: 1)
        request.deallocate()
    }

    /// Finishes the previous request and waits for the next; false when accept failed or was
    /// interrupted (the caller checks whether it is shutting down).
    public func accept() -> Bool {
        let accepted = FCGX_Accept_r(request) >= 0
        finished = !accepted
        return accepted
    }

    /// Finishes the current request: flushes the response and closes the connection.
    ///
    /// With `lingering`, libfcgi's own close: shut the write side, then wait (up to 2 s) for
    /// the peer to hang up, so that a TCP peer never gets a reset that could discard the
    /// response. Over a unix socket nothing the peer has received can be discarded, so
    /// `lingering: false` closes at once (FCGX_Detach) and frees the worker for the next request.
    public func finish(lingering: Bool = true) {
        if !lingering { FCGX_Detach(request) }
        FCGX_Finish_r(request)
        finished = true
    }

    /// The param `name`, copied into a Swift string at once (libfcgi's buffer dies with the
    /// request). nil between `finish()` and the next `accept()`: the params are gone then.
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
