/// What the client writes: a command line (CRLF is added), the STARTTLS command (after whose
/// `220` reply the handler inserts TLS), or the dot-stuffed message body ending in `CRLF.CRLF`.
enum SMTPRequest: Sendable {
    case command(String)
    case startTLS
    case message([UInt8])
}
