import Basalt
import BasaltAuth
import BasaltClient
import BasaltCore
import BasaltTesting
import Foundation
import HTTPTypes
import Testing

/// The app's own type: only the fields it uses, Swift names mapped to the server's.
struct Post: Codable, Sendable, Equatable {
    var title: String
    var body: String?
    var status: String?
    var views: Int?
    var publishedAt: Date?

    enum CodingKeys: String, CodingKey {
        case title, body, status, views
        case publishedAt = "published_at"
    }
}

enum ClientFixtures {
    static let schema = """
        collections:
          posts:
            fields:
              title: {type: text, required: true, max: 200}
              body: {type: text}
              status: {type: select, values: [draft, published], default: draft}
              views: {type: integer, min: 0, default: 0}
              published_at: {type: datetime}
            access:
              list: [{who: authenticated}]
              view: [{who: authenticated}]
              create: [{who: authenticated}]
              update: [{who: authenticated}]
              delete: [{who: authenticated}]
          # Anyone signed in may leave a message; only admins read them.
          inbox:
            fields:
              text: {type: text, required: true}
            access:
              create: [{who: authenticated}]
        """
    static let password = "correct horse battery"

    /// A signed-in client of a new user.
    static func signedIn(
        _ api: APIClient,
        _ email: String,
        transport: any BasaltTransport = AsyncHTTPClientTransport(),
        port: Int? = nil,
        configure: (inout BasaltClient.Configuration) -> Void = { _ in }
    ) async throws -> BasaltClient {
        let client = makeClient(api, port: port, transport: transport, configure: configure)
        try await client.auth.signUp(email: email, password: password)
        try await client.auth.signIn(email: email, password: password)
        return client
    }
}

