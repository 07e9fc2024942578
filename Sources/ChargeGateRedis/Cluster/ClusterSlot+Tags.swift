/// A hash tag for every slot: the shortest text (base 36, then by value) whose CRC16 lands in
/// it. The cluster store places a spend's event stream and holds beside whichever slot the spend
/// runs in with these (`prefix#events:{TAG}`, `prefix#hold:{TAG}:ID`: docs/redis.md, "Redis
/// Cluster"), so that a spend writes its event in its own script and the streams are at most
/// one per slot.
extension ClusterSlot {
    /// The tag of `slot` (0 ..< 16384); the same on every node and every version, since it is
    /// a function of CRC16 alone.
    public static func tag(forSlot slot: Int) -> String {
        tags[slot & (count - 1)]
    }

    /// `tag(forSlot:)` for every slot, found once (about 160 thousand CRC16s of four bytes or
    /// less: a few milliseconds, on a worker's first cluster spend).
    static let tags: [String] = {
        var found = [String?](repeating: nil, count: count)
        var left = count
        var value = 0
        while left > 0 {
            let text = String(value, radix: 36)
            let slot = Self.slot(forKey: Array(text.utf8))
            if found[slot] == nil {
                found[slot] = text
                left -= 1
            }
            value += 1
        }
        return found.map { $0 ?? "" }
    }()
}
