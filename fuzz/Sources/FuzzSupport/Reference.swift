import ChargeGateCore

/// Plain, slow reference implementations the fuzzers compare the real code against. They work
/// on UTF-8 bytes, as nginx does: a `/` byte always separates segments, whatever follows it.
public enum Reference {
    /// The segments of `path` split at every `/` byte, empty ones dropped.
    public static func segments(_ path: some StringProtocol) -> [[UInt8]] {
        Array(path.utf8).split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true).map(Array.init)
    }

    /// nginx's normalisation of a decoded path: merge `//`, resolve `.` and `..` (never above
    /// the root), keep a trailing `/` when the path ends in `/`, `/.` or `/..` and is not the root.
    public static func normalize(_ path: some StringProtocol) -> [UInt8] {
        let bytes = Array(path.utf8)
        var kept: [[UInt8]] = []
        for segment in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if segment.elementsEqual([UInt8(ascii: ".")]) { continue }
            if segment.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                if !kept.isEmpty { kept.removeLast() }
                continue
            }
            kept.append(Array(segment))
        }
        let slash = UInt8(ascii: "/")
        let dot = UInt8(ascii: ".")
        let endsWithSlash =
            bytes.last == slash
            || bytes.suffix(2).elementsEqual([slash, dot])
            || bytes.suffix(3).elementsEqual([slash, dot, dot])
        var out: [UInt8] = [slash]
        out.append(contentsOf: kept.joined(separator: [slash]))
        if endsWithSlash && !kept.isEmpty { out.append(slash) }
        return out
    }

    /// `%XX` decoding over bytes (invalid escapes kept), `+` as space when asked.
    public static func percentDecode(_ text: some StringProtocol, plusAsSpace: Bool = false) -> [UInt8] {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        var i = 0
        func hexValue(_ b: UInt8) -> UInt8? {
            if b >= 0x30 && b <= 0x39 { return b - 0x30 }
            if b >= 0x61 && b <= 0x66 { return b - 0x61 + 10 }
            if b >= 0x41 && b <= 0x46 { return b - 0x41 + 10 }
            return nil
        }
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count, let hi = hexValue(bytes[i + 1]), let lo = hexValue(bytes[i + 2]) {
                out.append(hi * 16 + lo)
                i += 3
            } else if plusAsSpace && bytes[i] == UInt8(ascii: "+") {
                out.append(0x20)
                i += 1
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }

    /// The route a linear scan picks for (`path`, `method`): the longest prefix whose segments
    /// all equal the path's first segments (compared as strings, as the router documents it)
    /// and whose methods accept `method`; among equal prefixes, the first in config order.
    public static func match(_ routes: [RouteConfig], path: String, method: String) -> Int? {
        let pathSegments = segments(path).map { String(decoding: $0, as: UTF8.self) }
        var best: (index: Int, depth: Int)?
        for (index, route) in routes.enumerated() {
            guard route.methods?.contains(method) ?? true else { continue }
            let prefix = segments(route.prefix).map { String(decoding: $0, as: UTF8.self) }
            guard prefix.count <= pathSegments.count else { continue }
            guard zip(prefix, pathSegments).allSatisfy({ $0 == $1 }) else { continue }
            if prefix.count > (best?.depth ?? -1) { best = (index, prefix.count) }
        }
        return best?.index
    }
}
