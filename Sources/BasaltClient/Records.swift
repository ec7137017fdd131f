public import Foundation

/// A record: the system fields (API.md §2) and the app's own fields, decoded from the same JSON
/// object. `Fields` declares only what the app uses; unknown members are ignored. Its members
/// are readable on the record itself: `post.title`.
@dynamicMemberLookup
public struct Record<Fields: Decodable & Sendable>: Decodable, Sendable, Identifiable {
    public var id: String
    public var createdAt: Date
    public var updatedAt: Date
    /// Bumped by every write: sent as `If-Match` by `replace` and `update(_:with:)`.
    public var version: Int
    public var fields: Fields

    enum CodingKeys: String, CodingKey {
        case id, version
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        createdAt = try c.decode(Date.self, forKey: .createdAt)
        updatedAt = try c.decode(Date.self, forKey: .updatedAt)
        version = try c.decode(Int.self, forKey: .version)
        fields = try Fields(from: decoder)
    }

    public subscript<T>(dynamicMember path: KeyPath<Fields, T>) -> T { fields[keyPath: path] }
}

/// One page of a list.
public struct Page<Fields: Decodable & Sendable>: Decodable, Sendable {
    public var items: [Record<Fields>]
    /// The cursor of the next page; `nil` on the last.
    public var nextCursor: String?
    /// With `total: true`: every record matching that the caller may see.
    public var total: Int?

    enum CodingKeys: String, CodingKey {
        case items, total
        case nextCursor = "next_cursor"
    }
}

/// What a list asks for; the same on every page (a cursor belongs to its query).
public struct ListQuery: Sendable {
    public var filter: Filter?
    public var sort: [Sort] = []
    public var fields: [String] = []
    public var expand: [String] = []

    public init(filter: Filter? = nil, sort: [Sort] = [], fields: [String] = [], expand: [String] = []) {
        self.filter = filter
        self.sort = sort
        self.fields = fields
        self.expand = expand
    }

    func items(limit: Int?, cursor: String?, total: Bool) throws -> [URLQueryItem] {
        var q: [URLQueryItem] = []
        if let filter { q.append(URLQueryItem(name: "filter", value: try filter.validated())) }
        if !sort.isEmpty { q.append(URLQueryItem(name: "sort", value: try Sort.parameter(sort))) }
        // A narrowed record still carries the system fields `Record` is made of.
        if !fields.isEmpty {
            let all = fields + ["created_at", "updated_at", "version"].filter { !fields.contains($0) }
            q.append(URLQueryItem(name: "fields", value: all.joined(separator: ",")))
        }
        if !expand.isEmpty { q.append(URLQueryItem(name: "expand", value: expand.joined(separator: ","))) }
        if let limit { q.append(URLQueryItem(name: "limit", value: String(limit))) }
        if let cursor { q.append(URLQueryItem(name: "cursor", value: cursor)) }
        if total { q.append(URLQueryItem(name: "total", value: "true")) }
        return q
    }
}

/// The records of one collection, as `Fields`.
public struct RecordCollection<Fields: Codable & Sendable>: Sendable {
    let client: BasaltClient
    public let name: String

    /// The collection's path; a name that cannot be a collection's is refused before anything
    /// is sent (a crafted name must not reach another route).
    var path: String {
        get throws {
            guard Field(name).mistake == nil, !name.contains(".") else { throw BasaltClientError.invalidName(name) }
            return "/v1/\(name)"
        }
    }

    /// A record's path: ids are UUIDs (API.md §2), and anything else — `..`, a slash from a deep
    /// link — is refused before it can reach another route.
    func path(_ id: String) throws -> String {
        guard let uuid = UUID(uuidString: id) else { throw BasaltClientError.invalidName(id) }
        return try "\(path)/\(uuid.uuidString.lowercased())"
    }

    /// `POST`: creates a record from `fields` (and `id`, when the app chooses it). When the
    /// caller may create but not view the record, the server answers only its id: this throws
    /// `BasaltClientError.createdButNotViewable(id:)` — the record exists; use `insert` for such
    /// collections.
    public func create(_ fields: Fields, id: String? = nil) async throws -> Record<Fields> {
        let answer = try await post(fields, id: id)
        let members = try answer.decode([String: JSONValue].self)
        guard members["version"] != nil else { throw BasaltClientError.createdButNotViewable(id: try Self.id(of: members, answer)) }
        return try answer.decode()
    }

    /// `POST`, returning only the new record's id (what a caller who may create but not view
    /// gets).
    @discardableResult
    public func insert(_ fields: Fields, id: String? = nil) async throws -> String {
        let answer = try await post(fields, id: id)
        return try Self.id(of: answer.decode([String: JSONValue].self), answer)
    }

    static func id(of members: [String: JSONValue], _ answer: BasaltClient.Answer) throws -> String {
        guard let id = members["id"]?.stringValue else {
            throw BasaltClientError.unexpectedResponse(status: answer.status, detail: "a create answer without an id")
        }
        return id
    }

