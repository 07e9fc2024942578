/// Where the files of an `nginx -T` output begin and end. nginx prints, for each file in the
/// order it opened them (the main file, then each `include` where it stands, depth first, a
/// file once however often it is included), `# configuration file PATH:`, the file's text as it
/// is, and a newline (src/core/nginx.c, `ngx_conf_add_dump`). A file may itself contain a line
/// like that (a comment pasted from a dump), so not every such line is a separator: the split
/// taken is the one where each separator names the file nginx opens next, given the includes
/// of the text before it, and each file's text parses on its own (nginx refuses a file whose
/// braces do not balance). The nearest separator is tried first; when it leads nowhere, a later
/// one. A line like a separator left inside a file that could have been one there makes the
/// output ambiguous: an error, never a guess.
struct NginxDumpSplitter {
    /// A line `# configuration file PATH:`.
    struct Marker {
        /// Where the line starts.
        var lineStart: Int
        /// Where the text after it starts.
        var contentStart: Int
        /// Its line number in the output.
        var line: Int
        /// PATH.
        var path: String
    }

    /// An `include` of a file's text.
    private enum Include {
        /// A file nginx must open (unless already read).
        case file(String)
        /// The files of a glob (or a `geo` include, whose text file nginx skips for a `.bin`),
        /// any number of them, in byte order after `last`.
        case files(NginxGlob, last: [UInt8]?)
    }

    /// The includes of one file not yet followed.
    private struct Frame {
        var includes: [Include]
        var position = 0
    }

    /// One file taken, and the ends still to try for it.
    private struct Choice {
        /// The marker the file starts at.
        var marker: Int
        /// The includes pending before this file's own.
        var frames: [Frame]
        /// The files read so far, this one included.
        var read: Set<String>
        /// The next marker to try as this file's end (`markers.count`: the end of the output).
        var candidate: Int
    }

    /// At most this many files' texts are read to find the split, and at most this many times
    /// the output's bytes (a dump with a few lookalike lines needs a handful more than it has
    /// files, each read about once).
    static let maximumSteps = 20_000
    static let maximumRereads = 64

    let bytes: [UInt8]
    let markers: [Marker]
    /// nginx's conf prefix: the main file's directory, with its `/`.
    let prefix: String
    /// The includes of each text read, by its range (nil: it does not parse).
    private var parsed: [Range<Int>: [Include]?] = [:]
    /// The bytes read so far (texts tried).
    private var bytesRead = 0

