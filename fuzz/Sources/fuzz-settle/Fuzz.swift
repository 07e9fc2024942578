// SettleLine(parsing:) on arbitrary bytes, and on the lines nginx's log_format charge_gate_settle
// writes, built from the input.
//
// Input: any bytes. They are parsed as one datagram (never a trap; deterministic; an accepted
// line holds a hold id and values in range, and parses alike with trailing newlines), then read
// as a recipe for a datagram in nginx's shape (header, hold, origin, status, each upstream try's
// status, bytes and time with ", " or " : " between them, body bytes, $msec, the amount), some
// fields spoiled on purpose: the parse must be exactly what the recipe says (the rejection and
// its kind in the parser's field order, or the facts).
import ChargeGateCore
import FuzzSupport

/// Reads the recipe: one byte (or a few) per choice; 0 once the input is used up.
struct Recipe {
    var bytes: [UInt8]
    var index = 0

    mutating func byte() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }

    /// A choice among `count` (< 256).
    mutating func pick(_ count: Int) -> Int { Int(byte()) % count }

    /// A number below 10^digits, from up to 8 bytes.
    mutating func number(digits: Int) -> Int64 {
        var value: UInt64 = 0
        for _ in 0..<8 { value = value << 8 | UInt64(byte()) }
        var bound: UInt64 = 1
        for _ in 0..<digits { bound *= 10 }
        return Int64(value % bound)
    }

    /// `count` bytes from `alphabet`.
    mutating func text(_ count: Int, from alphabet: String) -> String {
        let letters = Array(alphabet.utf8)
        return String(decoding: (0..<count).map { _ in letters[pick(letters.count)] }, as: UTF8.self)
    }
}

/// What a built line must parse to.
enum Expected: Equatable {
    case rejected(SettleLine.Rejection)
    case accepted(SettleLine)
}

let digits = "0123456789"
let holdLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"

/// A field that is valid or not, and its text.
struct Field {
    var text: String
    var valid: Bool
}

/// nginx's `s.mmm` (or spoiled), with its ms.
func time(_ recipe: inout Recipe) -> (Field, Int64) {
    let seconds = recipe.number(digits: recipe.pick(13))
    let ms = recipe.number(digits: 3)
    switch recipe.pick(8) {
    case 0: return (Field(text: "\(seconds)", valid: true), seconds * 1000)
    case 1:
        // 1 to 3 decimals: "5.7" is 5700 ms, "5.07" 5070.
        let fraction = String(ms)
        let scale: Int64 = fraction.utf8.count == 1 ? 100 : fraction.utf8.count == 2 ? 10 : 1
        return (Field(text: "\(seconds).\(fraction)", valid: true), seconds * 1000 + ms * scale)
    case 2: return (Field(text: "\(seconds).1234", valid: false), 0)
    case 3: return (Field(text: ".\(String(ms))", valid: false), 0)
    default:
        let padded = String(repeating: "0", count: 3 - String(ms).utf8.count) + String(ms)
        return (Field(text: "\(seconds).\(padded)", valid: true), seconds * 1000 + ms)
    }
}

