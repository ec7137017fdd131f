extension StringProtocol {
    /// Without leading and trailing spaces and tabs (HTTP's optional whitespace, RFC 9110 §5.6.3).
    /// Foundation's `trimmingCharacters(in: .whitespaces)` walks Unicode scalars through a
    /// character set: it was a seventh of an authenticated read's time, trimming the token.
    public func trimmingOWS() -> SubSequence {
        let isOWS: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isOWS($0) }) else { return self[endIndex...] }
        let last = lastIndex(where: { !isOWS($0) })!
        return self[first...last]
    }
}
