import OpenAPIKit

extension OpenAPIGenerator.Builder {
    /// `GET /v1/realtime` (API.md §10): a Server-Sent Events stream.
    mutating func addRealtime() {
        tags.append(OpenAPI.Tag(name: "events", description: "Committed changes as CloudEvents, live (API.md §10)."))
        let collections = OpenAPI.Parameter.query(
            name: "collections",
            schema: .string(pattern: "^[a-z][a-z0-9_]{0,62}(,[a-z][a-z0-9_]{0,62})*$"),
            description: "Comma-separated collections; without it, every collection the caller may list."
        )
        let filter = OpenAPI.Parameter.query(
            name: "filter",
            schema: .string(maxLength: 4096),
            description: "A filter (as on lists) on the records of the one collection named in `collections`."
        )
        let after = OpenAPI.Parameter.query(
            name: "after",
            schema: .string(pattern: "^[0-9]{1,20}$"),
            description: "Resume after this event sequence (as `Last-Event-ID`)."
        )
        let ticket = OpenAPI.Parameter.query(
            name: "ticket",
            schema: .string(pattern: "^rtt_[A-Za-z0-9_-]{1,95}$"),
            description: "A single-use ticket from `POST /v1/realtime/tickets`, for browsers (which cannot send `Authorization` here)."
        )
        let lastEventID = OpenAPI.Parameter.header(
            name: "Last-Event-ID",
            schema: .string(pattern: "^[0-9]{1,20}$"),
            description: "Resume after this event sequence: the events missed are replayed first."
        )
        let stream: OpenAPI.Content.Map = [
            OpenAPI.ContentType.other("text/event-stream"): .content(
                OpenAPI.Content(
                    schema: .string(
                        description: """
                            Frames `id: <sequence>`, `event: <type>`, `data: <CloudEvent JSON>`; a `: ping` \
                            comment every 15 s; `event: error` with a problem document when the stream ends \
                            for a reason (credential no longer valid, subscriber too slow).
                            """
                    )
                )
            )
        ]
        let op = OpenAPI.Operation(
            tags: ["events"],
            summary: "Subscribe to committed changes (Server-Sent Events or WebSocket)",
            description: """
                One event per created, updated or deleted record, in commit order, each only if the \
                caller's `view` grants allow the record (as it is after the change; as it was, for a \
                delete). `Last-Event-ID` or `after` replays what was missed, without loss or duplicates, \
                while it is retained (`410` beyond). With `Upgrade: websocket` the same subscription runs                 over a WebSocket: the client sends `{"type": "subscribe", "collections": […], "filter":                 "…", "after": "<sequence>"}`; the server answers `{"type": "subscribed"}`, then                 `{"type": "event", "event": {…}}` per event, or `{"type": "error", "problem": {…}}`                 (a refused credential or ticket too, after which it closes).
                """,
            operationId: "realtime_subscribe",
            parameters: [.parameter(collections), .parameter(filter), .parameter(after), .parameter(ticket), .parameter(lastEventID)],
            responses: Responses.merge(
                [(200, Responses.ok("The event stream", stream))],
                errors: [400, 401, 403, 404, 406, 410, 429]
            ),
            security: Security.optional
        )
        paths["/v1/realtime"] = .pathItem(OpenAPI.PathItem(get: op))
        let ticketBody = Media.json(
            .object(
                properties: [
                    "ticket": .string(description: "Single use: `GET /v1/realtime?ticket=…`"),
                    "expires_in": .integer(description: "Seconds the ticket stays valid (60)"),
                ]
            )
        )
        let tickets = OpenAPI.Operation(
            tags: ["events"],
            summary: "A ticket for a browser's realtime connection",
            description: """
                Trades the caller's credential for a single-use ticket valid for 60 seconds: EventSource and \
                WebSocket cannot send `Authorization`, so a browser connects with `?ticket=`. The stream is \
                the credential's, and ends when the credential does.
                """,
            operationId: "realtime_ticket",
            responses: Responses.merge([(201, Responses.ok("A ticket", ticketBody))], errors: [401, 429]),
            security: Security.required
        )
        paths["/v1/realtime/tickets"] = .pathItem(OpenAPI.PathItem(post: tickets))
    }
}
