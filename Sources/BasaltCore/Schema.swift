/// The declared shape of a deployment: its collections and roles. An immutable value; changes go
/// through the migration planner, which swaps the whole value atomically.
public struct Schema: Sendable, Equatable {
    public var collections: [CollectionSchema]
    public var roles: [RoleDefinition]

    public init(collections: [CollectionSchema] = [], roles: [RoleDefinition] = []) {
        self.collections = collections
        self.roles = roles
    }

    public func collection(_ name: String) -> CollectionSchema? {
        collections.first { $0.name == name }
    }

    public static let empty = Schema()
}

public struct RoleDefinition: Sendable, Equatable {
    public var name: String
    public var inherits: [String]
    public init(name: String, inherits: [String] = []) {
        self.name = name
        self.inherits = inherits
    }
}

public struct CollectionSchema: Sendable, Equatable {
    public var name: String
    public var fields: [FieldSchema]
    public var indexes: [IndexSchema]
    public var access: AccessRules

    public init(name: String, fields: [FieldSchema], indexes: [IndexSchema] = [], access: AccessRules = AccessRules()) {
        self.name = name
        self.fields = fields
        self.indexes = indexes
        self.access = access
    }

    public func field(_ name: String) -> FieldSchema? { fields.first { $0.name == name } }
}

public enum FieldType: String, Sendable, CaseIterable, Equatable {
    case text, integer, number, boolean, datetime, email, url, select, json, relation

    /// Text-like types share comparison semantics (code point order) in filters and sorts.
    public var isTextual: Bool {
        switch self {
        case .text, .email, .url, .select: true
        default: false
        }
    }
}

public enum OnDelete: String, Sendable, Equatable, CaseIterable {
    case restrict, cascade
    case setNull = "set_null"
}

public struct FieldSchema: Sendable, Equatable {
    public var name: String
    public var type: FieldType
    public var required: Bool
    public var unique: Bool
    public var min: Double?
    public var max: Double?
    public var pattern: String?
    public var defaultValue: JSONValue?
    /// `select` values.
    public var values: [String]
    /// `relation` target collection.
    public var target: String?
    public var onDelete: OnDelete

    public init(
        name: String,
        type: FieldType,
        required: Bool = false,
        unique: Bool = false,
        min: Double? = nil,
        max: Double? = nil,
        pattern: String? = nil,
        defaultValue: JSONValue? = nil,
        values: [String] = [],
        target: String? = nil,
        onDelete: OnDelete = .restrict
    ) {
        self.name = name
        self.type = type
        self.required = required
        self.unique = unique
        self.min = min
        self.max = max
        self.pattern = pattern
        self.defaultValue = defaultValue
        self.values = values
        self.target = target
        self.onDelete = onDelete
    }
}

public struct IndexSchema: Sendable, Equatable {
    public var fields: [String]
    public var unique: Bool
    public init(fields: [String], unique: Bool = false) {
        self.fields = fields
        self.unique = unique
    }
}

public struct Grant: Sendable, Equatable {
    public enum Who: Sendable, Equatable {
        case `public`
        case authenticated
        case roles([String])
    }
    public var who: Who
    /// A rule in the filter language; may use `@auth.*` and `@new.*`.
    public var rule: String?
    public init(who: Who, rule: String? = nil) {
        self.who = who
        self.rule = rule
    }
}

public enum AccessAction: String, Sendable, CaseIterable {
    case list, view, create, update, delete
}

public struct AccessRules: Sendable, Equatable {
    public var list: [Grant] = []
    public var view: [Grant] = []
    public var create: [Grant] = []
    public var update: [Grant] = []
    public var delete: [Grant] = []
    public init() {}

    public subscript(action: AccessAction) -> [Grant] {
        get {
            switch action {
            case .list: list
            case .view: view
            case .create: create
            case .update: update
            case .delete: delete
            }
        }
        set {
            switch action {
            case .list: list = newValue
            case .view: view = newValue
            case .create: create = newValue
            case .update: update = newValue
            case .delete: delete = newValue
            }
        }
    }

    public var isEmpty: Bool { AccessAction.allCases.allSatisfy { self[$0].isEmpty } }
}

/// The system fields every record carries.
public enum SystemField: String, CaseIterable, Sendable {
    case id
    case createdAt = "created_at"
    case updatedAt = "updated_at"
    case version
}

public enum SchemaNames {
    public static let reservedCollections: Set<String> = [
        "batch", "auth", "admin", "realtime", "openapi", "docs", "oauth", "health", "metrics", "problems",
    ]
    /// Prefixes of the storage engines' own names (API.md §1).
    public static let reservedPrefixes = ["sqlite_", "pg_"]
    /// Bounds on a schema document, so that checking one costs at most a few million steps
    /// (each check between collections, fields or roles is then at most quadratic in these).
    public static let maxCollections = 1_000
    public static let maxFields = 500
    public static let maxIndexes = 64
    public static let maxRoles = 1_000
    public static let maxGrants = 64
    /// System fields, `expand`, and the filter language's keywords (a field named `null` could
    /// never be filtered on).
    public static let reservedFields: Set<String> = [
        "id", "created_at", "updated_at", "version", "expand", "in", "is", "not", "null", "true", "false",
    ]

    /// `^[a-z][a-z0-9_]{0,62}$`
    public static func isValidName(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard (1...63).contains(u.count), (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(u[0]) else { return false }
        return u.allSatisfy {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                || $0 == UInt8(ascii: "_")
        }
    }
}
