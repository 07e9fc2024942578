extension NginxModel {
    /// The methods `limit_except` can name (`ngx_methods_names`); nginx refuses any other.
    static let limitExceptMethods: Set<String> = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "MKCOL", "COPY", "MOVE", "OPTIONS", "PROPFIND", "PROPPATCH", "LOCK", "UNLOCK",
        "PATCH",
    ]

    /// The `limit_except` block of location `id` whose configuration nginx uses for `method`:
    /// nil when the location has none or names the method (GET names HEAD too).
    ///
    /// `ngx_http_update_location_config` swaps in the `limit_except` configuration for every
    /// other method as soon as the location is chosen (find-config phase, named location):
    /// that configuration inherits the location's access settings (`satisfy`, `auth_request`,
    /// `error_page`, the `*_pass` handler) except those it sets itself (`allow`/`deny`,
    /// `auth_basic`), but not the location's rewrite directives (the rewrite module merges no
    /// script codes into a block that has none), nor `try_files` (never merged). It is not
    /// inherited by nested locations, and an `if` that holds replaces it.
    public func limitExcept(of id: Int, method: String) -> Int? {
        guard blocks[id].locationSpec != nil else { return nil }
        for (index, directive) in blocks[id].directives.enumerated() where directive.name == "limit_except" {
            guard let child = blocks[id].children[index] else { continue }
            let named = Set(directive.values.map { $0.uppercased() }).intersection(Self.limitExceptMethods)
            if named.contains(method) || (method == "HEAD" && named.contains("GET")) { return nil }
            return child
        }
        return nil
    }
}
