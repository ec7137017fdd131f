import Basalt
import BasaltCore
import BasaltServices
import BasaltStorage
import BasaltTesting
import Foundation
import HTTPTypes
import Testing

/// The audit log (API.md §12, issue 9): sign-ins and refused sign-ins are recorded, old entries
/// go after the retention period, and the export gives every entry oldest first.
@Suite("Audit log: sign-ins, retention, export")
struct AuditTests {
    @Test(arguments: TestBackend.all)
    func signInsRefusalsRetentionAndExport(_ backend: TestBackend) async throws {
        try await backend.withApp { api in
            let ada = try await api.signUp("ada@example.com")
            let wrong = try await api.post("/v1/auth/login", #"{"email":"ada@example.com","password":"not the password"}"#, auth: .none)
            #expect(wrong.status == .unauthorized)
            let unknown = try await api.post("/v1/auth/login", #"{"email":"nobody@example.com","password":"whatever it is"}"#, auth: .none)
            #expect(unknown.status == .unauthorized)

            let logins = try #require(try await api.get("/v1/admin/audit?action=auth.login")["items"]?.arrayValue)
            #expect(logins.count == 1)
            #expect(logins.first?["actor"] == .string("sub:" + ada.id) && logins.first?["record_id"] == .string(ada.id))
            #expect(logins.first?["detail"]?["address"]?.stringValue?.isEmpty == false)
            let refused = try #require(try await api.get("/v1/admin/audit?action=auth.login_refused")["items"]?.arrayValue)
            #expect(refused.count == 2)
            #expect(Set(refused.compactMap { $0["detail"]?["email"]?.stringValue }) == ["ada@example.com", "nobody@example.com"])
            #expect(refused.allSatisfy { $0["detail"]?["reason"] == .string("credentials") })
            #expect(refused.allSatisfy { $0["actor"]?.stringValue?.hasPrefix("anon:") == true })
            // Not for anyone else to read.
            #expect(try await api.get("/v1/admin/audit", auth: ada.auth).status == .forbidden)

            // Retention: entries older than the cutoff go, newer ones stay.
            let store = api.runtime.store
            let audit = AuditLog(store: store)
            let now = Timestamp.now()
            let old = Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - 400 * 86_400_000)
            try await store.write([audit.statement(AuditLog.Entry(actor: "system", action: "test.old"), at: old)])
            let before = try await audit.list(limit: 200, before: nil, actor: nil, action: nil, collection: nil).items.count
            let cutoff = Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - 365 * 86_400_000)
            #expect(try await audit.prune(olderThan: cutoff) == 1)
            let after = try await audit.list(limit: 200, before: nil, actor: nil, action: nil, collection: nil).items
            #expect(after.count == before - 1)
            #expect(!after.contains { $0["action"] == .string("test.old") })

            // Export: everything, oldest first, across pages; `since` narrows it.
            var exported: [JSONValue] = []
            try await audit.export(since: nil, page: 2) { exported += $0 }
            #expect(exported.count == after.count)
            let ids = exported.compactMap { $0["id"]?.stringValue }
            #expect(ids == ids.sorted() && Set(ids).count == ids.count)
            var recent: [JSONValue] = []
            try await audit.export(since: Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch + 60_000), page: 2) { recent += $0 }
            #expect(recent.isEmpty)
        }
    }
}
