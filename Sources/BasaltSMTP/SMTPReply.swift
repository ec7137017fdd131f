/// One complete server reply (RFC 5321 §4.2): a three-digit code and the text of each line,
/// continuation lines (`250-…`) included, without the code and separator.
struct SMTPReply: Sendable, Equatable {
    var code: Int
    var lines: [String]

    /// All lines joined by a space, for errors and logs.
    var text: String { self.lines.joined(separator: " ") }

    /// The EHLO keywords (RFC 5321 §4.1.1.1): every line after the first, upper-cased, mapped to
    /// their parameters. Old servers advertise `AUTH=LOGIN PLAIN`; that form is read as `AUTH`.
    var extensions: [String: [String]] {
        var result: [String: [String]] = [:]
        for line in self.lines.dropFirst() {
            var words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard !words.isEmpty else { continue }
            var keyword = words.removeFirst().uppercased()
            if keyword.hasPrefix("AUTH="), keyword.count > 5 {
                words.insert(String(keyword.dropFirst(5)), at: 0)
                keyword = "AUTH"
            }
            result[keyword, default: []].append(contentsOf: words)
        }
        return result
    }
}
