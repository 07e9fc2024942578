/// How a hold settles: the pure rules of docs/settlement.md, which the memory store runs and the
/// Redis settle script twins (both against the same tables).
public enum Settlement {
    /// Why a hold was given back in full.
    public enum RefundReason: String, Sendable, Equatable {
        /// The status is in the route's `refund` list.
        case status
        /// The upstream never received the request, or the client left before it answered.
        case notDelivered = "not_delivered"
        /// The app asked for it.
        case app
    }

    /// What a report comes to under a policy.
    public enum Resolution: Sendable, Equatable {
        /// Given back in full.
        case refund(RefundReason)
        /// Charged exactly this amount on the metered pools (the difference to the hold given
        /// back, or spent on top).
        case amount(Int64)
        /// The hold is the charge: no `amount` configured, nothing to give back.
        case stands
        /// The amount is missing or not a non-negative integer: the hold stands, counted.
        case badAmount
        /// nginx's line for a route the app settles (`by: app`): ignored, the hold stays open.
        case ignored
    }

    /// The largest amount a report may carry: 2^53, the integers the Lua twin holds exactly.
    public static let maxAmount: Int64 = 1 << 53

    /// What `report` comes to under `policy`: a refund first (the status, or nothing
    /// delivered), then the amount (`amount`), else the hold stands.
    public static func resolve(_ report: SettleReport, policy: SettlePolicy) -> Resolution {
        let facts: ResponseFacts
        switch report {
        case .app(let amount):
            guard let amount else { return .refund(.app) }
            return (0...maxAmount).contains(amount) ? .amount(amount) : .badAmount
        case .nginx(let reported):
            facts = reported
        }
        if policy.by == .app { return .ignored }
        if policy.refunds(status: facts.status) { return .refund(.status) }
        if facts.nothingDelivered { return .refund(.notDelivered) }
        switch policy.amount {
        case nil:
            return .stands
        case .header:
            guard case .value(let value) = facts.amount else { return .badAmount }
            return .amount(value)
        case .bytesSent(let unit):
            return .amount(ceilDiv(facts.bytesSent, unit))
        case .upstreamMs(let unit):
            return .amount(ceilDiv(facts.upstreamMs, unit))
        }
    }

    /// `value / unit` rounded up (`value` ≥ 0, `unit` ≥ 1), `value` counted as at most
    /// `maxAmount` (which the Lua twin holds exactly), at most `maxAmount`.
    static func ceilDiv(_ value: Int64, _ unit: Int64) -> Int64 {
        guard value > 0, unit > 0 else { return 0 }
        let value = Swift.min(value, maxAmount)
        return Swift.min(maxAmount, value / unit + (value % unit == 0 ? 0 : 1))
    }

    /// What each pool of a hold is charged in the end: nothing on a refund, the amount on a
    /// metered pool (one whose cost is the route's: the hold), its held cost on the others
    /// (charged per call); nil when the hold stands as held.
    public static func charges(_ resolution: Resolution, holds: [HoldRecord.Item]) -> [Int64]? {
        switch resolution {
        case .refund:
            return holds.map { _ in 0 }
        case .amount(let amount):
            return holds.map { $0.metered ? amount : $0.held }
        case .stands, .badAmount, .ignored:
            return nil
        }
    }
}
