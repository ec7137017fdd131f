/// Basalt's own tables. Each entry is a named migration, never edited once shipped; new needs
/// get new entries. The SQL is portable between SQLite and PostgreSQL except where a dialect
/// variant is given. Times are Unix milliseconds (BIGINT) in both.
public enum InternalTables {
    public struct Migration: Sendable {
        public var name: String
        public var sqlite: [String]
        public var postgres: [String]
    }

    public static let migrations: [Migration] = [
        Migration(
            name: "0001_core",
            sqlite: common + [],
            postgres: common + [
                // One definition of `~`'s case folding; ICU's root locale when the server has it.
                """
                CREATE OR REPLACE FUNCTION basalt_lower(t text) RETURNS text
                LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT lower(t COLLATE "und-x-icu") $$
                """
            ]
        ),
        Migration(name: "0002_identity", sqlite: identity, postgres: identity),
        // Idempotency records now hold the write's domain answer, not an HTTP response: the few
        // made by an older version (24 h at most) are dropped rather than replayed wrongly.
        Migration(name: "0003_idempotency_answers", sqlite: forgetIdempotency, postgres: forgetIdempotency),
        Migration(name: "0004_events", sqlite: sqliteEvents, postgres: postgresEvents),
        Migration(
            name: "0005_jobs_and_webhooks",
            sqlite: jobs + webhooks + moveMail(payload: #"json_object('to', "recipient", 'subject', "subject", 'body', "body")"#),
            postgres: jobs + webhooks + moveMail(payload: #"json_build_object('to', "recipient", 'subject', "subject", 'body', "body")::text"#)
        ),
        Migration(name: "0006_oauth", sqlite: oauthServer + oauthClient, postgres: oauthServer + oauthClient),
    ]

    /// Sign-in with other providers (API.md §8.1): identities linked to users (one per provider
    /// subject), the flows under way (by the hash of their `state`; the PKCE verifier and nonce
    /// sent to the provider), and the single-use codes apps exchange for Basalt's tokens.
    static let oauthClient = [
        """
        CREATE TABLE "_basalt_identities" ("id" TEXT PRIMARY KEY NOT NULL, "user_id" TEXT NOT NULL, "provider" TEXT NOT NULL,
          "subject" TEXT NOT NULL, "email" TEXT, "created_at" BIGINT NOT NULL, UNIQUE ("provider", "subject"))
        """,
        """
        CREATE INDEX "_basalt_identities_user" ON "_basalt_identities" ("user_id")
        """,
        """
        CREATE TABLE "_basalt_oauth_states" ("state_hash" TEXT PRIMARY KEY NOT NULL, "provider" TEXT NOT NULL, "nonce" TEXT NOT NULL,
          "code_verifier" TEXT NOT NULL, "redirect_uri" TEXT NOT NULL, "app_challenge" TEXT, "expires_at" BIGINT NOT NULL, "used_at" BIGINT)
        """,
        """
        CREATE TABLE "_basalt_oauth_exchanges" ("code_hash" TEXT PRIMARY KEY NOT NULL, "user_id" TEXT NOT NULL, "provider" TEXT NOT NULL,
          "app_challenge" TEXT, "expires_at" BIGINT NOT NULL, "used_at" BIGINT)
        """,
    ]

    /// The OAuth 2.1 authorization server (API.md §8.1): registered clients (secrets as SHA-256
    /// digests of 256 random bits, lists as JSON arrays), single-use authorization codes (hashed;
    /// `session_id` is the session the code's exchange opened, revoked when the code comes back),
    /// and which client and scope a session was granted to. A session of a client itself
    /// (`client_credentials`) has the client's id as its `user_id`.
    static let oauthServer = [
        """
        CREATE TABLE "_basalt_oauth_clients" ("id" TEXT PRIMARY KEY NOT NULL, "name" TEXT NOT NULL, "secret_hash" TEXT,
          "redirect_uris" TEXT NOT NULL, "grants" TEXT NOT NULL, "scopes" TEXT NOT NULL, "roles" TEXT NOT NULL,
          "created_at" BIGINT NOT NULL)
        """,
        """
        CREATE TABLE "_basalt_oauth_codes" ("code_hash" TEXT PRIMARY KEY NOT NULL, "client_id" TEXT NOT NULL,
          "user_id" TEXT NOT NULL, "redirect_uri" TEXT NOT NULL, "scope" TEXT NOT NULL, "code_challenge" TEXT NOT NULL,
          "nonce" TEXT, "auth_time" BIGINT NOT NULL, "expires_at" BIGINT NOT NULL, "used_at" BIGINT, "session_id" TEXT)
        """,
        """
        CREATE TABLE "_basalt_oauth_sessions" ("session_id" TEXT PRIMARY KEY NOT NULL, "client_id" TEXT NOT NULL,
          "scope" TEXT NOT NULL)
        """,
        """
        CREATE INDEX "_basalt_oauth_sessions_client" ON "_basalt_oauth_sessions" ("client_id")
        """,
    ]

    /// The durable job queue (`JobQueue`). `run_at` is when a job is next due: for a running job,
    /// when its lease ends (a worker that died leaves it due again). Jobs sharing an
    /// `ordering_key` run one at a time in `ordering_rank` order (a webhook's deliveries per record).
    static let jobs = [
        """
        CREATE TABLE "_basalt_jobs" ("id" TEXT PRIMARY KEY NOT NULL, "kind" TEXT NOT NULL, "owner" TEXT, "payload" TEXT NOT NULL,
          "state" TEXT NOT NULL, "attempts" BIGINT NOT NULL DEFAULT 0, "max_attempts" BIGINT NOT NULL, "run_at" BIGINT NOT NULL,
          "ordering_key" TEXT, "ordering_rank" BIGINT, "created_at" BIGINT NOT NULL, "updated_at" BIGINT NOT NULL,
          "finished_at" BIGINT, "last_error" TEXT)
        """,
        """
        CREATE INDEX "_basalt_jobs_due" ON "_basalt_jobs" ("state", "run_at")
        """,
        """
        CREATE INDEX "_basalt_jobs_order" ON "_basalt_jobs" ("ordering_key", "ordering_rank")
        """,
        """
        CREATE INDEX "_basalt_jobs_owner" ON "_basalt_jobs" ("owner", "id")
        """,
    ]

    /// Webhook endpoints (secrets sealed with the master key), the log of delivery attempts, and
    /// the dispatcher's position in the outbox (starting at its current end: no webhook existed).
    static let webhooks = [
        """
        CREATE TABLE "_basalt_webhooks" ("id" TEXT PRIMARY KEY NOT NULL, "url" TEXT NOT NULL, "events" TEXT NOT NULL,
          "collections" TEXT NOT NULL, "secret" TEXT NOT NULL, "enabled" BIGINT NOT NULL, "since_sequence" BIGINT NOT NULL,
          "failing_since" BIGINT, "disabled_reason" TEXT, "created_at" BIGINT NOT NULL, "updated_at" BIGINT NOT NULL)
        """,
        """
        CREATE TABLE "_basalt_webhook_attempts" ("id" TEXT PRIMARY KEY NOT NULL, "delivery_id" TEXT NOT NULL,
          "webhook_id" TEXT NOT NULL, "attempt" BIGINT NOT NULL, "at" BIGINT NOT NULL, "status" BIGINT, "duration_ms" BIGINT NOT NULL,
          "error" TEXT)
        """,
        """
        CREATE INDEX "_basalt_webhook_attempts_delivery" ON "_basalt_webhook_attempts" ("delivery_id", "attempt")
        """,
        """
        CREATE TABLE "_basalt_cursors" ("name" TEXT PRIMARY KEY NOT NULL, "position" BIGINT NOT NULL)
        """,
        """
        INSERT INTO "_basalt_cursors" ("name", "position")
        SELECT 'webhooks', COALESCE(max("sequence"), 0) FROM "_basalt_events"
        """,
    ]

    /// Mail moves onto the job queue: what was still unsent comes along, sealed bodies as they were.
    static func moveMail(payload: String) -> [String] {
        [
            """
            INSERT INTO "_basalt_jobs" ("id", "kind", "owner", "payload", "state", "attempts", "max_attempts", "run_at",
              "created_at", "updated_at", "last_error")
            SELECT "id", 'mail', "recipient", \(payload), CASE WHEN "attempts" = 0 THEN 'pending' ELSE 'failed' END,
              "attempts", 12, "next_attempt_at", "created_at", "created_at", "last_error"
            FROM "_basalt_mail_queue" WHERE "sent_at" IS NULL AND "attempts" < 12
            """,
            """
            DROP TABLE "_basalt_mail_queue"
            """,
        ]
    }

    /// The outbox (API.md §10). Collection tables' triggers append to it (`EventTriggers`).
    /// SQLite has one writer, so the row id is already the commit order: `sequence` is it
    /// (AUTOINCREMENT: never reused after retention deletes).
    static let sqliteEvents =
        [
            """
            CREATE TABLE "_basalt_events" ("sequence" INTEGER PRIMARY KEY AUTOINCREMENT, "id" TEXT NOT NULL, "type" TEXT NOT NULL,
              "collection" TEXT NOT NULL, "record_id" TEXT NOT NULL, "time" BIGINT NOT NULL, "data" TEXT NOT NULL)
            """,
            """
            CREATE INDEX "_basalt_events_time" ON "_basalt_events" ("time")
            """,
        ] + realtimeTickets

    /// Single-use tickets for browsers' realtime connections: the hash of the ticket and the
    /// caller's credential, sealed with the master key, for 60 seconds.
    static let realtimeTickets = [
        """
        CREATE TABLE "_basalt_realtime_tickets" ("ticket_hash" TEXT PRIMARY KEY NOT NULL, "credential" TEXT NOT NULL,
          "expires_at" BIGINT NOT NULL, "used_at" BIGINT)
        """
    ]

    /// PostgreSQL commits concurrently, so a serial number taken at insert is not commit order. Rows
    /// are appended with `sequence` NULL and numbered after they commit, in batches, by
    /// `EventLog.number` (one numbering transaction at a time, from `_basalt_event_clock`): a batch
    /// becomes visible at once, so no reader sees a later number before an earlier one, and writers
    /// never wait for one another. `position` (insert order) orders a batch: two changes of one
    /// record are ordered by its row lock, so the later one's row has the larger position.
    static let postgresEvents =
        [
            """
            CREATE TABLE "_basalt_events" ("position" BIGSERIAL PRIMARY KEY, "sequence" BIGINT UNIQUE,
              "id" TEXT NOT NULL, "type" TEXT NOT NULL,
              "collection" TEXT NOT NULL, "record_id" TEXT NOT NULL, "time" BIGINT NOT NULL, "data" TEXT NOT NULL)
            """,
            """
            CREATE INDEX "_basalt_events_unnumbered" ON "_basalt_events" ("position") WHERE "sequence" IS NULL
            """,
            """
            CREATE INDEX "_basalt_events_time" ON "_basalt_events" ("time")
            """,
            """
            CREATE TABLE "_basalt_event_clock" ("id" INTEGER PRIMARY KEY, "last" BIGINT NOT NULL)
            """,
            """
            INSERT INTO "_basalt_event_clock" ("id", "last") VALUES (1, 0)
            """,
            """
            CREATE OR REPLACE FUNCTION basalt_record_event() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE r record;
            BEGIN
              IF current_setting('basalt.migrating', true) = 'on' THEN RETURN NULL; END IF;
              IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
              INSERT INTO "_basalt_events" ("id", "type", "collection", "record_id", "time", "data") VALUES (
                gen_random_uuid()::text,
                CASE TG_OP WHEN 'INSERT' THEN 'basalt.record.created' WHEN 'UPDATE' THEN 'basalt.record.updated' ELSE 'basalt.record.deleted' END,
                TG_TABLE_NAME, r."id"::text, (extract(epoch FROM clock_timestamp()) * 1000)::bigint, to_jsonb(r)::text);
              RETURN NULL;
            END $$
            """,
        ] + realtimeTickets

    static let forgetIdempotency = [#"DELETE FROM "_basalt_idempotency""#]

    /// Identity (API.md §8): credentials and MFA apart from the `users` collection (so the
    /// records API can never read them), sessions as refresh-token families, single-use mail
    /// tokens, the durable mail queue, signing keys (sealed) and the audit log. User ids are
    /// stored as text here; only `users` itself is a collection table.
    static let identity: [String] = [
        """
        CREATE TABLE "_basalt_credentials" ("user_id" TEXT PRIMARY KEY NOT NULL, "password_hash" TEXT,
          "totp_secret" TEXT, "totp_enabled" BIGINT NOT NULL DEFAULT 0, "totp_last_step" BIGINT, "updated_at" BIGINT NOT NULL)
        """,
        """
        CREATE TABLE "_basalt_recovery_codes" ("user_id" TEXT NOT NULL, "code_hash" TEXT NOT NULL, "used_at" BIGINT,
          PRIMARY KEY ("user_id", "code_hash"))
        """,
        """
        CREATE TABLE "_basalt_sessions" ("id" TEXT PRIMARY KEY NOT NULL, "user_id" TEXT NOT NULL, "created_at" BIGINT NOT NULL,
          "last_used_at" BIGINT NOT NULL, "expires_at" BIGINT NOT NULL, "revoked_at" BIGINT, "user_agent" TEXT, "client_address" TEXT)
        """,
        """
        CREATE INDEX "_basalt_sessions_user" ON "_basalt_sessions" ("user_id")
        """,
        """
        CREATE TABLE "_basalt_refresh_tokens" ("token_hash" TEXT PRIMARY KEY NOT NULL, "session_id" TEXT NOT NULL,
          "created_at" BIGINT NOT NULL, "used_at" BIGINT)
        """,
        """
        CREATE INDEX "_basalt_refresh_tokens_session" ON "_basalt_refresh_tokens" ("session_id")
        """,
        """
        CREATE TABLE "_basalt_mail_tokens" ("token_hash" TEXT PRIMARY KEY NOT NULL, "user_id" TEXT NOT NULL,
          "purpose" TEXT NOT NULL, "payload" TEXT, "created_at" BIGINT NOT NULL, "expires_at" BIGINT NOT NULL, "used_at" BIGINT)
        """,
        """
        CREATE INDEX "_basalt_mail_tokens_user" ON "_basalt_mail_tokens" ("user_id")
        """,
        """
        CREATE TABLE "_basalt_mail_queue" ("id" TEXT PRIMARY KEY NOT NULL, "recipient" TEXT NOT NULL, "subject" TEXT NOT NULL,
          "body" TEXT NOT NULL, "created_at" BIGINT NOT NULL, "attempts" BIGINT NOT NULL DEFAULT 0,
          "next_attempt_at" BIGINT NOT NULL, "sent_at" BIGINT, "last_error" TEXT)
        """,
        """
        CREATE INDEX "_basalt_mail_queue_due" ON "_basalt_mail_queue" ("sent_at", "next_attempt_at")
        """,
        """
        CREATE TABLE "_basalt_reset_requests" ("id" TEXT PRIMARY KEY NOT NULL, "email" TEXT NOT NULL, "created_at" BIGINT NOT NULL)
        """,
        """
        CREATE TABLE "_basalt_signing_keys" ("kid" TEXT PRIMARY KEY NOT NULL, "private_key" TEXT NOT NULL,
          "created_at" BIGINT NOT NULL, "retired_at" BIGINT)
        """,
        """
        CREATE TABLE "_basalt_audit" ("id" TEXT PRIMARY KEY NOT NULL, "at" BIGINT NOT NULL, "actor" TEXT NOT NULL,
          "action" TEXT NOT NULL, "collection" TEXT, "record_id" TEXT, "request_id" TEXT, "detail" TEXT)
        """,
        """
        CREATE INDEX "_basalt_audit_at" ON "_basalt_audit" ("at")
        """,
    ]

    static let common: [String] = [
        """
        CREATE TABLE "_basalt_schema" ("id" INTEGER PRIMARY KEY NOT NULL, "version" BIGINT NOT NULL, "document" TEXT NOT NULL)
        """,
        """
        CREATE TABLE "_basalt_migrations" ("version" BIGINT PRIMARY KEY NOT NULL, "applied_at" BIGINT NOT NULL,
          "steps" TEXT NOT NULL, "source" TEXT NOT NULL)
        """,
        """
        CREATE TABLE "_basalt_api_keys" ("id" TEXT PRIMARY KEY NOT NULL, "name" TEXT NOT NULL,
          "key_hash" TEXT NOT NULL UNIQUE, "prefix" TEXT NOT NULL, "admin" BIGINT NOT NULL, "roles" TEXT NOT NULL,
          "created_at" BIGINT NOT NULL, "expires_at" BIGINT, "last_used_at" BIGINT, "revoked_at" BIGINT)
        """,
        """
        CREATE TABLE "_basalt_idempotency" ("key_hash" TEXT PRIMARY KEY NOT NULL, "request_hash" TEXT NOT NULL,
          "state" TEXT NOT NULL, "status" BIGINT, "headers" TEXT, "body" TEXT, "created_at" BIGINT NOT NULL)
        """,
        """
        CREATE TABLE "_basalt_settings" ("key" TEXT PRIMARY KEY NOT NULL, "value" TEXT NOT NULL)
        """,
        """
        CREATE INDEX "_basalt_idempotency_created" ON "_basalt_idempotency" ("created_at")
        """,
    ]

    public static let historyTable = "_basalt_internal_migrations"
}
