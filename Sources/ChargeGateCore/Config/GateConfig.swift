/// The whole validated config file.
public struct GateConfig: Sendable, Equatable {
    /// Where to listen; default `/run/charge-gate/charge.sock`.
    public var listen: ListenAddress = .unix(path: "/run/charge-gate/charge.sock")
    /// Worker threads; nil means 2 x cores.
    public var workers: Int?
    /// Redis URL; nil means the memory store.
    public var redis: RedisURL?
    /// Connect and command timeout in milliseconds.
    public var redisTimeoutMs: Int = 100
    /// Replicas that must acknowledge each spend (Redis `WAIT`) before it is allowed; 0: none.
    public var redisMinReplicas: Int = 0
    /// How long a spend waits for `redisMinReplicas` acknowledgements, in milliseconds.
    public var redisReplicaWaitMs: Int = 50
    /// Prefix of every Redis key.
    public var keyPrefix: String = "charge:"
    /// When true, consumption always succeeds (reads still work).
    public var devBypass: Bool = false
    /// Bearer token for the admin endpoints; nil means they answer 403.
    public var adminToken: String?
    /// Where a subject whose per-subject period or credits pool is used up can upgrade (a path
    /// starting with `/`, or an http(s) URL): in the 429/402 body and on the usage page. A
    /// plan's own wins; nil: none.
    public var upgradeUrl: String?
    /// The request header that carries an idempotency key.
    public var idempotencyHeader: String = "Idempotency-Key"
    /// How long an idempotency record is kept, in seconds.
    public var idempotencyTtlSeconds: Int = 86_400
    /// Free repeats of one allowed request with the same idempotency key, within the TTL.
    public var idempotencyMaxRepeats: Int = 5
    /// Idempotency records one subject may create per TTL window (bounds what one client can
    /// make the store hold); past it, keys are not recorded and retries are charged.
    public var idempotencyMaxKeysPerSubject: Int = 10_000
    /// Usage events kept in the stream (approximate trim); 0 disables the event log.
    public var eventsMaxLen: Int = 1_000_000
    /// The memory store's event log size bound, in bytes (oldest events go first); Redis
    /// bounds its stream by `eventsMaxLen` only.
    public var memoryEventsMaxBytes: Int = 64 << 20
    /// How long nginx may answer a 429 from its own cache (the edge deny cache), in seconds;
    /// 0 turns it off. Bounds how long a top-off, a plan change or a reload can go unseen there.
    public var edgeDenySeconds: Int = 1
    /// Unix socket mode, as octal (default 0o660).
    public var socketMode: Int = 0o660
    /// Group that owns the unix socket; nil keeps the process's group.
    public var socketGroup: String?
    /// The pools, in config order.
    public var pools: [PoolConfig] = []
    /// The routes, in config order.
    public var routes: [RouteConfig] = []
    /// The plans, in config order; empty when the config gives none.
    public var plans: [PlanConfig] = []
    /// Index in `plans` of the plan a subject has when nothing else names one; nil without plans.
    public var defaultPlan: Int?
    /// Whether denials block (`enforce`) or only show (`shadow`); a route's own `mode` wins.
    public var mode: GateMode = .enforce
    /// How long a hold may be settled, in seconds; a hold not settled by then stays charged as
    /// held.
    public var settleWindowSeconds: Int = 3600
    /// The response header in which the app reports a settled request's real amount.
    public var amountHeader: String = "X-Charge-Amount"
    /// The unix datagram socket nginx's settlement lines arrive on; nil: `settle.sock` beside
    /// a unix `listen` socket (`settleSocketPath`).
    public var settleListen: String?

    /// Creates an empty config (defaults everywhere).
    public init() {}

    /// The CGI parameter name nginx uses for the idempotency header (`HTTP_IDEMPOTENCY_KEY`).
    public var idempotencyParam: String {
        "HTTP_" + idempotencyHeader.uppercased().map { $0 == "-" ? "_" : $0 }.map(String.init).joined()
    }

    /// Whether a route settles after the response (then the settlement socket is bound).
    public var settles: Bool { routes.contains { $0.settle != nil } }

    /// The settlement socket's path: `settleListen`, else `settle.sock` beside a unix `listen`
    /// socket; nil when neither is known (`listen` is TCP or inherited without `settleListen`).
    public var settleSocketPath: String? {
        if let settleListen { return settleListen }
        guard case .unix(let path) = listen else { return nil }
        guard let slash = path.lastIndex(of: "/") else { return "settle.sock" }
        return String(path[...slash]) + "settle.sock"
    }

    /// The `$upstream_http_*` variable nginx logs the amount header in
    /// (`$upstream_http_x_charge_amount`): the settlement `log_format` must name it.
    public var amountVariable: String {
        "$upstream_http_" + amountHeader.lowercased().map { $0 == "-" ? "_" : $0 }.map(String.init).joined()
    }

    /// Index of the plan with this id.
    public func planIndex(id: String) -> Int? {
        plans.firstIndex { $0.id == id }
    }

    /// Index of the pool with this id.
    public func poolIndex(id: String) -> Int? {
        pools.firstIndex { $0.id == id }
    }
}
