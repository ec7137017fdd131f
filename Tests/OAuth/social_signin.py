#!/usr/bin/env python3
"""Basalt signs users in with other providers (API.md §8.1): Basalt as the OAuth client.

Usage: python3 social_signin.py BASE_URL

Environment:
  BASALT_ADMIN_KEY      an admin API key (bsk_…)
  MOCK_PORT             free port for oidc-provider-mock, Basalt's provider `mock`
  FAKE_PORT             free port for fake_provider.py, Basalt's providers `fake` and `plain`
  APP_REDIRECT          the one redirect URI on Basalt's allow-list (nothing listens there; it is
                        never requested)
  VERIFIED_EMAIL        an existing password account whose email is verified
  UNVERIFIED_EMAIL      an existing password account whose email is not verified
  BASALT_USER_PASSWORD  both accounts' password

Basalt must run at BASE_URL with these providers (its callback for provider NAME being
BASE_URL/v1/auth/oauth/NAME/callback), and with open registration:

  mock   OpenID Connect, issuer http://127.0.0.1:MOCK_PORT, client basalt-test / mock-secret
  fake   OpenID Connect, issuer http://127.0.0.1:FAKE_PORT, client basalt-fake / fake-secret
  plain  plain OAuth 2.0 at http://127.0.0.1:FAKE_PORT/plain/{authorize,token,user}, client
         basalt-plain / plain-secret in the form body, scopes ["user"], subject_field id,
         email_field email, email_verified_field verified

The script starts both providers itself and stops them at the end: oidc-provider-mock (the
`oidc-provider-mock` command, else `python -m oidc_provider_mock`) with the predefined user
alice-sub (alice.new@example.com, email_verified true), and fake_provider.py (next to this
file), a provider the script tells what to answer next, honest or not. The browser is a
requests.Session per flow that keeps cookies and never follows a redirect by itself: it follows
Basalt's 302 to the provider, at oidc-provider-mock submits the predefined user's button of the
authorization form, follows the provider's 302 to Basalt's callback, and stops at Basalt's 302
to APP_REDIRECT, whose query it reads.

One line per check, `ok NAME` or `FAIL NAME: reason`:

  providers                  both providers answer their discovery documents
  mock-sign-up               through oidc-provider-mock, with the app's PKCE challenge: Basalt's
                             302 (response_type, client_id, its callback, scope openid email
                             profile, state, nonce, its own S256 challenge) and the state cookie
                             (HttpOnly, SameSite=Lax, Path=/v1/auth/oauth); back at APP_REDIRECT
                             with a bxc_ code and no token in the URL; the exchange with the
                             code_verifier; /v1/auth/me (a new, verified alice.new@example.com);
                             /v1/auth/identities (mock, alice-sub)
  mock-sign-in-again         the same subject again, without an app challenge: the same user
  refused-replayed-callback  the first flow's callback again, with its state cookie: 400
  refused-wrong-state        an altered state (with the flow's cookie; and with a cookie equal
                             to it), the callback without the cookie, another provider's state:
                             400, no Location
  refused-exchange           a code exchanged twice; no or a wrong code_verifier when the flow had
                             a challenge (and the code is spent: the right verifier then fails);
                             an unknown code: 422
  fake-pkce-and-nonce        fake_provider saw state, nonce, S256 and a matching verifier, and
                             client_secret_basic; a new verified user with that email
  refused-wrong-nonce, refused-other-key, refused-wrong-aud, refused-wrong-iss, refused-expired
                             the fake's ID token bent one way: error=invalid_id_token at
                             APP_REDIRECT, and no user with that flow's email
  refused-unverified-provider-email
                             VERIFIED_EMAIL with email_verified false: error=account_exists, the
                             account has no identity
  refused-unverified-account UNVERIFIED_EMAIL with email_verified true: error=account_exists
  link-verified              VERIFIED_EMAIL with email_verified true: the password account, now
                             with the fake identity
  provider-denied            the provider answers error=access_denied: error=access_denied, no
                             token request
  plain-oauth2               the plain provider (credentials in the body, numeric id): a new user,
                             identity subject = the id as a string
  unlink                     the OAuth-only user's only identity: 409; the password account's
                             identity: 204, then none
  refused-redirect           redirect_uri off the allow-list (trailing slash, one character more,
                             another host): 422 with no Location; an unknown provider: 404

Exits 1 when any check fails; the last line is `social sign-in: N ok`. A deviation from the
contract is reported, never worked around. The providers' logs are printed when a check fails.
They are stopped at the end (SIGTERM, then SIGKILL after 5 s, with a `note:` line), also when
this script gets SIGTERM, and on Linux they die with it whatever kills it.

Needs a fresh server: alice.new@example.com must not exist yet, and VERIFIED_EMAIL must have no
linked identity (the run unlinks the one it makes). Every request carries a 10 s timeout. About
80 requests to /v1/auth/* (14 exchanges, 3 password sign-ins) come from one address within
seconds: the server's auth rate limit must be off or above that.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, quote, urlencode, urljoin, urlsplit, urlunsplit

import requests

from oauth_support import (
    Failure,
    PageParser,
    Report,
    check,
    describe,
    json_of,
    missing_environment,
    new_verifier,
    s256,
    set_cookie_headers,
    usage,
)

TIMEOUT = 10
STATE_COOKIE = "basalt_oauth_state"
OIDC_SCOPES = {"openid", "email", "profile"}
ALICE = {"sub": "alice-sub", "email": "alice.new@example.com", "email_verified": True}
BAD_ID_TOKEN_MODES = ("wrong_nonce", "other_key", "wrong_aud", "wrong_iss", "expired")


def expect_problem(response: requests.Response, status: int, what: str) -> dict[str, Any]:
    """A problem document (API.md §4) with this status, and no redirect."""
    check(response.status_code == status, f"{what}: expected {status}, got {describe(response)}")
    check("Location" not in response.headers, f"{what}: the {status} has a Location: {describe(response)}")
    check(response.headers.get("Content-Type", "").startswith("application/problem+json"),
          f"{what}: the {status} is not application/problem+json: {describe(response)}")
    body = json_of(response, what)
    check(body.get("status") == status, f"{what}: the problem's status is {body.get('status')!r}: {describe(response)}")
    return body


def single_params(url: str, what: str) -> dict[str, str]:
    query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    repeated = [name for name, values in query.items() if len(values) > 1]
    check(not repeated, f"{what}: parameters repeated: {repeated} ({url!r})")
    return {name: values[0] for name, values in query.items()}


def with_param(url: str, name: str, value: str) -> str:
    """url with one query parameter replaced."""
    parts = urlsplit(url)
    pairs = [(key, value if key == name else old)
             for key, olds in parse_qs(parts.query, keep_blank_values=True).items() for old in olds]
    return urlunsplit(parts._replace(query=urlencode(pairs)))


# ---- the providers ---------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    log: Path

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError as error:
            return f"(no log: {error})"
        return "\n".join("    " + line for line in text[-lines:])


def _die_with_parent() -> Callable[[], None] | None:
    """Linux: a child gets SIGKILL when this script dies, however it dies (prctl PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def start_server(name: str, argv: list[str], log_dir: Path) -> Server:
    log = log_dir / f"{name}.log"
    handle = open(log, "wb")
    env = dict(os.environ, NO_COLOR="1", PYTHONUNBUFFERED="1")
    try:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                   preexec_fn=_die_with_parent())
    finally:
        handle.close()
    return Server(name, process, log)


