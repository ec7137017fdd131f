public import BasaltCore
import BasaltStorage

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
    /// A read that a `forget` overtakes is not kept: it may be the state the change replaced.
    let cache = InvalidatingCache<String, Entry>(capacity: 50_000)
    static let cacheMillis: Int64 = 2_000

    init(store: any Store, schemas: SchemaService) {
        self.store = store
        self.schemas = schemas
    }

    /// The current record of user `id` (nil when there is none); `fresh` skips the cache.
    public func current(_ id: String, fresh: Bool = false) async throws -> JSONObject? {
        try await currentRead(id, fresh: fresh)?.user
    }

    /// `current`, with when the record was read (milliseconds): what is made from it may be
    /// kept as long as the record itself, `cacheMillis` from then.
    func currentRead(_ id: String, fresh: Bool = false, now: Timestamp = .now()) async throws -> (user: JSONObject, at: Int64)? {
        guard let nid = RecordID.normalize(id) else { return nil }
        let now = now.millisecondsSinceEpoch
        if !fresh, let hit = cache.value(nid), now - hit.at < Self.cacheMillis { return (hit.user, hit.at) }
        let before = cache.epoch()
        guard let table = schemas.current.tables[BuiltinCollections.usersName],
            let row = try await store.fetchOne(table.selectByID(nid), types: table.types)
        else {
            forget(nid)
            return nil
        }
        let user = RecordService.render(row, table)
        cache.store(nid, Entry(user: user, at: now), readAt: before)
        return (user, now)
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
        try await sessionRead(sid, of: userID, now: now).liveUntil > now.millisecondsSinceEpoch
    }

    /// Until when session `sid` of user `userID` is live (0: revoked or unknown), and when that
    /// was read (milliseconds).
    func sessionRead(_ sid: String, of userID: String, now: Timestamp) async throws -> (liveUntil: Int64, at: Int64) {
        guard let nid = RecordID.normalize(userID) else { return (0, now.millisecondsSinceEpoch) }
        let t = now.millisecondsSinceEpoch
        if let hit = cache.value(nid)?.sessions[sid], t - hit.at < Self.cacheMillis { return hit }
        let before = cache.epoch()
        let row = try await store.fetchOne(
            """
            SELECT "revoked_at", "expires_at" FROM "_basalt_sessions" WHERE "id" = \(sid) AND "user_id" = \(nid)
            """,
            as: SessionRow.self
        )
        let liveUntil = row.map { $0.revokedAt == nil ? $0.expiresAt : 0 } ?? 0
        cache.modify(nid, readAt: before) { e in
            if e.sessions.count > 100 { e.sessions = [:] }
            e.sessions[sid] = (liveUntil, t)
        }
        return (liveUntil, t)
    }

    /// Changes with every `forget`: a value made from this directory's reads is current while
    /// the epoch taken before those reads still is.
    func epoch() -> UInt64 { cache.epoch() }

    public func forget(_ id: String) { cache.invalidate(id) }
}
