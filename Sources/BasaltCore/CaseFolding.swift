/// The case folding of the filter language's `~` (API.md §3): each code point mapped to its
/// Unicode simple lowercase. One definition for every place that folds — the constant folder, the
/// in-memory rule evaluator and SQLite's `basalt_lower` — so they cannot drift apart.
public enum CaseFolding {
    /// Swift exposes the full mapping; the two differ only where the full one has several scalars,
    /// which among lowercase mappings only U+0130 (İ → i + U+0307, simple: i) does, so single-scalar
    /// full mappings are the simple ones.
    public static func simpleLowercase(_ c: Unicode.Scalar) -> Unicode.Scalar {
        if c == "\u{130}" { return "i" }
        let mapped = c.properties.lowercaseMapping.unicodeScalars
        guard mapped.count == 1, let first = mapped.first else { return c }
        return first
    }

    public static func simpleLowercase(_ s: String) -> String {
        if s.utf8.allSatisfy({ $0 < 0x80 }) { return s.lowercased() }  // ASCII: the common case
        var out = String.UnicodeScalarView()
        for u in s.unicodeScalars { out.append(simpleLowercase(u)) }
        return String(out)
    }

    /// Whether `needle` occurs in `haystack` after folding, compared code point by code point
    /// (not by Swift's canonical equivalence, which SQL does not use).
    public static func contains(_ haystack: String, _ needle: String) -> Bool {
        let h = haystack.unicodeScalars.map(simpleLowercase)
        let n = needle.unicodeScalars.map(simpleLowercase)
        guard !n.isEmpty else { return true }
        guard n.count <= h.count else { return false }
        for start in 0...(h.count - n.count) where h[start..<start + n.count].elementsEqual(n) {
            return true
        }
        return false
    }
}
