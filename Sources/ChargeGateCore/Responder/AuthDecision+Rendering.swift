extension AuthDecision {
    typealias Header = WireProtocol.Header

    /// The answer to the auth subrequest, read back by the snippets with `auth_request_set`:
    /// 204 for a pass (with the `RateLimit` pair after a spend on a route with a policy), 403
    /// carrying a denial (`Denial.answer`), or a shadow route's marked 204.
    var response: Response {
        switch verdict {
        case .unrouted:
            return noted(Self.unrouted)
        case .allowed(let results):
            guard let results, !policy.isEmpty, results.count == items.count else {
                guard let hold else { return noted(Self.allow) }
                return noted(Response(status: 204, headers: Self.allow.headers + [(Header.hold, hold)]))
            }
            // Typed as Response's: an array of unlabelled pairs would be cast element by element.
            var headers: [(name: String, value: String)] = [
                (Header.status, "204"), Header.neverCached, (Header.rateLimitPolicy, policy), (Header.rateLimit, state(results)),
            ]
            if let hold { headers.append((Header.hold, hold)) }
            return noted(Response(status: 204, headers: headers))
        case .denied(let denial):
            return noted(shadow ? denial.shadowPass : denial.answer(policy: policy, edgeUntil: edgeUntil))
        }
    }

    /// `response` with the decision's log line and outcome (most answers have neither: then
    /// `response` as it is).
    private func noted(_ response: Response) -> Response {
        guard note != nil || route != nil else { return response }
        var response = response
        response.note = note
        response.outcome = outcome
        return response
    }

    /// The `RateLimit` state of every limited pool after a spend: `r` charges left, `t` seconds
    /// until the next one comes back (0 when full; none for a pool that never refills).
    private func state(_ results: [ItemResult]) -> String {
        var state = ""
        for (item, result) in zip(items, results) {
            guard let max = item.max else { continue }
            if !state.isEmpty { state += ", " }
            state += "\""
            state += item.poolId
            state += "\";r="
            state += String(result.remaining)
            if let full = result.fullAt, item.period != nil {
                // The whole allowance comes back when the period ends.
                state += ";t="
                state += String(Gate.seconds(full.saturatingSubtracting(now)))
            } else if let full = result.fullAt, let interval = item.intervalMs {
                let level = Bucket.level(remaining: result.remaining, fullAt: full, max: max, intervalMs: interval)
                state += ";t="
                state += String(Gate.seconds((Bucket.nextRechargeAt(level, intervalMs: interval) ?? now).saturatingSubtracting(now)))
            }
        }
        return state
    }

    /// A pass without a `RateLimit` state.
    static let allow = Response(status: 204, headers: [(Header.status, "204"), Header.neverCached])
    /// The pass of a request that matched no route: allowed, nothing charged. Its status is not
    /// `204`, so the auth location asks again when an internal redirect of the same request
    /// reaches a protected location (only a charged allow is answered by nginx itself).
    static let unrouted = Response(status: 204, headers: [(Header.status, Header.unroutedStatus), Header.neverCached])
}
