import ChargeGateCore
import Logging

/// How a response's note becomes a log line's metadata. A value whose key carries a subject
/// (`LogKey.carriesSubject`) is logged as `s:` + a keyed hash unless subjects are logged plain:
/// the same for one subject within this process's logs, and not reversible by hashing every
/// IPv4 address (the key is random per process). The anonymous subject and an empty value are
/// logged as they are.
struct NoteMetadata: Sendable {
    /// `serve --log-subjects plain`.
    let plainSubjects: Bool
    /// The hash key.
    private let salt: String

    /// Hashing with `salt` (a random one per process by default) unless `plainSubjects`.
    init(plainSubjects: Bool, salt: String = Self.randomSalt()) {
        self.plainSubjects = plainSubjects
        self.salt = salt
    }

    /// 256 random bits as hex.
    static func randomSalt() -> String {
        (0..<4).map { _ in String(UInt64.random(in: 0...UInt64.max), radix: 16) }.joined()
    }

    /// `value` as a log line shows it under `key`.
    func shown(_ value: String, for key: LogKey) -> String {
        guard key.carriesSubject, !plainSubjects, value != SafeToken.anonymous, !value.isEmpty else { return value }
        return "s:" + SHA256.hex(salt + value).prefix(16)
    }

    /// The note's fields, plus nginx's request id (key form) when there is one.
    func metadata(for note: Response.Note, requestID: String?) -> Logger.Metadata {
        var metadata: Logger.Metadata = [:]
        for (key, value) in note.fields {
            metadata[key.rawValue] = .string(shown(value, for: key))
        }
        if let requestID, !requestID.isEmpty { metadata[LogKey.requestId.rawValue] = .string(SafeToken.key(for: requestID)) }
        return metadata
    }
}
