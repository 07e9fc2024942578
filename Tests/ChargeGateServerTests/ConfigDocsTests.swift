import ChargeGateServer
import ChargeGateTestSupport
import Foundation
import Testing

/// docs/config.md's promises about SIGHUP, checked against the one list the reload applies
/// (`RestartOnlyKey.all`).
@Suite struct ConfigDocsTests {
    /// docs/config.md.
    static func configDoc() throws -> String {
        try String(contentsOf: repositoryRoot().appending(path: "docs/config.md"), encoding: .utf8)
    }

    /// The "Top-level keys" table: each key with its "on SIGHUP" cell.
    static func topLevelKeys(_ doc: String) throws -> [(key: String, onSIGHUP: String)] {
        let section = try #require(doc.components(separatedBy: "## Top-level keys").dropFirst().first)
        let body = try #require(section.components(separatedBy: "\n## ").first)
        let rows = body.split(separator: "\n").map(String.init).filter { $0.hasPrefix("| `") }
        return try rows.map { row in
            let cells = row.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            // "| `key` | ... | on SIGHUP |": the first cell is empty, so is the one after the last bar.
            let key = cells[1].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
            let last = try #require(cells.dropLast().last)
            return (key, last)
        }
    }

    @Test func theKeyTablesSIGHUPColumnMatchesTheRestartOnlyKeys() throws {
        let rows = try Self.topLevelKeys(Self.configDoc())
        #expect(rows.count >= 20, "the table was not found where expected")
        for row in rows {
            #expect(["restart", "reloaded", "restart (not re-read, no warning)"].contains(row.onSIGHUP), "\(row.key): \(row.onSIGHUP)")
        }
        let documented = rows.filter { $0.onSIGHUP.hasPrefix("restart") }.map(\.key)
        #expect(documented == RestartOnlyKey.all.map(\.name))
        let silent = rows.filter { $0.onSIGHUP == "restart (not re-read, no warning)" }.map(\.key)
        #expect(silent == RestartOnlyKey.all.filter { !$0.warns }.map(\.name))
    }

    @Test func theReloadingSectionListsTheKeysThatWarn() throws {
        let doc = try Self.configDoc()
        let list = try #require(doc.components(separatedBy: "These need a restart:").dropFirst().first)
        // The first bullet, up to its colon: the keys whose change logs the warning.
        let bullet = try #require(list.components(separatedBy: ": a reload that changes").first)
        let named = bullet.split(separator: "`", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map {
            String($0.element)
        }
        #expect(named == RestartOnlyKey.all.filter(\.warns).map(\.name))
    }
}
