// A command-line client of the blog example (`basalt serve --schema examples/blog.yaml`) on
// BasaltClient: list posts with a filter, write one, watch changes live.
//
//   swift run basalt-client-example list --status published --search swift
//   swift run basalt-client-example create --api-key bsk_… --title "Hello" --status published
//   swift run basalt-client-example watch
import ArgumentParser
import BasaltClient
import Foundation

/// The app's own type for a post: only the fields it uses. System fields (`id`, `version`, …)
/// are on `Record<Post>`.
struct Post: Codable, Sendable {
    var title: String
    var body: String?
    var status: String?
    var views: Int?
}

struct Connection: ParsableArguments {
    @Option(help: "The server's base URL.")
    var url = "http://127.0.0.1:8080"
    @Option(help: "An API key (bsk_…), for writes the public may not make.")
    var apiKey: String?
    @Option(help: "Sign in as this user (the password comes from BASALT_PASSWORD).")
    var email: String?

    func client() async throws -> BasaltClient {
        guard let base = URL(string: url) else { throw ValidationError("--url is not a URL") }
        let client = BasaltClient(baseURL: base, apiKey: apiKey)
        if let email {
            guard let password = ProcessInfo.processInfo.environment["BASALT_PASSWORD"] else {
                throw ValidationError("set BASALT_PASSWORD to sign in")
            }
            try await client.auth.signIn(email: email, password: password)
        }
        return client
    }
}

@main
struct ClientExample: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "basalt-client-example",
        abstract: "Reads, writes and watches the blog example's posts through BasaltClient.",
        subcommands: [List.self, Create.self, Watch.self]
    )
}

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List posts, most viewed first.")
    @OptionGroup var connection: Connection
    @Option(help: "Only posts with this status.") var status: String?
    @Option(help: "Only posts whose title contains this text (any case).") var search: String?
    @Option(help: "At most this many posts.") var limit = 50

    func run() async throws {
        let posts = try await connection.client().collection("posts", as: Post.self)
        // Values go in as literals: a quote in --search cannot change the filter.
        var filters: [Filter] = []
        if let status { filters.append(Field("status") == status) }
        if let search { filters.append(Field("title").contains(search)) }
        let filter = filters.isEmpty ? nil : filters.dropFirst().reduce(filters[0], &&)
        var shown = 0
        for try await post in posts.list(filter: filter, sort: [.descending("views")], pageSize: min(limit, 200)) {
            print("\(post.id)  v\(post.version)  \(post.views ?? 0) views  \(post.title)")
            shown += 1
            if shown == limit { break }
        }
    }
}

struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a post.")
    @OptionGroup var connection: Connection
    @Option var title: String
    @Option var body: String?
    @Option(help: "draft or published.") var status = "draft"

    func run() async throws {
        let posts = try await connection.client().collection("posts", as: Post.self)
        do {
            let post = try await posts.create(Post(title: title, body: body, status: status, views: 0))
            print(post.id)
        } catch let problem as Problem where !problem.errors.isEmpty {
            for e in problem.errors { print("\(e.field): \(e.message)") }
            throw ExitCode.failure
        }
    }
}

struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print every change to posts as it happens (Ctrl-C to stop).")
    @OptionGroup var connection: Connection

    func run() async throws {
        let client = try await connection.client()
        for try await event in client.realtime.subscribe(collections: ["posts"]) {
            let post = try event.record(as: Post.self)
            let line = "\(event.sequence)  \(event.type.split(separator: ".").last ?? "")  \(post.id)  \(post.title)\n"
            FileHandle.standardOutput.write(Data(line.utf8))  // unbuffered: line by line, also into a pipe
        }
    }
}
