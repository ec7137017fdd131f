import Basalt
import BasaltCore
import BasaltServices
import BasaltStorage
import BasaltTesting
import Foundation
import HTTPTypes
import Synchronization
import Testing

/// API.md §10 webhooks and §12 jobs, on both backends, against a receiver that verifies with the
/// `standardwebhooks` package and parses with the `cloudevents` SDK.
@Suite("Webhooks and the job queue")
struct WebhookTests {
    static func receiver(failFirst: Int = 0) async throws -> WebhookReceiver? {
        let ok = (try? await Subprocess.run(["python3", "-c", "import standardwebhooks, cloudevents"]))?.succeeded ?? false
        if !ok {
            try #require(ProcessInfo.processInfo.environment["CI"] == nil, "pip install standardwebhooks cloudevents")
            return nil
        }
        return try await WebhookReceiver.start(failFirst: failFirst)
    }

    static func int(_ v: JSONValue?) -> Int64? {
        if case .int(let i)? = v { return i }
        return nil
    }

    static func deliveries(_ api: APIClient, _ hook: String) async throws -> [JSONValue] {
        try await api.get("/v1/admin/webhooks/\(hook)/deliveries?limit=200")["items"]?.arrayValue ?? []
    }

    @Test(arguments: TestBackend.all)
    func signedCloudEventsInOrderPerRecordRetriedWithTheSameID(_ backend: TestBackend) async throws {
        guard let receiver = try await Self.receiver(failFirst: 1) else { return }
        defer { receiver.stop() }
        try await backend.withApp(schema: Fixtures.blog, configure: { $0.allowPrivateWebhooks = true }) { api in
            let created = try await api.post(
                "/v1/admin/webhooks",
                #"{"url":"http://127.0.0.1:\#(receiver.port)/hook","collections":["authors"]}"#
            )
            #expect(created.status == .created)
            let hook = try #require(created["id"]?.stringValue)
            #expect(created.headers[.location] == "/v1/admin/webhooks/\(hook)")
            let secret = try #require(created["secret"]?.stringValue)
            #expect(secret.hasPrefix("whsec_") && Data(base64Encoded: String(secret.dropFirst(6)))?.count == 24)
            #expect(created["events"] == .array([]) && created["enabled"] == .bool(true))
            try receiver.setSecret(secret)
            // The secret is shown once.
            let shown = try await api.get("/v1/admin/webhooks/\(hook)")
            #expect(shown.status == .ok && shown["secret"] == nil && shown["url"]?.stringValue?.hasSuffix("/hook") == true)
            #expect(try await api.get("/v1/admin/webhooks")["items"]?.arrayValue?.count == 1)

            // Three changes of one author; a post is another collection (not selected).
            let ada = try #require(try await api.create("authors", #"{"name":"Ada"}"#)["id"]?.stringValue)
            #expect(try await api.patch("/v1/authors/\(ada)", #"{"name":"Ada L."}"#).status == .ok)
            _ = try await api.create("posts", #"{"title":"not delivered"}"#)
            #expect(try await api.delete("/v1/authors/\(ada)").status == .noContent)

            // The first attempt gets a 500; its retry (5 s later) carries the same webhook-id, and the
            // record's later events wait behind it.
            let reports = try await receiver.waitFor(4, timeout: .seconds(30))
            try #require(reports.count == 4, "got \(reports.count) deliveries")
            #expect(reports.allSatisfy { $0["verified"] as? Bool == true }, "\(reports)")
            let ids = reports.map { $0["webhook_id"] as? String ?? "" }
            #expect(ids[0] == ids[1] && Set(ids).count == 3)
            #expect(reports.map { $0["status"] as? Int } == [500, 204, 204, 204])
            let events = reports.dropFirst().map { $0["event"] as? [String: Any] ?? [:] }
            #expect(events.map { $0["type"] as? String } == ["basalt.record.created", "basalt.record.updated", "basalt.record.deleted"])
            #expect(events.allSatisfy { $0["source"] as? String == "/v1/authors" && $0["subject"] as? String == ada })
            #expect(events.allSatisfy { $0["specversion"] as? String == "1.0" && $0["id"] as? String != nil })
            #expect(events.map { ($0["data"] as? [String: Any])?["name"] as? String } == ["Ada", "Ada L.", "Ada L."])
            let sequences = events.compactMap { $0["sequence"] as? String }
            #expect(sequences.count == 3 && sequences == sequences.sorted() && sequences.allSatisfy { $0.count == 20 })

            // The delivery log: each delivery's attempts with status codes and durations.
            var log: [JSONValue] = []
            for _ in 0..<50 {
                log = try await Self.deliveries(api, hook)
                if log.count == 3 && log.allSatisfy({ $0["state"] == .string("succeeded") }) { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(log.count == 3 && log.allSatisfy { $0["state"] == .string("succeeded") && $0["webhook_id"] == .string(hook) })
            let first = try #require(log.first { $0["event_id"]?.stringValue == ids[0] })
            #expect(first["event_type"] == .string("basalt.record.created"))
            let attempts = first["log"]?.arrayValue ?? []
            #expect(attempts.map { $0["status"] } == [.int(500), .int(204)])
            let durations = attempts.map { Self.int($0["duration_ms"]) ?? -1 }
            #expect(durations.count == 2 && durations.allSatisfy { $0 >= 0 })
            #expect(attempts.first?["error"] == .string("HTTP 500"))

            // A manual retry sends it again, same id; a test delivery is signed like the rest.
            let deliveryID = try #require(first["id"]?.stringValue)
            let retried = try await api.post("/v1/admin/webhooks/\(hook)/deliveries/\(deliveryID)/retry", "")
            #expect(retried.status == .accepted && retried["state"] == .string("pending"))
            #expect(try await api.post("/v1/admin/webhooks/\(hook)/deliveries/\(RecordID.make())/retry", "").status == .notFound)
            let test = try await api.post("/v1/admin/webhooks/\(hook)/test", "")
            #expect(test.status == .accepted && test["event_type"] == .string("basalt.webhook.test"))
            let more = try await receiver.waitFor(6)
            try #require(more.count == 6)
            #expect(more[4...].allSatisfy { $0["verified"] as? Bool == true })
            let later = Set(more[4...].map { $0["webhook_id"] as? String ?? "" })
            #expect(later.contains(ids[0]))
            #expect(more[4...].contains { ($0["event"] as? [String: Any])?["type"] as? String == "basalt.webhook.test" })

            // The job list narrows by kind and state; bad states are 400.
            let jobs = try await api.get("/v1/admin/jobs?kind=webhook&state=succeeded,pending,running&limit=2")
            #expect(jobs.status == .ok && jobs["items"]?.arrayValue?.count == 2 && jobs["next_cursor"]?.stringValue != nil)
            #expect(jobs.header("Link")?.contains("rel=\"next\"") == true)
            #expect(try await api.get("/v1/admin/jobs?state=bogus").status == .badRequest)
            #expect(try await api.get("/v1/admin/jobs?state=").status == .badRequest)
            #expect(try await api.get("/v1/admin/jobs", auth: .none).status == .unauthorized)
            #expect(try await api.get("/v1/admin/webhooks", auth: .none).status == .unauthorized)

            // Disabled, nothing more is delivered; deleted, it is gone.
            let off = try await api.patch("/v1/admin/webhooks/\(hook)", #"{"enabled":false}"#)
            #expect(off.status == .ok && off["enabled"] == .bool(false) && off["disabled_reason"]?.stringValue != nil)
            _ = try await api.create("authors", #"{"name":"Quiet"}"#)
            try await Task.sleep(for: .seconds(2))
            #expect(receiver.reports.count == 6)
            #expect(try await api.delete("/v1/admin/webhooks/\(hook)").status == .noContent)
            #expect(try await api.get("/v1/admin/webhooks/\(hook)").status == .notFound)
        }
    }

    @Test(arguments: TestBackend.all)
    func privateTargetsAreRefusedAtRegistrationAndAtDelivery(_ backend: TestBackend) async throws {
        guard let receiver = try await Self.receiver() else { return }
        defer { receiver.stop() }
        // A DNS server we play: `public.test` resolves to a public address at registration and to
        // loopback afterwards (rebinding); `loop.test` always to loopback.
        let rebound = Mutex(false)
        try await backend.withApp(
            schema: Fixtures.blog,
            configure: {
                $0.webhookResolver = { host in
                    switch host {
                    case "loop.test": return ["127.0.0.1"]
                    case "public.test": return rebound.withLock { $0 } ? ["93.184.216.34", "127.0.0.1"] : ["93.184.216.34"]
                    default: throw TestSetupError("no such host \(host)")
                    }
                }
            }
        ) { api in
            for url in [
                "http://127.0.0.1:\(receiver.port)/", "http://localhost/", "http://api.localhost/", "http://[::1]/",
                "http://169.254.169.254/latest/meta-data", "http://10.1.2.3/", "http://192.168.0.1/", "http://[::ffff:127.0.0.1]/",
                "http://[fd00::1]/", "http://0.0.0.0/", "http://loop.test/",
            ] {
                let r = try await api.post("/v1/admin/webhooks", #"{"url":"\#(url)"}"#)
                #expect(r.status == .unprocessableContent && r.fieldErrors.map(\.0) == ["/url"], "\(url)")
                #expect(r.fieldErrors.first?.1 == "forbidden_target", "\(url)")
            }
            let bad = try await api.post("/v1/admin/webhooks", #"{"url":"ftp://example.com/","events":["nope"],"collections":["nope"],"x":1}"#)
            #expect(bad.status == .unprocessableContent)
            #expect(Set(bad.fieldErrors.map(\.0)) == ["/url", "/events/0", "/collections/0", "/x"])
            #expect(try await api.post("/v1/admin/webhooks", "{}").fieldErrors.map(\.0) == ["/url"])
            #expect(try await api.get("/v1/admin/webhooks")["items"]?.arrayValue?.isEmpty == true)

            // Accepted while the name resolves to a public address; once it resolves to loopback,
            // the delivery fails without a request reaching the receiver listening there.
            let created = try await api.post("/v1/admin/webhooks", #"{"url":"http://public.test:\#(receiver.port)/hook"}"#)
            #expect(created.status == .created)
            let hook = try #require(created["id"]?.stringValue)
            rebound.withLock { $0 = true }
            _ = try await api.create("authors", #"{"name":"Ada"}"#)
            var log: [JSONValue] = []
            for _ in 0..<100 {
                log = try await Self.deliveries(api, hook)
                if log.first?["log"]?.arrayValue?.isEmpty == false && log.first?["state"] != .string("running") { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            let attempt = try #require(log.first?["log"]?.arrayValue?.first)
            #expect(attempt["status"] == .null && attempt["error"]?.stringValue?.hasPrefix("forbidden_target") == true)
            #expect(log.first?["state"] == .string("failed"))
            #expect(receiver.reports.isEmpty)
        }
    }

    /// A handler that records what it ran and fails while told to.
    final class Recorder: JobHandler {
        let kind = "test"
        let schedule = RetrySchedule(delays: [.seconds(1)], maxAttempts: 3, jitter: 0)
        let lease: Duration = .milliseconds(1500)
        let runs = Mutex<[String]>([])
        let failing = Mutex(false)
        let block = Mutex(false)
        func run(_ job: Job) async throws {
            runs.withLock { $0.append(job.payload["n"]?.stringValue ?? job.id) }
            if block.withLock({ $0 }) { try await Task.sleep(for: .seconds(60)) }
            if failing.withLock({ $0 }) { throw TestSetupError("told to fail") }
        }
    }

    @Test(arguments: TestBackend.all)
    func jobsRetryDieAreRetriedRunOnceAndReturnOnShutdown(_ backend: TestBackend) async throws {
        try await backend.withApp { api in
            let rt = api.runtime
            let queue = rt.jobs
            let recorder = Recorder()
            let runner = JobRunner(queue: queue, handlers: [recorder], workers: 4, pollInterval: .milliseconds(20), logger: rt.logger)
            func enqueue(_ n: String, ordering: (String, Int64)? = nil) async throws -> String {
                let (id, s) = queue.enqueue(
                    .init(kind: "test", payload: .object(JSONObject([("n", .string(n))])), maxAttempts: 3, ordering: ordering)
                )
                try await rt.store.write([s])
                return id
            }

            // Failing: retried after the backoff, dead after the third attempt.
            recorder.failing.withLock { $0 = true }
            let doomed = try await enqueue("doomed")
            #expect(try await runner.runNext(kinds: ["test"]) == .failed)
            var failed = try #require(try await queue.job(id: doomed))
            #expect(failed.state == .failed && failed.runAt.millisecondsSinceEpoch - failed.updatedAt.millisecondsSinceEpoch == 1000)
            #expect(try await runner.runNext(kinds: ["test"], now: failed.updatedAt) == nil)  // not due before its backoff
            #expect(try await runner.runNext(kinds: ["test"], now: failed.runAt) == .failed)
            failed = try #require(try await queue.job(id: doomed))
            #expect(try await runner.runNext(kinds: ["test"], now: failed.runAt) == .dead)
            let dead = try await api.get("/v1/admin/jobs/\(doomed)")
            #expect(
                dead["state"] == .string("dead") && dead["attempts"] == .int(3) && dead["last_error"]?.stringValue?.contains("told to fail") == true
            )
            // `filter` on the job list: the language of §3 over the job's fields.
            func filtered(_ f: String) async throws -> [String] {
                try await api.get("/v1/admin/jobs?filter=\(q(f))")["items"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
            }
            let since = Timestamp(millisecondsSinceEpoch: failed.updatedAt.millisecondsSinceEpoch - 60_000).rfc3339
            #expect(try await filtered("state = 'dead' && attempts >= 3 && kind = 'test'") == [doomed])
            #expect(try await filtered("id = '\(doomed)' && last_error ~ 'TOLD TO' && finished_at is not null") == [doomed])
            #expect(try await filtered("id = '\(doomed)' && run_at > '\(since)' && created_at <= run_at") == [doomed])
            #expect(try await filtered("id = '\(doomed)' && (finished_at is null || owner != null || attempts in (1, 2))").isEmpty)
            let unknown = try await api.get("/v1/admin/jobs?filter=\(q("version = 1"))")
            #expect(unknown.status == .badRequest && unknown["column"] == .int(1))
            let mistyped = try await api.get("/v1/admin/jobs?filter=\(q("state = 'dead' && attempts > 'x'"))")
            #expect(mistyped.status == .badRequest && mistyped["column"] == .int(19))
            #expect(try await api.post("/v1/admin/jobs/\(RecordID.make())/retry", "").status == .notFound)
            recorder.failing.withLock { $0 = false }
            let retried = try await api.post("/v1/admin/jobs/\(doomed)/retry", "")
            #expect(retried.status == .accepted && retried["state"] == .string("pending") && retried["max_attempts"] == .int(4))
            #expect(try await api.post("/v1/admin/jobs/\(doomed)/retry", "").status == .conflict)  // pending already
            #expect(try await runner.runNext(kinds: ["test"]) == .succeeded)
            #expect(try await api.get("/v1/admin/jobs?state=dead").json["items"]?.arrayValue?.isEmpty == true)

            // One ordering key: one at a time, by rank, whatever the enqueue order.
            recorder.runs.withLock { $0 = [] }
            _ = try await enqueue("k3", ordering: ("k", 3))
            _ = try await enqueue("k1", ordering: ("k", 1))
            _ = try await enqueue("k2", ordering: ("k", 2))
            // Many jobs, several runners at once (two "replicas" of four workers): each runs once.
            for i in 0..<40 { _ = try await enqueue("j\(i)") }
            let second = JobRunner(queue: queue, handlers: [recorder], workers: 4, pollInterval: .milliseconds(20), logger: rt.logger)
            let workers = Task {
                await withTaskGroup(of: Void.self) { g in
                    g.addTask { await runner.run() }
                    g.addTask { await second.run() }
                }
            }
            var runs: [String] = []
            for _ in 0..<200 {
                runs = recorder.runs.withLock { $0 }
                if runs.count >= 43 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            try await Task.sleep(for: .milliseconds(200))
            runs = recorder.runs.withLock { $0 }
            #expect(runs.count == 43 && Set(runs).count == 43)
            #expect(runs.filter { $0.hasPrefix("k") } == ["k1", "k2", "k3"])

            // Shutdown hands a job under way back, its attempt not counted.
            recorder.block.withLock { $0 = true }
            let held = try await enqueue("held")
            for _ in 0..<100 where try await queue.job(id: held)?.state != .running { try await Task.sleep(for: .milliseconds(20)) }
            let claimed = try #require(try await queue.job(id: held))
            #expect(claimed.state == .running)
            // Past its 1.5 s lease the claim is still held: renewed while the handler runs (else
            // another worker would have claimed it again, a second attempt).
            try await Task.sleep(for: .milliseconds(2500))
            let renewed = try #require(try await queue.job(id: held))
            #expect(renewed.state == .running && renewed.attempts == 1)
            #expect(renewed.runAt.millisecondsSinceEpoch > claimed.runAt.millisecondsSinceEpoch, "the lease was renewed")
            workers.cancel()
            await workers.value
            let back = try #require(try await queue.job(id: held))
            #expect(back.state == .pending && back.attempts == 0)
            #expect(back.runAt.millisecondsSinceEpoch <= Timestamp.now().millisecondsSinceEpoch)
        }
    }
}
