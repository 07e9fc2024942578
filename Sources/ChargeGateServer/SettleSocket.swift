import Glibc

/// The unix datagram socket nginx's settlement lines arrive on (`access_log syslog:`): bound by
/// the responder at `settleListen`, or handed over by systemd (`charge-gate-settle.socket`,
/// `FileDescriptorName=settle`). Owns the fd: closed when the last reference goes.
final class SettleSocket: Sendable {
    /// The socket.
    let fd: Int32
    /// The path the responder bound (nil for a socket systemd handed over, which is systemd's
    /// to remove).
    let boundPath: String?

    private init(fd: Int32, boundPath: String?) {
        self.fd = fd
        self.boundPath = boundPath
    }

    deinit {
        close(fd)
    }

    /// Whether systemd handed it over (and keeps it open across restarts).
    var inherited: Bool { boundPath == nil }

    /// Binds a new socket at `path` with `mode` and `group` (as the FastCGI socket gets): a
    /// stale socket file there is removed first; a live one (another process receives there)
    /// or anything else at the path is refused.
    static func bind(path: String, mode: Int, group: String?) throws(SettleSocketError) -> SettleSocket {
        var gid: gid_t?
        if let group {
            guard let entry = getgrnam(group) else { throw SettleSocketError("socketGroup: no group named '\(group)'") }
            gid = entry.pointee.gr_gid
        }
        guard var address = Self.address(path) else {
            throw SettleSocketError("\(path): too long for a unix socket path (at most 107 bytes)")
        }
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else {
                throw SettleSocketError("\(path): exists and is not a socket; refusing to replace it (settleListen)")
            }
            if isReceiving(path) {
                throw SettleSocketError(
                    "\(path): another process is already receiving settlement lines there (a second charge-gate?); refusing to take it over"
                )
            }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SettleSocketError("\(path): cannot make a socket: \(errorText())") }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            let why = errorText()
            close(fd)
            throw SettleSocketError("\(path): cannot bind: \(why)")
        }
        let socket = SettleSocket(fd: fd, boundPath: path)
        if chmod(path, mode_t(mode)) != 0 {
            let why = errorText()
            socket.unlinkBoundPath()
            throw SettleSocketError("\(path): cannot chmod \(String(mode, radix: 8)): \(why)")
        }
        if let gid, chown(path, uid_t.max, gid) != 0 {
            let why = errorText()
            socket.unlinkBoundPath()
            throw SettleSocketError("\(path): cannot chown to group \(group ?? ""): \(why)")
        }
        return socket
    }

    /// The socket systemd handed over on `fd`, once it is checked to be a unix datagram socket.
    static func inherited(fd: Int32) throws(SettleSocketError) -> SettleSocket {
        var type: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0, type == Int32(SOCK_DGRAM.rawValue), isUnix(fd) else {
            throw SettleSocketError(
                "the fd systemd named 'settle' (\(fd)) is not a unix datagram socket (charge-gate-settle.socket needs ListenDatagram=)")
        }
        return SettleSocket(fd: fd, boundPath: nil)
    }

    /// What one `receive` found.
    enum Received: Equatable {
        /// A datagram of `length` bytes (more than the buffer held when `length` exceeds it).
        case datagram(length: Int)
        /// Nothing waiting.
        case empty
        /// The call failed (`errno`).
        case failed(Int32)
    }

    /// Takes one datagram into `buffer`, never waiting.
    func receive(into buffer: UnsafeMutableRawBufferPointer) -> Received {
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT | MSG_TRUNC))
            if n >= 0 { return .datagram(length: n) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .empty
            case let code: return .failed(code)
            }
        }
    }

    /// Waits until a datagram is waiting or `timeoutMs` passed (a signal ends the wait early);
    /// whether one is waiting.
    func waitReadable(timeoutMs: Int) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, Int32(clamping: timeoutMs)) > 0 && entry.revents & Int16(POLLIN) != 0
    }

    /// Removes the bound path (nothing for an inherited socket), so that nginx's next connect
    /// finds no stale socket; what nginx already connected keeps arriving until the fd closes.
    func unlinkBoundPath() {
        if let boundPath { unlink(boundPath) }
    }

    /// `path` as a unix socket address; nil when it does not fit.
    static func address(_ path: String) -> sockaddr_un? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in raw.copyBytes(from: bytes) }
        return address
    }

    /// Whether some process receives on the datagram socket at `path` right now (a connect
    /// succeeds; a stale file is refused).
    static func isReceiving(_ path: String) -> Bool {
        guard var address = address(path) else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return result == 0
    }

    private static func isUnix(_ fd: Int32) -> Bool {
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return result == 0 && Int32(address.ss_family) == AF_UNIX
    }

    private static func errorText() -> String {
        String(cString: strerror(errno))
    }
}