def wait_until_up(server: Server, discovery_url: str, issuer: str, deadline: float) -> dict[str, Any]:
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise Failure(f"{server.name} exited with status {server.process.returncode}:\n{server.tail()}")
        try:
            response = requests.get(discovery_url, timeout=TIMEOUT)
            if response.status_code == 200:
                document = json_of(response, f"{server.name} discovery")
                check(document.get("issuer") == issuer,
                      f"{server.name} discovery: issuer {document.get('issuer')!r}, expected {issuer!r}")
                return document
            last = describe(response)
        except requests.RequestException as error:
            last = f"{type(error).__name__}: {error}"
        time.sleep(0.2)
    raise Failure(f"{server.name} did not answer {discovery_url} in time ({last}):\n{server.tail()}")


def stop_server(server: Server) -> str | None:
    """SIGTERM, then SIGKILL after 5 s; a note when SIGKILL was needed."""
    if server.process.poll() is not None:
        return None
    server.process.terminate()
    try:
        server.process.wait(timeout=5)
        return None
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=5)
        return f"{server.name} ignored SIGTERM for 5 s and was killed"


# ---- the run ---------------------------------------------------------------------------------------


@dataclass
class Flow:
    provider: str
    session: requests.Session
    state: str = ""
    authorize_url: str = ""
    authorize_query: dict[str, str] = field(default_factory=dict)
    callback_url: str = ""             # the provider's redirect to Basalt's callback
    app_location: str = ""             # Basalt's redirect to APP_REDIRECT (never requested)
    app_params: dict[str, str] = field(default_factory=dict)
    app_verifier: str | None = None


