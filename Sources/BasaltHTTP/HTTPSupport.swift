import BasaltCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Request and response plumbing shared by the route files.
enum HTTPSupport {
    static func json(_ status: HTTPResponse.Status, _ value: JSONValue, headers: HTTPFields = [:]) -> Response {
        var h = headers
        h[.contentType] = "application/json"
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: value.serializedBytes())))
    }

    /// 406 unless `Accept` admits JSON (absent admits everything).
    static func requireJSONAccept(_ request: Request) throws(BasaltError) {
        guard let accept = request.headers[.accept], !accept.isEmpty else { return }
        // What nearly every client sends, decided without parsing.
        if accept == "application/json" || accept == "*/*" { return }
        for range in accept.split(separator: ",") {
            let parts = range.split(separator: ";").map { $0.trimmingOWS().lowercased() }
            guard let type = parts.first else { continue }
            let q = parts.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            if q > 0, ["*/*", "application/*", "application/json", "application/problem+json"].contains(type) { return }
        }
        throw BasaltError(.notAcceptable, "This resource is only available as application/json")
    }

    /// Reads and parses a JSON body: 415 for other media types, 413 over the limit, 400 when malformed.
    static func jsonBody(_ request: Request, settings: HTTPSettings, mergePatch: Bool = false) async throws -> JSONValue {
        let header = request.headers[.contentType]
        let type = header == "application/json" ? header : header?.split(separator: ";").first?.trimmingOWS().lowercased()
        let allowed = mergePatch ? ["application/json", "application/merge-patch+json"] : ["application/json"]
        guard let type, allowed.contains(type) else {
            throw BasaltError(.unsupportedMediaType, "The body must be \(allowed.joined(separator: " or "))")
        }
        if let len = request.headers[.contentLength].flatMap(Int.init), len > settings.bodyLimitBytes {
            throw BasaltError(.payloadTooLarge, "The body is larger than \(settings.bodyLimitBytes) bytes")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: settings.bodyLimitBytes)
        } catch {
            throw BasaltError(.payloadTooLarge, "The body is larger than \(settings.bodyLimitBytes) bytes")
        }
        let bytes = Array(buffer.readableBytesView)
        do {
            return try JSONValue.parse(bytes, maxDepth: settings.jsonMaxDepth)
        } catch {
            throw BasaltError.badRequest("The body is not valid JSON: \(error.description)")
        }
    }

    static func weakETag(_ bytes: [UInt8]) -> String {
        "W/\"" + String(Digest.sha256Hex(bytes).prefix(24)) + "\""
    }

    /// RFC 9110 If-None-Match with weak comparison.
    static func noneMatch(_ raw: String?, _ etag: String) -> Bool {
        guard let raw else { return false }
        let header = VersionPrecondition.entityTags(raw)
        let strip: (Substring) -> Substring = { $0.hasPrefix("W/") ? $0.dropFirst(2) : $0 }
        let mine = strip(Substring(etag))
        return header.split(separator: ",").contains { t in
            let t = t.trimmingOWS()
            return t == "*" || strip(t) == mine
        }
    }
}

/// The query string as `application/x-www-form-urlencoded` (WHATWG URL): `+` is a space and
/// `%XX` sequences are decoded. Hummingbird's own accessor leaves `+` alone, which turns
/// `filter=views+%3E+5` into a syntax error.
struct QueryParameters: Sendable {
    var pairs: [(String, String)]

    init(_ query: String?) throws(BasaltError) {
        pairs = []
        guard let query, !query.isEmpty else { return }
        for part in query.split(separator: "&", omittingEmptySubsequences: true) {
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = try Self.decode(kv[0])
            let value = kv.count > 1 ? try Self.decode(kv[1]) : ""
            pairs.append((key, value))
        }
    }

    static func decode(_ s: Substring) throws(BasaltError) -> String {
        guard let decoded = PercentCoding.decode(s, plusIsSpace: true) else {
            throw BasaltError.badRequest("The query string has an invalid percent-encoding")
        }
        // No stored text can hold U+0000 (bodies refuse it; PostgreSQL's text cannot store it), so
        // a parameter holding one could never match anything, and PostgreSQL refuses it as a
        // bound value: one answer on both backends, here.
        guard !decoded.utf8.contains(0) else {
            throw BasaltError.badRequest("The query string contains U+0000 (%00), which no parameter may hold")
        }
        return decoded
    }

    /// The first value of `name`.
    func get(_ name: String) -> String? { pairs.first { $0.0 == name }?.1 }
}

/// Percent-encoding on bytes (Foundation's works through `NSString` and character sets, a
/// tenth of a list request's time when it built the `Link` header).
enum PercentCoding {
    /// RFC 3986: every byte of the UTF-8 form but the unreserved `A–Z a–z 0–9 - . _ ~` as `%XX`.
    static func encode(_ s: String) -> String {
        let utf8 = s.utf8
        if utf8.allSatisfy(isUnreserved) { return s }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count * 3)
        let hex = Array("0123456789ABCDEF".utf8)
        for b in utf8 {
            if isUnreserved(b) {
                out.append(b)
            } else {
                out.append(0x25)
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 0xF)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func isUnreserved(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x2E || b == 0x5F || b == 0x7E
    }

    /// `%XX` as a byte, and in a form component (`plusIsSpace`) `+` as a space. Nil for a `%` not
    /// followed by two hex digits, or bytes that are not UTF-8.
    static func decode(_ s: Substring, plusIsSpace: Bool) -> String? {
        let utf8 = s.utf8
        if !utf8.contains(where: { $0 == 0x25 || ($0 == 0x2B && plusIsSpace) }) { return String(s) }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count)
        var i = utf8.startIndex
        while i != utf8.endIndex {
            let b = utf8[i]
            utf8.formIndex(after: &i)
            switch b {
            case 0x2B where plusIsSpace:
                out.append(0x20)
            case 0x25:
                guard i != utf8.endIndex, let hi = hexValue(utf8[i]) else { return nil }
                utf8.formIndex(after: &i)
                guard i != utf8.endIndex, let lo = hexValue(utf8[i]) else { return nil }
                utf8.formIndex(after: &i)
                out.append(hi << 4 | lo)
            default:
                out.append(b)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }
}
