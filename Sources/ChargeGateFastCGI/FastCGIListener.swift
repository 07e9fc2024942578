import CFastCGI
import Glibc

/// Why the listening socket could not be set up.
public struct ListenError: Error, Sendable, CustomStringConvertible {
    /// One line for the operator.
    public var description: String
}

/// Opens the socket nginx connects to.
public enum FastCGIListener {
    /// Initialises libfcgi once, before any worker thread starts.
    public static func initialize() {
        FCGX_Init()
    }

    /// A unix socket at `path`, refusing when a live process already accepts there (libfcgi
    /// would silently unlink it and take it over), then given `mode` and `group`.
    public static func openUnix(path: String, backlog: Int32, mode: Int, group: String?) throws(ListenError) -> Int32 {
        if isAccepting(unixPath: path) {
            throw ListenError(
                description:
                    "\(path): another process is already accepting connections there (a second charge-gate?); refusing to take the socket over"
            )
        }
        var gid: gid_t?
        if let group {
            guard let entry = getgrnam(group) else { throw ListenError(description: "socketGroup: no group named '\(group)'") }
            gid = entry.pointee.gr_gid
        }
        let fd = FCGX_OpenSocket(path, backlog)
        guard fd >= 0 else { throw ListenError(description: "\(path): cannot listen: \(String(cString: strerror(errno)))") }
        if chmod(path, mode_t(mode)) != 0 {
            throw ListenError(description: "\(path): cannot chmod \(String(mode, radix: 8)): \(String(cString: strerror(errno)))")
        }
        if let gid, chown(path, uid_t.max, gid) != 0 {
            throw ListenError(description: "\(path): cannot chown to group \(group ?? ""): \(String(cString: strerror(errno)))")
        }
        return fd
    }

    /// A TCP socket on `host:port`.
    public static func openTCP(host: String, port: Int, backlog: Int32) throws(ListenError) -> Int32 {
        let fd = FCGX_OpenSocket("\(host):\(port)", backlog)
        guard fd >= 0 else {
            throw ListenError(description: "\(host):\(port): cannot listen (address in use, or not an address of this host)")
        }
        return fd
    }

    /// The listening socket handed over on fd 0 (spawn-fcgi, systemd `StandardInput=socket`).
    public static func inherited() throws(ListenError) -> Int32 {
        var accepting: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0, accepting != 0 else {
            throw ListenError(
                description: "listen: inherit needs a listening socket on fd 0 (as spawn-fcgi or systemd socket activation provide)")
        }
        return 0
    }

    /// Whether connections wait in the listening socket's accept queue.
    public static func hasPendingConnections(_ fd: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) > 0 && entry.revents & Int16(POLLIN) != 0
    }

    /// Whether `fd` is a unix-domain socket (where closing without lingering is safe).
    public static func isUnixSocket(_ fd: Int32) -> Bool {
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return result == 0 && Int32(address.ss_family) == AF_UNIX
    }

    /// Whether something accepts connections at the unix socket `path` right now.
    static func isAccepting(unixPath path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return result == 0
    }
}
