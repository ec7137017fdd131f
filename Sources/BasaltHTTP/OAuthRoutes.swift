import BasaltCore
public import BasaltServices
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The authorization server's endpoints (API.md §8.1): discovery, the sign-in and consent page,
/// token, revocation, introspection and userinfo. They answer with OAuth error responses
/// (RFC 6749 §5.2), not problem documents, and take `application/x-www-form-urlencoded`.
public struct OAuthRoutes: Sendable {
    let server: OAuthServer
    let social: SocialSignIn
    let settings: HTTPSettings
    /// The page's own forms are the only place its cookie goes (`Secure` on an https issuer).
    let secureCookie: Bool

    public init(server: OAuthServer, social: SocialSignIn, settings: HTTPSettings) {
        self.server = server
        self.social = social
        self.settings = settings
        secureCookie = server.issuer.lowercased().hasPrefix("https:")
    }

    static let csrfCookie = "basalt_oauth_csrf"
    /// Forms are small: the request parameters and a few credentials.
    static let formLimit = 64 * 1024

    public var endpoints: [Endpoint] {
        let server = self.server
        return [
            Endpoint(.get, "/.well-known/oauth-authorization-server", .open, inOpenAPI: false) { _, _ in
                HTTPSupport.json(.ok, server.metadata(openID: false), headers: [.cacheControl: "public, max-age=300"])
            },
            Endpoint(.get, "/.well-known/openid-configuration", .open, inOpenAPI: false) { _, _ in
                HTTPSupport.json(.ok, server.metadata(openID: true), headers: [.cacheControl: "public, max-age=300"])
            },
            Endpoint(.get, "/oauth/authorize", .open, inOpenAPI: false) { req, ctx in
                let pairs = try QueryParameters(req.uri.query).pairs
                return try await authorizePage(req, ctx, pairs: pairs)
            },
            Endpoint(.post, "/oauth/authorize", .open, inOpenAPI: false) { req, ctx in
                try await consent(req, ctx)
            },
            Endpoint(.post, "/oauth/token", .open, inOpenAPI: false) { req, ctx in
                try await oauthJSON {
                    let form = try await Self.form(req)
                    return try await server.token(form.values, client: try form.client(req), caller: AuthRoutes.client(req, ctx))
                }
            },
            Endpoint(.post, "/oauth/revoke", .open, inOpenAPI: false) { req, _ in
                try await oauthJSON {
                    let form = try await Self.form(req)
                    try await server.revoke(form.values, client: try form.client(req))
                    return nil
                }
            },
            Endpoint(.post, "/oauth/introspect", .open, inOpenAPI: false) { req, _ in
                try await oauthJSON {
                    let form = try await Self.form(req)
                    return try await server.introspect(form.values, client: try form.client(req))
                }
            },
            Endpoint(.get, "/oauth/userinfo", .caller, inOpenAPI: false) { _, ctx in
                guard !ctx.principal.isAnonymous else { throw BasaltError(.unauthenticated, "An access token with the openid scope is required") }
                return HTTPSupport.json(.ok, try server.userinfo(ctx.principal), headers: AuthRoutes.noStore)
            },
        ] + socialEndpoints + adminEndpoints
    }

    static let stateCookie = "basalt_oauth_state"

