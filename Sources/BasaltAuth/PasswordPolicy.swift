public import BasaltCore

/// What a new password must satisfy: a length range (in Unicode scalars, after no normalization —
/// the bytes the user typed are what gets hashed) and not being one of the passwords attackers
/// try first (NIST SP 800-63B §5.1.1.2).
public struct PasswordPolicy: Sendable {
    public var minimumLength: Int
    public var maximumLength: Int

    public init(minimumLength: Int = 8, maximumLength: Int = 256) {
        self.minimumLength = minimumLength
        self.maximumLength = maximumLength
    }

    /// Field errors for `password` at `pointer`; empty when it is acceptable.
    public func check(_ password: String, pointer: String = "/password", email: String? = nil) -> [FieldError] {
        let n = password.unicodeScalars.count
        if n < minimumLength {
            return [FieldError(field: pointer, code: .min, message: "The password must have at least \(minimumLength) characters")]
        }
        if n > maximumLength {
            return [FieldError(field: pointer, code: .max, message: "The password must have at most \(maximumLength) characters")]
        }
        let folded = password.lowercased()
        if Self.common.contains(folded) {
            return [FieldError(field: pointer, code: .invalid, message: "This password is too common; choose another")]
        }
        if let email, let local = email.split(separator: "@").first, folded == local.lowercased() || folded == email.lowercased() {
            return [FieldError(field: pointer, code: .invalid, message: "The password must not be the email address")]
        }
        return []
    }

    /// The most used passwords of public breach corpora that pass the length rule (shorter ones
    /// are refused by length already). Compared case-insensitively.
    static let common: Set<String> = [
        "password", "password1", "password12", "password123", "password1234", "password!", "passw0rd", "p@ssw0rd",
        "p@ssword", "pa$$word", "12345678", "123456789", "1234567890", "12345678910", "0123456789", "987654321",
        "87654321", "11111111", "111111111", "1111111111", "00000000", "000000000", "22222222", "88888888",
        "99999999", "12341234", "11223344", "12121212", "123123123", "123456123", "1q2w3e4r", "1q2w3e4r5t",
        "1qaz2wsx", "1qazxsw2", "zaq12wsx", "zaq1zaq1", "qwertyui", "qwertyuiop", "qwerty123", "qwerty12",
        "qwerty1234", "qwe123qwe", "asdfghjk", "asdfghjkl", "asdf1234", "zxcvbnm1", "zxcvbnm123", "abcd1234",
        "abc12345", "abcdefgh", "abcdefg1", "a1b2c3d4", "aa123456", "iloveyou", "iloveyou1", "iloveyou2",
        "sunshine", "sunshine1", "princess", "princess1", "football", "football1", "baseball", "basketball",
        "superman", "batman123", "starwars", "trustno1", "whatever", "welcome1", "welcome123", "letmein1",
        "letmein123", "changeme", "changeme1", "changeme123", "default1", "computer", "internet", "jennifer",
        "michelle", "jordan23", "michael1", "charlie1", "master12", "mustang1", "liverpool", "chelsea1",
        "arsenal1", "manchester", "pokemon1", "dragon12", "monkey12", "shadow12", "hunter12", "hello123",
        "helloworld", "admin123", "admin1234", "administrator", "root1234", "toor1234", "secret12", "secret123",
        "access14", "blink182", "samsung1", "samsung123", "google123", "facebook", "linkedin", "cookie123",
        "chocolate", "butterfly", "babygirl1", "lovely123", "loveyou1", "forever1", "freedom1", "fuckyou1",
        "soccer12", "summer2024", "summer2025", "summer2026", "winter2025", "winter2026", "spring2026",
        "autumn2026", "qwerty2026", "password2024", "password2025", "password2026", "passwort", "motdepasse",
        "contraseña", "senha123", "q1w2e3r4", "q1w2e3r4t5", "1234qwer", "qweasdzxc", "qazwsxedc", "1q2w3e4r5t6y",
        "aaaaaaaa", "abcabcabc", "asdasdasd", "qweqweqwe", "zxczxczxc", "azertyuiop", "azerty123", "00000000a",
        "123456789a", "12345678a", "a12345678", "123456abc", "abc123456", "1234abcd", "test1234", "testtest",
        "test12345", "guest123", "user1234", "demo1234", "basalt123", "pocketbase", "supabase", "letmeinplease",
    ]
}
