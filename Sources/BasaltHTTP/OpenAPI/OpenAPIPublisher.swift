public import BasaltServices
import Synchronization

/// The OpenAPI document and its HTML rendering, each built once per schema version and caller
/// scope (anonymous, signed in with a set of roles, admin) instead of on every request.
public final class OpenAPIPublisher: Sendable {
    let schemas: SchemaService
    let serverURL: String
    let surface = Mutex<HTTPSurface?>(nil)
    let documents = ScopedCache<[UInt8]>()
    let pages = ScopedCache<String>()

    public init(schemas: SchemaService, serverURL: String) {
        self.schemas = schemas
        self.serverURL = serverURL
    }

    /// The endpoints the document describes (set once the surface is assembled).
    public func install(_ surface: HTTPSurface) {
        self.surface.withLock { $0 = surface }
        documents.clear()
        pages.clear()
    }

    /// What the document depends on of a caller: its kind and effective roles.
    static func scope(_ p: Principal) -> String {
        switch p.kind {
        case .anonymous: "anonymous"
        case .admin, .system: "admin"
        case .subject: "subject:" + p.roles.sorted().joined(separator: ",")
        }
    }

    public func json(for p: Principal) -> [UInt8] {
        let schema = schemas.current
        return documents.value(version: schema.version, scope: Self.scope(p)) {
            OpenAPIGenerator.json(schema: schema, principal: p, serverURL: serverURL, surface: surface.withLock { $0 })
        }
    }

    public func html(for p: Principal) -> String {
        let schema = schemas.current
        return pages.value(version: schema.version, scope: Self.scope(p)) {
            DocsPage.html(document: OpenAPIGenerator.document(schema: schema, principal: p, serverURL: serverURL, surface: surface.withLock { $0 }))
        }
    }
}

/// Values by caller scope for one schema version; a new version (or too many scopes) starts over.
final class ScopedCache<T: Sendable>: Sendable {
    let state = Mutex<(version: Int64, values: [String: T])>((-1, [:]))
    static var capacity: Int { 256 }

    func clear() { state.withLock { $0 = (-1, [:]) } }

    func value(version: Int64, scope: String, build: () -> T) -> T {
        if let hit = state.withLock({ $0.version == version ? $0.values[scope] : nil }) { return hit }
        let value = build()
        state.withLock { s in
            if s.version != version || s.values.count >= Self.capacity { s = (version, [:]) }
            s.values[scope] = value
        }
        return value
    }
}