    /// Sign-in with other providers: the browser goes out with a state cookie (the flow is bound
    /// to the browser that started it) and comes back to the callback; the app gets a
    /// single-use code it exchanges for tokens.
    var socialEndpoints: [Endpoint] {
        let social = self.social
        let settings = self.settings
        // A provider that posts its answer (Apple's form_post) is a cross-site POST: the
        // cookie must be SameSite=None, which browsers accept only when Secure.
        let cookieAttributes = "Path=/v1/auth/oauth; HttpOnly; " + (secureCookie ? "SameSite=None; Secure" : "SameSite=Lax")
        let callback: @Sendable (Request, BasaltRequestContext, [(String, String)]) async throws -> Response = { req, ctx, pairs in
            var params: [String: String] = [:]
            for (k, v) in pairs where params[k] == nil { params[k] = v }
            let location = try await social.callback(
                provider: try ctx.parameters.require("provider"),
                params: params,
                cookieState: Self.cookie(Self.stateCookie, in: req),
                client: AuthRoutes.client(req, ctx)
            )
            var r = Self.redirect(location)
            r.headers[.setCookie] = "\(Self.stateCookie)=; \(cookieAttributes); Max-Age=0"
            return r
        }
        return [
            Endpoint(.get, "/v1/auth/oauth/:provider", .open, inOpenAPI: false) { req, ctx in
                let q = try QueryParameters(req.uri.query)
                let started = try await social.start(
                    provider: try ctx.parameters.require("provider"),
                    redirectURI: q.get("redirect_uri"),
                    codeChallenge: q.get("code_challenge"),
                    challengeMethod: q.get("code_challenge_method")
                )
                var r = Self.redirect(started.location)
                r.headers[.setCookie] = "\(Self.stateCookie)=\(started.state); \(cookieAttributes); Max-Age=600"
                return r
            },
            Endpoint(.get, "/v1/auth/oauth/:provider/callback", .open, inOpenAPI: false) { req, ctx in
                try await callback(req, ctx, try QueryParameters(req.uri.query).pairs)
            },
            Endpoint(.post, "/v1/auth/oauth/:provider/callback", .open, inOpenAPI: false) { req, ctx in
                let pairs: [(String, String)]
                do {
                    pairs = try await Self.formPairs(req)
                } catch let e as OAuthError {
                    throw BasaltError.badRequest(e.description)
                }
                return try await callback(req, ctx, pairs)
            },
            Endpoint(.post, "/v1/auth/oauth/exchange", .caller) { req, ctx in
                let body = try await HTTPSupport.jsonBody(req, settings: settings)
                return HTTPSupport.json(.ok, try await social.exchange(body, client: AuthRoutes.client(req, ctx)), headers: AuthRoutes.noStore)
            },
            Endpoint(.get, "/v1/auth/identities", .caller) { _, ctx in
                let items = try await social.identities(ctx.principal)
                return HTTPSupport.json(.ok, .object(JSONObject([("items", .array(items))])), headers: AuthRoutes.noStore)
            },
            Endpoint(.delete, "/v1/auth/identities/:id", .caller) { _, ctx in
                try await social.unlink(ctx.principal, id: try ctx.parameters.require("id"))
                return AuthRoutes.noContent()
            },
        ]
    }

    /// `/v1/admin/oauth/clients`: registration by admins, audited with the change.
    var adminEndpoints: [Endpoint] {
        let clients = server.clients
        let schemas = server.auth.schemas
        let audit = AuditLog(store: schemas.store)
        let settings = self.settings
        return [
            Endpoint(.get, "/v1/admin/oauth/clients", .admin) { _, _ in
                let items = try await clients.list().map(\.json)
                return HTTPSupport.json(.ok, .object(JSONObject([("items", .array(items))])), headers: [.cacheControl: "no-store"])
            },
            Endpoint(.post, "/v1/admin/oauth/clients", .admin) { req, ctx in
                let body = try await HTTPSupport.jsonBody(req, settings: settings)
                let declared = Set(schemas.current.schema.roles.map(\.name))
                let created = try await clients.register(body, declaredRoles: declared) { id in
                    [audit.statement(AuditLog.entry(ctx.principal, "oauth_client.create", recordID: id))]
                }
                let id = created["id"]?.stringValue ?? ""
                return HTTPSupport.json(.created, created, headers: [.cacheControl: "no-store", .location: "/v1/admin/oauth/clients/\(id)"])
            },
            Endpoint(.get, "/v1/admin/oauth/clients/:id", .admin) { _, ctx in
                guard let c = try await clients.client(try ctx.parameters.require("id")) else {
                    throw BasaltError.notFound("There is no OAuth client with this id")
                }
                return HTTPSupport.json(.ok, c.json, headers: [.cacheControl: "no-store"])
            },
            Endpoint(.delete, "/v1/admin/oauth/clients/:id", .admin) { _, ctx in
                let id = try ctx.parameters.require("id")
                try await server.deleteClient(id, also: [audit.statement(AuditLog.entry(ctx.principal, "oauth_client.delete", recordID: id))])
                return Response(status: .noContent)
            },
        ]
    }