class Run:
    def __init__(self, base: str, env: dict[str, str]) -> None:
        self.base = base
        self.admin_key = env["BASALT_ADMIN_KEY"]
        self.mock_port = int(env["MOCK_PORT"])
        self.fake_port = int(env["FAKE_PORT"])
        self.app_redirect = env["APP_REDIRECT"]
        self.verified_email = env["VERIFIED_EMAIL"]
        self.unverified_email = env["UNVERIFIED_EMAIL"]
        self.password = env["BASALT_USER_PASSWORD"]
        self.mock = f"http://127.0.0.1:{self.mock_port}"
        self.fake = f"http://127.0.0.1:{self.fake_port}"
        self.tag = uuid.uuid4().hex[:8]
        self.servers: list[Server] = []
        self.mock_authorize_endpoint = ""
        # what later checks build on
        self.alice: dict[str, str] = {}         # id, access_token, from mock-sign-up / mock-sign-in-again
        self.alice_flow: Flow | None = None     # the first flow, for the replay
        self.linked_subject = ""                # the fake identity link-verified made

    def url(self, path: str) -> str:
        return self.base + path

    def callback(self, provider: str) -> str:
        return self.url(f"/v1/auth/oauth/{provider}/callback")

    # -- plain HTTP

    def admin_users(self, email: str) -> list[dict[str, Any]]:
        literal = "'" + email.replace("'", "''") + "'"
        url = self.url("/v1/admin/users?filter=" + quote(f"email = {literal}", safe="'"))
        response = requests.get(url, headers={"Authorization": f"Bearer {self.admin_key}"}, timeout=TIMEOUT,
                                allow_redirects=False)
        check(response.status_code == 200, f"the admin users list filtered by email: expected 200, got "
                                           f"{describe(response)}")
        items = json_of(response, "GET /v1/admin/users").get("items")
        check(isinstance(items, list), f"GET /v1/admin/users: no items list: {describe(response)}")
        return items

    def api(self, method: str, path: str, token: str, **kwargs) -> requests.Response:
        return requests.request(method, self.url(path), headers={"Authorization": f"Bearer {token}"},
                                timeout=TIMEOUT, allow_redirects=False, **kwargs)

    def me(self, token: str, what: str) -> dict[str, Any]:
        response = self.api("GET", "/v1/auth/me", token)
        check(response.status_code == 200, f"{what}: GET /v1/auth/me: expected 200, got {describe(response)}")
        return json_of(response, f"{what}: GET /v1/auth/me")

    def identities(self, token: str, what: str) -> list[dict[str, Any]]:
        response = self.api("GET", "/v1/auth/identities", token)
        check(response.status_code == 200, f"{what}: GET /v1/auth/identities: expected 200, got {describe(response)}")
        items = json_of(response, f"{what}: GET /v1/auth/identities").get("items")
        check(isinstance(items, list), f"{what}: GET /v1/auth/identities has no items list: {describe(response)}")
        for item in items:
            check(isinstance(item, dict) and all(isinstance(item.get(k), str) and item[k]
                                                 for k in ("id", "provider", "subject", "created_at")),
                  f"{what}: an identity without id, provider, subject or created_at: {item!r}")
        return items

    def login(self, email: str, what: str) -> tuple[str, str]:
        """(user id, access token) of a password sign-in."""
        response = requests.post(self.url("/v1/auth/login"), json={"email": email, "password": self.password},
                                 timeout=TIMEOUT, allow_redirects=False)
        check(response.status_code == 200, f"{what}: POST /v1/auth/login as {email}: expected 200, got "
                                           f"{describe(response)}")
        body = json_of(response, f"{what}: POST /v1/auth/login")
        user_id = (body.get("user") or {}).get("id")
        token = body.get("access_token")
        check(isinstance(user_id, str) and user_id and isinstance(token, str) and token,
              f"{what}: POST /v1/auth/login: no user.id or access_token: {body!r}")
        return user_id, token

    def exchange_response(self, code: str, verifier: str | None) -> requests.Response:
        body: dict[str, str] = {"code": code}
        if verifier is not None:
            body["code_verifier"] = verifier
        return requests.post(self.url("/v1/auth/oauth/exchange"), json=body, timeout=TIMEOUT, allow_redirects=False)

    def exchange(self, code: str, verifier: str | None, what: str) -> dict[str, Any]:
        """The token response of a successful exchange, checked."""
        response = self.exchange_response(code, verifier)
        check(response.status_code == 200, f"{what}: POST /v1/auth/oauth/exchange: expected 200, got "
                                           f"{describe(response)}")
        body = json_of(response, f"{what}: the exchange")
        check(isinstance(body.get("access_token"), str) and body["access_token"],
              f"{what}: the exchange has no access_token: {body!r}")
        check(str(body.get("token_type", "")).lower() == "bearer",
              f"{what}: the exchange's token_type is {body.get('token_type')!r}, not Bearer")
        check(isinstance(body.get("expires_in"), int) and body["expires_in"] > 0,
              f"{what}: the exchange's expires_in {body.get('expires_in')!r} is not a positive integer")
        check(isinstance(body.get("refresh_token"), str) and body["refresh_token"],
              f"{what}: the exchange has no refresh_token: {body!r}")
        user = body.get("user")
        check(isinstance(user, dict) and isinstance(user.get("id"), str) and user["id"],
              f"{what}: the exchange has no user with an id: {body!r}")
        return body

    def exchange_refused(self, code: str, verifier: str | None, what: str) -> None:
        expect_problem(self.exchange_response(code, verifier), 422, what)

    # -- the fake provider

    def control(self, mode: str, sub: str, email: str, email_verified: bool) -> None:
        response = requests.post(self.fake + "/control", timeout=TIMEOUT,
                                 json={"mode": mode, "sub": sub, "email": email, "email_verified": email_verified})
        check(response.status_code == 200, f"POST /control to fake_provider: {describe(response)}")

    def fake_last(self) -> dict[str, Any]:
        response = requests.get(self.fake + "/last", timeout=TIMEOUT)
        check(response.status_code == 200, f"GET /last at fake_provider: {describe(response)}")
        return json_of(response, "GET /last at fake_provider")

    # -- the browser's legs

    def begin(self, provider: str, authorize_endpoint: str, challenge: str | None = None,
              session: requests.Session | None = None) -> Flow:
        """GET /v1/auth/oauth/{provider}: Basalt's 302 to the provider, and its state cookie."""
        flow = Flow(provider, session or requests.Session())
        params = {"redirect_uri": self.app_redirect}
        if challenge is not None:
            params.update(code_challenge=challenge, code_challenge_method="S256")
        response = flow.session.get(self.url(f"/v1/auth/oauth/{provider}"), params=params,
                                    allow_redirects=False, timeout=TIMEOUT)
        what = f"GET /v1/auth/oauth/{provider}"
        check(response.status_code == 302, f"{what}: expected a 302 to the provider, got {describe(response)}")
        location = response.headers.get("Location", "")
        parts = urlsplit(location)
        check(urlunsplit(parts._replace(query="", fragment="")) == authorize_endpoint,
              f"{what}: redirected to {location!r}, not to the provider's authorization endpoint "
              f"{authorize_endpoint!r}")
        query = single_params(location, what)
        flow.authorize_url, flow.authorize_query = location, query
        expected = {"response_type": "code", "redirect_uri": self.callback(provider),
                    "code_challenge_method": "S256"}
        for name, value in expected.items():
            check(query.get(name) == value, f"{what}: {name} is {query.get(name)!r}, expected {value!r} ({location})")
        for name in ("client_id", "scope", "state", "code_challenge"):
            check(bool(query.get(name)), f"{what}: no {name} in {location}")
        challenge_sent = query["code_challenge"]
        check(len(challenge_sent) == 43 and all(c.isalnum() or c in "-_" for c in challenge_sent),
              f"{what}: code_challenge {challenge_sent!r} is not a base64url SHA-256 (43 characters)")
        if challenge is not None:
            check(challenge_sent != challenge, f"{what}: Basalt forwarded the app's code_challenge to the "
                                               f"provider instead of its own")
        flow.state = query["state"]
        check(len(flow.state) >= 16, f"{what}: state {flow.state!r} is short (under 16 characters)")

        cookies = [h for h in set_cookie_headers(response) if h.split("=", 1)[0].strip() == STATE_COOKIE]
        check(len(cookies) == 1,
              f"{what}: expected one Set-Cookie {STATE_COOKIE}, got {set_cookie_headers(response)!r}")
        value, *attributes = [part.strip() for part in cookies[0].split(";")]
        check(value.split("=", 1)[1] == flow.state, f"{what}: the {STATE_COOKIE} cookie {value!r} is not the "
                                                    f"state {flow.state!r}")
        attributes = [a.lower().replace(" ", "") for a in attributes]
        for wanted in ("httponly", "samesite=lax", "path=/v1/auth/oauth"):
            check(wanted in attributes, f"{what}: the state cookie lacks {wanted}: {cookies[0]!r}")
        return flow

    def to_basalt(self, flow: Flow, response: requests.Response, what: str) -> str:
        """The provider's 302 back to Basalt's callback, with the flow's state."""
        check(response.status_code == 302, f"{what}: expected a 302 back to Basalt, got {describe(response)}")
        location = urljoin(response.url, response.headers.get("Location", ""))
        callback = self.callback(flow.provider)
        check(location.startswith(callback + "?"), f"{what}: the provider sent the browser to {location!r}, "
                                                   f"not to Basalt's callback {callback!r}")
        params = single_params(location, what)
        check(params.get("state") == flow.state, f"{what}: state {params.get('state')!r} != the flow's "
                                                 f"{flow.state!r} ({location})")
        flow.callback_url = location
        return location

    def at_mock(self, flow: Flow, sub: str) -> str:
        """oidc-provider-mock: its authorization form, the predefined user's button."""
        page = flow.session.get(flow.authorize_url, allow_redirects=False, timeout=TIMEOUT)
        check(page.status_code == 200 and page.headers.get("Content-Type", "").startswith("text/html"),
              f"oidc-provider-mock's authorization page: expected 200 HTML, got {describe(page)}")
        parser = PageParser()
        parser.feed(page.text)
        forms = [f for f in parser.forms if f.method == "post" and f.button("sub", sub) is not None]
        check(len(forms) == 1, f"oidc-provider-mock's authorization page has no form with a button sub={sub!r}")
        target = urljoin(page.url, forms[0].action)
        response = flow.session.post(target, data={"sub": sub}, allow_redirects=False, timeout=TIMEOUT)
        return self.to_basalt(flow, response, "oidc-provider-mock's authorization form")

    def at_fake(self, flow: Flow) -> str:
        response = flow.session.get(flow.authorize_url, allow_redirects=False, timeout=TIMEOUT)
        return self.to_basalt(flow, response, f"fake_provider's authorization endpoint ({flow.provider})")

    def finish(self, flow: Flow, what: str) -> dict[str, str]:
        """Basalt's callback, with the flow's browser: its 302 to APP_REDIRECT (not followed)."""
        response = flow.session.get(flow.callback_url, allow_redirects=False, timeout=TIMEOUT)
        check(response.status_code == 302, f"{what}: the callback: expected a 302 to APP_REDIRECT, got "
                                           f"{describe(response)}")
        location = response.headers.get("Location", "")
        parts, expected = urlsplit(location), urlsplit(self.app_redirect)
        check((parts.scheme, parts.netloc, parts.path) == (expected.scheme, expected.netloc, expected.path),
              f"{what}: the callback redirected to {location!r}, not to APP_REDIRECT {self.app_redirect!r}")
        check(not parts.fragment, f"{what}: the redirect to the app has a fragment: {location!r}")
        params = single_params(location, what)
        for name, value in single_params(self.app_redirect, "APP_REDIRECT").items():
            check(params.pop(name, None) == value, f"{what}: APP_REDIRECT's own {name}={value} is lost in {location!r}")
        flow.app_location, flow.app_params = location, params
        return params

    def expect_code(self, flow: Flow, what: str) -> str:
        params = flow.app_params
        hint = ""
        if flow.provider == "mock" and params.get("error") == "invalid_id_token":
            hint = (" (oidc-provider-mock's ID tokens have no kid header: its JWKS has a single key, "
                    "which OpenID Connect Core §10.1 allows)")
        check("error" not in params, f"{what}: Basalt sent the app error={params.get('error')!r} "
                                     f"({params.get('error_description')!r}){hint}: {flow.app_location}")
        code = params.get("code", "")
        check(code.startswith("bxc_"), f"{what}: no bxc_ code at APP_REDIRECT: {flow.app_location}")
        tokenish = [name for name in params if "token" in name.lower()]
        check(not tokenish, f"{what}: token parameters {tokenish} in the redirect to the app: {flow.app_location}")
        check("." not in code, f"{what}: the code looks like a JWT: {code!r}")
        return code

    def expect_error(self, flow: Flow, error: str, what: str) -> None:
        params = flow.app_params
        check(params.get("error") == error, f"{what}: expected error={error} at APP_REDIRECT, got "
                                            f"{flow.app_location!r}")
        check("code" not in params, f"{what}: a code next to the error: {flow.app_location}")
        check(bool(params.get("error_description")), f"{what}: no error_description: {flow.app_location}")

    def fake_flow(self, provider: str, mode: str, sub: str, email: str, email_verified: bool, what: str,
                  challenge: str | None = None) -> Flow:
        """A whole flow through fake_provider (provider fake or plain), up to APP_REDIRECT."""
        self.control(mode, sub, email, email_verified)
        endpoint = self.fake + ("/authorize" if provider == "fake" else "/plain/authorize")
        flow = self.begin(provider, endpoint, challenge)
        self.at_fake(flow)
        self.finish(flow, what)
        return flow

    def fake_sign_in(self, sub: str, email: str, email_verified: bool, what: str,
                     provider: str = "fake", pkce: bool = True) -> tuple[Flow, dict[str, Any]]:
        """A successful flow through fake_provider and its exchange."""
        verifier = new_verifier() if pkce else None
        flow = self.fake_flow(provider, "normal", sub, email, email_verified, what,
                              s256(verifier) if verifier else None)
        flow.app_verifier = verifier
        code = self.expect_code(flow, what)
        return flow, self.exchange(code, verifier, what)


