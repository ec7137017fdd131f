import BasaltCore
import BasaltTesting
import HTTPTypes
import Testing

@Suite("Row-level rules between users (API.md §9)")
struct AuthorizationTests {
    @Test(arguments: TestBackend.all)
    func noInsecureDirectObjectReferenceOnAnyVerb(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: IdentityFixtures.schema) { api in
            let ada = try await api.signUp("ada@example.com")
            let bob = try await api.signUp("bob@example.com")
            let mine = try await api.post("/v1/notes", #"{"title":"ada's","owner":"\#(ada.id)"}"#, auth: ada.auth)
            #expect(mine.status == .created && mine["title"] == .string("ada's"))
            let id = try #require(mine["id"]?.stringValue)
            // Bob, on every verb against Ada's note: as if it did not exist.
            #expect(try await api.get("/v1/notes/\(id)", auth: bob.auth).status == .notFound)
            #expect(try await api.send(.head, "/v1/notes/\(id)", auth: bob.auth).status == .notFound)
            #expect(try await api.patch("/v1/notes/\(id)", #"{"title":"mine now"}"#, auth: bob.auth).status == .notFound)
            #expect(try await api.put("/v1/notes/\(id)", #"{"title":"mine now","owner":"\#(bob.id)"}"#, auth: bob.auth).status == .notFound)
            #expect(try await api.delete("/v1/notes/\(id)", auth: bob.auth).status == .notFound)
            let list = try await api.get("/v1/notes?total=true", auth: bob.auth)
            #expect(list["items"] == .array([]) && list["total"] == .int(0))
            let filtered = try await api.get("/v1/notes?filter=title%20~%20'ada'&total=true", auth: bob.auth)
            #expect(filtered.status == .ok)
            #expect(filtered["total"] == .int(0))
            // Creating in Ada's name, or moving one's own note to her.
            #expect(try await api.post("/v1/notes", #"{"title":"x","owner":"\#(ada.id)"}"#, auth: bob.auth).status == .forbidden)
            // Relations to a record the caller may not view are the 422 of a missing one (API.md §2):
            // no existence oracle, and Ada's note does not become undeletable through Bob's reference.
            let pointing = try await api.post("/v1/notes", #"{"title":"bob's","owner":"\#(bob.id)","parent":"\#(id)"}"#, auth: bob.auth)
            #expect(pointing.status == .unprocessableContent && pointing.fieldErrors.map(\.0) == ["/parent"])
            #expect(pointing.fieldErrors.map(\.1) == ["not_found"])
            let random = try await api.post("/v1/notes", #"{"title":"bob's","owner":"\#(bob.id)","parent":"\#(RecordID.make())"}"#, auth: bob.auth)
            #expect(random.status == pointing.status && random.fieldErrors.map(\.1) == ["not_found"])
            // Admins are excepted: here an admin links Bob's note to Ada's.
            let bobs = try await api.post("/v1/notes", #"{"title":"bob's","owner":"\#(bob.id)","parent":"\#(id)"}"#)
            #expect(bobs.status == .created)
            let bid = bobs["id"]!.stringValue!
            #expect(try await api.patch("/v1/notes/\(bid)", #"{"owner":"\#(ada.id)"}"#, auth: bob.auth).status == .forbidden)
            // Expanding a relation never shows a record the viewer cannot see.
            let expanded = try await api.get("/v1/notes/\(bid)?expand=parent", auth: bob.auth)
            #expect(expanded.status == .ok && expanded["expand"]?["parent"] == nil && !expanded.text.contains("ada's"))
            let listed = try await api.get("/v1/notes?expand=parent", auth: bob.auth)
            #expect(!listed.text.contains("ada's"))
            // In a batch too.
            let batch = try await api.post(
                "/v1/batch",
                #"{"operations":[{"method":"PATCH","path":"/v1/notes/\#(id)","body":{"title":"x"}}]}"#,
                auth: bob.auth
            )
            #expect(batch.status == .notFound && batch["operation_index"] == .int(0))
            // The users collection: each sees only themselves.
            #expect(try await api.get("/v1/users/\(ada.id)", auth: bob.auth).status == .notFound)
            #expect(try await api.get("/v1/users/\(bob.id)", auth: bob.auth).status == .ok)
            #expect(try await api.patch("/v1/users/\(ada.id)", #"{"name":"pwned"}"#, auth: bob.auth).status == .notFound)
            // Ada still has everything, unchanged.
            let adas = try await api.get("/v1/notes/\(id)", auth: ada.auth)
            #expect(adas.status == .ok && adas["title"] == .string("ada's") && adas["version"] == .int(1))
            #expect(try await api.get("/v1/notes?total=true", auth: ada.auth)["total"] == .int(1))
            // Anonymous: no grant's who matches → 401.
            #expect(try await api.get("/v1/notes/\(id)", auth: .none).status == .unauthorized)
        }
    }

    @Test(arguments: TestBackend.all)
    func usersCannotAssignThemselvesRolesOrVerification(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: IdentityFixtures.schema) { api in
            let ada = try await api.signUp("ada@example.com", profile: #""name":"Ada""#)
            for body in [
                #"{"roles":["editor"]}"#, #"{"verified":true}"#, #"{"disabled":false, "roles":["admin"]}"#, #"{"email":"admin@example.com"}"#,
            ] {
                let r = try await api.patch("/v1/users/\(ada.id)", body, auth: ada.auth)
                #expect(r.status == .unprocessableContent, "\(body)")
                #expect(r.fieldErrors.contains { $0.1 == "read_only" }, "\(body)")
            }
            // Profile fields are theirs; a GET-modify-PUT round trip that repeats managed values is fine.
            let ok = try await api.patch("/v1/users/\(ada.id)", #"{"name":"Ada L."}"#, auth: ada.auth)
            #expect(ok.status == .ok && ok["name"] == .string("Ada L."))
            var me = try await api.get("/v1/users/\(ada.id)", auth: ada.auth).json.objectValue!
            me["name"] = .string("Ada Lovelace")
            let put = try await api.put("/v1/users/\(ada.id)", JSONValue.object(me).serialized(), auth: ada.auth)
            #expect(put.status == .ok && put["name"] == .string("Ada Lovelace") && put["roles"] == .array([]))
            // PUT without the managed fields keeps them (they are not reset to defaults).
            _ = try await api.patch("/v1/admin/users/\(ada.id)", #"{"verified":true}"#)
            let put2 = try await api.put("/v1/users/\(ada.id)", #"{"name":"A"}"#, auth: ada.auth)
            #expect(put2.status == .ok && put2["verified"] == .bool(true) && put2["email"] == .string("ada@example.com"))
            let stored = try await api.get("/v1/users/\(ada.id)")
            #expect(stored["roles"] == .array([]) && stored["verified"] == .bool(true))
        }
    }

    @Test(arguments: TestBackend.all)
    func rolesInheritAndAuthFieldsBindInRules(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: IdentityFixtures.schema) { api in
            let ada = try await api.signUp("ada@example.com", profile: #""team":"red""#)
            let bob = try await api.signUp("bob@example.com", profile: #""team":"red""#)
            let cy = try await api.signUp("cy@example.com", profile: #""team":"blue""#)
            let note = try await api.post("/v1/notes", #"{"title":"red plan","owner":"\#(ada.id)","team":"red"}"#, auth: ada.auth)
            let id = try #require(note["id"]?.stringValue)
            // Bob has no role yet: the team grant is for viewers.
            #expect(try await api.get("/v1/notes/\(id)", auth: bob.auth).status == .notFound)
            // editor inherits viewer: `team = @auth.team` now lets Bob (red) see it, not Cy (blue).
            for u in [bob, cy] { #expect(try await api.patch("/v1/admin/users/\(u.id)", #"{"roles":["editor"]}"#).status == .ok) }
            #expect(try await api.get("/v1/notes/\(id)", auth: bob.auth).status == .ok)
            #expect(try await api.get("/v1/notes?total=true", auth: bob.auth)["total"] == .int(1))
            #expect(try await api.get("/v1/notes/\(id)", auth: cy.auth).status == .notFound)
            #expect(try await api.get("/v1/notes?total=true", auth: cy.auth)["total"] == .int(0))
            // A caller whose `@auth.team` is null reads the rule as `team = null` (API.md §3). Rules
            // are compiled once per set of grants and pattern of null values: callers of both kinds
            // alternate here, each answered by its own.
            let dee = try await api.signUp("dee@example.com")
            #expect(try await api.patch("/v1/admin/users/\(dee.id)", #"{"roles":["editor"]}"#).status == .ok)
            let teamless = try await api.post("/v1/notes", #"{"title":"no team","owner":"\#(ada.id)"}"#, auth: ada.auth)["id"]!.stringValue!
            for _ in 0..<2 {
                #expect(try await api.get("/v1/notes/\(teamless)", auth: dee.auth).status == .ok)
                #expect(try await api.get("/v1/notes/\(id)", auth: dee.auth).status == .notFound)
                #expect(try await api.get("/v1/notes/\(teamless)", auth: bob.auth).status == .notFound)
                #expect(try await api.get("/v1/notes/\(id)", auth: bob.auth).status == .ok)
                #expect(try await api.get("/v1/notes/\(teamless)", auth: ada.auth).status == .ok)
            }
            #expect(try await api.get("/v1/notes?total=true", auth: dee.auth)["total"] == .int(1))
            #expect(try await api.delete("/v1/notes/\(teamless)", auth: ada.auth).status == .noContent)
            // Viewing is not updating: Bob sees it but may not change it (403), editors may delete.
            #expect(try await api.patch("/v1/notes/\(id)", #"{"title":"x"}"#, auth: bob.auth).status == .forbidden)
            #expect(try await api.delete("/v1/notes/\(id)", auth: bob.auth).status == .noContent)
            // A role taken away takes effect on the next request.
            let n2 = try await api.post("/v1/notes", #"{"title":"again","owner":"\#(ada.id)","team":"red"}"#, auth: ada.auth)["id"]!.stringValue!
            #expect(try await api.get("/v1/notes/\(n2)", auth: bob.auth).status == .ok)
            #expect(try await api.patch("/v1/admin/users/\(bob.id)", #"{"roles":[]}"#).status == .ok)
            #expect(try await api.get("/v1/notes/\(n2)", auth: bob.auth).status == .notFound)
        }
    }
}
