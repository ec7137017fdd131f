import Foundation
public import OpenAPIKit

/// The server-rendered API reference at `GET /docs`: the caller's OpenAPI document as one
/// self-contained HTML page (inline CSS, no script), grouped by tag, with every operation's
/// parameters, bodies and responses and every component schema as tables.
///
/// ```swift
/// let doc = OpenAPIGenerator.document(schema: compiled, principal: principal, serverURL: url)
/// let page = DocsPage.html(document: doc)   // "<!doctype html>…"
/// ```
public enum DocsPage {
    public static func html(document: OpenAPI.Document) -> String {
        var r = DocsRenderer(document: document)
        return r.render()
    }
}

/// HTML escaping and the shared style sheet of the docs and problem pages.
enum HTMLText {
    /// Escapes text for element content and quoted attribute values.
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// Escapes text, then renders `` `code` `` spans; the only markup descriptions use.
    static func inline(_ s: String) -> String {
        let parts = s.split(separator: "`", omittingEmptySubsequences: false)
        guard parts.count >= 3 else { return escape(s) }
        var out = ""
        for (i, p) in parts.enumerated() {
            if i % 2 == 1, i < parts.count - 1 || parts.count % 2 == 1 {
                out += "<code>" + escape(String(p)) + "</code>"
            } else {
                out += (i % 2 == 1 ? "`" : "") + escape(String(p))
            }
        }
        return out
    }

    /// Paragraphs separated by blank lines.
    static func paragraphs(_ s: String?) -> String {
        guard let s, !s.isEmpty else { return "" }
        return s.components(separatedBy: "\n\n").map { "<p>" + inline($0) + "</p>" }.joined(separator: "\n")
    }

    static let css = """
        body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2126;background:#fff;margin:0}\
        main{max-width:72rem;margin:0 auto;padding:1rem 1.5rem 4rem}\
        h1{font-size:1.8rem;margin:.5rem 0}h2{font-size:1.35rem;margin-top:2.5rem;border-bottom:1px solid #d8dde3;padding-bottom:.25rem}\
        h3{font-size:1.05rem;margin:1.8rem 0 .4rem}h4{font-size:.95rem;margin:1rem 0 .3rem;color:#444}\
        code,pre{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f3f5f7;border-radius:3px}\
        code{padding:0 .25em}pre{padding:.75rem;overflow-x:auto}\
        table{border-collapse:collapse;width:100%;margin:.3rem 0 .8rem;font-size:14px}\
        th,td{text-align:left;vertical-align:top;border-bottom:1px solid #e4e7eb;padding:.3rem .5rem}\
        th{background:#f7f8fa;font-weight:600}\
        .method{display:inline-block;min-width:4.2em;text-align:center;font:600 12px/1.8 ui-monospace,monospace;\
        color:#fff;border-radius:3px;margin-right:.5em;background:#6b7280}\
        .get{background:#2563eb}.post{background:#15803d}.put{background:#b45309}.patch{background:#7c3aed}\
        .delete{background:#b91c1c}.head{background:#0f766e}\
        .op{border:1px solid #e4e7eb;border-radius:6px;padding:.2rem 1rem .6rem;margin:1rem 0}\
        .muted,.crumb{color:#5b6470;font-size:.9em}.status{font-weight:600}\
        nav ul{columns:3 14rem;padding-left:1.2rem}ul.codes{columns:3 12rem}\
        a{color:#1d4ed8}
        """
}

/// Walks an OpenAPI document once and writes HTML.
struct DocsRenderer {
    let document: OpenAPI.Document
    var out = ""
    /// GET operation ids by path, so a HEAD twin can point at its GET instead of repeating it.
    var getIDs: [String: String] = [:]

    init(document: OpenAPI.Document) { self.document = document }

    typealias E = HTMLText

    struct Entry {
        var path: String
        var method: String
        var operation: OpenAPI.Operation
        var pathParameters: OpenAPI.Parameter.Array
    }

