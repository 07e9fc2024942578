extension GateAnalyser {
    /// ` of limit_except GET (FILE:LINE)` when `conf` is a `limit_except` block and `directive`
    /// is its own; empty otherwise.
    func limitExcept(_ conf: Int, owns directive: NginxDirective) -> String {
        guard model[conf].kind == .other("limit_except"), let opening = model[conf].opening,
            model[conf].directives.contains(directive)
        else { return "" }
        return " of \(opening.summary()) (\(opening.location))"
    }
}
