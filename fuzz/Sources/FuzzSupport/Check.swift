#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The input being run, kept so a failed invariant can print it before aborting.
nonisolated(unsafe) private var currentInput: [UInt8] = []

/// Runs one fuzz input: keeps it for `require` and calls `body` with it.
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int, _ body: ([UInt8]) -> Void) -> Int32 {
    let bytes = size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    currentInput = bytes
    body(bytes)
    return 0
}

/// Fails the run when `condition` is false: prints the invariant, the detail and the input as
/// hex on stderr, then aborts, so libFuzzer records the input as a crash.
@inline(__always)
public func require(_ condition: Bool, _ invariant: StaticString, _ detail: @autoclosure () -> String = "") {
    if !condition { invariantFailed(invariant, detail()) }
}

/// Prints the failed invariant and aborts (never returns).
public func invariantFailed(_ invariant: StaticString, _ detail: String) -> Never {
    var text = "\n==INVARIANT FAILED== \(invariant)\n"
    if !detail.isEmpty { text += "detail: \(detail)\n" }
    text += "input (\(currentInput.count) bytes, hex): \(hex(currentInput))\n"
    let utf8 = Array(text.utf8)
    _ = utf8.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count) }
    abort()
}

/// Lower-case hex of `bytes`, no separators.
public func hex(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0xf)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// `text` with every byte outside printable ASCII as `\xNN`, for invariant details.
public func show(_ text: some StringProtocol) -> String {
    var out = "\""
    for byte in text.utf8 {
        if byte >= 0x20 && byte < 0x7f && byte != UInt8(ascii: "\\") && byte != UInt8(ascii: "\"") {
            out.unicodeScalars.append(Unicode.Scalar(byte))
        } else {
            out += "\\x" + hex([byte])
        }
    }
    return out + "\""
}

/// Byte-wise equality (Swift's `==` on strings is canonical equivalence; the wire is bytes).
public func sameBytes(_ a: some StringProtocol, _ b: some StringProtocol) -> Bool {
    a.utf8.elementsEqual(b.utf8)
}
