/// Which of the shipped auth profiles a gate's auth location follows, by the settings nginx
/// merges into it (`ngx_http_fastcgi_merge_loc_conf`): the edge profile
/// (charge-gate-server.conf: nginx answers repeated denials from its `fastcgi_cache`, one
/// FastCGI connection per auth subrequest) or the keepalive profile
/// (charge-gate-server-keepalive.conf: `fastcgi_keep_conn on` and a `fastcgi_store`, so that
/// nginx reads each answer to its end and keeps the connection; no cache).
public enum GateAuthProfile: String, Sendable, CaseIterable {
    /// A `fastcgi_cache` in effect, and no `fastcgi_keep_conn on`.
    case edge
    /// `fastcgi_keep_conn on` and a `fastcgi_store` in effect (which turns a cache off).
    case keepalive
    /// A `fastcgi_cache` and `fastcgi_keep_conn on` both in effect.
    case mixed
    /// Neither: no cache, and not kept connections with a store (a hand-written location).
    case other
}
