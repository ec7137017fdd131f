public import BasaltCore
public import BasaltStorage

/// SQL over the identity tables of `InternalTables` (`0002_identity`). Every value is bound.
public enum IdentityTables {
    /// Everything Basalt keeps about a user outside the `users` row, for when that row is deleted.
    public static func forgetUser(_ id: String) -> [SQL] {
        [
            """
            DELETE FROM "_basalt_refresh_tokens" WHERE "session_id" IN (SELECT "id" FROM "_basalt_sessions" WHERE "user_id" = \(id))
            """,
            """
            DELETE FROM "_basalt_oauth_sessions" WHERE "session_id" IN (SELECT "id" FROM "_basalt_sessions" WHERE "user_id" = \(id))
            """,
            "DELETE FROM \"_basalt_sessions\" WHERE \"user_id\" = \(id)",
            "DELETE FROM \"_basalt_credentials\" WHERE \"user_id\" = \(id)",
            "DELETE FROM \"_basalt_recovery_codes\" WHERE \"user_id\" = \(id)",
            "DELETE FROM \"_basalt_mail_tokens\" WHERE \"user_id\" = \(id)",
            "DELETE FROM \"_basalt_identities\" WHERE \"user_id\" = \(id)",
            "DELETE FROM \"_basalt_oauth_codes\" WHERE \"user_id\" = \(id)",
            "DELETE FROM \"_basalt_oauth_exchanges\" WHERE \"user_id\" = \(id)",
        ]
    }

    /// Revokes every live session of a user (their refresh tokens die with them).
    public static func revokeSessions(userID: String, now: Timestamp) -> SQL {
        """
        UPDATE "_basalt_sessions" SET "revoked_at" = \(now.millisecondsSinceEpoch) WHERE "user_id" = \(userID) AND "revoked_at" IS NULL
        """
    }
}