# ---- the checks ------------------------------------------------------------------------------------


def check_mock_sign_up(run: Run) -> str:
    what = "the first sign-in with mock"
    check(not run.admin_users(ALICE["email"]), f"{ALICE['email']} has an account already: this check needs a "
                                              f"fresh server")
    verifier = new_verifier()
    flow = run.begin("mock", run.mock_authorize_endpoint, s256(verifier))
    run.alice_flow = flow
    query = flow.authorize_query
    check(query.get("client_id") == "basalt-test", f"{what}: client_id {query.get('client_id')!r} != 'basalt-test'")
    check(set(query.get("scope", "").split()) == OIDC_SCOPES, f"{what}: scope {query.get('scope')!r}, expected "
                                                               f"'openid email profile'")
    check(bool(query.get("nonce")), f"{what}: no nonce for an OpenID provider: {flow.authorize_url}")
    check(query["nonce"] != flow.state, f"{what}: the nonce is the state")
    check(run.alice_flow.session.cookies.get(STATE_COOKIE, path="/v1/auth/oauth") == flow.state,
          f"{what}: the browser did not keep the state cookie for /v1/auth/oauth")
    run.at_mock(flow, ALICE["sub"])
    run.finish(flow, what)
    code = run.expect_code(flow, what)
    tokens = run.exchange(code, verifier, what)
    for name in ("access_token", "refresh_token"):
        check(tokens[name] not in flow.app_location, f"{what}: the {name} is in the redirect to the app")
    me = run.me(tokens["access_token"], what)
    check(me.get("id") == tokens["user"]["id"], f"{what}: /v1/auth/me id {me.get('id')!r} != the exchange's user "
                                                f"{tokens['user']['id']!r}")
    check(me.get("email") == ALICE["email"], f"{what}: /v1/auth/me email {me.get('email')!r} != {ALICE['email']!r}")
    check(me.get("verified") is True, f"{what}: the new user is not verified: {me!r}")
    items = run.identities(tokens["access_token"], what)
    check([(i["provider"], i["subject"]) for i in items] == [("mock", ALICE["sub"])],
          f"{what}: identities {items!r}, expected exactly mock / {ALICE['sub']}")
    check(items[0].get("email") == ALICE["email"], f"{what}: the identity's email is {items[0].get('email')!r}")
    check(len(run.admin_users(ALICE["email"])) == 1, f"{what}: not exactly one user with {ALICE['email']}")
    run.alice = {"id": me["id"], "access_token": tokens["access_token"]}
    return f"user {me['id']}"


