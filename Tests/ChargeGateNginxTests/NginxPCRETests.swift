import ChargeGateCore
import Testing

@testable import ChargeGateNginx

/// One line of Fixtures/pcre-cases.tsv.
struct PCRECase: Sendable, CustomTestStringConvertible {
    /// The pattern, as in the configuration.
    var pattern: String
    /// `~*`.
    var caseless: Bool
    /// The request path, percent-encoded.
    var path: String
    /// Whether PCRE2 matches the decoded path.
    var matches: Bool

    /// Shown by the test runner.
    var testDescription: String { "\(caseless ? "~*" : "~") \(pattern) \(path)" }

    /// Every case of the table (the e2e tests ask a real nginx the same).
    static func all() throws -> [PCRECase] {
        try NginxFixtures.text("pcre-cases.tsv").split(separator: "\n").compactMap { line -> PCRECase? in
            guard !line.hasPrefix("#") else { return nil }
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 4 else { throw NginxParseError("bad line \(line)") }
            return PCRECase(pattern: fields[0], caseless: fields[1] == "~*", path: fields[2], matches: fields[3] == "1")
        }
    }
}

/// `NginxPCRE`: the configuration's regexes matched as nginx's PCRE2 matches them.
@Suite struct NginxPCRETests {
    /// The table's cases, each as nginx decides it (see the e2e pair).
    @Test(arguments: try PCRECase.all())
    func regexesMatchAsPCRE2Does(_ test: PCRECase) throws {
        let regex = try NginxRegex(test.pattern, caseless: test.caseless)
        #expect((regex.match(PercentDecoding.decode(test.path)) != nil) == test.matches)
    }

    /// Captures come back as text, a multi-byte character whole.
    @Test func capturesAreText() throws {
        let regex = try NginxRegex("^/(?<first>[^/]+)/(.*)$", caseless: false)
        let captures = try #require(regex.match("/é/x y"))
        #expect(captures.numbered == ["/é/x y", "é", "x y"])
        #expect(captures.named == ["first": "é"])
    }

    /// What the translation does not model is refused with the reason (UNDECIDED in a report).
    @Test(arguments: ["(?<=a)b", "\\p{L}", "(?m)^a", "(?x) a", "(*UCP)a", "a\\", "(a", "a)", "[a", "[[:nope:]]", "\\y", "(?1)"])
    func unmodelledConstructsAreRefused(_ pattern: String) {
        #expect(throws: (any Error).self) { try NginxRegex(pattern, caseless: false) }
    }
}
