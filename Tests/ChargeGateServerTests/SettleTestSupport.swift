import ChargeGateCore
import ChargeGateTestSupport
import Glibc
import Synchronization

@testable import ChargeGateServer

/// What the settlement tests share: datagrams as nginx writes them, a unix datagram client,
/// a store that fails on demand, a temporary directory, and reading a metric back.
enum SettleTestSupport {
    /// One settlement line as nginx's `access_log syslog:` sends it (`log_format
    /// charge_gate_settle`): the syslog header, then the ten `cg1|` fields.
    static func line(
        hold: String, origin: String = "main", status: Int = 200, upstreamStatus: String = "200", upstreamBytesSent: String = "512",
        bodyBytes: Int = 2048, upstreamTime: String = "0.120", amount: String = "-"
    ) -> [UInt8] {
        Array(
            "<190>Dec  6 13:20:08 charge_gate: cg1|\(hold)|\(origin)|\(status)|\(upstreamStatus)|\(upstreamBytesSent)|\(bodyBytes)|\(upstreamTime)|1733491208.123|\(amount)"
                .utf8)
    }

    /// Sends each datagram to the unix datagram socket at `path` (one client socket, as an nginx
    /// worker keeps one); how many were sent.
    @discardableResult
    static func send(_ datagrams: [[UInt8]], to path: String) -> Int {
        guard var address = SettleSocket.address(path) else { return 0 }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { return 0 }
        var sent = 0
        for datagram in datagrams {
            let n = datagram.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
            if n == datagram.count { sent += 1 }
        }
        return sent
    }

    /// A new empty directory under /tmp (short: unix socket paths are at most 107 bytes).
    static func temporaryDirectory() -> String {
        var template = Array("/tmp/cg-settle-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress, let made = mkdtemp(base) else { return "/tmp" }
            return String(cString: made)
        }
    }

    /// Removes `directory` and the files in it (the tests make no subdirectories).
    static func remove(_ directory: String) {
        guard directory != "/tmp", let dir = opendir(directory) else { return }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { unlink(directory + "/" + name) }
        }
        closedir(dir)
        rmdir(directory)
    }

    /// The value of the series `series` (name and labels, as exposed) in `metrics`; nil when
    /// it is not exposed.
    static func value(_ series: String, in metrics: GateMetrics) -> Int? {
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1)).map { Int($0) }
        }
        return nil
    }

    /// Waits until `condition` holds, `limitMs` at most; whether it did.
    static func wait(limitMs: Int = 5000, until condition: () -> Bool) -> Bool {
        var waited = 0
        while !condition() {
            guard waited < limitMs else { return false }
            usleep(5000)
            waited += 5
        }
        return true
    }

    /// Runs `body` with SIGUSR2 unblocked on this thread, so that loop threads started in it
    /// inherit a mask that lets the stop's knock through (as they inherit the main thread's in
    /// `serve`; a test runs on a pool thread that blocks it).
    static func withKnockUnblocked<T>(_ body: () -> T) -> T {
        var knock = sigset_t()
        sigemptyset(&knock)
        sigaddset(&knock, SIGUSR2)
        var saved = sigset_t()
        pthread_sigmask(SIG_UNBLOCK, &knock, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
        return body()
    }
}

/// A store that settles on an inner memory store, but first fails as told: the first
/// `failures` settlements with `error`, and every settlement of hold `poisoned` with a
/// protocol error. Records the holds it settled, in order.
final class FlakyStore: ForwardingStore, Sendable {
    let inner: MemoryStore
    private let failuresLeft: Atomic<Int>
    private let error: StoreError
    private let poisoned: String?
    private let settledIDs = Mutex<[String]>([])
    /// Settlement attempts, failed ones included.
    let attempts = Atomic<Int>(0)

    init(inner: MemoryStore, failures: Int = 0, error: StoreError = .timeout, poisoned: String? = nil) {
        self.inner = inner
        self.failuresLeft = Atomic(failures)
        self.error = error
        self.poisoned = poisoned
    }

    /// The holds settled so far, in order.
    var settled: [String] { settledIDs.withLock { $0 } }

    func settle(_ request: SettleRequest) throws(StoreError) -> SettleOutcome {
        attempts.add(1, ordering: .relaxed)
        if request.id == poisoned { throw .protocolError("a corrupt hold") }
        if failuresLeft.load(ordering: .relaxed) > 0 {
            failuresLeft.subtract(1, ordering: .relaxed)
            throw error
        }
        let outcome = try inner.settle(request)
        settledIDs.withLock { $0.append(request.id) }
        return outcome
    }

}

/// A store that settles on an inner memory store and records the size of each batch the
/// applier hands it; its first `failures` batches fail with a timeout (so lines queue up).
final class BatchCountingStore: ForwardingStore, Sendable {
    let inner: MemoryStore
    private let failuresLeft: Atomic<Int>
    private let sizes = Mutex<[Int]>([])

    init(inner: MemoryStore, failures: Int = 0) {
        self.inner = inner
        self.failuresLeft = Atomic(failures)
    }

    /// Lines settled one at a time, outside a batch.
    let singles = Atomic<Int>(0)

    /// The size of each batch call, in order (failed ones included).
    var batchSizes: [Int] { sizes.withLock { $0 } }

    func settle(_ requests: [SettleRequest]) throws(StoreError) -> [Result<SettleOutcome, StoreError>] {
        sizes.withLock { $0.append(requests.count) }
        if failuresLeft.load(ordering: .relaxed) > 0 {
            failuresLeft.subtract(1, ordering: .relaxed)
            throw .timeout
        }
        return try inner.settle(requests)
    }

    func settle(_ request: SettleRequest) throws(StoreError) -> SettleOutcome {
        singles.add(1, ordering: .relaxed)
        return try inner.settle(request)
    }

}
