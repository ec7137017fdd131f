public import BasaltCore
public import BasaltStorage

/// SQL over the identity tables of `InternalTables` (`0002_identity`). Every value is bound.
public enum IdentityTables {
    /// Everything Basalt keeps about a user outside the `users` row, for when that row is deleted.
    public static func forgetUser(_ id: String, dialect: any SQLDialect) -> [SQLQuery] {
        let v = SQLValue.text(id)
        return [
            SQLQuery.build(dialect, ["DELETE FROM \"_basalt_refresh_tokens\" WHERE \"session_id\" IN (SELECT \"id\" FROM \"_basalt_sessions\" WHERE \"user_id\" = ", v, ")"]),
            SQLQuery.build(dialect, ["DELETE FROM \"_basalt_sessions\" WHERE \"user_id\" = ", v]),
            SQLQuery.build(dialect, ["DELETE FROM \"_basalt_credentials\" WHERE \"user_id\" = ", v]),
            SQLQuery.build(dialect, ["DELETE FROM \"_basalt_recovery_codes\" WHERE \"user_id\" = ", v]),
            SQLQuery.build(dialect, ["DELETE FROM \"_basalt_mail_tokens\" WHERE \"user_id\" = ", v]),
        ]
    }

    /// Revokes every live session of a user (their refresh tokens die with them).
    public static func revokeSessions(userID: String, now: Timestamp, dialect: any SQLDialect) -> SQLQuery {
        SQLQuery.build(dialect, ["UPDATE \"_basalt_sessions\" SET \"revoked_at\" = ", SQLValue.int(now.millisecondsSinceEpoch),
                        " WHERE \"user_id\" = ", SQLValue.text(userID), " AND \"revoked_at\" IS NULL"])
    }
}