    mutating func render() -> String {
        let entries = operations()
        for e in entries where e.method == "GET" { getIDs[e.path] = e.operation.operationId }
        var order: [String] = (document.tags ?? []).map(\.name)
        for e in entries {
            let t = e.operation.tags?.first ?? "other"
            if !order.contains(t) { order.append(t) }
        }
        let byTag = Dictionary(grouping: entries) { $0.operation.tags?.first ?? "other" }

        out += """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(E.escape(document.info.title)) — reference</title>
            <style>\(E.css)</style>
            </head>
            <body>
            <main>
            <h1>\(E.escape(document.info.title))</h1>
            <p class="muted">Version \(E.escape(document.info.version)) · OpenAPI \
            \(E.escape(document.openAPIVersion.rawValue)) · <a href="/v1/openapi.json">openapi.json</a>\
            \(document.servers.map { " · server <code>\(E.escape($0.urlTemplate.absoluteString))</code>" }.joined())</p>
            \(E.paragraphs(document.info.description))

            """
        out += "<nav><h2>Contents</h2><ul>"
        out += "<li><a href=\"#authentication\">Authentication</a></li>"
        for t in order where byTag[t] != nil {
            out += "<li><a href=\"#tag-\(E.escape(t))\">\(E.escape(t))</a></li>"
        }
        if !document.components.schemas.isEmpty { out += "<li><a href=\"#schemas\">Schemas</a></li>" }
        out += "<li><a href=\"/problems/bad-request\">Problem types</a></li></ul></nav>\n"

        renderSecurity()
        for t in order {
            guard let ops = byTag[t] else { continue }
            let tag = document.tags?.first { $0.name == t }
            out += "<section id=\"tag-\(E.escape(t))\"><h2>\(E.escape(t))</h2>\n\(E.paragraphs(tag?.description))\n"
            for e in ops { renderOperation(e) }
            out += "</section>\n"
        }
        renderSchemas()
        out += "</main>\n</body>\n</html>\n"
        return out
    }

    func operations() -> [Entry] {
        var entries: [Entry] = []
        for (path, itemRef) in document.paths {
            guard let item = document.components[itemRef] else { continue }
            for ep in item.endpoints {
                entries.append(
                    Entry(
                        path: path.rawValue,
                        method: ep.method.rawValue,
                        operation: ep.operation,
                        pathParameters: item.parameters
                    )
                )
            }
        }
        return entries
    }

    // MARK: Security

    mutating func renderSecurity() {
        out += "<section id=\"authentication\"><h2>Authentication</h2>\n"
        for (key, schemeRef) in document.components.securitySchemes {
            guard let scheme = document.components[schemeRef] else { continue }
            var kind = ""
            switch scheme.type {
            case .http(let s, let format): kind = "HTTP \(s)" + (format.map { " (\($0))" } ?? "")
            case .apiKey(let name, let location): kind = "API key in \(location.rawValue) <code>\(name)</code>"
            case .oauth2: kind = "OAuth 2"
            case .openIdConnect: kind = "OpenID Connect"
            case .mutualTLS: kind = "Mutual TLS"
            }
            out +=
                "<h3><code>\(E.escape(key.rawValue))</code> — \(E.escape(kind))</h3>\n\(E.paragraphs(scheme.description))\n"
            if case .oauth2(let flows, _) = scheme.type { renderFlows(flows) }
        }
        out += "</section>\n"
    }

