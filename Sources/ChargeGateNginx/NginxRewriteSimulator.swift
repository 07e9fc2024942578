/// The rewrite module's directives of one block (`ngx_http_rewrite_handler` and the script
/// codes of src/http/ngx_http_script.c) run over a request: `set`, `break`, `return`,
/// `rewrite` (no flag: `$uri` changes and the next directives run; `last`: stop, search the
/// location again; `break`: stop, stay; `redirect`/`permanent` or a replacement starting with
/// `http://`, `https://` or `$scheme`: answer 302/301), and `if` (its directives run in line;
/// at location level a condition that holds makes the `if` block's configuration the one in
/// effect). A condition on something the analysis cannot know (a header, a file test) is
/// followed both ways, each path remembering what it assumed.
public struct NginxRewriteSimulator {
    /// At most this many paths per block (conditions that cannot be evaluated double them).
    public static let maximumPaths = 64

    private let model: NginxModel
    private let regexes: NginxRegexCache

    /// A simulator over `model`.
    public init(model: NginxModel, regexes: NginxRegexCache) {
        self.model = model
        self.regexes = regexes
    }

    /// One of nginx's script codes, as far as the analysis needs them.
    private enum Instruction {
        /// `set`, `break`, `return` or `rewrite`.
        case directive(NginxDirective)
        /// An `if`: its block, and where to go on when it does not hold.
        case condition(NginxDirective, block: Int, skipTo: Int)
    }

    private static let rewriteDirectives: Set<String> = ["rewrite", "return", "set", "break"]

    /// nginx's compiled codes of a block: its rewrite directives in order, an `if`'s in line.
    private func program(of block: Int) -> [Instruction] {
        var out: [Instruction] = []
        for (index, directive) in model[block].directives.enumerated() {
            if directive.name == "if", let child = model[block].children[index] {
                let start = out.count
                out.append(.condition(directive, block: child, skipTo: 0))
                for inner in model[child].directives where Self.rewriteDirectives.contains(inner.name) {
                    out.append(.directive(inner))
                }
                out[start] = .condition(directive, block: child, skipTo: out.count)
            } else if Self.rewriteDirectives.contains(directive.name) && directive.block == nil {
                out.append(.directive(directive))
            }
        }
        return out
    }

    /// Runs the rewrite directives of `block` over `state`; `locationLevel` is false for the
    /// server's own (server rewrite phase: an `if` there does not change the configuration).
    public func run(block: Int, state: NginxRequestState, locationLevel: Bool) -> [NginxRewriteOutcome] {
        let code = program(of: block)
        var pending: [(pc: Int, state: NginxRequestState, conf: Int)] = [(0, state, block)]
        var done: [NginxRewriteOutcome] = []
        while let path = pending.popLast() {
            var pc = path.pc
            var state = path.state
            var conf = path.conf
            var end: NginxRewriteOutcome.End?
            while end == nil && pc < code.count {
                switch code[pc] {
                case .condition(let directive, let child, let skipTo):
                    switch evaluateCondition(directive, &state) {
                    case .some(true):
                        if locationLevel { conf = child }
                        pc += 1
                    case .some(false):
                        pc = skipTo
                    case .none:
                        guard pending.count + done.count < Self.maximumPaths else {
                            end = .undecidable("too many conditions to follow", directive)
                            break
                        }
                        var otherwise = state
                        otherwise.assumptions.append(NginxAssumption(directive: directive, holds: false))
                        pending.append((skipTo, otherwise, conf))
                        state.assumptions.append(NginxAssumption(directive: directive, holds: true))
                        if locationLevel { conf = child }
                        pc += 1
                    }
                case .directive(let directive):
                    end = execute(directive, &state)
                    pc += 1
                }
            }
            done.append(NginxRewriteOutcome(end: end ?? .finished, state: state, conf: conf))
        }
        return done
    }

