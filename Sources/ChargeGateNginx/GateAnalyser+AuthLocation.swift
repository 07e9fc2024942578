import ChargeGateCore

extension GateAnalyser {
    /// An `error_page` as nginx reads it (`ngx_http_core_error_page`).
    struct ErrorPageDirective {
        /// The directive.
        var directive: NginxDirective
        /// The statuses it takes.
        var codes: [Int]
        /// nil: the status stays (no `=`); 0: the target's own status (`=`); else `=N`.
        var override: Int?
        /// A URI, `@name`, or a URL.
        var target: String

        /// Reads `error_page CODE… [=[N]] TARGET`; nil when malformed.
        init?(_ directive: NginxDirective) {
            let values = directive.values
            guard values.count >= 2, let target = values.last else { return nil }
            self.directive = directive
            self.target = target
            codes = []
            for value in values.dropLast() {
                if value.hasPrefix("=") {
                    override = value.count == 1 ? 0 : Int(value.dropFirst()) ?? 0
                } else if let code = Int(value) {
                    codes.append(code)
                }
            }
        }
    }

    /// What the auth subrequest gets from an error page.
    enum ErrorPageAnswer {
        /// A 2xx (or the target's own status, which may be one): an allow.
        case allow
        /// The original status (the target only gives the body).
        case kept
        /// Another status.
        case status(Int)
        /// The target's own status (`=`), and the target cannot be followed.
        case unknown
    }

    /// An error page in effect in an auth location, with the statuses of the auth subrequest it
    /// takes.
    struct AuthErrorPage {
        /// The error page.
        var page: ErrorPageDirective
        /// The responder's denials it takes (401, 403), with `fastcgi_intercept_errors on`.
        var denials: [Int]
        /// nginx's own failures it takes (500, 502, 503, 504: the responder down, hung, failing).
        var failures: [Int]
        /// The `fastcgi_intercept_errors on` in effect.
        var intercept: NginxDirective?

        /// `denies it (403; fastcgi_intercept_errors on (FILE:LINE)) or is down or hung (502 504)`.
        var when: String {
            var parts: [String] = []
            if let intercept, !denials.isEmpty {
                parts.append(
                    "denies it (\(denials.map(String.init).joined(separator: " ")); \(intercept.summary()) (\(intercept.location)))")
            }
            if !failures.isEmpty { parts.append("is down or hung (\(failures.map(String.init).joined(separator: " ")))") }
            return parts.joined(separator: " or ")
        }
    }

    /// The statuses an auth subrequest may end with and an error page may take: nginx's own
    /// 500/502/503/504 (the responder down, hung, failing), and the responder's 401/403 when
    /// `fastcgi_intercept_errors on` lets error pages take its answers.
    private func authErrorPages(_ conf: Int) -> [AuthErrorPage] {
        let intercept = model.inherited("fastcgi_intercept_errors", from: conf).flatMap { $0.values.first == "on" ? $0 : nil }
        var out: [AuthErrorPage] = []
        for directive in model.inheritedList(["error_page"], from: conf) {
            guard let page = ErrorPageDirective(directive) else { continue }
            let denials = intercept == nil ? [] : page.codes.filter { $0 == 401 || $0 == 403 }
            let failures = page.codes.filter { [500, 502, 503, 504].contains($0) }
            if !denials.isEmpty || !failures.isEmpty {
                out.append(AuthErrorPage(page: page, denials: denials, failures: failures, intercept: intercept))
            }
        }
        return out
    }

