// Crash safety and graceful shutdown of the real `basalt serve` process.

import BasaltTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What concurrent writers saw, shared between their threads.
final class WriteLog: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var acknowledged: [String: Int] = [:]  // id → n
    private(set) var unexpected: [String] = []  // wrong statuses, malformed responses
    private(set) var failedWithoutResponse = 0
    private(set) var unavailable = 0  // 503 problem responses while stopping

    func ack(_ id: String, n: Int) { lock.withLock { acknowledged[id] = n } }
    func bad(_ s: String) { lock.withLock { unexpected.append(s) } }
    func noResponse() { lock.withLock { failedWithoutResponse += 1 } }
    func wasUnavailable() { lock.withLock { unavailable += 1 } }
    var ackCount: Int { lock.withLock { acknowledged.count } }
    var snapshot: (acked: [String: Int], unexpected: [String], noResponse: Int, unavailable: Int) {
        lock.withLock { (acknowledged, unexpected, failedWithoutResponse, unavailable) }
    }
}

/// Set once the test has signalled the server; failures after it are expected.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

/// One writer: POSTs `events` records on fresh connections until `deadline` or until the server
/// stops answering after `stopped` was set. Blocking; run it with `onThread`.
func writeLoop(port: Int, key: String, writer: Int, deadline: Date, stopped: Flag, log: WriteLog) {
    var seq = 0
    while Date() < deadline {
        seq += 1
        let n = writer * 1_000_000 + seq
        let body = try! JSONSerialization.data(withJSONObject: ["n": n, "note": "writer \(writer) seq \(seq)"])
        do {
            let r = try HTTPClient.send(
                port: port,
                method: "POST",
                path: "/v1/events",
                headers: [("Authorization", "Bearer \(key)"), ("Content-Type", "application/json")],
                body: body,
                timeout: 10
            )
            if r.status == 201, let id = r.jsonObject?["id"] as? String, r.jsonObject?["n"] as? Int == n {
                log.ack(id, n: n)
            } else if r.status == 503, stopped.isSet, r.headers["content-type"]?.hasPrefix("application/problem+json") == true {
                log.wasUnavailable()
            } else {
                log.bad("writer \(writer) seq \(seq): \(r.status) \(r.text.prefix(300))")
                if stopped.isSet { return }
            }
        } catch let e as HTTPClient.Failure {
            if stopped.isSet && e.isNoResponse {
                log.noResponse()
                return
            }
            log.bad("writer \(writer) seq \(seq): \(e)\(stopped.isSet ? " (after the signal)" : "")")
            if stopped.isSet { return }
            Thread.sleep(forTimeInterval: 0.05)
        } catch {
            log.bad("writer \(writer) seq \(seq): \(error)")
            return
        }
    }
}

@Suite("basalt serve as a process: crashes and shutdown", .serialized)
struct DurabilityTests {
    @Test(
        "every write acknowledged with 201 survives SIGKILL of the server mid-write",
        .timeLimit(.minutes(2))
    )
    func acknowledgedWritesSurviveSIGKILL() async throws {
        let dir = try TempDir("basalt-crash")
        defer { dir.remove() }
        let data = dir.path("data")
        let schema = try dir.write("schema.yaml", Schemas.events)
        let key = try await createAdminKey(data: data, in: dir)

        let server = try await Server.start(data: data, in: dir, extra: ["--schema", schema])
        defer { server.forceKill() }

        let writers = 8
        let log = WriteLog()
        let killed = Flag()
        let started = Date()
        let deadline = started.addingTimeInterval(3)
        let port = server.port

        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<writers {
                group.addTask {
                    try await onThread { writeLoop(port: port, key: key, writer: w, deadline: deadline, stopped: killed, log: log) }
                }
            }
            // Kill mid-write: after ~1.5 s and once writes are flowing (bounded by the 3 s window).
            while Date() < started.addingTimeInterval(1.5) || (log.ackCount < 20 && Date() < deadline) {
                try await Task.sleep(for: .milliseconds(20))
            }
            killed.set()
            kill(server.child.pid, SIGKILL)
            try await group.waitForAll()
        }
        let t = await server.child.waitExit(timeout: 10)
        #expect(t == Termination(status: SIGKILL, bySignal: true), "the server should have died of SIGKILL")

        let seen = log.snapshot
        #expect(seen.unexpected.isEmpty, "unexpected responses before the kill: \(seen.unexpected.prefix(10))")
        #expect(seen.acked.count >= 20, "too few writes were acknowledged to make the test meaningful: \(seen.acked.count)")

