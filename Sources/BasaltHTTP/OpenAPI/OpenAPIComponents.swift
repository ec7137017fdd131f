import BasaltAuth
import BasaltCore
import BasaltServices
import Foundation
import OpenAPIKit

extension OpenAPIGenerator {
    // MARK: - Parameters, headers, responses

    enum Parameters {
        /// `limit` of a keyset-paginated list (1–200).
        static func limit(default n: Int) -> OpenAPI.Parameter.Array.Element {
            .parameter(
                .query(
                    name: "limit",
                    schema: .integer(maximum: (200, exclusive: false), minimum: (1, exclusive: false), defaultValue: .init(integerLiteral: n)),
                    description: "Page size, 1–200 (default \(n))."
                )
            )
        }

        static let cursor: OpenAPI.Parameter.Array.Element = .parameter(
            .query(name: "cursor", schema: .string, description: "The `next_cursor` of the previous page.")
        )

        static let recordID = OpenAPI.Parameter.path(
            name: "id",
            schema: .string(format: .uuid),
            description: "The record id (a UUID; any case, answered in lowercase)"
        )
        // Generated Swift clients percent-encode header values (`%223%22`); the server reads such
        // an entity tag decoded (VersionPrecondition.entityTags), so the plain string schema stays.
        static let ifMatch = OpenAPI.Parameter.header(
            name: "If-Match",
            schema: .string,
            description:
                "An ETag from a previous response (`\"3\"`); the write is refused with `412` when the record has changed."
        )
        static let ifNoneMatch = OpenAPI.Parameter.header(
            name: "If-None-Match",
            schema: .string,
            description: "An ETag from a previous response; `304` when it still matches."
        )
        static let idempotencyKey = OpenAPI.Parameter.header(
            name: "Idempotency-Key",
            schema: .string(minLength: 1, maxLength: 255, pattern: "^[\\x20-\\x7E]+$"),
            description: """
                1–255 printable ASCII characters, scoped to the caller, method and path. A retry with the same key \
                and body within 24 h gets the first answer again — a success or a 4xx refusal — with \
                `Idempotent-Replayed: true`; the same key with another body is `422`; a retry while the first is \
                still running (on any server) is `409`.
                """
        )

        /// `^(item(,item)*)?$` over an alternation: the exact language the server accepts, so a
        /// client (or a fuzzer) can tell a valid value from an invalid one without trying it.
        static func listPattern(_ items: [String]) -> String {
            guard !items.isEmpty else { return "^$" }
            let alt = "(" + items.joined(separator: "|") + ")"
            return "^(\(alt)(,\(alt))*)?$"
        }

        static func list(_ c: CollectionSchema, schema: Schema? = nil) -> OpenAPI.Parameter.Array {
            let names =
                ([SystemField.id.rawValue] + c.fields.map(\.name) + SystemField.allCases.dropFirst().map(\.rawValue))
            let relations = c.fields.filter { $0.type == .relation }.map(\.name)
            let sortable =
                [SystemField.id.rawValue] + c.fields.filter { $0.type != .json }.map(\.name)
                + SystemField.allCases.dropFirst().map(\.rawValue)
            var paths = relations
            for f in c.fields where f.type == .relation {
                guard let t = f.target, let tc = schema?.collection(t) else { continue }
                paths += tc.fields.filter { $0.type == .relation }.map { f.name + "\\." + $0.name }
            }
            return [
                .parameter(
                    .query(
                        name: "filter",
                        schema: .string(maxLength: 4096),
                        description: """
                            A filter expression, e.g. `status = 'published' && views > 10`. Operators: `= != < <= > >= ~ !~`, \
                            `in (…)`, `is [not] null`, `&&`, `||`, `!`, parentheses; one hop through a relation \
                            (`author.name`). Fields: \(names.map { "`\($0)`" }.joined(separator: ", ")).
                            """
                    )
                ),
                .parameter(
                    .query(
                        name: "sort",
                        schema: .string(pattern: listPattern(sortable.map { "-?" + $0 })),
                        description:
                            "Comma-separated fields, `-` for descending (default `-created_at`); `id` breaks ties."
                    )
                ),
                Parameters.limit(default: 20),
                Parameters.cursor,
                .parameter(
                    .query(
                        name: "fields",
                        schema: .string(pattern: listPattern(names)),
                        description: "Comma-separated field names to return (`id` is always returned)."
                    )
                ),
                .parameter(
                    .query(
                        name: "expand",
                        schema: .string(pattern: listPattern(paths)),
                        description: relations.isEmpty
                            ? "Comma-separated relation paths to inline under `expand` (this collection has no relations)."
                            : "Comma-separated relation paths to inline under `expand`, at most 2 levels: "
                                + relations.map { "`\($0)`" }.joined(separator: ", ") + "."
                    )
                ),
                .parameter(
                    .query(
                        name: "total",
                        schema: .boolean(defaultValue: false),
                        description: "Add `total`, the number of matching records the caller may see."
                    )
                ),
            ]
        }
    }

