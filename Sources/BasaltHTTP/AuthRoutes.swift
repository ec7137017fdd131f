import BasaltAuth
import BasaltCore
public import BasaltServices
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `/v1/auth/…` (API.md §8) and `/.well-known/jwks.json`.
public struct AuthRoutes: Sendable {
    let auth: AuthService
    let settings: HTTPSettings

    public init(auth: AuthService, settings: HTTPSettings) {
        self.auth = auth
        self.settings = settings
    }

    /// Token responses and everything about the caller must never be cached (RFC 6749 §5.1).
    static let noStore: HTTPFields = [.cacheControl: "no-store", HTTPField.Name("Pragma")!: "no-cache"]

    static func client(_ req: Request, _ ctx: BasaltRequestContext) -> AuthService.Client {
        AuthService.Client(address: ctx.principal.clientAddress, userAgent: req.headers[.userAgent])
    }

    func body(_ req: Request) async throws -> JSONValue {
        try await HTTPSupport.jsonBody(req, settings: settings)
    }

    static func accepted() -> Response { HTTPSupport.json(.accepted, .object(JSONObject([("status", .string("accepted"))])), headers: noStore) }
    static func noContent() -> Response { Response(status: .noContent, headers: noStore) }

    public var endpoints: [Endpoint] {
        let auth = self.auth
        return [
            Endpoint(.get, "/.well-known/jwks.json", .open) { _, _ in
                HTTPSupport.json(.ok, auth.tokens.jwks(now: .now()), headers: [.cacheControl: "public, max-age=60"])
            },
            Endpoint(.post, "/v1/auth/register", .caller) { req, ctx in
                let user = try await auth.register(try await body(req), client: Self.client(req, ctx))
                var h = Self.noStore
                if let id = user["id"]?.stringValue { h[.location] = "/v1/users/\(id)" }
                return HTTPSupport.json(.created, user, headers: h)
            },
            Endpoint(.post, "/v1/auth/login", .caller) { req, ctx in
                HTTPSupport.json(.ok, try await auth.login(try await body(req), client: Self.client(req, ctx)), headers: Self.noStore)
            },
            Endpoint(.post, "/v1/auth/refresh", .caller) { req, ctx in
                HTTPSupport.json(.ok, try await auth.refresh(try await body(req), client: Self.client(req, ctx)), headers: Self.noStore)
            },
            Endpoint(.post, "/v1/auth/logout", .caller) { req, _ in
                try await auth.logout(try await body(req))
                return Self.noContent()
            },
            Endpoint(.get, "/v1/auth/me", .caller) { _, ctx in
                HTTPSupport.json(.ok, try auth.me(ctx.principal), headers: Self.noStore)
            },
            Endpoint(.get, "/v1/auth/sessions", .caller) { _, ctx in
                HTTPSupport.json(.ok, .object(JSONObject([("items", .array(try await auth.sessions(ctx.principal)))])), headers: Self.noStore)
            },
            Endpoint(.delete, "/v1/auth/sessions/:id", .caller) { _, ctx in
                try await auth.revokeSession(ctx.principal, id: try ctx.parameters.require("id"))
                return Self.noContent()
            },
            Endpoint(.post, "/v1/auth/verify/request", .caller) { _, ctx in
                try await auth.requestVerification(ctx.principal)
                return Self.accepted()
            },
            Endpoint(.post, "/v1/auth/verify", .caller) { req, _ in
                try await auth.verify(try await body(req))
                return Self.noContent()
            },
            Endpoint(.post, "/v1/auth/password/forgot", .caller) { req, ctx in
                try await auth.forgotPassword(try await body(req), client: Self.client(req, ctx))
                return Self.accepted()
            },
            Endpoint(.post, "/v1/auth/password/reset", .caller) { req, _ in
                try await auth.resetPassword(try await body(req))
                return Self.noContent()
            },
            Endpoint(.post, "/v1/auth/email/change", .caller) { req, ctx in
                try await auth.requestEmailChange(ctx.principal, try await body(req))
                return Self.accepted()
            },
            Endpoint(.post, "/v1/auth/email/confirm", .caller) { req, _ in
                try await auth.confirmEmailChange(try await body(req))
                return Self.noContent()
            },
            Endpoint(.post, "/v1/auth/mfa/totp", .caller) { req, ctx in
                HTTPSupport.json(.ok, try await auth.beginTOTP(ctx.principal, try await body(req)), headers: Self.noStore)
            },
            Endpoint(.post, "/v1/auth/mfa/totp/confirm", .caller) { req, ctx in
                HTTPSupport.json(.ok, try await auth.confirmTOTP(ctx.principal, try await body(req)), headers: Self.noStore)
            },
            Endpoint(.delete, "/v1/auth/mfa/totp", .caller) { req, ctx in
                try await auth.disableTOTP(ctx.principal, try await body(req))
                return Self.noContent()
            },
        ]
    }
}
