import Basalt
import BasaltAuth
import BasaltCore
import BasaltStorage
import BasaltTesting
import Foundation
import HTTPTypes
import Synchronization
import Testing

@testable import BasaltServices

/// An access token's principal is kept between requests, and never longer than what it was made
/// from: the user's record, the session, the token's own time, the schema and the key set.
@Suite("Principals kept per access token")
struct TokenPrincipalTests {
    @Test(arguments: TestBackend.all)
    func aKeptPrincipalLastsNoLongerThanItsReads(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: IdentityFixtures.schema) { api in
            let ada = try await api.signUp("ada@example.com")
            let auth = api.runtime.auth
            let t0 = Timestamp.now()
            func at(_ ms: Int64) -> Timestamp { Timestamp(millisecondsSinceEpoch: t0.millisecondsSinceEpoch + ms) }
            let kept = { auth.principals.state.withLock { $0.entries[ada.accessToken] != nil } }

            let first = try await auth.authenticate(accessToken: ada.accessToken, address: "192.0.2.1", now: at(0))
            #expect(first.id == ada.id && first.roles.isEmpty && first.user?["email"] == .string("ada@example.com"))
            #expect(kept())
            // Reused, with the address of the request at hand.
            let again = try await auth.authenticate(accessToken: ada.accessToken, address: "192.0.2.2", now: at(10))
            #expect(again.id == ada.id && again.clientAddress == "192.0.2.2")

            // A change made through this process applies at once: roles an admin sets.
            #expect(try await api.patch("/v1/admin/users/\(ada.id)", #"{"roles":["editor"]}"#).status == .ok)
            let editor = try await auth.authenticate(accessToken: ada.accessToken, address: "192.0.2.1", now: at(20))
            #expect(editor.roles == ["editor", "viewer"])

            // A change this process did not make (another replica's: the session revoked straight
            // in the database) is seen once the reads the principal came from are 2 s old —
            // exactly when the cached user and session would be read again without it.
            let sid = try #require(try DecodedJWT(ada.accessToken).payload["sid"]?.stringValue)
            let store = api.runtime.store
            _ = try await store.write([
                store.statement(#"UPDATE "_basalt_sessions" SET "revoked_at" = \#(t0.millisecondsSinceEpoch) WHERE "id" = \#(sid)"#, expect: .one)
            ])
            #expect(try await auth.authenticate(accessToken: ada.accessToken, address: "192.0.2.1", now: at(2_019)).id == ada.id)
            await #expect(throws: BasaltError.self) {
                try await auth.authenticate(accessToken: ada.accessToken, address: "192.0.2.1", now: at(2_020))
            }
            #expect(!kept())
        }
    }

    @Test(arguments: TestBackend.all)
    func aKeptPrincipalEndsWithItsToken(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: IdentityFixtures.schema) { api in
            let ada = try await api.signUp("ada@example.com")
            let auth = api.runtime.auth
            // Read a second before the token expires (with the leeway): the user and session reads
            // would be good for two more seconds, the token is not.
            let exp = try #require(try DecodedJWT(ada.accessToken).payload["exp"]?.integerValue)
            let end = (exp + Int64(auth.tokens.settings.leeway.components.seconds)) * 1000
            let before = Timestamp(millisecondsSinceEpoch: end - 1_000)
            #expect(try await auth.authenticate(accessToken: ada.accessToken, address: "192.0.2.1", now: before).id == ada.id)
            #expect(
                try await auth.authenticate(accessToken: ada.accessToken, address: "192.0.2.1", now: .init(millisecondsSinceEpoch: end - 1)).id
                    == ada.id
            )
            await #expect(throws: BasaltError.self) {
                try await auth.authenticate(accessToken: ada.accessToken, address: "192.0.2.1", now: .init(millisecondsSinceEpoch: end))
            }
        }
    }

    @Test func aStampThatMovedOrTimeThatPassedIsAMiss() {
        let cache = TokenPrincipals(capacity: 100, sweepFrom: 4)
        let stamp = TokenPrincipals.Stamp(users: 7, schema: 2, keys: 1)
        let p = Principal(kind: .subject, id: "u1", roles: ["viewer"], clientAddress: "192.0.2.1")
        cache.keep("t1", p, stamp: stamp, until: 5_000, now: 0)
        #expect(cache.principal("t1", stamp: stamp, now: 4_999) == p)
        #expect(cache.principal("t2", stamp: stamp, now: 1) == nil)
        // Any part of the stamp moved on: every entry is dead, and dropped.
        for moved in [
            TokenPrincipals.Stamp(users: 8, schema: 2, keys: 1), TokenPrincipals.Stamp(users: 7, schema: 3, keys: 1),
            TokenPrincipals.Stamp(users: 7, schema: 2, keys: 2),
        ] {
            let fresh = TokenPrincipals(capacity: 100, sweepFrom: 4)
            fresh.keep("t1", p, stamp: stamp, until: 5_000, now: 0)
            #expect(fresh.principal("t1", stamp: moved, now: 1) == nil)
            #expect(fresh.principal("t1", stamp: stamp, now: 1) == nil && fresh.count == 0)
        }
        // A principal read under a stamp that precedes the kept one is not kept (it may be what a
        // change replaced); a restored schema (a lower version, a later epoch) starts over.
        let newer = TokenPrincipals.Stamp(users: 9, schema: 2, keys: 1)
        cache.keep("t1", p, stamp: newer, until: 5_000, now: 0)
        cache.keep("t3", p, stamp: stamp, until: 5_000, now: 0)
        #expect(cache.principal("t1", stamp: newer, now: 1) == p && cache.principal("t3", stamp: newer, now: 1) == nil)
        let restored = TokenPrincipals.Stamp(users: 10, schema: 1, keys: 1)
        cache.keep("t4", p, stamp: restored, until: 5_000, now: 0)
        #expect(cache.principal("t4", stamp: restored, now: 1) == p && cache.count == 1)
        // `until` is exclusive.
        #expect(cache.principal("t4", stamp: restored, now: 5_000) == nil)
        // Expired entries are swept as the map grows; past capacity it starts over.
        let small = TokenPrincipals(capacity: 6, sweepFrom: 4)
        for t in ["a", "b", "c", "d"] { small.keep(t, p, stamp: stamp, until: 10, now: 0) }
        small.keep("e", p, stamp: stamp, until: 100, now: 20)
        #expect(small.count == 1 && small.principal("e", stamp: stamp, now: 21) == p)
        for t in ["f", "g", "h", "i", "j", "k"] { small.keep(t, p, stamp: stamp, until: 100, now: 21) }
        #expect(small.count <= 6 && small.principal("k", stamp: stamp, now: 22) == p)
    }
}