    /// What an error page answers the auth subrequest, and how findings name its target
    /// (`ngx_http_send_error_page`: `=N` sets the status, `=` takes the target's, none keeps the
    /// original; a target that answers 3xx or more itself gives that).
    private func answer(of page: ErrorPageDirective, conf: Int) -> (ErrorPageAnswer, String) {
        // Without an ending to go by: `=N` answers N, `=` the target's unknown status, none keeps it.
        let undecided: ErrorPageAnswer
        switch page.override {
        case .none: undecided = .kept
        case .some(0): undecided = .unknown
        case .some(let status): undecided = (200..<300).contains(status) ? .allow : .status(status)
        }
        guard let server = model.server(of: conf), !page.target.contains("$") else { return (undecided, page.target) }
        let state = subrequestState(page.target, method: "GET", mainURI: "/")
        let endings: [InternalEnding]
        if page.target.hasPrefix("@") {
            guard let named = model[server].namedLocations[page.target] else { return (.status(500), page.target) }
            endings = followRewrite(state, named, in: server)
        } else if page.target.hasPrefix("/") {
            var sub = state
            sub.uri = String(page.target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
            endings = followInternal(sub, in: server)
        } else {
            return (.status(page.override.flatMap { (301...308).contains($0) ? $0 : nil } ?? 302), page.target)
        }
        var result: (ErrorPageAnswer, String)?
        for ending in endings {
            let own: Int?
            let name: String
            switch ending {
            case .answered(let status, let directive):
                own = status
                name = "\(page.target), answered by \(directive.summary()) (\(directive.location))"
            case .served(let conf, _):
                own = nil
                let (title, place) = describeConf(conf)
                name = page.target.hasPrefix("@") ? "\(title) (\(place))" : "\(page.target), served by \(title) (\(place))"
            case .other:
                continue
            }
            let answer: ErrorPageAnswer
            if let own, own >= 300 {
                answer = .status(own)
            } else if let override = page.override {
                let status = override == 0 ? (own ?? 200) : override
                answer = (200..<300).contains(status) ? .allow : .status(status)
            } else {
                answer = .kept
            }
            if case .allow = answer { return (answer, name) }
            if result == nil { result = (answer, name) }
        }
        return result ?? (undecided, page.target)
    }

    /// NOT GATED when nginx can answer the auth subrequest 2xx in the gate's auth location
    /// (`conf`, after inheritance) beside the responder: an error page that turns a denial (with
    /// `fastcgi_intercept_errors on`) or a failure into a 2xx, or a cache that stores the
    /// responder's allow (a cache in effect after nginx's merge, which a `fastcgi_store` turns
    /// off; a validity for 204 while X-Accel-Expires, by which the responder forbids it, is
    /// ignored); UNDECIDED when an error page takes its target's status (`=`) and
    /// the target cannot be followed.
    func answeredBesideResponder(_ conf: Int, _ probe: GateProbe) -> GateVerdict? {
        var block = conf
        if model[block].kind == .condition, let parent = model[block].parent { block = parent }
        let (title, place) = describeConf(block)
        for entry in authErrorPages(conf) {
            let (answer, target) = answer(of: entry.page, conf: conf)
            let page = entry.page
            if case .unknown = answer {
                let detail =
                    "cannot tell what \(page.directive.summary()) (\(page.directive.location)) in effect in the gate's auth \(title) "
                    + "(\(place)) answers the auth subrequest when the responder \(entry.when): \(target) takes its own status, and a "
                    + "2xx there is an allow"
                return .undecided(GateFinding(.undecidable, probe: probe, detail: detail, at: page.directive.location))
            }
            guard case .allow = answer else { continue }
            let outcome =
                page.override == 0 ? "takes its status: a 2xx there is an allow" : "answers it \(page.override ?? 200): an allow"
            let detail =
                "\(page.directive.summary()) (\(page.directive.location)) in effect in the gate's auth \(title) (\(place)) sends the "
                + "auth subrequest to \(target) when the responder \(entry.when), and \(outcome)"
            return .notGated(GateFinding(.authAnswered, probe: probe, detail: detail, at: page.directive.location))
        }
        if let (detail, at) = cachedAllow(conf, title: title, place: place) {
            return .notGated(GateFinding(.authAnswered, probe: probe, detail: detail, at: at))
        }
        return nil
    }

    private func cachedAllow(_ conf: Int, title: String, place: NginxSourceLocation) -> (String, NginxSourceLocation)? {
        guard let cache = cacheInEffect(conf), let ignore = model.inherited("fastcgi_ignore_headers", from: conf),
            ignore.values.contains(where: { $0.lowercased() == "x-accel-expires" })
        else { return nil }
        let valid = model.inheritedList(["fastcgi_cache_valid"], from: conf).first { directive in
            let values = directive.values
            guard let time = values.last, !Self.isZeroTime(time) else { return false }
            let codes = values.count == 1 ? ["200", "301", "302"] : Array(values.dropLast())
            return codes.contains("any") || codes.contains("204")
        }
        guard let valid else { return nil }
        let never = model.inheritedList(["fastcgi_no_cache"], from: conf).contains { directive in
            directive.values.contains { !$0.isEmpty && $0 != "0" && !$0.contains("$") }
        }
        if never { return nil }
        let detail =
            "\(cache.summary()) (\(cache.location)) in effect in the gate's auth \(title) (\(place)) stores the responder's allow (204): "
            + "\(valid.summary()) (\(valid.location)) is in effect, and X-Accel-Expires, by which the responder forbids it, is ignored "
            + "(\(ignore.summary()) (\(ignore.location))); the next auth subrequest with the same key is answered 204 from the "
            + "cache, not by the responder"
        return (detail, ignore.location)
    }

    /// `0`, `0s`, `0m`…: no validity.
    static func isZeroTime(_ time: String) -> Bool {
        let digits = time.filter(\.isNumber)
        return !digits.isEmpty && digits.allSatisfy { $0 == "0" }
    }

    /// Warnings for the error pages in effect in the gate's auth locations that take one of the
    /// auth subrequest's statuses without making it an allow: nginx, not the responder, then
    /// answers it (with the status kept, or another one).
    func authLocationWarnings() -> [GateWarning] {
        var warnings: [GateWarning] = []
        var done = Set<Int>()
        for block in seen.authLocations where done.insert(block).inserted {
            let (title, place) = describeConf(block)
            for entry in authErrorPages(block) {
                seen.budget = Self.pathBudget
                let (answer, target) = answer(of: entry.page, conf: block)
                let how: String
                switch answer {
                case .allow, .unknown: continue
                case .kept: how = "with the status kept"
                case .status(let status): how = "with \(status)"
                }
                warnings.append(
                    GateWarning(
                        .authErrorPage,
                        "\(entry.page.directive.summary()) (\(entry.page.directive.location)) in effect in the gate's auth \(title) "
                            + "(\(place)): when the responder \(entry.when), nginx answers the auth subrequest from \(target) \(how), "
                            + "not the responder (give the auth location an error_page of its own, as charge-gate-server.conf does)",
                        at: entry.page.directive.location))
            }
        }
        return warnings
    }

    // MARK: listen

    /// A warning for each gate's auth location whose `fastcgi_pass` (directly, or through the
    /// `server`s of its `upstream`) is not the responder's `listen`: every auth subrequest then
    /// fails, or reaches whatever listens there. Not compared for `listen: inherit` (the socket
    /// is the service manager's), nor without a listen.
    func listenWarnings() -> [GateWarning] {
        guard let listen, listen != .inherit else { return [] }
        var warnings: [GateWarning] = []
        var done = Set<Int>()
        for block in seen.authLocations where done.insert(block).inserted {
            guard let pass = pass(of: block), pass.name == "fastcgi_pass", let target = pass.values.first else { continue }
            let (title, place) = describeConf(block)
            if target.contains("$") {
                warnings.append(
                    GateWarning(
                        .listenMismatch,
                        "the gate's auth \(title) (\(place)) passes to \(target) (\(pass.location)): check-nginx cannot tell whether "
                            + "that is the responder's listen \(listen)",
                        at: pass.location))
                continue
            }
            let upstream = (0..<model.blocks.count).first { id in
                model[id].kind == .other("upstream") && model[id].opening?.values.first == target
            }
            let servers = upstream.map { id in model[id].own("server").compactMap { $0.values.first } } ?? [target]
            guard !servers.contains(where: { Self.reaches($0, listen) }) else { continue }
            let via =
                upstream.map { id in
                    "upstream \(target) (\(model[id].location.map(\.description) ?? "?")): \(servers.joined(separator: ", "))"
                } ?? target
            warnings.append(
                GateWarning(
                    .listenMismatch,
                    "the gate's auth \(title) (\(place)) passes to \(via), and none is the responder's listen \(listen): every auth "
                        + "subrequest fails (each gated request a 500 or 503), or reaches whatever listens there",
                    at: upstream.flatMap { model[$0].location } ?? pass.location))
        }
        return warnings
    }

    /// Whether nginx's address (`unix:/path`, `host:port`, `host`) is the responder's listen:
    /// the same socket path; the same port on the same host, any host for a wildcard listen, or
    /// both on the loopback.
    static func reaches(_ address: String, _ listen: ListenAddress) -> Bool {
        switch listen {
        case .inherit:
            return true
        case .unix(let path):
            return address == "unix:" + path
        case .tcp(let host, let port):
            guard !address.hasPrefix("unix:") else { return false }
            var name = address
            var number = 80
            if let colon = address.lastIndex(of: ":"), !address.hasSuffix("]"), let value = Int(address[address.index(after: colon)...]) {
                number = value
                name = String(address[..<colon])
            }
            if name.hasPrefix("[") && name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
            guard number == port else { return false }
            func loopback(_ host: String) -> Bool { host == "localhost" || host == "::1" || host.hasPrefix("127.") }
            return name == host || ["0.0.0.0", "::", "*"].contains(host) || (loopback(name) && loopback(host))
        }
    }
}
