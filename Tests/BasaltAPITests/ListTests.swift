import BasaltCore
import BasaltTesting
import Foundation
import HTTPTypes
import Testing

func q(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? s }

@Suite("Lists: filter, sort, pagination, fields, expand, total")
struct ListTests {
    static let schema = """
        collections:
          people:
            fields:
              name: {type: text}
              age:  {type: integer}
              born: {type: datetime}
              active: {type: boolean}
              boss: {type: relation, collection: people, on_delete: set_null}
        """

    func seed(_ api: APIClient) async throws {
        for (name, age, active) in [
            ("Ann", "30", "true"), ("bob", "25", "false"), ("Cé%_x", "null", "true"), ("dan", "40", "null"), ("Émile", "25", "true"),
        ] {
            _ = try await api.create(
                "people",
                #"{"name":"\#(name)","age":\#(age),"active":\#(active),"born":"2000-01-0\#(age == "null" ? "1" : "2")T00:00:00Z"}"#
            )
        }
    }

    func names(_ r: APIClient.Reply) -> [String] { (r["items"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue } }

    @Test(arguments: TestBackend.all)
    func filterSemantics(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Self.schema) { api in
            try await seed(api)
            func run(_ f: String) async throws -> Set<String> {
                let r = try await api.get("/v1/people?limit=200&filter=\(q(f))")
                #expect(r.status == .ok, "\(f): \(r.text)")
                return Set(names(r))
            }
            #expect(try await run("age > 26") == ["Ann", "dan"])
            #expect(try await run("age = 25 && active = true") == ["Émile"])
            #expect(try await run("age = 25 || name = 'dan'") == ["bob", "Émile", "dan"])
            // != and = are null-safe opposites
            #expect(try await run("age != 25") == ["Ann", "Cé%_x", "dan"])
            #expect(try await run("age = null") == ["Cé%_x"])
            #expect(try await run("age is not null && active is null") == ["dan"])
            // other comparisons with null are false, and ! negates after that
            #expect(try await run("!(age < 30)") == ["Ann", "Cé%_x", "dan"])
            #expect(try await run("!(active = true)") == ["bob", "dan"])
            // ~ is a literal, case-insensitive substring match
            #expect(try await run("name ~ 'AN'") == ["Ann", "dan"])
            #expect(try await run("name ~ '%_'") == ["Cé%_x"])
            #expect(try await run("name ~ 'cÉ'") == ["Cé%_x"])
            #expect(try await run("name !~ 'an'") == ["bob", "Cé%_x", "Émile"])
            #expect(try await run("age in (25, 40)") == ["bob", "Émile", "dan"])
            #expect(try await run("born > '2000-01-01T12:00:00Z'") == ["Ann", "bob", "dan", "Émile"])
            #expect(try await run("name = 'it''s'") == [])
            #expect(try await run("name > 'a'") == ["bob", "dan", "Émile"])  // code point order
        }
    }

    @Test(arguments: TestBackend.all)
    func filterErrorsAre400WithColumn(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Self.schema) { api in
            let syntax = try await api.get("/v1/people?filter=\(q("age > 1 && (name = 'x'"))")
            #expect(syntax.status == .badRequest && syntax.problem == "bad-request")
            #expect(syntax["column"]?.integerValue != nil)
            #expect(syntax["detail"]?.stringValue?.contains("at column") == true)
            let type = try await api.get("/v1/people?filter=\(q("active = true && age = 'x'"))")
            #expect(type.status == .badRequest)
            #expect(type["column"] == .int(18))
            let unknown = try await api.get("/v1/people?filter=\(q("salary > 1"))")
            #expect(unknown.status == .badRequest && unknown["column"] == .int(1))
            let inNull = try await api.get("/v1/people?filter=\(q("age in (1, null)"))")
            #expect(inNull.status == .badRequest)
            let tooMany = try await api.get("/v1/people?filter=\(q(Array(repeating: "age = 1", count: 101).joined(separator: " || ")))")
            #expect(tooMany.status == .badRequest && tooMany["column"] == nil)
            let injection = try await api.get("/v1/people?filter=\(q("name = 'x'' OR 1=1 --'"))")
            #expect(injection.status == .ok && names(injection).isEmpty)
        }
    }

