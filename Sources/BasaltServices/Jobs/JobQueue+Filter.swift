public import BasaltCore
import BasaltStorage

/// `filter` on the job list (API.md §3, §12): the filter language over a job's fields, checked
/// and compiled by the same code as the records API, against a description of `_basalt_jobs`.
extension JobQueue {
    /// The job's fields as the filter language sees them (the names of `Job.json`).
    static let filterable = CollectionSchema(
        name: "jobs",
        fields: [
            FieldSchema(name: "kind", type: .text, required: true),
            FieldSchema(name: "owner", type: .text),
            FieldSchema(name: "state", type: .select, required: true, values: Job.State.allCases.map(\.rawValue)),
            FieldSchema(name: "attempts", type: .integer, required: true),
            FieldSchema(name: "max_attempts", type: .integer, required: true),
            FieldSchema(name: "run_at", type: .datetime, required: true),
            FieldSchema(name: "finished_at", type: .datetime),
            FieldSchema(name: "last_error", type: .text),
        ]
    )

    /// Checks `text` against the job's fields: a `400` with the error's column when it is not a
    /// filter over them.
    public static func filter(_ text: String) throws(BasaltError) -> FilterExpr {
        do {
            let expr = try FilterChecker.check(
                text,
                collection: filterable,
                schema: Schema(collections: [filterable]),
                systemFields: [.id, .createdAt, .updatedAt]
            )
            return expr.mappingLiterals(storedAsInJobs)
        } catch {
            throw error.basaltError
        }
    }

    /// The job table keeps times as milliseconds since the epoch and ids as text, where record
    /// tables keep timestamps and UUIDs: literals are bound as the job table stores them.
    static func storedAsInJobs(_ literal: FilterLiteral) -> FilterLiteral {
        switch literal {
        case .timestamp(let t): .int(t.millisecondsSinceEpoch)
        case .uuid(let id): .string(id)
        default: literal
        }
    }

    /// `expr` as a predicate on the job row `t`.
    func condition(_ expr: FilterExpr) -> SQLCondition {
        SQLCondition(expr, FilterCompiler(schema: Schema(collections: [Self.filterable]), dialect: store.dialect))
    }
}
