import Testing

@testable import BasaltHTTP

@Suite("Authorization header: the Bearer scheme")
struct BearerTokenTests {
    @Test(
        arguments: [
            ("Bearer abc.def", "abc.def"), ("bearer abc", "abc"), ("BEARER abc", "abc"), ("BeArEr abc", "abc"),
            ("Bearer   abc \t", "abc"), ("Bearer abc def", "abc def"),
            ("Bearer", nil), ("Bearer ", nil), ("Bearer \t ", nil), ("Basic YWxhZGRpbjpvcGVuc2VzYW1l", nil),
            ("Bearerx abc", nil), ("Beare abc", nil), ("Bearer\tabc", nil), ("", nil), (" abc", nil), ("Bëarer abc", nil),
        ] as [(String, String?)]
    )
    func scheme(_ header: String, _ token: String?) {
        #expect(CredentialCheck.bearerToken(header) == token)
    }
}
