import CeilingSupport
// usage: Ceiling DATABASE PORT
// Serves, on a copy of a database Basalt seeded (bench/run.sh makes it):
//   GET   /v1/posts/{id}   one row by primary key
//   GET   /v1/posts?…      the list workload's query (its filter and sort, hard-wired): 20 rows
//   POST  /v1/posts        insert the JSON body's fields, 201 + the row
//   PATCH /v1/posts/{id}   update the JSON body's fields, version + 1, 200 + the row
// Rows are rendered as JSON objects with RFC 3339 timestamps, as Basalt renders them.
import Foundation
import GRDB
import Hummingbird

@main
struct Ceiling {
    static func main() { runWithParkedMain { try await run() } }

    static func run() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 3, let port = Int(arguments[2]) else {
            FileHandle.standardError.write(Data("usage: Ceiling DATABASE PORT\n".utf8))
            exit(2)
        }
        var configuration = Configuration()
        configuration.journalMode = .wal
        let pool = try DatabasePool(path: arguments[1], configuration: configuration)
        // The ceiling does none of Basalt's event work: the outbox triggers go.
        let columns: [String] = try await pool.write { db in
            for trigger in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'posts'") {
                try db.execute(sql: "DROP TRIGGER \"\(trigger)\"")
            }
            return try Row.fetchAll(db, sql: "PRAGMA table_info(posts)").map { $0["name"] as String }
        }
        let server = Server(pool: pool, writable: Set(columns).subtracting(["id", "created_at", "updated_at", "version"]))
        let app = Application(router: server.router(), configuration: .init(address: .hostname("127.0.0.1", port: port)))
        try await app.runService()
    }
}

let timestampColumns: Set<String> = ["created_at", "updated_at"]

func render(_ row: Row, into out: inout String) {
    out += "{"
    var first = true
    for (column, value) in row {
        if !first { out += "," }
        first = false
        out += "\"\(column)\":"
        switch value.storage {
        case .null: out += "null"
        case .int64(let i):
            if timestampColumns.contains(column) {
                out +=
                    "\""
                    + Date(timeIntervalSince1970: Double(i) / 1000).formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true))
                    + "Z\""
            } else {
                out += String(i)
            }
        case .double(let d): out += "\(d)"
        case .string(let s): escape(s, into: &out)
        case .blob: out += "null"
        }
    }
    out += "}"
}

struct Server: Sendable {
    let pool: DatabasePool
    let writable: Set<String>

    func fields(_ request: Request) async throws -> [(String, (any DatabaseValueConvertible)?)] {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        guard let object = try JSONSerialization.jsonObject(with: Data(buffer: buffer)) as? [String: Any] else { return [] }
        return object.compactMap { key, value in
            guard writable.contains(key) else { return nil }
            switch value {
            case let n as NSNumber: return (key, n.int64Value)
            case let s as String: return (key, s)
            default: return (key, nil)
            }
        }
    }

    func router() -> Router<BasicRequestContext> {
        let selectColumns = "*"
        let router = Router()
        router.get("/v1/posts/:id") { _, context -> Response in
            let id = context.parameters.get("id") ?? ""
            let row = try await pool.read { db in try Row.fetchOne(db, sql: "SELECT \(selectColumns) FROM posts WHERE id = ?", arguments: [id]) }
            guard let row else { return json(.notFound, #"{"status":404}"#) }
            var out = ""
            render(row, into: &out)
            return json(.ok, out)
        }
        router.get("/v1/posts") { request, _ -> Response in
            // The list workload's query (bench/run.sh FILTER, sort=-views, limit=20), as Basalt
            // runs it; with `total=true` also the count of every match (list-total).
            let counting = request.uri.queryParameters["total"] == "true"
            let (rows, total) = try await pool.read { db in
                let rows = try Row.fetchAll(
                    db,
                    sql: "SELECT \(selectColumns) FROM posts WHERE status = ? AND views > ? ORDER BY views DESC, id DESC LIMIT 20",
                    arguments: ["published", 500]
                )
                let total =
                    counting
                    ? try Int.fetchOne(db, sql: "SELECT count(*) FROM posts WHERE status = ? AND views > ?", arguments: ["published", 500]) : nil
                return (rows, total)
            }
            var out = #"{"items":["#
            for (i, row) in rows.enumerated() {
                if i > 0 { out += "," }
                render(row, into: &out)
            }
            out += #"],"next_cursor":null"#
            if let total { out += #","total":\#(total)"# }
            out += "}"
            return json(.ok, out)
        }
        router.post("/v1/posts") { request, _ -> Response in
            let values = try await fields(request)
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let names = ["id", "created_at", "updated_at", "version"] + values.map(\.0)
            var arguments: [(any DatabaseValueConvertible)?] = [UUID().uuidString.lowercased(), now, now, 1]
            arguments += values.map(\.1)
            let sql =
                "INSERT INTO posts (\(names.map { "\"\($0)\"" }.joined(separator: ","))) VALUES (\(names.map { _ in "?" }.joined(separator: ","))) RETURNING *"
            let row = try await pool.write { db in try Row.fetchOne(db, sql: sql, arguments: StatementArguments(arguments)) }
            var out = ""
            if let row { render(row, into: &out) }
            return json(.created, out)
        }
        router.patch("/v1/posts/:id") { request, context -> Response in
            let id = context.parameters.get("id") ?? ""
            let values = try await fields(request)
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let sets = (values.map { "\"\($0.0)\" = ?" } + ["version = version + 1", "updated_at = ?"]).joined(separator: ", ")
            var arguments: [(any DatabaseValueConvertible)?] = values.map(\.1)
            arguments += [now, id]
            let row = try await pool.write { db in
                try Row.fetchOne(db, sql: "UPDATE posts SET \(sets) WHERE id = ? RETURNING *", arguments: StatementArguments(arguments))
            }
            guard let row else { return json(.notFound, #"{"status":404}"#) }
            var out = ""
            render(row, into: &out)
            return json(.ok, out)
        }
        router.get("/health/ready") { _, _ in "ok" }
        return router
    }
}