    /// How to get a token: each flow's endpoints and its scopes.
    mutating func renderFlows(_ flows: OpenAPI.OAuthFlows) {
        out += "<ul>"
        if let code = flows.authorizationCode {
            out += """
                <li>Authorization code with PKCE <code>S256</code> (apps acting for a user): send the browser to \
                <code>\(E.escape(code.authorizationUrl.absoluteString))</code> with <code>response_type=code</code>, \
                <code>client_id</code>, <code>redirect_uri</code>, <code>scope</code>, <code>state</code>, \
                <code>code_challenge</code> and <code>code_challenge_method=S256</code>; exchange the returned code at \
                <code>\(E.escape(code.tokenUrl.absoluteString))</code> with <code>grant_type=authorization_code</code> \
                and the <code>code_verifier</code>.</li>
                """
        }
        if let cc = flows.clientCredentials {
            out += """
                <li>Client credentials (services acting for themselves): <code>POST \(E.escape(cc.tokenUrl.absoluteString))</code> \
                with HTTP Basic (client id and secret) and <code>grant_type=client_credentials&amp;scope=…</code>.</li>
                """
        }
        out += "</ul>"
        if let scopes = flows.authorizationCode?.scopes, !scopes.isEmpty {
            out += "<table><thead><tr><th>scope</th><th>grants</th></tr></thead><tbody>"
            for (scope, description) in scopes {
                out += "<tr><td><code>\(E.escape(scope))</code></td><td>\(E.escape(description))</td></tr>"
            }
            out += "</tbody></table>\n"
        }
    }

    func securityText(_ op: OpenAPI.Operation) -> String {
        let reqs = op.security ?? document.security
        if reqs.isEmpty { return "none (credentials are ignored)" }
        let names = Set(reqs.flatMap { $0.keys.compactMap(\.name) }).sorted()
        let schemes = names.map { "<code>\(E.escape($0))</code>" }.joined(separator: ", ")
        return reqs.contains { $0.isEmpty } ? "optional: \(schemes)" : "required: \(schemes)"
    }

    // MARK: Operations

    mutating func renderOperation(_ e: Entry) {
        let op = e.operation
        let anchor = op.operationId.map { "op-" + $0 } ?? "op-\(e.method)-\(e.path)"
        out += "<article class=\"op\" id=\"\(E.escape(anchor))\">\n"
        out += "<h3><span class=\"method \(E.escape(e.method.lowercased()))\">\(E.escape(e.method))</span>"
        out += "<code>\(E.escape(e.path))</code></h3>\n"
        if let s = op.summary { out += "<p><strong>\(E.inline(s))</strong></p>\n" }
        out += E.paragraphs(op.description)
        out += "<p class=\"muted\">Operation <code>\(E.escape(op.operationId ?? "—"))</code> · "
        out += "authentication \(securityText(op))</p>\n"
        if e.method == "HEAD", let getID = getIDs[e.path] {
            out += "<p>The same parameters, statuses and headers as <a href=\"#op-\(E.escape(getID))\">GET</a>, "
            out += "without a body.</p>\n</article>\n"
            return
        }

        let params = (e.pathParameters + op.parameters).compactMap { document.components[$0] }
        if !params.isEmpty {
            out +=
                "<h4>Parameters</h4>\n<table><tr><th>Name</th><th>In</th><th>Type</th><th>Required</th><th>Description</th></tr>\n"
            for p in params {
                var type = ""
                var constraints = ""
                if let s = p.schemaOrContent.schemaValue {
                    type = typeHTML(s)
                    constraints = constraintsHTML(s)
                } else if let ref = p.schemaOrContent.schemaReference {
                    type = refHTML(ref.jsonReference.name)
                }
                let desc = [p.description.map(E.inline) ?? "", constraints].filter { !$0.isEmpty }.joined(
                    separator: "<br>"
                )
                out += "<tr><td><code>\(E.escape(p.name))</code></td><td>\(E.escape(p.location.rawValue))</td>"
                out += "<td>\(type)</td><td>\(p.required ? "yes" : "no")</td><td>\(desc)</td></tr>\n"
            }
            out += "</table>\n"
        }

        if let bodyRef = op.requestBody, let body = document.components[bodyRef] {
            out += "<h4>Request body\(body.required ? "" : " (optional)")</h4>\n"
            out += E.paragraphs(body.description)
            renderContent(body.content)
        }

        out += "<h4>Responses</h4>\n<table><tr><th>Status</th><th>Description</th><th>Headers</th><th>Body</th></tr>\n"
        for (status, responseRef) in op.responses {
            guard let response = document.components[responseRef] else { continue }
            let headers = (response.headers ?? [:]).compactMap { (name, h) -> String? in
                guard let header = document.components[h] else { return nil }
                let t = header.schemaOrContent.schemaValue.map { typeHTML($0) } ?? ""
                return "<code>\(E.escape(name))</code> \(t)"
                    + (header.description.map { "<br><span class=\"muted\">\(E.inline($0))</span>" } ?? "")
            }.joined(separator: "<br>")
            let bodies = response.content.compactMap { (type, c) -> String? in
                guard let content = document.components[c] else { return nil }
                return "<code>\(E.escape(type.rawValue))</code>" + (content.schema.map { ": " + typeHTML($0) } ?? "")
            }.joined(separator: "<br>")
            out +=
                "<tr><td class=\"status\">\(E.escape(status.rawValue))</td><td>\(E.inline(response.description ?? ""))</td>"
            out += "<td>\(headers)</td><td>\(bodies)</td></tr>\n"
        }
        out += "</table>\n</article>\n"
    }

