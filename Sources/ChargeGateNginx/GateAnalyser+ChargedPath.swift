import ChargeGateCore

extension GateAnalyser {
    /// The path the responder charges when `CHARGE_GATE_URI` is empty or missing: its
    /// `REQUEST_URI` param (the snippet's `$request_uri`) cut at `?`, decoded and normalised
    /// (`URIPath.fromRequestURI`), `/` without one.
    func fallbackPath(_ sub: NginxRequestState, params: [NginxDirective]) -> String {
        guard let param = params.first(where: { $0.values.first == WireProtocol.Param.requestURI }), param.values.count > 1 else {
            return "/"
        }
        return URIPath.fromRequestURI(sub.evaluate(param.values[1]) ?? sub.requestURI)
    }

    /// The request targets that show what the responder is asked about when the path it gets
    /// is not nginx's `$uri`: the route's path (`/x` for `/`) with a query string, and with its
    /// last letter `%XX`-escaped (nginx routes both as the path itself; `$request_uri` keeps
    /// them as sent).
    static func rawVariants(of prefix: String) -> [String] {
        let base = prefix == "/" ? "/x" : prefix
        var out = [base + "?q=1"]
        if let last = base.utf8.last, (last >= 0x30 && last <= 0x39) || (last | 0x20 >= 0x61 && last | 0x20 <= 0x7A) {
            let hex = Array("0123456789ABCDEF".utf8)
            let escaped = Array(base.utf8.dropLast()) + [UInt8(ascii: "%"), hex[Int(last >> 4)], hex[Int(last & 0x0F)]]
            out.append(String(decoding: escaped, as: UTF8.self))
        }
        return out
    }
}
