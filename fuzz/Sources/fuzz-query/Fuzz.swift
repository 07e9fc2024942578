// PercentDecoding.decode and QueryString.value on arbitrary bytes.
//
// Input: `NAME\nQUERY` (no newline: the name is "subject" and the whole input is the query).
// PercentDecoding also runs on the whole input.
import ChargeGateCore
import FuzzSupport

/// Every byte of `text` as `%XX` (upper- or lower-case hex, alternating).
func percentEncodeAll(_ text: some StringProtocol) -> String {
    let upper = Array("0123456789ABCDEF".utf8)
    let lower = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for (n, byte) in text.utf8.enumerated() {
        let digits = n % 2 == 0 ? upper : lower
        out += [UInt8(ascii: "%"), digits[Int(byte >> 4)], digits[Int(byte & 0xf)]]
    }
    return String(decoding: out, as: UTF8.self)
}

/// The first pair named `name`, found by a linear scan over bytes.
func referenceValue(of name: String, in query: String) -> String? {
    for pair in Array(query.utf8).split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
        let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
        let key = String(decoding: Reference.percentDecode(String(decoding: parts[0], as: UTF8.self), plusAsSpace: true), as: UTF8.self)
        if key == name {
            guard parts.count > 1 else { return "" }
            return String(decoding: Reference.percentDecode(String(decoding: parts[1], as: UTF8.self), plusAsSpace: true), as: UTF8.self)
        }
    }
    return nil
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzOne(data, size) { bytes in
        let text = String(decoding: bytes, as: UTF8.self)

        // PercentDecoding against the byte-wise reference, both modes.
        for plus in [false, true] {
            let decoded = PercentDecoding.decode(text, plusAsSpace: plus)
            let expected = String(decoding: Reference.percentDecode(text, plusAsSpace: plus), as: UTF8.self)
            require(
                sameBytes(decoded, expected), "PercentDecoding.decode equals the byte-wise reference",
                "decode(\(show(text)), plusAsSpace: \(plus)) = \(show(decoded)), reference \(show(expected))")
            require(sameBytes(PercentDecoding.decode(text[...], plusAsSpace: plus), decoded), "decode(Substring) == decode(String)")
            if !text.utf8.contains(UInt8(ascii: "%")) && !(plus && text.utf8.contains(UInt8(ascii: "+"))) {
                require(sameBytes(decoded, text), "decode leaves text without escapes unchanged")
            }
        }
        let encoded = percentEncodeAll(text)
        require(
            sameBytes(PercentDecoding.decode(encoded), text), "decode(%XX of every byte) gives the bytes back",
            "\(show(encoded)) decoded to \(show(PercentDecoding.decode(encoded)))")
        require(
            sameBytes(PercentDecoding.decode(encoded, plusAsSpace: true), text),
            "decode(%XX of every byte, plusAsSpace) gives the bytes back")

        // QueryString.value against a linear scan.
        let name: String
        let query: String
        if let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) {
            name = String(decoding: bytes[..<newline], as: UTF8.self)
            query = String(decoding: bytes[(newline + 1)...], as: UTF8.self)
        } else {
            name = "subject"
            query = text
        }
        let got = QueryString.value(of: name, in: query)
        let expected = referenceValue(of: name, in: query)
        require(
            got.map { Array($0.utf8) } == expected.map { Array($0.utf8) }, "QueryString.value equals a linear scan",
            "value(of: \(show(name)), in: \(show(query))) = \(got.map(show) ?? "nil"), reference \(expected.map(show) ?? "nil")")
        require(
            QueryString.value(of: name, in: query[...]).map { Array($0.utf8) } == got.map { Array($0.utf8) },
            "value(in: Substring) == value(in: String)")

        // A pair written with every byte escaped is found and decoded back exactly.
        let pair = percentEncodeAll(name) + "=" + percentEncodeAll(query)
        let found = QueryString.value(of: name, in: pair)
        require(
            found.map { sameBytes($0, query) } ?? false, "value(of: n, in: enc(n)=enc(v)) == v",
            "value(of: \(show(name)), in: \(show(pair))) = \(found.map(show) ?? "nil")")
        // Pairs with other names before it do not hide it.
        let other = name == "x" ? "y" : "x"
        let longer = "&&\(other)=1&" + pair + "&" + percentEncodeAll(name) + "=second"
        require(
            QueryString.value(of: name, in: longer).map { sameBytes($0, query) } ?? false, "the first pair with the name wins",
            "value(of: \(show(name)), in: \(show(longer)))")
    }
}
