import Foundation
import Yams

/// The strict YAML config loader: reads the file into a `GateConfig`, or reports every
/// mistake in it with its line and key path.
public enum ConfigLoader {
    /// Parses config text. `file` is only used to label errors.
    public static func parse(_ yaml: String, file: String) -> Result<GateConfig, ConfigErrors> {
        let root: Node?
        let renamedKeys: [String]
        switch compose(yaml, file: file) {
        case .failure(let error):
            return .failure(ConfigErrors(errors: [error]))
        case .success(let composed):
            (root, renamedKeys) = composed
        }
        guard let root, !Reader.isNull(root) else {
            return .failure(
                ConfigErrors(errors: [
                    ConfigError(file: file, line: 1, message: "the file is empty: expected a mapping of config keys")
                ]))
        }
        var reader = Reader(file: file, renamedKeys: renamedKeys)
        let config = reader.readRoot(root)
        if let config, reader.errors.isEmpty { return .success(config) }
        var errors = reader.errors
        if errors.isEmpty {
            errors = [ConfigError(file: file, line: 1, message: "the config could not be read")]
        }
        // Stable: errors on one line keep the order they were found in.
        let sorted = errors.enumerated().sorted { ($0.element.line, $0.offset) < ($1.element.line, $1.offset) }
        return .failure(ConfigErrors(errors: sorted.map(\.element)))
    }

    /// Reads and parses the file at `path`. An unreadable file gives one error at line 0.
    public static func load(path: String) -> Result<GateConfig, ConfigErrors> {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            return .failure(
                ConfigErrors(errors: [
                    ConfigError(file: path, line: 0, message: "cannot read file: \(readFailureReason(error))")
                ]))
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            return .failure(
                ConfigErrors(errors: [
                    ConfigError(file: path, line: firstInvalidUTF8Line(data), message: "the file is not valid UTF-8 text")
                ]))
        }
        return parse(text, file: path)
    }

    // MARK: - Composing

    /// The prefix of a key the duplicate-key pass renamed; the number after it indexes
    /// `renamedKeys`.
    static let renamedKeyMarker = "__chargegate_renamed_"

    /// Composes the YAML tree. Yams refuses a mapping with a duplicate key, and so would stop
    /// at the first one: each time it does, the first occurrence of the key is renamed in the
    /// text (a marker is put in front of it) and the text composed again, so that the reader
    /// sees both occurrences, with their lines, and reports every duplicate.
    private static func compose(_ yaml: String, file: String) -> Result<(Node?, [String]), ConfigError> {
        // libyaml skips a byte order mark anyway; without it, columns are plain to count.
        var text = yaml.unicodeScalars.first == "\u{FEFF}" ? String(yaml.unicodeScalars.dropFirst()) : yaml
        var renamed: [String] = []
        var insertedLine: Int?
        while true {
            do {
                return .success((try Yams.compose(yaml: text), renamed))
            } catch let error as YamlError {
                if case .duplicatedKeysInMapping(let duplicates, let context) = error, let key = duplicates.first {
                    let fallback = ConfigError(
                        file: file, line: context.mark.line, message: "duplicate key '\(Reader.sanitize(key))'")
                    guard renamed.count < 10_000,
                        let next = insert(
                            "\(renamedKeyMarker)\(renamed.count)__", in: text,
                            line: context.mark.line, column: context.mark.column)
                    else { return .failure(fallback) }
                    text = next
                    renamed.append(key)
                    insertedLine = context.mark.line
                    continue
                }
                let syntax = syntaxError(error, text: text, file: file)
                if let insertedLine, syntax.line == insertedLine, let key = renamed.last {
                    // Renaming broke the text (an odd quoted key): report just the duplicate.
                    return .failure(ConfigError(file: file, line: insertedLine, message: "duplicate key '\(Reader.sanitize(key))'"))
                }
                return .failure(syntax)
            } catch {
                return .failure(ConfigError(file: file, line: 1, message: "invalid YAML: \(error)"))
            }
        }
    }

    /// `text` with `marker` inserted at a libyaml position (1-based line and column, columns
    /// counted in unicode scalars); nil when the position is not the start of a key.
    private static func insert(_ marker: String, in text: String, line: Int, column: Int) -> String? {
        let scalars = Array(text.unicodeScalars)
        var currentLine = 1
        var currentColumn = 1
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            if currentLine == line && currentColumn == column {
                guard !scalar.properties.isWhitespace else { return nil }
                var result = String.UnicodeScalarView()
                result.append(contentsOf: scalars[..<index])
                result.append(contentsOf: marker.unicodeScalars)
                result.append(contentsOf: scalars[index...])
                return String(result)
            }
            if scalar == "\r", index + 1 < scalars.count, scalars[index + 1] == "\n" {
                index += 2
                currentLine += 1
                currentColumn = 1
                continue
            }
            if isLineBreak(scalar) {
                currentLine += 1
                currentColumn = 1
            } else {
                currentColumn += 1
            }
            index += 1
        }
        return nil
    }

    /// The line breaks libyaml counts.
    private static func isLineBreak(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "\n", "\r", "\u{85}", "\u{2028}", "\u{2029}": return true
        default: return false
        }
    }

    /// A YAML syntax error as one config error, at the line Yams reports.
    private static func syntaxError(_ error: YamlError, text: String, file: String) -> ConfigError {
        switch error {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            if problem == "but found another document" {
                return ConfigError(
                    file: file, line: mark.line,
                    message: "invalid YAML: a second document ('---'); a config file holds exactly one")
            }
            var message = "invalid YAML: \(problem)"
            if let context { message += " (\(context.text) at line \(context.mark.line))" }
            return ConfigError(file: file, line: mark.line, message: message)
        case .reader(let problem, let offset, _, _):
            var line = 1
            if let offset {
                line += text.prefix(offset).reduce(0) { $0 + ($1.isNewline ? 1 : 0) }
            }
            return ConfigError(file: file, line: line, message: "invalid YAML: \(problem)")
        default:
            return ConfigError(file: file, line: 1, message: "invalid YAML: \(error)")
        }
    }

    /// The operating system's words for why a file could not be read (`No such file or
    /// directory`), rather than Foundation's sentence around them.
    private static func readFailureReason(_ error: any Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(truncatingIfNeeded: underlying.code)))
        }
        if let cocoa = error as? CocoaError {
            switch cocoa.code {
            case .fileReadNoSuchFile, .fileNoSuchFile: return "No such file or directory"
            case .fileReadNoPermission: return "Permission denied"
            default: break
            }
        }
        return error.localizedDescription
    }

    /// The 1-based line of the first byte that is not valid UTF-8.
    private static func firstInvalidUTF8Line(_ data: Data) -> Int {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = data.makeIterator()
        var line = 1
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                if encoded.count == 1 && encoded.first == UInt8(ascii: "\n") { line += 1 }
            case .emptyInput, .error:
                return line
            }
        }
    }
}
