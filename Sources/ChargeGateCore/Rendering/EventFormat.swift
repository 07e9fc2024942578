import Foundation

/// How `charge-gate events` writes usage events.
public enum EventFormat: String, Sendable, CaseIterable {
    /// One JSON object per line (the shape of `GET /api/usage/events`).
    case jsonl
    /// RFC 4180 CSV with a header line.
    case csv

    /// The CSV header line: the columns of 0.3, then `kind`, `hold` and `status` (empty when
    /// the event has none).
    public static let csvHeader = "id,time,pool,subject,amount,route,method,uri,idempotencyKey,plan,kind,hold,status"

    /// `event` as one line, without the newline.
    public func line(_ event: UsageEvent) -> String {
        switch self {
        case .jsonl:
            var w = JSONWriter()
            Responder.writeEvent(&w, event)
            return w.text
        case .csv:
            return [
                event.id, String(event.time), event.pool, event.context.subject, String(event.amount),
                event.context.route, event.context.method, event.context.uri, event.context.idempotencyKey, event.context.plan,
                event.kind.rawValue, event.context.hold, event.status.map(String.init) ?? "",
            ].map(Self.csvField).joined(separator: ",")
        }
    }

    /// A CSV field, quoted when it holds a comma, quote, CR or LF. Looked for as bytes: "\r\n"
    /// is one Swift Character, equal to neither "\r" nor "\n" (a fuzz finding).
    static func csvField(_ text: String) -> String {
        let special: Set<UInt8> = [UInt8(ascii: ","), UInt8(ascii: "\""), UInt8(ascii: "\n"), UInt8(ascii: "\r")]
        guard text.utf8.contains(where: special.contains) else { return text }
        var out = "\""
        for scalar in text.unicodeScalars {
            if scalar == "\"" { out += "\"\"" } else { out.unicodeScalars.append(scalar) }
        }
        return out + "\""
    }

    /// Parses a time given as epoch milliseconds or ISO 8601 (`2026-11-21T10:00:00Z`).
    public static func parseTime(_ text: String) -> Int64? {
        if let ms = Int64(text), ms >= 0 { return ms }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return Int64(date.timeIntervalSince1970 * 1000) }
        return nil
    }
}
