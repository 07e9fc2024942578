/// What the responder needs from a request: its CGI params and, for top-off, its body.
public protocol RequestParams {
    /// The CGI/FastCGI param `name` (`REQUEST_METHOD`, `HTTP_AUTHORIZATION`, ...), or nil.
    func param(_ name: String) -> String?
    /// At most `limit` bytes of the request body; nil when it is longer than that.
    func body(limit: Int) -> [UInt8]?
}
