import BasaltCore
import BasaltTesting
import Foundation
import HTTPTypes
import Testing

enum HopFixtures {
    /// A public showcase pointing at an admin-only collection and at users (whose records each
    /// user sees alone).
    static let showcase = """
        collections:
          users:
            access:
              view: [{who: authenticated, where: "id = @auth.id"}]
          secrets:
            fields:
              value: {type: text}
          showcase:
            fields:
              name:   {type: text}
              secret: {type: relation, collection: secrets}
              owner:  {type: relation, collection: users}
            access:
              list: [{who: public}]
              view: [{who: public}]
        """

    /// Ownership through a relation, the most common rule of apps built on PocketBase.
    static let projects = """
        collections:
          projects:
            fields:
              name:  {type: text, required: true}
              owner: {type: relation, collection: users, required: true}
            access:
              list:   [{who: authenticated}]
              view:   [{who: authenticated}]
              create: [{who: authenticated, where: "@new.owner = @auth.id"}]
          tasks:
            fields:
              title:   {type: text, required: true}
              project: {type: relation, collection: projects, required: true, on_delete: cascade}
            access:
              list:   [{who: authenticated, where: "project.owner = @auth.id"}]
              view:   [{who: authenticated, where: "project.owner = @auth.id"}]
              create: [{who: authenticated, where: "@new.project.owner = @auth.id"}]
              update: [{who: authenticated, where: "project.owner = @auth.id && @new.project.owner = @auth.id"}]
              delete: [{who: authenticated, where: "project.owner = @auth.id"}]
        """
}

@Suite("Relation hops in filters and rules (API.md §3, §9)")
struct RelationHopTests {
    func q(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? s }