def check_mock_sign_in_again(run: Run) -> str:
    what = "the second sign-in with mock"
    check(bool(run.alice), "needs mock-sign-up, which failed")
    flow = run.begin("mock", run.mock_authorize_endpoint)
    run.at_mock(flow, ALICE["sub"])
    run.finish(flow, what)
    code = run.expect_code(flow, what)
    tokens = run.exchange(code, None, what + " (no app challenge, no code_verifier)")
    check(tokens["user"]["id"] == run.alice["id"], f"{what}: signed in as {tokens['user']['id']!r}, not as the "
                                                   f"user of the first sign-in {run.alice['id']!r}")
    items = run.identities(tokens["access_token"], what)
    check(len(items) == 1, f"{what}: the user has {len(items)} identities now: {items!r}")
    run.alice["access_token"] = tokens["access_token"]
    return "same user"


def refused_replayed_callback(run: Run) -> str:
    flow = run.alice_flow
    check(flow is not None and bool(flow.callback_url), "needs the first flow's callback (mock-sign-up failed early)")
    replay = requests.get(flow.callback_url, cookies={STATE_COOKIE: flow.state}, allow_redirects=False,
                          timeout=TIMEOUT)
    expect_problem(replay, 400, "the first flow's callback again, with its state cookie")
    again = flow.session.get(flow.callback_url, allow_redirects=False, timeout=TIMEOUT)
    expect_problem(again, 400, "the first flow's callback again, in its own browser")
    return "400, no Location"