    /// A splitter of `bytes` (an `nginx -T` output).
    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        let marker = Array("# configuration file ".utf8)
        var found: [Marker] = []
        var lineStart = 0
        var line = 1
        while lineStart < bytes.count {
            var lineEnd = lineStart
            while lineEnd < bytes.count && bytes[lineEnd] != 0x0A { lineEnd += 1 }
            var content = bytes[lineStart..<lineEnd]
            if content.last == 0x0D { content = content.dropLast() }
            if content.starts(with: marker) && content.last == UInt8(ascii: ":") && content.count > marker.count + 1 {
                let path = String(decoding: content.dropFirst(marker.count).dropLast(), as: UTF8.self)
                found.append(Marker(lineStart: lineStart, contentStart: min(lineEnd + 1, bytes.count), line: line, path: path))
            }
            lineStart = lineEnd + 1
            line += 1
        }
        markers = found
        if let main = found.first?.path, let slash = main.utf8.lastIndex(of: UInt8(ascii: "/")) {
            prefix = String(main[...slash])
        } else {
            prefix = ""
        }
    }

    /// The files: (path, range of its text), main file first.
    mutating func split() throws(NginxParseError) -> [(path: String, text: Range<Int>)] {
        guard let main = markers.first else {
            throw NginxParseError("no \"# configuration file PATH:\" line: this is not the output of nginx -T")
        }
        var stack = [Choice(marker: 0, frames: [], read: [main.path], candidate: 1)]
        var steps = 0
        while let top = stack.last {
            guard top.candidate <= markers.count else {
                stack.removeLast()
                continue
            }
            stack[stack.count - 1].candidate += 1
            steps += 1
            guard steps <= Self.maximumSteps && bytesRead / Self.maximumRereads <= max(bytes.count, 1 << 16) else {
                throw NginxParseError(
                    "cannot split the nginx -T output into its files: no split where each file parses and each separator names "
                        + "the file nginx opens next was found within the search's bounds")
            }
            let end = self.end(before: top.candidate)
            let start = markers[top.marker].contentStart
            guard end >= start, let includes = includes(of: start..<end, file: markers[top.marker].path) else { continue }
            var frames = top.frames
            frames.append(Frame(includes: includes))
            guard top.candidate < markers.count else {
                if Self.atEnd(frames, read: top.read) { return try solution(stack) }
                continue
            }
            let next = markers[top.candidate].path
            guard !top.read.contains(next), Self.accept(next, &frames, read: top.read) else { continue }
            stack.append(Choice(marker: top.candidate, frames: frames, read: top.read.union([next]), candidate: top.candidate + 1))
        }
        throw NginxParseError(
            "cannot split the nginx -T output into its files: its \"# configuration file PATH:\" lines do not follow the "
                + "includes (each file once, where it is first included)")
    }

    /// The split at every marker, for the error of a dump no split fits: the first file whose
    /// text does not parse names the line at fault.
    func naiveSplit() -> [(path: String, text: Range<Int>)] {
        markers.indices.map { index in
            (markers[index].path, markers[index].contentStart..<max(markers[index].contentStart, end(before: index + 1)))
        }
    }

    /// Where the text of a file ends when `candidate` is the next marker: before the newline
    /// nginx adds (the end of the output for `markers.count`).
    private func end(before candidate: Int) -> Int {
        if candidate < markers.count { return markers[candidate].lineStart - 1 }
        return bytes.last == 0x0A ? bytes.count - 1 : bytes.count
    }

    /// The split the choices made, unless a marker left inside a file could have been a
    /// separator there: the file's text before it parses and nginx may open the file it names
    /// next; or, when it names the file it is in, the file before may end there instead.
    private mutating func solution(_ stack: [Choice]) throws(NginxParseError) -> [(path: String, text: Range<Int>)] {
        let files = stack.map { choice in
            (path: markers[choice.marker].path, text: markers[choice.marker].contentStart..<end(before: choice.candidate - 1))
        }
        let used = Set(stack.map(\.marker))
        for (index, marker) in markers.enumerated() where !used.contains(index) {
            guard var owner = files.lastIndex(where: { $0.text.lowerBound <= marker.lineStart }) else { continue }
            if files[owner].path == marker.path {
                guard owner > 0 else { continue }
                owner -= 1
            }
            let start = files[owner].text.lowerBound
            guard marker.lineStart - 1 >= start, let before = includes(of: start..<(marker.lineStart - 1), file: files[owner].path)
            else { continue }
            var frames = stack[owner].frames + [Frame(includes: before)]
            guard !stack[owner].read.contains(marker.path), Self.accept(marker.path, &frames, read: stack[owner].read) else { continue }
            throw NginxParseError(
                "the nginx -T output is ambiguous: this line may be nginx's separator before \(marker.path) or a comment in "
                    + "\(files[owner].path) or a file after it (change the comment)",
                at: NginxSourceLocation(file: "nginx -T output", line: marker.line))
        }
        return files
    }

    /// The includes of the text in `range`, in the order nginx opens them; nil when the text
    /// does not parse.
    private mutating func includes(of range: Range<Int>, file: String) -> [Include]? {
        if let known = parsed[range] { return known }
        bytesRead += range.count
        var found: [Include]?
        if let directives = try? NginxParser.parse(Array(bytes[range]), file: file) {
            var out: [Include] = []
            collect(directives, inGeo: false, into: &out)
            found = out
        }
        parsed[range] = found
        return found
    }

    private func collect(_ directives: [NginxDirective], inGeo: Bool, into out: inout [Include]) {
        for directive in directives {
            if directive.name == "include" && directive.block == nil && directive.args.count == 1 {
                let name = directive.args[0].text
                let full = name.hasPrefix("/") ? name : prefix + name
                if NginxGlob.isPattern(full) || inGeo {
                    out.append(.files(NginxGlob(full), last: nil))
                } else {
                    out.append(.file(full))
                }
            }
            if let block = directive.block { collect(block, inGeo: inGeo || directive.name == "geo", into: &out) }
        }
    }

    /// Whether nginx may open `path` next, given the pending includes (updated: those passed
    /// over are done, a glob remembers its last file).
    private static func accept(_ path: String, _ frames: inout [Frame], read: Set<String>) -> Bool {
        let bytes = Array(path.utf8)
        while let top = frames.last {
            guard top.position < top.includes.count else {
                frames.removeLast()
                continue
            }
            let index = frames.count - 1
            switch top.includes[top.position] {
            case .file(let file):
                if read.contains(file) {
                    frames[index].position += 1
                    continue
                }
                guard file == path else { return false }
                frames[index].position += 1
                return true
            case .files(let glob, let last):
                if glob.matches(path) && (last.map { $0.lexicographicallyPrecedes(bytes) } ?? true) {
                    frames[index].includes[top.position] = .files(glob, last: bytes)
                    return true
                }
                frames[index].position += 1
            }
        }
        return false
    }

    /// Whether nginx may have opened no other file: every pending include is read or a glob.
    private static func atEnd(_ frames: [Frame], read: Set<String>) -> Bool {
        for frame in frames {
            for include in frame.includes[frame.position...] {
                if case .file(let file) = include, !read.contains(file) { return false }
            }
        }
        return true
    }
}
