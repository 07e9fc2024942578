import Logging
import Synchronization

/// The lines a `Logger` made by `logger()` wrote, for tests that read them.
final class LogCapture: Sendable {
    /// One logged line.
    struct Line: Sendable {
        let level: Logger.Level
        let message: String
    }

    private let lines = Mutex<[Line]>([])

    /// Every line so far.
    var all: [Line] { lines.withLock { $0 } }

    /// The messages logged at `level`.
    func messages(at level: Logger.Level) -> [String] {
        all.filter { $0.level == level }.map(\.message)
    }

    /// A logger writing here (nothing goes to the process's own log).
    func logger() -> Logger {
        Logger(label: "test") { _ in Handler(capture: self) }
    }

    fileprivate func append(_ line: Line) {
        lines.withLock { $0.append(line) }
    }

    private struct Handler: LogHandler {
        let capture: LogCapture
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            capture.append(Line(level: event.level, message: "\(event.message)"))
        }
    }
}
