/// Turns one FastCGI request into an answer: the gate decision for the auth subrequest, a
/// usage or admin endpoint's JSON, or the metrics text. Each worker thread makes one around its
/// own store and deny cache; time comes only from the injected clock (for the deny cache) and
/// the store.
public struct Responder {
    typealias Param = WireProtocol.Param
    typealias Header = WireProtocol.Header

    /// The store this worker spends from.
    public let store: any ChargeStore
    /// Denials learned from the store, answered from memory until they end.
    public let denials: DenyCache
    /// The local clock, for the deny cache only (the store keeps its own clock).
    public let clock: any GateClock
    /// The metrics in Prometheus's text format, for the `metrics` role; nil answers 404.
    public let exposition: (@Sendable () -> String)?

    /// Creates a responder over `store`.
    public init(store: any ChargeStore, clock: any GateClock, denials: DenyCache = DenyCache(), exposition: (@Sendable () -> String)? = nil)
    {
        self.store = store
        self.clock = clock
        self.denials = denials
        self.exposition = exposition
    }

    /// Answers one request under `gate`: the one place a role is dispatched.
    public func respond(to request: some RequestParams, gate: Gate) -> Response {
        let role = request.param(Param.role)
        switch role.flatMap(WireProtocol.Role.init(rawValue:)) {
        case .auth: return authorize(request, gate: gate)
        case .usage: return usage(request, gate: gate)
        case .check: return check(request, gate: gate)
        case .topoff: return topOff(request, gate: gate)
        case .events: return events(request, gate: gate)
        case .metrics: return metrics(request)
        case .plan: return plan(request, gate: gate)
        case .settle: return settle(request, gate: gate)
        case nil:
            var response = Denial.serviceUnavailable.answer()
            response.note = .init(
                isError: true, message: "request without a known \(Param.role): denied; check the nginx snippet",
                fields: [(.role, role.map { SafeToken.key(for: $0) } ?? "none")])
            return response
        }
    }
}
