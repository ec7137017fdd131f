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
    ]

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
