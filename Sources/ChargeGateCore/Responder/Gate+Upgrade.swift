extension Gate {
    /// Where a subject under plan `plan` (0 without plans) upgrades: the plan's `upgradeUrl`,
    /// else the top-level one; nil when neither is set.
    public func upgradeUrl(plan: Int) -> String? {
        guard config.plans.indices.contains(plan) else { return config.upgradeUrl }
        return config.plans[plan].upgradeUrl ?? config.upgradeUrl
    }
}
