import ChargeGateCore
import Logging
import Testing

@testable import ChargeGateServer

/// Subjects in log lines: hashed by key (`LogKey.carriesSubject`), not by spelling.
@Suite struct NoteMetadataTests {
    @Test(arguments: LogKey.allCases)
    func onlyTheKeysThatCarrySubjectsAreHashed(_ key: LogKey) {
        let hashed = NoteMetadata(plainSubjects: false, salt: "salt")
        let shown = hashed.shown("203.0.113.7", for: key)
        #expect(key.carriesSubject == LogKey.subjectKeys.contains(key))
        if key.carriesSubject {
            #expect(shown == "s:" + SHA256.hex("salt" + "203.0.113.7").prefix(16))
        } else {
            #expect(shown == "203.0.113.7")
        }
    }

    @Test func theSubjectKeysAreTheSubject() {
        #expect(LogKey.subjectKeys == [.subject])
        #expect(LogKey.allCases.filter(\.carriesSubject) == [.subject])
    }

    @Test(arguments: [
        (value: "203.0.113.7", plain: false, hashed: true),
        (value: "203.0.113.7", plain: true, hashed: false),
        (value: SafeToken.anonymous, plain: false, hashed: false),
        (value: "", plain: false, hashed: false),
    ])
    func aSubjectIsHashedUnlessPlainAnonymousOrEmpty(value: String, plain: Bool, hashed: Bool) {
        let metadata = NoteMetadata(plainSubjects: plain, salt: "k")
        let shown = metadata.shown(value, for: .subject)
        #expect(shown == (hashed ? "s:" + SHA256.hex("k" + value).prefix(16) : value))
    }

    @Test func oneSubjectHashesAlikeWithinAProcessAndApartAcrossProcesses() {
        let first = NoteMetadata(plainSubjects: false)
        let second = NoteMetadata(plainSubjects: false)
        #expect(first.shown("alice", for: .subject) == first.shown("alice", for: .subject))
        #expect(first.shown("alice", for: .subject) != first.shown("bob", for: .subject))
        #expect(first.shown("alice", for: .subject) != second.shown("alice", for: .subject))
    }

    @Test func aNoteBecomesMetadataByKeyName() {
        let note = Response.Note(
            isError: false, message: "denied out_of_charge",
            fields: [(.pool, "generate-image"), (.subject, "203.0.113.7"), (.retryAfterMs, "1200"), (.route, "/api/generate")])
        let metadata = NoteMetadata(plainSubjects: false, salt: "k").metadata(for: note, requestID: "abc123")
        let expected: Logger.Metadata = [
            "pool": "generate-image",
            "subject": .string("s:" + SHA256.hex("k203.0.113.7").prefix(16)),
            "retryAfterMs": "1200",
            "route": "/api/generate",
            "requestId": .string(SafeToken.key(for: "abc123")),
        ]
        #expect(metadata == expected)
        #expect(NoteMetadata(plainSubjects: false, salt: "k").metadata(for: note, requestID: "")["requestId"] == nil)
    }
}
