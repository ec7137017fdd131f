public import BasaltCore
import BasaltStorage
import Synchronization

/// What a realtime subscriber asks for (API.md §10).
public struct RealtimeQuery: Sendable {
    /// Collections named (nil: every collection the caller may list, judged per event).
    public var collections: [String]?
    /// A filter on the one named collection.
    public var filter: String?
    /// Resume after this sequence (`Last-Event-ID`, `after`); nil: from now on.
    public var after: Int64?

    public init(collections: [String]? = nil, filter: String? = nil, after: Int64? = nil) {
        self.collections = collections
        self.filter = filter
        self.after = after
    }
}

/// One event as a subscriber receives it.
public struct RealtimeDelivery: Sendable {
    public var sequence: Int64
    public var type: String
    public var event: JSONObject
}

/// Realtime subscriptions: who may subscribe to what, and which events each one may see.
/// Every event is judged with the subscriber's own `view` grants on the record as the event
/// carries it (after the change; before it for a delete), by the same rule compiler as the
/// records API, plus the subscriber's `filter`.
public final class RealtimeService: Sendable {
    public let hub: EventHub
    let records: RecordService
    /// Open subscriptions per caller (`Principal.callerKey`).
    let open = Mutex<[String: Int]>([:])
    public let maxPerCaller: Int
    /// How far (in events) a subscriber may fall behind before it is cut off.
    public let maxLag: Int64

    public init(hub: EventHub, records: RecordService, maxPerCaller: Int = 16, maxLag: Int64 = 100_000) {
        self.hub = hub
        self.records = records
        self.maxPerCaller = maxPerCaller
        self.maxLag = maxLag
    }

    /// Checks the query against the schema and the caller's grants (404 unknown collection,
    /// 401/403 one it may not list, 400 a filter without exactly one collection or a bad filter,
    /// 410 a resume point older than the retained events) and takes one of the caller's slots:
    /// `release` it when the stream ends.
    public func subscribe(_ q: RealtimeQuery, principal p: Principal) async throws -> RealtimeSubscription {
        let scope = records.scope(p)
        var names: Set<String>?
        if let cs = q.collections {
            var set = Set<String>()
            for c in cs {
                _ = try await records.requireCollection(c)
                _ = try records.scope(p).rows(.list, on: c)
                set.insert(c)
            }
            names = set
        }
        var filter: FilterExpr?
        if let f = q.filter, !f.isEmpty {
            guard let only = names, only.count == 1, let c = only.first else {
                throw BasaltError.badRequest("filter needs exactly one collection in collections")
            }
            do {
                filter = try FilterChecker.check(f, collection: try scope.schema.requireTable(c).collection, schema: scope.schema.schema)
            } catch let e as FilterError {
                throw e.basaltError
            }
        }
        // The hub reads only while someone subscribes, so its head may be behind the outbox's.
        var cursor = max(hub.head.value, try await hub.log.bounds().newest)
        if let after = q.after {
            let bounds = try await hub.log.bounds()
            if let oldest = bounds.oldest, after < oldest - 1 {
                throw BasaltError(
                    .gone,
                    "Events after \(StoredEvent.sequenceText(after)) are no longer retained (the oldest is \(StoredEvent.sequenceText(oldest))); resubscribe without a resume point and reload the data"
                )
            }
            cursor = after
        }
        let key = p.callerKey
        let admitted = open.withLock { m -> Bool in
            guard m[key, default: 0] < maxPerCaller else { return false }
            m[key, default: 0] += 1
            return true
        }
        guard admitted else {
            throw BasaltError(.rateLimited, "At most \(maxPerCaller) realtime subscriptions per caller are open at once", retryAfter: 5)
        }
        hub.addReader()
        return RealtimeSubscription(service: self, principal: p, collections: names, filter: filter, cursor: cursor)
    }

    func release(_ key: String) {
        hub.removeReader()
        open.withLock { m in
            m[key, default: 1] -= 1
            if m[key] == 0 { m[key] = nil }
        }
    }
}

/// One subscriber's position and judgement. Used by one task at a time.
public struct RealtimeSubscription: Sendable {
    let service: RealtimeService
    /// Who is subscribed; replace it when the credential is re-checked (roles may have changed).
    public var principal: Principal
    let callerKey: String
    let collections: Set<String>?
    let filter: FilterExpr?
    /// The last sequence this subscriber has been given (or skipped).
    public private(set) var cursor: Int64

    init(service: RealtimeService, principal: Principal, collections: Set<String>?, filter: FilterExpr?, cursor: Int64) {
        self.service = service
        self.principal = principal
        self.callerKey = principal.callerKey
        self.collections = collections
        self.filter = filter
        self.cursor = cursor
    }

    /// Gives the slot back.
    public func release() { service.release(callerKey) }

    public enum End: Error, Sendable {
        /// The server is shutting down.
        case shutdown
        /// The subscriber fell too far behind.
        case tooSlow
    }

    /// The next events this subscriber may see, waiting at most `timeout` ([] then: time for a
    /// ping). Throws `End` when the stream must end.
    public mutating func next(timeout: Duration) async throws -> [RealtimeDelivery] {
        let hub = service.hub
        let deadline = ContinuousClock.now + timeout
        while true {
            if hub.head.value - cursor > service.maxLag { throw End.tooSlow }
            let events = try await hub.events(after: cursor, limit: 256)
            if events.isEmpty {
                if hub.head.isClosed { throw End.shutdown }
                let left = ContinuousClock.now.duration(to: deadline)
                guard left > .zero else { return [] }
                await hub.head.wait(beyond: cursor, timeout: left)
                continue
            }
            var out: [RealtimeDelivery] = []
            for e in events {
                if let r = try await judge(e) { out.append(RealtimeDelivery(sequence: e.sequence, type: e.type, event: e.cloudEvent(record: r))) }
            }
            cursor = events.last!.sequence
            if !out.isEmpty || ContinuousClock.now >= deadline { return out }
        }
    }

    /// The event's record if this subscriber may see it.
    func judge(_ e: StoredEvent) async throws -> JSONObject? {
        if let collections, !collections.contains(e.collection) { return nil }
        let scope = service.records.scope(principal)
        guard let table = scope.schema.tables[e.collection] else { return nil }
        if collections == nil, case .denied = scope.access(.list, on: e.collection) { return nil }
        var conditions: [SQLCondition] = []
        let record = e.record(in: table)
        var values: [String: SQLValue] = [:]
        for (name, type) in zip(table.columns, StoredEvent.fieldTypes(table)) {
            values[name] = SQLValue(json: record[name] ?? .null, type: type)
        }
        switch scope.access(.view, on: e.collection) {
        case .all: break
        case .denied: return nil
        case .rows(let ps): conditions.append(scope.condition(ps, compiler: scope.writeRule(record: .values(values), new: values)))
        }
        if let filter {
            var c = scope.callerFilter
            c.record = .values(values)
            conditions.append(SQLCondition(filter, c))
        }
        if conditions.isEmpty { return record }
        let rows = try await service.records.store.fetch(table.check(all: conditions), types: [.int])
        return rows.isEmpty ? nil : record
    }
}