    func post(_ fields: Fields, id: String?) async throws -> BasaltClient.Answer {
        var body = try BasaltClient.json(fields)
        if let id {
            guard case .object(var object) = try Coding.decoder().decode(JSONValue.self, from: body) else {
                throw BasaltClientError.invalidRecord("the fields must encode as a JSON object")
            }
            object["id"] = .string(id)
            body = try BasaltClient.json(JSONValue.object(object))
        }
        return try await client.request("POST", try path, json: body)
    }

    public func get(_ id: String, expand: [String] = []) async throws -> Record<Fields> {
        let query = expand.isEmpty ? [] : [URLQueryItem(name: "expand", value: expand.joined(separator: ","))]
        return try await client.request("GET", try path(id), query: query).decode()
    }

    /// `PUT` of every writable field, only if the record is still at `record.version`
    /// (`412` otherwise: someone else wrote it since it was read).
    ///
    /// A `PUT` replaces the whole record: fields that `Fields` does not declare become null (or
    /// their default). With a partial `Fields` type, use `update(_:with:)` instead.
    public func replace(_ record: Record<Fields>) async throws -> Record<Fields> {
        try await client.request("PUT", try path(record.id), json: BasaltClient.json(record.fields), headers: ["If-Match": "\"\(record.version)\""])
            .decode()
    }

    /// JSON Merge Patch (RFC 7396): members of `changes` replace the record's, `null` clears
    /// one. With `ifVersion`, only if the record is still at that version.
    public func update(_ id: String, with changes: [String: JSONValue], ifVersion: Int? = nil) async throws -> Record<Fields> {
        try await update(id, patch: BasaltClient.json(changes), ifVersion: ifVersion)
    }

    /// A merge patch from an `Encodable` value (its `nil` members are left out, so they do not
    /// clear anything; use the dictionary form to clear).
    public func update(_ id: String, with changes: some Encodable & Sendable, ifVersion: Int? = nil) async throws -> Record<Fields> {
        try await update(id, patch: BasaltClient.json(changes), ifVersion: ifVersion)
    }

    /// A merge patch of `record`, only if it is still at `record.version`.
    public func update(_ record: Record<Fields>, with changes: [String: JSONValue]) async throws -> Record<Fields> {
        try await update(record.id, with: changes, ifVersion: record.version)
    }

    func update(_ id: String, patch: Data, ifVersion: Int?) async throws -> Record<Fields> {
        let headers = ifVersion.map { ["If-Match": "\"\($0)\""] } ?? [:]
        return try await client.request("PATCH", try path(id), json: patch, contentType: "application/merge-patch+json", headers: headers).decode()
    }

    public func delete(_ id: String, ifVersion: Int? = nil) async throws {
        let headers = ifVersion.map { ["If-Match": "\"\($0)\""] } ?? [:]
        _ = try await client.request("DELETE", try path(id), headers: headers)
    }

    /// Deletes `record` only if it is still at `record.version`.
    public func delete(_ record: Record<Fields>) async throws { try await delete(record.id, ifVersion: record.version) }

    /// One page; pass the previous page's `nextCursor` for the next.
    public func page(_ query: ListQuery = ListQuery(), limit: Int = 20, cursor: String? = nil, total: Bool = false) async throws -> Page<Fields> {
        try await client.request("GET", try path, query: query.items(limit: limit, cursor: cursor, total: total)).decode()
    }

    /// Every matching record, page after page (keyset cursors: each record that exists
    /// throughout and keeps matching is seen exactly once, whatever is written meanwhile).
    public func list(
        filter: Filter? = nil,
        sort: [Sort] = [],
        fields: [String] = [],
        expand: [String] = [],
        pageSize: Int = 100
    ) -> RecordSequence<Fields> {
        RecordSequence(collection: self, query: ListQuery(filter: filter, sort: sort, fields: fields, expand: expand), pageSize: pageSize)
    }
}

/// The records of a list as an `AsyncSequence`, fetched a page at a time as they are consumed.
public struct RecordSequence<Fields: Codable & Sendable>: AsyncSequence, Sendable {
    public typealias Element = Record<Fields>
    let collection: RecordCollection<Fields>
    let query: ListQuery
    let pageSize: Int

    public struct AsyncIterator: AsyncIteratorProtocol {
        let sequence: RecordSequence<Fields>
        var buffer: [Record<Fields>] = []
        var index = 0
        var cursor: String?
        var finished = false

        public mutating func next() async throws -> Record<Fields>? {
            while index == buffer.count {
                if finished { return nil }
                let page = try await sequence.collection.page(sequence.query, limit: sequence.pageSize, cursor: cursor)
                buffer = page.items
                index = 0
                cursor = page.nextCursor
                finished = page.nextCursor == nil
            }
            defer { index += 1 }
            return buffer[index]
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(sequence: self) }
}
