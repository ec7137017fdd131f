import Basalt
import BasaltCore
import BasaltServices
import BasaltStorage
import BasaltTesting
import Foundation
import Testing

@testable import BasaltSQLite

/// SQLite reads run on the calling thread while they are quick, and on a reader's queue when
/// they are not (see `DirectReaders`): either way the caller gets the whole answer.
@Suite("SQLite reads on the calling thread")
struct DirectReadTests {
    static let schema = """
        collections:
          posts:
            fields:
              title: {type: text}
            access:
              list: [{who: public}]
              view: [{who: public}]
        """

    /// 100,000 rows from a recursive query: far over the step budget.
    static let long = SQLQuery(sql: "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) SELECT count(*), sum(i) FROM n")

    @Test func aQuickReadRunsHereALongOneOnAReaderAndBothAnswerInFull() async throws {
        try await TestBackend.sqlite.withRuntime(schema: Self.schema) { rt, _ in
            let store = try #require(rt.store as? SQLiteStore)
            #expect(try store.direct.rows(SQLQuery(sql: "SELECT 40 + 2"), [.int]) == [[.int(42)]])
            // Interrupted by the budget: not answered here …
            #expect(try store.direct.rows(Self.long, [.int, .int]) == nil)
            // … but answered in full the async way, and the connection is fine afterwards.
            #expect(try await store.fetch(Self.long, types: [.int, .int]) == [[.int(100_000), .int(5_000_050_000)]])
            #expect(try store.direct.rows(SQLQuery(sql: "SELECT 7"), [.int]) == [[.int(7)]])
            // A statement SQLite rejects is an error, not a silent fallback.
            await #expect(throws: StoreError.self) { try await store.fetch(SQLQuery(sql: "SELECT * FROM no_such_table"), types: []) }
        }
    }

    /// The budget is per run: a cheap statement read again and again (cached, so SQLite's step
    /// count would carry over) is never taken for a long one.
    @Test func theBudgetIsCountedPerRun() async throws {
        try await TestBackend.sqlite.withRuntime(schema: Self.schema) { rt, _ in
            let store = try #require(rt.store as? SQLiteStore)
            let cheap = SQLQuery(sql: "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50) SELECT count(*) FROM n")
            for run in 0..<500 {
                #expect(try store.direct.rows(cheap, [.int]) == [[.int(50)]], "run \(run)")
            }
        }
    }

    /// Every read sees every write acknowledged before it started, whichever path it takes, and
    /// no more connections are opened than the limit, however many callers read at once.
    @Test func readsSeeEveryEarlierCommitUnderConcurrency() async throws {
        try await TestBackend.sqlite.withRuntime(schema: Self.schema) { rt, _ in
            let store = try #require(rt.store as? SQLiteStore)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        for n in 0..<40 {
                            let body = try JSONValue.parse(#"{"title":"w\#(worker)-\#(n)"}"#)
                            let created = try await rt.records.execute(.create(collection: "posts", body: body), principal: .system)
                            guard case .created(_, let id, _) = created else {
                                Issue.record("not created: \(created)")
                                return
                            }
                            let read = try await rt.records.get("posts", id: id, principal: .anonymous("reader"))
                            #expect(read["title"] == .string("w\(worker)-\(n)"))
                            if n % 10 == 0 {
                                #expect(try await store.fetch(Self.long, types: [.int, .int]).first?.first == .int(100_000))
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(store.direct.openCount <= SQLiteStore.readerCount)
            let page = try await rt.records.list("posts", query: ListQuery(limit: "1", total: true), principal: .anonymous("reader"))
            #expect(page.total == 320)
        }
    }
}
