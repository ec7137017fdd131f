import Foundation
import HTTPTypes
import BasaltCore
public import BasaltServices
public import Hummingbird

/// Turns credentials into a `Principal`. A bad credential is always a 401, never anonymous —
/// except on paths that ignore credentials (health, discovery, problem pages).
public struct AuthMiddleware: RouterMiddleware {
    public typealias Context = BasaltRequestContext
    let apiKeys: ApiKeyService
    let auth: AuthService
    let settings: HTTPSettings

    public init(apiKeys: ApiKeyService, auth: AuthService, settings: HTTPSettings) {
        self.apiKeys = apiKeys
        self.auth = auth
        self.settings = settings
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let address = clientAddress(request, context)
        context.principal = .anonymous(address)
        let path = request.uri.path
        if path.hasPrefix("/health/") || path.hasPrefix("/problems/") || path.hasPrefix("/.well-known/") {
            return try await next(request, context)
        }
        if let auth = request.headers[.authorization] {
            context.hasCredentials = true
            let parts = auth.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else {
                throw invalid("The Authorization header must be a Bearer token")
            }
            let token = String(parts[1]).trimmingCharacters(in: .whitespaces)
            var p: Principal
            if token.hasPrefix("bsk_") {
                guard let k = try await apiKeys.authenticate(token) else { throw invalid("The token is invalid, expired or revoked") }
                p = k
                p.roles = self.auth.schemas.current.effectiveRoles(p.roles)
            } else {
                // Anything else must be one of our access JWTs; `authenticate` throws the 401.
                p = try await self.auth.authenticate(accessToken: token, address: address)
            }
            p.clientAddress = address
            p.requestID = context.requestID
            context.principal = p
        }
        return try await next(request, context)
    }

    func invalid(_ message: String) -> BasaltError {
        BasaltError(.unauthenticated, message, headers: [("WWW-Authenticate", "Bearer error=\"invalid_token\"")])
    }

    /// The peer address, or the first untrusted hop of `X-Forwarded-For` behind a trusted proxy.
    func clientAddress(_ request: Request, _ context: Context) -> String {
        guard settings.trustedProxies.contains(context.peerAddress), let xff = request.headers[BasaltHeader.forwardedFor] else {
            return context.peerAddress
        }
        let hops = xff.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        return hops.last { !settings.trustedProxies.contains($0) } ?? context.peerAddress
    }
}
