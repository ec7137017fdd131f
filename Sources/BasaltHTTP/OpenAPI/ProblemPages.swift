public import BasaltCore
import HTTPTypes

/// The HTML pages behind problem `type`s: `GET /problems/{code}` explains one error code
/// (API.md §4) — its status, when it happens and what a client should do.
///
/// ```swift
/// ProblemPages.title(.validationFailed)          // "Validation failed"
/// ProblemPages.html(slug: "validation-failed")   // "<!doctype html>…"
/// ProblemPages.html(slug: "no-such-code")        // nil → 404
/// ```
public enum ProblemPages {
    /// The problem's `title`: a short summary of the type, the same for every occurrence.
    public static func title(_ code: BasaltError.Code) -> String {
        Problem.title(code)
    }

    /// The HTTP status a problem of this code is answered with.
    public static func status(_ code: BasaltError.Code) -> Int {
        Int(Problem.status(code).code)
    }

    /// The page for a slug such as `not-found`; nil when no code has that slug.
    public static func html(slug: String) -> String? {
        guard let code = BasaltError.Code.all.first(where: { $0.slug == slug }) else { return nil }
        let e = explanation(code)
        let others = BasaltError.Code.all.map { c in
            c == code
                ? "<li><strong>\(HTMLText.escape(c.slug))</strong></li>"
                : "<li><a href=\"/problems/\(HTMLText.escape(c.slug))\">\(HTMLText.escape(c.slug))</a></li>"
        }.joined()
        let example = """
            {"type": "/problems/\(code.slug)", "title": "\(title(code))", "status": \(status(code)),
             "detail": "…", "instance": "/v1/…", "request_id": "…"\(e.exampleExtra)}
            """
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(HTMLText.escape(title(code))) — Basalt problem types</title>
            <style>\(HTMLText.css)</style>
            </head>
            <body>
            <main>
            <p class="crumb"><a href="/docs">API reference</a> › problem types</p>
            <h1>\(HTMLText.escape(title(code)))</h1>
            <p class="meta"><span class="status">\(status(code))</span> <code>/problems/\(HTMLText.escape(code.slug))</code></p>
            <h2>When it happens</h2>
            \(e.when)
            <h2>What to do</h2>
            \(e.todo)
            <h2>The response</h2>
            <p>The body is <code>application/problem+json</code> (RFC 9457). <code>detail</code> says what went \
            wrong for this request; quote <code>request_id</code> (also the <code>X-Request-Id</code> header) \
            when reporting a problem.</p>
            <pre>\(HTMLText.escape(example))</pre>
            <h2>Other problem types</h2>
            <ul class="codes">\(others)</ul>
            </main>
            </body>
            </html>
            """
    }

    /// What a page says beyond the title and status, which come from `Problem` (one table).
    struct Explanation {
        /// HTML fragments (trusted, written here).
        var when: String
        var todo: String
        var exampleExtra: String = ""
    }

    /// One switch over every code, so a new code does not compile without its page.
    static func explanation(_ code: BasaltError.Code) -> Explanation {
        switch code.base {
        case .badRequest:
            Explanation(
                when: """
                    <p>The request could not be understood: the body is not valid JSON, a query parameter is \
                    malformed or out of range (<code>limit</code> must be 1–200), a <code>cursor</code> was \
                    tampered with or belongs to another query, or a <code>filter</code> has a syntax or type \
                    error. Filter errors carry <code>column</code>, the 1-based position (in Unicode code points) \
                    of the error, also named in <code>detail</code>.</p>
                    """,
                todo: """
                    <p>Fix the request; repeating it unchanged fails the same way. For filter errors, look at the \
                    given column: strings use single quotes (<code>'it''s'</code>), keywords are lowercase, \
                    and only declared fields may appear. Start over without <code>cursor</code> when a cursor is \
                    refused.</p>
                    """,
                exampleExtra: ", \"column\": 17"
            )
        case .unauthenticated:
            Explanation(
                when: """
                    <p>A credential is needed and none was sent, or the one sent is invalid, expired or revoked. \
                    A bad token is never treated as anonymous, not even on public data. The response carries \
                    <code>WWW-Authenticate: Bearer</code>, with <code>error="invalid_token"</code> when a token \
                    was sent.</p>
                    """,
                todo: """
                    <p>Send <code>Authorization: Bearer …</code> with an API key (<code>bsk_…</code>) or a \
                    current access token. When an access token expired, get a new one with \
                    <code>POST /v1/auth/refresh</code>; when the refresh token is refused too, sign in again.</p>
                    """
            )
        case .mfaRequired:
            Explanation(
                when: """
                    <p>The password was right, but the account has two-factor authentication on and the \
                    <code>otp</code> was missing or wrong.</p>
                    """,
                todo: """
                    <p>Repeat the sign-in with <code>otp</code>: the current code from the authenticator app, or \
                    one of the recovery codes.</p>
                    """
            )
        case .forbidden:
            Explanation(
                when: """
                    <p>The caller is known, but no grant of the collection allows the action for it, or a grant's \
                    rule refuses this particular write (for example a create whose values do not satisfy the \
                    rule).</p>
                    """,
                todo: """
                    <p>Do not retry with the same credential. Use one with the needed role, or ask an admin to \
                    change the collection's access rules. The OpenAPI document at <code>/v1/openapi.json</code> \
                    lists what your credential can reach.</p>
                    """
            )
        case .notFound:
            Explanation(
                when: """
                    <p>There is no such collection or record, or there is a record the caller may not view (it \
                    is indistinguishable from a missing one on purpose). Updating or deleting a record the caller \
                    cannot view is also <code>404</code>.</p>
                    """,
                todo: """
                    <p>Check the collection name and the id. When the record should exist, check that the \
                    credential may view it.</p>
                    """
            )
        case .methodNotAllowed:
            Explanation(
                when:
                    "<p>The path exists, but not with this HTTP method. The <code>Allow</code> header lists the methods it has.</p>",
                todo: "<p>Use one of the methods in <code>Allow</code>.</p>"
            )
        case .notAcceptable:
            Explanation(
                when: "<p>The <code>Accept</code> header excludes JSON, the only representation of this resource.</p>",
                todo: "<p>Send <code>Accept: application/json</code>, or no <code>Accept</code> header.</p>"
            )
        case .conflict:
            Explanation(
                when: """
                    <ul>
                    <li>a unique field already has this value in another record (<code>errors[0].field</code> \
                    names it), or a record with the supplied <code>id</code> exists;</li>
                    <li>a delete is refused because records still refer to this one through a \
                    <code>restrict</code> relation (the referring collection and field are named);</li>
                    <li>a request with the same <code>Idempotency-Key</code> is still running;</li>
                    <li>a schema change is destructive and <code>allow_destructive=true</code> was not given \
                    (the steps are listed in <code>errors</code>).</li>
                    </ul>
                    """,
                todo: """
                    <p>Choose another value or id; delete or re-point the referring records first; retry the \
                    idempotent request after the first one finished; or review the destructive steps and repeat \
                    the change with <code>allow_destructive=true</code>.</p>
                    """,
                exampleExtra: ", \"errors\": [{\"field\": \"/email\", \"code\": \"unique\", \"message\": \"…\"}]"
            )
        case .preconditionFailed:
            Explanation(
                when: """
                    <p>The <code>If-Match</code> ETag does not match the record's current version: someone else \
                    changed it since you read it. Nothing was changed.</p>
                    """,
                todo: """
                    <p>GET the record again, re-apply your change to the fresh version, and send it with the new \
                    <code>ETag</code>.</p>
                    """
            )
        case .payloadTooLarge:
            Explanation(
                when: "<p>The request body is larger than the server's limit (1 MiB by default).</p>",
                todo: "<p>Send a smaller body; split large imports into several requests or batches.</p>"
            )
        case .unsupportedMediaType:
            Explanation(
                when: """
                    <p>The body is not JSON: its <code>Content-Type</code> is neither <code>application/json</code> \
                    nor, for PATCH, <code>application/merge-patch+json</code>.</p>
                    """,
                todo: "<p>Send the body as JSON with <code>Content-Type: application/json</code>.</p>"
            )
        case .validationFailed:
            Explanation(
                when: """
                    <p>The body is JSON but its values are wrong: <code>errors</code> has one entry per offending \
                    field, with <code>field</code> a JSON Pointer into the body and <code>code</code> one of \
                    <code>required</code>, <code>type</code>, <code>min</code>, <code>max</code>, \
                    <code>pattern</code>, <code>enum</code>, <code>format</code>, <code>unique</code>, \
                    <code>unknown_field</code>, <code>read_only</code>, <code>not_found</code> (relation target), \
                    <code>forbidden_target</code> (webhook URL) or <code>invalid</code>. Also: an \
                    <code>Idempotency-Key</code> reused with another body, and a batch with no operations or more \
                    than 100.</p>
                    """,
                todo: """
                    <p>Correct every listed field and resend. The collection's constraints are in the OpenAPI \
                    document and on <a href="/docs">/docs</a>.</p>
                    """,
                exampleExtra:
                    ", \"errors\": [{\"field\": \"/title\", \"code\": \"required\", \"message\": \"title is required\"}]"
            )
        case .rateLimited:
            Explanation(
                when: """
                    <p>The caller sent more requests than its quota allows (per client address when anonymous, \
                    per subject otherwise; sign-in is stricter). <code>RateLimit</code> and \
                    <code>RateLimit-Policy</code> describe the quota.</p>
                    """,
                todo: "<p>Wait the number of seconds in <code>Retry-After</code>, then retry; slow down.</p>"
            )
        case .internalError:
            Explanation(
                when: "<p>A bug in the server. It was logged with the request id; no detail is revealed.</p>",
                todo: """
                    <p>Retrying may or may not help. Report it to the operator of this deployment with the \
                    <code>request_id</code>.</p>
                    """
            )
        case .gone:
            Explanation(
                when: """
                    <p>A realtime subscription asked to resume after an event the server no longer keeps \
                    (events are retained for a configured time, 7 days by default).</p>
                    """,
                todo: "<p>Reload the data you keep in sync, then subscribe again without a resume point.</p>"
            )
        case .unavailable:
            Explanation(
                when: "<p>The database is unreachable, or the server is shutting down.</p>",
                todo: "<p>Retry after the number of seconds in <code>Retry-After</code>.</p>"
            )
        }
    }
}
