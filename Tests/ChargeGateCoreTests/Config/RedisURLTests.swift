import Testing

@testable import ChargeGateCore

/// One URL that must parse, and what it must parse to.
struct GoodRedisURL: Sendable, CustomTestStringConvertible {
    var text: String
    var url: RedisURL
    var testDescription: String { text }
}

/// One URL that must be refused, with its exact message.
struct BadRedisURL: Sendable, CustomTestStringConvertible {
    var text: String
    var message: String
    var testDescription: String { text }
}

private func hp(_ host: String, _ port: Int) -> RedisURL.HostPort {
    RedisURL.HostPort(host: host, port: port)
}

/// `redis-sentinel://` URLs (docs/config.md, `redis`), the other forms' existing behaviour kept.
@Suite struct RedisURLTests {
    static let good: [GoodRedisURL] = [
        GoodRedisURL(
            text: "redis-cluster://127.0.0.1:7000,127.0.0.1:7001,[::1]:7002",
            url: RedisURL(endpoint: .cluster(seeds: [hp("127.0.0.1", 7000), hp("127.0.0.1", 7001), hp("::1", 7002)]))),
        GoodRedisURL(
            text: "redis-cluster://:s3cret@h:7000", url: RedisURL(endpoint: .cluster(seeds: [hp("h", 7000)]), password: "s3cret")),
        GoodRedisURL(
            text: "redis-cluster://gate:s3cret@h:7000",
            url: RedisURL(endpoint: .cluster(seeds: [hp("h", 7000)]), password: "s3cret", username: "gate")),
        GoodRedisURL(
            text: "redis-sentinel://127.0.0.1:26379/mymaster",
            url: RedisURL(endpoint: .sentinel(sentinels: [hp("127.0.0.1", 26379)], master: "mymaster"))),
        GoodRedisURL(
            text: "redis-sentinel://127.0.0.1:26379,127.0.0.1:26380,127.0.0.1:26381/mymaster?db=2",
            url: RedisURL(
                endpoint: .sentinel(
                    sentinels: [hp("127.0.0.1", 26379), hp("127.0.0.1", 26380), hp("127.0.0.1", 26381)], master: "mymaster"),
                db: 2)),
        GoodRedisURL(
            text: "redis-sentinel://:s3cr%40t@s1.example:26390,s2.example/cache-1",
            url: RedisURL(
                endpoint: .sentinel(sentinels: [hp("s1.example", 26390), hp("s2.example", 26379)], master: "cache-1"), password: "s3cr@t")),
        GoodRedisURL(
            text: "redis-sentinel://[::1]:26380,[::1]/m.x_y",
            url: RedisURL(endpoint: .sentinel(sentinels: [hp("::1", 26380), hp("::1", 26379)], master: "m.x_y"))),
        GoodRedisURL(
            text: "redis-sentinel://h:1/m?db=0",
            url: RedisURL(endpoint: .sentinel(sentinels: [hp("h", 1)], master: "m"))),
        // The older forms, unchanged.
        GoodRedisURL(text: "redis://127.0.0.1:6380/3", url: RedisURL(endpoint: .tcp(host: "127.0.0.1", port: 6380), db: 3)),
        GoodRedisURL(text: "unix:///run/redis.sock?db=1", url: RedisURL(endpoint: .unix(path: "/run/redis.sock"), db: 1)),
    ]

