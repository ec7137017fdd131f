import Foundation

/// Collections every deployment has. `users` is the auth collection of API.md §8/§12: its
/// system-managed fields come first; a schema may declare `users` to add profile fields,
/// indexes and grants, and may repeat the built-in fields only exactly as they are here.
public enum BuiltinCollections {
    public static let usersName = "users"

    /// Fields only admins and the auth flows write: a user's own record writes never change them.
    public static let managedUserFields: Set<String> = ["email", "verified", "roles", "disabled"]

    public static let userFields: [FieldSchema] = [
        FieldSchema(name: "email", type: .email, required: true, unique: true, max: 254),
        FieldSchema(name: "verified", type: .boolean, defaultValue: .bool(false)),
        FieldSchema(name: "roles", type: .json, defaultValue: .array([])),
        FieldSchema(name: "disabled", type: .boolean, defaultValue: .bool(false)),
    ]

    /// Field names a schema may not use in `users` for anything else.
    public static let reservedUserFields: Set<String> = ["password", "password_hash", "otp", "mfa"]

    /// Canonical form of an email address for lookups and uniqueness: trimmed, lowercased.
    public static func normalizeEmail(_ s: String) -> String {
        s.trimmingCharacters(in: .whitespaces).lowercased()
    }
}

extension Schema {
    /// This schema with the built-in collections merged in. Idempotent: applying it to its own
    /// result changes nothing, so an exported schema re-imports unchanged.
    public func withBuiltins() throws(BasaltError) -> Schema {
        var s = self
        var errors: [FieldError] = []
        let builtins = BuiltinCollections.userFields
        if let i = s.collections.firstIndex(where: { $0.name == BuiltinCollections.usersName }) {
            var c = s.collections[i]
            for f in c.fields {
                if let b = builtins.first(where: { $0.name == f.name }), b != f {
                    errors.append(
                        FieldError(
                            field: "/collections/users/fields/\(f.name)",
                            code: .invalid,
                            message: "users.\(f.name) is built in and cannot be redefined"
                        )
                    )
                }
                if BuiltinCollections.reservedUserFields.contains(f.name) {
                    errors.append(
                        FieldError(
                            field: "/collections/users/fields/\(f.name)",
                            code: .invalid,
                            message: "users.\(f.name) is reserved for the auth flows"
                        )
                    )
                }
            }
            let own = c.fields.filter { f in !builtins.contains { $0.name == f.name } }
            c.fields = builtins + own
            s.collections[i] = c
        } else {
            s.collections.insert(CollectionSchema(name: BuiltinCollections.usersName, fields: builtins), at: 0)
        }
        if !errors.isEmpty { throw BasaltError.validation(errors) }
        return s
    }
}