    /// One directive; nil when the next one runs.
    private func execute(_ directive: NginxDirective, _ state: inout NginxRequestState) -> NginxRewriteOutcome.End? {
        let values = directive.values
        switch directive.name {
        case "set":
            guard values.count == 2 else { return nil }
            state.variables[String(values[0].dropFirst())] = .some(state.evaluate(values[1]))
            state.assignedBy[String(values[0].dropFirst())] = directive
            return nil
        case "break":
            if state.uriChanged { state.validLocation = false }
            state.uriChanged = false
            return .finished
        case "return":
            return .answered(status: Self.returnStatus(values), by: directive)
        case "rewrite":
            return rewrite(directive, &state)
        default:
            return nil
        }
    }

    /// `ngx_http_rewrite_return`: the code, or 302 for a bare URL.
    public static func returnStatus(_ values: [String]) -> Int {
        guard let first = values.first else { return 302 }
        return Int(first) ?? 302
    }

    private static func isRedirectURL(_ text: String) -> Bool {
        text.hasPrefix("http://") || text.hasPrefix("https://") || text.hasPrefix("$scheme")
    }

    private func rewrite(_ directive: NginxDirective, _ state: inout NginxRequestState) -> NginxRewriteOutcome.End? {
        let values = directive.values
        guard values.count >= 2 else { return nil }
        let regex: NginxRegex
        switch regexes.regex(values[0], caseless: false) {
        case .failure(let failure): return .undecidable("cannot evaluate the regex \(values[0]): \(failure.message)", directive)
        case .success(let compiled): regex = compiled
        }
        guard let captures = regex.match(state.uri) else { return nil }
        state.captures = captures.numbered
        for (name, value) in captures.named { state.variables[name] = .some(value) }
        let flag = values.count > 2 ? values[2] : ""
        if flag == "permanent" { return .answered(status: 301, by: directive) }
        if flag == "redirect" || Self.isRedirectURL(values[1]) { return .answered(status: 302, by: directive) }
        var replacement = values[1]
        if replacement.hasSuffix("?") { replacement.removeLast() }
        if let question = replacement.firstIndex(of: "?") { replacement = String(replacement[..<question]) }
        guard let uri = state.evaluate(replacement) else {
            let unknown = NginxRequestState.variableNames(in: replacement).first { state.value(of: $0) == nil } ?? "?"
            return .undecidable("the rewritten $uri depends on $\(unknown)", directive)
        }
        guard !uri.isEmpty else { return .answered(status: 500, by: directive) }
        state.uri = uri
        state.isInternal = true
        state.rewrites.append(directive)
        switch flag {
        case "break":
            state.uriChanged = false
            state.validLocation = false
            return .finished
        case "last":
            state.uriChanged = true
            return .finished
        default:
            state.uriChanged = true
            return nil
        }
    }

    /// `ngx_http_rewrite_if_condition` evaluated: nil when it depends on something unknown.
    private func evaluateCondition(_ directive: NginxDirective, _ state: inout NginxRequestState) -> Bool? {
        var words = directive.values
        guard !words.isEmpty else { return nil }
        if words[0] == "(" { words.removeFirst() } else if words[0].hasPrefix("(") { words[0].removeFirst() }
        guard !words.isEmpty else { return nil }
        if words[words.count - 1] == ")" {
            words.removeLast()
        } else if words[words.count - 1].hasSuffix(")") {
            words[words.count - 1].removeLast()
        }
        guard let first = words.first, first.hasPrefix("$"), first.count > 1 else { return nil }
        guard let subject = state.evaluate(first) else { return nil }
        if words.count == 1 { return !subject.isEmpty && subject != "0" }
        guard words.count == 3 else { return nil }
        let operation = words[1]
        switch operation {
        case "=", "!=":
            guard let other = state.evaluate(words[2]) else { return nil }
            return (subject == other) == (operation == "=")
        case "~", "~*", "!~", "!~*":
            guard case .success(let regex) = regexes.regex(words[2], caseless: operation.hasSuffix("*")) else { return nil }
            let matched = regex.match(subject)
            if let matched {
                state.captures = matched.numbered
                for (name, value) in matched.named { state.variables[name] = .some(value) }
            }
            return (matched != nil) != operation.hasPrefix("!")
        default:
            return nil
        }
    }
}
