import ChargeGateCore

/// An error reply by which a cluster node declines a command without running it, read strictly.
///
/// A node checks where the command's keys live before it executes anything (`getNodeByQuery`
/// in Redis's `cluster.c`), so each of these answers means the command — a spend's script
/// included — did NOT run: sending it again, to the node named or after a wait, cannot spend
/// twice. The texts, as hiredis gives them (without the leading `-`):
///
/// - `MOVED <slot> <host>:<port>`: the slot lives on that node now; update the slot map.
/// - `ASK <slot> <host>:<port>`: the slot is being migrated and this command's keys are on the
///   importing node: send `ASKING` then the command there, once; the map does not change.
/// - `TRYAGAIN ...`: a multi-key command during the migration of its slot, with its keys split
///   between the two nodes: retry after a short wait.
/// - `CLUSTERDOWN ...`: the cluster (or this slot) is not served: give up (a 503).
///
/// The address is split at its last colon, so an IPv6 address comes unbracketed
/// (`MOVED 3999 ::1:7000`); an empty host (`MOVED 3999 :7000`, a node configured with
/// `cluster-preferred-endpoint-type unknown-endpoint`) means the host of the node that answered,
/// with the port given. Anything else — another spelling, extra or missing fields, a slot out of
/// 0...16383, a port out of 1...65535, a host with spaces or control bytes, or `?` (a node
/// announcing a host name it does not have) — is not a redirect (nil).
public enum ClusterRedirect: Sendable, Equatable {
    /// `MOVED`: `slot` now lives on `node`.
    case moved(slot: Int, node: RedisURL.HostPort)
    /// `ASK`: for this one command, `slot`'s keys are on `node` (send `ASKING` first).
    case ask(slot: Int, node: RedisURL.HostPort)
    /// `TRYAGAIN`: the slot is being migrated and the keys are split; retry after a wait.
    case tryAgain
    /// `CLUSTERDOWN`, with the node's text (`CLUSTERDOWN Hash slot not served`).
    case clusterDown(String)

    /// The longest host accepted in a redirect or a slot map (a DNS name is at most 253 bytes).
    public static let maxHostLength = 255

    /// Reads an error reply's text; nil when it is not one of the four answers, well formed.
    /// `answeredBy` is the node the command was sent to (its host stands in for an empty one).
    public init?(error message: String, answeredBy: RedisURL.HostPort) {
        let bytes = Array(message.utf8)
        let fields = bytes.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard let first = fields.first else { return nil }
        switch String(decoding: first, as: UTF8.self) {
        case "MOVED", "ASK":
            guard fields.count == 3, let slot = Self.slot(fields[1]), let node = Self.address(fields[2], answeredBy: answeredBy) else {
                return nil
            }
            self = first.elementsEqual("MOVED".utf8) ? .moved(slot: slot, node: node) : .ask(slot: slot, node: node)
        case "TRYAGAIN":
            self = .tryAgain
        case "CLUSTERDOWN":
            self = .clusterDown(message)
        default:
            return nil
        }
    }

    /// Reads a reply: a redirect when it is an error reply that is one, nil otherwise.
    public init?(_ reply: RedisValue, answeredBy: RedisURL.HostPort) {
        guard case .error(let message) = reply else { return nil }
        self.init(error: message, answeredBy: answeredBy)
    }

    /// Whether `message` claims to be a `MOVED` or `ASK` (its first word), readable or not: one
    /// that is not readable is still a command the node did not run.
    public static func claimsRedirect(_ message: String) -> Bool {
        message.hasPrefix("MOVED ") || message.hasPrefix("ASK ")
    }

    // MARK: - Fields

    /// A slot number: 1 to 5 decimal digits, 0...16383.
    static func slot(_ field: ArraySlice<UInt8>) -> Int? {
        guard let value = decimal(field, maxDigits: 5), ClusterSlot.all.contains(value) else { return nil }
        return value
    }

    /// `host:port`, split at the last colon; an empty host is `answeredBy`'s.
    private static func address(_ field: ArraySlice<UInt8>, answeredBy: RedisURL.HostPort) -> RedisURL.HostPort? {
        guard let colon = field.lastIndex(of: UInt8(ascii: ":")), let port = port(field[(colon + 1)...]) else { return nil }
        let hostBytes = field[..<colon]
        if hostBytes.isEmpty { return RedisURL.HostPort(host: answeredBy.host, port: port) }
        guard let host = host(hostBytes) else { return nil }
        return RedisURL.HostPort(host: host, port: port)
    }

    /// A port: 1 to 5 decimal digits, 1...65535.
    static func port(_ field: ArraySlice<UInt8>) -> Int? {
        guard let value = decimal(field, maxDigits: 5), (1...65535).contains(value) else { return nil }
        return value
    }

    /// A host as a node announces it: 1...255 bytes of printable ASCII without spaces, brackets
    /// or a `?` alone (Redis's stand-in for a host name it does not have).
    static func host(_ bytes: some Collection<UInt8>) -> String? {
        guard !bytes.isEmpty, bytes.count <= maxHostLength, !bytes.elementsEqual("?".utf8) else { return nil }
        for byte in bytes {
            guard (0x21...0x7E).contains(byte), byte != UInt8(ascii: "["), byte != UInt8(ascii: "]") else { return nil }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Unsigned decimal digits only (no sign, no spaces), at most `maxDigits` of them.
    private static func decimal(_ field: ArraySlice<UInt8>, maxDigits: Int) -> Int? {
        guard !field.isEmpty, field.count <= maxDigits else { return nil }
        var value = 0
        for byte in field {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))  // at most 99999: no overflow
        }
        return value
    }
}
