import ChargeGateTestSupport
import Testing

@testable import ChargeGateFastCGI

/// `FastCGIEventLoop.arrival(in:capacity:)`: what a peek at a connection must find before the
/// loop hands the request to libfcgi (whose reads then block until the params have all come).
@Suite struct ArrivalTests {
    /// The peek buffer's size in the loop.
    static let capacity = 16 * 1024

    /// What the peek should conclude.
    enum Expected: Sendable {
        /// The params have all arrived (or fill the buffer).
        case complete
        /// Wait for more.
        case partial
    }

    /// One named peek.
    struct Case: Sendable, CustomTestStringConvertible {
        /// What the bytes are, as the test is listed.
        var name: String
        /// What the peek found waiting.
        var bytes: [UInt8]
        /// The peek buffer's size.
        var capacity: Int = ArrivalTests.capacity
        /// What the loop should conclude.
        var expected: Expected
        /// The name.
        var testDescription: String { name }
    }

    /// BEGIN_REQUEST with FCGI_KEEP_CONN.
    static let begin = FastCGIRecord.begin(keepConnection: true)
    /// The params of the request in most cases.
    static let pairs = [("REQUEST_URI", "/api/v1/thing"), ("X", "one")]
    /// The PARAMS records with content, without the empty one that ends the stream.
    static let paramsContent = FastCGIRecord.record(FastCGIRecord.paramsType, content: pairs.flatMap { FastCGIRecord.pair($0.0, $0.1) })
    /// The empty PARAMS record: the end of the params.
    static let paramsEnd = FastCGIRecord.record(FastCGIRecord.paramsType)
    /// The empty STDIN record: the end of the body.
    static let stdinEnd = FastCGIRecord.record(FastCGIRecord.stdinType)
    /// Eight bytes that read as an empty PARAMS record's header.
    static let fakeEnd: [UInt8] = [1, FastCGIRecord.paramsType, 0, 1, 0, 0, 0, 0]
    /// A PARAMS record with content whose eight padding bytes are `fakeEnd`.
    static let paddedWithFakeEnd: [UInt8] = {
        let record = FastCGIRecord.record(FastCGIRecord.paramsType, content: FastCGIRecord.pair("X", "one"), padding: 8)
        return Array(record.dropLast(8)) + fakeEnd
    }()

    /// The table.
    static let cases: [Case] = [
        Case(name: "an empty buffer", bytes: [], expected: .partial),
        Case(name: "begin, params, end of params", bytes: begin + paramsContent + paramsEnd, expected: .complete),
        Case(name: "begin, params, end of params, empty stdin", bytes: begin + paramsContent + paramsEnd + stdinEnd, expected: .complete),
        Case(
            name: "the end of params followed by a body",
            bytes: begin + paramsContent + paramsEnd + FastCGIRecord.stream(FastCGIRecord.stdinType, Array("body".utf8)),
            expected: .complete),
        Case(name: "begin only", bytes: begin, expected: .partial),
        Case(name: "params without their end", bytes: begin + paramsContent, expected: .partial),
        Case(name: "split in the middle of a params record", bytes: begin + paramsContent.prefix(13), expected: .partial),
        Case(name: "split in the middle of the begin record", bytes: Array(begin.prefix(11)), expected: .partial),
        Case(name: "split in the params record's header", bytes: begin + paramsContent.prefix(5), expected: .partial),
        Case(name: "split in the end record's header", bytes: begin + paramsContent + paramsEnd.prefix(7), expected: .partial),
        Case(
            name: "padding bytes that look like an end are skipped",
            bytes: begin + paddedWithFakeEnd, expected: .partial),
        Case(
            name: "padded records, then the end",
            bytes: begin + paddedWithFakeEnd + paramsEnd, expected: .complete),
        Case(
            name: "content that looks like an end is skipped",
            bytes: begin + FastCGIRecord.record(FastCGIRecord.paramsType, content: FastCGIRecord.pair("X", "ab") + fakeEnd),
            expected: .partial),
        Case(
            name: "a record longer than 255 bytes (two length bytes), then the end",
            bytes: begin + FastCGIRecord.params([("X", String(repeating: "v", count: 300))]), expected: .complete),
        Case(
            name: "a record longer than 255 bytes without the end",
            bytes: begin
                + FastCGIRecord.record(FastCGIRecord.paramsType, content: FastCGIRecord.pair("X", String(repeating: "v", count: 300))),
            expected: .partial),
        Case(
            name: "a management record before begin",
            bytes: FastCGIRecord.record(FastCGIRecord.getValuesType, requestID: 0, content: FastCGIRecord.pair("FCGI_MPXS_CONNS", ""))
                + begin + paramsContent + paramsEnd,
            expected: .complete),
        Case(name: "an empty stdin record is not the end of the params", bytes: begin + paramsContent + stdinEnd, expected: .partial),
        Case(
            name: "an empty record of another type is not the end",
            bytes: begin + FastCGIRecord.record(FastCGIRecord.stdoutType) + FastCGIRecord.record(FastCGIRecord.getValuesType, requestID: 0),
            expected: .partial),
        Case(
            name: "a buffer filled to capacity without the end",
            bytes: begin + paramsContent, capacity: (begin + paramsContent).count, expected: .complete),
        Case(
            name: "one byte short of capacity without the end",
            bytes: begin + paramsContent, capacity: (begin + paramsContent).count + 1, expected: .partial),
    ]

    @Test(arguments: cases)
    func arrival(_ peek: Case) {
        let found = peek.bytes.withUnsafeBytes { FastCGIEventLoop.arrival(in: $0, capacity: peek.capacity) }
        #expect(found == (peek.expected == .complete ? .complete : .partial))
    }

    /// Every prefix of a whole request: complete exactly from the end record's header on.
    @Test func everyPrefixOfARequest() {
        let request = FastCGIRecord.request([("X", "one"), ("LONG", String(repeating: "l", count: 200))], keepConnection: true)
        let end = (Self.begin + FastCGIRecord.params([("X", "one"), ("LONG", String(repeating: "l", count: 200))])).count
        for length in 0...request.count {
            let found = request.prefix(length).withUnsafeBytes { FastCGIEventLoop.arrival(in: $0, capacity: Self.capacity) }
            #expect(found == (length >= end ? .complete : .partial), "prefix of \(length) bytes (the end ends at \(end))")
        }
    }
}
