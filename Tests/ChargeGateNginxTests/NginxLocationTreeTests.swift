import ChargeGateTestSupport
import Testing

@testable import ChargeGateNginx

/// nginx's static location tree, ported, against the plain rule it implements: an exact
/// location of the URI; else a prefix location of the URI itself; else the auto redirect of a
/// proxying location named URI + `/`; else the longest prefix. (`ngx_filename_cmp` sorting `/` lowest is what makes the tree agree with
/// the rule: with plain byte order `/dir-x` would hide `/dir/` from `/dir`.)
@Suite struct NginxLocationTreeTests {
    /// The plain rule.
    static func reference(_ entries: [NginxLocationTree.Entry], _ uri: [UInt8]) -> NginxLocationTree.Result {
        if let exact = entries.first(where: { $0.exact && $0.name == uri }) { return .exact(exact.id) }
        if let same = entries.first(where: { !$0.exact && $0.name == uri }) { return .prefix(same.id) }
        let redirect = entries.filter { $0.name == uri + [UInt8(ascii: "/")] }
        if redirect.contains(where: \.autoRedirect), let entry = redirect.first(where: \.exact) ?? redirect.first {
            return .autoRedirect(entry.id)
        }
        let prefixes = entries.filter { !$0.exact && uri.starts(with: $0.name) }
        guard let longest = prefixes.max(by: { $0.name.count < $1.name.count }) else { return .none }
        return .prefix(longest.id)
    }

    /// Random levels (400 × 30 URIs over `/ab-.`): the tree finds what the rule says.
    @Test func theTreeAgreesWithTheRule() {
        var random = SplitMix(state: 12)
        let alphabet = Array("/ab-.".utf8)
        func word(_ length: Int) -> [UInt8] {
            [UInt8(ascii: "/")] + (0..<length).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }
        }
        for _ in 0..<400 {
            var entries: [NginxLocationTree.Entry] = []
            var seen = Set<[UInt8]>()
            for id in 0..<Int(random.next() % 14) {
                let name = word(Int(random.next() % 5))
                let exact = random.next() % 4 == 0
                guard seen.insert(name + [exact ? 1 : 0]).inserted else { continue }
                entries.append(
                    NginxLocationTree.Entry(
                        name: name, exact: exact, noRegex: false, autoRedirect: name.last == UInt8(ascii: "/") && random.next() % 2 == 0,
                        id: id
                    ))
            }
            let tree = NginxLocationTree(entries)
            for _ in 0..<30 {
                let uri = word(Int(random.next() % 6))
                let found = tree.find(uri).result
                let expected = Self.reference(entries, uri)
                #expect(
                    found == expected,
                    "\(entries.map { ($0.exact ? "=" : "") + String(decoding: $0.name, as: UTF8.self) }) \(String(decoding: uri, as: UTF8.self))"
                )
                if found != expected { return }
            }
        }
    }

    /// `ngx_filename_cmp`: `/` below every byte, a shorter prefix first.
    @Test(arguments: [
        ("/dir-x", "/dir/", 1),
        ("/dir/", "/dir-x", -1),
        ("/a", "/a/", -1),
        ("/a/", "/a", 1),
        ("/b", "/b", 0),
    ])
    func slashSortsBelowEveryOtherByte(a: String, b: String, sign: Int) {
        let order = NginxLocationTree.filenameCompare(Array(a.utf8)[...], Array(b.utf8)[...], count: min(a.utf8.count, b.utf8.count) + 1)
        #expect(order.signum() == sign)
    }
}
