import Testing
@testable import ChargeGateCore

@Suite struct EncodingTests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func sha256KnownVectors(input: String, hex: String) {
        #expect(SHA256.hex(input) == hex)
    }

    @Test func sha256LongInput() {
        #expect(SHA256.hex(String(repeating: "a", count: 1_000_000)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test(arguments: [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8::1", "2001:db8::1"),
        ("user@example.com", "user@example.com"),
        ("", "_anonymous"),
        ("has space", "h:" + String(SHA256.hex("has space").prefix(32))),
        ("a\"b\nc", "h:" + String(SHA256.hex("a\"b\nc").prefix(32))),
        (String(repeating: "k", count: 65), "h:" + String(SHA256.hex(String(repeating: "k", count: 65)).prefix(32))),
        (String(repeating: "k", count: 64), String(repeating: "k", count: 64)),
        ("ключ", "h:" + String(SHA256.hex("ключ").prefix(32))),
    ])
    func subjectsBecomeSafeKeys(raw: String, key: String) {
        #expect(SafeToken.key(for: raw) == key)
    }

    @Test func jsonEscapesEverythingDangerous() {
        var w = JSONWriter()
        w.beginObject()
        w.field("s", "q\"b\\n\n<script>&'\u{01}\u{2028}é")
        w.field("n", Int64(-5))
        w.field("z", nil as Int64?)
        w.key("d")
        w.value(0.25)
        w.key("a")
        w.beginArray()
        w.value(true)
        w.value(Int64(2))
        w.endArray()
        w.endObject()
        #expect(w.text == #"{"s":"q\"b\\n\n\u003cscript\u003e\u0026\u0027\u0001\u2028é","n":-5,"z":null,"d":0.25,"a":[true,2]}"#)
    }

    @Test(arguments: [
        ("plain-id_1.2:/x y~", #""plain-id_1.2:/x y~""#),
        ("a\"", #""a\"""#), ("a\\", #""a\\""#), ("<", #""\u003c""#), (">", #""\u003e""#),
        ("&", #""\u0026""#), ("'", #""\u0027""#), ("\u{7f}", #""\u007f""#), ("\u{1f}", #""\u001f""#),
        ("\u{2029}", #""\u2029""#), ("é", "\"é\""),
    ])
    func oneCharacterDecidesTheEscaping(raw: String, quoted: String) {
        var out = ""
        JSONWriter.appendQuoted(raw, to: &out)
        #expect(out == quoted)
    }

    @Test(arguments: [0, 7, 10, 99, 1000, -1, -10, Int64.max, Int64.min])
    func decimalBytesMatchTheirWidth(value: Int64) {
        var out: [UInt8] = [0x2A]
        out.appendDecimal(value)
        #expect(out == [0x2A] + Array(String(value).utf8))
        #expect([UInt8].decimalWidth(value) == String(value).utf8.count)
    }

    @Test func csvQuotesOnlyWhenNeeded() {
        let event = UsageEvent(
            id: "1-0", time: 1, pool: "p", amount: 2,
            context: .init(subject: "s", route: "/r", method: "POST", uri: "/r/a,\"b\"", idempotencyKey: "", plan: "pro"))
        #expect(EventFormat.csv.line(event) == #"1-0,1,p,s,2,/r,POST,"/r/a,""b""",,pro,spend,,"#)
        #expect(
            EventFormat.jsonl.line(event)
                == #"{"id":"1-0","time":1,"pool":"p","subject":"s","amount":2,"route":"/r","method":"POST","uri":"/r/a,\"b\"","idempotencyKey":"","plan":"pro","kind":"spend"}"#
        )
    }

    @Test func csvQuotesACarriageReturnLineFeed() {
        // Found by fuzz-tokens: "\r\n" is one Character, so a Character test missed it.
        let event = UsageEvent(
            id: "1-0", time: 1, pool: "p", amount: 1,
            context: .init(subject: "s", route: "/r", method: "GET", uri: "/w\r\nn", idempotencyKey: "\"\u{301}"))
        #expect(EventFormat.csv.line(event) == "1-0,1,p,s,1,/r,GET,\"/w\r\nn\",\"\"\"\u{301}\",,spend,,")
    }

    @Test(arguments: [
        ("1700000000000", 1_700_000_000_000 as Int64?), ("2023-11-14T22:13:20Z", 1_700_000_000_000),
        ("2023-11-14T22:13:20.5Z", 1_700_000_000_500), ("yesterday", nil),
    ])
    func eventTimes(text: String, ms: Int64?) {
        #expect(EventFormat.parseTime(text) == ms)
    }
}
