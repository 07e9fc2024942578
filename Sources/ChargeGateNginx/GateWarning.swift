/// Something worth an operator's look that does not make a route free (exit status 0, 1 with
/// `--strict`; except `noGatedServer` with routes in the config, which fails the report).
public struct GateWarning: Sendable, Equatable, CustomStringConvertible {
    /// The kinds of warning.
    public enum Kind: String, Sendable {
        /// A server that does not use the gate at all.
        case serverWithoutGate = "server_without_gate"
        /// The auth location lets nginx resend a subrequest to another responder.
        case nextUpstream = "fastcgi_next_upstream"
        /// The config has no routes, so nothing is checked.
        case noRoutes = "no_routes"
        /// No server uses the gate (with routes in the config, the report fails).
        case noGatedServer = "no_gated_server"
        /// The auth location's `fastcgi_pass` does not reach the config's `listen`.
        case listenMismatch = "listen_mismatch"
        /// SSI is on where charged routes are a GET subrequest away (no access phase there).
        case ssiSubrequest = "ssi_subrequest"
        /// An `error_page` in effect in the auth location makes nginx answer the auth
        /// subrequest (with the responder's status kept, or an error).
        case authErrorPage = "auth_error_page"
        /// The keepalive profile where nginx keeps no connection: the upstream has no
        /// `keepalive` (or the auth location passes to an address directly).
        case keepaliveUnused = "keepalive_unused"
        /// An auth location with a `fastcgi_cache` (the edge profile) and `fastcgi_keep_conn on`
        /// (the keepalive profile's) both in effect.
        case authProfileMixed = "auth_profile_mixed"
    }

    /// The kind.
    public var kind: Kind
    /// What it is.
    public var message: String
    /// Where (nil for the configuration as a whole).
    public var location: NginxSourceLocation?

    /// Creates a warning.
    public init(_ kind: Kind, _ message: String, at location: NginxSourceLocation?) {
        self.kind = kind
        self.message = message
        self.location = location
    }

    /// `FILE:LINE: message`.
    public var description: String {
        guard let location else { return message }
        return "\(location): \(message)"
    }
}