        // Restart on the same data and read everything back.
        let again = try await Server.start(data: data, in: dir)
        defer { again.forceKill() }
        let stored = try await again.listAll("events", key: key)
        let storedIDs = stored.compactMap { $0["id"] as? String }
        let storedByID = Dictionary(stored.compactMap { r in (r["id"] as? String).map { ($0, r) } }, uniquingKeysWith: { a, _ in a })

        print(
            "crash test: \(seen.acked.count) writes acknowledged, \(seen.noResponse) unanswered after SIGKILL, \(storedIDs.count) stored after restart"
        )
        #expect(storedIDs.count == Set(storedIDs).count, "the paged listing returned duplicates")
        let missing = seen.acked.keys.filter { storedByID[$0] == nil }
        #expect(missing.isEmpty, "\(missing.count) of \(seen.acked.count) acknowledged records are gone after the crash, e.g. \(missing.prefix(5))")
        let wrong = seen.acked.filter { id, n in storedByID[id].map { ($0["n"] as? Int) != n } ?? false }
        #expect(wrong.isEmpty, "stored values differ from the acknowledged ones: \(wrong.prefix(5))")
        #expect(Set(storedIDs).count >= seen.acked.count, "fewer records stored (\(storedIDs.count)) than acknowledged (\(seen.acked.count))")
        // Each writer had at most one request in flight when the server died.
        #expect(
            Set(storedIDs).count <= seen.acked.count + writers,
            "more records stored (\(storedIDs.count)) than acknowledged (\(seen.acked.count)) plus one in-flight write per writer"
        )

        // The outbox was written in the same transactions: after the restart every stored record
        // has exactly its one `created` event, in a gap-free sequence (API.md §10).
        let events = try await onThread { try again.readEvents("?collections=events&after=0", key: key, count: storedIDs.count).events }
        #expect(events.count == storedIDs.count, "\(events.count) events for \(storedIDs.count) stored records")
        #expect(Set(events.map(\.subject)) == Set(storedIDs), "events and stored records differ")
        #expect(events.map(\.sequence) == (1...max(1, events.count)).map { String(format: "%020d", $0) }.prefix(events.count).map { $0 })

        // `total` agrees with the listing, and the reopened store takes writes.
        let totalPage = try await again.request("GET", "/v1/events?limit=1&total=true", key: key)
        #expect(totalPage.jsonObject?["total"] as? Int == storedIDs.count)
        let after = try await again.request("POST", "/v1/events", key: key, json: ["n": -1])
        #expect(after.status == 201, "write after restart: \(after.status) \(after.text)")
        _ = await again.stop()
    }

    @Test(
        "SIGTERM and SIGINT stop the server gracefully: exit 0, valid answers, reopenable data",
        .timeLimit(.minutes(2)),
        arguments: [SIGTERM, SIGINT]
    )
    func gracefulShutdown(signal: Int32) async throws {
        let name = signal == SIGTERM ? "SIGTERM" : "SIGINT"
        let dir = try TempDir("basalt-shutdown")
        defer { dir.remove() }
        let data = dir.path("data")
        let schema = try dir.write("schema.yaml", Schemas.events)
        let key = try await createAdminKey(data: data, in: dir)

        let server = try await Server.start(data: data, in: dir, extra: ["--schema", schema])
        defer { server.forceKill() }
        let port = server.port

        let log = WriteLog()
        let signalled = Flag()
        let started = Date()
        let writers = 5

        // A request in flight across the signal: headers and half the body before it, the
        // rest after it.
        let slowBody = try JSONSerialization.data(withJSONObject: ["n": 424242, "note": String(repeating: "x", count: 200)])
        let split = slowBody.count / 2

        let (termination, slowResult) = try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<writers {
                group.addTask {
                    try await onThread {
                        writeLoop(port: port, key: key, writer: w, deadline: started.addingTimeInterval(20), stopped: signalled, log: log)
                    }
                }
            }
            while Date() < started.addingTimeInterval(1) || (log.ackCount < 20 && Date() < started.addingTimeInterval(10)) {
                try await Task.sleep(for: .milliseconds(20))
            }
            let slow = try await onThread { () -> HTTPClient.Connection in
                let c = try HTTPClient.Connection(port: port, timeout: 15)
                try c.write(
                    HTTPClient.head(
                        method: "POST",
                        path: "/v1/events",
                        port: port,
                        headers: [("Authorization", "Bearer \(key)"), ("Content-Type", "application/json")],
                        bodyLength: slowBody.count
                    )
                )
                try c.write(slowBody.prefix(split))
                return c
            }
            try await Task.sleep(for: .milliseconds(300))  // let the server take the request in

            signalled.set()
            kill(server.child.pid, signal)

            try await Task.sleep(for: .milliseconds(300))
            let slowResult: Result<HTTPResponse, any Error> = await {
                do {
                    return .success(
                        try await onThread { () throws -> HTTPResponse in
                            defer { slow.close() }
                            try slow.write(slowBody.suffix(from: split))
                            return try slow.readResponse()
                        }
                    )
                } catch { return .failure(error) }
            }()
            let t = await server.child.waitExit(timeout: 15)
            try await group.waitForAll()
            return (t, slowResult)
        }

        #expect(termination != nil, "\(name): the server did not exit within 15 s")
        #expect(
            termination?.isSuccess == true,
            "\(name): exit status should be 0, was \(termination.map(\.description) ?? "still running")\n\(server.child.diagnostics)"
        )

        let seen = log.snapshot
        #expect(seen.unexpected.isEmpty, "\(name): invalid or unexpected responses: \(seen.unexpected.prefix(10))")
        #expect(seen.acked.count >= 20, "\(name): too few writes acknowledged: \(seen.acked.count)")

        print("\(name): \(seen.acked.count) writes acknowledged, \(seen.unavailable) answered 503, \(seen.noResponse) unanswered after the signal")
        var slowID: String?
        switch slowResult {
        case .success(let r):
            #expect(r.status == 201, "\(name): the request in flight at the signal got \(r.status) \(r.text.prefix(300))")
            slowID = r.jsonObject?["id"] as? String
        case .failure(let e):
            Issue.record("\(name): the request in flight at the signal got no response: \(e)")
        }

        // Standard output is JSON log lines, one object per line.
        let lines = server.child.stdout.split(separator: "\n").filter { !$0.isEmpty }
        #expect(!lines.isEmpty)
        let notJSON = lines.filter { line in
            guard let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else { return true }
            return o["level"] == nil || o["msg"] == nil || o["ts"] == nil
        }
        #expect(notJSON.isEmpty, "\(name): stdout lines that are not JSON log objects: \(notJSON.prefix(5))")

        // The data folder reopens and holds every acknowledged record.
        let again = try await Server.start(data: data, in: dir)
        defer { again.forceKill() }
        let stored = Set(try await again.listAll("events", key: key).compactMap { $0["id"] as? String })
        let missing = seen.acked.keys.filter { !stored.contains($0) }
        #expect(missing.isEmpty, "\(name): \(missing.count) acknowledged records missing after restart")
        if let slowID { #expect(stored.contains(slowID), "\(name): the in-flight request's record is missing") }
        let stop = await again.stop()
        #expect(stop?.isSuccess == true, "\(name): second server: \(stop.map(\.description) ?? "did not stop")")
    }

    @Test(
        "SIGTERM ends the server within 15 s even while a client stalls in the middle of a request",
        .timeLimit(.minutes(1))
    )
    func shutdownWithStalledClient() async throws {
        let dir = try TempDir("basalt-stalled")
        defer { dir.remove() }
        let data = dir.path("data")
        let schema = try dir.write("schema.yaml", Schemas.events)
        let key = try await createAdminKey(data: data, in: dir)
        let server = try await Server.start(data: data, in: dir, extra: ["--schema", schema])
        defer { server.forceKill() }
        let port = server.port

        // Headers and part of a 100-byte body, then nothing.
        let stalled = try await onThread { () -> HTTPClient.Connection in
            let c = try HTTPClient.Connection(port: port, timeout: 30)
            try c.write(
                HTTPClient.head(
                    method: "POST",
                    path: "/v1/events",
                    port: port,
                    headers: [("Authorization", "Bearer \(key)"), ("Content-Type", "application/json")],
                    bodyLength: 100
                )
            )
            try c.write(Data("{\"n\":".utf8))
            return c
        }
        defer { stalled.close() }
        try await Task.sleep(for: .milliseconds(300))

        kill(server.child.pid, SIGTERM)
        let t = await server.child.waitExit(timeout: 15)
        #expect(t != nil, "the server was still running 15 s after SIGTERM, held open by one stalled client")
        if let t { #expect(t.isSuccess, "exit after SIGTERM with a stalled client: \(t)") }
    }
}