    // MARK: - Token-style endpoints

    /// A parsed form: each parameter once (RFC 6749 §3.2), and the client's credentials.
    struct Form {
        var values: [String: String]

        func client(_ req: Request) throws(OAuthError) -> OAuthServer.PresentedClient? {
            if let header = req.headers[.authorization] {
                // RFC 6749 §2.3.1: one method per request; Basic parts are form-encoded.
                guard values["client_secret"] == nil else { throw OAuthError.invalidRequest("Use one client authentication method, not two") }
                let parts = header.split(separator: " ", maxSplits: 1)
                guard parts.count == 2, parts[0].lowercased() == "basic", let raw = Data(base64Encoded: String(parts[1])),
                    let text = String(data: raw, encoding: .utf8), let colon = text.firstIndex(of: ":"),
                    let id = (try? QueryParameters.decode(text[..<colon])),
                    let secret = (try? QueryParameters.decode(text[text.index(after: colon)...]))
                else {
                    throw OAuthError.invalidClient("The Authorization header must be HTTP Basic with the client's id and secret")
                }
                if let bodyID = values["client_id"], bodyID != id {
                    throw OAuthError.invalidRequest("client_id differs from the authenticated client")
                }
                return .init(id: id, secret: secret)
            }
            guard let id = values["client_id"], !id.isEmpty else { return nil }
            return .init(id: id, secret: values["client_secret"])
        }
    }

    static func form(_ req: Request) async throws -> Form {
        var values: [String: String] = [:]
        for (k, v) in try await formPairs(req) {
            guard values[k] == nil else { throw OAuthError.invalidRequest("The parameter \(k) appears more than once") }
            values[k] = v
        }
        return Form(values: values)
    }

    static func formPairs(_ req: Request) async throws -> [(String, String)] {
        let type = req.headers[.contentType]?.split(separator: ";").first?.trimmingOWS().lowercased()
        guard type == "application/x-www-form-urlencoded" else {
            throw OAuthError.invalidRequest("The body must be application/x-www-form-urlencoded")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await req.body.collect(upTo: formLimit)
        } catch {
            throw OAuthError.invalidRequest("The body is larger than \(formLimit) bytes")
        }
        do {
            return try QueryParameters(String(decoding: buffer.readableBytesView, as: UTF8.self)).pairs
        } catch {
            throw OAuthError.invalidRequest("The body is not valid form data")
        }
    }

    /// Runs a token-style endpoint: its answer as JSON (`nil`: an empty 200), an `OAuthError` as
    /// RFC 6749 §5.2 says. Never cached.
    func oauthJSON(_ body: () async throws -> JSONValue?) async throws -> Response {
        var headers = AuthRoutes.noStore
        do {
            guard let value = try await body() else { return Response(status: .ok, headers: headers) }
            return HTTPSupport.json(.ok, value, headers: headers)
        } catch let e as OAuthError {
            if e.status == 401 { headers[.wwwAuthenticate] = "Basic realm=\"basalt\"" }
            return HTTPSupport.json(.init(code: e.status), e.json, headers: headers)
        }
    }

    // MARK: - The sign-in and consent page

