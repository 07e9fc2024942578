// URIPath.normalize, URIPath.fromRequestURI and Router.match on arbitrary bytes.
//
// Input: the whole input is a path (decoded as UTF-8, invalid bytes as U+FFFD). Its first byte
// also picks an HTTP method for the router check, which then routes the rest of the input.
import ChargeGateCore
import FuzzSupport

/// A fixed route table (prefixes already normalised, as the config loader leaves them):
/// nested prefixes, the same prefix with different methods, a non-ASCII segment.
let routes: [RouteConfig] = [
    RouteConfig(prefix: "/api", charges: [.init(poolIndex: 0, cost: 1)], methods: ["GET"]),
    RouteConfig(prefix: "/api/generate", charges: [.init(poolIndex: 0, cost: 1)], methods: ["POST"]),
    RouteConfig(prefix: "/api/generate", charges: [.init(poolIndex: 0, cost: 2)], methods: ["GET", "PUT"]),
    RouteConfig(prefix: "/api/generate", charges: [.init(poolIndex: 0, cost: 3)]),
    RouteConfig(prefix: "/api/generate/hd", charges: [.init(poolIndex: 0, cost: 4)], methods: ["POST"]),
    RouteConfig(prefix: "/api/paid", charges: [.init(poolIndex: 0, cost: 1)]),
    RouteConfig(prefix: "/caf\u{e9}/menu", charges: [.init(poolIndex: 0, cost: 1)]),
    RouteConfig(prefix: "/x.y/.z/..a", charges: [.init(poolIndex: 0, cost: 1)]),
    RouteConfig(prefix: "/a/b/c/d", charges: [.init(poolIndex: 0, cost: 1)], methods: ["DELETE"]),
    RouteConfig(prefix: "/", charges: [.init(poolIndex: 0, cost: 1)], methods: ["OPTIONS"]),
]
let router = Router(routes: routes)
let methods = ["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "get", ""]

func checkNormalized(_ result: String, of input: String, _ what: StaticString) {
    let bytes = Array(result.utf8)
    require(bytes.first == UInt8(ascii: "/"), what, "result \(show(result)) does not start with '/'")
    for i in bytes.indices.dropLast() where bytes[i] == UInt8(ascii: "/") && bytes[i + 1] == UInt8(ascii: "/") {
        invariantFailed(what, "result \(show(result)) of \(show(input)) contains '//'")
    }
    for segment in Reference.segments(result) where segment == [0x2e] || segment == [0x2e, 0x2e] {
        invariantFailed(what, "result \(show(result)) of \(show(input)) keeps a '.' or '..' segment")
    }
}

func checkRouter(_ path: String, method: String) {
    let got = router.match(path: path, method: method)
    let expected = Reference.match(routes, path: path, method: method)
    require(
        got == expected, "Router.match agrees with a linear scan over the routes",
        "path \(show(path)) method \(method): router \(got.map(String.init) ?? "nil"), linear scan \(expected.map(String.init) ?? "nil")")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzOne(data, size) { bytes in
        let text = String(decoding: bytes, as: UTF8.self)

        let normalized = URIPath.normalize(text)
        checkNormalized(normalized, of: text, "normalize: starts with '/', no '//', no '.' or '..' segment")
        require(
            sameBytes(URIPath.normalize(normalized), normalized), "normalize is idempotent",
            "normalize(\(show(text))) = \(show(normalized)), normalize of that = \(show(URIPath.normalize(normalized)))")
        require(
            normalized.utf8.elementsEqual(Reference.normalize(text)), "normalize splits at every '/' byte, as nginx does",
            "normalize(\(show(text))) = \(show(normalized)), byte-wise reference = \(show(String(decoding: Reference.normalize(text), as: UTF8.self)))"
        )
        // The substring overload must agree with the string one.
        require(sameBytes(URIPath.normalize(text[...]), normalized), "normalize(Substring) == normalize(String)")

        let fromURI = URIPath.fromRequestURI(text)
        checkNormalized(fromURI, of: text, "fromRequestURI: starts with '/', no '//', no '.' or '..' segment")
        require(
            sameBytes(URIPath.normalize(fromURI), fromURI), "fromRequestURI(x) == normalize(fromRequestURI(x))",
            "fromRequestURI(\(show(text))) = \(show(fromURI))")
        let cut = text.utf8.split(separator: UInt8(ascii: "?"), maxSplits: 1, omittingEmptySubsequences: false)[0]
            .split(separator: UInt8(ascii: "#"), maxSplits: 1, omittingEmptySubsequences: false)[0]
        let decoded = String(decoding: Reference.percentDecode(String(decoding: cut, as: UTF8.self)), as: UTF8.self)
        require(
            fromURI.utf8.elementsEqual(Reference.normalize(decoded)), "fromRequestURI = cut at ?/#, decode once, normalise",
            "fromRequestURI(\(show(text))) = \(show(fromURI)), reference \(show(String(decoding: Reference.normalize(decoded), as: UTF8.self)))"
        )

        // Router: the rest of the input, with the method its first byte picks.
        let method = methods[Int(bytes.first ?? 0) % methods.count]
        let rest = String(decoding: bytes.dropFirst(), as: UTF8.self)
        checkRouter(URIPath.normalize(rest), method: method)
        checkRouter(URIPath.fromRequestURI(rest), method: method)
        checkRouter(rest, method: method)
    }
}
