import ChargeGateCore
import ChargeGateTestSupport
import Foundation
import Testing
@testable import ChargeGateRedis

/// The script as a file: compiled in whole, named by the right SHA-1, sharing the core's bounds.
@Suite struct ChargeScriptTests {
    static let luaFile = repositoryRoot().appending(path: "Sources/ChargeGateRedis/charge.lua")
    static let periodFile = repositoryRoot().appending(path: "Sources/ChargeGateRedis/period.lua")
    static let bucketFile = repositoryRoot().appending(path: "Sources/ChargeGateRedis/bucket.lua")
    static let settleFile = repositoryRoot().appending(path: "Sources/ChargeGateRedis/settle.lua")

    @Test(arguments: [
        ("", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
        (String(repeating: "a", count: 1000), "291e9a6c66994949b57ba5e650361e98fc36b1ba"),
    ])
    func sha1KnownAnswers(message: String, digest: String) {
        #expect(SHA1.hex(Array(message.utf8)) == digest)
    }

    /// The scripts Redis runs are each its rendered layout then the files byte for byte,
    /// period.lua and bucket.lua first (each file ends with one newline, which the embedding
    /// drops and the join puts back).
    @Test func theEmbeddedSourceIsTheLuaFile() throws {
        let period = try String(contentsOf: Self.periodFile, encoding: .utf8)
        let bucket = try String(contentsOf: Self.bucketFile, encoding: .utf8)
        let charge = try String(contentsOf: Self.luaFile, encoding: .utf8)
        let settle = try String(contentsOf: Self.settleFile, encoding: .utf8)
        #expect(ChargeScript.periodSource + "\n" == period)
        #expect(ChargeScript.bucketSource + "\n" == bucket)
        #expect(ChargeScript.source + "\n" == SpendLayout.lua + "\n" + period + bucket + charge)
        #expect(ChargeScript.source.hasPrefix(SpendLayout.lua + "\n" + ChargeScript.periodSource + "\n"))
        #expect(SettleScript.source + "\n" == SettleLayout.lua + "\n" + period + bucket + settle)
    }

    @Test func theScriptsLimitIsTheCoresExactIntegerBound() {
        #expect(ChargeScript.source.contains("local LIMIT = \(Limits.exactInteger)\n"))
        #expect(SettleScript.source.contains("local LIMIT = \(Limits.exactInteger)\n"))
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

        @Test("SCRIPT LOAD answers SettleScript.sha1")
        func settleScriptLoad() throws {
            let fixture = try RedisFixture()
            #expect(try fixture.run("SCRIPT", "LOAD", SettleScript.source).text == SettleScript.sha1)
        }
    }
}
