import ChargeGateTestSupport
import Foundation
import Testing

@testable import ChargeGateCore

/// The settle body's strict reader: what it takes (the refusals are the table of
/// `ResponderSettleTests.badBodies`), and that it never takes what JSON does not allow.
@Suite struct SettleBodyTests {
    @Test(
        arguments: [
            (#"{"hold":"h1","amount":12}"#, SettleBody(hold: "h1", amount: 12)),
            (" \n{ \"hold\" : \"h1\" ,\t\"amount\" : 12 } \r\n", SettleBody(hold: "h1", amount: 12)),
            (#"{"amount":0,"hold":"h1"}"#, SettleBody(hold: "h1", amount: 0)),
            (#"{"hold":"h1","refund":true}"#, SettleBody(hold: "h1", amount: nil)),
            (#"{"refund" : true , "hold":"h1"}"#, SettleBody(hold: "h1", amount: nil)),
            (#"{"ho\u006cd":"\u0068\u0031","refund":true}"#, SettleBody(hold: "h1", amount: nil)),
            (
                #"{"hold":"0123456789abcdef0123456789ABCDEF","amount":9007199254740992}"#,
                SettleBody(hold: "0123456789abcdef0123456789ABCDEF", amount: 9_007_199_254_740_992)
            ),
            (#"{"hold":"a_b-C","amount":4503599627370496}"#, SettleBody(hold: "a_b-C", amount: 4_503_599_627_370_496)),
            (
                "{\"hold\":\"\(String(repeating: "z", count: 64))\",\"amount\":1}",
                SettleBody(hold: String(repeating: "z", count: 64), amount: 1)
            ),
        ] as [(String, SettleBody)])
    func takes(text: String, expected: SettleBody) throws {
        #expect(try SettleBody.parse(Array(text.utf8)) == expected)
    }

    @Test func stringsAreUnescapedAsJSONSays() {
        var reader = SettleBody.Reader(bytes: Array(#"{"\ud83d\ude00 \" \\ \/ \b\f\n\r\t é":"\u00e9"}"#.utf8))
        let members = reader.object()
        #expect(members?.count == 1)
        #expect(members?.first?.0 == "😀 \" \\ / \u{8}\u{C}\n\r\t é")
        #expect(members?.first?.1 == .string("é"))
        for bad in [#"{"\udc00":1}"#, #"{"\ud83d":1}"#, #"{"\ud83dx":1}"#, #"{"\ud83d\u0041":1}"#, #"{"\x":1}"#, #"{"a"#] {
            var reader = SettleBody.Reader(bytes: Array(bad.utf8))
            #expect(reader.object() == nil, "\(bad)")
        }
    }

    @Test func numbersFollowTheJSONGrammar() {
        let valid = ["0", "-0", "12", "-12", "1.5", "1e3", "1E+3", "1e-3", "0.0", "-0.5e10"]
        let invalid = ["01", "-", "1.", ".5", "1e", "1e+", "+1", "0x1", "1.5.5", "--1", "1ee3"]
        for text in valid {
            var reader = SettleBody.Reader(bytes: Array(#"{"a":\#(text)}"#.utf8))
            #expect(reader.object()?.first?.1 == .number(ArraySlice(text.utf8)), "\(text)")
        }
        for text in invalid {
            var reader = SettleBody.Reader(bytes: Array(#"{"a":\#(text)}"#.utf8))
            #expect(reader.object() == nil, "\(text)")
        }
    }

    /// Mutated bodies: never a trap, and whatever is taken is JSON that Foundation reads to the
    /// same hold and amount (so nothing outside JSON, and nothing read differently, gets in).
    @Test func mutationsAreTakenOnlyAsJSON() throws {
        var random = SplitMix(state: 0x5E77_1E)
        let seeds = [#"{"hold":"h1","amount":12}"#, #"{"hold":"h1","refund":true}"#, #"{"hold":"a-b_c","amount":0}"#]
        let alphabet = Array(#"{}[]":,\ u0123456789aehlmnortdfsE+-.\#n\#t"#.utf8) + [0x00, 0x1F, 0x7F, 0xC3, 0xA9, 0xFF]
        var taken = 0
        for _ in 0..<20_000 {
            var bytes = Array(seeds[Int.random(in: 0..<seeds.count, using: &random)].utf8)
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let at = Int.random(in: 0...bytes.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: bytes.insert(alphabet[Int.random(in: 0..<alphabet.count, using: &random)], at: at)
                case 1: if at < bytes.count { bytes.remove(at: at) }
                default: if at < bytes.count { bytes[at] = alphabet[Int.random(in: 0..<alphabet.count, using: &random)] }
                }
            }
            guard let body = try? SettleBody.parse(bytes) else { continue }
            taken += 1
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
                "taken but not JSON: \(String(decoding: bytes, as: UTF8.self))")
            #expect(object["hold"] as? String == body.hold)
            if let amount = body.amount {
                #expect((object["amount"] as? NSNumber)?.int64Value == amount)
                #expect(object.count == 2)
            } else {
                #expect(object["refund"] as? Bool == true)
            }
        }
        #expect(taken > 100)
    }
}
