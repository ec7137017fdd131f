import BasaltAuth
import BasaltCore
import BasaltServices
import Foundation
import OpenAPIKit

extension OpenAPIGenerator.Builder {
    // MARK: Auth

    /// `/v1/auth/*` and `/.well-known/jwks.json` (API.md §8): public API, the same for every caller.
    mutating func addAuth() {
        let users =
            schema.collection(BuiltinCollections.usersName)
            ?? CollectionSchema(name: BuiltinCollections.usersName, fields: BuiltinCollections.userFields)
        let factory = SchemaFactory(schema: schema, documented: [])
        for (name, s) in factory.authSchemas(users) { addSchema(name, s) }
        tags.append(
            OpenAPI.Tag(
                name: "auth",
                description: """
                    Accounts and sign-in: registration, access and refresh tokens, sessions, email \
                    verification, password reset, email change and two-factor sign-in (TOTP). Answers carry \
                    `Cache-Control: no-store`. These routes have a stricter rate limit per client address.
                    """
            )
        )
        let tag = ["auth"]
        /// Anonymous callers are served; a credential, when sent, must still be valid.
        let open = Security.optional
        let user = Security.user
        // Statuses every JSON body may produce.
        let body = [400, 413, 415, 422, 429]
        let signedIn = [401, 403, 429]
        let notes: [Int: String] = [
            400: "`bad-request`: the body is not valid JSON, or not a JSON object",
            401: "`unauthenticated`: an invalid, expired or revoked credential was sent (none is needed here)",
            429:
                "`rate-limited`: over the `/v1/auth/*` quota for this client address; retry after `Retry-After` seconds",
        ]
        let userNotes = notes.merging([
            401: "`unauthenticated`: no access token, or an invalid, expired or revoked one",
            403: "`forbidden`: the credential is an API key; this needs a signed-in user's access token",
        ]) { $1 }
        let tokenNote =
            "`validation-failed`: `token` is missing, or invalid, expired or already used (`/token` `invalid`)"
        let noStore: OpenAPI.Header.Map = ["Cache-Control": Headers.noStore]
        let accepted = Responses.ok(
            "Accepted: the mail is on its way (when there is one to send)",
            Media.body(Names.accepted),
            headers: noStore
        )
        let done = Responses.ok("Done", headers: noStore)
        let tokens = Responses.ok(
            "Signed in: the token response",
            Media.body(Names.tokenResponse),
            headers: noStore
        )
        func request(_ properties: OrderedDictionary<String, JSONSchema>) -> OpenAPI.Request {
            Media.request(Media.json(.object(properties: properties)))
        }
        func operation(
            _ id: String,
            _ summary: String,
            _ description: String,
            body: OpenAPI.Request? = nil,
            _ success: [(OpenAPI.Response.StatusCode, Responses.R)],
            errors: [Int],
            notes: [Int: String],
            security: [OpenAPI.SecurityRequirement]
        ) -> OpenAPI.Operation {
            OpenAPI.Operation(
                tags: tag,
                summary: summary,
                description: description,
                operationId: id,
                requestBody: body,
                responses: Responses.merge(success, errors: Array(Set(errors)), notes: notes),
                security: security
            )
        }
        let refreshToken: OrderedDictionary<String, JSONSchema> = [
            "refresh_token": .string(description: "The `refresh_token` of a token response", minLength: 1)
        ]
        let mailToken: OrderedDictionary<String, JSONSchema> = [
            "token": .string(description: "The token from the mail (single use)", minLength: 1)
        ]
        let otp: OrderedDictionary<String, JSONSchema> = [
            "otp": .string(description: "The current 6-digit code of the authenticator app")
        ]

        paths["/v1/auth/register"] = .pathItem(
            OpenAPI.PathItem(
                post: operation(
                    "auth_register",
                    "Create an account",
                    """
                    Creates a `users` record with a password. The body is the email, the password and the \
                    profile fields of `users`; `verified`, `roles` and `disabled` cannot be set here. \
                    The answer is the new user, never the password; sign in with `POST /v1/auth/login`.
                    """,
                    body: Media.request(Media.body(Names.register)),
                    [
                        (
                            201,
                            Responses.ok(
                                "Created: the new user",
                                Media.body(Names.user),
                                headers: ["Location": Headers.location, "Cache-Control": Headers.noStore]
                            )
                        )
                    ],
                    errors: body + [401, 403, 409],
                    notes: notes.merging([
                        403: "`forbidden`: sign-up is closed on this server (`BASALT_REGISTRATION=closed`)",
                        409: "`conflict`: another account uses this email",
                        422: """
                        `validation-failed`: a missing or malformed email; a password that is too short or \
                        long, too common or the email itself; an invalid, unknown or managed profile field
                        """,
                    ]) { $1 },
                    security: open
                )
            )
        )
        paths["/v1/auth/login"] = .pathItem(
            OpenAPI.PathItem(
                post: operation(
                    "auth_login",
                    "Sign in",
                    """
                    Checks the email and password (and, with two-factor sign-in on, `otp`) and opens a \
                    session: the answer holds a short-lived access token and a refresh token. Attempts are \
                    throttled per email (whether or not the account exists) and per client address.
                    """,
                    body: Media.request(Media.body(Names.login)),
                    [(200, tokens)],
                    errors: body + [401],
                    notes: notes.merging([
                        401: """
                        `unauthenticated`: the email or password is wrong, or the account is disabled (one \
                        answer, in the same time, for all three), or an invalid credential was sent. \
                        `mfa-required` (also `401`): two-factor sign-in is on and `otp` is missing, wrong or \
                        already used.
                        """,
                        422: "`validation-failed`: `email` or `password` is missing",
                        429:
                            "`rate-limited`: too many attempts for this email or from this address; retry after `Retry-After` seconds",
                    ]) { $1 },
                    security: open
                )
            )
        )
        paths["/v1/auth/refresh"] = .pathItem(
            OpenAPI.PathItem(
                post: operation(
                    "auth_refresh",
                    "Refresh the access token",
                    """
                    Trades a refresh token for a new token response. Refresh tokens are single use: each \
                    refresh answers a new one, and presenting a used one revokes its whole session.
                    """,
                    body: request(refreshToken),
                    [(200, tokens)],
                    errors: body + [401],
                    notes: notes.merging([
                        401: """
                        `unauthenticated`: the refresh token is unknown, expired, revoked or already used, or \
                        the user is disabled; or an invalid credential was sent
                        """,
                        422: "`validation-failed`: `refresh_token` is missing",
                    ]) { $1 },
                    security: open
                )
            )
        )
        paths["/v1/auth/logout"] = .pathItem(
            OpenAPI.PathItem(
                post: operation(
                    "auth_logout",
                    "Sign out",
                    """
                    Revokes the session of the refresh token (its whole family). No access token is needed; \
                    an unknown token is not an error. Access tokens already issued stay valid until they expire.
                    """,
                    body: request(refreshToken),
                    [(204, done)],
                    errors: body + [401],
                    notes: notes.merging([422: "`validation-failed`: `refresh_token` is missing"]) { $1 },
                    security: open
                )
            )
        )
        paths["/v1/auth/me"] = .pathItem(
            OpenAPI.PathItem(
                get: operation(
                    "auth_me",
                    "The signed-in user",
                    "The caller's `users` record.",
                    [(200, Responses.ok("The caller", Media.body(Names.user), headers: noStore))],
                    errors: signedIn,
                    notes: userNotes,
                    security: user
                )
            )
        )
        paths["/v1/auth/sessions"] = .pathItem(
            OpenAPI.PathItem(
                get: operation(
                    "auth_list_sessions",
                    "The caller's sessions",
                    "The caller's live sessions (refresh-token families), most recently used first; at most 200.",
                    [
                        (
                            200,
                            Responses.ok(
                                "The sessions",
                                Media.json(
                                    .object(properties: ["items": .array(items: SchemaFactory.ref(Names.session))])
                                ),
                                headers: noStore
                            )
                        )
                    ],
                    errors: signedIn,
                    notes: userNotes,
                    security: user
                )
            )
        )
        paths["/v1/auth/sessions/{id}"] = .pathItem(
            OpenAPI.PathItem(
                parameters: [
                    .parameter(
                        .path(name: "id", schema: .string(format: .uuid), description: "A session id of the caller")
                    )
                ],
                delete: operation(
                    "auth_revoke_session",
                    "Revoke a session",
                    "Signs that session out: its refresh token stops working.",
                    [(204, done)],
                    errors: signedIn + [404],
                    notes: userNotes.merging([404: "`not-found`: the caller has no live session with this id"]) {
                        $1
                    },
                    security: user
                )
            )
        )
        paths["/v1/auth/verify/request"] = .pathItem(
            OpenAPI.PathItem(
                post: operation(
                    "auth_request_verification",
                    "Send a verification mail",
                    """
                    Mails the caller a single-use verification token, valid 24 hours. Nothing is sent when the \
                    address is already verified. No request body.
                    """,
                    [(202, accepted)],
                    errors: signedIn,
                    notes: userNotes,
                    security: user
                )
            )
        )
        paths["/v1/auth/verify"] = .pathItem(
            OpenAPI.PathItem(
                post: operation(
                    "auth_verify",
                    "Verify the email address",
                    "Marks the token's user as verified. No access token is needed: the token is the proof.",
                    body: request(mailToken),
                    [(204, done)],
                    errors: body + [401],
                    notes: notes.merging([422: tokenNote]) { $1 },
                    security: open
                )
            )
        )
        paths["/v1/auth/password/forgot"] = .pathItem(
            OpenAPI.PathItem(
                post: operation(
                    "auth_forgot_password",
                    "Request a password reset",
                    """
                    Mails a single-use reset token, valid 1 hour, when the address has an enabled account. The \
                    answer is `202` either way, so it does not tell whether an account exists.
                    """,
                    body: request(["email": .string(format: .email, minLength: 1)]),
                    [(202, accepted)],
                    errors: body + [401],
                    notes: notes.merging([
                        422: "`validation-failed`: `email` is missing",
                        429:
                            "`rate-limited`: too many requests for this email or from this address; retry after `Retry-After` seconds",
                    ]) { $1 },
                    security: open
                )
            )
        )
        paths["/v1/auth/password/reset"] = .pathItem(
            OpenAPI.PathItem(
                post: operation(
                    "auth_reset_password",
                    "Set a new password",
                    "Sets the password with the token from the reset mail and signs the user out everywhere.",
                    body: request(["token": mailToken["token"]!, "password": SchemaFactory.password]),
                    [(204, done)],
                    errors: body + [401],
                    notes: notes.merging([
                        422: """
                        `validation-failed`: `token` is missing, invalid, expired or already used, or the \
                        password is too short, too long or too common
                        """
                    ]) { $1 },
                    security: open
                )
            )
        )
        paths["/v1/auth/email/change"] = .pathItem(
            OpenAPI.PathItem(
                post: operation(
                    "auth_change_email",
                    "Request an email change",
                    """
                    Needs the current password (checked and throttled like sign-in). Mails a single-use \
                    confirmation token to the new address; the address changes (and counts as verified) when the \
                    token is posted to `/v1/auth/email/confirm`. Whether the address is taken is not told here \
                    (always `202`); confirming a taken address is the `409`.
                    """,
                    body: request([
                        "new_email": .string(
                            format: .email,
                            maxLength: 254,
                            pattern: SchemaFactory.defaultPattern(.email)
                        ),
                        "password": .string(format: .password, description: "The current password"),
                    ]),
                    [(202, accepted)],
                    errors: body + signedIn,
                    notes: userNotes.merging([
                        401: "`unauthenticated`: no access token, an invalid, expired or revoked one, or a wrong password",
                        422:
                            "`validation-failed`: `new_email` or `password` is missing, or `new_email` is not an email address",
                    ]) { $1 },
                    security: user
                )
            )
        )
        paths["/v1/auth/email/confirm"] = .pathItem(
            OpenAPI.PathItem(
                post: operation(
                    "auth_confirm_email",
                    "Confirm an email change",
                    """
                    Sets the new address of the token's user. No access token is needed: the token is the proof. \
                    Every other link mailed to the user before (reset, verification) stops working.
                    """,
                    body: request(mailToken),
                    [(204, done)],
                    errors: body + [401, 409],
                    notes: notes.merging([
                        409: "`conflict`: another account uses this email; the token stays usable",
                        422: tokenNote,
                    ]) { $1 },
                    security: open
                )
            )
        )
        let enrolment = JSONSchema.object(properties: [
            "secret": .string(description: "The shared key in base32, for apps that cannot read the URI"),
            "otpauth_uri": .string(
                format: .uri,
                description: "An `otpauth://totp/…` URI, usually shown as a QR code"
            ),
        ])
        paths["/v1/auth/oauth/exchange"] = .pathItem(
            OpenAPI.PathItem(
                post: operation(
                    "auth_oauth_exchange",
                    "Finish a sign-in with another provider",
                    """
                    Exchanges the single-use `code` that `GET /v1/auth/oauth/{provider}` brought back to the \
                    app's redirect URI (valid for a minute) for the token response; `code_verifier` is required \
                    when the sign-in was started with a `code_challenge`.
                    """,
                    body: request([
                        "code": .string(description: "The `code` query parameter of the redirect", minLength: 1),
                        "code_verifier": .string(required: false, description: "The PKCE verifier of the app's `code_challenge`"),
                    ]),
                    [(200, tokens)],
                    errors: body + [401],
                    notes: notes.merging([
                        401: "`unauthenticated`: the account was disabled meanwhile",
                        422: "`validation-failed`: the code is missing, invalid, expired or used, or the verifier does not match",
                    ]) { $1 },
                    security: open
                )
            )
        )
        paths["/v1/auth/identities"] = .pathItem(
            OpenAPI.PathItem(
                get: operation(
                    "auth_list_identities",
                    "The caller's linked identities",
                    "The identities of other providers the caller signs in with.",
                    [
                        (
                            200,
                            Responses.ok(
                                "The identities",
                                Media.json(.object(properties: ["items": .array(items: SchemaFactory.ref(Names.identity))])),
                                headers: noStore
                            )
                        )
                    ],
                    errors: signedIn,
                    notes: userNotes,
                    security: user
                )
            )
        )
        paths["/v1/auth/identities/{id}"] = .pathItem(
            OpenAPI.PathItem(
                parameters: [.parameter(.path(name: "id", schema: .string(format: .uuid), description: "A linked identity's id"))],
                delete: operation(
                    "auth_unlink_identity",
                    "Unlink an identity",
                    "The provider can no longer sign the caller in. Not the account's last way to sign in.",
                    [(204, done)],
                    errors: signedIn + [404, 409],
                    notes: userNotes.merging([
                        404: "`not-found`: the caller has no linked identity with this id",
                        409: "`conflict`: it is the account's only way to sign in (no password, no other identity)",
                    ]) { $1 },
                    security: user
                )
            )
        )
        paths["/v1/auth/mfa/totp"] = .pathItem(
            OpenAPI.PathItem(
                post: operation(
                    "auth_begin_totp",
                    "Start two-factor enrolment",
                    """
                    Creates a new TOTP key for the caller. It is not active until confirmed with a code at \
                    `POST /v1/auth/mfa/totp/confirm`. Needs the current password (checked and throttled like \
                    sign-in): an access token alone cannot add a second factor.
                    """,
                    body: request(["password": .string(format: .password, description: "The current password")]),
                    [(200, Responses.ok("The new key", Media.json(enrolment), headers: noStore))],
                    errors: body + signedIn + [409],
                    notes: userNotes.merging([
                        401: "`unauthenticated`: no access token, an invalid, expired or revoked one, or a wrong password",
                        409: "`conflict`: two-factor sign-in is already on; turn it off first",
                        422: "`validation-failed`: `password` is missing",
                    ]) {
                        $1
                    },
                    security: user
                ),
                delete: operation(
                    "auth_disable_totp",
                    "Turn two-factor sign-in off",
                    "Needs a current code or an unused recovery code; removes the key and the recovery codes.",
                    body: request([
                        "otp": .string(
                            description: "A current 6-digit code or an unused recovery code (`xxxxx-xxxxx`)"
                        )
                    ]),
                    [(204, done)],
                    errors: body + signedIn + [404],
                    notes: userNotes.merging([
                        404: "`not-found`: two-factor sign-in is not on",
                        422: "`validation-failed`: `otp` is missing, wrong or already used",
                    ]) { $1 },
                    security: user
                )
            )
        )
        paths["/v1/auth/mfa/totp/confirm"] = .pathItem(
            OpenAPI.PathItem(
                post: operation(
                    "auth_confirm_totp",
                    "Confirm two-factor enrolment",
                    """
                    Turns two-factor sign-in on with a current code from the app. The answer holds 10 recovery \
                    codes, shown only here; each can stand in for `otp` once.
                    """,
                    body: request(otp),
                    [
                        (
                            200,
                            Responses.ok(
                                "Two-factor sign-in is on",
                                Media.json(
                                    .object(properties: [
                                        "recovery_codes": .array(
                                            description: "Single-use codes (`xxxxx-xxxxx`)",
                                            minItems: 10,
                                            maxItems: 10,
                                            items: .string
                                        )
                                    ])
                                ),
                                headers: noStore
                            )
                        )
                    ],
                    errors: body + signedIn + [409],
                    notes: userNotes.merging([
                        409: "`conflict`: no enrolment was started, or two-factor sign-in is already on",
                        422: "`validation-failed`: `otp` is missing or does not match (check the device's clock)",
                    ]) { $1 },
                    security: user
                )
            )
        )
        paths["/.well-known/jwks.json"] = .pathItem(
            OpenAPI.PathItem(
                get: operation(
                    "jwks",
                    "Token signing keys",
                    """
                    The public keys (JWK Set, RFC 7517) that verify access tokens: pick the key by the token's \
                    `kid`. After a key rotation the old key stays listed until its tokens have expired. \
                    Credentials are ignored.
                    """,
                    [
                        (
                            200,
                            Responses.ok(
                                "The key set",
                                Media.body(Names.jwks),
                                headers: [
                                    "Cache-Control": .header(
                                        OpenAPI.Header(schema: .string, description: "`public, max-age=300`")
                                    )
                                ]
                            )
                        )
                    ],
                    errors: [429],
                    notes: [:],
                    security: Security.none
                )
            )
        )
    }

}
