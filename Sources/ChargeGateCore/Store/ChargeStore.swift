/// A source of wall-clock time in epoch milliseconds. The core never reads the clock itself:
/// the server passes the system clock, tests pass a clock they move by hand.
public protocol GateClock: Sendable {
    /// Epoch milliseconds now.
    func nowMs() -> Int64
}

/// One pool's part of a spend: which key, which rules, how much.
public struct SpendItem: Sendable, Equatable {
    /// The pool's id (for events and denials).
    public var poolId: String
    /// The full store key (`keyPrefix + poolId [+ ":" + subject]`).
    public var key: String
    /// The cap; nil for an unlimited pool (never denies, counts use).
    public var max: Int64?
    /// Recharge interval; nil when the pool never refills by itself.
    public var intervalMs: Int64?
    /// Charges to spend.
    public var cost: Int64
    /// Whether the key should expire when the pool would be full again (per-subject pools).
    public var expires: Bool

    /// Creates an item.
    public init(poolId: String, key: String, max: Int64?, intervalMs: Int64?, cost: Int64, expires: Bool) {
        self.poolId = poolId
        self.key = key
        self.max = max
        self.intervalMs = intervalMs
        self.cost = cost
        self.expires = expires
    }
}

/// What a usage event records besides pool and amount.
public struct EventContext: Sendable, Equatable {
    /// Subject in its key form.
    public var subject: String
    /// The matched route's prefix.
    public var route: String
    /// HTTP method.
    public var method: String
    /// The charged (normalised) URI.
    public var uri: String
    /// The idempotency key in its key form, or "".
    public var idempotencyKey: String

    /// Creates a context.
    public init(subject: String, route: String, method: String, uri: String, idempotencyKey: String) {
        self.subject = subject
        self.route = route
        self.method = method
        self.uri = uri
        self.idempotencyKey = idempotencyKey
    }
}

/// The idempotency record a spend checks and writes (a route with `idempotent: true`, a
/// request carrying the key header). It binds the request: a key used again for another route,
/// method or URI is refused, and an allowed request is repeated free at most `maxRepeats` times.
public struct IdempotencyCheck: Sendable, Equatable {
    /// Store key of the record (`KeySpace.idempotency`).
    public var key: String
    /// 32 hex digits naming the request: the route itself (prefix and methods), the method and
    /// the normalised URI (`Gate.fingerprint`).
    public var fingerprint: String
    /// How long a record lives, in ms.
    public var ttlMs: Int64
    /// Free repeats of one allowed request within the TTL; later ones are decided afresh.
    public var maxRepeats: Int64
    /// Store key of the subject's record counter (`KeySpace.idempotencyQuota`).
    public var quotaKey: String
    /// Records one subject may create per TTL window; past it a request is charged as if it
    /// carried no key (its retries are charged again: never a free pass).
    public var maxRecords: Int64

    /// Creates a check.
    public init(key: String, fingerprint: String, ttlMs: Int64, maxRepeats: Int64, quotaKey: String, maxRecords: Int64) {
        self.key = key
        self.fingerprint = fingerprint
        self.ttlMs = ttlMs
        self.maxRepeats = maxRepeats
        self.quotaKey = quotaKey
        self.maxRecords = maxRecords
    }
}

/// Everything one gated request spends, decided atomically: all items or none.
public struct SpendRequest: Sendable, Equatable {
    /// The pools, in route order.
    public var items: [SpendItem]
    /// The idempotency record to check and write; nil when the request carries no key or its
    /// route is not idempotent.
    public var idempotency: IdempotencyCheck?
    /// The event stream key; nil when the event log is off.
    public var eventsKey: String?
    /// Approximate cap on the stream's length.
    public var eventsMaxLen: Int
    /// What the events record.
    public var context: EventContext

    /// Creates a request.
    public init(
        items: [SpendItem], idempotency: IdempotencyCheck? = nil,
        eventsKey: String? = nil, eventsMaxLen: Int = 0, context: EventContext
    ) {
        self.items = items
        self.idempotency = idempotency
        self.eventsKey = eventsKey
        self.eventsMaxLen = eventsMaxLen
        self.context = context
    }
}