    func authorizePage(_ req: Request, _ ctx: BasaltRequestContext, pairs: [(String, String)]) async throws -> Response {
        switch try await server.authorizationRequest(pairs) {
        case .failure(.page(let message)):
            return page(status: .badRequest, ConsentPage.refusal(message), csrf: nil)
        case .failure(.redirect(let url)):
            return Self.redirect(url)
        case .success(let request):
            let csrf = Digest.randomToken(bytes: 24)
            return page(status: .ok, ConsentPage.form(request, csrf: csrf, message: nil, askOTP: false, email: ""), csrf: csrf)
        }
    }

    func consent(_ req: Request, _ ctx: BasaltRequestContext) async throws -> Response {
        let pairs: [(String, String)]
        do {
            pairs = try await Self.formPairs(req)
        } catch let e as OAuthError {
            return page(status: .badRequest, ConsentPage.refusal(e.description), csrf: nil)
        }
        var fields: [String: String] = [:]
        for (k, v) in pairs where fields[k] == nil { fields[k] = v }
        // Double submit: the form's token must be the cookie's, which only this site could set
        // and only this site's pages send (SameSite=Strict).
        let cookie = Self.cookie(Self.csrfCookie, in: req)
        guard let presented = fields["csrf"], let cookie, !cookie.isEmpty, Digest.constantTimeEqual(Array(presented.utf8), Array(cookie.utf8)) else {
            return page(status: .forbidden, ConsentPage.refusal("This form has expired. Go back to the application and start again."), csrf: nil)
        }
        let own: Set<String> = ["csrf", "email", "password", "otp", "decision"]
        let request: OAuthServer.AuthorizationRequest
        switch try await server.authorizationRequest(pairs.filter { !own.contains($0.0) }) {
        case .failure(.page(let message)): return page(status: .badRequest, ConsentPage.refusal(message), csrf: nil)
        case .failure(.redirect(let url)): return Self.redirect(url)
        case .success(let r): request = r
        }
        if fields["decision"] != "allow" { return Self.redirect(server.deniedRedirect(request)) }
        let email = fields["email"] ?? ""
        let again: (HTTPResponse.Status, String, Bool) -> Response = { status, message, askOTP in
            page(status: status, ConsentPage.form(request, csrf: cookie, message: message, askOTP: askOTP, email: email), csrf: cookie)
        }
        let user: JSONObject
        do {
            user = try await server.auth.signIn(
                email: email,
                password: fields["password"] ?? "",
                otp: fields["otp"].flatMap { $0.isEmpty ? nil : $0 },
                client: AuthRoutes.client(req, ctx)
            )
        } catch let e as BasaltError {
            switch e.code {
            case .unauthenticated: return again(.unauthorized, "The email or password is wrong, or the account is disabled.", false)
            case .mfaRequired: return again(.unauthorized, "Enter the one-time code from your authenticator app (or a recovery code).", true)
            case .rateLimited:
                var r = again(.tooManyRequests, "Too many attempts. Wait \(e.retryAfter ?? 60) seconds and try again.", false)
                r.headers[.retryAfter] = String(e.retryAfter ?? 60)
                return r
            default: throw e
            }
        }
        return Self.redirect(try await server.issueCode(request, user: user, client: AuthRoutes.client(req, ctx)))
    }

    static func redirect(_ url: String) -> Response {
        Response(status: .found, headers: [.location: url, .cacheControl: "no-store"])
    }

    func page(status: HTTPResponse.Status, _ html: String, csrf: String?) -> Response {
        var headers: HTTPFields = [
            .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
            BasaltHeader.csp: "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ]
        if let csrf {
            headers[.setCookie] =
                "\(Self.csrfCookie)=\(csrf); Path=/oauth; HttpOnly; SameSite=Strict; Max-Age=3600" + (secureCookie ? "; Secure" : "")
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func cookie(_ name: String, in req: Request) -> String? {
        for header in req.headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let kv = part.split(separator: "=", maxSplits: 1)
                if kv.count == 2, kv[0].trimmingCharacters(in: .whitespaces) == name { return kv[1].trimmingCharacters(in: .whitespaces) }
            }
        }
        return nil
    }
}
