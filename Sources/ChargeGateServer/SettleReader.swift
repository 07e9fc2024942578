import ChargeGateCore
import Glibc
import Logging

/// The loop that drains the settlement socket: each datagram parsed (`SettleLine`), counted
/// (`settle_lines_total`) and queued; it never waits on the store, so that the kernel's short
/// queue of datagrams (`net.unix.max_dgram_qlen`) empties as fast as nginx fills it. A round
/// first takes every datagram waiting into one buffer (a `recv` each, nothing else), then
/// parses them: the kernel's queue is emptied before the parsing starts.
///
/// When the process stops (`SettleTransport.closing`): a socket the responder bound is read
/// until it has been quiet for 100 ms (1 s at most: the lines of the last responses), then its
/// path removed; a socket systemd handed over is left at once, its lines waiting there for the
/// next start.
struct SettleReader: BackgroundLoop {
    let transport: SettleTransport
    let metrics: GateMetrics
    let logger: Logger

    /// Names the loop in log lines.
    var name: String { "settlement reader" }
    /// Rounds wait on the socket themselves.
    var intervalMs: Int { 0 }

    /// Datagrams read in one round at most before the stop flag is looked at again.
    static let roundLimit = 4096
    /// The round's buffer: room for about 4,000 lines of 120 bytes; a round ends when less
    /// than one datagram of `SettleLine.maxBytes` still fits.
    static let bufferBytes = 512 * 1024
    /// How long a round waits for a datagram.
    static let pollMs = 200
    /// Quiet time that ends the reading at a stop, and the most the reading goes on.
    static let quietMs = 100
    static let drainLimitMs = 1000

    /// The reader's own buffer and bookkeeping.
    struct State {
        /// The round's datagrams, one after the other.
        var buffer = [UInt8](repeating: 0, count: SettleReader.bufferBytes)
        /// Where each datagram of the round starts in `buffer`, and its length.
        var datagrams: [(start: Int, length: Int)] = []
        /// When the stop began (monotonic ms), once it has.
        var closingSince: Int64?
        /// Lines refused because the queue was full, since the last warning.
        var droppedUnreported = 0
        /// When the last drop warning was logged (monotonic ms).
        var lastDropWarning: Int64 = 0
        /// When the last receive error was logged (monotonic ms).
        var lastErrorLog: Int64 = 0
    }

    /// A fresh buffer.
    func makeThreadState() -> State { State() }

    /// Waits for datagrams, then reads every one waiting (up to `roundLimit`).
    func round(_ state: inout State) {
        if transport.readerDone.load(ordering: .acquiring) {
            usleep(100_000)  // nothing left to do until the loop is stopped (a knock ends it)
            return
        }
        if transport.closing.load(ordering: .acquiring) {
            let now = Self.monotonicMs()
            if state.closingSince == nil { state.closingSince = now }
            let since = state.closingSince ?? now
            // An inherited socket keeps its lines for the next start; ours is read out.
            if transport.socket.inherited || now - since >= Self.drainLimitMs || !transport.socket.waitReadable(timeoutMs: Self.quietMs) {
                finishReading()
                return
            }
        } else if !transport.socket.waitReadable(timeoutMs: Self.pollMs) {
            return
        }
        readWaiting(&state)
        if transport.readerLingerUs > 0 && !transport.closing.load(ordering: .acquiring) {
            usleep(transport.readerLingerUs)  // the next lines gather meanwhile (SettleTransport.readerLingerUs)
        }
    }

    /// Reads every datagram waiting (`roundLimit` at most, as many as the buffer holds), then
    /// parses and queues them.
    func readWaiting(_ state: inout State) {
        var refused: [GateMetrics.SettleLineResult: Int] = [:]
        var failure: Int32?
        var datagrams = state.datagrams
        datagrams.removeAll(keepingCapacity: true)
        let room = SettleLine.maxBytes + 1
        state.buffer.withUnsafeMutableBytes { buffer in
            var offset = 0
            while datagrams.count < Self.roundLimit && buffer.count - offset >= room {
                switch transport.socket.receive(into: UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<(offset + room)])) {
                case .empty:
                    return
                case .failed(let code):
                    failure = code
                    return
                case .datagram(let length):
                    guard length < room else {
                        refused[.tooLong, default: 0] += 1
                        continue
                    }
                    datagrams.append((offset, length))
                    offset += length
                }
            }
        }
        var lines: [SettleLine] = []
        lines.reserveCapacity(datagrams.count)
        state.buffer.withUnsafeBytes { buffer in
            for (start, length) in datagrams {
                do throws(SettleLine.Rejection) {
                    lines.append(try SettleLine(parsing: UnsafeRawBufferPointer(rebasing: buffer[start..<(start + length)])))
                } catch {
                    refused[GateMetrics.SettleLineResult(error), default: 0] += 1
                }
            }
        }
        state.datagrams = datagrams
        for (result, n) in refused { metrics.settleLines(result, count: n) }
        if !lines.isEmpty {
            let (queued, _) = transport.queue.push(lines) { metrics.settleQueue(length: $0) }
            metrics.settleLines(.accepted, count: queued)
            if queued < lines.count { dropped(lines.count - queued, &state) }
        }
        if let failure {
            let now = Self.monotonicMs()
            if now - state.lastErrorLog >= 10_000 {
                state.lastErrorLog = now
                logger.error("settlement: cannot read the socket: \(String(cString: strerror(failure)))")
            }
            usleep(100_000)  // an error that repeats must not spin
        }
    }

    /// Counts `n` lines refused by a full queue; warns at most every 10 s with the number.
    private func dropped(_ n: Int, _ state: inout State) {
        metrics.settleLines(.dropped, count: n)
        state.droppedUnreported += n
        let now = Self.monotonicMs()
        if now - state.lastDropWarning >= 10_000 {
            logger.warning(
                "settlement: the queue is full (\(transport.queue.capacity) lines: the store is not keeping up); dropped \(state.droppedUnreported) lines, whose holds stand as held"
            )
            state.lastDropWarning = now
            state.droppedUnreported = 0
        }
    }

    /// Stops reading for good: a socket the responder bound loses its path.
    private func finishReading() {
        transport.socket.unlinkBoundPath()
        transport.readerDone.store(true, ordering: .releasing)
    }

    static func monotonicMs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}
