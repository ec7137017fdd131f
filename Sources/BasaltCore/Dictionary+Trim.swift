extension Dictionary {
    /// Keeps an in-memory table of per-client state (rate-limit windows, throttles) bounded in
    /// amortized constant work per insertion: past `capacity` entries, stale ones go; if most
    /// are still live (an attacker rotating addresses), arbitrary ones go too, down to half the
    /// capacity — so the next trim is at least `capacity / 2` insertions away.
    public mutating func trim(to capacity: Int, dropping isStale: (Value) -> Bool) {
        guard count > capacity else { return }
        self = filter { !isStale($0.value) }
        guard count > capacity / 2 else { return }
        var excess = count - capacity / 2
        for key in keys {
            if excess == 0 { break }
            removeValue(forKey: key)
            excess -= 1
        }
    }
}
