import Hummingbird
import Testing

@testable import BasaltHTTP

@Suite("HTTP surface: which paths ignore credentials")
struct HTTPSurfaceTests {
    static let answer: @Sendable (Request, BasaltRequestContext) async throws -> Response = { _, _ in Response(status: .ok) }
    static let surface = HTTPSurface([
        Endpoint(.get, "/health/live", .open, answer),
        Endpoint(.get, "/problems/:code", .open, answer),
        Endpoint(.get, "/v1/auth/oauth/:provider", .open, answer),
        Endpoint(.get, "/v1/auth/me", .caller, answer),
        Endpoint(.get, "/v1/:collection/:id", .caller, answer),
    ])

    @Test(arguments: [
        ("/health/live", true), ("//health//live/", true), ("/health/live/x", false), ("/health", false),
        ("/health/liv", false), ("/healthz/live", false), ("/problems/not_found", true), ("/problems", false),
        ("/v1/auth/oauth/github", true), ("/v1/auth/oauth", false), ("/v1/auth/me", false), ("/v1/notes/abc", false),
        ("/", false), ("", false),
    ])
    func openEndpointsIgnoreCredentials(_ path: String, _ open: Bool) {
        #expect(Self.surface.ignoresCredentials(path) == open)
    }

    /// Property: matching a path's bytes in place agrees with matching its split segments.
    @Test func byteMatchingAgreesWithSplitting() {
        var rng = SystemRandomNumberGenerator()
        let words = ["health", "live", "v1", "auth", "oauth", "problems", "x", "", "é"]
        let patterns: [[Substring]] = [["health", "live"], ["problems", ":code"], ["v1", "auth", "oauth", ":provider"], [":a"], []]
        for _ in 0..<3000 {
            let path = (0..<Int.random(in: 0...6, using: &rng)).map { _ in words.randomElement(using: &rng)! }.joined(separator: "/")
            let candidate = Bool.random(using: &rng) ? "/" + path : path
            for p in patterns {
                let bytes = p.map { $0.hasPrefix(":") ? nil : Array($0.utf8) }
                var text = candidate
                #expect(
                    text.withUTF8 { HTTPSurface.matches(bytes, $0) } == HTTPSurface.matches(p, candidate.split(separator: "/")),
                    "\(p) against \(candidate)"
                )
            }
        }
    }
}
