/// A stream id `ms-seq`, ordered as Redis orders them.
public struct EventID: Comparable, Sendable {
    /// Milliseconds part.
    public var ms: Int64
    /// Sequence part.
    public var seq: Int64

    /// Parses `ms-seq` (or `ms`, seq 0); nil when malformed.
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let ms = Int64(parts[0]), ms >= 0 else { return nil }
        let seq = parts.count == 2 ? Int64(parts[1]) : 0
        guard let seq, seq >= 0 else { return nil }
        self.ms = ms
        self.seq = seq
    }

    public static func < (a: EventID, b: EventID) -> Bool {
        (a.ms, a.seq) < (b.ms, b.seq)
    }

    /// Whether the stream id `a` comes before `b` as Redis orders them (text order for a
    /// malformed id, so that sorting never traps).
    public static func precedes(_ a: String, _ b: String) -> Bool {
        switch (EventID(a), EventID(b)) {
        case let (x?, y?): return x < y
        default: return a < b
        }
    }
}