    static let bad: [BadRedisURL] = [
        BadRedisURL(
            text: "redis-sentinel://127.0.0.1:26379",
            message:
                "redis: redis-sentinel:// URL needs /MASTER-NAME after the sentinels, as redis-sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster"
        ),
        BadRedisURL(
            text: "redis-sentinel://127.0.0.1:26379/",
            message:
                "redis: redis-sentinel:// URL needs /MASTER-NAME after the sentinels, as redis-sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster"
        ),
        BadRedisURL(
            text: "redis-sentinel:///mymaster",
            message: "redis: empty sentinel address in the list, as redis-sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster"),
        BadRedisURL(
            text: "redis-sentinel://a:1,,b:2/m",
            message: "redis: empty sentinel address in the list, as redis-sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster"),
        BadRedisURL(text: "redis-sentinel://a:1,b:2,a:1/m", message: "redis: sentinel a:1 is listed twice"),
        BadRedisURL(text: "redis-sentinel://[::1]:26379,[::1]/m", message: "redis: sentinel [::1]:26379 is listed twice"),
        BadRedisURL(text: "redis-sentinel://a:0/m", message: "redis: port must be 1-65535"),
        BadRedisURL(text: "redis-sentinel://a:65536/m", message: "redis: port must be 1-65535"),
        BadRedisURL(text: "redis-sentinel://a:x/m", message: "redis: port must be 1-65535"),
        BadRedisURL(text: "redis-sentinel://:1/m", message: "redis: missing host"),
        BadRedisURL(text: "redis-sentinel://[::1/m", message: "redis: unterminated [ in host"),
        BadRedisURL(text: "redis-sentinel://[::1]x/m", message: "redis: expected :port after ]"),
        BadRedisURL(
            text: "redis-sentinel://user:s3cret@a:1/m",
            message: "redis: redis-sentinel:// takes a password only, written :PASSWORD@ (no user name)"),
        BadRedisURL(
            text: "redis-sentinel://s3cret@a:1/m",
            message: "redis: redis-sentinel:// takes a password only, written :PASSWORD@ (no user name)"),
        BadRedisURL(text: "redis-sentinel://:@a:1/m", message: "redis: empty password (leave out :@ for none)"),
        BadRedisURL(text: "redis-sentinel://a:1/m?db=x", message: "redis: db must be a whole number >= 0"),
        BadRedisURL(text: "redis-sentinel://a:1/m?db=-1", message: "redis: db must be a whole number >= 0"),
        BadRedisURL(text: "redis-sentinel://a:1/m?db", message: "redis: db must be a whole number >= 0"),
        BadRedisURL(
            text: "redis-sentinel://a:1/m?timeout=5",
            message: "redis: redis-sentinel:// URL: parameter 1 is not db (its text is not shown: it may be a secret)"),
        BadRedisURL(text: "redis-sentinel://a:1/my master", message: "redis: master name must be 1-128 of A-Z a-z 0-9 . _ -"),
        BadRedisURL(text: "redis-sentinel://a:1/m/x", message: "redis: master name must be 1-128 of A-Z a-z 0-9 . _ -"),
        BadRedisURL(
            text: "redis-sentinel://a:1/" + String(repeating: "m", count: 129),
            message: "redis: master name must be 1-128 of A-Z a-z 0-9 . _ -"),
        BadRedisURL(
            text: "redis-cluster://h:7000/0",
            message:
                "redis: redis-cluster:// takes only the seed nodes (a cluster has database 0 alone), as redis-cluster://127.0.0.1:7000,127.0.0.1:7001"
        ),
        BadRedisURL(
            text: "redis-cluster://h:7000?db=1",
            message:
                "redis: redis-cluster:// takes only the seed nodes (a cluster has database 0 alone), as redis-cluster://127.0.0.1:7000,127.0.0.1:7001"
        ),
        BadRedisURL(
            text: "redis-cluster://h", message: "redis: every cluster node needs its port, as redis-cluster://127.0.0.1:7000,127.0.0.1:7001"
        ),
        BadRedisURL(
            text: "redis-cluster://[::1]",
            message: "redis: every cluster node needs its port, as redis-cluster://127.0.0.1:7000,127.0.0.1:7001"),
        BadRedisURL(
            text: "redis-cluster://h:1,,h:2",
            message: "redis: empty node address in the list, as redis-cluster://127.0.0.1:7000,127.0.0.1:7001"),
        BadRedisURL(text: "redis-cluster://h:1,h:1", message: "redis: cluster node h:1 is listed twice"),
        BadRedisURL(text: "redis-cluster://h:0", message: "redis: port must be 1-65535"),
        BadRedisURL(
            text: "redis-cluster://s3cret@h:1", message: "redis: redis-cluster:// takes :PASSWORD@ or USER:PASSWORD@ before the nodes"),
        BadRedisURL(text: "redis-cluster://:@h:1", message: "redis: empty password (leave out :@ for none)"),
        BadRedisURL(
            text: "sentinel://a:1/m",
            message: "redis: expected redis://host:port/db, unix:///path/to/redis.sock, redis-sentinel://host:port,host:port/master "
                + "or redis-cluster://host:port,host:port"),
    ]

