import Foundation

/// The repository's root: the nearest folder above `file` that holds `Package.swift`, for tests
/// that read the repository's own files (docs, snippets, the Lua script).
public func repositoryRoot(from file: String = #filePath) -> URL {
    var url = URL(fileURLWithPath: file).deletingLastPathComponent()
    while url.path() != "/" {
        if FileManager.default.fileExists(atPath: url.appending(path: "Package.swift").path()) { return url }
        url = url.deletingLastPathComponent()
    }
    return url
}