/// The store's decision on a spend.
public enum SpendOutcome: Sendable, Equatable {
    /// Spent. `remaining[i]` is what item i holds afterwards (for an unlimited pool: its use);
    /// `fullAt[i]` is when it is full again (epoch ms; nil when it never refills or is unlimited).
    case allowed(now: Int64, remaining: [Int64], fullAt: [Int64?])
    /// An idempotent repeat of an allowed request: allowed, nothing spent.
    case repeated(now: Int64)
    /// The idempotency key was first used for another request (route, method or URI): refused,
    /// nothing spent, nothing recorded.
    case keyReused(now: Int64)
    /// Item `item` (a recharging pool) lacks charges; the longest wait over every such pool.
    case outOfCharge(item: Int, retryAfterMs: Int64)
    /// Item `item` (a pool that never refills) lacks charges: waiting would not help.
    case insufficientCredits(item: Int, available: Int64, required: Int64)
}

/// One recorded spend.
public struct UsageEvent: Sendable, Equatable {
    /// Stream id (`ms-seq`), increasing.
    public var id: String
    /// Epoch milliseconds.
    public var time: Int64
    /// Pool id.
    public var pool: String
    /// Charges spent.
    public var amount: Int64
    /// Route, subject, method, URI, idempotency key.
    public var context: EventContext

    /// Creates an event.
    public init(id: String, time: Int64, pool: String, amount: Int64, context: EventContext) {
        self.id = id
        self.time = time
        self.pool = pool
        self.amount = amount
        self.context = context
    }
}

/// A filter over the event log, read page by page.
public struct EventQuery: Sendable, Equatable {
    /// Only events at or after this epoch ms.
    public var since: Int64?
    /// Only events at or before this epoch ms.
    public var until: Int64?
    /// Only this pool.
    public var pool: String?
    /// Only this subject (key form).
    public var subject: String?
    /// Resume after this event id (exclusive); nil starts at `since`.
    public var after: String?
    /// Page size.
    public var limit: Int

    /// Creates a query.
    public init(since: Int64? = nil, until: Int64? = nil, pool: String? = nil, subject: String? = nil, after: String? = nil, limit: Int = 1000) {
        self.since = since
        self.until = until
        self.pool = pool
        self.subject = subject
        self.after = after
        self.limit = limit
    }
}

/// One page of events and where the next begins.
public struct EventPage: Sendable, Equatable {
    /// Matching events, oldest first.
    public var events: [UsageEvent]
    /// Pass as `after` for the next page; nil when the log is exhausted.
    public var next: String?

    /// Creates a page.
    public init(events: [UsageEvent], next: String?) {
        self.events = events
        self.next = next
    }
}

/// Why the store could not answer. Every case means "fail closed": the gate answers 503.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No connection could be made (or it is backing off after a failure).
    case unavailable(String)
    /// The store did not answer within the timeout.
    case timeout
    /// The store answered something the gate cannot use (a corrupt key, a script error).
    case protocolError(String)

    /// A one-line reason, free of secrets.
    public var description: String {
        switch self {
        case .unavailable(let why): return "store unavailable: \(why)"
        case .timeout: return "store timed out"
        case .protocolError(let why): return "store error: \(why)"
        }
    }
}

/// Where bucket state lives: the Redis store (one per worker thread, each with its own
/// connection) or the memory store (one shared by every worker of the process).
public protocol ChargeStore: AnyObject {
    /// Spends every item of `request` or none, atomically, with the idempotency record and the
    /// event append decided in the same step.
    func spend(_ request: SpendRequest) throws(StoreError) -> SpendOutcome
    /// The stored states of `keys` (nil where missing) and the store's clock, without writing.
    func peek(_ keys: [String]) throws(StoreError) -> (now: Int64, states: [BucketState?])
    /// Adds `amount` (nil: fills) to one bucket, atomically; returns the new state.
    func topOff(_ item: SpendItem, amount: Int64?) throws(StoreError) -> (now: Int64, state: BucketState)
    /// One page of the event log at `stream`.
    func events(stream: String, _ query: EventQuery) throws(StoreError) -> EventPage
}
