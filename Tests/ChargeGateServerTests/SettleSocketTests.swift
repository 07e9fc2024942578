import ChargeGateCore
import Glibc
import Testing

@testable import ChargeGateServer

/// The settlement socket: bound with the FastCGI socket's mode and group, a stale socket file
/// replaced, a live one or anything else at the path refused; a socket systemd hands over
/// taken only when it is a unix datagram socket.
@Suite struct SettleSocketTests {
    /// A group to give the socket: www-data when this runs as root (chown to another group),
    /// else this process's own group.
    static func group() -> (name: String, gid: gid_t)? {
        if getuid() == 0, let entry = getgrnam("www-data") { return ("www-data", entry.pointee.gr_gid) }
        guard let entry = getgrgid(getgid()) else { return nil }
        return (String(cString: entry.pointee.gr_name), entry.pointee.gr_gid)
    }

    @Test func theSocketGetsTheConfiguredModeAndGroup() throws {
        let dir = SettleTestSupport.temporaryDirectory()
        defer { SettleTestSupport.remove(dir) }
        let group = try #require(Self.group())
        let path = dir + "/settle.sock"
        let socket = try SettleSocket.bind(path: path, mode: 0o620, group: group.name)
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & S_IFMT == S_IFSOCK)
        #expect(info.st_mode & 0o7777 == 0o620)
        #expect(info.st_gid == group.gid)
        #expect(!socket.inherited)
        // Something listens there now: a datagram sent arrives.
        #expect(SettleTestSupport.send([Array("x".utf8)], to: path) == 1)
        #expect(socket.waitReadable(timeoutMs: 1000))
        socket.unlinkBoundPath()
        #expect(access(path, F_OK) != 0)
    }

    @Test func anUnknownGroupIsRefusedBeforeAnythingIsBound() {
        let dir = SettleTestSupport.temporaryDirectory()
        defer { SettleTestSupport.remove(dir) }
        #expect(throws: SettleSocketError.self) { try SettleSocket.bind(path: dir + "/s.sock", mode: 0o660, group: "no-such-group-cg") }
        #expect(access(dir + "/s.sock", F_OK) != 0)
    }

    @Test func aStaleSocketFileIsReplaced() throws {
        let dir = SettleTestSupport.temporaryDirectory()
        defer { SettleTestSupport.remove(dir) }
        let path = dir + "/settle.sock"
        // A socket whose process is gone: bound, then closed without removing the file.
        do { _ = try SettleSocket.bind(path: path, mode: 0o660, group: nil) }
        #expect(access(path, F_OK) == 0)
        #expect(!SettleSocket.isReceiving(path))
        let socket = try SettleSocket.bind(path: path, mode: 0o660, group: nil)
        #expect(SettleTestSupport.send([Array("x".utf8)], to: path) == 1)
        #expect(socket.waitReadable(timeoutMs: 1000))
    }

    @Test func aLiveSocketIsNotTakenOver() throws {
        let dir = SettleTestSupport.temporaryDirectory()
        defer { SettleTestSupport.remove(dir) }
        let path = dir + "/settle.sock"
        let first = try SettleSocket.bind(path: path, mode: 0o660, group: nil)
        #expect(SettleSocket.isReceiving(path))
        #expect {
            try SettleSocket.bind(path: path, mode: 0o660, group: nil)
        } throws: { error in
            "\(error)".contains("another process is already receiving settlement lines there")
        }
        // The first one still receives.
        #expect(SettleTestSupport.send([Array("x".utf8)], to: path) == 1)
        #expect(first.waitReadable(timeoutMs: 1000))
    }

    @Test func aFileThatIsNotASocketIsLeftAlone() throws {
        let dir = SettleTestSupport.temporaryDirectory()
        defer { SettleTestSupport.remove(dir) }
        let path = dir + "/settle.sock"
        let fd = open(path, O_CREAT | O_WRONLY, 0o600)
        close(fd)
        #expect {
            try SettleSocket.bind(path: path, mode: 0o660, group: nil)
        } throws: { error in
            "\(error)".contains("exists and is not a socket")
        }
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFREG)
    }

    @Test func anInheritedSocketMustBeAUnixDatagramSocket() throws {
        let dir = SettleTestSupport.temporaryDirectory()
        defer { SettleTestSupport.remove(dir) }
        let path = dir + "/settle.sock"
        let bound = try SettleSocket.bind(path: path, mode: 0o660, group: nil)
        let inherited = try SettleSocket.inherited(fd: dup(bound.fd))
        #expect(inherited.inherited && inherited.boundPath == nil)
        inherited.unlinkBoundPath()  // not ours to remove
        #expect(access(path, F_OK) == 0)

        let stream = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #expect(throws: SettleSocketError.self) { try SettleSocket.inherited(fd: stream) }
        close(stream)
        let udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        #expect(throws: SettleSocketError.self) { try SettleSocket.inherited(fd: udp) }
        close(udp)
    }

    @Test func aDatagramLongerThanTheBufferIsSeenAsSuch() throws {
        let dir = SettleTestSupport.temporaryDirectory()
        defer { SettleTestSupport.remove(dir) }
        let path = dir + "/settle.sock"
        let socket = try SettleSocket.bind(path: path, mode: 0o660, group: nil)
        #expect(SettleTestSupport.send([[UInt8](repeating: 65, count: 5000)], to: path) == 1)
        var buffer = [UInt8](repeating: 0, count: 100)
        let received = buffer.withUnsafeMutableBytes { socket.receive(into: $0) }
        #expect(received == .datagram(length: 5000))
        let empty = buffer.withUnsafeMutableBytes { socket.receive(into: $0) }
        #expect(empty == .empty)
    }
}