@Suite("BasaltClient against a live server")
struct ClientTests {
    @Test(arguments: TestBackend.all)
    func sessionsAndSecondFactor(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: ClientFixtures.schema) { api in
            let client = makeClient(api)
            let ada = try await client.auth.signUp(email: "ada@example.com", password: ClientFixtures.password, profile: [:])
            let signedIn = try await client.auth.isSignedIn
            #expect(ada.email == "ada@example.com" && !signedIn)
            await #expect(throws: BasaltClientError.self) { try await client.auth.me() }

            let wrong = await #expect(throws: Problem.self) { try await client.auth.signIn(email: "ada@example.com", password: "wrong password") }
            #expect(wrong?.status == 401 && wrong?.code == "unauthenticated")
            try await client.auth.signIn(email: "ada@example.com", password: ClientFixtures.password)
            #expect(try await client.auth.me().id == ada.id)

            // Enrolling a second factor needs the password; the codes come back typed.
            let noPassword = await #expect(throws: Problem.self) { try await client.auth.enrolTOTP(password: "nope nope nope") }
            #expect(noPassword?.status == 401)
            let enrolment = try await client.auth.enrolTOTP(password: ClientFixtures.password)
            #expect(enrolment.otpauthURI.hasPrefix("otpauth://totp/"))
            let code = OneTimePasswords.code(secret: base32Decode(enrolment.secret), at: .now())
            let recovery = try await client.auth.confirmTOTP(otp: code)
            #expect(recovery.count == 10)

            // Signing out ends the session on the server too: its refresh token is dead.
            let before = try #require(try await client.auth.tokens)
            try await client.auth.signOut()
            let stillSignedIn = try await client.auth.isSignedIn
            #expect(!stillSignedIn)
            let reuse = try await api.post("/v1/auth/refresh", #"{"refresh_token":"\#(before.refreshToken)"}"#, auth: .none)
            #expect(reuse.status == .unauthorized)
            #expect(try await api.get("/v1/auth/me", auth: .bearer(before.accessToken)).status == .unauthorized)

            // With the second factor on, a sign-in without it is `mfa-required`; a recovery code works.
            let mfa = await #expect(throws: Problem.self) {
                try await client.auth.signIn(email: "ada@example.com", password: ClientFixtures.password)
            }
            #expect(mfa?.isMFARequired == true)
            try await client.auth.signIn(email: "ada@example.com", password: ClientFixtures.password, otp: recovery[0])
            #expect(try await client.auth.me().email == "ada@example.com")
        }
    }

    @Test(arguments: TestBackend.all)
    func recordsAsAppTypesWithVersionsAndTypedErrors(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: ClientFixtures.schema) { api in
            let client = try await ClientFixtures.signedIn(api, "ada@example.com")
            let posts = client.collection("posts", as: Post.self)
            let when = Date(timeIntervalSince1970: 1_790_000_000.123)
            let created = try await posts.create(Post(title: "Hello", body: nil, status: "published", views: 3, publishedAt: when))
            #expect(created.version == 1 && created.title == "Hello" && created.body == nil)
            #expect(abs(try #require(created.publishedAt).timeIntervalSince(when)) < 0.0005)
            let row = try await api.get("/v1/posts/\(created.id)")
            #expect(row["title"]?.stringValue == "Hello" && row["published_at"]?.stringValue == "2026-09-21T14:13:20.123Z")

            // A client-chosen id is kept.
            let chosen = UUID().uuidString.lowercased()
            #expect(try await posts.create(Post(title: "Mine"), id: chosen).id == chosen)

            // Updates carry the version they were based on: a stale one is refused, nothing changes.
            let second = try await posts.update(created, with: ["views": 4, "body": "text"])
            #expect(second.version == 2 && second.views == 4 && second.body == "text")
            let stale = await #expect(throws: Problem.self) { try await posts.update(created, with: ["views": 99]) }
            #expect(stale?.status == 412 && stale?.code == "precondition-failed")
            var edited = second
            edited.fields.title = "Hello again"
            edited.fields.body = nil
            let third = try await posts.replace(edited)
            #expect(third.version == 3 && third.title == "Hello again" && third.body == nil && third.views == 4)
            #expect(try await posts.get(created.id).version == 3)
            await #expect(throws: Problem.self) { try await posts.delete(second) }
            // Clearing a field with a merge patch: `null` in the dictionary form.
            let cleared = try await posts.update(created.id, with: ["published_at": nil])
            #expect(cleared.publishedAt == nil && cleared.version == 4)
            try await posts.delete(cleared)
            let gone = await #expect(throws: Problem.self) { try await posts.get(created.id) }
            #expect(gone?.status == 404 && gone?.code == "not-found")

            // Field errors come back typed, as JSON Pointers with codes.
            let invalid = await #expect(throws: Problem.self) { try await posts.create(Post(title: String(repeating: "x", count: 201), views: -1)) }
            #expect(invalid?.status == 422 && invalid?.error(for: "/title")?.code == "max" && invalid?.error(for: "/views")?.code == "min")
            let unknown = await #expect(throws: Problem.self) { try await client.collection("nothing", as: Post.self).get(chosen) }
            #expect(unknown?.status == 404)
            #expect(try await api.get("/v1/posts?total=true")["total"]?.integerValue == 1)
        }
    }

    @Test(arguments: TestBackend.all)
    func filtersQuoteEveryValue(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: ClientFixtures.schema) { api in
            let transport = CountingTransport()
            let client = try await ClientFixtures.signedIn(api, "ada@example.com", transport: transport)
            let posts = client.collection("posts", as: Post.self)
            for (title, views, status) in [
                ("O'Brien", 5, "published"), ("plain", 1, "draft"), ("100% sure", 9, "draft"), ("under_score", 2, "published"),
            ] {
                _ = try await posts.create(Post(title: title, body: title == "plain" ? "b" : nil, status: status, views: views))
            }
            func titles(_ filter: Filter) async throws -> Set<String> {
                var found: Set<String> = []
                for try await p in posts.list(filter: filter) { found.insert(p.title) }
                return found
            }
            #expect(try await titles(Field("title") == "O'Brien") == ["O'Brien"])
            // A quote followed by a combining mark is still a quote to the server (code points).
            #expect(try await titles(Field("title") == "O'\u{301} || title != '").isEmpty)
            #expect(try await titles(Field("status") == PostStatus.published) == ["O'Brien", "under_score"])
            // Input crafted to escape a quoted literal matches nothing: it is one literal.
            #expect(try await titles(Field("title") == "x' || title != 'y").isEmpty)
            #expect(try await titles(Field("title").contains("' || '1' = '1")).isEmpty)
            // `%` and `_` are ordinary characters for `~`.
            #expect(try await titles(Field("title").contains("%")) == ["100% sure"])
            #expect(try await titles(Field("title").contains("_")) == ["under_score"])
            #expect(
                try await titles(Field("views") >= 2 && (Field("status") == "published" || Field("title").contains("SURE")))
                    == ["O'Brien", "100% sure", "under_score"]
            )
            #expect(try await titles(!(Field("status") == "draft") && Field("views") < 5) == ["under_score"])
            #expect(try await titles(Field("body") == nil && Field("status").isIn(["draft"])) == ["100% sure"])
            #expect(try await titles(Field("body").isNotNull) == ["plain"])
            #expect(try await titles(Field("created_at") < Date().addingTimeInterval(60)).count == 4)
            #expect(try await titles(Field("views") > -1.5e3 && Field("views") < 1e20 && Field("views") != 9).count == 3)

            // A mistake in the filter is found before anything is sent.
            let lists = transport.count("GET /v1/posts")
            for bad in [Field("title; --") == "x", Field("views") < Double.nan, Field("views").isIn([]), Field("title") == "a" || Field("Views") > 1]
            {
                await #expect(throws: BasaltClientError.self) { _ = try await titles(bad) }
            }
            await #expect(throws: BasaltClientError.self) { _ = try await posts.page(ListQuery(sort: [.descending("views desc")])) }
            #expect(transport.count("GET /v1/posts") == lists)
        }
    }

    @Test(arguments: TestBackend.all)
    func listsVisitEveryRecordOnceWhileOthersAreInserted(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: ClientFixtures.schema) { api in
            let client = makeClient(api, apiKey: api.adminKey)
            let posts = client.collection("posts", as: Post.self)
            var originals: Set<String> = []
            for n in 0..<150 { originals.insert(try await posts.create(Post(title: "p\(n)", views: (n * 37) % 50)).id) }
            let writer = Task {
                for n in 0..<60 { _ = try await posts.create(Post(title: "new\(n)", views: (n * 11) % 50)) }
            }
            var seen: [String] = []
            for try await post in posts.list(sort: [.ascending("views")], pageSize: 7) {
                seen.append(post.id)
                if seen.count % 10 == 0 { await Task.yield() }
            }
            try await writer.value
            #expect(Set(seen).count == seen.count, "a record was visited twice")
            #expect(originals.isSubset(of: Set(seen)), "\(originals.subtracting(seen).count) records were never visited")
            let page = try await posts.page(limit: 5, total: true)
            #expect(page.items.count == 5 && page.total == 210 && page.nextCursor != nil)
        }
    }

    @Test(arguments: TestBackend.all)
    func concurrentRequestsShareOneProactiveRefresh(_ backend: TestBackend) async throws {
        try await backend.withApp(
            schema: ClientFixtures.schema,
            configure: {
                $0.auth.accessTokenLifetime = .seconds(12)
                $0.auth.accessTokenLeeway = .zero
            }
        ) { api in
            let transport = CountingTransport()
            let client = try await ClientFixtures.signedIn(api, "ada@example.com", transport: transport)
            let posts = client.collection("posts", as: Post.self)
            let post = try await posts.create(Post(title: "shared"))
            let first = try #require(try await client.auth.tokens)
            // Within the last quarter of the token's life: every request below finds it stale.
            // (Stale from 9 s on, the last quarter of 12; the next token is fresh for 9 s more,
            // long enough for every request on a loaded machine.)
            try await Task.sleep(until: .now + .seconds(max(0, 9.5 - Date().timeIntervalSince(first.receivedAt))))
            let results = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<100 { group.addTask { try await posts.get(post.id).version } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(results.count == 100 && results.allSatisfy { $0 == 1 })
            let refreshes = await client.refreshCount
            #expect(transport.count("POST /v1/auth/refresh") == 1 && refreshes == 1)
            #expect(transport.count(status: 401) == 0, "a request went out with the old token")
            // The session (one refresh family) is alive and goes on rotating.
            let fresh = try #require(try await client.auth.tokens)
            #expect(fresh.refreshToken != first.refreshToken)
            let sessions = try await api.get("/v1/auth/sessions", auth: .bearer(fresh.accessToken))
            #expect(sessions.status == .ok && sessions["items"]?.arrayValue?.count == 1)
            try await client.auth.refresh()
            #expect(try await client.auth.me().email == "ada@example.com")
        }
    }

    @Test(arguments: TestBackend.all)
    func rejectedTokenIsRefreshedOnceForEveryWaitingRequest(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: ClientFixtures.schema) { api in
            let owner = try await ClientFixtures.signedIn(api, "ada@example.com")
            let post = try await owner.collection("posts", as: Post.self).create(Post(title: "shared"))
            let issued = try #require(try await owner.auth.tokens)
            // The session's refresh token with an access token the server refuses although the
            // client believes it fresh (a wrong device clock, a revoked key; here its signature
            // is broken): every refusal is the same `401 invalid_token`, and the refresh has to
            // come from the 401s. Nothing here depends on time, however loaded the machine.
            var refused = issued
            refused.accessToken = String(issued.accessToken.dropLast(4)) + (issued.accessToken.hasSuffix("AAAA") ? "BBBB" : "AAAA")
            refused.expiresAt = Date().addingTimeInterval(3600)
            let transport = CountingTransport()
            let client = BasaltClient(
                baseURL: LiveServer.url(api),
                tokenStore: InMemoryTokenStore(refused),
                transport: transport
            )
            let posts = client.collection("posts", as: Post.self)
            let results = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<100 { group.addTask { try await posts.get(post.id).title } }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(results.count == 100, "a 401 reached the app")
            #expect(transport.count(status: 401) >= 1, "the token was not refused: the test proves nothing")
            let refreshes = await client.refreshCount
            #expect(transport.count("POST /v1/auth/refresh") == 1 && refreshes == 1)
            // One session, alive: rotated once, not revoked by a second use of its refresh token.
            let fresh = try #require(try await client.auth.tokens)
            #expect(fresh.refreshToken != issued.refreshToken)
            let sessions = try await api.get("/v1/auth/sessions", auth: .bearer(fresh.accessToken))
            #expect(sessions.status == .ok && sessions["items"]?.arrayValue?.count == 1)
            try await client.auth.refresh()
            #expect(try await client.auth.me().email == "ada@example.com")
        }
    }

    @Test(arguments: TestBackend.all)
    func writeRetriedAfterADroppedConnectionHappensOnce(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: ClientFixtures.schema) { api in
            let proxy = try await DroppingProxy(upstream: try #require(api.port), dropPosts: 1)
            defer { proxy.stop() }
            let client = makeClient(api, port: proxy.port, apiKey: api.adminKey)
            let posts = client.collection("posts", as: Post.self)
            let created = try await posts.create(Post(title: "exactly once"))
            #expect(try await proxy.cutAll() == 0, "no answer was dropped: the test proves nothing")
            let stored = try await api.get(
                "/v1/posts?filter=" + "title = 'exactly once'".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            )
            let items = stored["items"]?.arrayValue ?? []
            #expect(items.count == 1 && items.first?["id"]?.stringValue == created.id && created.version == 1)
        }
    }

    @Test(arguments: TestBackend.all)
    func realtimeResumesAfterADropWithoutLossOrRepeat(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: ClientFixtures.schema) { api in
            let proxy = try await DroppingProxy(upstream: try #require(api.port), dropPosts: 0)
            defer { proxy.stop() }
            let client = try await ClientFixtures.signedIn(api, "ada@example.com", port: proxy.port)
            let inbox = Inbox()
            let reader = Task {
                for try await event in client.realtime.subscribe(collections: ["posts"]) { await inbox.add(event) }
            }
            defer { reader.cancel() }
            // The subscription is live once a first event arrives: write until one does.
            var ids: [String] = []
            while await inbox.events.isEmpty {
                ids.append(try await api.create("posts", #"{"title":"before \#(ids.count)"}"#)["id"]!.stringValue!)
                _ = await inbox.wait(for: ids.count, within: .seconds(2))
            }
            // Writes before the one first delivered came before the subscription was live.
            let firstLive = try #require(await inbox.events.first?.subject)
            ids = Array(ids.drop { $0 != firstLive })
            #expect(!ids.isEmpty, "the first event delivered is of no write of this test")
            for n in 0..<2 { ids.append(try await api.create("posts", #"{"title":"more \#(n)"}"#)["id"]!.stringValue!) }
            _ = await inbox.wait(for: ids.count, within: .seconds(10))
            #expect(try await proxy.cutAll() == 0)
            // Written while the connection is down: delivered after the reconnect.
            for n in 0..<3 { ids.append(try await api.create("posts", #"{"title":"during \#(n)"}"#)["id"]!.stringValue!) }
            let received = await inbox.wait(for: ids.count, within: .seconds(15))
            #expect(received.map(\.subject) == ids)
            #expect(received.map(\.sequence) == received.map(\.sequence).sorted() && Set(received.map(\.id)).count == received.count)
            #expect(try received.last?.record(as: Post.self).title == "during 2")
            #expect(received.allSatisfy { $0.type == "basalt.record.created" && $0.collection == "posts" })

            // A session that ends (the user disabled) ends the subscription with a typed problem,
            // not with an endless reconnect.
            let me = try await client.auth.me()
            #expect(try await api.patch("/v1/admin/users/\(me.id)", #"{"disabled":true}"#).status == .ok)
            _ = try await api.create("posts", #"{"title":"after"}"#)
            let outcome = await withTaskGroup(of: Result<Void, any Error>?.self) { group in
                group.addTask { await reader.result }
                group.addTask {
                    try? await Task.sleep(for: .seconds(20))
                    return nil
                }
                let first = await group.next() ?? nil
                group.cancelAll()
                return first
            }
            guard case .failure(let error) = outcome else {
                Issue.record("the subscription did not end: \(String(describing: outcome))")
                return
            }
            #expect((error as? Problem)?.status == 401, "\(error)")
            #expect(try await client.auth.isSignedIn == false)
        }
    }

    @Test(arguments: TestBackend.all)
    func narrowedListsHiddenRecordsAndBadIds(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: ClientFixtures.schema) { api in
            let transport = CountingTransport()
            let client = try await ClientFixtures.signedIn(api, "ada@example.com", transport: transport)
            let posts = client.collection("posts", as: Post.self)
            _ = try await posts.create(Post(title: "full", body: "a body", views: 2))
            // `fields` narrows the response; the record still decodes (system fields come along).
            var narrowed: [Record<Post>] = []
            for try await p in posts.list(fields: ["title"]) { narrowed.append(p) }
            #expect(narrowed.count == 1 && narrowed[0].title == "full" && narrowed[0].body == nil && narrowed[0].version == 1)

            // Created but not viewable: the server answers the id only; `create` says so, `insert` returns it.
            struct Message: Codable, Sendable { var text: String }
            let inbox = client.collection("inbox", as: Message.self)
            let hidden = await #expect(throws: BasaltClientError.self) { try await inbox.create(Message(text: "hi")) }
            guard case .createdButNotViewable(let hiddenID)? = hidden else {
                Issue.record("\(String(describing: hidden))")
                return
            }
            let second = try await inbox.insert(Message(text: "again"))
            let stored = try await api.get("/v1/inbox?total=true")
            #expect(stored["total"]?.integerValue == 2)
            #expect(Set(stored["items"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []) == [hiddenID, second])

            // Ids are UUIDs and collection names are names: anything else never leaves the client.
            let sent = transport.count("")
            for bad in ["../admin/users", "1", "a/b", ""] {
                await #expect(throws: BasaltClientError.self) { try await posts.get(bad) }
            }
            await #expect(throws: BasaltClientError.self) { try await client.collection("../admin", as: Post.self).page() }
            #expect(transport.count("") == sent)
            // Upper case is the same id.
            let one = try #require(narrowed.first)
            #expect(try await posts.get(one.id.uppercased()).id == one.id)
        }
    }
}

/// Events as a subscription delivers them.
actor Inbox {
    var events: [RealtimeEvent] = []
    func add(_ e: RealtimeEvent) { events.append(e) }

    /// The events once there are `count` (or more), or those there are after `within`; a little
    /// longer in both cases, so that a repeated delivery would show.
    func wait(for count: Int, within: Duration) async -> [RealtimeEvent] {
        let deadline = ContinuousClock.now + within
        while events.count < count && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        try? await Task.sleep(for: .milliseconds(300))
        return events
    }
}
