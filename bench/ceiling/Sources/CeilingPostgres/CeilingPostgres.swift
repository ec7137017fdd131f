import CeilingSupport
// usage: CeilingPostgres POSTGRES_URL PORT [POOL]
// The ceiling on PostgreSQL (bench/run.sh, target `ceiling-pg`): Hummingbird 2 + PostgresNIO
// serving the same four requests as the SQLite ceiling, on a copy of the database Basalt seeded,
// with nothing else (no auth, no validation, no logging, no events: the outbox triggers go).
//   GET   /v1/posts/{id}   one row by primary key
//   GET   /v1/posts?…      the list workload's query (its filter and sort, hard-wired): 20 rows
//   POST  /v1/posts        insert the JSON body's fields, 201 + the row
//   PATCH /v1/posts/{id}   update the JSON body's fields, version + 1, 200 + the row
import Foundation
import Hummingbird
import PostgresNIO

@main
struct CeilingPostgres {
    static func main() { runWithParkedMain { try await run() } }

    static func run() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count >= 3, let url = URLComponents(string: arguments[1]), let port = Int(arguments[2]) else {
            FileHandle.standardError.write(Data("usage: CeilingPostgres POSTGRES_URL PORT [POOL]\n".utf8))
            exit(2)
        }
        var configuration = PostgresClient.Configuration(
            host: url.host ?? "127.0.0.1",
            port: url.port ?? 5432,
            username: url.user ?? "postgres",
            password: url.password,
            database: String(url.path.dropFirst()),
            tls: .disable
        )
        // Basalt's default pool size (BASALT_POSTGRES_POOL), unless told otherwise.
        configuration.options.maximumConnections = arguments.count > 3 ? Int(arguments[3]) ?? 20 : 20
        let client = PostgresClient(configuration: configuration)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await client.run() }
            for try await row in try await client.query("SELECT tgname::text FROM pg_trigger WHERE tgrelid = 'posts'::regclass AND NOT tgisinternal")
            {
                let name = try row.decode(String.self)
                try await client.query(PostgresQuery(unsafeSQL: "DROP TRIGGER \"\(name)\" ON posts"))
            }
            var types: [String: String] = [:]
            for try await row in try await client.query(
                "SELECT column_name::text, udt_name::text FROM information_schema.columns WHERE table_name = 'posts' AND table_schema = current_schema()"
            ) {
                let (name, type) = try row.decode((String, String).self)
                types[name] = type
            }
            for system in ["id", "created_at", "updated_at", "version"] { types[system] = nil }
            let server = Server(client: client, writable: types)
            let app = Application(router: server.router(), configuration: .init(address: .hostname("127.0.0.1", port: port)))
            try await app.runService()
            group.cancelAll()
        }
    }
}

/// A row as a JSON object, timestamps in RFC 3339 with milliseconds (as Basalt renders them).
func render(_ row: PostgresRow, into out: inout String) throws {
    out += "{"
    var first = true
    for cell in row {
        if !first { out += "," }
        first = false
        escape(cell.columnName, into: &out)
        out += ":"
        guard cell.bytes != nil else {
            out += "null"
            continue
        }
        switch cell.dataType {
        case .int8: out += String(try cell.decode(Int64.self))
        case .int4: out += String(try cell.decode(Int32.self))
        case .float8: out += "\(try cell.decode(Double.self))"
        case .bool: out += try cell.decode(Bool.self) ? "true" : "false"
        case .uuid: out += "\"" + (try cell.decode(UUID.self)).uuidString.lowercased() + "\""
        case .timestamptz:
            out += "\"" + (try cell.decode(Date.self)).formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true)) + "Z\""
        case .jsonb, .json: out += try cell.decode(String.self)
        default: escape(try cell.decode(String.self), into: &out)
        }
    }
    out += "}"
}

struct Server: Sendable {
    let client: PostgresClient
    /// Writable column → its type, for a cast of the bound text.
    let writable: [String: String]

    /// The body's writable members as text, with the cast their column needs.
    func fields(_ request: Request) async throws -> [(column: String, text: String?, cast: String)] {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        guard let object = try JSONSerialization.jsonObject(with: Data(buffer: buffer)) as? [String: Any] else { return [] }
        return object.compactMap { key, value in
            guard let type = writable[key] else { return nil }
            switch value {
            case let n as NSNumber: return (key, n.stringValue, type)
            case let s as String: return (key, s, type)
            case is NSNull: return (key, nil, type)
            default:
                let data = try? JSONSerialization.data(withJSONObject: value)
                return (key, data.map { String(decoding: $0, as: UTF8.self) }, type)
            }
        }
    }

    func one(_ query: PostgresQuery) async throws -> PostgresRow? {
        for try await row in try await client.query(query) { return row }
        return nil
    }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/v1/posts/:id") { _, context -> Response in
            guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)),
                let row = try await one("SELECT * FROM posts WHERE id = \(id)")
            else { return json(.notFound, #"{"status":404}"#) }
            var out = ""
            try render(row, into: &out)
            return json(.ok, out)
        }
        router.get("/v1/posts") { request, _ -> Response in
            // The list workload's query (bench/run.sh FILTER, sort=-views, limit=20), as Basalt
            // runs it; with `total=true` also the count of every match (list-total).
            var out = #"{"items":["#
            var first = true
            for try await row in try await client.query(
                "SELECT * FROM posts WHERE status = \("published") AND views > \(500) ORDER BY views DESC NULLS LAST, id DESC LIMIT 20"
            ) {
                if !first { out += "," }
                first = false
                try render(row, into: &out)
            }
            out += #"],"next_cursor":null"#
            if request.uri.queryParameters["total"] == "true" {
                for try await row in try await client.query("SELECT count(*) FROM posts WHERE status = \("published") AND views > \(500)") {
                    out += #","total":\#(try row.decode(Int64.self))"#
                }
            }
            out += "}"
            return json(.ok, out)
        }
        router.post("/v1/posts") { request, _ -> Response in
            let values = try await fields(request)
            var bindings = PostgresBindings()
            bindings.append(UUID())
            var names = ["id", "created_at", "updated_at", "version"]
            var placeholders = ["$1", "now()", "now()", "1"]
            for v in values {
                bindings.append(v.text)
                names.append("\"\(v.column)\"")
                placeholders.append("$\(bindings.count)::\(v.cast)")
            }
            let sql = "INSERT INTO posts (\(names.joined(separator: ","))) VALUES (\(placeholders.joined(separator: ","))) RETURNING *"
            var out = ""
            if let row = try await one(PostgresQuery(unsafeSQL: sql, binds: bindings)) { try render(row, into: &out) }
            return json(.created, out)
        }
        router.patch("/v1/posts/:id") { request, context -> Response in
            guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)) else { return json(.notFound, #"{"status":404}"#) }
            let values = try await fields(request)
            var bindings = PostgresBindings()
            var sets: [String] = []
            for v in values {
                bindings.append(v.text)
                sets.append("\"\(v.column)\" = $\(bindings.count)::\(v.cast)")
            }
            sets += ["version = version + 1", "updated_at = now()"]
            bindings.append(id)
            let sql = "UPDATE posts SET \(sets.joined(separator: ", ")) WHERE id = $\(bindings.count) RETURNING *"
            guard let row = try await one(PostgresQuery(unsafeSQL: sql, binds: bindings)) else { return json(.notFound, #"{"status":404}"#) }
            var out = ""
            try render(row, into: &out)
            return json(.ok, out)
        }
        router.get("/health/ready") { _, _ in "ok" }
        return router
    }
}
