public import Foundation

/// An error answer of the server: an RFC 9457 problem document (API.md §4), typed.
public struct Problem: LocalizedError, Sendable, Decodable, CustomStringConvertible {
    /// One offending field of a `422`: `field` is a JSON Pointer into the request body.
    public struct FieldError: Sendable, Decodable, Equatable {
        public var field: String
        public var code: String
        public var message: String
    }

    public var type: String
    public var title: String
    public var status: Int
    public var detail: String?
    public var instance: String?
    public var requestID: String?
    public var errors: [FieldError]
    /// Filter errors: the 1-based column of the mistake.
    public var column: Int?
    /// Batch errors: the failing operation.
    public var operationIndex: Int?
    /// `Retry-After` of a `429` or `503`, in seconds.
    public var retryAfter: Int?

    /// The problem's code: `validation-failed`, `not-found`, `mfa-required`, … (the last part of `type`).
    public var code: String { type.split(separator: "/").last.map(String.init) ?? type }

    public var isMFARequired: Bool { code == "mfa-required" }

    /// The error of `field` (a JSON Pointer such as `/title`), if that field was refused.
    public func error(for field: String) -> FieldError? { errors.first { $0.field == field } }

    /// The server's `detail` (or `title`): what an alert shows.
    public var errorDescription: String? { detail ?? title }

    public var description: String {
        var s = "\(status) \(title)"
        if let detail { s += ": \(detail)" }
        for e in errors { s += "\n  \(e.field): \(e.code) (\(e.message))" }
        return s
    }

    enum CodingKeys: String, CodingKey {
        case type, title, status, detail, instance, errors, column
        case requestID = "request_id"
        case operationIndex = "operation_index"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decodeIfPresent(String.self, forKey: .type) ?? "about:blank"
        status = try c.decodeIfPresent(Int.self, forKey: .status) ?? 0
        title = try c.decodeIfPresent(String.self, forKey: .title) ?? ""
        detail = try c.decodeIfPresent(String.self, forKey: .detail)
        instance = try c.decodeIfPresent(String.self, forKey: .instance)
        requestID = try c.decodeIfPresent(String.self, forKey: .requestID)
        errors = try c.decodeIfPresent([FieldError].self, forKey: .errors) ?? []
        column = try c.decodeIfPresent(Int.self, forKey: .column)
        operationIndex = try c.decodeIfPresent(Int.self, forKey: .operationIndex)
    }

    /// A problem for an answer that carried no problem document (a proxy's error page, say).
    init(status: Int, body: Data) {
        type = "about:blank"
        self.status = status
        title = "HTTP \(status)"
        detail = String(decoding: body.prefix(200), as: UTF8.self)
        errors = []
    }
}

/// Errors of the client itself, as opposed to the server's answers (`Problem`).
public enum BasaltClientError: LocalizedError, Sendable, CustomStringConvertible {
    /// The call needs a signed-in session and there is none (or it ended).
    case notSignedIn
    /// A filter or sort names something that is not a field path.
    case invalidFilter(String)
    /// A record's fields that cannot be sent as one (they do not encode as a JSON object).
    case invalidRecord(String)
    /// A collection name or record id that cannot be one (ids are UUIDs); nothing was sent.
    case invalidName(String)
    /// The record was created, but the caller may not view it: the server answered its id only.
    case createdButNotViewable(id: String)
    /// The server's answer did not have the expected shape.
    case unexpectedResponse(status: Int, detail: String)

    public var errorDescription: String? { description }

    public var description: String {
        switch self {
        case .notSignedIn: "not signed in"
        case .invalidFilter(let why): "invalid filter: \(why)"
        case .invalidRecord(let why): "invalid record: \(why)"
        case .invalidName(let name): "not a collection name or record id: \(name.debugDescription)"
        case .createdButNotViewable(let id): "created \(id), which the caller may not view"
        case .unexpectedResponse(let status, let detail): "unexpected response (\(status)): \(detail)"
        }
    }
}
