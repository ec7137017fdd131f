extension String {
    /// Without leading and trailing spaces and tabs (HTTP's optional whitespace, RFC 9110 §5.6.3).
    public func trimmingOWS() -> Substring { self[...].trimmingOWS() }
}

extension Substring {
    /// Without leading and trailing spaces and tabs (HTTP's optional whitespace, RFC 9110 §5.6.3:
    /// octets, so compared as bytes, from each end only as far as the first other byte).
    /// Foundation's `trimmingCharacters(in: .whitespaces)` walks Unicode scalars through a
    /// character set, a walk by `Character` breaks graphemes, and a generic one is a witness call
    /// per byte: each was a visible part of an authenticated read, trimming the bearer token.
    public func trimmingOWS() -> Substring {
        let bytes = utf8
        let isOWS: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 }
        guard let first = bytes.firstIndex(where: { !isOWS($0) }) else { return self[endIndex...] }
        // Both bounds sit next to an ASCII byte or at an end: on scalar boundaries.
        let end = bytes.index(after: bytes.lastIndex(where: { !isOWS($0) })!)
        return self[first..<end]
    }
}
