import Foundation

/// A subject's stored plan (docs/config.md, plans), set through the admin API or the CLI: the plan's id and
/// the period anchor. Stored as `{"plan":"ID","periodAnchor":MS}` (the anchor left out when
/// none) under `KeySpace.plan(subject:)`, with no expiry.
public struct PlanRecord: Sendable, Equatable {
    /// The plan's id, as stored (it may name a plan the config no longer has).
    public var plan: String
    /// Epoch ms the subject's periods count from; nil: calendar periods in UTC.
    public var periodAnchor: Int64?

    /// Creates a record.
    public init(plan: String, periodAnchor: Int64? = nil) {
        self.plan = plan
        self.periodAnchor = periodAnchor
    }

    /// The stored text.
    public var text: String {
        var w = JSONWriter()
        w.beginObject()
        w.field("plan", plan)
        if let periodAnchor { w.field("periodAnchor", periodAnchor) }
        w.endObject()
        return w.text
    }

    private struct Stored: Decodable {
        var plan: String
        var periodAnchor: Int64?
    }

    /// Reads the stored text; a value that is not such a record reads as the plan "" (which
    /// no config has: the subject gets the default plan, never more).
    public init(text: String) {
        guard let stored = try? JSONDecoder().decode(Stored.self, from: Data(text.utf8)),
            stored.periodAnchor.map({ (0..<Limits.exactInteger).contains($0) }) ?? true
        else {
            self.init(plan: "")
            return
        }
        self.init(plan: stored.plan, periodAnchor: stored.periodAnchor)
    }
}
