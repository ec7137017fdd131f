import BasaltServices

/// The authorization server's sign-in and consent page: plain HTML that works without script,
/// with labelled fields in reading order and the message announced (`role="alert"`), so that it
/// is usable with a keyboard and a screen reader.
enum ConsentPage {
    static func escape(_ s: String) -> String { HTMLText.escape(s) }

    /// What a scope lets the application do, in words.
    static func describe(_ scope: String) -> String {
        switch scope {
        case "openid": return "Know who you are on this server"
        case "profile": return "See your profile"
        case "email": return "See your email address and whether it is verified"
        case "offline_access": return "Keep access while you are away (until you sign it out)"
        default:
            let parts = scope.split(separator: ":")
            guard parts.count == 2 else { return scope }
            let name = escape(String(parts[0]))
            return parts[1] == "write"
                ? "Read and change your \(name) (as far as your account may)" : "Read your \(name) (as far as your account may)"
        }
    }

    static let style = """
        body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f4f5;color:#18181b}
        main{max-width:26rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:.5rem;box-shadow:0 1px 3px #0002}
        h1{font-size:1.3rem;margin:0 0 1rem}label{display:block;margin:.8rem 0 .2rem;font-weight:600}
        input{width:100%;box-sizing:border-box;padding:.5rem;font:inherit;border:1px solid #71717a;border-radius:.3rem}
        input:focus,button:focus{outline:3px solid #2563eb;outline-offset:2px}
        .actions{display:flex;gap:.8rem;margin-top:1.4rem}button{font:inherit;padding:.55rem 1.2rem;border-radius:.3rem;border:1px solid #18181b;cursor:pointer}
        button[value=allow]{background:#18181b;color:#fff}.alert{background:#fef2f2;border:1px solid #b91c1c;color:#7f1d1d;padding:.6rem;border-radius:.3rem}
        .hint{font-size:.85rem;color:#52525b;margin:.2rem 0 0}
        """

    static func document(title: String, _ body: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="referrer" content="no-referrer"><title>\(escape(title))</title><style>\(style)</style></head>
        <body><main>\(body)</main></body></html>
        """
    }

    /// A request that cannot go back to the application: said here, not redirected.
    static func refusal(_ message: String) -> String {
        document(
            title: "Sign-in request refused",
            "<h1>This sign-in request cannot continue</h1><p role=\"alert\" class=\"alert\">\(escape(message))</p>"
        )
    }

    static func form(_ request: OAuthServer.AuthorizationRequest, csrf: String, message: String?, askOTP: Bool, email: String) -> String {
        let name = escape(request.client.name)
        var html = "<h1>Sign in to allow \(name)</h1>"
        if let message { html += "<p role=\"alert\" class=\"alert\" id=\"message\">\(escape(message))</p>" }
        html += "<p><strong>\(name)</strong> asks to:</p><ul>"
        for s in request.scope { html += "<li>\(describe(s))</li>" }
        if request.scope.isEmpty { html += "<li>Know that you signed in</li>" }
        html += "</ul><form method=\"post\" action=\"/oauth/authorize\">"
        for (k, v) in request.parameters { html += "<input type=\"hidden\" name=\"\(escape(k))\" value=\"\(escape(v))\">" }
        html += "<input type=\"hidden\" name=\"csrf\" value=\"\(escape(csrf))\">"
        let focus = askOTP ? "" : " autofocus"
        html += """
            <label for="email">Email</label>
            <input id="email" name="email" type="email" autocomplete="username" required value="\(escape(email))"\(focus)>
            <label for="password">Password</label>
            <input id="password" name="password" type="password" autocomplete="current-password" required>
            <label for="otp">One-time code</label>
            <input id="otp" name="otp" inputmode="numeric" autocomplete="one-time-code" aria-describedby="otp-hint"\(askOTP ? " required autofocus" : "")>
            <p class="hint" id="otp-hint">\(askOTP ? "Your account has two-step sign-in: enter the code from your authenticator app or a recovery code." : "Only if your account has two-step sign-in.")</p>
            <div class="actions"><button type="submit" name="decision" value="allow">Allow</button>
            <button type="submit" name="decision" value="deny" formnovalidate>Deny</button></div></form>
            """
        return document(title: "Sign in to allow \(request.client.name)", html)
    }
}
