/// Who settles a hold, and with what: nginx's line after the response, or the app's call.
public enum SettleReport: Sendable, Equatable {
    /// nginx's settlement line, reduced.
    case nginx(ResponseFacts)
    /// `POST /api/usage/settle`: the real amount, or nil for a refund.
    case app(amount: Int64?)
}