    /// A filter never tells a right guess about a hidden value from a wrong one: a hop reads its
    /// target only where the caller's view grants allow it, otherwise as if it were absent.
    @Test(arguments: TestBackend.all)
    func filtersCannotProbeHiddenTargets(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: HopFixtures.showcase) { api in
            let victim = try await api.signUp("victim@example.com")
            let secret = try await api.create("secrets", #"{"value":"hunter2"}"#)["id"]!.stringValue!
            _ = try await api.create("showcase", #"{"name":"a","secret":"\#(secret)","owner":"\#(victim.id)"}"#)
            let probes = [
                "secret.value ~ 'hun'", "secret.value = 'hunter2'", "secret.value ~ 'zzz'", "secret.value > 'a'",
                "owner.email ~ 'victim'", "owner.email = 'victim@example.com'", "owner.email ~ 'nobody'",
                "secret.value in ('hunter2', 'x')", "owner.verified = false",
            ]
            for probe in probes {
                let r = try await api.get("/v1/showcase?total=true&filter=\(q(probe))", auth: .none)
                #expect(r.status == .ok, "\(probe)")
                #expect(r["total"] == .int(0) && r["items"] == .array([]), "\(probe): \(r.text)")
            }
            // As if absent: `is null` and negations hold for every row, right guess or not.
            for probe in ["secret.value is null", "!(secret.value = 'hunter2')", "!(secret.value ~ 'zzz')", "owner.email != 'victim@example.com'"] {
                #expect(try await api.get("/v1/showcase?total=true&filter=\(q(probe))", auth: .none)["total"] == .int(1), "\(probe)")
            }
            // Another signed-in user sees no one's email either; the owner sees their own.
            let other = try await api.signUp("other@example.com")
            #expect(try await api.get("/v1/showcase?total=true&filter=\(q("owner.email ~ 'victim'"))", auth: other.auth)["total"] == .int(0))
            #expect(try await api.get("/v1/showcase?total=true&filter=\(q("owner.email ~ 'victim'"))", auth: victim.auth)["total"] == .int(1))
            // Admins are unaffected.
            #expect(try await api.get("/v1/showcase?total=true&filter=\(q("secret.value ~ 'hun'"))")["total"] == .int(1))
            #expect(try await api.get("/v1/showcase?total=true&filter=\(q("secret.value ~ 'zzz'"))")["total"] == .int(0))
        }
    }

    /// Rules through a hop guard list, view, update and delete alike; `@new.<relation>.<field>`
    /// lets a create rule check who owns the referenced record.
    @Test(arguments: TestBackend.all)
    func ownershipThroughARelation(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: HopFixtures.projects) { api in
            let ada = try await api.signUp("ada@example.com")
            let bob = try await api.signUp("bob@example.com")
            let p = try await api.post("/v1/projects", #"{"name":"ada's","owner":"\#(ada.id)"}"#, auth: ada.auth)
            #expect(p.status == .created)
            let project = p["id"]!.stringValue!
            let t = try await api.post("/v1/tasks", #"{"title":"one","project":"\#(project)"}"#, auth: ada.auth)
            #expect(t.status == .created && t["title"] == .string("one"), "\(t.text)")
            let task = t["id"]!.stringValue!
            #expect(try await api.get("/v1/tasks?total=true", auth: ada.auth)["total"] == .int(1))
            #expect(try await api.get("/v1/tasks/\(task)", auth: ada.auth).status == .ok)
            let patched = try await api.patch("/v1/tasks/\(task)", #"{"title":"one!"}"#, auth: ada.auth)
            #expect(patched.status == .ok && patched["version"] == .int(2), "\(patched.text)")
            let two = try await api.post("/v1/tasks", #"{"title":"two","project":"\#(project)"}"#, auth: ada.auth)["id"]!.stringValue!
            #expect(try await api.delete("/v1/tasks/\(two)", auth: ada.auth).status == .noContent)

            // Bob sees the project (authenticated), but its tasks are not his.
            let intrude = try await api.post("/v1/tasks", #"{"title":"x","project":"\#(project)"}"#, auth: bob.auth)
            #expect(intrude.status == .forbidden, "\(intrude.text)")
            #expect(try await api.get("/v1/tasks/\(task)", auth: bob.auth).status == .notFound)
            #expect(try await api.patch("/v1/tasks/\(task)", #"{"title":"mine"}"#, auth: bob.auth).status == .notFound)
            #expect(try await api.delete("/v1/tasks/\(task)", auth: bob.auth).status == .notFound)
            // His own task may not move into Ada's project.
            let bp = try await api.post("/v1/projects", #"{"name":"bob's","owner":"\#(bob.id)"}"#, auth: bob.auth)["id"]!.stringValue!
            let bt = try await api.post("/v1/tasks", #"{"title":"b","project":"\#(bp)"}"#, auth: bob.auth)
            #expect(bt.status == .created)
            let moved = try await api.patch("/v1/tasks/\(bt["id"]!.stringValue!)", #"{"project":"\#(project)"}"#, auth: bob.auth)
            #expect(moved.status == .forbidden, "\(moved.text)")
            // A project and its task in one batch: the rule sees the project the batch just made.
            let newProject = RecordID.make()
            let batch = try await api.post(
                "/v1/batch",
                #"""
                {"operations":[{"method":"POST","path":"/v1/projects","body":{"id":"\#(newProject)","name":"new","owner":"\#(bob.id)"}},
                               {"method":"POST","path":"/v1/tasks","body":{"title":"first","project":"\#(newProject)"}}]}
                """#,
                auth: bob.auth
            )
            #expect(batch.status == .ok, "\(batch.text)")
            #expect(batch["results"]?[1]?["body"]?["title"] == .string("first"))
            let foreign = try await api.post(
                "/v1/batch",
                #"""
                {"operations":[{"method":"POST","path":"/v1/tasks","body":{"title":"ok","project":"\#(newProject)"}},
                               {"method":"POST","path":"/v1/tasks","body":{"title":"no","project":"\#(project)"}}]}
                """#,
                auth: bob.auth
            )
            #expect(foreign.status == .forbidden && foreign["operation_index"] == .int(1), "\(foreign.text)")
            #expect(try await api.get("/v1/tasks?total=true", auth: bob.auth)["total"] == .int(2))
            // Ada's task is untouched.
            let stored = try await api.get("/v1/tasks/\(task)", auth: ada.auth)
            #expect(stored["title"] == .string("one!") && stored["version"] == .int(2))
        }
    }
}

extension JSONValue {
    subscript(_ index: Int) -> JSONValue? {
        guard case .array(let a) = self, a.indices.contains(index) else { return nil }
        return a[index]
    }
}
