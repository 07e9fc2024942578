import CHiredis
import ChargeGateCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The one Swift owner of a hiredis `redisContext*`: it opens it, frees it (on `close()`, after
/// an I/O error, and in `deinit`), and never hands the pointer out. Each command is written from
/// its RESP encoding and its reply read at once; the reply tree is converted to a `RedisValue`
/// and freed before `send` returns, so no C memory outlives a call.
///
/// Noncopyable, so no copy can free the context a second time; held inline by its
/// `RedisConnection` (no allocation, no reference counting per command). Not thread-safe, like
/// the `redisContext` it owns. Error texts name `url` and never contain either of its passwords.
struct RedisContext: ~Copyable {
    /// The owned context; nil when closed.
    private var pointer: UnsafeMutablePointer<redisContext>?
    /// Named in error texts (its description hides the passwords), and the passwords scrubbed.
    let url: RedisURL

    /// A closed context for `url`.
    init(url: RedisURL) {
        self.url = url
        self.pointer = nil
    }

    deinit {
        // Ownership: ours since `open`; freed here exactly once (close() sets it to nil).
        if let pointer { redisFree(pointer) }
    }

    /// Whether a context is held (it may still turn out to be closed by the server).
    var isOpen: Bool { pointer != nil }

    /// Frees the context, if any.
    mutating func close() {
        if let pointer {
            redisFree(pointer)
            self.pointer = nil
        }
    }

    /// Connects to `endpoint` within `timeoutMs`, sets that as the command timeout and (over TCP)
    /// turns keep-alive on; a context already open is freed first. `place` names the node in
    /// error texts.
    mutating func open(_ endpoint: RedisURL.Endpoint, timeoutMs: Int, place: String) throws(StoreError) {
        close()
        let timeout = Self.timeval(ms: timeoutMs)
        let made: UnsafeMutablePointer<redisContext>?
        switch endpoint {
        case .unix(let path):
            made = redisConnectUnixWithTimeout(path, timeout)
        case .tcp(let host, let port):
            made = redisConnectWithTimeout(host, Int32(clamping: port), timeout)
        case .sentinel:
            throw .unavailable("a sentinel URL names no node")
        case .cluster:
            throw .unavailable("a cluster URL names no one node")
        }
        guard let made else { throw .unavailable("cannot allocate a Redis context") }
        if made.pointee.err != 0 {
            let error = storeError(made, errno: errno, action: "connect to \(place)")
            // Ownership: a failed connect still returns an allocated context; freed here.
            redisFree(made)
            throw error
        }
        pointer = made
        if redisSetTimeout(made, timeout) != REDIS_OK {
            let error = storeError(made, errno: errno, action: "set timeout on \(place)")
            close()
            throw error
        }
        if case .tcp = endpoint {
            _ = redisEnableKeepAlive(made)
        }
    }

    /// Sets the socket's send and receive timeout (to allow one longer reply, or back).
    mutating func setTimeout(ms: Int) {
        guard let pointer else { return }
        _ = redisSetTimeout(pointer, Self.timeval(ms: ms))
    }

    /// Writes one command and reads its reply. An error reply is a `.error` value. On an I/O
    /// error the context is closed (the next command reconnects) and the error is thrown: the
    /// command is never sent again here. `command` is only read (`inout`: its buffer is reused).
    mutating func send(_ command: inout RESPCommand) throws(StoreError) -> RedisValue {
        guard let context = pointer else { throw .unavailable("not connected to \(url)") }
        if let error = queue(&command, on: context) { throw error }
        return try readReply(on: context).get()
    }

    /// Writes every command of `commands` (one buffer, one write), then reads their replies in
    /// order: one round trip. Each reply is converted to a `RedisValue` and freed as it is read,
    /// as in `send`. On an I/O error (a timeout, the server gone) the context is closed and the
    /// replies read so far are returned with the error: the commands past them may or may not
    /// have run, and none is sent again here. `error` is nil exactly when every reply was read.
    mutating func pipeline(_ commands: inout [RESPCommand]) -> (replies: [RedisValue], error: StoreError?) {
        guard let context = pointer else { return ([], .unavailable("not connected to \(url)")) }
        for index in commands.indices {
            // Nothing was written yet when one cannot be queued (hiredis writes on the first read).
            if let error = queue(&commands[index], on: context) { return ([], error) }
        }
        var replies: [RedisValue] = []
        replies.reserveCapacity(commands.count)
        while replies.count < commands.count {
            switch readReply(on: context) {
            case .success(let value): replies.append(value)
            case .failure(let error): return (replies, error)
            }
        }
        return (replies, nil)
    }

    /// Appends `command` to hiredis's output buffer; on failure the context is closed and the
    /// error returned. hiredis copies the encoded bytes: nothing keeps a pointer.
    private mutating func queue(_ command: inout RESPCommand, on context: UnsafeMutablePointer<redisContext>) -> StoreError? {
        let queued = command.withEncoded { encoded in
            redisAppendFormattedCommand(context, encoded.baseAddress?.assumingMemoryBound(to: CChar.self), encoded.count)
        }
        guard queued != REDIS_OK else { return nil }
        let error = storeError(context, errno: errno, action: "command")
        close()
        return error
    }

    /// Reads the next reply (writing what is queued first). On an I/O error the context is
    /// closed and the error returned.
    private mutating func readReply(on context: UnsafeMutablePointer<redisContext>) -> Result<RedisValue, StoreError> {
        errno = 0
        var raw: UnsafeMutableRawPointer?
        let status = redisGetReply(context, &raw)
        let savedErrno = errno
        if let raw {
            // Ownership: redisGetReply hands us the reply tree; it is copied into a Swift value
            // at once and freed here, exactly once. Nothing keeps a pointer.
            let value = RedisValue(reply: UnsafePointer(raw.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(raw)
            if status == REDIS_OK { return .success(value) }
        }
        let error =
            context.pointee.err != 0
            ? storeError(context, errno: savedErrno, action: "command")
            : StoreError.unavailable("no reply from \(url)")
        close()
        return .failure(error)
    }

    /// Whether the idle socket has nothing to read and no hang-up or error pending: an idle
    /// connection is never readable, so a readable one was closed (or written to) by the server.
    func isQuiet() -> Bool {
        guard let pointer else { return false }
        let fd = pointer.pointee.fd
        guard fd >= 0 else { return false }
        let events = Int16(truncatingIfNeeded: Int32(POLLIN) | Self.pollRDHUP | Int32(POLLHUP) | Int32(POLLERR))
        var entry = pollfd(fd: fd, events: events, revents: 0)
        let ready = poll(&entry, 1, 0)
        if ready < 0 { return errno == EINTR }
        return ready == 0 || entry.revents == 0
    }

    /// `POLLRDHUP` (Linux only): the peer shut its writing side down.
    #if os(Linux)
        private static let pollRDHUP: Int32 = 0x2000
    #else
        private static let pollRDHUP: Int32 = 0
    #endif

    /// `text` with every occurrence of either password replaced by `***`.
    func scrub(_ text: String) -> String {
        var text = text
        for secret in [url.password, url.sentinelPassword] {
            if let secret, !secret.isEmpty { text = text.replacing(secret, with: "***") }
        }
        return text
    }

    /// The context's C error as a `StoreError`: `.timeout` when the socket timed out, else
    /// `.unavailable`. The text is free of the passwords.
    private func storeError(_ context: UnsafeMutablePointer<redisContext>, errno code: Int32, action: String) -> StoreError {
        let kind = context.pointee.err
        let text = withUnsafeBytes(of: context.pointee.errstr) { raw -> String in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        let lowered = text.lowercased()
        let timedOut =
            kind == REDIS_ERR_IO
            && (code == EAGAIN || code == EWOULDBLOCK || code == ETIMEDOUT
                || lowered.contains("timed out") || lowered.contains("resource temporarily unavailable"))
        if timedOut { return .timeout }
        let what = text.isEmpty ? "error \(kind)" : text
        return .unavailable(scrub("\(action): \(what)"))
    }

    private static func timeval(ms: Int) -> timeval {
        #if canImport(Glibc)
            return Glibc.timeval(tv_sec: ms / 1000, tv_usec: (ms % 1000) * 1000)
        #else
            return Darwin.timeval(tv_sec: ms / 1000, tv_usec: Int32((ms % 1000) * 1000))
        #endif
    }
}