def refused_wrong_state(run: Run) -> str:
    sub, email = f"state-{run.tag}", f"state-{run.tag}@example.com"
    run.control("normal", sub, email, True)

    flow = run.begin("fake", run.fake + "/authorize")
    run.at_fake(flow)
    state = flow.state
    altered = state[:-1] + ("A" if state[-1] != "A" else "B")
    url = with_param(flow.callback_url, "state", altered)
    response = flow.session.get(url, allow_redirects=False, timeout=TIMEOUT)
    expect_problem(response, 400, "the callback with an altered state (the flow's cookie)")
    response = requests.get(url, cookies={STATE_COOKIE: altered}, allow_redirects=False, timeout=TIMEOUT)
    expect_problem(response, 400, "the callback with an altered state and a cookie equal to it (unknown state)")

    flow = run.begin("fake", run.fake + "/authorize")
    run.at_fake(flow)
    response = requests.Session().get(flow.callback_url, allow_redirects=False, timeout=TIMEOUT)
    expect_problem(response, 400, "the callback without the state cookie (another browser)")

    # a state the plain provider's flow got, brought to the fake provider's callback with its cookie
    plain = run.begin("plain", run.fake + "/plain/authorize")
    url = run.callback("fake") + "?" + urlencode({"code": "whatever", "state": plain.state})
    response = plain.session.get(url, allow_redirects=False, timeout=TIMEOUT)
    expect_problem(response, 400, "the fake provider's callback with the plain provider's state")
    check(not run.admin_users(email), f"a user was created for {email}")
    return "altered, unknown, no cookie, other provider's: 400"


def refused_exchange(run: Run) -> str:
    sub, email = f"exchange-{run.tag}", f"exchange-{run.tag}@example.com"

    flow, _ = run.fake_sign_in(sub, email, True, "a flow without an app challenge", pkce=False)
    run.exchange_refused(flow.app_params["code"], None, "the same code exchanged a second time")

    flow, _ = run.fake_sign_in(sub, email, True, "a flow with an app challenge")
    run.exchange_refused(flow.app_params["code"], flow.app_verifier, "a code exchanged a second time, with its "
                                                                     "code_verifier")

    verifier = new_verifier()
    flow = run.fake_flow("fake", "normal", sub, email, True, "a flow with an app challenge", s256(verifier))
    code = run.expect_code(flow, "a flow with an app challenge")
    run.exchange_refused(code, None, "the exchange without the code_verifier the flow's challenge needs")
    run.exchange_refused(code, verifier, "the right code_verifier after an exchange without one (the code is spent)")

    verifier = new_verifier()
    flow = run.fake_flow("fake", "normal", sub, email, True, "a flow with an app challenge", s256(verifier))
    code = run.expect_code(flow, "a flow with an app challenge")
    run.exchange_refused(code, new_verifier(), "the exchange with another code_verifier")
    run.exchange_refused(code, verifier, "the right code_verifier after a wrong one (the code is spent)")

    run.exchange_refused("bxc_" + secrets.token_urlsafe(32), None, "an unknown code")
    return "twice, no verifier, wrong verifier, unknown: 422"


def check_fake_pkce_and_nonce(run: Run) -> str:
    what = "the sign-in with fake"
    sub, email = f"normal-{run.tag}", f"normal-{run.tag}@example.com"
    check(not run.admin_users(email), f"{what}: {email} exists before the flow")
    flow, tokens = run.fake_sign_in(sub, email, True, what)
    last = run.fake_last()
    authorize, token = last.get("authorize") or {}, last.get("token") or {}
    query = authorize.get("query") or {}
    check(authorize.get("path") == "/authorize" and query == flow.authorize_query,
          f"{what}: the fake's last authorization request {authorize!r} is not Basalt's {flow.authorize_query!r}")
    check(query.get("client_id") == "basalt-fake", f"{what}: client_id {query.get('client_id')!r}")
    check(set(query.get("scope", "").split()) == OIDC_SCOPES, f"{what}: scope {query.get('scope')!r}")
    check(query.get("state") == flow.state and bool(query.get("nonce")),
          f"{what}: the fake saw state {query.get('state')!r} and nonce {query.get('nonce')!r}")
    check(query.get("code_challenge_method") == "S256", f"{what}: code_challenge_method "
                                                        f"{query.get('code_challenge_method')!r}")
    form = token.get("form") or {}
    check(token.get("path") == "/token" and token.get("status") == 200,
          f"{what}: the fake's token endpoint answered {token.get('status')!r} ({token.get('error')!r})")
    check(form.get("grant_type") == "authorization_code" and form.get("redirect_uri") == run.callback("fake"),
          f"{what}: the token request's form {form!r}")
    verifier = form.get("code_verifier", "")
    check(bool(verifier) and s256(verifier) == query.get("code_challenge"),
          f"{what}: the token request's code_verifier {verifier!r} does not hash to the code_challenge "
          f"{query.get('code_challenge')!r}")
    check(verifier != flow.app_verifier, f"{what}: Basalt sent the app's code_verifier to the provider")
    check(token.get("pkce") == "matched", f"{what}: the fake's PKCE verdict is {token.get('pkce')!r}")
    basic = "Basic " + base64.b64encode(b"basalt-fake:fake-secret").decode()
    check(token.get("authorization") == basic, f"{what}: the token request's Authorization is "
                                               f"{token.get('authorization')!r}, not client_secret_basic")
    check("client_secret" not in form, f"{what}: the client secret is in the form too")

    me = run.me(tokens["access_token"], what)
    check(me.get("email") == email and me.get("verified") is True, f"{what}: /v1/auth/me is {me!r}")
    items = run.identities(tokens["access_token"], what)
    check([(i["provider"], i["subject"]) for i in items] == [("fake", sub)], f"{what}: identities {items!r}")
    users = run.admin_users(email)
    check(len(users) == 1 and users[0].get("id") == me.get("id"), f"{what}: the admin list for {email}: {users!r}")
    return f"user {me['id']}"


