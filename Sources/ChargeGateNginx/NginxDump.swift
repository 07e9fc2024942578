/// The output of `nginx -T`: every configuration file nginx read, each after a line
/// `# configuration file PATH:` (src/core/nginx.c), in the order nginx first opened them, so the
/// first is the main file. Each file's text is followed by one newline that nginx adds. Text
/// before the first such line (nginx's "syntax is ok" lines, when stderr went to the same file)
/// is ignored.
public struct NginxDump: Sendable {
    /// One file of the dump.
    public struct File: Sendable, Equatable {
        /// Its path, as nginx printed it (absolute: nginx resolves includes before reading).
        public var path: String
        /// Its text.
        public var bytes: [UInt8]

        /// Creates a file.
        public init(path: String, bytes: [UInt8]) {
            self.path = path
            self.bytes = bytes
        }
    }

    /// The files, main file first; a path that appears twice keeps its first text.
    public var files: [File]

    /// Creates a dump from files (for tests: the main file first).
    public init(files: [File]) {
        self.files = files
    }

    /// Splits `nginx -T` output into its files.
    public init(parsing bytes: [UInt8]) throws(NginxParseError) {
        let marker = Array("# configuration file ".utf8)
        var files: [File] = []
        var seen = Set<String>()
        var current: (path: String, start: Int)?
        var lineStart = 0

        func close(at end: Int) {
            guard let open = current else { return }
            var text = Array(bytes[open.start..<end])
            if text.last == 0x0A { text.removeLast() }
            if seen.insert(open.path).inserted { files.append(File(path: open.path, bytes: text)) }
        }

        while lineStart < bytes.count {
            var lineEnd = lineStart
            while lineEnd < bytes.count && bytes[lineEnd] != 0x0A { lineEnd += 1 }
            var content = bytes[lineStart..<lineEnd]
            if content.last == 0x0D { content = content.dropLast() }
            if content.starts(with: marker) && content.last == UInt8(ascii: ":") && content.count > marker.count + 1 {
                close(at: lineStart)
                let path = String(decoding: content.dropFirst(marker.count).dropLast(), as: UTF8.self)
                current = (path, min(lineEnd + 1, bytes.count))
            }
            lineStart = lineEnd + 1
        }
        close(at: bytes.count)
        guard !files.isEmpty else {
            throw NginxParseError("no \"# configuration file PATH:\" line: this is not the output of nginx -T")
        }
        self.files = files
    }

    /// The text of the file at `path`, if the dump has it.
    public func file(_ path: String) -> File? {
        files.first { $0.path == path }
    }
}
