/// An answer for the FastCGI layer to write: status, headers, body, and what to log.
public struct Response: Sendable, Equatable {
    /// HTTP status.
    public var status: Int
    /// Header fields, in order (never `Status`; the writer adds it).
    public var headers: [(name: String, value: String)]
    /// The body (JSON for every answer with one).
    public var body: String
    /// A line worth logging (denials, errors), with its level.
    public var note: Note?
    /// The gate's decision, for metrics; nil for usage answers and unrouted requests.
    public var outcome: Outcome?
    /// What the store did with the app's settlement (`POST /api/usage/settle`), for metrics;
    /// nil for every other answer (and a settlement refused before the store was asked).
    public var settlement: SettleOutcome?

    /// A gate decision as metrics count it.
    public enum Outcome: Sendable, Equatable {
        /// Allowed: these pools were spent from (none for an idempotent repeat); `held` when
        /// the spend recorded a hold (a settled route).
        case allowed(pools: [String], held: Bool = false)
        /// Denied: the denial and the pools it counts against (the one it names for a 429 or a
        /// 402, else the route's); `fromMemory` when the worker's deny cache answered a 429
        /// without asking the store. Boxed (indirect): unboxed, its payload (a `Denial` with an
        /// `upgradeUrl`) made every outcome, an allow's too, copied through its value witness.
        indirect case denied(Denial, pools: [String], fromMemory: Bool)
        /// A shadow route's would-be denial (or store outage), passed. (The enum itself is not
        /// indirect: that would box every case on the heap, an allow's too.)
        indirect case shadow(Outcome)
    }

    /// A log line attached to a response: a fixed message and its fields.
    public struct Note: Sendable, Equatable {
        /// Whether it is an error (store trouble, misconfiguration) or a decision.
        public var isError: Bool
        /// The message, free of secrets and of untrusted values (those go in `fields`).
        public var message: String
        /// Named values (`pool`, `subject`, `route`, ...), untrusted ones in key form only.
        /// The server hashes those whose key carries a subject (`LogKey.carriesSubject`).
        public var fields: [(key: LogKey, value: String)]

        /// Creates a note.
        public init(isError: Bool, message: String, fields: [(key: LogKey, value: String)] = []) {
            self.isError = isError
            self.message = message
            self.fields = fields
        }

        public static func == (a: Note, b: Note) -> Bool {
            a.isError == b.isError && a.message == b.message
                && a.fields.map(\.key) == b.fields.map(\.key) && a.fields.map(\.value) == b.fields.map(\.value)
        }

        /// The value of field `key`.
        public func field(_ key: LogKey) -> String? {
            fields.first { $0.key == key }?.value
        }
    }

    /// Creates a response.
    public init(status: Int, headers: [(name: String, value: String)] = [], body: String = "", note: Note? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.note = note
    }

    /// A JSON answer with `Cache-Control: no-store`.
    public static func json(_ status: Int, _ body: String, extraHeaders: [(name: String, value: String)] = []) -> Response {
        Response(status: status, headers: [("Content-Type", "application/json"), ("Cache-Control", "no-store")] + extraHeaders, body: body)
    }

    /// `{"error":code}` plus optional fields.
    public static func error(_ status: Int, _ code: String, _ fields: [(String, String)] = []) -> Response {
        var w = JSONWriter()
        w.beginObject()
        w.field("error", code)
        for (name, value) in fields { w.field(name, value) }
        w.endObject()
        return json(status, w.text)
    }

    /// The whole CGI header block and body, as written in one `FCGX_PutStr`.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + body.utf8.count + headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 })
        out.append(contentsOf: Self.statusPrefix)
        out.appendDecimal(Int64(status))
        out.append(UInt8(ascii: " "))
        out.appendUTF8(Self.reason(status))
        out.append(contentsOf: Self.lineEnd)
        var hasLength = false
        for (name, value) in headers {
            if name == "Content-Length" { hasLength = true }
            out.appendUTF8(name)
            out.append(contentsOf: Self.separator)
            out.appendUTF8(value)
            out.append(contentsOf: Self.lineEnd)
        }
        if !body.isEmpty && !hasLength {
            out.append(contentsOf: Self.contentLength)
            out.appendDecimal(Int64(body.utf8.count))
            out.append(contentsOf: Self.lineEnd)
        }
        out.append(contentsOf: Self.lineEnd)
        out.appendUTF8(body)
        return out
    }

    private static let statusPrefix = Array("Status: ".utf8)
    private static let contentLength = Array("Content-Length: ".utf8)
    private static let separator = Array(": ".utf8)
    private static let lineEnd = Array("\r\n".utf8)

    public static func == (a: Response, b: Response) -> Bool {
        a.status == b.status && a.body == b.body && a.note == b.note && a.outcome == b.outcome && a.settlement == b.settlement
            && a.headers.map(\.name) == b.headers.map(\.name) && a.headers.map(\.value) == b.headers.map(\.value)
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 204: return "No Content"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 402: return "Payment Required"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 409: return "Conflict"
        case 413: return "Content Too Large"
        case 429: return "Too Many Requests"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }
}

extension Response {
    /// This response with one more header.
    func adding(_ header: (name: String, value: String)) -> Response {
        var copy = self
        copy.headers.append(header)
        return copy
    }
}