def refused_bad_id_token(mode: str) -> Callable[[Run], str]:
    def run_check(run: Run) -> str:
        what = f"mode {mode}"
        sub, email = f"{mode.replace('_', '-')}-{run.tag}", f"{mode.replace('_', '-')}-{run.tag}@example.com"
        before = run.fake_last()["counts"]["token"]
        flow = run.fake_flow("fake", mode, sub, email, True, what)
        last = run.fake_last()
        token = last.get("token") or {}
        check(last["counts"]["token"] == before + 1 and token.get("status") == 200,
              f"{what}: Basalt's token request did not get the fake's ID token: {token!r}")
        run.expect_error(flow, "invalid_id_token", what)
        users = run.admin_users(email)
        check(not users, f"{what}: a user was created for {email}: {users!r}")
        return "error=invalid_id_token, no user"
    return run_check


def refused_unverified_provider_email(run: Run) -> str:
    what = "email_verified false for VERIFIED_EMAIL"
    flow = run.fake_flow("fake", "normal", f"unverified-provider-{run.tag}", run.verified_email, False, what)
    run.expect_error(flow, "account_exists", what)
    _, token = run.login(run.verified_email, what)
    items = run.identities(token, what)
    check(not items, f"{what}: the account has identities: {items!r}")
    return "error=account_exists, no identity"


def refused_unverified_account(run: Run) -> str:
    what = "email_verified true for UNVERIFIED_EMAIL"
    flow = run.fake_flow("fake", "normal", f"unverified-account-{run.tag}", run.unverified_email, True, what)
    run.expect_error(flow, "account_exists", what)
    return "error=account_exists"


def check_link_verified(run: Run) -> str:
    what = "the sign-in with fake as VERIFIED_EMAIL"
    account_id, _ = run.login(run.verified_email, what)
    sub = f"link-{run.tag}"
    _, tokens = run.fake_sign_in(sub, run.verified_email, True, what)
    me = run.me(tokens["access_token"], what)
    check(me.get("id") == account_id, f"{what}: signed in as {me.get('id')!r}, not the password account "
                                      f"{account_id!r}")
    items = run.identities(tokens["access_token"], what)
    check([(i["provider"], i["subject"]) for i in items] == [("fake", sub)], f"{what}: identities {items!r}")
    check(len(run.admin_users(run.verified_email)) == 1, f"{what}: more than one user with {run.verified_email}")
    run.linked_subject = sub
    return f"user {account_id}"


def check_provider_denied(run: Run) -> str:
    what = "the denied sign-in"
    before = run.fake_last()["counts"]["token"]
    flow = run.fake_flow("fake", "deny", f"deny-{run.tag}", f"deny-{run.tag}@example.com", True, what)
    run.expect_error(flow, "access_denied", what)
    check(run.fake_last()["counts"]["token"] == before, f"{what}: Basalt called the token endpoint anyway")
    return "error=access_denied"


def check_plain_oauth2(run: Run) -> str:
    what = "the sign-in with plain"
    sub = str(secrets.randbelow(9 * 10**8) + 10**8)
    email = f"plain-{run.tag}@example.com"
    check(not run.admin_users(email), f"{what}: {email} exists before the flow")
    flow, tokens = run.fake_sign_in(sub, email, True, what, provider="plain")
    query = flow.authorize_query
    check(query.get("client_id") == "basalt-plain" and query.get("scope") == "user",
          f"{what}: client_id {query.get('client_id')!r}, scope {query.get('scope')!r}")
    token = run.fake_last().get("token") or {}
    form = token.get("form") or {}
    check(token.get("path") == "/plain/token" and token.get("status") == 200 and token.get("pkce") == "matched",
          f"{what}: the plain token request: {token!r}")
    check(form.get("client_id") == "basalt-plain" and form.get("client_secret") == "plain-secret",
          f"{what}: the token request's form lacks the client's credentials: {form!r}")
    me = run.me(tokens["access_token"], what)
    check(me.get("email") == email and me.get("verified") is True, f"{what}: /v1/auth/me is {me!r}")
    items = run.identities(tokens["access_token"], what)
    check([(i["provider"], i["subject"]) for i in items] == [("plain", sub)], f"{what}: identities {items!r}")
    check(len(run.admin_users(email)) == 1, f"{what}: not exactly one user with {email}")
    return f"subject {sub}"


