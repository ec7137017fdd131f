public import BasaltCore

/// A predicate compiled once and placed into many queries: its text with placeholders numbered
/// from its own binds, and binds that are constants of the rule or `@auth.*` values filled in per
/// request. Access rules are compiled so (per schema version, grants and which `@auth` values are
/// null), which takes the filter compiler off the path of every read with a row rule.
public struct SQLTemplate: Sendable {
    enum Piece: Sendable {
        case text(String)
        /// The template's own bind at this index.
        case placeholder(Int)
    }
    enum Bind: Sendable {
        case value(SQLValue)
        case auth(String)
    }
    let pieces: [Piece]
    let binds: [Bind]
    /// The `@auth.*` names the expression reads and whether each was null when compiled: null
    /// values are written as `NULL` and change the text, so the template holds only for callers
    /// whose values are null in the same places.
    let authNulls: [(name: String, isNull: Bool)]
    /// The text placed after exactly one bind (a read or probe by id), written once.
    let textAfterOneBind: String

    /// `expr` compiled by `compiler` (which must read fields of the table alias and set no
    /// `@new` values or hop access: those differ per request).
    public init(_ expr: FilterExpr, compiler: FilterCompiler) {
        var b = SQLBuilder(compiler.dialect)
        b.marksPlaceholders = true
        compiler.compile(expr, into: &b)
        var pieces: [Piece] = []
        var text: [UInt8] = []
        var number: Int?
        for byte in b.sql.utf8 {
            switch byte {
            case SQLBuilder.placeholderStart:
                if !text.isEmpty { pieces.append(.text(String(decoding: text, as: UTF8.self))) }
                text.removeAll(keepingCapacity: true)
                number = 0
            case SQLBuilder.placeholderEnd:
                pieces.append(.placeholder(number! - 1))
                number = nil
            default:
                if let n = number { number = n * 10 + Int(byte - UInt8(ascii: "0")) } else { text.append(byte) }
            }
        }
        if !text.isEmpty { pieces.append(.text(String(decoding: text, as: UTF8.self))) }
        self.pieces = pieces
        binds = zip(b.binds, b.bindAuthNames).map { value, name in name.map(Bind.auth) ?? .value(value) }
        var names: [String] = []
        expr.collectAuthNames(into: &names)
        authNulls = names.map { ($0, (compiler.authValues[$0] ?? .null) == .null) }
        var afterOne = SQLBuilder(compiler.dialect)
        afterOne.appendPieces(pieces, base: 1)
        textAfterOneBind = afterOne.sql
    }

    /// Whether this template is the compiled form for a caller with these `@auth` values.
    public func fits(_ auth: (String) -> FilterLiteral) -> Bool {
        authNulls.allSatisfy { (auth($0.name) == .null) == $0.isNull }
    }

    /// The values to bind for a caller it fits, in order.
    public func binds(_ auth: (String) -> FilterLiteral) -> [SQLValue] {
        binds.map { bind in
            switch bind {
            case .value(let v): v
            case .auth(let name): FilterCompiler.sqlValue(auth(name))
            }
        }
    }
}

extension SQLBuilder {
    static let placeholderStart: UInt8 = 0x01
    static let placeholderEnd: UInt8 = 0x02

    /// Appends `template` with `binds` (`template.binds(…)`), numbered after the binds already here.
    public mutating func append(_ template: SQLTemplate, binds values: [SQLValue]) {
        let base = binds.count
        binds += values
        appendPieces(template.pieces, base: base)
    }

    mutating func appendPieces(_ pieces: [SQLTemplate.Piece], base: Int) {
        for piece in pieces {
            switch piece {
            case .text(let t): sql += t
            case .placeholder(let i): sql += dialect.placeholder(base + i + 1)
            }
        }
    }
}

extension FilterExpr {
    /// Every `@auth.*` name the expression reads, once each.
    func collectAuthNames(into names: inout [String]) {
        func visit(_ o: FilterOperand) {
            if case .auth(let name, _) = o, !names.contains(name) { names.append(name) }
        }
        switch self {
        case .and(let parts), .or(let parts): for p in parts { p.collectAuthNames(into: &names) }
        case .not(let inner): inner.collectAuthNames(into: &names)
        case .constant: break
        case .isNull(let o, _): visit(o)
        case .inList(let o, _): visit(o)
        case .compare(let l, _, let r):
            visit(l)
            visit(r)
        }
    }
}
