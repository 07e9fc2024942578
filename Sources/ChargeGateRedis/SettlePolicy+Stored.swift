import ChargeGateCore

extension SettlePolicy {
    /// The policy as a hold record keeps it (docs/redis.md, "The hold record"): `refund` as the
    /// config spells it, `amount` (`header`, `bytesSent`, `upstreamMs`; left out when none)
    /// with its `unit`, and `by`: `{"refund":["5xx"],"amount":"bytesSent","unit":1048576,"by":"nginx"}`.
    /// The spend sends it (`SpendLayout.Argument.holdPolicy`); settle.lua reads it back.
    var storedText: String {
        var w = JSONWriter()
        w.beginObject()
        w.key("refund")
        w.beginArray()
        for match in refund { w.value(match.text) }
        w.endArray()
        switch amount {
        case nil:
            break
        case .header:
            w.field("amount", "header")
        case .bytesSent(let unit):
            w.field("amount", "bytesSent")
            w.field("unit", unit)
        case .upstreamMs(let unit):
            w.field("amount", "upstreamMs")
            w.field("unit", unit)
        }
        w.field("by", by.rawValue)
        w.endObject()
        return w.text
    }
}
