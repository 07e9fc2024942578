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
}