    /// Parameters and %-escapes: a parameter given twice, an unknown one, an invalid escape or
    /// bytes that are not UTF-8 once decoded are refused; no message shows a password, a
    /// parameter's value or an unknown parameter's text (`?s3cret` may be a password typed
    /// without its name).
    static let strict: [BadRedisURL] = [
        BadRedisURL(
            text: "unix:///run/redis.sock?s3cret",
            message: "redis: unix:// URL: parameter 1 is neither db nor password (its text is not shown: it may be a secret)"),
        BadRedisURL(
            text: "unix:///run/redis.sock?db=1&s3cret=x",
            message: "redis: unix:// URL: parameter 2 is neither db nor password (its text is not shown: it may be a secret)"),
        BadRedisURL(
            text: "redis-sentinel://a:1/m?db=1&s3cret",
            message: "redis: redis-sentinel:// URL: parameter 2 is not db (its text is not shown: it may be a secret)"),
        BadRedisURL(text: "unix:///run/redis.sock?db=1&db=2", message: "redis: unix:// URL: db is given twice; give it once"),
        BadRedisURL(text: "unix:///run/redis.sock?db=1&db=1", message: "redis: unix:// URL: db is given twice; give it once"),
        BadRedisURL(
            text: "unix:///run/redis.sock?password=s3cret&password=s3cret2",
            message: "redis: unix:// URL: password is given twice; give it once"),
        BadRedisURL(text: "redis-sentinel://a:1/m?db=1&db=2", message: "redis: redis-sentinel:// URL: db is given twice; give it once"),
        BadRedisURL(text: "redis://:s3cret%zz@h:1/0", message: "redis: the password has an invalid %-escape (write % itself as %25)"),
        BadRedisURL(text: "redis://:s3cret%2@h:1/0", message: "redis: the password has an invalid %-escape (write % itself as %25)"),
        BadRedisURL(text: "redis://:s3cret%@h:1/0", message: "redis: the password has an invalid %-escape (write % itself as %25)"),
        BadRedisURL(text: "redis://:s3cret%ff@h:1/0", message: "redis: the password is not UTF-8 text once %-decoded"),
        BadRedisURL(text: "redis://s3cret%g1:pw@h:1/0", message: "redis: the user name has an invalid %-escape (write % itself as %25)"),
        BadRedisURL(text: "redis://s3cret%zz@h:1/0", message: "redis: the password has an invalid %-escape (write % itself as %25)"),
        BadRedisURL(
            text: "unix:///run/redis.sock?password=s3cret%zz",
            message: "redis: the password has an invalid %-escape (write % itself as %25)"),
        BadRedisURL(
            text: "redis-sentinel://:s3cret%zz@a:1/m", message: "redis: the password has an invalid %-escape (write % itself as %25)"),
        BadRedisURL(text: "redis-sentinel://:%C3%28@a:1/m", message: "redis: the password is not UTF-8 text once %-decoded"),
    ]

    @Test(arguments: strict)
    func refusesWithoutShowingSecrets(_ c: BadRedisURL) {
        #expect(throws: ConfigMessage(c.message)) { try RedisURL(parsing: c.text) }
        #expect(!c.message.contains("s3cret"))
    }

    /// What the strict parsing still takes: valid escapes (UTF-8 too), empty pairs.
    @Test(arguments: [
        ("redis://:p%40ss%2Fw%25rd@h:1/0", RedisURL(endpoint: .tcp(host: "h", port: 1), password: "p@ss/w%rd")),
        ("redis://us%65r:caf%C3%A9@h:1/0", RedisURL(endpoint: .tcp(host: "h", port: 1), password: "café", username: "user")),
        ("unix:///s.sock?password=a%26b&db=2", RedisURL(endpoint: .unix(path: "/s.sock"), db: 2, password: "a&b")),
        ("unix:///s.sock?db=2&&", RedisURL(endpoint: .unix(path: "/s.sock"), db: 2)),
        ("redis-sentinel://:p%3Aw@a:1/m?db=3", RedisURL(endpoint: .sentinel(sentinels: [hp("a", 1)], master: "m"), db: 3, password: "p:w")),
    ])
    func decodesValidEscapes(text: String, url: RedisURL) throws {
        #expect(try RedisURL(parsing: text) == url)
    }

    @Test(arguments: good)
    func parses(_ c: GoodRedisURL) throws {
        #expect(try RedisURL(parsing: c.text) == c.url)
    }

