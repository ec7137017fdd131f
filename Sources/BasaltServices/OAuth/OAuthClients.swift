public import BasaltCore
public import BasaltStorage
import Foundation

/// A client of the authorization server, registered by an admin (API.md §8.1).
public struct OAuthClient: Sendable, Equatable {
    public enum Grant: String, Sendable, CaseIterable {
        case authorizationCode = "authorization_code"
        case refreshToken = "refresh_token"
        case clientCredentials = "client_credentials"
    }

    public var id: String
    public var name: String
    /// SHA-256 of the secret; nil for a public client (a browser or native app, RFC 6749 §2.1).
    public var secretHash: String?
    public var redirectURIs: [String]
    public var grants: Set<Grant>
    /// The most a token of this client may carry.
    public var scopes: [String]
    /// What its own tokens (`client_credentials`) act with.
    public var roles: [String]
    public var createdAt: Timestamp

    public var isConfidential: Bool { secretHash != nil }

    public var json: JSONValue {
        .object(
            JSONObject([
                ("id", .string(id)), ("name", .string(name)), ("confidential", .bool(isConfidential)),
                ("redirect_uris", .array(redirectURIs.map { .string($0) })),
                ("grants", .array(Grant.allCases.filter { grants.contains($0) }.map { .string($0.rawValue) })),
                ("scopes", .array(scopes.map { .string($0) })), ("roles", .array(roles.map { .string($0) })),
                ("created_at", .string(createdAt.rfc3339)),
            ])
        )
    }
}

/// The registry of OAuth clients: secrets shown once and kept as SHA-256 digests (256 random
/// bits, like API keys: a fast digest is enough), lists as JSON arrays.
public final class OAuthClients: Sendable {
    let store: any Store
    /// Client id → client, for a few seconds: the token endpoint reads a client on every call.
    let cache = InvalidatingCache<String, (OAuthClient?, Int64)>(capacity: 10_000)
    let cacheMillis: Int64 = 5_000

    public init(store: any Store) { self.store = store }

    /// Validates an admin's registration (`POST /v1/admin/oauth/clients`) and stores it; the
    /// answer carries `client_secret` once, for a confidential client.
    public func register(_ body: JSONValue, declaredRoles: Set<String>, also: (String) -> [SQLStatement] = { _ in [] }) async throws -> JSONValue {
        guard case .object(let o) = body else { throw BasaltError.badRequest("The body must be a JSON object") }
        var errors: [FieldError] = []
        for (k, _) in o where !["name", "redirect_uris", "confidential", "grants", "scopes", "roles"].contains(k) {
            errors.append(FieldError(field: FieldError.pointer(k), code: .unknownField, message: "unknown member \(k)"))
        }
        let name = o["name"]?.stringValue ?? ""
        if name.isEmpty || name.count > 200 {
            errors.append(FieldError(field: "/name", code: .required, message: "name is required (at most 200 characters)"))
        }
        let confidential: Bool
        if let c = o["confidential"] {
            confidential = c.boolValue ?? true
            if c.boolValue == nil { errors.append(FieldError(field: "/confidential", code: .type, message: "confidential must be true or false")) }
        } else {
            confidential = true
        }
        let redirects = Self.strings(o["redirect_uris"], "/redirect_uris", max: 20, &errors)
        for (i, uri) in redirects.enumerated() {
            if let why = Self.redirectProblem(uri) { errors.append(FieldError(field: "/redirect_uris/\(i)", code: .format, message: why)) }
        }
        var grants = Set<OAuthClient.Grant>()
        let grantNames = o["grants"] == nil ? ["authorization_code"] : Self.strings(o["grants"], "/grants", max: 3, &errors)
        for (i, g) in grantNames.enumerated() {
            if let grant = OAuthClient.Grant(rawValue: g) {
                grants.insert(grant)
            } else {
                errors.append(
                    FieldError(field: "/grants/\(i)", code: .enum, message: "grants are authorization_code, refresh_token, client_credentials")
                )
            }
        }
        if grants.contains(.clientCredentials) && !confidential {
            errors.append(FieldError(field: "/grants", code: .invalid, message: "a public client cannot use client_credentials: it has no secret"))
        }
        if grants.contains(.authorizationCode) && redirects.isEmpty {
            errors.append(
                FieldError(field: "/redirect_uris", code: .required, message: "the authorization_code grant needs at least one redirect URI")
            )
        }
        if grants.contains(.refreshToken) && !grants.contains(.authorizationCode) {
            errors.append(FieldError(field: "/grants", code: .invalid, message: "refresh_token comes with authorization_code"))
        }
        let scopes = Self.strings(o["scopes"], "/scopes", max: 200, &errors)
        for (i, s) in scopes.enumerated() where !OAuthScopes.isValid(s) {
            errors.append(
                FieldError(
                    field: "/scopes/\(i)",
                    code: .enum,
                    message: "scopes are openid, profile, email, offline_access and {collection}:read|write"
                )
            )
        }
        let roles = Self.strings(o["roles"], "/roles", max: 100, &errors)
        for (i, r) in roles.enumerated() where !declaredRoles.contains(r) {
            errors.append(FieldError(field: "/roles/\(i)", code: .enum, message: "\(r) is not a role of the schema"))
        }
        if !errors.isEmpty { throw BasaltError.validation(errors) }

        let now = Timestamp.now()
        let secret = confidential ? "bcs_" + Digest.randomToken(bytes: 32) : nil
        let client = OAuthClient(
            id: RecordID.make(at: now),
            name: name,
            secretHash: secret.map(Digest.sha256Hex),
            redirectURIs: redirects,
            grants: grants,
            scopes: scopes,
            roles: roles,
            createdAt: now
        )
        let list: ([String]) -> String = { JSONValue.array($0.map { .string($0) }).serialized() }
        let grantList = OAuthClient.Grant.allCases.filter { grants.contains($0) }.map(\.rawValue)
        _ = try await store.write(
            [
                store.statement(
                    """
                    INSERT INTO "_basalt_oauth_clients" ("id", "name", "secret_hash", "redirect_uris", "grants", "scopes", "roles", "created_at")
                    VALUES (\(client.id), \(name), \(client.secretHash), \(list(redirects)), \(list(grantList)), \(list(scopes)), \(list(roles)),
                            \(now.millisecondsSinceEpoch))
                    """
                )
            ] + also(client.id)
        )
        guard case .object(var answer) = client.json else { return client.json }
        if let secret { answer.append("client_secret", .string(secret)) }
        return .object(answer)
    }

