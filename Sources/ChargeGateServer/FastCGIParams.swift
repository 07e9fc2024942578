import ChargeGateCore
import ChargeGateFastCGI

/// The responder's view of a FastCGI request.
struct FastCGIParams: RequestParams {
    let request: FastCGIRequest

    func param(_ name: String) -> String? {
        request.param(name)
    }

    func body(limit: Int) -> [UInt8]? {
        if let declared = request.param(WireProtocol.Param.contentLength).flatMap(Int.init), declared > limit { return nil }
        return request.readBody(limit: limit)
    }
}
