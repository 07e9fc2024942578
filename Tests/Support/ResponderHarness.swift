import ChargeGateCore

/// A suite that asks a responder on the memory store, for the suites of plans and upgrade URLs:
/// the suite keeps the store, the clock, the deny cache and the gate; the harness makes the
/// responder and sends auth requests the way nginx's snippets do.
public protocol ResponderHarness {
    /// The store the responder spends on.
    var store: MemoryStore { get }
    /// The clock it reads.
    var clock: ManualClock { get }
    /// Its deny cache (kept by the suite: one per test, as one per worker).
    var denials: DenyCache { get }
    /// The compiled config.
    var gate: Gate { get }
}

extension ResponderHarness {
    /// A responder over the suite's store, clock and deny cache.
    public var responder: Responder { Responder(store: store, clock: clock, denials: denials) }

    /// The auth request for `uri` by `subject`, with nginx's `$charge_gate_plan` when given.
    public func auth(_ uri: String, subject: String = "s1", plan: String? = nil) -> Response {
        var request = FakeRequest.auth(uri, subject: subject)
        if let plan { request.params["CHARGE_GATE_PLAN"] = plan }
        return responder.respond(to: request, gate: gate)
    }

    /// The value of the answer's header `name`, nil when it has none.
    public func header(_ response: Response, _ name: String) -> String? { response.headers.first { $0.name == name }?.value }
}