    static func strings(_ v: JSONValue?, _ pointer: String, max: Int, _ errors: inout [FieldError]) -> [String] {
        guard let v else { return [] }
        guard let list = v.arrayValue, list.count <= max, list.allSatisfy({ $0.stringValue != nil }) else {
            errors.append(FieldError(field: pointer, code: .type, message: "a list of at most \(max) strings"))
            return []
        }
        var seen = Set<String>()
        return list.compactMap(\.stringValue).filter { seen.insert($0).inserted }
    }

    /// Why `uri` cannot be a redirect URI, or nil: absolute, no fragment (RFC 6749 §3.1.2),
    /// HTTPS — or HTTP on a loopback host, or a private-use scheme for native apps (RFC 8252).
    static func redirectProblem(_ uri: String) -> String? {
        guard uri.count <= 2000, let c = URLComponents(string: uri), let scheme = c.scheme?.lowercased() else {
            return "a redirect URI must be an absolute URI"
        }
        if c.fragment != nil { return "a redirect URI may not have a fragment" }
        switch scheme {
        case "https": return (c.host ?? "").isEmpty ? "an https redirect URI needs a host" : nil
        case "http":
            let host = (c.host ?? "").lowercased()
            return ["127.0.0.1", "::1", "[::1]", "localhost"].contains(host) ? nil : "http redirect URIs are for loopback hosts only; use https"
        default:
            // A native app's private-use scheme (reverse domain name, RFC 8252 §7.1).
            return scheme.contains(".") ? nil : "a redirect URI must be https, http on loopback, or a reverse-domain private-use scheme"
        }
    }

    struct ClientRow: StoredRow {
        static let columns: [SQLColumnType] = [.text, .text, .text, .text, .text, .text, .text, .int]
        var client: OAuthClient
        init(_ r: inout RowReader) {
            let id = r.text() ?? ""
            let name = r.text() ?? ""
            let secret = r.text()
            let list: (String?) -> [String] = { ((try? JSONValue.parse($0 ?? "[]"))?.arrayValue ?? []).compactMap(\.stringValue) }
            let redirects = list(r.text())
            let grants = Set(list(r.text()).compactMap(OAuthClient.Grant.init(rawValue:)))
            let scopes = list(r.text())
            let roles = list(r.text())
            client = OAuthClient(
                id: id,
                name: name,
                secretHash: secret,
                redirectURIs: redirects,
                grants: grants,
                scopes: scopes,
                roles: roles,
                createdAt: Timestamp(millisecondsSinceEpoch: r.int() ?? 0)
            )
        }
    }

    static let columns = #""id", "name", "secret_hash", "redirect_uris", "grants", "scopes", "roles", "created_at""#

    public func list() async throws -> [OAuthClient] {
        try await store.fetch("SELECT \(raw: Self.columns) FROM \"_basalt_oauth_clients\" ORDER BY \"created_at\" DESC", as: ClientRow.self)
            .map(\.client)
    }

    /// The client with this id, or nil (a few seconds' cache; a deletion here drops it at once).
    public func client(_ id: String) async throws -> OAuthClient? {
        guard RecordID.normalize(id) == id else { return nil }
        let now = Timestamp.now().millisecondsSinceEpoch
        if let hit = cache.value(id), now - hit.1 < cacheMillis { return hit.0 }
        let before = cache.epoch()
        let c = try await store.fetchOne("SELECT \(raw: Self.columns) FROM \"_basalt_oauth_clients\" WHERE \"id\" = \(id)", as: ClientRow.self)?
            .client
        cache.store(id, (c, now), readAt: before)
        return c
    }

    /// Deletes a client and ends every session it holds: its own tokens and the users' grants.
    /// Returns the subjects (users, and the client itself) whose sessions ended, for the caller
    /// to drop from the user directory: their tokens end at once (`OAuthServer.deleteClient`).
    @discardableResult
    public func delete(_ id: String, also: [SQLStatement] = []) async throws -> [String] {
        let t = Timestamp.now().millisecondsSinceEpoch
        let written: [[SQLRow]]
        do {
            written = try await store.write(
                [
                    store.statement("DELETE FROM \"_basalt_oauth_clients\" WHERE \"id\" = \(id)", expect: .one),
                    store.statement(
                        """
                        UPDATE "_basalt_sessions" SET "revoked_at" = \(t)
                        WHERE "revoked_at" IS NULL AND "id" IN (SELECT "session_id" FROM "_basalt_oauth_sessions" WHERE "client_id" = \(id))
                        RETURNING "user_id"
                        """,
                        returning: [.text]
                    ),
                ] + also
            )
        } catch StoreError.expectationFailed {
            throw BasaltError.notFound("There is no OAuth client with this id")
        }
        cache.invalidate(id)
        return Array(Set((written.count > 1 ? written[1] : []).compactMap { $0.first?.text }))
    }
}
