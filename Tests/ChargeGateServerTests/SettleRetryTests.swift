import ChargeGateCore
import Testing

@testable import ChargeGateServer

/// What the applier does after a store error: the same line again after a pause that doubles
/// up to a cap, for as long as the store is away; a line that keeps failing with a protocol
/// error is given up after a few attempts (it must not stall the lines behind it).
@Suite struct SettleRetryTests {
    @Test func thePauseDoublesUpToTheCap() {
        let retry = SettleRetry()
        #expect((1...8).map { retry.delayMs(attempts: $0) } == [50, 100, 200, 400, 800, 1600, 2000, 2000])
        #expect(retry.delayMs(attempts: 1_000_000) == 2000)
        #expect(retry.delayMs(attempts: 0) == 50)
    }

    @Test func anUnavailableOrSlowStoreIsWaitedForWithoutEnd() {
        let retry = SettleRetry()
        for attempts in [1, 3, 10, 10_000] {
            #expect(retry.step(after: .unavailable("down"), attempts: attempts) == .retry(afterMs: retry.delayMs(attempts: attempts)))
            #expect(retry.step(after: .timeout, attempts: attempts) == .retry(afterMs: retry.delayMs(attempts: attempts)))
        }
    }

    @Test func aProtocolErrorGivesTheLineUpAfterThreeAttempts() {
        let retry = SettleRetry()
        #expect(retry.step(after: .protocolError("x"), attempts: 1) == .retry(afterMs: 50))
        #expect(retry.step(after: .protocolError("x"), attempts: 2) == .retry(afterMs: 100))
        #expect(retry.step(after: .protocolError("x"), attempts: 3) == .giveUp)
    }
}
