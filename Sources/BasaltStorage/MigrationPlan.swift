public import BasaltCore

/// What a schema change does, step by step, and the SQL that does it.
public struct MigrationPlan: Sendable {
    public struct Step: Sendable, Equatable {
        public var action: String
        public var collection: String?
        public var field: String?
        public var detail: String
        public var destructive: Bool

        public var json: JSONValue {
            var o = JSONObject([("action", .string(action))])
            if let collection { o.append("collection", .string(collection)) }
            if let field { o.append("field", .string(field)) }
            o.append("detail", .string(detail))
            o.append("destructive", .bool(destructive))
            return .object(o)
        }
    }

    public var steps: [Step]
    public var statements: [SQLQuery]
    public var wanted: Schema

    public var isEmpty: Bool { steps.isEmpty }
    public var isDestructive: Bool { steps.contains { $0.destructive } }

    public var json: JSONValue {
        .object(
            JSONObject([
                ("steps", .array(steps.map(\.json))),
                ("destructive", .bool(isDestructive)),
            ])
        )
    }

    /// The refusal of a destructive plan: `409` with the destructive steps listed.
    public var destructiveRefusal: BasaltError {
        let errs = steps.filter(\.destructive).map { s in
            FieldError(
                field: "/collections/\(s.collection ?? "")" + (s.field.map { "/fields/\($0)" } ?? ""),
                code: .invalid,
                message: s.detail
            )
        }
        var e = BasaltError(
            .conflict,
            "The schema change is destructive; repeat it with allow_destructive to apply it",
            fieldErrors: errs
        )
        e.extensions.append(("plan", json))
        return e
    }
}
