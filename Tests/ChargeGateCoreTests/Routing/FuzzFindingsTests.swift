import Testing
@testable import ChargeGateCore

/// Inputs the fuzzers in fuzz/ found, kept as regressions (see fuzz/README.md).
@Suite struct FuzzFindingsTests {
    /// A `/` followed by a combining mark is one Swift `Character`, but nginx splits at the
    /// byte: normalising by characters kept `..` from resolving, was not idempotent and could
    /// produce `//`.
    @Test func aCombiningMarkAfterASlashDoesNotHideTheSlash() {
        // fuzz-uri: input d99b2f ("\u{65B}/"); its normalised form normalised again gave "//\u{65B}/".
        #expect(URIPath.normalize("\u{65B}/") == "/\u{65B}/")
        #expect(Array(URIPath.normalize("/\u{65B}/").utf8) == Array("/\u{65B}/".utf8))
        // nginx resolves the `..` against the segment "\u{301}": the route /api/generate is charged.
        #expect(Array(URIPath.normalize("/api/generate/\u{301}/../x").utf8) == Array("/api/generate/x".utf8))
        #expect(Array(URIPath.normalize("/api/\u{301}/./..//generate/").utf8) == Array("/api/generate/".utf8))
        #expect(
            URIPath.segments("/api/generate/\u{301}x").map { Array($0.utf8) } == [
                Array("api".utf8), Array("generate".utf8), Array("\u{301}x".utf8),
            ])
    }

    /// `REQUEST_URI` is cut at the first `?` byte even when a combining mark follows it, as
    /// nginx does; otherwise the query could walk the charged path away with `..`.
    @Test func theRequestURIIsCutAtTheQuestionMarkByte() {
        #expect(Array(URIPath.fromRequestURI("/api/generate?\u{301}/../../other").utf8) == Array("/api/generate".utf8))
        #expect(Array(URIPath.fromRequestURI("/api/generate#\u{301}/../../other").utf8) == Array("/api/generate".utf8))
        #expect(Array(URIPath.fromRequestURI("/api/generate%3F\u{301}/../x").utf8) == Array("/api/x".utf8))
    }

    /// Query pairs are split at the `&` and `=` bytes, whatever follows them.
    @Test func queryPairsSplitAtTheAmpersandByte() {
        #expect(QueryString.value(of: "subject", in: "subject=a&\u{301}x=1") == "a")
        #expect(QueryString.value(of: "pools", in: "x=1&\u{301}&pools=a,b") == "a,b")
        #expect(QueryString.value(of: "subject", in: "subject=\u{301}b") == "\u{301}b")
        #expect(QueryString.value(of: "subject", in: "subject") == "")
        #expect(QueryString.value(of: "subject", in: "&&subject=%41+b&subject=second") == "A b")
    }
}
