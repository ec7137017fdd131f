import Basalt
import BasaltCore
import BasaltTesting
import Foundation
import HTTPTypes
import OpenAPIRuntime
import Testing

/// The served schema of the generated clients, and callers of each scope (API.md §13).
enum Scopes {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ClientGeneration")
    static var schema: String {
        get throws { try String(contentsOf: folder.appendingPathComponent("all-types.yaml"), encoding: .utf8) }
    }
    static let password = "correct horse battery"

    struct Callers: Sendable {
        var userID: String
        var userToken: String
        var editorID: String
        var editorToken: String
        var adminKey: String
    }

    /// A plain user and an editor, signed in (the editor after being given the role).
    static func callers(_ api: APIClient) async throws -> Callers {
        let user = try await api.signUp("user@example.com", password: password)
        let editor = try await api.signUp("editor@example.com", password: password)
        let role = try await api.patch("/v1/admin/users/\(editor.id)", #"{"roles":["editor"]}"#)
        guard role.status == .ok else { throw TestSetupError("editor role: \(role.status) \(role.text)") }
        let signedIn = try await api.signIn("editor@example.com", password: password)
        return Callers(userID: user.id, userToken: user.accessToken, editorID: editor.id, editorToken: signedIn.accessToken, adminKey: api.adminKey)
    }

    static func serverURL(_ api: APIClient) -> URL { URL(string: "http://127.0.0.1:\(api.port!)")! }
}

/// `Authorization: Bearer …` on every request of a generated client: the documents declare
/// bearer schemes, and generated Swift clients leave credentials to a middleware.
struct Bearer: ClientMiddleware {
    let token: String

    func intercept(
        _ request: HTTPRequest,
        body: HTTPBody?,
        baseURL: URL,
        operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        request.headerFields[.authorization] = "Bearer \(token)"
        return try await next(request, body, baseURL)
    }
}

/// Generated clients need this: record timestamps carry milliseconds, and the generator's
/// default date transcoder reads RFC 3339 without a fraction only.
let generatedClientConfiguration = Configuration(dateTranscoder: .iso8601WithFractionalSeconds)

struct GeneratedClientFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Serialized: the generators are heavy processes (a JVM, a Python generator per scope), and
/// two cores run the rest of the suite beside them.
@Suite("Clients generated from the OpenAPI documents", .serialized)
struct GeneratedDocumentTests {
    static let files = ["anon": "Anon", "user": "User", "editor": "Role", "admin": "Admin"]

    /// The Swift clients are generated at build time from committed copies of the documents;
    /// these must be exactly what the server serves now. `BASALT_UPDATE_CLIENT_DOCS=1` rewrites
    /// them (then build again).
    @Test(arguments: TestBackend.all)
    func committedDocumentsAreTheServedOnes(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: try Scopes.schema) { api in
            let callers = try await Scopes.callers(api)
            let credentials: [String: APIClient.Auth] = [
                "anon": .none, "user": .bearer(callers.userToken), "editor": .bearer(callers.editorToken), "admin": .admin,
            ]
            for (scope, auth) in credentials {
                let served = try await api.get("/v1/openapi.json", auth: auth)
                try #require(served.status == .ok)
                guard var document = try JSONSerialization.jsonObject(with: Data(served.text.utf8)) as? [String: Any] else {
                    throw GeneratedClientFailure("\(scope): not a JSON object")
                }
                // The only part that depends on where this test server listens.
                document["servers"] = nil
                let file = Scopes.folder.appendingPathComponent("Swift/\(Self.files[scope]!)/openapi.json")
                if ProcessInfo.processInfo.environment["BASALT_UPDATE_CLIENT_DOCS"] == "1" {
                    var text = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                    text.append(0x0A)
                    try text.write(to: file)
                    continue
                }
                let committed = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? NSDictionary
                #expect(
                    committed == document as NSDictionary,
                    "\(file.lastPathComponent) of \(scope) is not what the server serves: run BASALT_UPDATE_CLIENT_DOCS=1 swift test --filter committedDocumentsAreTheServedOnes"
                )
            }
        }
    }

    /// openapi-generator (the generator most other languages' clients come from) finds nothing
    /// to object to in any scope's document (the committed copies, which the test above proves
    /// are the served ones).
    @Test(arguments: ["Anon", "User", "Role", "Admin"])
    func openAPIGeneratorValidatesEveryScope(_ scope: String) async throws {
        let file = Scopes.folder.appendingPathComponent("Swift/\(scope)/openapi.json").path
        let result = try await Subprocess.run(["openapi-generator-cli", "validate", "--recommend", "-i", file], timeout: .seconds(300))
        #expect(result.succeeded && result.output.contains("No validation issues detected"), "\(result.output)")
    }

    /// Python clients generated by openapi-python-client from each scope's served document, a
    /// CRUD round trip each (Tests/ClientGeneration/python_clients.py).
    @Test(arguments: TestBackend.all)
    func pythonClientsFromEveryScope(_ backend: TestBackend) async throws {
        try await backend.withApp(schema: try Scopes.schema) { api in
            let callers = try await Scopes.callers(api)
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("basalt-pyclients-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: work) }
            let result = try await Subprocess.run(
                [
                    "BASALT_ADMIN_KEY=\(callers.adminKey)", "BASALT_USER_TOKEN=\(callers.userToken)", "BASALT_USER_ID=\(callers.userID)",
                    "BASALT_EDITOR_TOKEN=\(callers.editorToken)", "BASALT_EDITOR_ID=\(callers.editorID)",
                    "python3", Scopes.folder.appendingPathComponent("python_clients.py").path, Scopes.serverURL(api).absoluteString, work.path,
                ],
                timeout: .seconds(600)
            )
            #expect(result.succeeded, "\(result.output)")
            for scope in ["anon", "user", "editor", "admin"] { #expect(result.output.contains("scope \(scope): ok"), "\(result.output)") }
        }
    }
}
