/// The settlement lines waiting for the store, first in first out, at most `capacity` of them
/// (`SettleQueue` keeps one under its lock). A line taken by the applier still counts until it
/// is finished, so that `count` is every line received and not yet settled (or given up).
struct SettleBacklog<Element> {
    /// The most lines held, waiting and in hand together.
    let capacity: Int
    private var items: [Element] = []
    private var head = 0
    /// Lines the applier took and has not finished yet.
    private(set) var inHand = 0

    /// An empty backlog holding at most `capacity` lines (at least 1).
    init(capacity: Int) {
        self.capacity = Swift.max(1, capacity)
    }

    /// Lines waiting to be taken.
    var waiting: Int { items.count - head }

    /// Lines waiting or in hand: the queue's length as `/metrics` shows it.
    var count: Int { waiting + inHand }

    /// Appends `element`; false (and nothing appended) when the backlog is full.
    mutating func append(_ element: Element) -> Bool {
        guard count < capacity else { return false }
        items.append(element)
        return true
    }

    /// Takes up to `max` of the oldest lines, in order; they stay counted until `finish`.
    mutating func take(max: Int) -> [Element] {
        let n = Swift.min(Swift.max(0, max), waiting)
        guard n > 0 else { return [] }
        let taken = Array(items[head..<(head + n)])
        head += n
        inHand += n
        // The array is compacted once its taken front is the larger half: amortised O(1).
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head > items.count / 2 {
            items.removeFirst(head)
            head = 0
        }
        return taken
    }

    /// The applier is done with `n` lines it took (settled, or given up).
    mutating func finish(_ n: Int) {
        inHand = Swift.max(0, inHand - Swift.max(0, n))
    }
}
