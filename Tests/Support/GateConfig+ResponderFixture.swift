import ChargeGateCore

extension GateConfig {
    /// The config the responder suites and most responder tables (`ResponderScenario`) start
    /// from: `generate-image` (global, 2 charges, one back every 2 h), `api-calls` (per
    /// subject, 3, one back every 36 s), `credits` (per subject, 10, never refilled) and `meter`
    /// (per subject, unlimited); `/api/generate` (POST) spends 1 image, `/api/paid` (any
    /// method) 1 api call, 5 credits and 1 on the meter, `/api/read` 1 api call on GET and 1
    /// image on PUT. Every route but PUT `/api/read` is idempotent; the admin token is `s3cret`.
    public static func responderFixture(devBypass: Bool = false) -> GateConfig {
        let hour: Int64 = 3_600_000
        var config = GateConfig()
        config.devBypass = devBypass
        config.adminToken = "s3cret"
        config.pools = [
            PoolConfig(
                id: "generate-image", capacity: .limited(2), recharge: .every(intervalMs: 2 * hour), rechargeIntervalHours: 2,
                label: "Image generation", group: "AI"),
            PoolConfig(
                id: "api-calls", capacity: .limited(3), recharge: .every(intervalMs: 36_000), rechargeIntervalHours: 0.01, scope: .subject),
            PoolConfig(id: "credits", capacity: .limited(10), recharge: .none, scope: .subject),
            PoolConfig(id: "meter", capacity: .unlimited, recharge: .none, scope: .subject),
        ]
        config.routes = [
            RouteConfig(prefix: "/api/generate", charges: [.init(poolIndex: 0, cost: 1)], methods: ["POST"], idempotent: true),
            RouteConfig(
                prefix: "/api/paid", charges: [.init(poolIndex: 1, cost: 1), .init(poolIndex: 2, cost: 5), .init(poolIndex: 3, cost: 1)],
                idempotent: true),
            RouteConfig(prefix: "/api/read", charges: [.init(poolIndex: 1, cost: 1)], methods: ["GET"], idempotent: true),
            RouteConfig(prefix: "/api/read", charges: [.init(poolIndex: 0, cost: 1)], methods: ["PUT"]),
        ]
        return config
    }
}
