import ChargeGateCore
import ChargeGateRedis
import Testing

// Pure: cluster redirects read from error replies, strictly. No Redis is needed.

private let answering = RedisURL.HostPort(host: "10.0.0.5", port: 7000)

private func at(_ host: String, _ port: Int) -> RedisURL.HostPort {
    RedisURL.HostPort(host: host, port: port)
}

@Suite struct ClusterRedirectTests {
    @Test(arguments: [
        ("MOVED 3999 127.0.0.1:6381", ClusterRedirect.moved(slot: 3999, node: at("127.0.0.1", 6381))),
        ("ASK 3999 127.0.0.1:6381", .ask(slot: 3999, node: at("127.0.0.1", 6381))),
        ("MOVED 0 redis-1.internal:7000", .moved(slot: 0, node: at("redis-1.internal", 7000))),
        ("MOVED 16383 10.1.2.3:65535", .moved(slot: 16383, node: at("10.1.2.3", 65535))),
        ("MOVED 1 ::1:7000", .moved(slot: 1, node: at("::1", 7000))),
        ("ASK 12182 2001:db8::17:30001", .ask(slot: 12182, node: at("2001:db8::17", 30001))),
        ("MOVED 7 fe80::1%eth0:7001", .moved(slot: 7, node: at("fe80::1%eth0", 7001))),
        // An empty host: the node that answered, at the port given.
        ("MOVED 3999 :6381", .moved(slot: 3999, node: at("10.0.0.5", 6381))),
        ("ASK 5 :7002", .ask(slot: 5, node: at("10.0.0.5", 7002))),
        ("MOVED 00042 h:1", .moved(slot: 42, node: at("h", 1))),
        ("TRYAGAIN Multiple keys request during rehashing of slot", .tryAgain),
        ("TRYAGAIN", .tryAgain),
        ("CLUSTERDOWN The cluster is down", .clusterDown("CLUSTERDOWN The cluster is down")),
        ("CLUSTERDOWN Hash slot not served", .clusterDown("CLUSTERDOWN Hash slot not served")),
    ])
    func readsARedirect(_ message: String, _ expected: ClusterRedirect) {
        #expect(ClusterRedirect(error: message, answeredBy: answering) == expected)
        #expect(ClusterRedirect(.error(message), answeredBy: answering) == expected)
    }

    @Test(arguments: [
        "",
        "MOVED",
        "MOVED 3999",
        "MOVED 3999 127.0.0.1",  // no port
        "MOVED 3999 127.0.0.1:",  // empty port
        "MOVED 3999 127.0.0.1:0",  // port 0
        "MOVED 3999 127.0.0.1:65536",
        "MOVED 3999 127.0.0.1:+6381",
        "MOVED 3999 127.0.0.1:-1",
        "MOVED 3999 127.0.0.1:6381 extra",
        "MOVED 3999  127.0.0.1:6381",  // two spaces
        " MOVED 3999 127.0.0.1:6381",
        "MOVED 3999 127.0.0.1:6381 ",
        "MOVED 16384 127.0.0.1:6381",  // slot out of range
        "MOVED -1 127.0.0.1:6381",
        "MOVED 123456 127.0.0.1:6381",
        "MOVED 99999999999999999999999 127.0.0.1:6381",  // no overflow, no trap
        "MOVED 1x 127.0.0.1:6381",
        "MOVED  127.0.0.1:6381",
        "MOVED 3999 ?:6381",  // a host name the node does not have
        "MOVED 3999 [::1]:6381",  // Redis never brackets
        "MOVED 3999 ho\tst:6381",
        "MOVED 3999 hö:6381",
        "MOVED 3999 127.0.0.1:99999999999999999999",
        "moved 3999 127.0.0.1:6381",  // the code is upper case
        "ASK 3999",
        "ASKING 3999 127.0.0.1:6381",
        "MOVEDX 3999 127.0.0.1:6381",
        "TRYAGAINX",
        "CLUSTERDOWNX",
        "ERR unknown command",
        "NOSCRIPT No matching script. Please use EVAL.",
        "CROSSSLOT Keys in request don't hash to the same slot",
    ])
    func refusesGarbage(_ message: String) {
        #expect(ClusterRedirect(error: message, answeredBy: answering) == nil)
    }

    /// The texts two Redis 7.0.15 nodes gave (a slot moved; a slot migrating with
    /// `CLUSTER SETSLOT ... MIGRATING/IMPORTING`, a `GET` of a missing key, an `MGET` and an `EVAL`
    /// over keys split by it; a slot no node serves; each `cluster-preferred-endpoint-type`).
    @Test func textsOfARealRedis7() {
        let node = RedisURL.HostPort(host: "127.0.0.1", port: 50353)
        #expect(
            ClusterRedirect(error: "MOVED 12182 127.0.0.1:36467", answeredBy: node) == .moved(slot: 12182, node: at("127.0.0.1", 36467)))
        #expect(ClusterRedirect(error: "MOVED 12182 :36467", answeredBy: node) == .moved(slot: 12182, node: at("127.0.0.1", 36467)))
        #expect(ClusterRedirect(error: "MOVED 12182 ?:36467", answeredBy: node) == nil)
        #expect(ClusterRedirect(error: "ASK 5061 127.0.0.1:36467", answeredBy: node) == .ask(slot: 5061, node: at("127.0.0.1", 36467)))
        #expect(ClusterRedirect(error: "TRYAGAIN Multiple keys request during rehashing of slot", answeredBy: node) == .tryAgain)
        #expect(
            ClusterRedirect(error: "CLUSTERDOWN Hash slot not served", answeredBy: node) == .clusterDown("CLUSTERDOWN Hash slot not served")
        )
    }

    @Test func aLongHostIsRefused() {
        let long = String(repeating: "h", count: ClusterRedirect.maxHostLength)
        #expect(ClusterRedirect(error: "MOVED 1 \(long):7000", answeredBy: answering) == .moved(slot: 1, node: at(long, 7000)))
        #expect(ClusterRedirect(error: "MOVED 1 \(long)h:7000", answeredBy: answering) == nil)
    }

    @Test func onlyErrorRepliesAreRedirects() {
        #expect(ClusterRedirect(.status("MOVED 1 h:1"), answeredBy: answering) == nil)
        #expect(ClusterRedirect(.string(Array("MOVED 1 h:1".utf8)), answeredBy: answering) == nil)
        #expect(ClusterRedirect(.null, answeredBy: answering) == nil)
    }

    @Test func claimsRedirect() {
        #expect(ClusterRedirect.claimsRedirect("MOVED 99999 h:1"))
        #expect(ClusterRedirect.claimsRedirect("ASK x"))
        #expect(!ClusterRedirect.claimsRedirect("TRYAGAIN"))
        #expect(!ClusterRedirect.claimsRedirect("MOVEDX 1 h:1"))
    }
}
