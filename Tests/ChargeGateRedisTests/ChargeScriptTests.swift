import ChargeGateCore
import ChargeGateTestSupport
import Foundation
import Testing
@testable import ChargeGateRedis

/// The script as a file: compiled in whole, named by the right SHA-1, sharing the core's bounds.
@Suite struct ChargeScriptTests {
    static let luaFile = repositoryRoot().appending(path: "Sources/ChargeGateRedis/charge.lua")
    static let periodFile = repositoryRoot().appending(path: "Sources/ChargeGateRedis/period.lua")

    @Test(arguments: [
        ("", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
        (String(repeating: "a", count: 1000), "291e9a6c66994949b57ba5e650361e98fc36b1ba"),
    ])
    func sha1KnownAnswers(message: String, digest: String) {
        #expect(SHA1.hex(Array(message.utf8)) == digest)
    }

    /// The script Redis runs is the rendered layout then the two files byte for byte, period.lua
    /// first (each file ends with one newline, which the embedding drops and the join puts back).
    @Test func theEmbeddedSourceIsTheLuaFile() throws {
        let period = try String(contentsOf: Self.periodFile, encoding: .utf8)
        let charge = try String(contentsOf: Self.luaFile, encoding: .utf8)
        #expect(ChargeScript.periodSource + "\n" == period)
        #expect(ChargeScript.source + "\n" == SpendLayout.lua + "\n" + period + charge)
        #expect(ChargeScript.source.hasPrefix(SpendLayout.lua + "\n" + ChargeScript.periodSource + "\n"))
    }

    @Test func theScriptsLimitIsTheCoresExactIntegerBound() {
        #expect(ChargeScript.source.contains("local LIMIT = \(Limits.exactInteger)\n"))
    }
}

extension RedisTests {
    /// Redis names the script by the same SHA-1 the store sends with EVALSHA.
    @Suite("Script name")
    struct ScriptName {
        @Test("SCRIPT LOAD answers ChargeScript.sha1")
        func scriptLoad() throws {
            let fixture = try RedisFixture()
            #expect(try fixture.run("SCRIPT", "LOAD", ChargeScript.source).text == ChargeScript.sha1)
        }
    }
}
