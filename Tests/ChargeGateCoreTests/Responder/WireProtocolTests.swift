import ChargeGateTestSupport
import Foundation
import Testing
@testable import ChargeGateCore

/// docs/protocol.md and the shipped snippets name exactly the wire contract's constants: a
/// param, role or header added to the code and not to the doc (or the reverse) fails here.
@Suite struct WireProtocolTests {
    static let root = repositoryRoot()

    /// The backticked first cell of every table row under the `## heading` section.
    static func firstColumn(of heading: String, in doc: String) -> [String] {
        var inSection = false
        var names: [String] = []
        for line in doc.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("## ") {
                inSection = line == "## " + heading
                continue
            }
            guard inSection, line.hasPrefix("| `") else { continue }
            let cell = line.dropFirst(3)
            if let end = cell.firstIndex(of: "`") { names.append(String(cell[..<end])) }
        }
        return names
    }

    static func doc() throws -> String {
        try String(contentsOf: root.appending(path: "docs/protocol.md"), encoding: .utf8)
    }

    @Test func theDocListsEveryParamAndNoOther() throws {
        let listed = Self.firstColumn(of: "Params", in: try Self.doc())
        #expect(listed.count == Set(listed).count, "a param is listed twice")
        #expect(Set(listed) == Set(WireProtocol.Param.all))
    }

    @Test func theDocListsEveryRoleAndNoOther() throws {
        let listed = Self.firstColumn(of: "Roles", in: try Self.doc())
        #expect(listed == WireProtocol.Role.allCases.map(\.rawValue))
    }

    @Test func theDocListsEveryHeaderAndNoOther() throws {
        let listed = Self.firstColumn(of: "Headers", in: try Self.doc())
        #expect(listed == WireProtocol.Header.all)
    }

    @Test func theSnippetsSendOnlyParamsOfTheContractAndEveryOneTheyShould() throws {
        let directory = Self.root.appending(path: "nginx")
        var sent: Set<String> = []
        var roles: Set<String> = []
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path()) where name.hasSuffix(".conf") {
            let text = try String(contentsOf: directory.appending(path: name), encoding: .utf8)
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ", omittingEmptySubsequences: true)
                guard words.count >= 3, words[0] == "fastcgi_param" else { continue }
                sent.insert(String(words[1]))
                if words[1] == Substring(WireProtocol.Param.role) { roles.insert(String(words[2].dropLast())) }
            }
        }
        #expect(sent.isSubset(of: Set(WireProtocol.Param.all)), "sent but not in the contract: \(sent.subtracting(WireProtocol.Param.all))")
        // Every param but the client's own headers (HTTP_*) comes from a fastcgi_param line.
        #expect(Set(WireProtocol.Param.all.filter { !$0.hasPrefix("HTTP_") }) == sent)
        #expect(roles == Set(WireProtocol.Role.allCases.map(\.rawValue)))
    }
}
