import Glibc

/// The sockets systemd handed this process (socket activation, sd_listen_fds(3)): fds from 3
/// on, `LISTEN_FDS` of them, named in `LISTEN_FDNAMES` (a socket unit's
/// `FileDescriptorName=`), meant for the process whose pid is `LISTEN_PID`.
public struct SystemdSockets: Sendable, Equatable {
    /// The first fd handed over.
    public static let firstFD: Int32 = 3
    /// More than this many is not a socket activation this process understands.
    static let maxFDs = 64

    /// Each fd's name, from `firstFD` on (`unknown` where systemd named none).
    public var names: [String]

    /// Reads the variables from `environment`; nil unless `LISTEN_PID` is `pid` and
    /// `LISTEN_FDS` a count of 1...64 (another process's, or no, socket activation).
    public init?(environment: [String: String], pid: Int32) {
        guard let listenPID = environment["LISTEN_PID"], Int32(listenPID) == pid,
            let countText = environment["LISTEN_FDS"], let count = Int(countText), (1...Self.maxFDs).contains(count)
        else { return nil }
        var names = environment["LISTEN_FDNAMES"].map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) } ?? []
        if names.count != count { names = Array(repeating: "unknown", count: count) }
        self.names = names
    }

    /// The fd named `name` (the first, when several are); nil when none is.
    public func fd(named name: String) -> Int32? {
        names.firstIndex(of: name).map { Self.firstFD + Int32($0) }
    }

    /// This process's socket activation, from its environment; nil when it has none.
    public static func current() -> SystemdSockets? {
        var environment: [String: String] = [:]
        for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
            if let value = getenv(name) { environment[name] = String(cString: value) }
        }
        return SystemdSockets(environment: environment, pid: getpid())
    }
}
