public import BasaltCore
import Foundation
public import HTTPTypes
public import Hummingbird
import Logging
import NIOCore

/// RFC 9457 problem details: the one place errors become responses.
public enum Problem {
    public static func status(_ code: BasaltError.Code) -> HTTPResponse.Status {
        switch code.base {
        case .badRequest: .badRequest
        case .unauthenticated, .mfaRequired: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .methodNotAllowed: .methodNotAllowed
        case .notAcceptable: .notAcceptable
        case .conflict: .conflict
        case .gone: .gone
        case .preconditionFailed: .preconditionFailed
        case .payloadTooLarge: .contentTooLarge
        case .unsupportedMediaType: .unsupportedMediaType
        case .validationFailed: .unprocessableContent
        case .rateLimited: .tooManyRequests
        case .internalError: .internalServerError
        case .unavailable: .serviceUnavailable
        }
    }

    public static func title(_ code: BasaltError.Code) -> String {
        switch code.base {
        case .badRequest: "Bad request"
        case .unauthenticated: "Unauthenticated"
        case .mfaRequired: "Second factor required"
        case .forbidden: "Forbidden"
        case .notFound: "Not found"
        case .methodNotAllowed: "Method not allowed"
        case .notAcceptable: "Not acceptable"
        case .conflict: "Conflict"
        case .gone: "Gone"
        case .preconditionFailed: "Precondition failed"
        case .payloadTooLarge: "Payload too large"
        case .unsupportedMediaType: "Unsupported media type"
        case .validationFailed: "Validation failed"
        case .rateLimited: "Too many requests"
        case .internalError: "Internal error"
        case .unavailable: "Service unavailable"
        }
    }

    public static func body(_ e: BasaltError, instance: String, requestID: String) -> JSONValue {
        var o = JSONObject(minimumCapacity: 8)
        o.append("type", .string("/problems/\(e.code.slug)"))
        o.append("title", .string(title(e.code)))
        o.append("status", .int(Int64(status(e.code).code)))
        o.append("detail", .string(e.message))
        o.append("instance", .string(instance))
        o.append("request_id", .string(requestID))
        if !e.fieldErrors.isEmpty {
            o.append(
                "errors",
                .array(
                    e.fieldErrors.map { fe in
                        .object(JSONObject([("field", .string(fe.field)), ("code", .string(fe.code.rawValue)), ("message", .string(fe.message))]))
                    }
                )
            )
        }
        for (k, v) in e.extensions where o[k] == nil { o.append(k, v) }
        return .object(o)
    }

    public static func response(_ e: BasaltError, instance: String, requestID: String) -> Response {
        var headers: HTTPFields = [.contentType: "application/problem+json", .cacheControl: "no-store"]
        if let s = e.retryAfter { headers[.retryAfter] = String(s) }
        if !e.allowedMethods.isEmpty { headers[.allow] = e.allowedMethods.joined(separator: ", ") }
        if e.code == .unauthenticated {
            headers[.wwwAuthenticate] = e.bearerError.map { "Bearer error=\"\($0)\"" } ?? "Bearer"
        }
        return Response(
            status: status(e.code),
            headers: headers,
            body: .init(byteBuffer: ByteBuffer(bytes: body(e, instance: instance, requestID: requestID).serializedBytes()))
        )
    }

    /// Any error as a `BasaltError`, mapped here and nowhere else: errors that know their
    /// meaning (storage, filters) convert themselves; Hummingbird's HTTP errors keep their
    /// status; anything else is a 500 whose detail says nothing of its cause.
    public static func normalize(_ error: any Error) -> BasaltError {
        if let e = error as? BasaltError { return e }
        if let e = error as? any BasaltErrorConvertible { return e.basaltError }
        if let h = error as? HTTPError {
            switch h.status {
            case .notFound: return BasaltError(.notFound, "There is nothing at this path")
            case .contentTooLarge: return BasaltError(.payloadTooLarge, "The body is larger than the limit")
            case .badRequest: return BasaltError(.badRequest, "The request is malformed")
            case .methodNotAllowed: return BasaltError(.methodNotAllowed, "The method is not allowed here")
            case .unsupportedMediaType: return BasaltError(.unsupportedMediaType, "The body must be JSON")
            default: break
            }
        }
        return BasaltError(.internalError, "An internal error occurred; quote the request id when reporting it", underlying: error)
    }
}
