import ChargeGateCore

// The responder tables, on the fixture config (`GateConfig.responderFixture`): generate-image
// (global, 2, one back every 2 h), api-calls (per subject, 3, one every 36 s), credits (per
// subject, 10, never refilled), meter (per subject, unlimited); POST /api/generate spends an
// image, /api/paid an api call, 5 credits and 1 on the meter, GET /api/read an api call, PUT
// /api/read an image (the one route that is not idempotent).

extension ResponderScenario {
    /// Every table that runs over both stores: nothing in them moves a clock, and no wait is
    /// short enough to end during a run (the shortest, api-calls', is 36 s).
    public static let bothStores: [ResponderScenario] = allowAndDeny + endpoints + idempotency

    /// Allow and deny sequences: the global pool, a per-subject pool, credits, all-or-nothing
    /// over several pools, the unlimited meter.
    public static let allowAndDeny: [ResponderScenario] = [
        ResponderScenario(
            "the global pool allows its two charges, then denies everybody (again from the deny cache)",
            [
                .auth("/api/generate", .allowed(#""generate-image";r=1;t=*"#)),
                .auth("/api/generate", .allowed(#""generate-image";r=0;t=*"#)),
                .auth("/api/generate", .outOfCharge("generate-image")),
                .auth("/api/generate", .outOfCharge("generate-image")),
                .auth("/api/generate", subject: "bob", .outOfCharge("generate-image")),
                .auth("/api/generate", method: "GET", .unrouted),
                .auth("/api/generated", .unrouted),
                .auth("/nowhere", .unrouted),
            ]),
        ResponderScenario(
            "a per-subject pool counts each subject apart, HEAD as GET",
            [
                .auth("/api/read", method: "GET", subject: "alice", .allowed(#""api-calls";r=2;t=*"#)),
                .auth("/api/read", method: "HEAD", subject: "alice", .allowed(#""api-calls";r=1;t=*"#)),
                .auth("/api/read", method: "GET", subject: "alice", .allowed(#""api-calls";r=0;t=*"#)),
                .auth("/api/read", method: "GET", subject: "alice", .outOfCharge("api-calls")),
                .auth("/api/read", method: "HEAD", subject: "alice", .outOfCharge("api-calls")),
                .auth("/api/read", method: "GET", subject: "bob", .allowed(#""api-calls";r=2;t=*"#)),
            ]),
        ResponderScenario(
            "credits answer 402 once spent, per subject; the 402 spends nothing and wins over a 429",
            [
                .auth("/api/paid", subject: "alice", .allowed(#""api-calls";r=2;t=*, "credits";r=5"#)),
                .auth("/api/paid", subject: "alice", .allowed(#""api-calls";r=1;t=*, "credits";r=0"#)),
                .auth("/api/paid", subject: "alice", .insufficientCredits("credits", available: 0, required: 5)),
                // The 402 spent no api call: the last one is still there.
                .auth("/api/read", method: "GET", subject: "alice", .allowed(#""api-calls";r=0;t=*"#)),
                .auth("/api/paid", subject: "alice", .insufficientCredits("credits", available: 0, required: 5)),
                .auth("/api/paid", subject: "bob", .allowed(#""api-calls";r=2;t=*, "credits";r=5"#)),
                .endpoint("usage", subject: "alice", .json(200, usage(subject: "alice", apiCalls: 0, credits: 0, metered: 2))),
                .endpoint("usage", subject: "bob", .json(200, usage(subject: "bob", apiCalls: 2, credits: 5, metered: 1))),
            ]),
        ResponderScenario(
            "a route spends all its pools or none: a 429 on one leaves the credits and the meter as they were",
            [
                .auth("/api/read", method: "GET", subject: "carol", .allowed(#""api-calls";r=2;t=*"#)),
                .auth("/api/read", method: "GET", subject: "carol", .allowed(#""api-calls";r=1;t=*"#)),
                .auth("/api/read", method: "GET", subject: "carol", .allowed(#""api-calls";r=0;t=*"#)),
                .auth("/api/paid", subject: "carol", .outOfCharge("api-calls")),
                .auth("/api/paid", subject: "carol", .outOfCharge("api-calls")),
                .endpoint("usage", subject: "carol", .json(200, usage(subject: "carol", apiCalls: 0))),
            ]),
        ResponderScenario(
            "the unlimited meter counts every spend of its route and never denies",
            [
                .auth("/api/paid", subject: "dave", .allowed(#""api-calls";r=2;t=*, "credits";r=5"#)),
                .endpoint("usage", subject: "dave", .json(200, usage(subject: "dave", apiCalls: 2, credits: 5, metered: 1))),
                .auth("/api/paid", subject: "dave", .allowed(#""api-calls";r=1;t=*, "credits";r=0"#)),
                .endpoint("usage", subject: "dave", .json(200, usage(subject: "dave", apiCalls: 1, credits: 0, metered: 2))),
            ]),
    ]

    /// The usage and check endpoints' JSON for fresh and spent pools, top-off, and what they
    /// never do (spend).
    public static let endpoints: [ResponderScenario] = [
        ResponderScenario(
            "usage shows fresh pools full and without times, then what a spend took",
            [
                .endpoint("usage", .json(200, usage())),
                .auth("/api/generate", .allowed(#""generate-image";r=1;t=*"#)),
                .endpoint("usage", .json(200, usage(image: 1))),
                .endpoint("usage", subject: "bob", .json(200, usage(subject: "bob", image: 1))),
                .endpoint("usage", query: "subject=bob", .json(401, #"{"error":"unauthorized"}"#)),
                .endpoint("usage", query: "subject=bob", token: "s3cret", .json(200, usage(subject: "bob", image: 1))),
            ]),
        ResponderScenario(
            "check answers for fresh and spent pools, and refuses bad queries",
            [
                .endpoint(
                    "check", query: "pools=generate-image,api-calls",
                    .json(200, #"{"ok":true,"pools":[{"id":"generate-image","available":true},{"id":"api-calls","available":true}]}"#)),
                .auth("/api/generate", .allowed(#""generate-image";r=1;t=*"#)),
                .auth("/api/generate", .allowed(#""generate-image";r=0;t=*"#)),
                .endpoint(
                    "check", query: "pools=generate-image,meter",
                    .json(200, #"{"ok":false,"pools":[{"id":"generate-image","available":false},{"id":"meter","available":true}]}"#)),
                .endpoint(
                    "check", query: "pools=",
                    .json(400, #"{"error":"bad_request","message":"pools: give one or more pool ids, as ?pools=a,b"}"#)),
                .endpoint("check", query: "pools=api-calls,nope%22", .json(404, #"{"error":"unknown_pool","poolId":"nope\""}"#)),
            ]),
        ResponderScenario(
            "usage and check never spend",
            [
                .endpoint("usage", .json(200, usage())),
                .endpoint(
                    "check", query: "pools=generate-image", .json(200, #"{"ok":true,"pools":[{"id":"generate-image","available":true}]}"#)),
                .endpoint("usage", .json(200, usage())),
                .endpoint(
                    "check", query: "pools=generate-image", .json(200, #"{"ok":true,"pools":[{"id":"generate-image","available":true}]}"#)),
                .auth("/api/generate", .allowed(#""generate-image";r=1;t=*"#)),
                .auth("/api/generate", .allowed(#""generate-image";r=0;t=*"#)),
            ]),
        ResponderScenario(
            "a top-off adds or fills, and ends the denials it answers (the deny cache's too)",
            [
                .auth("/api/paid", subject: "erin", .allowed(#""api-calls";r=2;t=*, "credits";r=5"#)),
                .auth("/api/paid", subject: "erin", .allowed(#""api-calls";r=1;t=*, "credits";r=0"#)),
                .auth("/api/paid", subject: "erin", .insufficientCredits("credits", available: 0, required: 5)),
                .endpoint(
                    "topoff", method: "POST", token: "s3cret", body: #"{"poolId":"credits","subject":"erin","amount":5}"#,
                    .json(200, credits(subject: "erin", current: 5))),
                .auth("/api/paid", subject: "erin", .allowed(#""api-calls";r=0;t=*, "credits";r=0"#)),
                .auth("/api/generate", .allowed(#""generate-image";r=1;t=*"#)),
                .auth("/api/generate", .allowed(#""generate-image";r=0;t=*"#)),
                .auth("/api/generate", .outOfCharge("generate-image")),
                .auth("/api/generate", .outOfCharge("generate-image")),
                .endpoint("topoff", method: "POST", token: "s3cret", body: #"{"poolId":"generate-image"}"#, .json(200, generateImage())),
                .auth("/api/generate", .allowed(#""generate-image";r=1;t=*"#)),
            ]),
    ]

    /// Idempotent retries: the same key for the same request is answered again without a
    /// second charge; a key used for another request is a 422; the bounds on repeats and on
    /// the records a subject creates; a denial leaves no record; the header counts only on
    /// idempotent routes.
    public static let idempotency: [ResponderScenario] = [
        ResponderScenario(
            "an idempotent repeat is answered again without a second charge",
            [
                .auth("/api/generate", key: "order-1", .allowed(#""generate-image";r=1;t=*"#)),
                .auth("/api/generate", key: "order-1", .repeated),
                .auth("/api/generate", key: "order-1", .repeated),
                .endpoint("usage", .json(200, usage(image: 1))),
                .auth("/api/generate", .allowed(#""generate-image";r=0;t=*"#)),
                .auth("/api/generate", .outOfCharge("generate-image")),
                // The pool is empty, the allowed request's repeat is still allowed.
                .auth("/api/generate", key: "order-1", .repeated),
                .endpoint("usage", .json(200, usage(image: 0))),
            ]),
        ResponderScenario(
            "a key used again for another request is a 422, neither charged nor passed",
            [
                .auth("/api/generate/a", key: "K", .allowed(#""generate-image";r=1;t=*"#)),
                .auth("/api/generate/b", key: "K", .keyReused),
                .auth("/api/generate/b", key: "K", .keyReused),
                .auth("/api/read", method: "GET", key: "K", .keyReused),
                .auth("/api/generate/a", key: "K", .repeated),
                .endpoint("usage", .json(200, usage(image: 1))),
                // Another subject's key of the same name is its own.
                .auth("/api/generate/b", subject: "bob", key: "K", .allowed(#""generate-image";r=0;t=*"#)),
            ]),
        ResponderScenario(
            "a key used again with another query is a 422; the same query as sent is a repeat",
            [
                .auth("/api/read/x", method: "GET", key: "Q", requestURI: "/api/read/x?p=a", .allowed(#""api-calls";r=2;t=*"#)),
                .auth("/api/read/x", method: "GET", key: "Q", requestURI: "/api/read/x?p=a", .repeated),
                .auth("/api/read/x", method: "GET", key: "Q", requestURI: "/api/read/x?p=b", .keyReused),
                .auth("/api/read/x", method: "GET", key: "Q", requestURI: "/api/read/x?p=%61", .keyReused),
                .auth("/api/read/x", method: "GET", key: "Q", requestURI: "/api/read/x", .keyReused),
                .auth("/api/read/x", method: "GET", .allowed(#""api-calls";r=1;t=*"#)),
            ]),
        ResponderScenario(
            "a denied request leaves no record: once charges are back its retry is charged",
            [
                .auth("/api/generate", .allowed(#""generate-image";r=1;t=*"#)),
                .auth("/api/generate", .allowed(#""generate-image";r=0;t=*"#)),
                .auth("/api/generate", key: "late", .outOfCharge("generate-image")),
                .auth("/api/generate", key: "late", .outOfCharge("generate-image")),
                .endpoint("topoff", method: "POST", token: "s3cret", body: #"{"poolId":"generate-image"}"#, .json(200, generateImage())),
                .auth("/api/generate", key: "late", .allowed(#""generate-image";r=1;t=*"#)),
                .auth("/api/generate", key: "late", .repeated),
            ]),
        ResponderScenario(
            "the header counts only on idempotent routes: elsewhere every request is charged",
            [
                .auth("/api/read", method: "PUT", key: "K", .allowed(#""generate-image";r=1;t=*"#)),
                .auth("/api/read", method: "PUT", key: "K", .allowed(#""generate-image";r=0;t=*"#)),
                .auth("/api/read", method: "PUT", key: "K", .outOfCharge("generate-image")),
            ]),
        ResponderScenario(
            "repeats are bounded (idempotencyMaxRepeats 1): past the bound each one is charged",
            config: fixture { $0.idempotencyMaxRepeats = 1 },
            [
                .auth("/api/read", method: "GET", key: "K", .allowed(#""api-calls";r=2;t=*"#)),
                .auth("/api/read", method: "GET", key: "K", .repeated),
                .auth("/api/read", method: "GET", key: "K", .allowed(#""api-calls";r=1;t=*"#)),
                .auth("/api/read", method: "GET", key: "K", .allowed(#""api-calls";r=0;t=*"#)),
                .auth("/api/read", method: "GET", key: "K", .outOfCharge("api-calls")),
                // Still bound to its request.
                .auth("/api/read/other", method: "GET", key: "K", .keyReused),
            ]),
        ResponderScenario(
            "the records a subject creates are bounded (idempotencyMaxKeysPerSubject 1): a key past it is charged on every repeat",
            config: fixture { $0.idempotencyMaxKeysPerSubject = 1 },
            [
                .auth("/api/read", method: "GET", subject: "alice", key: "k0", .allowed(#""api-calls";r=2;t=*"#)),
                .auth("/api/read", method: "GET", subject: "alice", key: "k1", .allowed(#""api-calls";r=1;t=*"#)),
                .auth("/api/read", method: "GET", subject: "alice", key: "k0", .repeated),
                .auth("/api/read", method: "GET", subject: "alice", key: "k1", .allowed(#""api-calls";r=0;t=*"#)),
                .auth("/api/read", method: "GET", subject: "alice", key: "k1", .outOfCharge("api-calls")),
                // Another subject has its own bound.
                .auth("/api/read", method: "GET", subject: "bob", key: "k1", .allowed(#""api-calls";r=2;t=*"#)),
                .auth("/api/read", method: "GET", subject: "bob", key: "k1", .repeated),
            ]),
    ]

    /// Tables that move the manual clock, so they run on the memory store only: the Redis
    /// script reads Redis's own clock (TIME), which a test cannot move, and waiting for real
    /// would take 36 s or more.
    public static let memoryOnly: [ResponderScenario] = [
        ResponderScenario(
            "a per-subject pool gives one charge back per interval: denied until then, allowed from then",
            [
                .auth("/api/read", method: "GET", subject: "alice", .allowed(#""api-calls";r=2;t=*"#)),
                .auth("/api/read", method: "GET", subject: "alice", .allowed(#""api-calls";r=1;t=*"#)),
                .auth("/api/read", method: "GET", subject: "alice", .allowed(#""api-calls";r=0;t=*"#)),
                .auth("/api/read", method: "GET", subject: "alice", .outOfCharge("api-calls")),
                .advance(35_999),
                .auth("/api/read", method: "GET", subject: "alice", .outOfCharge("api-calls")),
                .advance(1),
                .auth("/api/read", method: "GET", subject: "alice", .allowed(#""api-calls";r=0;t=*"#)),
                .auth("/api/read", method: "GET", subject: "alice", .outOfCharge("api-calls")),
            ]),
        ResponderScenario(
            "an idempotency record lives idempotencyTtlSeconds: after it the key is a new request",
            config: fixture { $0.idempotencyTtlSeconds = 60 },
            [
                .auth("/api/generate", key: "K", .allowed(#""generate-image";r=1;t=*"#)),
                .advance(59_999),
                .auth("/api/generate", key: "K", .repeated),
                .advance(1),
                .auth("/api/generate", key: "K", .allowed(#""generate-image";r=0;t=*"#)),
                .auth("/api/generate", key: "K", .repeated),
            ]),
    ]

    /// The fixture config, changed by `change`.
    static func fixture(_ change: (inout GateConfig) -> Void) -> GateConfig {
        var config = GateConfig.responderFixture()
        change(&config)
        return config
    }

    /// The usage JSON of the fixture config for `subject`, with these charges left (`metered`:
    /// the meter's count) and the times masked.
    public static func usage(
        subject: String = "203.0.113.7", image: Int64 = 2, apiCalls: Int64 = 3, credits: Int64 = 10, metered: Int64 = 0
    ) -> String {
        let pools = [
            generateImage(current: image),
            limited("api-calls", current: apiCalls, max: 3, hours: "0.01", refills: true, subject: subject),
            self.credits(subject: subject, current: credits),
            #"{"id":"meter","label":"meter","group":"","current":null,"max":null,"rechargeIntervalHours":null,"#
                + #""nextRechargeAt":null,"fullAt":null,"availableBalance":null,"usedBalance":\#(metered),"balanceLimit":null,"#
                + #""subject":"\#(subject)"}"#,
        ]
        return #"{"pools":["# + pools.joined(separator: ",") + "]}"
    }

    /// The usage JSON of the global generate-image pool with `current` charges left.
    static func generateImage(current: Int64 = 2) -> String {
        limited("generate-image", label: "Image generation", group: "AI", current: current, max: 2, hours: "2", refills: true)
    }

    /// The usage JSON of `subject`'s credits with `current` left.
    static func credits(subject: String, current: Int64) -> String {
        limited("credits", current: current, max: 10, hours: "null", refills: false, subject: subject)
    }

    /// The usage JSON of a limited pool: its times masked while it refills and is not full.
    static func limited(
        _ id: String, label: String? = nil, group: String = "", current: Int64, max: Int64, hours: String, refills: Bool,
        subject: String? = nil
    ) -> String {
        let time = refills && current < max ? "*" : "null"
        return #"{"id":"\#(id)","label":"\#(label ?? id)","group":"\#(group)","current":\#(current),"max":\#(max),"#
            + #""rechargeIntervalHours":\#(hours),"nextRechargeAt":\#(time),"fullAt":\#(time),"availableBalance":\#(current),"#
            + #""usedBalance":\#(max - current),"balanceLimit":\#(max)"# + (subject.map { #","subject":"\#($0)""# } ?? "") + "}"
    }
}
