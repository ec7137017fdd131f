import BasaltCore
import BasaltServices
public import HTTPTypes
public import Hummingbird

/// One endpoint of the HTTP surface, declared once in its resource's route file. The router,
/// the `405` + `Allow` answers, which paths ignore credentials and which paths the OpenAPI
/// document lists all derive from these declarations.
public struct Endpoint: Sendable {
    /// Who may call it, as far as the edge decides (grants decide the rest in the services).
    public enum Access: Sendable, Equatable {
        /// Credentials are ignored (health, discovery, problem pages): a bad token is no error.
        case open
        /// Any caller; a credential that is sent must be valid.
        case caller
        /// An admin credential: `401` anonymous, `403` otherwise.
        case admin
    }

    public let method: HTTPRequest.Method
    /// A router pattern: `/v1/auth/sessions/:id`.
    public let path: String
    public let access: Access
    /// Whether the OpenAPI document describes it (HTML pages for people are left out).
    public let inOpenAPI: Bool
    let handler: @Sendable (Request, BasaltRequestContext) async throws -> Response

    init(
        _ method: HTTPRequest.Method,
        _ path: String,
        _ access: Access,
        inOpenAPI: Bool = true,
        _ handler: @escaping @Sendable (Request, BasaltRequestContext) async throws -> Response
    ) {
        self.method = method
        self.path = path
        self.access = access
        self.inOpenAPI = inOpenAPI
        self.handler = handler
    }
}

/// Every endpoint of a deployment: the one description of its HTTP surface.
public struct HTTPSurface: Sendable {
    public let endpoints: [Endpoint]
    /// Path patterns in declaration order, split into segments, with their methods.
    let patterns: [(segments: [Substring], methods: [String], open: Bool)]
    /// The same, by segment count: a path is only compared with patterns as long as it is.
    let patternsByLength: [Int: [(segments: [Substring], methods: [String], open: Bool)]]
    /// The few patterns whose endpoints ignore credentials (see `ignoresCredentials`), as bytes
    /// per segment, nil for a parameter.
    let openPatterns: [[[UInt8]?]]

    public init(_ endpoints: [Endpoint]) {
        self.endpoints = endpoints
        var patterns: [(segments: [Substring], methods: [String], open: Bool)] = []
        for e in endpoints {
            let segments = e.path.split(separator: "/")
            var methods = [e.method.rawValue]
            if e.method == .get { methods.append("HEAD") }  // the router answers HEAD for every GET
            if let i = patterns.firstIndex(where: { $0.segments == segments }) {
                patterns[i].methods += methods.filter { !patterns[i].methods.contains($0) }
                patterns[i].open = patterns[i].open && e.access == .open
            } else {
                patterns.append((segments, methods, e.access == .open))
            }
        }
        self.patterns = patterns
        self.patternsByLength = Dictionary(grouping: patterns) { $0.segments.count }
        self.openPatterns = patterns.filter(\.open).map { $0.segments.map { $0.hasPrefix(":") ? nil : Array($0.utf8) } }
    }

    public func register(on router: Router<BasaltRequestContext>) {
        for e in endpoints {
            let handler = e.handler
            switch e.access {
            case .admin:
                router.on(RouterPath(e.path), method: e.method) { req, ctx in
                    try Self.requireAdmin(ctx)
                    return try await handler(req, ctx)
                }
            case .open, .caller:
                router.on(RouterPath(e.path), method: e.method) { req, ctx in try await handler(req, ctx) }
            }
        }
    }

    static func requireAdmin(_ ctx: BasaltRequestContext) throws(BasaltError) {
        if ctx.principal.isAdmin { return }
        if ctx.principal.isAnonymous { throw BasaltError(.unauthenticated, "An admin credential is required") }
        throw BasaltError(.forbidden, "An admin credential is required")
    }

    /// The pattern a concrete path matches (the first declared, as the router's literal segments
    /// win over parameters only where declared so).
    /// The pattern the router takes for `path`: of those that match, the one with the most literal
    /// segments (`/v1/auth/oauth/exchange` before `/v1/auth/oauth/:provider`), as its trie does.
    func pattern(for path: String) -> (segments: [Substring], methods: [String], open: Bool)? {
        let parts = path.split(separator: "/")
        let matching = (patternsByLength[parts.count] ?? []).filter { Self.matches($0.segments, parts) }
        return matching.max { a, b in a.segments.count { !$0.hasPrefix(":") } < b.segments.count { !$0.hasPrefix(":") } }
    }

    /// The methods of a path that exists under other methods: a `405` with `Allow`, not a `404`.
    public func allowedMethods(for path: String) -> [String]? { pattern(for: path)?.methods }

    /// Whether the endpoint at `path` ignores credentials (API.md §4: health, discovery, problem pages).
    /// Every credentialed request asks: the answer is no unless an open pattern matches at all.
    public func ignoresCredentials(_ path: String) -> Bool {
        var path = path
        let any = path.withUTF8 { bytes in openPatterns.contains { Self.matches($0, bytes) } }
        guard any else { return false }
        return pattern(for: path)?.open ?? false
    }

    /// `matches` on the path's bytes, without splitting it (asked on every credentialed request;
    /// on a buffer, as a walk by `String.UTF8View` index cost thousands of instructions a request).
    static func matches(_ pattern: [[UInt8]?], _ path: UnsafeBufferPointer<UInt8>) -> Bool {
        let slash = UInt8(ascii: "/")
        var at = 0
        var i = 0
        while true {
            // Empty segments are skipped, as `split(separator:)` skips them.
            while at < path.count && path[at] == slash { at += 1 }
            if at == path.count { return i == pattern.count }
            var end = at
            while end < path.count && path[end] != slash { end += 1 }
            guard i < pattern.count else { return false }
            if let literal = pattern[i], !literal.elementsEqual(path[at..<end]) { return false }
            i += 1
            at = end
        }
    }

    static func matches(_ pattern: [Substring], _ parts: [Substring]) -> Bool {
        pattern.count == parts.count && zip(pattern, parts).allSatisfy { $0.hasPrefix(":") || $0 == $1 }
    }
}
