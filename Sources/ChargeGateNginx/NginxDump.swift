/// The output of `nginx -T`: every configuration file nginx read, each after a line
/// `# configuration file PATH:` (src/core/nginx.c), in the order nginx first opened them, so the
/// first is the main file. Each file's text is followed by one newline that nginx adds. Text
/// before the first such line (nginx's "syntax is ok" lines, when stderr went to the same file)
/// is ignored; such a line inside a file (a comment) is not taken for a separator where nginx
/// could not have opened the file it names (`NginxDumpSplitter`).
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

    /// The files, main file first, each once.
    public var files: [File]

    /// Creates a dump from files (for tests: the main file first).
    public init(files: [File]) {
        self.files = files
    }

    /// Splits `nginx -T` output into its files (`NginxDumpSplitter`: a line like nginx's
    /// separator inside a file stays in the file).
    public init(parsing bytes: [UInt8]) throws(NginxParseError) {
        var splitter = NginxDumpSplitter(bytes)
        do {
            files = try splitter.split().map { File(path: $0.path, bytes: Array(bytes[$0.text])) }
        } catch {
            // No split fits: most likely a file that does not parse; name its line if so.
            for file in splitter.naiveSplit() { _ = try NginxParser.parse(Array(bytes[file.text]), file: file.path) }
            throw error
        }
    }

    /// The text of the file at `path`, if the dump has it.
    public func file(_ path: String) -> File? {
        files.first { $0.path == path }
    }
}
