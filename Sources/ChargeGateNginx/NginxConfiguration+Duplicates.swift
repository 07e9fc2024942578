extension NginxConfiguration {
    /// Directives the analysis reads as one setting per block, and that nginx refuses to see
    /// twice in one block (`"satisfy" directive is duplicate`): `ngx_conf_set_enum_slot`,
    /// `ngx_conf_set_flag_slot`, `ngx_http_set_complex_value_slot` and the handlers of
    /// `auth_request`, `internal`, `try_files`, `limit_except`, `fastcgi_store`,
    /// `fastcgi_cache` and each `*_pass`.
    static let singleDirectives: Set<String> = NginxModel.passDirectives.union([
        "satisfy", "auth_request", "auth_basic", "internal", "try_files", "limit_except", "fastcgi_keep_conn", "fastcgi_store",
        "fastcgi_cache",
    ])

    /// Directives nginx refuses beside each other in one block unless one is `off`
    /// (`ngx_http_fastcgi_store`, `ngx_http_fastcgi_cache`): `"fastcgi_cache" directive is
    /// incompatible with "fastcgi_store"`, said of the second.
    static let incompatibleDirectives = ["fastcgi_store": "fastcgi_cache", "fastcgi_cache": "fastcgi_store"]

    /// The first directive of `singleDirectives` written a second time in one block, or of
    /// `incompatibleDirectives` beside its counterpart (after the includes are resolved: a
    /// snippet's `satisfy all` and a `satisfy any` beside its include are one block's), as
    /// nginx -t reports it. A dump that nginx -T printed never has one; a saved or hand-made one
    /// may, and then it is not a configuration nginx runs.
    static func duplicate(in directives: [NginxDirective]) -> NginxParseError? {
        // Depth first in the order nginx reads them (a stack, not recursion: nesting comes
        // from the input): each open block with where it is and the names it has set.
        var open: [(block: [NginxDirective], next: Int, seen: Set<String>)] = [(directives, 0, [])]
        while var top = open.popLast() {
            guard top.next < top.block.count else { continue }
            let directive = top.block[top.next]
            top.next += 1
            if singleDirectives.contains(directive.name) && !top.seen.insert(directive.name).inserted {
                return NginxParseError(
                    "\"\(directive.name)\" directive is duplicate: nginx refuses this configuration (nginx -t fails)",
                    at: directive.location)
            }
            if let other = incompatibleDirectives[directive.name], directive.values.first != "off" {
                // Set (not off) in this block: the counterpart, set before, refuses it.
                if top.seen.contains("+" + other) {
                    return NginxParseError(
                        "\"\(directive.name)\" directive is incompatible with \"\(other)\": nginx refuses this configuration "
                            + "(nginx -t fails)",
                        at: directive.location)
                }
                top.seen.insert("+" + directive.name)
            }
            open.append(top)
            if let inner = directive.block { open.append((inner, 0, [])) }
        }
        return nil
    }
}
