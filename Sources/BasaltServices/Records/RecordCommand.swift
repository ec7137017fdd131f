public import BasaltCore

/// A write on records, as a request or a batch operation carries it, its precondition parsed.
public enum RecordCommand: Sendable {
    case create(collection: String, body: JSONValue)
    /// PUT: every writable field; absent optional ones become null or their default.
    case replace(collection: String, id: String, body: JSONValue, precondition: VersionPrecondition)
    /// PATCH: JSON Merge Patch (RFC 7396), recursive into `json` fields.
    case patch(collection: String, id: String, body: JSONValue, precondition: VersionPrecondition)
    case delete(collection: String, id: String, precondition: VersionPrecondition)

    public var collection: String {
        switch self {
        case .create(let c, _), .replace(let c, _, _, _), .patch(let c, _, _, _), .delete(let c, _, _): c
        }
    }

    var precondition: VersionPrecondition {
        switch self {
        case .create: .none
        case .replace(_, _, _, let p), .patch(_, _, _, let p), .delete(_, _, let p): p
        }
    }
}

/// What a record command did: the domain result the edge renders (status, `Location`, `ETag`).
public enum RecordOutcome: Sendable, Equatable {
    /// A new record. `record` is nil when the caller may not view it (the answer is then only its id).
    case created(collection: String, id: String, record: JSONObject?)
    /// The record after a replace or a patch.
    case updated(collection: String, record: JSONObject)
    case deleted(collection: String, id: String)

    /// The version the record has now (its strong ETag); nil after a delete.
    public var version: Int64? {
        switch self {
        case .created: 1
        case .updated(_, let r): r["version"]?.integerValue
        case .deleted: nil
        }
    }
}

/// A finished write as it is answered and, under an `Idempotency-Key`, remembered: the outcome
/// of one command or of a batch, or the refusal (a 4xx) the first attempt received.
public enum WriteAnswer: Sendable {
    case record(RecordOutcome)
    case batch([RecordOutcome])
    /// A stored refusal, with the request id and path of the request that received it first.
    case refused(BasaltError, requestID: String, instance: String)
}
