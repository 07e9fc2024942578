extension Int64 {
    /// `self + other`, held at `Int64.max` or `Int64.min` instead of overflowing: for times and
    /// waits that come from outside (a store's reply), where a trap would end the process.
    func saturatingAdding(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        guard overflow else { return sum }
        return other > 0 ? .max : .min
    }

    /// `self - other`, held at `Int64.max` or `Int64.min` instead of overflowing.
    func saturatingSubtracting(_ other: Int64) -> Int64 {
        let (difference, overflow) = subtractingReportingOverflow(other)
        guard overflow else { return difference }
        return other < 0 ? .max : .min
    }
}
