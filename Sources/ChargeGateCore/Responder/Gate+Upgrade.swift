extension Gate {
    /// Where a subject under plan `plan` (0 without plans) upgrades: the plan's `upgradeUrl`,
    /// else the top-level one; nil when neither is set.
    public func upgradeUrl(plan: Int) -> String? {
        guard config.plans.indices.contains(plan) else { return config.upgradeUrl }
        return config.plans[plan].upgradeUrl ?? config.upgradeUrl
    }

    /// The `upgradeUrl` a denial by `pool` (the config's pool; `period` as the subject's plan
    /// sets it) carries for a subject under plan `plan`: a 402 (`credits`: nothing refills) or
    /// the 429 of a period pool (used up until the period ends), where waiting does not help
    /// and a bigger plan or more credits would. Never a plain bucket's 429 (charges come back
    /// by themselves). A global pool's carries the top-level URL only: it is everybody's, no
    /// plan sets it, and its denial is remembered for every subject alike (the deny caches key
    /// it by route, not by subject or plan).
    public func upgradeUrl(denial credits: Bool, pool: Pool, period: BillingPeriod?, plan: Int) -> String? {
        guard credits || period != nil else { return nil }
        return pool.perSubject ? upgradeUrl(plan: plan) : config.upgradeUrl
    }

    /// The `upgradeUrl` the usage JSON and page show on `pool` (as the subject's plan `plan`
    /// sets it) holding `available`: a period or credits pool that is used up (less than 1
    /// left, as `/api/usage/check` counts), the pools whose denial carries it (a global one:
    /// the top-level URL).
    public func upgradeUrl(usage pool: PoolConfig, available: Int64?, plan: Int) -> String? {
        guard let available, available < 1, pool.period != nil || pool.isCredits else { return nil }
        return pool.scope == .subject ? upgradeUrl(plan: plan) : config.upgradeUrl
    }
}
