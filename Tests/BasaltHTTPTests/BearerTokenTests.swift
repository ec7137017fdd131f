import Testing

@testable import BasaltHTTP

@Suite("Authorization header: the Bearer scheme")
struct BearerTokenTests {
    @Test(
        arguments: [
            ("Bearer abc.def", "abc.def"), ("bearer abc", "abc"), ("BEARER abc", "abc"), ("BeArEr abc", "abc"),
            ("Bearer   abc \t", "abc"), ("Bearer bsk_Ab-9.x~+/==", "bsk_Ab-9.x~+/=="), ("Bearer abc=", "abc="),
            // RFC 6750's b64token only: no inner space, no padding first or inside, nothing else.
            ("Bearer abc def", nil), ("Bearer =abc", nil), ("Bearer ab=c", nil), ("Bearer abc\u{212A}", nil),
            ("Bearer a\"b", nil), ("Bearer a,b", nil), ("Bearer é", nil),
            ("Bearer", nil), ("Bearer ", nil), ("Bearer \t ", nil), ("Basic YWxhZGRpbjpvcGVuc2VzYW1l", nil),
            ("Bearerx abc", nil), ("Beare abc", nil), ("Bearer\tabc", nil), ("", nil), (" abc", nil), ("Bëarer abc", nil),
        ] as [(String, String?)]
    )
    func scheme(_ header: String, _ token: String?) {
        #expect(CredentialCheck.bearerToken(header) == token)
    }
}
