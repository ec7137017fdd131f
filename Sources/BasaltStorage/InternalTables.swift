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
        )
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
