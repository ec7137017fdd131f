#!/usr/bin/env python3
"""A misbehaving OpenID provider, on demand: the identity provider side of Basalt's sign-in with
other providers (API.md §8.1), for social_signin.py. A third-party provider cannot run in CI;
this one is told by the test what to answer next, honest or not.

Usage: python3 fake_provider.py PORT

Listens on 127.0.0.1:PORT, prints `listening PORT` once it accepts connections, stops on
SIGTERM or SIGINT (unblocked at start: a parent may pass a mask blocking them) and when its
parent process is gone. Requests are logged to stderr, one line each.

OpenID Connect provider (issuer http://127.0.0.1:PORT, client `basalt-fake` / `fake-secret`):

  GET  /.well-known/openid-configuration   discovery
  GET  /jwks                               one RSA key: kid k1, alg RS256, use sig
  GET  /authorize                          302 at once to redirect_uri?code=…&state=… (in mode
                                           `deny`: ?error=access_denied&state=…); 400 JSON, no
                                           redirect, when response_type is not `code`, the client
                                           is not basalt-fake or redirect_uri is missing
  POST /token                              client_secret_basic (Basic, form-encoded id:secret)
                                           required, else 401 invalid_client; the code must be
                                           known and unused (single-use: it is spent when shown),
                                           of this client, with the same redirect_uri, and a
                                           code_verifier whose S256 is the authorization's
                                           code_challenge (method S256), else 400 invalid_grant.
                                           Answers access_token, token_type Bearer, expires_in
                                           300 and an RS256 id_token (kid k1) with iss, sub,
                                           aud = client_id, exp = now + 300, iat, nonce, email,
                                           email_verified — bent by the mode (below)
  GET  /userinfo                           Bearer access token → sub, email, email_verified

Plain OAuth 2.0 provider, GitHub style (client `basalt-plain` / `plain-secret`):

  GET  /plain/authorize                    302 to redirect_uri?code=…&state=… (`deny` as above)
  POST /plain/token                        client_id and client_secret in the form body (401
                                           otherwise), the same code and PKCE checks →
                                           {"access_token", "token_type": "bearer", "scope"}
  GET  /plain/user                         Bearer → {"id": <int>, "login", "email", "verified"};
                                           the sub must be all digits (500 otherwise)

Control (for the test):

  POST /control   JSON {"mode", "sub", "email", "email_verified"}: what every later
                  authorization produces (kept until the next /control; missing members keep
                  their value). Modes: normal, deny (error=access_denied at /authorize),
                  wrong_nonce (the ID token's nonce altered), other_key (signed by an unpublished
                  RSA key, header kid still k1), wrong_aud (aud another client), wrong_iss (iss
                  http://localhost:PORT, not the issuer), expired (exp 10 minutes ago).
                  Answers the new settings.
  GET  /last      JSON {"authorize": {"path", "query"} | null, "token": {"path", "form",
                  "authorization", "status", "error", "pkce"} | null, "counts": {"authorize",
                  "token"}}: the last authorization request's query; the last token request's
                  form, Authorization header, the answer's status and error, and the PKCE verdict
                  ("matched", "mismatch", "no code_verifier", "no code_challenge",
                  "method X", or null when the check was not reached).

An authorization remembers its client_id, redirect_uri, nonce, code_challenge (and method), the
mode and the claims in force, so changing /control later does not alter a code already issued.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import signal
import sys
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import RSAKey

from oauth_support import s256

warnings.filterwarnings("ignore", category=SecurityWarning)

OIDC_CLIENT = ("basalt-fake", "fake-secret")
PLAIN_CLIENT = ("basalt-plain", "plain-secret")
MODES = ("normal", "deny", "wrong_nonce", "other_key", "wrong_aud", "wrong_iss", "expired")
TOKEN_LIFETIME = 300


class Provider:
    """The provider's state, shared by the request threads."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.issuer = f"http://127.0.0.1:{port}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})
        # Never published; `other_key` tokens claim kid k1 but are signed by it.
        self.other_key = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})
        self.lock = threading.Lock()
        self.settings: dict[str, Any] = {
            "mode": "normal", "sub": "fake-user", "email": "fake-user@example.com", "email_verified": True,
        }
        self.codes: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}  # access token → claims
        self.last: dict[str, Any] = {"authorize": None, "token": None, "counts": {"authorize": 0, "token": 0}}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "userinfo_endpoint": self.issuer + "/userinfo",
            "jwks_uri": self.issuer + "/jwks",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "email", "profile"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "email", "email_verified"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    def id_token(self, grant: dict[str, Any]) -> str:
        mode = grant["mode"]
        claims = grant["claims"]
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "sub": claims["sub"],
            "aud": grant["client_id"],
            "exp": now + TOKEN_LIFETIME,
            "iat": now,
            "nonce": grant["nonce"] if grant["nonce"] is not None else "no-nonce-was-sent",
            "email": claims["email"],
            "email_verified": claims["email_verified"],
        }
        key = self.key
        if mode == "wrong_nonce":
            payload["nonce"] = payload["nonce"] + "-altered"
        elif mode == "other_key":
            key = self.other_key
        elif mode == "wrong_aud":
            payload["aud"] = "another-client"
        elif mode == "wrong_iss":
            payload["iss"] = f"http://localhost:{self.port}"
        elif mode == "expired":
            payload["iat"] = now - 900
            payload["exp"] = now - 600
        return jwt.encode({"alg": "RS256", "kid": "k1"}, payload, key, algorithms=["RS256"])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeProvider/1"
    provider: Provider  # set on the class before serving

    # -- plumbing

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"fake_provider: {self.address_string()} {format % args}\n")
        sys.stderr.flush()

    def body_bytes(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def bearer(self) -> str | None:
        value = self.headers.get("Authorization", "")
        return value[7:].strip() if value.lower().startswith("bearer ") else None

    # -- routing

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        routes = {
            ("GET", "/.well-known/openid-configuration"): lambda: self.send(200, self.provider.discovery()),
            ("GET", "/jwks"): lambda: self.send(200, self.provider.jwks()),
            ("GET", "/authorize"): lambda: self.authorize(path, query, OIDC_CLIENT[0]),
            ("POST", "/token"): lambda: self.token(path, plain=False),
            ("GET", "/userinfo"): self.userinfo,
            ("GET", "/plain/authorize"): lambda: self.authorize(path, query, PLAIN_CLIENT[0]),
            ("POST", "/plain/token"): lambda: self.token(path, plain=True),
            ("GET", "/plain/user"): self.plain_user,
            ("POST", "/control"): self.control,
            ("GET", "/last"): self.last,
        }
        route = routes.get((method, path))
        if route is None:
            if method == "POST":
                self.body_bytes()
            self.send(404, {"error": "not_found", "error_description": f"no {method} {path} here"})
            return
        try:
            route()
        except Exception as error:  # a bug here must show, not hang the caller
            self.log_message("error: %r", error)
            self.send(500, {"error": "server_error", "error_description": f"fake provider: {error!r}"})

    # -- endpoints

    def authorize(self, path: str, query: dict[str, str], client_id: str) -> None:
        p = self.provider
        with p.lock:
            p.last["authorize"] = {"path": path, "query": query}
            p.last["counts"]["authorize"] += 1
            mode = p.settings["mode"]
            claims = {k: p.settings[k] for k in ("sub", "email", "email_verified")}
        if query.get("response_type") != "code":
            self.send(400, {"error": "unsupported_response_type", "error_description": "response_type must be code"})
            return
        if query.get("client_id") != client_id:
            self.send(400, {"error": "invalid_client", "error_description": f"client_id must be {client_id}"})
            return
        redirect_uri = query.get("redirect_uri")
        if not redirect_uri:
            self.send(400, {"error": "invalid_request", "error_description": "redirect_uri is required"})
            return
        back: list[tuple[str, str]] = []
        if mode == "deny":
            back.append(("error", "access_denied"))
            back.append(("error_description", "The user declined"))
        else:
            code = secrets.token_urlsafe(24)
            with p.lock:
                p.codes[code] = {
                    "client_id": client_id,
                    "redirect_uri": redirect_uri,
                    "nonce": query.get("nonce"),
                    "code_challenge": query.get("code_challenge"),
                    "code_challenge_method": query.get("code_challenge_method"),
                    "mode": mode,
                    "claims": claims,
                    "plain": path.startswith("/plain/"),
                    "used": False,
                }
            back.append(("code", code))
        if "state" in query:
            back.append(("state", query["state"]))
        self.redirect(redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(back))

    def token(self, path: str, plain: bool) -> None:
        p = self.provider
        raw = self.body_bytes()
        form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        authorization = self.headers.get("Authorization")
        record: dict[str, Any] = {"path": path, "form": form, "authorization": authorization,
                                  "status": None, "error": None, "pkce": None}
        with p.lock:
            p.last["token"] = record
            p.last["counts"]["token"] += 1

        def answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            with p.lock:
                record["status"] = status
                record["error"] = body.get("error_description") or body.get("error") if status != 200 else None
            self.send(status, body, headers)

        # client authentication
        expected = PLAIN_CLIENT if plain else OIDC_CLIENT
        if plain:
            client = (form.get("client_id"), form.get("client_secret"))
            if client != expected:
                answer(401, {"error": "invalid_client",
                             "error_description": "client_id and client_secret must be in the form body"})
                return
        else:
            client = None
            if authorization and authorization.lower().startswith("basic "):
                try:
                    decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
                    user, _, password = decoded.partition(":")
                    client = (unquote_plus(user), unquote_plus(password))
                except (binascii.Error, UnicodeDecodeError):
                    client = None
            if client != expected:
                answer(401, {"error": "invalid_client", "error_description": "client_secret_basic is required"},
                       {"WWW-Authenticate": 'Basic realm="fake"'})
                return
            if "client_secret" in form:
                answer(400, {"error": "invalid_request",
                             "error_description": "more than one client authentication method"})
                return

        if form.get("grant_type") != "authorization_code":
            answer(400, {"error": "unsupported_grant_type", "error_description": "only authorization_code"})
            return
        code = form.get("code", "")
        with p.lock:
            grant = p.codes.get(code)
            reused = grant is not None and grant["used"]
            if grant is not None:
                grant["used"] = True
        if grant is None or reused or grant["plain"] != plain:
            answer(400, {"error": "invalid_grant",
                         "error_description": "code already used" if reused else "unknown code"})
            return
        if grant["client_id"] != expected[0]:
            answer(400, {"error": "invalid_grant", "error_description": "code of another client"})
            return
        if form.get("redirect_uri") != grant["redirect_uri"]:
            answer(400, {"error": "invalid_grant",
                         "error_description": "redirect_uri differs from the authorization's"})
            return

        verifier = form.get("code_verifier")
        challenge = grant["code_challenge"]
        if not challenge:
            verdict = "no code_challenge"
        elif grant["code_challenge_method"] != "S256":
            verdict = f"method {grant['code_challenge_method']}"
        elif not verifier:
            verdict = "no code_verifier"
        else:
            verdict = "matched" if secrets.compare_digest(s256(verifier), challenge) else "mismatch"
        with p.lock:
            record["pkce"] = verdict
        if verdict != "matched":
            answer(400, {"error": "invalid_grant", "error_description": f"PKCE: {verdict}"})
            return

        access = secrets.token_urlsafe(32)
        with p.lock:
            p.tokens[access] = dict(grant["claims"])
        if plain:
            answer(200, {"access_token": access, "token_type": "bearer", "scope": "user"})
            return
        answer(200, {"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME,
                     "id_token": p.id_token(grant)})

    def claims_of_bearer(self) -> dict[str, Any] | None:
        token = self.bearer()
        with self.provider.lock:
            return self.provider.tokens.get(token) if token else None

    def userinfo(self) -> None:
        claims = self.claims_of_bearer()
        if claims is None:
            self.send(401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            return
        self.send(200, claims)

    def plain_user(self) -> None:
        claims = self.claims_of_bearer()
        if claims is None:
            self.send(401, {"message": "Bad credentials"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            return
        sub = str(claims["sub"])
        if not sub.isdigit():
            self.send(500, {"message": f"fake provider: the plain provider's sub must be digits, not {sub!r}"})
            return
        self.send(200, {"id": int(sub), "login": f"user{sub}", "email": claims["email"],
                        "verified": claims["email_verified"]})

    def control(self) -> None:
        try:
            body = json.loads(self.body_bytes() or b"{}")
        except ValueError:
            self.send(400, {"error": "the body is not JSON"})
            return
        if not isinstance(body, dict):
            self.send(400, {"error": "the body is not a JSON object"})
            return
        if "mode" in body and body["mode"] not in MODES:
            self.send(400, {"error": f"mode must be one of {', '.join(MODES)}"})
            return
        if "email_verified" in body and not isinstance(body["email_verified"], bool):
            self.send(400, {"error": "email_verified must be a boolean"})
            return
        p = self.provider
        with p.lock:
            for key in ("mode", "sub", "email", "email_verified"):
                if key in body:
                    p.settings[key] = body[key]
            settings = dict(p.settings)
        self.send(200, settings)

    def last(self) -> None:
        with self.provider.lock:
            snapshot = json.loads(json.dumps(self.provider.last))
        self.send(200, snapshot)


def main() -> int:
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        print("usage: python3 fake_provider.py PORT", file=sys.stderr)
        return 2
    port = int(sys.argv[1])
    Handler.provider = Provider(port)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True

    def stop(signum: int, frame: Any) -> None:
        # shutdown() waits for serve_forever to return: not from its own thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # A parent may hand down a mask blocking SIGTERM; and once the parent is gone, so is this.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    parent = os.getppid()

    def orphaned() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        stop(signal.SIGTERM, None)

    threading.Thread(target=orphaned, daemon=True).start()
    print(f"listening {port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