    mutating func renderContent(_ content: OpenAPI.Content.Map) {
        for (type, c) in content {
            guard let content = document.components[c] else { continue }
            out += "<p><code>\(E.escape(type.rawValue))</code>"
            if let s = content.schema { out += ": " + typeHTML(s) }
            out += "</p>\n"
            if let s = content.schema, case .object = s.value { renderProperties(s) }
        }
    }

    // MARK: Schemas

    mutating func renderSchemas() {
        guard !document.components.schemas.isEmpty else { return }
        out += "<section id=\"schemas\"><h2>Schemas</h2>\n"
        for (key, s) in document.components.schemas {
            out += "<h3 id=\"schema-\(E.escape(key.rawValue))\"><code>\(E.escape(key.rawValue))</code></h3>\n"
            out += E.paragraphs(s.description)
            switch s.value {
            case .object:
                renderProperties(s)
            default:
                out += "<p>\(typeHTML(s))</p>\n"
                let c = constraintsHTML(s)
                if !c.isEmpty { out += "<p class=\"muted\">\(c)</p>\n" }
            }
        }
        out += "</section>\n"
    }

    /// An object's properties as a table; inline nested objects (and arrays of them) add dotted rows.
    mutating func renderProperties(_ s: JSONSchema) {
        var rows: [String] = []
        collectRows(s, prefix: "", depth: 0, into: &rows)
        if case .object(_, let ctx) = s.value {
            switch ctx.additionalProperties {
            case .a(false)?:
                rows.append("<tr><td colspan=\"5\" class=\"muted\">No other members are allowed.</td></tr>")
            case .b(let extra)?:
                rows.append(
                    "<tr><td><em>any name</em></td><td>\(typeHTML(extra))</td><td>no</td><td>\(constraintsHTML(extra))</td><td></td></tr>"
                )
            default: break
            }
        }
        guard !rows.isEmpty else {
            out += "<p class=\"muted\">An object.</p>\n"
            return
        }
        out += "<table><tr><th>Member</th><th>Type</th><th>Required</th><th>Constraints</th><th>Description</th></tr>\n"
        out += rows.joined(separator: "\n") + "\n</table>\n"
    }

    func collectRows(_ s: JSONSchema, prefix: String, depth: Int, into rows: inout [String]) {
        guard case .object(_, let ctx) = s.value, depth < 4 else { return }
        let required = Set(ctx.requiredProperties)
        for (name, p) in ctx.properties {
            let full = prefix + name
            rows.append(
                "<tr><td><code>\(E.escape(full))</code></td><td>\(typeHTML(p))</td>"
                    + "<td>\(required.contains(name) ? "yes" : "no")</td><td>\(constraintsHTML(p))</td>"
                    + "<td>\(p.description.map(E.inline) ?? "")</td></tr>"
            )
            switch p.value {
            case .object(_, let inner) where !inner.properties.isEmpty:
                collectRows(p, prefix: full + ".", depth: depth + 1, into: &rows)
            case .array(_, let a):
                if let items = a.items, case .object(_, let inner) = items.value, !inner.properties.isEmpty {
                    collectRows(items, prefix: full + "[].", depth: depth + 1, into: &rows)
                }
            default: break
            }
        }
    }

