import Basalt
import BasaltCore
import BasaltServices
import BasaltStorage
import BasaltTesting
import Foundation
import Testing

/// SQLite keeps planner statistics per connection, loaded with the schema; the statistics
/// Basalt refreshes after a bulk load must reach the connections that serve reads.
@Suite("Planner statistics reach every reader")
struct StatisticsTests {
    static let schema = """
        collections:
          posts:
            fields:
              title:  {type: text}
              status: {type: select, values: [draft, published]}
              views:  {type: integer}
            indexes:
              - [status]
              - [views]
            access:
              list: [{who: public}]
        """

    @Test func listsArePlannedWithTheStatisticsOfABulkLoad() async throws {
        try await TestBackend.sqlite.withRuntime(schema: Self.schema) { rt, _ in
            let query = ListQuery(filter: "status = 'published' && views > 500", sort: "-views")
            // Readers open while the table is empty, loading its (empty) statistics.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 { group.addTask { _ = try await rt.records.list("posts", query: query, principal: .system) } }
                try await group.waitForAll()
            }
            // A bulk load through the write path (like seeding): the table's statistics fall due.
            for chunk in 0..<40 {
                let operations = (0..<100).map { i -> String in
                    let n = chunk * 100 + i
                    return
                        #"{"method":"POST","path":"/v1/posts","body":{"title":"p\#(n)","status":"\#(n % 2 == 0 ? "published" : "draft")","views":\#((n * 37) % 1000)}}"#
                }
                _ = try await rt.records.batch(try JSONValue.parse(#"{"operations":[\#(operations.joined(separator: ","))]}"#), principal: .system)
            }
            try await rt.store.housekeep()
            // Every reader plans the list through the views index, stopping after a page; with
            // the statistics of the empty table it took the status index and sorted every match.
            let sample = try #require(rt.records.observations.summaries().first { $0.shape.collection == "posts" }).sample
            let (explain, types, detail) = rt.store.dialect.explain(sample)
            let plans = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<8 { group.addTask { try await rt.store.fetch(explain, types: types).compactMap { $0[detail].text } } }
                return try await group.reduce(into: [[String]]()) { $0.append($1) }
            }
            for lines in plans { #expect(!rt.store.dialect.planSorts(lines), "\(lines)") }
        }
    }
}