def check_unlink(run: Run) -> str:
    what = "unlinking"
    # the password account linked by link-verified
    check(bool(run.linked_subject), "needs link-verified, which failed")
    _, token = run.login(run.verified_email, what)
    items = run.identities(token, what)
    linked = [i for i in items if (i["provider"], i["subject"]) == ("fake", run.linked_subject)]
    check(len(linked) == 1, f"{what}: the password account's identities {items!r} lack fake / {run.linked_subject}")
    response = run.api("DELETE", f"/v1/auth/identities/{quote(linked[0]['id'], safe='')}", token)
    check(response.status_code == 204, f"{what}: unlinking the password account's identity: expected 204, got "
                                       f"{describe(response)}")
    items = run.identities(token, what)
    check(not items, f"{what}: identities after the unlink: {items!r}")

    # the OAuth-only user of mock-sign-up: no password, one identity
    check(bool(run.alice), "needs mock-sign-up, which failed (the password account's unlink passed)")
    items = run.identities(run.alice["access_token"], what)
    check(len(items) == 1 and items[0]["provider"] == "mock", f"{what}: the mock user's identities {items!r}")
    response = run.api("DELETE", f"/v1/auth/identities/{quote(items[0]['id'], safe='')}", run.alice["access_token"])
    expect_problem(response, 409, f"{what}: unlinking the only way to sign in")
    after = run.identities(run.alice["access_token"], what)
    check(after == items, f"{what}: the identities changed after the 409: {after!r}")
    return "last one 409, password account 204"


def refused_redirect(run: Run) -> str:
    variants = [run.app_redirect + "/", run.app_redirect + "x", "http://evil.example/app/callback"]
    for uri in variants:
        response = requests.get(run.url("/v1/auth/oauth/fake"), params={"redirect_uri": uri},
                                allow_redirects=False, timeout=TIMEOUT)
        expect_problem(response, 422, f"redirect_uri {uri!r}")
    response = requests.get(run.url("/v1/auth/oauth/nosuchprovider"), params={"redirect_uri": run.app_redirect},
                            allow_redirects=False, timeout=TIMEOUT)
    expect_problem(response, 404, "an unknown provider")
    return "422 ×3, unknown provider 404"


CHECKS: list[tuple[str, Callable[[Run], str | None]]] = [
    ("mock-sign-up", check_mock_sign_up),
    ("mock-sign-in-again", check_mock_sign_in_again),
    ("refused-replayed-callback", refused_replayed_callback),
    ("refused-wrong-state", refused_wrong_state),
    ("refused-exchange", refused_exchange),
    ("fake-pkce-and-nonce", check_fake_pkce_and_nonce),
    *[(f"refused-{mode.replace('_', '-')}", refused_bad_id_token(mode)) for mode in BAD_ID_TOKEN_MODES],
    ("refused-unverified-provider-email", refused_unverified_provider_email),
    ("refused-unverified-account", refused_unverified_account),
    ("link-verified", check_link_verified),
    ("provider-denied", check_provider_denied),
    ("plain-oauth2", check_plain_oauth2),
    ("unlink", check_unlink),
    ("refused-redirect", refused_redirect),
]


def start_providers(run: Run, log_dir: Path) -> str:
    command = shutil.which("oidc-provider-mock")
    mock_argv = [command] if command else [sys.executable, "-m", "oidc_provider_mock"]
    mock_argv += ["--port", str(run.mock_port), "--user-claims", json.dumps(ALICE)]
    run.servers.append(start_server("oidc-provider-mock", mock_argv, log_dir))
    fake_script = Path(__file__).resolve().with_name("fake_provider.py")
    run.servers.append(start_server("fake_provider", [sys.executable, str(fake_script), str(run.fake_port)], log_dir))
    deadline = time.monotonic() + 30
    document = wait_until_up(run.servers[0], run.mock + "/.well-known/openid-configuration", run.mock, deadline)
    run.mock_authorize_endpoint = document.get("authorization_endpoint", "")
    check(run.mock_authorize_endpoint.startswith(run.mock + "/"),
          f"oidc-provider-mock's authorization_endpoint is {run.mock_authorize_endpoint!r}")
    wait_until_up(run.servers[1], run.fake + "/.well-known/openid-configuration", run.fake, deadline)
    return f"mock on {run.mock_port}, fake on {run.fake_port}"


def main() -> int:
    if len(sys.argv) != 2:
        return usage(__doc__)
    if missing_environment(("BASALT_ADMIN_KEY", "MOCK_PORT", "FAKE_PORT", "APP_REDIRECT", "VERIFIED_EMAIL",
                            "UNVERIFIED_EMAIL", "BASALT_USER_PASSWORD")):
        return 2
    run = Run(sys.argv[1].rstrip("/"), dict(os.environ))
    # The test process may hand down a signal mask blocking SIGTERM: the providers (which inherit
    # this process's mask) must stop on it. A SIGTERM to this script still stops them (finally).
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    report = Report("social sign-in")
    with tempfile.TemporaryDirectory(prefix="social-signin-") as log_dir:
        try:
            if report.run("providers", lambda: start_providers(run, Path(log_dir))):
                report.run_all(CHECKS, run)
        finally:
            notes = [note for server in run.servers if (note := stop_server(server))]
            if report.failed:
                for server in run.servers:
                    print(f"--- {server.name} log (last lines)\n{server.tail()}", flush=True)
            for note in notes:  # the harness's trouble, not Basalt's: no FAIL
                print(f"note: {note}", flush=True)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
