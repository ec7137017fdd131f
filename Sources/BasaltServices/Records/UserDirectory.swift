public import BasaltCore
import BasaltStorage
import Synchronization

/// Signed-in users' records by id, read on every authenticated request: each is kept 2 s and
/// dropped at once when this process changes the user, so disabling a user or changing roles
/// takes effect at once here and within 2 s on other replicas.
public final class UserDirectory: Sendable {
    let store: any Store
    let schemas: SchemaService
    struct Entry {
        var user: JSONObject
        var at: Int64
        /// Sessions asked about, by id: until when each is live (0: revoked or unknown), and
        /// when that was read.
        var sessions: [String: (liveUntil: Int64, at: Int64)] = [:]
    }
    let cache = Mutex<[String: Entry]>([:])
    /// Counts `forget`s: a value read before one must not be cached after it (it may be the state
    /// the change just replaced), so a read stores its result only if no forget happened meanwhile.
    let epoch = Mutex<UInt64>(0)
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
        let before = epoch.withLock { $0 }
        guard let table = schemas.current.tables[BuiltinCollections.usersName],
            let row = try await store.fetchOne(table.selectByID(nid), types: table.types)
        else {
            forget(nid)
            return nil
        }
        let user = RecordService.render(row, table)
        cache.withLock {
            guard epoch.withLock({ $0 }) == before else { return }
            if $0.count > Self.capacity { $0 = [:] }
            $0[nid] = Entry(user: user, at: now)
        }
        return user
    }

    struct SessionRow: StoredRow {
        static let columns: [SQLColumnType] = [.int, .int]
        var revokedAt: Int64?
        var expiresAt: Int64
        init(_ r: inout RowReader) {
            revokedAt = r.int()
            expiresAt = r.int() ?? 0
        }
    }

    /// Whether session `sid` of user `userID` is live (not revoked, not expired): read with the
    /// user's record, kept as long, and dropped with it when this process ends the session.
    public func sessionIsLive(_ sid: String, of userID: String, now: Timestamp) async throws -> Bool {
        guard let nid = RecordID.normalize(userID) else { return false }
        let t = now.millisecondsSinceEpoch
        if let hit = cache.withLock({ $0[nid]?.sessions[sid] }), t - hit.at < Self.cacheMillis { return hit.liveUntil > t }
        let before = epoch.withLock { $0 }
        let row = try await store.fetchOne(
            """
            SELECT "revoked_at", "expires_at" FROM "_basalt_sessions" WHERE "id" = \(sid) AND "user_id" = \(nid)
            """,
            as: SessionRow.self
        )
        let liveUntil = row.map { $0.revokedAt == nil ? $0.expiresAt : 0 } ?? 0
        cache.withLock { c in
            guard c[nid] != nil, epoch.withLock({ $0 }) == before else { return }
            if c[nid]!.sessions.count > 100 { c[nid]!.sessions = [:] }
            c[nid]!.sessions[sid] = (liveUntil, t)
        }
        return liveUntil > t
    }

    public func forget(_ id: String) {
        cache.withLock {
            epoch.withLock { $0 &+= 1 }
            $0.removeValue(forKey: id)
        }
    }
}