/// Builds a datagram in nginx's shape from the recipe, and what it must parse to.
func build(_ recipe: inout Recipe) -> (bytes: [UInt8], expected: Expected) {
    var failure: SettleLine.Rejection?
    func check(_ valid: Bool, _ rejection: SettleLine.Rejection = .badField) {
        if !valid && failure == nil { failure = rejection }
    }

    // Header: <PRI>TIMESTAMP [HOSTNAME ]TAG: — the payload must start within 64 bytes.
    let pri = ["190", "13", "", "191"][recipe.pick(4)]
    var header = "<\(pri)>Dec \(recipe.pick(2) == 0 ? " 6" : "16") 17:16:25 "
    if recipe.pick(3) == 0 { header += recipe.text(recipe.pick(60) + 1, from: "abcdefghijklmnopqrstuvwxyz.-0123456789") + " " }
    header += (recipe.pick(4) == 0 ? recipe.text(recipe.pick(20) + 1, from: "abcdefghijklmnopqrstuvwxyz_") : "nginx") + ": "
    let headerFits = header.utf8.count < 64

    // The hold.
    let hold: String
    switch recipe.pick(6) {
    case 0: hold = ""
    case 1: hold = "-"
    case 2: hold = recipe.text(65, from: holdLetters)
    case 3: hold = recipe.text(recipe.pick(10) + 1, from: holdLetters) + [".", "/", " ", "é", ":"][recipe.pick(5)]
    case 4: hold = recipe.text(recipe.pick(64) + 1, from: holdLetters)
    default: hold = recipe.text(32, from: "0123456789abcdef")
    }
    // A letter or digit first (nginx logs an empty variable as `-`), then any of holdLetters.
    let holdValid =
        !hold.isEmpty && hold.utf8.count <= 64 && hold.utf8.allSatisfy { holdLetters.utf8.contains($0) }
        && hold.utf8.first.map { $0 != UInt8(ascii: "-") && $0 != UInt8(ascii: "_") } ?? false

    // Whose line.
    let origin = ["main", "main", "main", "auth", "mai", "MAIN", "-", ""][recipe.pick(8)]

    // The status.
    let statusValue = recipe.number(digits: 3)
    let status: Field
    switch recipe.pick(8) {
    case 0: status = Field(text: "\(statusValue % 100)", valid: statusValue % 100 >= 100)
    case 1: status = Field(text: "2000", valid: false)
    case 2: status = Field(text: "-", valid: false)
    default: status = Field(text: String(repeating: "0", count: 3 - String(statusValue).utf8.count) + "\(statusValue)", valid: true)
    }

    // The upstream tries: none ("-" in each field), or 1-3, each field's items with separators.
    let tries = recipe.pick(4)
    var statuses: [Field] = []
    var sent: [(Field, Int64?)] = []
    var times: [(Field, Int64?)] = []
    var answered = false
    var reached = false
    var upstreamMs: Int64 = 0
    if tries == 0 {
        statuses = [Field(text: "-", valid: true)]
        sent = [(Field(text: "-", valid: true), nil)]
        times = [(Field(text: "-", valid: true), nil)]
    }
    for _ in 0..<tries {
        switch recipe.pick(6) {
        case 0: statuses.append(Field(text: "-", valid: true))
        case 1: statuses.append(Field(text: "50", valid: false))
        default:
            let value = 100 + recipe.number(digits: 3) % 900
            statuses.append(Field(text: "\(value)", valid: true))
            answered = true
        }
        switch recipe.pick(6) {
        case 0: sent.append((Field(text: "-", valid: true), nil))
        case 1: sent.append((Field(text: "1" + String(repeating: "0", count: 18), valid: false), nil))
        default:
            let value = recipe.number(digits: recipe.pick(5))
            sent.append((Field(text: "\(value)", valid: true), value))
            if value > 0 { reached = true }
        }
        if recipe.pick(5) == 0 {
            times.append((Field(text: "-", valid: true), nil))
        } else {
            let (field, ms) = time(&recipe)
            times.append((field, ms))
            if field.valid { upstreamMs = min(Settlement.maxAmount, upstreamMs + ms) }
        }
    }
    func joined(_ fields: [Field], _ recipe: inout Recipe) -> Field {
        var text = ""
        var valid = fields.allSatisfy(\.valid)
        for (index, field) in fields.enumerated() {
            if index > 0 {
                let separator = [", ", " : ", ", ", ",", " ,", "  "][recipe.pick(6)]
                if separator != ", " && separator != " : " { valid = false }
                text += separator
            }
            text += field.text
        }
        if recipe.pick(16) == 0 {
            text += ", "
            valid = false
        }
        return Field(text: text, valid: valid)
    }
    let statusList = joined(statuses, &recipe)
    let sentList = joined(sent.map(\.0), &recipe)
    let timeList = joined(times.map(\.0), &recipe)

    // Body bytes, $msec, the amount.
    let body: Field
    let bodyValue = recipe.number(digits: 18)
    switch recipe.pick(6) {
    case 0: body = Field(text: "-", valid: false)
    case 1: body = Field(text: "9" + String(bodyValue), valid: String(bodyValue).utf8.count < 18)
    default: body = Field(text: "\(bodyValue)", valid: true)
    }
    let (msec, _) = time(&recipe)
    let amount: String
    let reported: ResponseFacts.ReportedAmount
    switch recipe.pick(7) {
    case 0:
        amount = "-"
        reported = .missing
    case 1:
        amount = "9007199254740993"
        reported = .invalid
    case 2:
        amount = recipe.text(recipe.pick(40), from: "0123456789|-. x")
        if amount == "-" {
            reported = .missing
        } else if !amount.isEmpty, amount.utf8.count <= 16, amount.utf8.allSatisfy({ digits.utf8.contains($0) }),
            let value = Int64(amount), value <= Settlement.maxAmount
        {
            reported = .value(value)
        } else {
            reported = .invalid
        }
    case 3:
        amount = String(repeating: "7", count: 2100)
        reported = .invalid
    default:
        let value = recipe.number(digits: recipe.pick(17))
        amount = "\(value)"
        reported = value <= Settlement.maxAmount ? .value(value) : .invalid
    }
    let newlines = String(repeating: "\n", count: recipe.pick(3))

    let payload = [
        "cg1", hold, origin, status.text, statusList.text, sentList.text, body.text, timeList.text, msec.text, amount,
    ].joined(separator: "|")
    let bytes = Array((header + payload + newlines).utf8)

    // The parser's order: size, the syslog frame, then each field in turn.
    if bytes.count > SettleLine.maxBytes { return (bytes, .rejected(.tooLong)) }
    if !headerFits { return (bytes, .rejected(.malformed)) }
    check(holdValid)
    check(origin == "main", origin == "auth" ? .authLocation : .badField)
    check(status.valid)
    check(statusList.valid)
    check(sentList.valid)
    check(body.valid)
    check(timeList.valid)
    check(msec.valid)
    if let failure { return (bytes, .rejected(failure)) }
    let facts = ResponseFacts(
        status: Int(statusValue), upstreamReached: reached, upstreamAnswered: answered, amount: reported,
        bytesSent: body.text.utf8.count > 0 ? Int64(body.text) ?? -1 : -1, upstreamMs: upstreamMs)
    return (bytes, .accepted(SettleLine(hold: hold, facts: facts)))
}

