import ChargeGateTestSupport
import Testing

@testable import ChargeGateServer

/// The settlement queue's backlog: first in first out, bounded (an arriving line is refused
/// when full, the queued ones keep their place), lines in the applier's hand counted until
/// finished.
@Suite struct SettleBacklogTests {
    @Test func linesComeOutInTheOrderTheyWentIn() {
        var backlog = SettleBacklog<Int>(capacity: 10)
        for n in 1...5 {
            let appended = backlog.append(n)
            #expect(appended)
        }
        let first = backlog.take(max: 2)
        #expect(first == [1, 2])
        let appended = backlog.append(6)
        #expect(appended)
        let rest = backlog.take(max: 10)
        #expect(rest == [3, 4, 5, 6])
        let none = backlog.take(max: 10)
        #expect(none == [])
    }

    @Test func aFullBacklogRefusesTheArrivingLineAndKeepsTheQueuedOnes() {
        var backlog = SettleBacklog<Int>(capacity: 3)
        let fits = [1, 2, 3].map { backlog.append($0) }
        #expect(fits == [true, true, true])
        let refused = backlog.append(4)
        #expect(!refused)
        #expect(backlog.count == 3)
        let taken = backlog.take(max: 5)
        #expect(taken == [1, 2, 3])
    }

    @Test func linesInHandCountUntilFinished() {
        var backlog = SettleBacklog<Int>(capacity: 3)
        for n in 1...3 { _ = backlog.append(n) }
        let taken = backlog.take(max: 2)
        #expect(taken == [1, 2])
        #expect(backlog.waiting == 1 && backlog.inHand == 2 && backlog.count == 3)
        // Taken but not finished: still no room.
        let refused = backlog.append(4)
        #expect(!refused)
        backlog.finish(1)
        #expect(backlog.count == 2)
        let appended = backlog.append(4)
        #expect(appended)
        backlog.finish(5)  // more than in hand: clamps at 0
        #expect(backlog.inHand == 0 && backlog.count == 2)
    }

    @Test func aCapacityBelowOneHoldsOne() {
        var backlog = SettleBacklog<Int>(capacity: 0)
        #expect(backlog.capacity == 1)
        let results = [1, 2].map { backlog.append($0) }
        #expect(results == [true, false])
    }

    /// Random appends, takes and finishes against a plain array model (the compaction of the
    /// taken front must never lose or reorder a line).
    @Test func randomOperationsMatchAPlainQueue() {
        var random = SplitMix(state: 22)
        for _ in 0..<50 {
            let capacity = Int(random.next() % 40) + 1
            var backlog = SettleBacklog<Int>(capacity: capacity)
            var model: [Int] = []
            var inHand = 0
            var next = 0
            for _ in 0..<400 {
                switch random.next() % 3 {
                case 0:
                    let fits = model.count + inHand < capacity
                    let appended = backlog.append(next)
                    #expect(appended == fits)
                    if fits { model.append(next) }
                    next += 1
                case 1:
                    let max = Int(random.next() % 8)
                    let expected = Array(model.prefix(max))
                    let taken = backlog.take(max: max)
                    #expect(taken == expected)
                    model.removeFirst(expected.count)
                    inHand += expected.count
                default:
                    let n = Int(random.next() % 4)
                    backlog.finish(n)
                    inHand = Swift.max(0, inHand - n)
                }
                #expect(backlog.waiting == model.count && backlog.inHand == inHand)
            }
        }
    }
}