    enum Headers {
        typealias H = Either<OpenAPI.Reference<OpenAPI.Header>, OpenAPI.Header>
        static let strongETag: H = .header(
            OpenAPI.Header(schema: .string, description: "The record version, quoted: `\"3\"`")
        )
        static let weakETag: H = .header(
            OpenAPI.Header(schema: .string, description: "A weak validator of the body: `W/\"…\"`")
        )
        static let link: H = .header(
            OpenAPI.Header(
                schema: .string,
                description: "`<…&cursor=…>; rel=\"next\"` when there is a next page (RFC 8288)"
            )
        )
        static let location: H = .header(
            OpenAPI.Header(schema: .string(format: .uriReference), description: "The new resource")
        )
        static let replayed: H = .header(
            OpenAPI.Header(
                schema: .string(allowedValues: "true"),
                description: "Present on a replayed idempotent response"
            )
        )
        static let cacheControl: H = .header(
            OpenAPI.Header(
                schema: .string,
                description: "`no-cache`, plus `private` unless the data is unconditionally public"
            )
        )
        static let vary: H = .header(OpenAPI.Header(schema: .string, description: "`Authorization, Accept`"))
        static let retryAfter: H = .header(
            OpenAPI.Header(schema: .integer(minimum: (0, exclusive: false)), description: "Seconds to wait")
        )
        static let noStore: H = .header(
            OpenAPI.Header(
                schema: .string(allowedValues: "no-store"),
                description: "`no-store`: tokens and account data are never cached (RFC 6749 §5.1)"
            )
        )
        static let wwwAuthenticate: H = .header(
            OpenAPI.Header(schema: .string, description: "`Bearer`, with `error=\"invalid_token\"` when one was sent")
        )
    }

    enum Responses {
        typealias R = Either<OpenAPI.Reference<OpenAPI.Response>, OpenAPI.Response>

        /// The HEAD twin of a GET: the same parameters, statuses and headers, no bodies. Its
        /// operationId is `head_` + the GET's (`head_list_posts`, `head_get_posts`): no collection
        /// name can make two ids equal, as no id prefix is a prefix of another.
        static func head(_ get: OpenAPI.Operation) -> OpenAPI.Operation {
            var op = get
            op.operationId = get.operationId.map { "head_" + $0 }
            op.summary = get.summary.map { "\($0) (headers only)" }
            op.description = "As GET, without a body: the status and headers only."
            var map: OpenAPI.Response.Map = [:]
            for (status, r) in get.responses {
                guard case .b(var response) = r else {
                    map[status] = r
                    continue
                }
                response.content = [:]
                map[status] = .response(response)
            }
            op.responses = map
            return op
        }

        static func ok(
            _ description: String,
            _ content: OpenAPI.Content.Map = [:],
            headers: OpenAPI.Header.Map? = nil
        ) -> R {
            .response(OpenAPI.Response(description: description, headers: headers, content: content))
        }

        static func notModified(_ etag: Headers.H) -> R {
            ok("Not modified: the `If-None-Match` ETag still matches", headers: ["ETag": etag])
        }

        /// Success responses, then the problem responses for `errors`, in status order. `notes`
        /// replaces the generic description of a status where an operation says more (`mfa-required`).
        static func merge(
            _ success: [(OpenAPI.Response.StatusCode, R)],
            errors: [Int],
            notes: [Int: String] = [:]
        ) -> OpenAPI.Response.Map {
            var map: OpenAPI.Response.Map = [:]
            for (status, r) in success { map[status] = r }
            for status in errors.sorted() {
                map[OpenAPI.Response.StatusCode(integerLiteral: status)] = .response(
                    problem(status, description: notes[status])
                )
            }
            return map
        }

        /// An error response: RFC 9457 problem details.
        static func problem(_ status: Int, description: String? = nil) -> OpenAPI.Response {
            var headers: OpenAPI.Header.Map? = nil
            switch status {
            case 401: headers = ["WWW-Authenticate": Headers.wwwAuthenticate]
            case 429, 503: headers = ["Retry-After": Headers.retryAfter]
            default: break
            }
            return OpenAPI.Response(
                description: description ?? problemDescription(status),
                headers: headers,
                content: [Media.problem: .content(OpenAPI.Content(schemaReference: .component(named: Names.problem)))]
            )
        }

        static func problemDescription(_ status: Int) -> String {
            switch status {
            case 400:
                "`bad-request`: malformed JSON, a bad query parameter, a filter error (with `column`) or a bad cursor"
            case 401: "`unauthenticated`: credentials are missing where needed, or invalid, expired or revoked"
            case 403: "`forbidden`: the caller is known but no grant allows the action"
            case 404: "`not-found`: no such record, or one the caller may not view"
            case 406: "`not-acceptable`: `Accept` excludes JSON"
            case 409:
                "`conflict`: a unique value or id is taken, a `restrict` relation refers to the record, or the idempotency key is in flight"
            case 410: "`gone`: the resume point is older than the retained events"
            case 412: "`precondition-failed`: `If-Match` does not match the record's ETag"
            case 413: "`payload-too-large`: the body is over the limit (1 MiB by default)"
            case 415: "`unsupported-media-type`: the body is not JSON"
            case 422: "`validation-failed`: one entry in `errors` per invalid field"
            case 429: "`rate-limited`: too many requests; retry after `Retry-After` seconds"
            case 503: "`unavailable`: the database is unreachable or the server is shutting down"
            default: "An error"
            }
        }
    }

}