    @Test(arguments: bad)
    func refuses(_ c: BadRedisURL) {
        #expect(throws: ConfigMessage(c.message)) { try RedisURL(parsing: c.text) }
        // No message repeats the URL, so a password in it never reaches a log.
        #expect(!c.message.contains("s3cret"))
    }

    @Test func descriptionMasksBothPasswords() throws {
        var url = try RedisURL(parsing: "redis-sentinel://:s3cret@127.0.0.1:26379,[::1]:26380/mymaster?db=1")
        url.sentinelPassword = "t0p"
        #expect(url.description == "redis-sentinel://:***@127.0.0.1:26379,[::1]:26380/mymaster?db=1")
        #expect(url.isSentinel)
        #expect(try !RedisURL(parsing: "redis://h:1/0").isSentinel)
    }

    @Test func anOverrideKeepsTheConfigsSentinelPassword() throws {
        var configured = try RedisURL(parsing: "redis-sentinel://a:1/m")
        configured.sentinelPassword = "pw"
        let override = try RedisURL(parsing: "redis-sentinel://b:2/m")
        #expect(override.inheritingSentinelPassword(from: configured).sentinelPassword == "pw")
        #expect(try RedisURL(parsing: "redis://b:2/0").inheritingSentinelPassword(from: configured).sentinelPassword == nil)
        var own = override
        own.sentinelPassword = "mine"
        #expect(own.inheritingSentinelPassword(from: configured).sentinelPassword == "mine")
    }
}

/// The config keys beside the URL: `sentinelPassword`, `redisMinReplicas`, `redisReplicaWaitMs`.
@Suite struct SentinelConfigTests {
    private static let pool = "pools:\n  - id: p\n    maxCharges: 5\n    rechargeIntervalHours: 1\n"

    private static func errors(_ yaml: String) -> [String] {
        switch ConfigLoader.parse(yaml + pool, file: "inline.yaml") {
        case .success: return []
        case .failure(let errors): return errors.errors.map { "\($0.line): \($0.message)" }
        }
    }

    private static func loaded(_ yaml: String) throws -> GateConfig {
        try ConfigLoader.parse(yaml + pool, file: "inline.yaml").get()
    }

    @Test func defaults() throws {
        let config = try Self.loaded("redis: redis-sentinel://127.0.0.1:26379/m\n")
        #expect(config.redisMinReplicas == 0)
        #expect(config.redisReplicaWaitMs == 50)
        #expect(config.redis?.sentinelPassword == nil)
    }

    @Test func sentinelPasswordGoesWithTheURL() throws {
        let config = try Self.loaded(
            "redis: redis-sentinel://:data@127.0.0.1:26379/m\nsentinelPassword: watch\nredisMinReplicas: 1\nredisReplicaWaitMs: 250\n")
        #expect(config.redis?.password == "data")
        #expect(config.redis?.sentinelPassword == "watch")
        #expect(config.redisMinReplicas == 1)
        #expect(config.redisReplicaWaitMs == 250)
    }

    @Test(arguments: [
        (
            "redis: redis://127.0.0.1/0\nsentinelPassword: s3cret\n",
            ["2: sentinelPassword: only used with a redis-sentinel:// URL in redis"]
        ),
        ("sentinelPassword: s3cret\n", ["1: sentinelPassword: only used with a redis-sentinel:// URL in redis"]),
        (
            "redis: redis-sentinel://a:1/m\nsentinelPassword: \"\"\n",
            ["2: sentinelPassword: must not be empty (leave the key out when the sentinels need none)"]
        ),
        ("redis: redis-sentinel://a:0/m\nsentinelPassword: s3cret\n", ["1: redis: port must be 1-65535"]),
        ("redisMinReplicas: 101\n", ["1: redisMinReplicas: must be a whole number from 0 to 100, got 101"]),
        ("redisMinReplicas: -1\n", ["1: redisMinReplicas: must be a whole number from 0 to 100, got -1"]),
        ("redisReplicaWaitMs: 0\n", ["1: redisReplicaWaitMs: must be a whole number from 1 to 60000, got 0"]),
        ("redisReplicaWaitMs: \"50\"\n", ["1: redisReplicaWaitMs: expected a whole number, got '50' (a quoted string)"]),
        ("redisMinReplica: 1\n", ["1: redisMinReplica: unknown key (did you mean 'redisMinReplicas'?)"]),
    ])
    func refuses(_ yaml: String, _ expected: [String]) {
        #expect(Self.errors(yaml) == expected)
    }
}
