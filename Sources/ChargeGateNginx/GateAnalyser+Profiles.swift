import ChargeGateCore

extension GateAnalyser {
    /// The gate's auth locations of a server: every location in it (nested ones too) that passes
    /// `CHARGE_GATE_ROLE auth` to FastCGI, with its auth profile.
    func authLocations(in server: Int) -> [GateAuthLocation] {
        model.locations(in: server).compactMap { id in
            guard pass(of: id)?.name == "fastcgi_pass",
                role(ownParams: model.inheritedList(["fastcgi_param"], from: id)) == WireProtocol.Role.auth.rawValue
            else { return nil }
            let (title, place) = describeConf(id)
            return GateAuthLocation(block: id, title: title, location: place, profile: profile(of: id))
        }
    }

    /// The auth profile of the configuration `conf` after nginx's merge.
    func profile(of conf: Int) -> GateAuthProfile {
        let keepConn = keptConnections(conf) != nil
        if cacheInEffect(conf) != nil { return keepConn ? .mixed : .edge }
        return keepConn && storeInEffect(conf) != nil ? .keepalive : .other
    }

    /// The `fastcgi_keep_conn on` in effect in `conf`.
    func keptConnections(_ conf: Int) -> NginxDirective? {
        model.inherited("fastcgi_keep_conn", from: conf).flatMap { $0.values.first == "on" ? $0 : nil }
    }

    /// The `fastcgi_cache` nginx uses in `conf`, as `ngx_http_fastcgi_merge_loc_conf` merges
    /// it: the nearest block's own `fastcgi_cache`, unless that block (or a nearer one) sets a
    /// `fastcgi_store` other than `off`, which turns the cache off there (so a location with a
    /// store inherits no cache). nil: no cache.
    func cacheInEffect(_ conf: Int) -> NginxDirective? {
        for id in model.chain(from: conf) {
            if let store = model[id].first("fastcgi_store"), store.values.first != "off" { return nil }
            if let cache = model[id].first("fastcgi_cache") { return cache.values.first == "off" ? nil : cache }
        }
        return nil
    }

    /// The `fastcgi_store` nginx uses in `conf`: the nearest block's own, unless that block (or
    /// a nearer one) sets a `fastcgi_cache` other than `off`, which turns the store off there.
    /// nil: no store. (nginx refuses both in one block: `NginxConfiguration.duplicate`.)
    func storeInEffect(_ conf: Int) -> NginxDirective? {
        for id in model.chain(from: conf) {
            if let cache = model[id].first("fastcgi_cache"), cache.values.first != "off" { return nil }
            if let store = model[id].first("fastcgi_store") { return store.values.first == "off" ? nil : store }
        }
        return nil
    }

    /// Warnings for the gated servers' auth locations whose profile gains nothing or is mixed:
    /// the keepalive profile where nginx keeps no connection (the upstream it passes to has no
    /// `keepalive`, or it passes to an address directly), and a cache beside kept connections.
    /// An auth location several servers include is named once.
    func profileWarnings(_ servers: [GateServer]) -> [GateWarning] {
        var warnings: [GateWarning] = []
        for server in servers where server.usesGate {
            for auth in server.authLocations {
                let warning: GateWarning?
                switch auth.profile {
                case .keepalive: warning = keepaliveWarning(auth)
                case .mixed: warning = mixedWarning(auth)
                case .edge, .other: warning = nil
                }
                if let warning, !warnings.contains(warning) { warnings.append(warning) }
            }
        }
        return warnings
    }

    private func keepaliveWarning(_ auth: GateAuthLocation) -> GateWarning? {
        guard let pass = pass(of: auth.block), let target = pass.values.first, !target.contains("$") else { return nil }
        let uses = "the gate's auth \(auth.title) (\(auth.location)) uses the keepalive profile, but"
        let gainsNothing = "nginx closes every FastCGI connection after its answer, and the profile gains nothing"
        guard
            let upstream = (0..<model.blocks.count).first(where: {
                model[$0].kind == .other("upstream") && model[$0].opening?.values.first == target
            })
        else {
            return GateWarning(
                .keepaliveUnused,
                "\(uses) passes to \(target) (\(pass.location)), not to an upstream with keepalive: \(gainsNothing) (pass to an "
                    + "upstream with keepalive 32;, or use charge-gate-server.conf)",
                at: pass.location)
        }
        guard model[upstream].first("keepalive") == nil else { return nil }
        let place = model[upstream].location ?? pass.location
        return GateWarning(
            .keepaliveUnused,
            "\(uses) upstream \(target) (\(place)) has no keepalive: \(gainsNothing) (add keepalive 32; to the upstream, or use "
                + "charge-gate-server.conf)",
            at: place)
    }

    private func mixedWarning(_ auth: GateAuthLocation) -> GateWarning? {
        guard let keep = keptConnections(auth.block), let cache = cacheInEffect(auth.block) else { return nil }
        return GateWarning(
            .authProfileMixed,
            "the gate's auth \(auth.title) (\(auth.location)) mixes the two auth profiles: \(keep.summary()) (\(keep.location)) with "
                + "\(cache.summary()) (\(cache.location)); nginx reads an answer to its end, and keeps the connection, only when it "
                + "may cache it, so every other answer (each allow: X-Accel-Expires: 0) closes its connection (use one profile: "
                + "charge-gate-server.conf without fastcgi_keep_conn on, or charge-gate-server-keepalive.conf)",
            at: keep.location)
    }
}
