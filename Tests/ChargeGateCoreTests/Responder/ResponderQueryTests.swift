import ChargeGateTestSupport
import Testing

@testable import ChargeGateCore

/// A query parameter an endpoint reads, given twice, is a 400 with a clear message on every
/// endpoint that reads the query (docs/http.md): never one value kept and the other dropped.
@Suite struct ResponderQueryTests: ResponderSuite {
    let fixture = ResponderFixture()

    static let repeated: [(role: String, query: String, token: String?, message: String)] = [
        ("check", "pools=generate-image&pools=api-calls", nil, "pools: given 2 times; list every pool in one, as ?pools=a,b"),
        ("check", "pools=a&x=1&pools=b&pools=c", nil, "pools: given 3 times; list every pool in one, as ?pools=a,b"),
        ("check", "pools=a&pools", nil, "pools: given 2 times; list every pool in one, as ?pools=a,b"),
        ("check", "pools=a&%70ools=b", nil, "pools: given 2 times; list every pool in one, as ?pools=a,b"),
        ("usage", "subject=alice&subject=bob", "s3cret", "subject: given 2 times; give it once"),
        ("usage", "subject=alice&subject=bob", nil, "subject: given 2 times; give it once"),
        ("events", "limit=1&limit=1000", "s3cret", "limit: given 2 times; give it once"),
        ("events", "pool=a&pool=b", "s3cret", "pool: given 2 times; give it once"),
        ("events", "subject=a&since=1&subject=b", "s3cret", "subject: given 2 times; give it once"),
        ("events", "since=1&since=2", "s3cret", "since: given 2 times; give it once"),
        ("events", "until=1&until=2", "s3cret", "until: given 2 times; give it once"),
        ("events", "after=1-0&after=2-0", "s3cret", "after: given 2 times; give it once"),
    ]

    @Test(arguments: repeated)
    func aRepeatedParameterIsABadRequest(_ c: (role: String, query: String, token: String?, message: String)) {
        let response = responder.respond(to: FakeRequest.endpoint(c.role, query: c.query, token: c.token), gate: gate)
        #expect(response.status == 400)
        #expect(response.body == #"{"error":"bad_request","message":"\#(c.message)"}"#)
    }

    @Test func theEventsEndpointStillWantsTheTokenFirst() {
        let response = responder.respond(to: FakeRequest.endpoint("events", query: "pool=a&pool=b"), gate: gate)
        #expect(response.status == 401)
    }

    @Test func parametersTheEndpointDoesNotReadMayRepeat() {
        let check = responder.respond(to: FakeRequest.endpoint("check", query: "pools=generate-image&_=1&_=2"), gate: gate)
        #expect(check.status == 200)
        let usage = responder.respond(to: FakeRequest.endpoint("usage", query: "v=1&v=2"), gate: gate)
        #expect(usage.status == 200)
    }

    @Test(arguments: [
        ("pools=a&pools=b", "pools", ["a", "b"]),
        ("pools=a%2Cb", "pools", ["a,b"]),
        ("pools&pools=", "pools", ["", ""]),
        ("x=1", "pools", []),
        ("p%6Fols=a&pools=b+c", "pools", ["a", "b c"]),
    ])
    func everyValue(query: String, name: String, expected: [String]) {
        #expect(QueryString.values(of: name, in: query) == expected)
        #expect(QueryString.value(of: name, in: query) == expected.first)
    }

    @Test func theFirstRepeatedNameIsNamed() {
        #expect(QueryString.repeated(["a", "b"], in: "b=1&a=1&b=2") ?? ("", 0) == ("b", 2))
        #expect(QueryString.repeated(["a", "b"], in: "a=1&b=2") == nil)
    }
}
