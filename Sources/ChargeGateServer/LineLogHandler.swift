import ChargeGateCore
import Glibc
import Logging

/// A swift-log handler writing one line per event to standard error, as text
/// (`2026-11-21T10:00:00.123Z info denied out_of_charge pool=a subject=s:9f2c...`) or as one
/// JSON object per line. Each line goes out in a single `write(2)`, so worker threads never
/// interleave; timestamps are UTC and built by hand (no time-zone lookup per line).
public struct LineLogHandler: LogHandler {
    /// The line format.
    public enum Format: String, Sendable, CaseIterable {
        /// `TIME LEVEL message key=value ...`
        case text
        /// `{"ts":...,"level":...,"msg":...,"key":"value",...}`
        case json
    }

    /// The line format.
    public let format: Format
    /// The label (unused in lines; kept for swift-log).
    public let label: String
    /// Minimum level written.
    public var logLevel: Logger.Level
    /// Metadata added to every line of this logger.
    public var metadata: Logger.Metadata = [:]

    /// Creates a handler.
    public init(label: String, format: Format, level: Logger.Level) {
        self.label = label
        self.format = format
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { $1 } }
        let line = Self.line(format: format, time: Self.timestamp(), level: event.level, message: "\(event.message)", fields: fields)
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }

    /// One line, without its newline. Fields are sorted by name, so lines are stable.
    static func line(format: Format, time: String, level: Logger.Level, message: String, fields: Logger.Metadata) -> String {
        let names = fields.keys.sorted()
        switch format {
        case .json:
            var w = JSONWriter()
            w.beginObject()
            w.field("ts", time)
            w.field("level", level.rawValue)
            w.field("msg", message)
            for name in names { w.field(name, "\(fields[name] ?? "")") }
            w.endObject()
            return w.text
        case .text:
            var out = time + " " + level.rawValue + " " + message
            for name in names {
                let value = "\(fields[name] ?? "")"
                out +=
                    " " + name + "="
                    + (value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline }) ? Self.quoted(value) : value)
            }
            return out
        }
    }

    static func quoted(_ value: String) -> String {
        var out = ""
        JSONWriter.appendQuoted(value, to: &out)
        return out
    }

    /// Now, as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    static func timestamp() -> String {
        let nowMs = SystemClock().nowMs()
        var seconds = time_t(nowMs / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ n: Int32, _ width: Int) -> String {
            let text = String(n)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(nowMs % 1000), 3))Z"
    }
}