    func refHTML(_ name: String?) -> String {
        guard let name else { return "reference" }
        return "<a href=\"#schema-\(E.escape(name))\">\(E.escape(name))</a>"
    }

    /// A short type: `string (uuid)`, `array of posts`, `integer | null`.
    func typeHTML(_ s: JSONSchema) -> String {
        var t: String
        switch s.value {
        case .reference(let ref, _): t = refHTML(ref.name)
        case .null: return "null"
        case .boolean: t = "boolean"
        case .number: t = "number"
        case .integer: t = "integer"
        case .string: t = "string"
        case .object(_, let ctx):
            if case .b(let extra)? = ctx.additionalProperties, ctx.properties.isEmpty {
                t = "map of " + typeHTML(extra)
            } else {
                t = "object"
            }
        case .array(_, let ctx): t = "array" + (ctx.items.map { " of " + typeHTML($0) } ?? "")
        case .one(of: let xs, _): t = "one of: " + xs.map { typeHTML($0) }.joined(separator: " | ")
        case .any(of: let xs, _): t = "any of: " + xs.map { typeHTML($0) }.joined(separator: " | ")
        case .all(of: let xs, _): t = "all of: " + xs.map { typeHTML($0) }.joined(separator: " &amp; ")
        case .not(let x, _): t = "not " + typeHTML(x)
        case .fragment: t = "any JSON value"
        }
        if let f = s.formatString, !f.isEmpty { t += " <span class=\"muted\">(\(E.escape(f)))</span>" }
        if s.nullable, s.jsonType != nil { t += " | null" }
        return t
    }

    /// Constraints as text: lengths, bounds, pattern, enum, default, read-only.
    func constraintsHTML(_ s: JSONSchema) -> String {
        var c: [String] = []
        switch s.value {
        case .string(_, let ctx):
            if ctx.minLength > 0 { c.append("minLength \(ctx.minLength)") }
            if let m = ctx.maxLength { c.append("maxLength \(m)") }
            if let p = ctx.pattern { c.append("pattern <code>\(E.escape(p))</code>") }
        case .integer(_, let ctx):
            if let m = ctx.minimum { c.append((m.exclusive ? "&gt; " : "≥ ") + "\(m.value)") }
            if let m = ctx.maximum { c.append((m.exclusive ? "&lt; " : "≤ ") + "\(m.value)") }
        case .number(_, let ctx):
            if let m = ctx.minimum { c.append((m.exclusive ? "&gt; " : "≥ ") + Self.number(m.value)) }
            if let m = ctx.maximum { c.append((m.exclusive ? "&lt; " : "≤ ") + Self.number(m.value)) }
        case .array(_, let ctx):
            if ctx.minItems > 0 { c.append("minItems \(ctx.minItems)") }
            if let m = ctx.maxItems { c.append("maxItems \(m)") }
        default: break
        }
        if let values = s.allowedValues {
            c.append("one of " + values.map { "<code>\(E.escape(Self.json($0)))</code>" }.joined(separator: ", "))
        }
        if let d = s.defaultValue { c.append("default <code>\(E.escape(Self.json(d)))</code>") }
        if s.readOnly { c.append("read-only") }
        if s.writeOnly { c.append("write-only") }
        if s.deprecated { c.append("deprecated") }
        return c.joined(separator: "; ")
    }

    static func number(_ d: Double) -> String {
        d.rounded() == d && abs(d) < 1e15 ? String(Int64(d)) : String(d)
    }

    static func json(_ v: AnyCodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(v) else { return String(describing: v.value) }
        return String(decoding: data, as: UTF8.self)
    }
}
