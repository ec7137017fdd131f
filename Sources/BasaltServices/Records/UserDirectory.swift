public import BasaltCore
import BasaltStorage
import Synchronization

/// Signed-in users' records by id, read on every authenticated request: each is kept 2 s and
/// dropped at once when this process changes the user, so disabling a user or changing roles
/// takes effect at once here and within 2 s on other replicas.
public final class UserDirectory: Sendable {
    let store: any Store
    let schemas: SchemaService
    let cache = Mutex<[String: (user: JSONObject, at: Int64)]>([:])
    static let cacheMillis: Int64 = 2_000
    static let capacity = 50_000

    init(store: any Store, schemas: SchemaService) {
        self.store = store
        self.schemas = schemas
    }

    /// The current record of user `id` (nil when there is none); `fresh` skips the cache.
    public func current(_ id: String, fresh: Bool = false) async throws -> JSONObject? {
        guard let nid = RecordID.normalize(id) else { return nil }
        let now = Timestamp.now().millisecondsSinceEpoch
        if !fresh, let hit = cache.withLock({ $0[nid] }), now - hit.at < Self.cacheMillis { return hit.user }
        guard let table = schemas.current.tables[BuiltinCollections.usersName],
            let row = try await store.fetchOne(table.selectByID(nid), types: table.types)
        else {
            forget(nid)
            return nil
        }
        let user = RecordService.render(row, table)
        cache.withLock {
            if $0.count > Self.capacity { $0 = [:] }
            $0[nid] = (user, now)
        }
        return user
    }

    public func forget(_ id: String) {
        _ = cache.withLock { $0.removeValue(forKey: id) }
    }
}
