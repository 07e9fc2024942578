/// FastCGI records as nginx writes them (FastCGI 1.0): an 8-byte header (version 1, type,
/// request id, content length, padding length), the content, then zero bytes padding each
/// record to a multiple of 8. For tests that talk to a responder's socket without nginx.
public enum FastCGIRecord {
    /// FCGI_BEGIN_REQUEST.
    public static let beginRequestType: UInt8 = 1
    /// FCGI_END_REQUEST.
    public static let endRequestType: UInt8 = 3
    /// FCGI_PARAMS.
    public static let paramsType: UInt8 = 4
    /// FCGI_STDIN.
    public static let stdinType: UInt8 = 5
    /// FCGI_STDOUT.
    public static let stdoutType: UInt8 = 6
    /// FCGI_STDERR.
    public static let stderrType: UInt8 = 7
    /// FCGI_GET_VALUES (a management record: request id 0).
    public static let getValuesType: UInt8 = 9
    /// The most content one record carries here (a multiple of 8: no padding needed).
    public static let maximumContent = 32_768

    /// One record: the header, `content`, and `padding` zero bytes (by default as nginx pads:
    /// up to the next multiple of 8).
    public static func record(_ type: UInt8, requestID: UInt16 = 1, content: [UInt8] = [], padding: Int? = nil) -> [UInt8] {
        let paddingLength = padding ?? (8 - content.count % 8) % 8
        var bytes: [UInt8] = [
            1, type, UInt8(requestID >> 8), UInt8(requestID & 0xFF),
            UInt8(content.count >> 8), UInt8(content.count & 0xFF), UInt8(paddingLength), 0,
        ]
        bytes += content
        bytes += [UInt8](repeating: 0, count: paddingLength)
        return bytes
    }

    /// FCGI_BEGIN_REQUEST for `role` (1: responder), with FCGI_KEEP_CONN (flags bit 0) when
    /// `keepConnection`: nginx's `fastcgi_keep_conn on`.
    public static func begin(keepConnection: Bool, role: UInt16 = 1, requestID: UInt16 = 1) -> [UInt8] {
        let body: [UInt8] = [UInt8(role >> 8), UInt8(role & 0xFF), keepConnection ? 1 : 0, 0, 0, 0, 0, 0]
        return record(beginRequestType, requestID: requestID, content: body)
    }

    /// One name-value pair: each length in one byte below 128, else in four with the high bit
    /// set, then the name and the value.
    public static func pair(_ name: String, _ value: String) -> [UInt8] {
        let name = Array(name.utf8)
        let value = Array(value.utf8)
        return length(name.count) + length(value.count) + name + value
    }

    private static func length(_ count: Int) -> [UInt8] {
        if count < 128 { return [UInt8(count)] }
        return [UInt8(count >> 24 & 0x7F) | 0x80, UInt8(count >> 16 & 0xFF), UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)]
    }

    /// The records of one stream of `type`: `content` in records of at most `maximumContent`
    /// bytes, then the empty record that ends the stream.
    public static func stream(_ type: UInt8, _ content: [UInt8], requestID: UInt16 = 1) -> [UInt8] {
        var bytes: [UInt8] = []
        var start = 0
        while start < content.count {
            let end = min(start + maximumContent, content.count)
            bytes += record(type, requestID: requestID, content: Array(content[start..<end]))
            start = end
        }
        return bytes + record(type, requestID: requestID)
    }

    /// The PARAMS stream of `pairs` (in order), ended by the empty PARAMS record.
    public static func params(_ pairs: [(String, String)], requestID: UInt16 = 1) -> [UInt8] {
        stream(paramsType, pairs.flatMap { pair($0.0, $0.1) }, requestID: requestID)
    }

    /// A whole request as nginx writes it: BEGIN_REQUEST, the PARAMS stream, the STDIN stream
    /// (`body`, then the empty STDIN record).
    public static func request(_ pairs: [(String, String)], body: [UInt8] = [], keepConnection: Bool, requestID: UInt16 = 1) -> [UInt8] {
        begin(keepConnection: keepConnection, requestID: requestID) + params(pairs, requestID: requestID)
            + stream(stdinType, body, requestID: requestID)
    }
}
