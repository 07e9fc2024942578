import Testing
@testable import ChargeGateCore

@Suite struct RoutingTests {
    @Test(arguments: [
        ("/api/generate", "/api/generate"),
        ("/api//generate", "/api/generate"),
        ("/api/./generate", "/api/generate"),
        ("/api/x/../generate", "/api/generate"),
        ("/api/%67enerate", "/api/generate"),
        ("/../../api/generate", "/api/generate"),
        ("/api/generate?x=1", "/api/generate"),
        ("/api/generate/", "/api/generate/"),
        ("/api/%2e%2e/api/generate", "/api/generate"),
        ("", "/"),
        ("/", "/"),
    ])
    func rawURIsNormalise(raw: String, expected: String) {
        #expect(URIPath.fromRequestURI(raw) == expected)
    }

    @Test func normalisedPathIsAFixedPoint() {
        for raw in ["/a//b/./c/../d", "/%25%32%65", "/x/%2F/y"] {
            let once = URIPath.fromRequestURI(raw)
            #expect(URIPath.normalize(once) == once)
        }
    }

    @Test(arguments: [
        ("/api/generate?a", "/api/generate?a"),
        ("/api/generate#b", "/api/generate#b"),
        ("/api//generate/./x/..", "/api/generate/"),
        ("/api/%67enerate", "/api/%67enerate"),
    ])
    func nginxPathsAreNeverCutOrDecodedAgain(uri: String, expected: String) {
        #expect(URIPath.normalize(uri) == expected)
    }

    @Test(arguments: [
        ("/", true), ("/a", true), ("/a/", true), ("/a/b.c/...", true), ("/.a/a./..b", true),
        ("", false), ("a/b", false), ("//", false), ("/a//b", false), ("/a/.", false), ("/a/..", false),
        ("/./a", false), ("/../a", false), ("/a/./", false), ("/a/../", false),
    ])
    func normalPathsAreKeptAsTheyAre(path: String, normal: Bool) {
        #expect(URIPath.isNormal(path.utf8) == normal)
        // The fast path must agree with the full normalisation.
        #expect((URIPath.normalize(path) == path) == normal)
    }

    static let routes = [
        RouteConfig(prefix: "/api", charges: [.init(poolIndex: 0, cost: 1)]),
        RouteConfig(prefix: "/api/generate", charges: [.init(poolIndex: 1, cost: 1)], methods: ["POST"]),
        RouteConfig(prefix: "/api/describe", charges: [.init(poolIndex: 2, cost: 1)], methods: ["GET"]),
        RouteConfig(prefix: "/", charges: [.init(poolIndex: 3, cost: 1)], methods: ["DELETE"]),
    ]

    @Test(arguments: [
        ("/api/generate", "POST", 1 as Int?),
        ("/api/generate/x/y", "POST", 1),
        ("/api/generated", "POST", 0),
        ("/api/generate", "GET", 0),
        ("/api", "GET", 0),
        ("/apix", "GET", nil),
        ("/other", "GET", nil),
        ("/other", "DELETE", 3),
        ("/api/describe/1", "GET", 2),
    ])
    func longestSegmentPrefixWins(path: String, method: String, expected: Int?) {
        let router = Router(routes: Self.routes)
        #expect(router.match(path: path, method: method) == expected)
    }

    @Test(arguments: ["/api/generate/\u{301}x", "/api/generate/\u{301}", "/api/generate/\u{20DD}/y"])
    func aCombiningMarkAfterASlashStillMatchesTheRoute(path: String) {
        let router = Router(routes: Self.routes)
        #expect(router.match(path: path, method: "POST") == 1)
    }

    @Test func thousandsOfRoutesStillMatch() {
        let routes = (0..<5000).map { RouteConfig(prefix: "/t/\($0)/x", charges: [.init(poolIndex: 0, cost: 1)]) }
        let router = Router(routes: routes)
        #expect(router.match(path: "/t/4321/x/y", method: "GET") == 4321)
        #expect(router.match(path: "/t/4321", method: "GET") == nil)
    }

    @Test(arguments: [
        ("pools=a,b", "pools", "a,b" as String?),
        ("x=1&pools=a%2Cb", "pools", "a,b"),
        ("pools", "pools", ""),
        ("pools=", "pools", ""),
        ("&&=&pools=a+b", "pools", "a b"),
        ("other=1", "pools", nil),
        ("pools=%zz", "pools", "%zz"),
    ])
    func queryStrings(query: String, name: String, expected: String?) {
        #expect(QueryString.value(of: name, in: query) == expected)
    }
}
