// Events between real `basalt serve` processes sharing one PostgreSQL (API.md §10).

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("Events across processes", .serialized)
struct EventProcessTests {
    @Test(
        "a write on one process reaches a subscriber on another within a second (LISTEN/NOTIFY); a SIGKILL after the commit loses no event",
        .timeLimit(.minutes(3))
    )
    func twoProcessesOnOnePostgreSQL() async throws {
        let dir = try TempDir("basalt-events-pg")
        defer { dir.remove() }
        let pg = try await PrivatePostgres.create(in: dir)
        do {
            try await acrossProcesses(pg, dir)
        } catch {
            try? await pg.stop()
            throw error
        }
        try? await pg.stop()
    }

    func acrossProcesses(_ pg: PrivatePostgres, _ dir: TempDir) async throws {
        let schema = try dir.write("schema.yaml", Schemas.events)
        let created = try await basalt(["admin", "key", "create", "--name", "events", "--database", pg.url], in: dir)
        guard created.succeeded else { throw ProcessTestError("admin key create failed: \(created)") }
        let key = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let writer = try await Server.launch(in: dir) { port in ["serve", "--http", "127.0.0.1:\(port)", "--database", pg.url, "--schema", schema] }
        defer { writer.forceKill() }
        // The reader polls once a minute: only LISTEN/NOTIFY can bring it the writer's events in time.
        let reader = try await Server.launch(in: dir, env: { _ in ["BASALT_EVENT_POLL_MS": "60000"] }) { port in
            ["serve", "--http", "127.0.0.1:\(port)", "--database", pg.url]
        }
        defer { reader.forceKill() }
        do {
            try await exchange(writer: writer, reader: reader, key: key)
        } catch {
            print("writer:\n\(writer.child.diagnostics)\nreader:\n\(reader.child.diagnostics)")
            throw error
        }
    }

    func exchange(writer: Server, reader: Server, key: String) async throws {

        // A live subscriber on `reader` (no resume point: only what commits from now on).
        let live = Task { try await onThread { try reader.readEvents("?collections=events", key: key, count: 20, timeout: 30) } }
        try await Task.sleep(for: .milliseconds(500))
        var ids: [String] = []
        var lastAck = Date()
        for n in 0..<20 {
            let r = try await writer.request("POST", "/v1/events", key: key, json: ["n": n])
            #expect(r.status == 201)
            ids.append(r.jsonObject?["id"] as? String ?? "")
            lastAck = Date()
        }
        let (events, arrived) = try await live.value
        let lag = arrived.timeIntervalSince(lastAck)
        print("events across processes: 20 writes on one process seen on the other \(String(format: "%.3f", lag)) s after the last write's answer")
        #expect(events.map(\.subject) == ids)
        #expect(lag < 1.0, "the last event arrived \(lag) s after its write was answered")

        // A write answered, then the writer dies at once: the event was committed with it.
        let last = try #require(events.last?.sequence)
        let r = try await writer.request("POST", "/v1/events", key: key, json: ["n": 99])
        kill(writer.child.pid, SIGKILL)
        let id = try #require(r.jsonObject?["id"] as? String)
        let resumed = try await onThread { try reader.readEvents("?collections=events&after=\(last)", key: key, count: 1).events }
        #expect(resumed.map(\.subject) == [id])
    }
}
