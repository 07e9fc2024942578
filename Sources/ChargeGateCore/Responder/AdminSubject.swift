/// How an admin names a subject (a top-off, `/api/usage/plan`, `/api/usage?subject=`, the events
/// filter, `charge-gate status`, `events` and `plan`): `subject`, as nginx passes it, or
/// `subjectKey`, the key form usage JSON and events show. Two parameters, never one guessed
/// from its text: nginx may pass a subject that itself looks like a key form (`h:` + 32 hex
/// digits), and that is another subject, whose key form is its hash.
public enum AdminSubject {
    /// Why a subject was not taken: the parameter at fault and what is wrong with it.
    public struct Refusal: Error, Sendable, Equatable {
        /// `subject`, `subjectKey`, or both (`subject, subjectKey`).
        public var parameter: String
        /// What is wrong, without the value.
        public var reason: String

        /// `parameter: reason`, as a 400's message.
        public var message: String { parameter + ": " + reason }
    }

    /// The key form of the subject named by `subject` (as nginx passes it: `SafeToken.key(for:)`,
    /// the one function a subject becomes a key by, a client's or an admin's) or by
    /// `subjectKey` (a key form, taken as it is when it is one: `SafeToken.isKey`); nil when
    /// neither is given. Both at once, or a `subjectKey` that is no key form, are refused.
    public static func key(subject: String?, subjectKey: String?) throws(Refusal) -> String? {
        switch (subject, subjectKey) {
        case (nil, nil):
            return nil
        case (let subject?, nil):
            return SafeToken.key(for: subject)
        case (nil, let key?):
            guard SafeToken.isKey(key) else { throw Refusal(parameter: "subjectKey", reason: notAKey) }
            return key
        case (_?, _?):
            throw Refusal(parameter: "subject, subjectKey", reason: "give one of them, not both")
        }
    }

    /// Why a `subjectKey` was refused.
    public static let notAKey =
        "not a subject's key form as usage and events show it (h: and 32 lowercase hex digits, or 1 to 64 of"
        + " A-Z a-z 0-9 . _ : @ - not starting with h:); name a subject as nginx passes it with subject"
}
