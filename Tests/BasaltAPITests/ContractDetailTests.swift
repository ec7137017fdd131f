import Basalt
import BasaltCore
import BasaltHTTP
import BasaltTesting
import HTTPTypes
import Testing

@Suite("Contract details: names, hops, expand visibility, cursor scope")
struct ContractDetailTests {
    /// SQL keywords are fine as names: identifiers are always quoted.
    @Test(arguments: TestBackend.all)
    func sqlKeywordsAsNames(_ backend: TestBackend) async throws {
        let schema = """
            collections:
              order:
                fields:
                  group: {type: text}
                  select: {type: integer}
            """
        try await backend.withApp(schema: schema) { api in
            let r = try await api.post("/v1/order", #"{"group":"a","select":1}"#)
            #expect(r.status == .created, "\(r.text)")
            let l = try await api.get("/v1/order?filter=\(q("group = 'a' && select >= 1"))&sort=-select,group")
            #expect(l["items"]?.arrayValue?.count == 1)
        }
    }

    static let hops = """
        collections:
          teams:
            fields:
              name: {type: text}
              secret: {type: boolean}
            access:
              list: [{who: public, where: "secret = false"}]
              view: [{who: public, where: "secret = false"}]
          members:
            fields:
              name: {type: text}
              team: {type: relation, collection: teams, on_delete: set_null}
            access:
              list: [{who: public}]
              view: [{who: public}]
        """

    @Test(arguments: TestBackend.all)
    func filterThroughARelationAndExpandVisibility(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Self.hops) { api in
            let open = try await api.create("teams", #"{"name":"Open","secret":false}"#)["id"]!.stringValue!
            let hidden = try await api.create("teams", #"{"name":"Hidden","secret":true}"#)["id"]!.stringValue!
            _ = try await api.create("members", #"{"name":"ann","team":"\#(open)"}"#)
            _ = try await api.create("members", #"{"name":"bob","team":"\#(hidden)"}"#)
            _ = try await api.create("members", #"{"name":"cy"}"#)
            let viaHop = try await api.get("/v1/members?filter=\(q("team.name = 'Open'"))")
            #expect(viaHop["items"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["ann"])
            let notOpen = try await api.get("/v1/members?filter=\(q("!(team.name = 'Open')"))&sort=name")
            #expect(notOpen["items"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["bob", "cy"])
            // Anonymous callers see members but not the hidden team inside expand.
            let anon = try await api.get("/v1/members?expand=team&sort=name", auth: .none)
            let items = try #require(anon["items"]?.arrayValue)
            #expect(items.count == 3)
            #expect(items[0]["expand"]?["team"]?["name"] == "Open")
            #expect(items[1]["team"] == .string(hidden))  // the id stays
            #expect(items[1]["expand"]?["team"] == nil)  // the record does not leak
            // Admins see both.
            let admin = try await api.get("/v1/members?expand=team&sort=name")
            #expect(admin["items"]?.arrayValue?[1]["expand"]?["team"]?["name"] == "Hidden")
        }
    }

    @Test(arguments: TestBackend.all)
    func cursorBelongsToItsCaller(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Self.hops) { api in
            for i in 0..<3 { _ = try await api.create("members", #"{"name":"m\#(i)"}"#) }
            let page = try await api.get("/v1/members?limit=1", auth: .none)
            let cursor = try #require(page["next_cursor"]?.stringValue)
            #expect(try await api.get("/v1/members?limit=1&cursor=\(q(cursor))", auth: .none).status == .ok)
            let other = try await api.get("/v1/members?limit=1&cursor=\(q(cursor))")
            #expect(other.status == .badRequest)
        }
    }

    @Test(arguments: TestBackend.all)
    func jsonFieldsUpTo1MiB(_ backend: TestBackend) async throws {
        try await backend.withApp(
            schema: "collections:\n  documents:\n    fields:\n      data: {type: json}\n",
            configure: { $0.http.bodyLimitBytes = 4 << 20 }
        ) { api in
            let ok = try await api.post("/v1/documents", #"{"data":{"a":[1,2,{"b":null}],"s":"x"}}"#)
            #expect(ok.status == .created)
            #expect(ok["data"] == ["a": [1, 2, ["b": nil]], "s": "x"])
            // U+0000 cannot be stored by PostgreSQL: refused alike on both backends.
            let nul = try await api.post("/v1/documents", #"{"data":{"k":"a\u0000b"}}"#)
            #expect(nul.status == .unprocessableContent && nul.fieldErrors.first?.1 == "format")
            let big = String(repeating: "x", count: 600_000)
            let tooBig = try await api.send(.post, "/v1/documents", json: #"{"data":["\#(big)","\#(big)"]}"#)
            #expect(tooBig.status == .unprocessableContent)
            #expect(tooBig.fieldErrors.first?.0 == "/data" && tooBig.fieldErrors.first?.1 == "max")
        }
    }
}
