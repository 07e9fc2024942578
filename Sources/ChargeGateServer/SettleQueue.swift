import ChargeGateCore
import Glibc
import Synchronization

/// The settlement lines between the reader (which only drains the socket) and the applier
/// (which waits on the store): a bounded first-in-first-out `SettleBacklog` under a lock, and
/// a socket pair that wakes the applier when lines arrive (a byte sent on one end makes the
/// other readable; both ends never block).
///
/// When it is full, an arriving line is refused (the reader counts it `dropped` and its hold
/// stands as held: the customer pays the hold, never less); the lines already queued keep
/// their place and order.
final class SettleQueue: Sendable {
    /// The default capacity: about 10 MB of lines at most, several seconds of a busy gate's
    /// settlements while the store is away.
    static let defaultCapacity = 65_536

    private let backlog: Mutex<SettleBacklog<SettleLine>>
    /// The reader's end: a byte sent here wakes the applier (-1 when the pair could not be
    /// made: the applier then looks every `wait`).
    private let wakeSend: Int32
    /// The applier's end: readable while lines may be waiting.
    private let wake: Int32

    /// An empty queue of at most `capacity` lines.
    init(capacity: Int = SettleQueue.defaultCapacity) {
        backlog = Mutex(SettleBacklog(capacity: capacity))
        var pair: [Int32] = [-1, -1]
        let made = socketpair(
            AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair)
        (wakeSend, wake) = made == 0 ? (pair[0], pair[1]) : (-1, -1)
    }

    deinit {
        if wake >= 0 {
            close(wake)
            close(wakeSend)
        }
    }

    /// The most lines it holds.
    var capacity: Int { backlog.withLock { $0.capacity } }

    /// Lines waiting or being applied.
    var count: Int { backlog.withLock { $0.count } }

    /// Lines waiting (not taken by the applier).
    var waiting: Int { backlog.withLock { $0.waiting } }

    /// Appends `lines` in order until the queue is full; how many were queued (the rest were
    /// refused) and the length afterwards. Wakes the applier.
    /// `observe` is told the length under the queue's lock, so that two threads reporting it
    /// (the reader here, the applier in `finish`) never leave an older length last.
    func push(_ lines: [SettleLine], observe: (Int) -> Void = { _ in }) -> (queued: Int, length: Int) {
        guard !lines.isEmpty else { return (0, count) }
        let (queued, length) = backlog.withLock { backlog in
            var queued = 0
            for line in lines {
                guard backlog.append(line) else { break }
                queued += 1
            }
            observe(backlog.count)
            return (queued, backlog.count)
        }
        if queued > 0, wakeSend >= 0 {
            // A full pair (EAGAIN) already holds a wake-up: nothing is lost.
            var one: UInt8 = 1
            _ = send(wakeSend, &one, 1, Int32(MSG_DONTWAIT))
        }
        return (queued, length)
    }

    /// Up to `max` of the oldest lines, for the applier; they count until `finish`.
    func take(max: Int) -> [SettleLine] {
        backlog.withLock { $0.take(max: max) }
    }

    /// The applier is done with `n` lines it took; the length afterwards, also told to
    /// `observe` under the queue's lock (see `push`).
    @discardableResult
    func finish(_ n: Int, observe: (Int) -> Void = { _ in }) -> Int {
        backlog.withLock { backlog in
            backlog.finish(n)
            observe(backlog.count)
            return backlog.count
        }
    }

    /// Waits until lines may have arrived or `timeoutMs` passed (a signal ends it early).
    func wait(timeoutMs: Int) {
        guard wake >= 0 else {
            usleep(useconds_t(clamping: timeoutMs * 1000))
            return
        }
        if backlog.withLock({ $0.waiting > 0 }) { return }
        var entry = pollfd(fd: wake, events: Int16(POLLIN), revents: 0)
        if poll(&entry, 1, Int32(clamping: timeoutMs)) > 0 {
            var byte: UInt8 = 0
            while recv(wake, &byte, 1, Int32(MSG_DONTWAIT)) > 0 {}
        }
    }
}