func parse(_ bytes: [UInt8]) -> Expected {
    do throws(SettleLine.Rejection) {
        return .accepted(try SettleLine(parsing: bytes))
    } catch {
        return .rejected(error)
    }
}

func describe(_ result: Expected) -> String {
    switch result {
    case .rejected(let rejection): "rejected \(rejection.rawValue)"
    case .accepted(let line): "accepted \(show(line.hold)) \(line.facts)"
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzOne(data, size) { bytes in
        // As a datagram.
        let result = parse(bytes)
        require(parse(bytes) == result, "parsing is deterministic")
        require(
            (try? SettleLine(parsing: bytes[...])) == (try? SettleLine(parsing: bytes)), "an ArraySlice parses as the Array does")
        if bytes.count > SettleLine.maxBytes {
            require(result == .rejected(.tooLong), "a datagram over maxBytes is too long", describe(result))
        }
        if case .accepted(let line) = result {
            require(Gate.isHoldID(line.hold), "an accepted line names a hold id", show(line.hold))
            let marker = Array("cg1|\(line.hold)|main|".utf8)
            require(
                bytes.indices.contains { bytes[$0...].starts(with: marker) }, "an accepted line says cg1|HOLD|main|", show(line.hold))
            require((0...999).contains(line.facts.status), "a status has three digits", "\(line.facts.status)")
            require(line.facts.bytesSent >= 0, "body bytes are not negative", "\(line.facts.bytesSent)")
            require((0...Settlement.maxAmount).contains(line.facts.upstreamMs), "upstream ms in 0...2^53", "\(line.facts.upstreamMs)")
            if case .value(let amount) = line.facts.amount {
                require((0...Settlement.maxAmount).contains(amount), "an amount in 0...2^53", "\(amount)")
            }
            if bytes.count < SettleLine.maxBytes {
                require(parse(bytes + [10]) == result, "a trailing newline changes nothing")
            }
        }

        // As a recipe for nginx's line.
        var recipe = Recipe(bytes: bytes)
        let (line, expected) = build(&recipe)
        let parsed = parse(line)
        require(
            parsed == expected, "a line in nginx's shape parses to what its fields say",
            "line \(show(String(decoding: line.prefix(300), as: UTF8.self))): \(describe(parsed)), expected \(describe(expected))")
    }
}
