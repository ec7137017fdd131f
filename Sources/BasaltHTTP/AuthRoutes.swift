import HTTPTypes
import BasaltCore
public import BasaltServices
import Foundation
import BasaltAuth
public import Hummingbird
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
        try await HTTPSupport.jsonBody(req, settings: settings).0
    }

    static func accepted() -> Response { HTTPSupport.json(.accepted, .object(JSONObject([("status", .string("accepted"))])), headers: noStore) }
    static func noContent() -> Response { Response(status: .noContent, headers: noStore) }

    public func register(on router: Router<BasaltRequestContext>) {
        let auth = self.auth
        router.get("/.well-known/jwks.json") { _, _ in
            HTTPSupport.json(.ok, auth.tokens.jwks(now: .now()), headers: [.cacheControl: "public, max-age=60"])
        }
        MethodGuard.allow(["GET", "HEAD"], path: "/.well-known/jwks.json")

        router.post("/v1/auth/register") { req, ctx in
            let user = try await auth.register(try await body(req), client: Self.client(req, ctx))
            var h = Self.noStore
            if let id = user["id"]?.stringValue { h[.location] = "/v1/users/\(id)" }
            return HTTPSupport.json(.created, user, headers: h)
        }
        router.post("/v1/auth/login") { req, ctx in
            HTTPSupport.json(.ok, try await auth.login(try await body(req), client: Self.client(req, ctx)), headers: Self.noStore)
        }
        router.post("/v1/auth/refresh") { req, ctx in
            HTTPSupport.json(.ok, try await auth.refresh(try await body(req), client: Self.client(req, ctx)), headers: Self.noStore)
        }
        router.post("/v1/auth/logout") { req, _ in
            try await auth.logout(try await body(req))
            return Self.noContent()
        }
        router.get("/v1/auth/me") { _, ctx in
            HTTPSupport.json(.ok, try auth.me(ctx.principal), headers: Self.noStore)
        }
        router.get("/v1/auth/sessions") { _, ctx in
            HTTPSupport.json(.ok, .object(JSONObject([("items", .array(try await auth.sessions(ctx.principal)))])), headers: Self.noStore)
        }
        router.delete("/v1/auth/sessions/:id") { _, ctx in
            try await auth.revokeSession(ctx.principal, id: try ctx.parameters.require("id"))
            return Self.noContent()
        }
        router.post("/v1/auth/verify/request") { _, ctx in
            try await auth.requestVerification(ctx.principal)
            return Self.accepted()
        }
        router.post("/v1/auth/verify") { req, _ in
            try await auth.verify(try await body(req))
            return Self.noContent()
        }
        router.post("/v1/auth/password/forgot") { req, ctx in
            try await auth.forgotPassword(try await body(req), client: Self.client(req, ctx))
            return Self.accepted()
        }
        router.post("/v1/auth/password/reset") { req, _ in
            try await auth.resetPassword(try await body(req))
            return Self.noContent()
        }
        router.post("/v1/auth/email/change") { req, ctx in
            try await auth.requestEmailChange(ctx.principal, try await body(req))
            return Self.accepted()
        }
        router.post("/v1/auth/email/confirm") { req, _ in
            try await auth.confirmEmailChange(try await body(req))
            return Self.noContent()
        }
        router.post("/v1/auth/mfa/totp") { _, ctx in
            HTTPSupport.json(.ok, try await auth.beginTOTP(ctx.principal), headers: Self.noStore)
        }
        router.post("/v1/auth/mfa/totp/confirm") { req, ctx in
            HTTPSupport.json(.ok, try await auth.confirmTOTP(ctx.principal, try await body(req)), headers: Self.noStore)
        }
        router.delete("/v1/auth/mfa/totp") { req, ctx in
            try await auth.disableTOTP(ctx.principal, try await body(req))
            return Self.noContent()
        }
        for path in ["/v1/auth/register", "/v1/auth/login", "/v1/auth/refresh", "/v1/auth/logout", "/v1/auth/verify/request", "/v1/auth/verify",
                     "/v1/auth/password/forgot", "/v1/auth/password/reset", "/v1/auth/email/change", "/v1/auth/email/confirm", "/v1/auth/mfa/totp/confirm"] {
            MethodGuard.allow(["POST"], path: RouterPath(path))
        }
        MethodGuard.allow(["GET", "HEAD"], path: "/v1/auth/me")
        MethodGuard.allow(["GET", "HEAD"], path: "/v1/auth/sessions")
        MethodGuard.allow(["DELETE"], path: "/v1/auth/sessions/:id")
        MethodGuard.allow(["POST", "DELETE"], path: "/v1/auth/mfa/totp")
    }
}
