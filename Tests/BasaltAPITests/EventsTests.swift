import Basalt
import BasaltCore
import BasaltHTTP
import BasaltServices
import BasaltStorage
import BasaltTesting
import Foundation
import HTTPTypes
import Testing

/// API.md §10: the outbox and `GET /v1/realtime` (Server-Sent Events), on both backends.
@Suite("Events: outbox and realtime")
struct EventsTests {
    static func subscribe(
        _ api: APIClient,
        _ query: String = "",
        auth: APIClient.Auth = .admin,
        headers: [String: String] = [:]
    ) async throws -> SSEClient {
        var h = headers
        switch auth {
        case .admin: h["Authorization"] = "Bearer \(api.adminKey)"
        case .bearer(let t): h["Authorization"] = "Bearer \(t)"
        case .none: break
        }
        let port = try #require(api.port)
        return try await SSEClient.open(port: port, path: "/v1/realtime" + query, headers: h)
    }

    /// The CloudEvent of a frame.
    static func event(_ f: SSEClient.Frame) throws -> JSONValue { try JSONValue.parse(f.data) }

    static func outboxCount(_ api: APIClient) async throws -> Int {
        let rows = try await api.runtime.store.fetch(SQLQuery(sql: #"SELECT count(*) FROM "_basalt_events""#), types: [.int])
        return Int(rows.first?.first?.int ?? -1)
    }

    @Test(arguments: TestBackend.all)
    func oneEventPerCommittedWriteInOrder(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let sse = try await Self.subscribe(api)
            defer { sse.close() }
            #expect(sse.status == 200 && sse.headers["content-type"] == "text/event-stream")
            let author = try await api.create("authors", #"{"name":"Ada"}"#)
            let aid = try #require(author["id"]?.stringValue)
            let editor = try #require(try await api.create("authors", #"{"name":"Ed"}"#)["id"]?.stringValue)
            let post = try await api.create(
                "posts",
                #"{"title":"t","author":"\#(aid)","editor":"\#(editor)","meta":{"k":[1,true,null]},"featured":true}"#
            )
            let pid = try #require(post["id"]?.stringValue)
            let patched = try await api.patch("/v1/posts/\(pid)", #"{"views":7}"#)
            #expect(patched.status == .ok)
            // Failed writes and a rolled-back batch emit nothing.
            #expect(try await api.post("/v1/posts", #"{"title":""}"#).status == .unprocessableContent)
            let batch = try await api.post(
                "/v1/batch",
                #"{"operations":[{"method":"POST","path":"/v1/authors","body":{"name":"kept?"}},{"method":"POST","path":"/v1/authors","body":{}}]}"#
            )
            #expect(batch.status == .unprocessableContent)
            #expect(try await api.delete("/v1/posts/\(pid)", headers: ["If-Match": "\"1\""]).status == .preconditionFailed)
            // set_null: the post is updated; then the cascade deletes it with its author.
            #expect(try await api.delete("/v1/authors/\(editor)").status == .noContent)
            #expect(try await api.delete("/v1/authors/\(aid)").status == .noContent)

            let frames = await sse.next(8)
            let events = try frames.map(Self.event)
            let summary = events.map { "\($0["type"]?.stringValue ?? "")/\($0["subject"]?.stringValue ?? "")" }
            #expect(
                summary.prefix(6) == [
                    "basalt.record.created/\(aid)", "basalt.record.created/\(editor)", "basalt.record.created/\(pid)",
                    "basalt.record.updated/\(pid)", "basalt.record.updated/\(pid)", "basalt.record.deleted/\(editor)",
                ]
            )
            // One transaction deletes the author and, by cascade, its post: one event each (the
            // database decides which row goes first).
            #expect(Set(summary.dropFirst(6)) == ["basalt.record.deleted/\(pid)", "basalt.record.deleted/\(aid)"])
            // Sequences: 20 digits, gap-free, the SSE id.
            let sequences = events.compactMap { $0["sequence"]?.stringValue }
            #expect(sequences == (1...8).map { String(format: "%020d", $0) })
            #expect(frames.map(\.id) == sequences)
            #expect(frames.map(\.event) == events.map { $0["type"]?.stringValue })
            // CloudEvents attributes and the record as the API renders it.
            let created = try #require(events.dropFirst(2).first)
            #expect(created["specversion"] == "1.0" && created["source"] == "/v1/posts" && created["datacontenttype"] == "application/json")
            #expect(created["id"]?.stringValue.flatMap(UUID.init(uuidString:)) != nil)
            #expect(created["time"]?.stringValue.flatMap(Timestamp.init(rfc3339:)) != nil)
            #expect(created["data"] == post)
            #expect(events[3]["data"] == patched.json)
            // The set_null update: editor cleared, version bumped; the delete carries the record as it was.
            #expect(events[4]["data"]?["editor"] == .null && events[4]["data"]?["version"] == .int(3))
            let deletedPost = try #require(events.dropFirst(6).first { $0["subject"]?.stringValue == pid })
            #expect(deletedPost["data"]?["views"] == .int(7) && deletedPost["data"]?["meta"] == post["meta"])
            #expect(events.dropFirst(6).first { $0["subject"]?.stringValue == aid }?["data"] == author)
            #expect(Set(events.compactMap { $0["id"]?.stringValue }).count == 8)
            #expect(try await Self.outboxCount(api) == 8)
        }
    }

    @Test(arguments: TestBackend.all)
    func resumeUnderConcurrentWritesLosesAndRepeatsNothing(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let first = try await Self.subscribe(api, "?collections=authors")
            let writers = Task {
                try await withThrowingTaskGroup(of: [String].self) { group in
                    for w in 0..<4 {
                        group.addTask {
                            var ids: [String] = []
                            for i in 0..<30 {
                                let r = try await api.create("authors", #"{"name":"w\#(w)-\#(i)"}"#)
                                ids.append(r["id"]?.stringValue ?? "")
                            }
                            return ids
                        }
                    }
                    return try await group.reduce(into: []) { $0 += $1 }
                }
            }
            let before = await first.next(25, timeout: .seconds(30))
            first.close()
            let last = try #require(before.last?.id)
            // Reconnect while the writers go on.
            let second = try await Self.subscribe(api, "?collections=authors", headers: ["Last-Event-ID": last])
            defer { second.close() }
            let ids = try await writers.value
            let after = await second.next(120 - before.count, timeout: .seconds(30))
            let all = try (before + after).map(Self.event)
            #expect(all.count == 120)
            #expect(Set(all.compactMap { $0["subject"]?.stringValue }) == Set(ids))
            #expect(all.compactMap { $0["sequence"]?.stringValue } == (1...120).map { String(format: "%020d", $0) })
            // `after` is the same resume point as a query parameter.
            let third = try await Self.subscribe(api, "?collections=authors&after=00000000000000000118")
            defer { third.close() }
            #expect(await third.next(2).compactMap(\.id) == ["00000000000000000119", "00000000000000000120"])
        }
    }

    @Test(arguments: TestBackend.all)
    func subscribersSeeOnlyWhatTheirGrantsShow(_ backend: TestBackend) async throws {
        // The identity fixture and a collection only viewers may read.
        let memos = """
              memos:
                fields:
                  text: {type: text}
                access:
                  list: [{roles: [viewer]}]
                  view: [{roles: [viewer]}]
            roles:
            """
        let schema = IdentityFixtures.schema.replacingOccurrences(of: "roles:\n  editor", with: memos + "\n  editor")
        #expect(schema.contains("memos:"))
        try await backend.withApp(schema: schema) { api in
            let ada = try await api.signUp("ada@example.com", profile: #""team":"red""#)
            let bob = try await api.signUp("bob@example.com", profile: #""team":"red""#)
            let adaStream = try await Self.subscribe(api, "", auth: ada.auth)
            defer { adaStream.close() }
            let bobNote = try await api.post("/v1/notes", #"{"title":"bob's","owner":"\#(bob.id)"}"#, auth: bob.auth)
            #expect(bobNote.status == .created)
            let adaNote = try await api.post("/v1/notes", #"{"title":"ada's","owner":"\#(ada.id)"}"#, auth: ada.auth)
            let memo1 = try await api.create("memos", #"{"text":"before the role"}"#)
            // Ada sees her own note only (not Bob's, not the memo: no viewer role yet).
            let seen = try await adaStream.next(1).map(Self.event)
            #expect(seen.map { $0["subject"] } == [adaNote["id"]])
            // Her roles change: the stream judges with the new ones within a few seconds.
            #expect(try await api.patch("/v1/admin/users/\(ada.id)", #"{"roles":["viewer"]}"#).status == .ok)
            try await Task.sleep(for: .seconds(3))
            let memo2 = try await api.create("memos", #"{"text":"after the role"}"#)
            let bobRed = try await api.post("/v1/notes", #"{"title":"red","owner":"\#(bob.id)","team":"red"}"#, auth: bob.auth)
            let later = try await adaStream.next(2).map(Self.event)
            #expect(later.map { $0["subject"] } == [memo2["id"], bobRed["id"]])
            #expect(memo1["id"] != memo2["id"])
            // Disabled: the stream ends with a problem (her session ended with it).
            #expect(try await api.patch("/v1/admin/users/\(ada.id)", #"{"disabled":true}"#).status == .ok)
            let end = await adaStream.next(1, timeout: .seconds(10))
            #expect(end.first?.event == "error")
            #expect(try end.first.map(Self.event)?["status"] == .int(401))
        }
    }

    @Test(arguments: TestBackend.all)
    func filterAndRefusals(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            // Anonymous: published posts only (the view rule), and of those the filter's.
            let sse = try await Self.subscribe(
                api,
                "?collections=posts&filter=" + "views > 5".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!,
                auth: .none
            )
            defer { sse.close() }
            _ = try await api.create("posts", #"{"title":"draft","views":9}"#)
            _ = try await api.create("posts", #"{"title":"few","views":1,"status":"published"}"#)
            let hit = try await api.create("posts", #"{"title":"many","views":9,"status":"published"}"#)
            #expect(try await sse.next(1).map(Self.event).map { $0["subject"] } == [hit["id"]])

            func status(_ query: String, auth: APIClient.Auth = .admin, headers: [String: String] = [:]) async throws -> (Int, String?) {
                let c = try await Self.subscribe(api, query, auth: auth, headers: headers)
                defer { c.close() }
                return (c.status, (try? JSONValue.parse(c.body))?["type"]?.stringValue)
            }
            #expect(try await status("?collections=nope") == (404, "/problems/not-found"))
            #expect(try await status("?collections=comments", auth: .none) == (401, "/problems/unauthenticated"))
            #expect(try await status("?collections=posts,authors&filter=views%3E1") == (400, "/problems/bad-request"))
            #expect(try await status("?filter=views%3E1") == (400, "/problems/bad-request"))
            #expect(try await status("?collections=posts&filter=nope%3D1").0 == 400)
            #expect(try await status("", headers: ["Last-Event-ID": "12x"]) == (400, "/problems/bad-request"))
            #expect(try await status("?after=-1") == (400, "/problems/bad-request"))
            // A resume point older than what is retained is a clear 410, never a silent gap.
            for i in 0..<3 { _ = try await api.create("authors", #"{"name":"a\#(i)"}"#) }
            // Retention never drops what the webhook dispatcher has not passed; with no webhook it
            // passes everything (housekeeping does this every minute).
            try await api.runtime.webhooks.skipIdle()
            try await api.runtime.events.log.prune(olderThan: Timestamp(millisecondsSinceEpoch: Timestamp.now().millisecondsSinceEpoch + 1000))
            #expect(try await Self.outboxCount(api) == 1)  // the newest stays
            #expect(try await status("?after=1") == (410, "/problems/gone"))
            #expect(try await status("?after=5").0 == 200)
        }
    }

    @Test(arguments: TestBackend.all)
    func idleStreamsPing(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let sse = try await Self.subscribe(api)
            defer { sse.close() }
            var pinged = false
            let deadline = ContinuousClock.now + .seconds(25)
            for await f in sse.frames {
                if f.comments.contains("ping") {
                    pinged = true
                    break
                }
                if ContinuousClock.now > deadline { break }
            }
            #expect(pinged)
        }
    }

    @Test(arguments: TestBackend.all)
    func browserTicketsAreSingleUseAndShortLived(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: IdentityFixtures.schema) { api in
            let ada = try await api.signUp("ada@example.com")
            #expect(try await api.post("/v1/realtime/tickets", "{}", auth: .none).status == .unauthorized)
            let issued = try await api.post("/v1/realtime/tickets", "{}", auth: ada.auth)
            #expect(issued.status == .created && issued["expires_in"] == .int(60) && issued.header("Cache-Control") == "no-store")
            let ticket = try #require(issued["ticket"]?.stringValue)
            // No Authorization header: the ticket is Ada's credential, so she sees her own notes.
            let sse = try await Self.subscribe(api, "?collections=notes&ticket=\(ticket)", auth: .none)
            defer { sse.close() }
            #expect(sse.status == 200)
            let note = try await api.post("/v1/notes", #"{"title":"mine","owner":"\#(ada.id)"}"#, auth: ada.auth)
            #expect(try await sse.next(1).map(Self.event).map { $0["subject"] } == [note["id"]])
            // Single use; unknown tickets are refused alike.
            for t in [ticket, "rtt_forged", "nope"] {
                let again = try await Self.subscribe(api, "?ticket=\(t)", auth: .none)
                #expect(again.status == 401, "ticket \(t)")
                again.close()
            }
            // 60 seconds.
            let tickets = RealtimeTickets(store: api.runtime.store, secrets: api.runtime.auth.secrets)
            let late = try await tickets.issue(credential: "Bearer \(ada.accessToken)")
            await #expect(throws: BasaltError.self) {
                try await tickets.redeem(late, now: Timestamp(millisecondsSinceEpoch: Timestamp.now().millisecondsSinceEpoch + 61_000))
            }
            #expect(try await tickets.redeem(late) == "Bearer \(ada.accessToken)")
        }
    }

    static func webSocket(_ api: APIClient, _ query: String = "", key: String?) async throws -> WSTestClient {
        try await WSTestClient.open(
            port: try #require(api.port),
            path: "/v1/realtime" + query,
            headers: key.map { ["Authorization": "Bearer \($0)"] } ?? [:]
        )
    }

    /// The status of the problem a refused WebSocket caller is sent before the server closes
    /// (1008). Read from the raw bytes: the server speaks first, right after `101`, and the test
    /// WebSocket client can lose frames that arrive together with the `101` (seen under load).
    static func refused(_ api: APIClient, _ query: String, key: String?) async throws -> Int? {
        var request =
            "GET /v1/realtime\(query) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        if let key { request += "Authorization: Bearer \(key)\r\n" }
        let bytes = try await RawHTTP.exchangeBytes(port: try #require(api.port), Array((request + "\r\n").utf8), timeout: 5)
        guard let headEnd = bytes.firstRange(of: Array("\r\n\r\n".utf8)) else { return nil }
        #expect(String(decoding: bytes[..<headEnd.lowerBound], as: UTF8.self).hasPrefix("HTTP/1.1 101"))
        // Server frames are unmasked: FIN+text, a 7- or 16-bit length, the payload; then FIN+close with 1008.
        var i = headEnd.upperBound
        guard i + 2 <= bytes.count, bytes[i] == 0x81 else { return nil }
        var length = Int(bytes[i + 1] & 0x7F)
        i += 2
        if length == 126 {
            guard i + 2 <= bytes.count else { return nil }
            length = Int(bytes[i]) << 8 | Int(bytes[i + 1])
            i += 2
        }
        guard i + length <= bytes.count else { return nil }
        let told = try JSONValue.parse(String(decoding: bytes[i..<(i + length)], as: UTF8.self))
        i += length
        #expect(i + 4 <= bytes.count && bytes[i] == 0x88 && bytes[i + 2] == 0x03 && bytes[i + 3] == 0xF0, "closed with 1008")
        guard told["type"] == "error" else { return nil }
        return told["problem"]?["status"]?.integerValue.map { Int($0) }
    }

    /// A socket that never subscribes is told so and closed; handshakes draw on the same rate
    /// limit as requests.
    @Test(arguments: TestBackend.all)
    func webSocketIdleAndRateLimited(_ backend: TestBackend) async throws {
        try await backend.withApp(
            schema: Fixtures.blog,
            configure: {
                $0.http.webSocketSubscribeWithin = .seconds(1)
                $0.http.anonymousPerMinute = 3
            }
        ) { (api: APIClient) async throws in
            #expect(try await Self.refused(api, "", key: nil) == 400, "an idle socket is closed with an error")
            #expect(try await api.get("/v1/posts", auth: .none).status == .ok)
            #expect(try await api.get("/v1/posts", auth: .none).status == .ok)
            // The quota (3 a minute) is spent: the next handshake is refused in-band with 429.
            #expect(try await Self.refused(api, "", key: nil) == 429)
            #expect(try await api.get("/v1/posts", auth: .none).status == .tooManyRequests)
            // An admin is not limited: admitted, then closed for not subscribing (400, not 429).
            #expect(try await Self.refused(api, "", key: api.adminKey) == 400)
        }
    }

    @Test(arguments: TestBackend.all)
    func webSocketSubscriptions(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: Fixtures.blog) { api in
            let ws = try await Self.webSocket(api, key: api.adminKey)
            // Anything but a valid subscribe is answered with a problem, and the connection stays.
            ws.send("hello")
            ws.send(#"{"type":"subscribe","collections":["nope"]}"#)
            ws.send(#"{"type":"subscribe","collections":["authors"],"after":"x1"}"#)
            ws.send(#"{"type":"subscribe","collections":["authors"]}"#)
            let opening = await ws.next(4)
            #expect(opening.map { $0["problem"]?["status"] } == [.int(400), .int(404), .int(400), nil])
            #expect(opening.map { $0["type"]?.stringValue } == ["error", "error", "error", "subscribed"])
            #expect(opening.first?["problem"]?["type"] == "/problems/bad-request")
            let ada = try await api.create("authors", #"{"name":"Ada"}"#)
            _ = try await api.create("posts", #"{"title":"not subscribed"}"#)
            let bob = try await api.create("authors", #"{"name":"Bob"}"#)
            let events = await ws.next(2)
            #expect(events.map { $0["type"]?.stringValue } == ["event", "event"])
            #expect(events.map { $0["event"]?["subject"] } == [ada["id"], bob["id"]])
            #expect(events.first?["event"]?["data"] == ada && events.first?["event"]?["type"] == "basalt.record.created")
            // One subscription per connection.
            ws.send(#"{"type":"subscribe","collections":["posts"]}"#)
            #expect(await ws.next(1).first?["problem"]?["status"] == .int(409))
            #expect(await ws.close(), "the server answered the close handshake")

            // Resume after the first event: the second arrives again, then what comes next.
            let first = try #require(events.first?["event"]?["sequence"]?.stringValue)
            let again = try await Self.webSocket(api, key: api.adminKey)
            again.send(#"{"type":"subscribe","collections":["authors"],"after":"\#(first)"}"#)
            let cy = try await api.create("authors", #"{"name":"Cy"}"#)
            let resumed = await again.next(3)
            #expect(resumed.map { $0["type"]?.stringValue } == ["subscribed", "event", "event"])
            #expect(resumed.dropFirst().map { $0["event"]?["subject"] } == [bob["id"], cy["id"]])
            #expect(await again.close(), "the server answered the close handshake")

            // Anonymous: the view rule (published posts only) and the filter both apply.
            let anonymous = try await Self.webSocket(api, key: nil)
            anonymous.send(#"{"type":"subscribe","collections":["posts"],"filter":"views > 5"}"#)
            _ = try await api.create("posts", #"{"title":"draft","views":9}"#)
            _ = try await api.create("posts", #"{"title":"few","views":1,"status":"published"}"#)
            let hit = try await api.create("posts", #"{"title":"many","views":9,"status":"published"}"#)
            let seen = await anonymous.next(2)
            #expect(seen.map { $0["type"]?.stringValue } == ["subscribed", "event"])
            #expect(seen.last?["event"]?["subject"] == hit["id"])
            #expect(await anonymous.close(), "the server answered the close handshake")
            // A collection the caller may not list: 401 for the anonymous, as over HTTP.
            let stranger = try await Self.webSocket(api, key: nil)
            stranger.send(#"{"type":"subscribe","collections":["comments"]}"#)
            #expect(await stranger.next(1).first?["problem"]?["status"] == .int(401))
            #expect(await stranger.close(), "the server answered the close handshake")

            // A credential that does not hold: told in-band (a browser cannot read a refused
            // handshake's status), then the server closes.
            for (query, key) in [("", "bsk_forged"), ("?ticket=rtt_forged", nil)] {
                #expect(try await Self.refused(api, query, key: key) == 401, "\(query) \(key ?? "")")
            }
        }
    }

    @Test(arguments: TestBackend.all)
    func webSocketTicketsAndRoleChanges(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: IdentityFixtures.schema) { api in
            let ada = try await api.signUp("ada@example.com")
            let ticket = try #require(try await api.post("/v1/realtime/tickets", "{}", auth: ada.auth)["ticket"]?.stringValue)
            let ws = try await WSTestClient.open(port: try #require(api.port), path: "/v1/realtime?ticket=\(ticket)")
            ws.send(#"{"type":"subscribe","collections":["notes"]}"#)
            #expect(await ws.next(1).first?["type"] == "subscribed")
            let note = try await api.post("/v1/notes", #"{"title":"mine","owner":"\#(ada.id)"}"#, auth: ada.auth)
            #expect(await ws.next(1).first?["event"]?["subject"] == note["id"])
            // The ticket was single use.
            #expect(try await Self.refused(api, "?ticket=\(ticket)", key: nil) == 401)
            // Disabled: the subscription ends with a problem, then the server closes.
            #expect(try await api.patch("/v1/admin/users/\(ada.id)", #"{"disabled":true}"#).status == .ok)
            let end = await ws.next(2, timeout: .seconds(10))
            #expect(end.first?["type"] == "error" && end.first?["problem"]?["status"] == .int(401))
            #expect(end.count == 1)  // and then the connection ended
            #expect(await ws.close(), "the server answered the close handshake")
        }
    }
}