    @Test(arguments: TestBackend.all)
    func sortIsTotalAndNullsSmallest(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Self.schema) { api in
            try await seed(api)
            let r = try await api.get("/v1/people?sort=age,name")
            #expect(names(r) == ["Cé%_x", "bob", "Émile", "Ann", "dan"])
            let d = try await api.get("/v1/people?sort=-age,-name")
            #expect(names(d) == ["dan", "Ann", "Émile", "bob", "Cé%_x"])
            #expect(try await api.get("/v1/people?sort=nope").status == .badRequest)
            #expect(try await api.get("/v1/people?limit=0").status == .badRequest)
            #expect(try await api.get("/v1/people?limit=201").status == .badRequest)
            #expect(try await api.get("/v1/people?limit=x").status == .badRequest)
        }
    }

    @Test(arguments: TestBackend.all)
    func cursorPagesAreStableUnderConcurrentInserts(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Self.schema) { api in
            var ids = Set<String>()
            for i in 0..<25 { ids.insert(try await api.create("people", #"{"name":"p\#(i)","age":\#(i % 4)}"#)["id"]!.stringValue!) }
            for sort in ["-created_at", "age", "-age,name", "name"] {
                var seen: [String] = []
                var uri = "/v1/people?limit=7&sort=\(sort)"
                var pages = 0
                while true {
                    let r = try await api.get(uri)
                    #expect(r.status == .ok)
                    seen += (r["items"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
                    // a concurrent insert between pages must not disturb the walk
                    _ = try await api.create("people", #"{"name":"late","age":2}"#)
                    pages += 1
                    guard let next = r["next_cursor"]?.stringValue else {
                        #expect(r.header("Link") == nil)
                        break
                    }
                    let link = try #require(r.header("Link"))
                    #expect(link.hasSuffix("rel=\"next\""))
                    #expect(link.contains("cursor="))
                    uri = "/v1/people?limit=\(pages % 2 == 0 ? 7 : 5)&sort=\(sort)&cursor=\(q(next))"
                }
                let original = seen.filter { ids.contains($0) }
                #expect(Set(original) == ids, "sort \(sort)")
                #expect(original.count == ids.count, "duplicates with sort \(sort)")
            }
            let first = try await api.get("/v1/people?limit=2&sort=name")
            let cursor = q(first["next_cursor"]!.stringValue!)
            #expect(try await api.get("/v1/people?limit=2&sort=age&cursor=\(cursor)").status == .badRequest)
            #expect(try await api.get("/v1/people?limit=2&sort=name&cursor=\(cursor)x").status == .badRequest)
            #expect(try await api.get("/v1/people?limit=2&sort=name&filter=\(q("age > 0"))&cursor=\(cursor)").status == .badRequest)
        }
    }

    @Test(arguments: TestBackend.all)
    func fieldsExpandTotalAndListETag(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Self.schema) { api in
            let big = try await api.create("people", #"{"name":"Big"}"#)["id"]!.stringValue!
            let mid = try await api.create("people", #"{"name":"Mid","boss":"\#(big)"}"#)["id"]!.stringValue!
            _ = try await api.create("people", #"{"name":"Low","boss":"\#(mid)"}"#)
            let r = try await api.get("/v1/people?filter=\(q("name = 'Low'"))&expand=boss.boss&fields=name,boss&total=true")
            #expect(r["total"] == .int(1))
            let item = try #require(r["items"]?.arrayValue?.first)
            #expect(Set(item.objectValue!.keys) == ["id", "name", "boss", "expand"])
            #expect(item["boss"] == .string(mid))
            #expect(item["expand"]?["boss"]?["name"] == "Mid")
            #expect(item["expand"]?["boss"]?["expand"]?["boss"]?["name"] == "Big")
            let noTotal = try await api.get("/v1/people")
            #expect(noTotal["total"] == nil)
            #expect(try await api.get("/v1/people?expand=name").status == .badRequest)
            #expect(try await api.get("/v1/people?expand=boss.boss.boss").status == .badRequest)
            #expect(try await api.get("/v1/people?fields=nope").status == .badRequest)
            let etag = try #require(noTotal.header("ETag"))
            #expect(etag.hasPrefix("W/\""))
            #expect(try await api.get("/v1/people", headers: ["If-None-Match": etag]).status == .notModified)
            _ = try await api.create("people", #"{"name":"New"}"#)
            #expect(try await api.get("/v1/people", headers: ["If-None-Match": etag]).status == .ok)
        }
    }
}
