import Basalt
import BasaltCore
import BasaltServices
import BasaltTesting
import Foundation
import HTTPTypes
import ShopExample
import Synchronization
import Testing

/// Swift hooks (Basalt as a library): before-hooks in the write's transaction, after-hooks from
/// the outbox — driven through the shop example (examples/shop) over real HTTP, on both backends.
@Suite("Swift hooks")
struct HookTests {
    final class Seen: Sendable {
        let events = Mutex<[HookEvent]>([])
        func append(_ e: HookEvent) { events.withLock { $0.append(e) } }
        var all: [HookEvent] { events.withLock { $0 } }
    }

    static func stock(_ api: APIClient, _ product: String) async throws -> (stock: Int64?, version: Int64?) {
        let p = try await api.get("/v1/products/\(product)", auth: .none)
        return (p["stock"]?.integerValue, p["version"]?.integerValue)
    }

    @Test(arguments: TestBackend.all)
    func orderTotalAndStockReservationCommitTogether(_ backend: TestBackend) async throws {
        let placed = Seen()
        try await backend.withApp(schema: Shop.schema, configure: { $0.hooks = Shop.hooks(placed: { placed.append($0) }) }) { api in
            let product = try #require(try await api.create("products", #"{"name":"Lamp","price_cents":250,"stock":5}"#)["id"]?.stringValue)
            let ada = try await api.signUp("ada@example.com")

            // The total is the server's, whatever the client says; the stock is taken with the order.
            let order = try await api.post(
                "/v1/orders",
                #"{"product":"\#(product)","quantity":2,"total_cents":1,"customer":"\#(ada.id)"}"#,
                auth: ada.auth
            )
            #expect(order.status == .created, "\(order.text)")
            #expect(order["total_cents"]?.integerValue == 500 && order["status"]?.stringValue == "placed")
            let id = try #require(order["id"]?.stringValue)
            var s = try await Self.stock(api, product)
            #expect(s.stock == 3 && s.version == 2)

            // Not enough stock: a 409 problem, and nothing written — neither order nor stock.
            let refused = try await api.post(
                "/v1/orders",
                #"{"product":"\#(product)","quantity":4,"customer":"\#(ada.id)"}"#,
                auth: ada.auth
            )
            #expect(refused.status == .conflict && refused.problem == "conflict", "\(refused.text)")
            #expect(refused.header("Content-Type") == "application/problem+json")
            #expect(refused.fieldErrors.map(\.0) == ["/quantity"])
            #expect(try await api.get("/v1/orders").json["items"]?.arrayValue?.count == 1)
            s = try await Self.stock(api, product)
            #expect(s.stock == 3 && s.version == 2)

            // A batch is one transaction: the second order fails, the first is undone with it.
            let batch = try await api.post(
                "/v1/batch",
                #"""
                {"operations":[
                  {"method":"POST","path":"/v1/orders","body":{"product":"\#(product)","quantity":1,"customer":"\#(ada.id)"}},
                  {"method":"POST","path":"/v1/orders","body":{"product":"\#(product)","quantity":3,"customer":"\#(ada.id)"}}]}
                """#,
                auth: ada.auth
            )
            #expect(batch.status == .conflict && batch["operation_index"]?.integerValue == 1, "\(batch.text)")
            #expect(try await Self.stock(api, product).stock == 3)

            // Changing the quantity moves the stock by the difference; the total follows.
            let more = try await api.patch("/v1/orders/\(id)", #"{"quantity":5}"#, auth: ada.auth)
            #expect(more.status == .ok && more["total_cents"]?.integerValue == 1250, "\(more.text)")
            #expect(try await Self.stock(api, product).stock == 0)
            let tooMany = try await api.patch("/v1/orders/\(id)", #"{"quantity":6}"#, auth: ada.auth)
            #expect(tooMany.status == .conflict)
            #expect(try await api.get("/v1/orders/\(id)", auth: ada.auth)["quantity"]?.integerValue == 5)

            // Hook rules are the hook's errors: a product cannot change (422), a cancelled order
            // stays cancelled (409); cancelling gives the stock back.
            let other = try #require(try await api.create("products", #"{"name":"Desk","price_cents":9000,"stock":1}"#)["id"]?.stringValue)
            let moved = try await api.patch("/v1/orders/\(id)", #"{"product":"\#(other)"}"#, auth: ada.auth)
            #expect(moved.status == .unprocessableContent && moved.fieldErrors.map(\.1) == ["read_only"])
            #expect(try await api.patch("/v1/orders/\(id)", #"{"status":"cancelled"}"#, auth: ada.auth).status == .ok)
            #expect(try await Self.stock(api, product).stock == 5)
            #expect(try await api.patch("/v1/orders/\(id)", #"{"status":"placed"}"#, auth: ada.auth).status == .conflict)
            #expect(try await Self.stock(api, product).stock == 5)

            // Deleting a placed order (admins) gives its stock back; a cancelled one's was given already.
            let second = try await api.post("/v1/orders", #"{"product":"\#(product)","quantity":2,"customer":"\#(ada.id)"}"#, auth: ada.auth)
            #expect(try await Self.stock(api, product).stock == 3)
            #expect(try await api.delete("/v1/orders/\(second["id"]?.stringValue ?? "")").status == .noContent)
            #expect(try await api.delete("/v1/orders/\(id)").status == .noContent)
            #expect(try await Self.stock(api, product).stock == 5)

            // The after-hook saw each committed creation once (not the refused or rolled-back ones).
            try await eventually { placed.all.count == 2 }
            let events = placed.all
            #expect(Set(events.map(\.recordID)) == [id, second["id"]?.stringValue ?? ""])
            #expect(events.allSatisfy { $0.action == .create && $0.collection == "orders" && $0.attempt == 1 })
            #expect(events.first { $0.recordID == id }?.record["total_cents"]?.integerValue == 500)
        }
    }

    @Test(arguments: TestBackend.all)
    func beforeHooksAreValidatedAndRefuseWithTheirError(_ backend: TestBackend) async throws {
        var hooks = RecordHooks()
        hooks.before("authors", on: [.create]) { change in
            if change.fields["name"]?.stringValue == "forbidden" { throw BasaltError(.forbidden, "authors named forbidden are not welcome") }
            if change.fields["name"]?.stringValue == "Ada" { change.fields["name"] = "Ada Lovelace" }
            if change.fields["name"]?.stringValue == "long" { change.fields["name"] = .string(String(repeating: "x", count: 101)) }
        }
        try await backend.withApp(schema: Fixtures.blog, configure: { $0.hooks = hooks }) { api in
            let ada = try await api.post("/v1/authors", #"{"name":"Ada"}"#)
            #expect(ada.status == .created && ada["name"]?.stringValue == "Ada Lovelace")
            #expect(try await api.get("/v1/authors/\(ada["id"]?.stringValue ?? "")")["name"]?.stringValue == "Ada Lovelace")
            let refused = try await api.post("/v1/authors", #"{"name":"forbidden"}"#)
            #expect(refused.status == .forbidden && refused["detail"]?.stringValue == "authors named forbidden are not welcome")
            // What a hook writes is validated like a client's value.
            let invalid = try await api.post("/v1/authors", #"{"name":"long"}"#)
            #expect(invalid.status == .unprocessableContent && invalid.fieldErrors.map(\.0) == ["/name"], "\(invalid.text)")
            #expect(try await api.get("/v1/authors").json["items"]?.arrayValue?.count == 1)
        }
    }

    @Test(arguments: TestBackend.all)
    func afterHooksRunAgainAfterAFailureWithTheSameEvent(_ backend: TestBackend) async throws {
        let seen = Seen()
        var hooks = RecordHooks()
        hooks.after("flaky", collections: ["authors"]) { event in
            seen.append(event)
            if event.attempt == 1 { throw BasaltError(.unavailable, "the receiving system is down") }
        }
        try await backend.withApp(schema: Fixtures.blog, configure: { $0.hooks = hooks }) { api in
            // A CLI command on the same data (`basalt admin key create` beside the server) opens a
            // runtime without hooks: that must not take the serving program's hooks away.
            let rt = api.runtime
            try await AfterHooks(hooks: RecordHooks(), queue: rt.jobs, schemas: rt.schemas).prepare()
            let ada = try #require(try await api.create("authors", #"{"name":"Ada"}"#)["id"]?.stringValue)
            _ = try await api.create("posts", #"{"title":"not for this hook"}"#)
            try await eventually(within: .seconds(20)) { seen.all.count == 2 }
            let events = seen.all
            #expect(events.map(\.attempt) == [1, 2] && events[0].id == events[1].id)
            #expect(events[0].recordID == ada && events[0].type == "basalt.record.created" && events[0].record["name"] == "Ada")
            // The job is the queue's like any other: visible to admins, succeeded on its second attempt.
            try await eventually {
                let jobs = try await api.get("/v1/admin/jobs?kind=hook")["items"]?.arrayValue ?? []
                return jobs.count == 1 && jobs[0]["state"] == "succeeded" && jobs[0]["attempts"] == 2
            }
        }
    }
}
