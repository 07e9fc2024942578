import Yams

extension ConfigLoader.Reader {
    /// The longest `upgradeUrl`, in bytes: it travels to nginx inside the `X-Charge-Body` header
    /// of a denial, beside the other headers, all in nginx's one FastCGI header buffer (4 KiB).
    static let maxUpgradeURLBytes = 1024

    /// Reads an `upgradeUrl` (top level, or a plan's at `path`): a path starting with `/`
    /// (not `//`, which names another host), or an `http://` or `https://` URL with a host.
    /// It goes into JSON bodies, an HTTP header and an HTML attribute as written, so it may
    /// hold only the characters RFC 3986 allows unescaped, but `'`: no spaces, quotes, `<`,
    /// `>`, `\`, control or non-ASCII characters (percent-encode them), and each `%` starts
    /// a `%XX` escape. nil, with the error recorded, when it is anything else.
    mutating func upgradeURL(_ node: Node, _ path: String) -> String? {
        guard let text = string(node, path) else { return nil }
        let bytes = Array(text.utf8)
        if bytes.isEmpty {
            fail(node, "\(path): must not be empty (leave the key out for no upgrade link)")
            return nil
        }
        if bytes.count > Self.maxUpgradeURLBytes {
            fail(node, "\(path): must be at most \(Self.maxUpgradeURLBytes) bytes, got \(bytes.count)")
            return nil
        }
        if !bytes.allSatisfy(Self.isUpgradeURLByte) {
            fail(
                node,
                "\(path): may only hold URL characters (no spaces, quotes, '<', '>', '\\', control or non-ASCII characters: percent-encode them), got \(Self.quote(text))"
            )
            return nil
        }
        for (i, byte) in bytes.enumerated() where byte == UInt8(ascii: "%") {
            guard i + 2 < bytes.count, Self.isHexDigit(bytes[i + 1]), Self.isHexDigit(bytes[i + 2]) else {
                fail(node, "\(path): '%' must start a %-escape of two hex digits (write % itself as %25), got \(Self.quote(text))")
                return nil
            }
        }
        if text.hasPrefix("//") {
            fail(node, "\(path): '//' starts a URL on another host; write it in full, as https://HOST/PATH, got \(Self.quote(text))")
            return nil
        }
        if text.hasPrefix("/") { return text }
        for scheme in ["https://", "http://"] where text.hasPrefix(scheme) {
            let rest = text.utf8.dropFirst(scheme.utf8.count)
            let host = rest.prefix { $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") }
            guard !host.isEmpty else {
                fail(node, "\(path): an http:// or https:// URL needs a host, got \(Self.quote(text))")
                return nil
            }
            return text
        }
        fail(node, "\(path): must be a path starting with '/' or an http:// or https:// URL, got \(Self.quote(text))")
        return nil
    }

    /// A byte RFC 3986 allows unescaped in a URL (unreserved, reserved, `%`), but `'`.
    static func isUpgradeURLByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "-._~:/?#[]@!$&()*+,;=%".utf8.contains(byte)
        }
    }

    /// `[0-9A-Fa-f]`.
    private static func isHexDigit(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"):
            return true
        default:
            return false
        }
    }
}
