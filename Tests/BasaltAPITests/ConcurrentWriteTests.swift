import Basalt
import BasaltCore
import BasaltStorage
import BasaltTesting
import Foundation
import HTTPTypes
import Testing

/// Writes that run at the same time each get their own outcome (SQLite commits them in groups,
/// one savepoint each; PostgreSQL in transactions of their own): a failing write undoes only
/// itself, fails only its caller, and leaves no event; the others commit with theirs.
@Suite("Concurrent writes: one outcome each")
struct ConcurrentWriteTests {
    enum Outcome: Equatable {
        case committed, unique, foreignKey, expectation
        case other(String)
    }

    @Test(arguments: TestBackend.all)
    func failuresStayWithTheirOwnWrite(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let store = api.runtime.store
            let now = Timestamp.now()
            func author(_ name: String, _ email: String) -> SQLStatement {
                store.statement(
                    """
                    INSERT INTO "authors" ("id", "created_at", "updated_at", "version", "name", "email")
                    VALUES (\(SQLValue.uuid(RecordID.make())), \(SQLValue.timestamp(now)), \(SQLValue.timestamp(now)), 1, \(name), \(email))
                    """
                )
            }
            let missing = SQLValue.uuid(RecordID.make())
            // Kinds of write, by k % 4: a fresh author (commits); a post whose author does not
            // exist (a deferred foreign key); an author with an email taken by another write of
            // the same kind (one commits, the rest are unique violations); an author followed by
            // an update that must change one row and changes none (the author is undone too).
            func write(_ k: Int) -> [SQLStatement] {
                switch k % 4 {
                case 0: return [author("fresh \(k)", "fresh\(k)@example.com")]
                case 1:
                    return [
                        store.statement(
                            """
                            INSERT INTO "posts" ("id", "created_at", "updated_at", "version", "title", "author")
                            VALUES (\(SQLValue.uuid(RecordID.make())), \(SQLValue.timestamp(now)), \(SQLValue.timestamp(now)), 1, 'orphan', \(missing))
                            """
                        )
                    ]
                case 2: return [author("dup \(k)", "dup@example.com")]
                default:
                    return [
                        author("undone \(k)", "undone\(k)@example.com"),
                        store.statement(#"UPDATE "authors" SET "name" = 'x' WHERE "id" = \#(missing)"#, expect: .one),
                    ]
                }
            }
            let outcomes = await withTaskGroup(of: (Int, Outcome).self) { group in
                for k in 0..<120 {
                    group.addTask {
                        do {
                            try await store.write(write(k))
                            return (k, .committed)
                        } catch StoreError.uniqueViolation {
                            return (k, .unique)
                        } catch StoreError.foreignKeyViolation {
                            return (k, .foreignKey)
                        } catch StoreError.expectationFailed {
                            return (k, .expectation)
                        } catch {
                            return (k, .other(String(describing: error)))
                        }
                    }
                }
                var all: [Int: Outcome] = [:]
                for await (k, o) in group { all[k] = o }
                return all
            }
            for (k, o) in outcomes.sorted(by: { $0.key < $1.key }) {
                switch k % 4 {
                case 0: #expect(o == .committed, "write \(k)")
                case 1: #expect(o == .foreignKey, "write \(k)")
                case 2: #expect(o == .committed || o == .unique, "write \(k): \(o)")
                default: #expect(o == .expectation, "write \(k)")
                }
            }
            #expect(outcomes.filter { $0.key % 4 == 2 && $0.value == .committed }.count == 1)

            func count(_ sql: String) async throws -> Int64 {
                try await store.fetch(SQLQuery(sql: sql), types: [.int]).first?.first?.int ?? -1
            }
            let authors = try await count(#"SELECT count(*) FROM "authors""#)
            #expect(authors == 31)
            #expect(try await count(#"SELECT count(*) FROM "authors" WHERE "name" LIKE 'undone%'"#) == 0)
            #expect(try await count(#"SELECT count(*) FROM "posts""#) == 0)
            #expect(try await count(#"SELECT count(*) FROM "_basalt_events" WHERE "collection" = 'authors'"#) == 31)
            #expect(try await count(#"SELECT count(*) FROM "_basalt_events" WHERE "collection" = 'posts'"#) == 0)
            // The API still answers writes after all that.
            #expect(try await api.post("/v1/authors", #"{"name":"After"}"#).status == .created)
        }
    }

    /// Two deletes of one record at once, under an owner rule: one deletes (204), the other finds
    /// nothing (404). Its rule guard ran against a record already gone in the same transaction
    /// group or a moment later; that is a race to plan again, never a 403.
    @Test(arguments: TestBackend.all)
    func twoDeletesAtOnceAre204And404(_ backend: TestBackend) async throws {
        let schema = """
            collections:
              notes:
                fields:
                  title: {type: text, required: true}
                  owner: {type: relation, collection: users, on_delete: cascade}
                access:
                  create: [{who: authenticated, where: "@new.owner = @auth.id"}]
                  view:   [{who: authenticated, where: "owner = @auth.id"}]
                  delete: [{who: authenticated, where: "owner = @auth.id"}]
            """
        try await backend.withApp(schema: schema) { api in
            let ada = try await api.signUp("ada@example.com")
            let port = try #require(api.port)
            for n in 0..<50 {
                let created = try await api.post("/v1/notes", #"{"title":"n\#(n)","owner":"\#(ada.id)"}"#, auth: ada.auth)
                let id = try #require(created["id"]?.stringValue)
                // Two connections of their own, so the requests really run at the same time.
                let request = Array(
                    "DELETE /v1/notes/\(id) HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(ada.accessToken)\r\nConnection: close\r\n\r\n".utf8
                )
                async let first = RawHTTP.exchange(port: port, request)
                async let second = RawHTTP.exchange(port: port, request)
                let statuses = [try await first, try await second].map { $0.split(separator: " ").dropFirst().first.map(String.init) ?? "" }.sorted()
                #expect(statuses == ["204", "404"], "round \(n): \(statuses)")
            }
        }
    }
}
