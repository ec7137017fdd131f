#!/usr/bin/env python3
"""Basalt's OAuth 2.1 authorization server works with an independent client library (Authlib).

Usage: python3 authlib_flows.py BASE_URL

Environment:
  BASALT_ADMIN_KEY      an admin API key (bsk_…)
  BASALT_USER_EMAIL     email of an existing, verified user without MFA
  BASALT_USER_PASSWORD  that user's password

The server must serve a collection `notes` (`text` text required, `owner` relation to users;
authenticated users list/view/create/update/delete their own notes, create requires
`@new.owner = @auth.id`) and a role `service` that may list and view all notes.

The script registers its own OAuth clients through the admin API (a confidential web client
with every grant, a public client, a confidential `service` client for client_credentials and
a public client allowed only `notes:read`) and deletes them at the end, with the notes it made.
Authlib's OAuth2Session drives the protocol: the authorization URL with PKCE S256, fetch_token,
refresh_token, client credentials, revoke_token, introspect_token. The browser is a
requests.Session: it GETs the authorization URL (keeping the CSRF cookie), posts the sign-in
and consent form (every hidden input, plus email, password and the pressed button) without
following redirects, and hands the Location to Authlib. ID and access tokens are verified with
joserfc against the published JWKS. The user's id comes from POST /v1/auth/login.

One line per check, `ok NAME` or `FAIL NAME: reason`:

  discovery            both discovery documents (RFC 8414 validated by Authlib), the JWKS
  admin-clients        the admin API registered the clients and never lists a secret
  code-flow            code + PKCE, confidential client (client_secret_basic): access, refresh
                       and ID tokens; the consent form; ID token and access token verified with
                       joserfc; userinfo (and its 401s)
  scope-narrowing      notes:read (public client, no secret): list 200, create 403, refused at
                       /v1/auth/me; notes:write: create 201, then readable
  refresh-rotation     a new refresh token each time; reusing the old one is invalid_grant and
                       kills the family (newest refresh token, its access tokens)
  client-credentials   service client (client_secret_post): no refresh/ID token, sub = client,
                       role service sees the user's notes, cannot create
  revoke               revoking a refresh token or an access token ends the session
  introspect           active/inactive answers; a public client is invalid_client
  refused-*            at /oauth/authorize: no code_challenge, method plain, no method,
                       response_type=token (302 with error, state, iss); a redirect_uri one
                       character off, with a trailing slash, an unknown client (400 page, no
                       Location); a scope beyond the client's (invalid_scope); a POST without
                       the CSRF cookie or with another csrf field (403, no Location); Deny
                       (access_denied). At /oauth/token: a code used twice (invalid_grant, and
                       the first exchange's token is revoked), a wrong code_verifier, a public
                       client asking for client_credentials, a scope beyond the client's, a
                       wrong client secret (basic and post), an unknown grant_type

Exits 1 when any check fails; the last line is `authlib flows: N ok`. A deviation from the
contract is reported, never worked around. The user signs in about a dozen times within
seconds: the server's sign-in throttle must allow that.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
import warnings
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import KeySet

from oauth_support import (
    Failure,
    Form,
    PageParser,
    Report,
    check,
    describe,
    free_port,
    json_of,
    missing_environment,
    set_cookie_headers,
    usage,
)

# joserfc warns that the name "EdDSA" is deprecated by RFC 9864; the contract uses that name.
warnings.filterwarnings("ignore", category=SecurityWarning)

TIMEOUT = 30
CSRF_COOKIE = "basalt_oauth_csrf"
ACCESS_TOKEN_AUDIENCE = "basalt"


def scope_set(value: Any) -> set[str]:
    return set(value.split()) if isinstance(value, str) else set()


# ---- the sign-in and consent page --------------------------------------------------------------


def authorize_form(response: requests.Response) -> Form:
    parser = PageParser()
    parser.feed(response.text)
    forms = [f for f in parser.forms
             if f.method == "post" and urlsplit(urljoin(response.url, f.action)).path == "/oauth/authorize"]
    check(len(forms) == 1, f"the sign-in page has {len(forms)} forms posting to /oauth/authorize, not 1: "
                           f"{describe(response)}")
    form = forms[0]
    for name in ("email", "password", "csrf"):
        check(form.input(name) is not None, f"the sign-in form has no input named {name!r}: {describe(response)}")
    return form


@dataclass
class Page:
    session: requests.Session
    response: requests.Response
    form: Form

    def submit(self, decision: str = "allow", session: requests.Session | None = None,
               **overrides: str) -> requests.Response:
        button = self.form.button("decision", decision)
        check(button is not None, f"the sign-in form has no <button name=\"decision\" value=\"{decision}\">")
        data = self.form.submission(("decision", decision), overrides)
        return (session or self.session).post(urljoin(self.response.url, self.form.action), data=data,
                                              allow_redirects=False, timeout=TIMEOUT)


# ---- the run --------------------------------------------------------------------------------------


@dataclass
class Client:
    id: str
    secret: str | None
    redirect_uri: str | None
    record: dict[str, Any]


class Recorder:
    """An Authlib compliance hook keeping the token endpoint's last raw answer."""

    def __init__(self) -> None:
        self.last: requests.Response | None = None

    def __call__(self, response: requests.Response) -> requests.Response:
        self.last = response
        return response

    def context(self) -> str:
        return f"\n  token endpoint: {describe(self.last)}" if self.last is not None else ""


@dataclass
class Flow:
    session: OAuth2Session
    recorder: Recorder
    token: dict[str, Any]
    raw: dict[str, Any]
    verifier: str
    code: str


class Run:
    def __init__(self, base: str, admin_key: str, email: str, password: str) -> None:
        self.base = base
        self.issuer = base
        self.admin_key = admin_key
        self.email = email
        self.password = password
        self.tag = uuid.uuid4().hex[:8]
        self.redirect_uri = f"http://127.0.0.1:{free_port()}/cb"
        self.clients: dict[str, Client] = {}
        self.notes: list[str] = []
        self.user_id = ""
        self.user_token = ""
        self.user_refresh = ""
        self._keys: KeySet | None = None

    def url(self, path: str) -> str:
        return self.base + path

    @property
    def authorize_endpoint(self) -> str:
        return self.url("/oauth/authorize")

    @property
    def token_endpoint(self) -> str:
        return self.url("/oauth/token")

    @property
    def revocation_endpoint(self) -> str:
        return self.url("/oauth/revoke")

    @property
    def introspection_endpoint(self) -> str:
        return self.url("/oauth/introspect")

    @property
    def userinfo_endpoint(self) -> str:
        return self.url("/oauth/userinfo")

    # -- plain HTTP

    def admin(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.url(path), headers={"Authorization": f"Bearer {self.admin_key}"},
                                timeout=TIMEOUT, allow_redirects=False, **kwargs)

    def api(self, method: str, path: str, token: str, **kwargs) -> requests.Response:
        return requests.request(method, self.url(path), headers={"Authorization": f"Bearer {token}"},
                                timeout=TIMEOUT, allow_redirects=False, **kwargs)

    def expect_api(self, method: str, path: str, token: str, status: int, what: str, **kwargs) -> requests.Response:
        response = self.api(method, path, token, **kwargs)
        check(response.status_code == status, f"{what}: expected {status}, got {describe(response)}")
        return response

    def create_note(self, token: str, text: str, what: str) -> str:
        response = self.expect_api("POST", "/v1/notes", token, 201, what, json={"text": text, "owner": self.user_id})
        body = json_of(response, what)
        note_id = body.get("id") if isinstance(body, dict) else None
        check(isinstance(note_id, str) and note_id, f"{what}: the 201 has no id: {describe(response)}")
        self.notes.append(note_id)
        return note_id

    # -- setup and teardown

    def register(self, role: str, confidential: bool, grants: list[str], scopes: list[str], roles: list[str],
                 redirect: bool = True) -> Client:
        body = {
            "name": f"authlib {role} {self.tag}",
            "redirect_uris": [self.redirect_uri] if redirect else [],
            "confidential": confidential,
            "grants": grants,
            "scopes": scopes,
            "roles": roles,
        }
        response = self.admin("POST", "/v1/admin/oauth/clients", json=body)
        check(response.status_code == 201, f"register the {role} client: expected 201, got {describe(response)}")
        record = json_of(response, f"register the {role} client")
        check(isinstance(record, dict) and isinstance(record.get("id"), str) and record["id"],
              f"register the {role} client: no id in {record!r}")
        client = Client(record["id"], record.get("client_secret"), self.redirect_uri if redirect else None, record)
        self.clients[role] = client
        for key in ("name", "redirect_uris", "confidential"):
            check(record.get(key) == body[key], f"register the {role} client: {key} is {record.get(key)!r}, "
                                                f"sent {body[key]!r}")
        for key in ("grants", "scopes", "roles"):
            check(isinstance(record.get(key), list) and set(record[key]) == set(body[key]),
                  f"register the {role} client: {key} is {record.get(key)!r}, sent {body[key]!r}")
        check(isinstance(record.get("created_at"), str), f"register the {role} client: no created_at in {record!r}")
        if confidential:
            check(isinstance(client.secret, str) and len(client.secret) >= 16,
                  f"register the {role} client: a confidential client without a usable client_secret: {record!r}")
        else:
            check(not client.secret, f"register the {role} client: a public client got a client_secret: {record!r}")
        return client

    def setup(self) -> None:
        response = requests.post(self.url("/v1/auth/login"), json={"email": self.email, "password": self.password},
                                 timeout=TIMEOUT)
        check(response.status_code == 200, f"POST /v1/auth/login: expected 200, got {describe(response)}")
        body = json_of(response, "POST /v1/auth/login")
        self.user_id = (body.get("user") or {}).get("id", "")
        self.user_token = body.get("access_token", "")
        self.user_refresh = body.get("refresh_token", "")
        check(bool(self.user_id) and bool(self.user_token),
              f"POST /v1/auth/login: no user.id or access_token: {body!r}")

        self.register("web", True, ["authorization_code", "refresh_token", "client_credentials"],
                      ["openid", "profile", "email", "offline_access", "notes:read", "notes:write"], [])
        self.register("public", False, ["authorization_code", "refresh_token"], ["openid", "notes:read"], [])
        self.register("service", True, ["client_credentials"], ["notes:read"], ["service"], redirect=False)
        self.register("readonly", False, ["authorization_code"], ["notes:read"], [])

    def teardown(self) -> list[str]:
        """Deletes the notes and clients made, signs the first-party session out; returns the problems."""
        steps: list[tuple[str, Callable[[], requests.Response], tuple[int, ...]]] = []
        for note_id in self.notes:
            steps.append((f"delete note {note_id}",
                          lambda n=note_id: self.admin("DELETE", f"/v1/notes/{n}"), (204, 404)))
        for role, client in self.clients.items():
            steps.append((f"delete the {role} client",
                          lambda c=client: self.admin("DELETE", f"/v1/admin/oauth/clients/{c.id}"), (204,)))
        if self.user_refresh:
            steps.append(("POST /v1/auth/logout", lambda: requests.post(
                self.url("/v1/auth/logout"), json={"refresh_token": self.user_refresh}, timeout=TIMEOUT), (204,)))
        problems = []
        for what, step, statuses in steps:
            try:
                response = step()
            except requests.RequestException as error:
                problems.append(f"{what}: {type(error).__name__}: {error}")
                continue
            if response.status_code not in statuses:
                problems.append(f"{what}: expected {' or '.join(map(str, statuses))}, got {describe(response)}")
        return problems

    # -- OAuth with Authlib

    def oauth(self, role: str, auth_method: str | None = None,
              secret: str | None = None) -> tuple[OAuth2Session, Recorder]:
        client = self.clients[role]
        secret = secret if secret is not None else client.secret
        if auth_method is None:
            auth_method = "client_secret_basic" if secret else "none"
        session = OAuth2Session(
            client_id=client.id,
            client_secret=secret,
            token_endpoint_auth_method=auth_method,
            revocation_endpoint_auth_method=auth_method,
            redirect_uri=client.redirect_uri,
            code_challenge_method="S256",
            default_timeout=TIMEOUT,
        )
        recorder = Recorder()
        session.register_compliance_hook("access_token_response", recorder)
        session.register_compliance_hook("refresh_token_response", recorder)
        return session, recorder

    def open_page(self, url: str) -> Page:
        """The browser's GET of an authorization URL: the 200 sign-in and consent page."""
        session = requests.Session()
        response = session.get(url, allow_redirects=False, timeout=TIMEOUT)
        check(response.status_code == 200, f"GET the authorization URL: expected the 200 sign-in page, got "
                                           f"{describe(response)}")
        check(response.headers.get("Content-Type", "").startswith("text/html"),
              f"the sign-in page is not text/html: {describe(response)}")
        return Page(session, response, authorize_form(response))

    def redirect_params(self, response: requests.Response, redirect_uri: str, state: str | None,
                        what: str) -> dict[str, str]:
        """The query of a 302 to redirect_uri, with state and iss checked."""
        check(response.status_code == 302, f"{what}: expected a 302 to the client, got {describe(response)}")
        location = response.headers.get("Location", "")
        parts, expected = urlsplit(location), urlsplit(redirect_uri)
        check((parts.scheme, parts.netloc, parts.path) == (expected.scheme, expected.netloc, expected.path),
              f"{what}: redirected to {location!r}, not to the registered {redirect_uri!r}")
        check(not parts.fragment, f"{what}: the redirect has a fragment: {location!r}")
        query = parse_qs(parts.query, keep_blank_values=True)
        repeated = [name for name, values in query.items() if len(values) > 1]
        check(not repeated, f"{what}: parameters repeated in the redirect: {repeated} ({location!r})")
        params = {name: values[0] for name, values in query.items()}
        if state is not None:
            check(params.get("state") == state, f"{what}: state {params.get('state')!r} != the sent {state!r} "
                                                f"({location!r})")
        check(params.get("iss") == self.issuer, f"{what}: iss {params.get('iss')!r} != issuer {self.issuer!r} "
                                                f"({location!r})")
        return params

    def sign_in(self, url: str, state: str, redirect_uri: str) -> tuple[str, dict[str, str], Page]:
        page = self.open_page(url)
        response = page.submit("allow", email=self.email, password=self.password)
        params = self.redirect_params(response, redirect_uri, state, "sign in and allow")
        check(bool(params.get("code")), f"sign in and allow: no code in {response.headers.get('Location')!r}")
        check("error" not in params, f"sign in and allow: an error in {response.headers.get('Location')!r}")
        return response.headers["Location"], params, page

    def token_call(self, what: str, recorder: Recorder, call: Callable[[], Any]) -> dict[str, Any]:
        """An Authlib token-endpoint call that must succeed; returns the raw JSON answer."""
        recorder.last = None
        try:
            call()
        except OAuthError as error:
            raise Failure(f"{what}: the token endpoint answered {error.error}: {error.description}"
                          f"{recorder.context()}") from None
        except (requests.RequestException, ValueError) as error:
            raise Failure(f"{what}: {type(error).__name__}: {error}{recorder.context()}") from None
        response = recorder.last
        check(response is not None, f"{what}: Authlib made no token request")
        check(response.status_code == 200, f"{what}: expected 200, got {describe(response)}")
        check("no-store" in response.headers.get("Cache-Control", ""),
              f"{what}: the token answer lacks Cache-Control: no-store ({response.headers.get('Cache-Control')!r})")
        raw = json_of(response, what)
        check(isinstance(raw.get("access_token"), str) and raw["access_token"], f"{what}: no access_token: {raw!r}")
        check(raw.get("token_type") == "Bearer", f"{what}: token_type {raw.get('token_type')!r} != 'Bearer'")
        check(isinstance(raw.get("expires_in"), int) and raw["expires_in"] > 0,
              f"{what}: expires_in {raw.get('expires_in')!r} is not a positive integer")
        return raw

    def token_error(self, what: str, recorder: Recorder, call: Callable[[], Any], errors: dict[str, int]) -> str:
        """An Authlib token-endpoint call that must fail with one of `errors` (error → HTTP status)."""
        recorder.last = None
        try:
            result = call()
        except OAuthError as error:
            response = recorder.last
            check(error.error in errors, f"{what}: expected error {' or '.join(errors)}, got {error.error!r} "
                                         f"({error.description}){recorder.context()}")
            check(response is not None and response.status_code == errors[error.error],
                  f"{what}: error {error.error} with the wrong status (expected {errors[error.error]})"
                  f"{recorder.context()}")
            check(response.headers.get("Content-Type", "").startswith("application/json"),
                  f"{what}: the error is not application/json{recorder.context()}")
            return error.error
        except (requests.RequestException, ValueError) as error:
            raise Failure(f"{what}: expected an OAuth error response (RFC 6749 §5.2), got {type(error).__name__}: "
                          f"{error}{recorder.context()}") from None
        answer = recorder.last
        raise Failure(f"{what}: expected error {' or '.join(errors)}, but it succeeded"
                      + (f" ({answer.status_code}, members {sorted(json_of(answer, what))})" if answer is not None else
                         f": {result!r}"))

    def code_flow(self, role: str, scope: str, nonce: str | None = None, auth_method: str | None = None,
                  inspect: Callable[[Page, str], None] | None = None) -> Flow:
        """Authorization code + PKCE S256 through Authlib and the browser; the token must carry `scope`."""
        session, recorder = self.oauth(role, auth_method)
        client = self.clients[role]
        verifier = generate_token(64)
        extra = {"nonce": nonce} if nonce else {}
        url, state = session.create_authorization_url(self.authorize_endpoint, code_verifier=verifier, scope=scope,
                                                      **extra)
        sent = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
        check(sent.get("code_challenge") == create_s256_code_challenge(verifier)
              and sent.get("code_challenge_method") == "S256",
              f"Authlib built no S256 challenge: {url}")
        location, params, page = self.sign_in(url, state, client.redirect_uri)
        if inspect is not None:
            inspect(page, url)
        what = f"exchange the code ({role} client, scope {scope!r})"
        raw = self.token_call(what, recorder, lambda: session.fetch_token(
            self.token_endpoint, authorization_response=location, state=state, code_verifier=verifier))
        check(scope_set(raw.get("scope")) == scope_set(scope),
              f"{what}: granted scope {raw.get('scope')!r}, requested {scope!r}")
        return Flow(session, recorder, dict(session.token), raw, verifier, params["code"])

    def revoke(self, session: OAuth2Session, token: str, hint: str | None, what: str) -> None:
        response = session.revoke_token(self.revocation_endpoint, token=token, token_type_hint=hint)
        check(response.status_code == 200, f"{what}: expected 200, got {describe(response)}")

    def introspect(self, session: OAuth2Session, token: str, what: str) -> dict[str, Any]:
        response = session.introspect_token(self.introspection_endpoint, token=token)
        check(response.status_code == 200, f"{what}: expected 200, got {describe(response)}")
        body = json_of(response, what)
        check(isinstance(body, dict) and isinstance(body.get("active"), bool),
              f"{what}: no boolean active in {body!r}")
        return body

    # -- JWTs

    def keys(self) -> KeySet:
        if self._keys is None:
            response = requests.get(self.url("/.well-known/jwks.json"), timeout=TIMEOUT)
            check(response.status_code == 200, f"GET /.well-known/jwks.json: {describe(response)}")
            document = json_of(response, "GET /.well-known/jwks.json")
            try:
                self._keys = KeySet.import_key_set(document)
            except (JoseError, ValueError, KeyError, TypeError) as error:
                raise Failure(f"joserfc cannot import the JWKS: {type(error).__name__}: {error}\n"
                              f"    {document!r}") from None
        return self._keys

    def verify_jwt(self, token: str, what: str, **claims: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Signature (EdDSA, a published key) and claims, with joserfc; returns (header, claims)."""
        try:
            decoded = jwt.decode(token, self.keys(), algorithms=["EdDSA"])
        except JoseError as error:
            raise Failure(f"{what}: joserfc rejects it: {type(error).__name__}: {error}") from None
        except ValueError as error:
            raise Failure(f"{what}: joserfc cannot read it: {error}") from None
        check(decoded.header.get("alg") == "EdDSA", f"{what}: header alg {decoded.header.get('alg')!r}")
        check(isinstance(decoded.header.get("kid"), str), f"{what}: header without kid: {decoded.header!r}")
        registry = jwt.JWTClaimsRegistry(leeway=5, exp={"essential": True}, iat={"essential": True}, **claims)
        try:
            registry.validate(decoded.claims)
        except JoseError as error:
            raise Failure(f"{what}: claims rejected by joserfc: {error}\n    claims: {decoded.claims!r}") from None
        check(decoded.claims["exp"] > time.time(), f"{what}: exp {decoded.claims['exp']} is not in the future")
        return decoded.header, decoded.claims

    def verify_access_token(self, token: str, what: str, sub: str, client_id: str, scope: str) -> dict[str, Any]:
        _, claims = self.verify_jwt(
            token, what,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": ACCESS_TOKEN_AUDIENCE},
            sub={"essential": True, "value": sub},
            nbf={"essential": True},
            jti={"essential": True},
            sid={"essential": True},
            client_id={"essential": True, "value": client_id},
        )
        check(scope_set(claims.get("scope")) == scope_set(scope), f"{what}: scope claim {claims.get('scope')!r}, "
                                                                  f"expected {scope!r}")
        check(isinstance(claims.get("roles"), list), f"{what}: roles claim {claims.get('roles')!r} is not a list")
        return claims


# ---- the checks -----------------------------------------------------------------------------------

DISCOVERY_PATHS = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")


def check_discovery(run: Run) -> str:
    expected_urls = {
        "authorization_endpoint": run.url("/oauth/authorize"),
        "token_endpoint": run.url("/oauth/token"),
        "revocation_endpoint": run.url("/oauth/revoke"),
        "introspection_endpoint": run.url("/oauth/introspect"),
        "userinfo_endpoint": run.url("/oauth/userinfo"),
        "jwks_uri": run.url("/.well-known/jwks.json"),
    }
    for path in DISCOVERY_PATHS:
        response = requests.get(run.url(path), timeout=TIMEOUT)
        check(response.status_code == 200, f"GET {path}: expected 200, got {describe(response)}")
        check(response.headers.get("Content-Type", "").startswith("application/json"),
              f"GET {path}: not application/json: {describe(response)}")
        document = json_of(response, f"GET {path}")
        check(document.get("issuer") == run.issuer, f"{path}: issuer {document.get('issuer')!r} != {run.issuer!r}")
        for key, url in expected_urls.items():
            check(document.get(key) == url, f"{path}: {key} {document.get(key)!r} != {url!r}")
        exact = {
            "code_challenge_methods_supported": ["S256"],
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["EdDSA"],
        }
        for key, value in exact.items():
            check(document.get(key) == value, f"{path}: {key} {document.get(key)!r} != {value!r}")
        methods = document.get("token_endpoint_auth_methods_supported")
        wanted_methods = {"client_secret_basic", "client_secret_post", "none"}
        check(isinstance(methods, list) and set(methods) == wanted_methods,
              f"{path}: token_endpoint_auth_methods_supported {methods!r} != {sorted(wanted_methods)}")
        grants = document.get("grant_types_supported")
        wanted_grants = {"authorization_code", "refresh_token", "client_credentials"}
        check(isinstance(grants, list) and wanted_grants <= set(grants) and "implicit" not in grants
              and "password" not in grants, f"{path}: grant_types_supported {grants!r}")
        scopes = document.get("scopes_supported")
        check(isinstance(scopes, list) and {"openid", "profile", "email", "offline_access"} <= set(scopes),
              f"{path}: scopes_supported {scopes!r} lacks openid/profile/email/offline_access")
        check(document.get("authorization_response_iss_parameter_supported") is True,
              f"{path}: authorization_response_iss_parameter_supported is "
              f"{document.get('authorization_response_iss_parameter_supported')!r}")
        try:  # Authlib's RFC 8414 validation (a loopback http issuer counts as secure)
            AuthorizationServerMetadata(document).validate()
        except ValueError as error:
            raise Failure(f"{path}: Authlib's RFC 8414 validation: {error}") from None

    response = requests.get(run.url("/.well-known/jwks.json"), timeout=TIMEOUT)
    check(response.status_code == 200, f"GET /.well-known/jwks.json: {describe(response)}")
    keys = json_of(response, "GET /.well-known/jwks.json").get("keys")
    check(isinstance(keys, list) and keys, f"the JWKS has no keys: {response.text[:500]!r}")
    for key in keys:
        check(key.get("kty") == "OKP" and key.get("crv") == "Ed25519" and isinstance(key.get("kid"), str)
              and isinstance(key.get("x"), str), f"a JWK is not an Ed25519 OKP key with a kid: {key!r}")
        check("d" not in key, f"the JWKS publishes a private key (it has \"d\"): kid {key.get('kid')!r}")
    run.keys()
    return f"{len(keys)} Ed25519 key(s)"


def check_admin_clients(run: Run) -> str:
    response = run.admin("GET", "/v1/admin/oauth/clients")
    check(response.status_code == 200, f"GET /v1/admin/oauth/clients: expected 200, got {describe(response)}")
    items = json_of(response, "GET /v1/admin/oauth/clients").get("items")
    check(isinstance(items, list), f"GET /v1/admin/oauth/clients: no items list: {response.text[:500]!r}")
    listed = {item.get("id") for item in items if isinstance(item, dict)}
    missing = [role for role, client in run.clients.items() if client.id not in listed]
    check(not missing, f"GET /v1/admin/oauth/clients lacks the clients {missing}")
    for item in items:
        check("client_secret" not in item, f"GET /v1/admin/oauth/clients shows a client_secret: {item!r}")
    for role, client in run.clients.items():
        if client.secret:
            check(client.secret not in response.text, f"GET /v1/admin/oauth/clients shows the {role} client's secret")
    return f"{len(run.clients)} clients"


def inspect_consent_page(run: Run, page: Page, url: str) -> None:
    """The form of the contract: hidden request parameters + csrf, the CSRF cookie, the inputs, the buttons."""
    form, response = page.form, page.response
    check(form.action == "/oauth/authorize", f"consent form action {form.action!r} != '/oauth/authorize'")
    hidden = form.hidden()
    sent = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
    for name, value in sent.items():
        check(hidden.get(name) == value, f"consent form: hidden input {name!r} is {hidden.get(name)!r}, the request "
                                         f"had {value!r}")
    csrf = hidden.get("csrf")
    check(bool(csrf), f"consent form: no hidden csrf input (hidden inputs: {sorted(hidden)})")
    cookies = [c for c in set_cookie_headers(response) if c.strip().startswith(CSRF_COOKIE + "=")]
    check(len(cookies) == 1, f"the sign-in page set {len(cookies)} {CSRF_COOKIE} cookies: "
                             f"{set_cookie_headers(response)!r}")
    parts = [p.strip() for p in cookies[0].split(";")]
    value = parts[0].split("=", 1)[1].strip('"')
    attributes = {p.split("=", 1)[0].strip().lower(): (p.split("=", 1)[1].strip() if "=" in p else "")
                  for p in parts[1:]}
    check(value == csrf, f"the {CSRF_COOKIE} cookie {value!r} differs from the csrf field {csrf!r}")
    check("httponly" in attributes, f"the {CSRF_COOKIE} cookie is not HttpOnly: {cookies[0]!r}")
    check(attributes.get("samesite", "").lower() == "strict", f"the {CSRF_COOKIE} cookie is not SameSite=Strict: "
                                                              f"{cookies[0]!r}")
    check(attributes.get("path") == "/oauth", f"the {CSRF_COOKIE} cookie's Path is not /oauth: {cookies[0]!r}")
    email, password, otp = form.input("email"), form.input("password"), form.input("otp")
    check(email.get("type", "text").lower() in ("email", "text"), f"the email input has type {email.get('type')!r}")
    check(password.get("type", "").lower() == "password", f"the password input has type {password.get('type')!r}")
    check(otp is not None and otp.get("type", "text").lower() != "hidden", "the form has no visible otp input")
    decisions = [(b.get("name"), b.get("value")) for b in form.buttons]
    check(decisions[:2] == [("decision", "allow"), ("decision", "deny")] and len(decisions) == 2,
          f"the form's submit buttons are {decisions}, expected decision=allow then decision=deny")


def check_code_flow(run: Run) -> str:
    web = run.clients["web"]
    nonce = generate_token(24)
    scope = "openid email offline_access notes:read notes:write"
    flow = run.code_flow("web", scope, nonce=nonce, auth_method="client_secret_basic",
                         inspect=lambda page, url: inspect_consent_page(run, page, url))
    raw = flow.raw
    check(isinstance(raw.get("refresh_token"), str) and raw["refresh_token"],
          f"no refresh_token with offline_access: {raw!r}")
    check(isinstance(raw.get("id_token"), str) and raw["id_token"], f"no id_token with openid: {raw!r}")

    _, claims = run.verify_jwt(
        raw["id_token"], "ID token",
        iss={"essential": True, "value": run.issuer},
        aud={"essential": True, "value": web.id},
        sub={"essential": True, "value": run.user_id},
        nonce={"essential": True, "value": nonce},
        auth_time={"essential": True},
    )
    audience = claims["aud"]
    check(audience == web.id or audience == [web.id], f"ID token aud {audience!r} is not just the client {web.id!r}")
    auth_time = claims.get("auth_time")
    check(isinstance(auth_time, int) and time.time() - 600 < auth_time <= time.time() + 5,
          f"ID token auth_time {auth_time!r} is not the time of this sign-in")
    check(str(claims.get("email", "")).lower() == run.email.lower(),
          f"ID token email {claims.get('email')!r} != {run.email!r} (scope email)")
    check(claims.get("email_verified") is True, f"ID token email_verified {claims.get('email_verified')!r}")
    run.verify_access_token(raw["access_token"], "access token", run.user_id, web.id, scope)

    response = flow.session.get(run.userinfo_endpoint, timeout=TIMEOUT)  # Authlib adds the bearer token
    check(response.status_code == 200, f"userinfo: expected 200, got {describe(response)}")
    info = json_of(response, "userinfo")
    check(info.get("sub") == run.user_id, f"userinfo sub {info.get('sub')!r} != user id {run.user_id!r}")
    check(str(info.get("email", "")).lower() == run.email.lower(), f"userinfo email {info.get('email')!r}")
    check(info.get("email_verified") is True, f"userinfo email_verified {info.get('email_verified')!r}")

    response = requests.get(run.userinfo_endpoint, timeout=TIMEOUT)
    check(response.status_code == 401, f"userinfo without a token: expected 401, got {describe(response)}")
    check(response.headers.get("WWW-Authenticate", "").startswith("Bearer"),
          f"userinfo without a token: WWW-Authenticate {response.headers.get('WWW-Authenticate')!r}")
    response = run.api("GET", "/oauth/userinfo", raw["access_token"] + "x")
    challenge = response.headers.get("WWW-Authenticate", "")
    check(response.status_code == 401 and challenge.startswith("Bearer") and 'error="invalid_token"' in challenge,
          f"userinfo with a tampered token: expected 401 with WWW-Authenticate: Bearer error=\"invalid_token\", "
          f"got {describe(response)} WWW-Authenticate {challenge!r}")
    return "consent form, access/refresh/ID tokens, joserfc-verified, userinfo"


def check_scope_narrowing(run: Run) -> str:
    read = run.code_flow("public", "openid notes:read", auth_method="none")
    check("refresh_token" not in read.raw, f"a refresh_token without offline_access: {read.raw!r}")
    token = read.raw["access_token"]
    run.verify_access_token(token, "notes:read access token", run.user_id, run.clients["public"].id,
                            "openid notes:read")
    run.expect_api("GET", "/v1/notes", token, 200, "GET /v1/notes with notes:read")
    run.expect_api("POST", "/v1/notes", token, 403, "POST /v1/notes with notes:read only",
                   json={"text": f"must not exist {run.tag}", "owner": run.user_id})
    response = run.api("GET", "/v1/auth/me", token)
    check(response.status_code in (401, 403), f"GET /v1/auth/me with an OAuth access token: expected 401/403, got "
                                              f"{describe(response)}")

    write = run.code_flow("web", "notes:write")
    text = f"written through OAuth {run.tag}"
    note_id = run.create_note(write.raw["access_token"], text, "POST /v1/notes with notes:write")
    for label, bearer in (("notes:write", write.raw["access_token"]), ("notes:read", token)):
        response = run.expect_api("GET", f"/v1/notes/{note_id}", bearer, 200, f"GET the new note with {label}")
        body = json_of(response, f"GET the new note with {label}")
        check(body.get("text") == text and body.get("owner") == run.user_id, f"GET the new note: {body!r}")
    return "read: list 200, create 403; write: create 201, readable"


def check_refresh_rotation(run: Run) -> str:
    flow = run.code_flow("web", "offline_access notes:read")
    session, recorder = flow.session, flow.recorder
    access1, refresh1 = flow.raw["access_token"], flow.raw.get("refresh_token")
    check(isinstance(refresh1, str) and refresh1, f"no refresh_token with offline_access: {flow.raw!r}")
    raw2 = run.token_call("refresh", recorder,
                          lambda: session.refresh_token(run.token_endpoint, refresh_token=refresh1))
    refresh2, access2 = raw2.get("refresh_token"), raw2["access_token"]
    check(isinstance(refresh2, str) and refresh2, f"the refresh answer has no new refresh_token: {raw2!r}")
    check(refresh2 != refresh1, "the refresh answer repeats the old refresh token (no rotation)")
    check(access2 != access1, "the refresh answer repeats the old access token")
    check(scope_set(raw2.get("scope")) == {"offline_access", "notes:read"}, f"refreshed scope {raw2.get('scope')!r}")
    run.expect_api("GET", "/v1/notes", access2, 200, "GET /v1/notes with the refreshed access token")

    run.token_error("reuse the rotated-out refresh token", recorder,
                    lambda: session.refresh_token(run.token_endpoint, refresh_token=refresh1), {"invalid_grant": 400})
    run.token_error("the newest refresh token after reuse was detected", recorder,
                    lambda: session.refresh_token(run.token_endpoint, refresh_token=refresh2), {"invalid_grant": 400})
    run.expect_api("GET", "/v1/notes", access2, 401, "GET /v1/notes with the newest access token after reuse")
    run.expect_api("GET", "/v1/notes", access1, 401, "GET /v1/notes with the first access token after reuse")
    return "rotated; reuse → invalid_grant, family revoked"


def check_client_credentials(run: Run) -> str:
    service = run.clients["service"]
    session, recorder = run.oauth("service", auth_method="client_secret_post")
    raw = run.token_call("client_credentials (client_secret_post)", recorder,
                         lambda: session.fetch_token(run.token_endpoint, grant_type="client_credentials",
                                                     scope="notes:read"))
    check("refresh_token" not in raw, f"client_credentials returned a refresh_token: {raw!r}")
    check("id_token" not in raw, f"client_credentials returned an id_token: {raw!r}")
    check(scope_set(raw.get("scope")) == {"notes:read"}, f"client_credentials scope {raw.get('scope')!r}")
    token = raw["access_token"]
    claims = run.verify_access_token(token, "client_credentials access token", service.id, service.id, "notes:read")
    check("service" in claims["roles"], f"client_credentials token roles {claims['roles']!r} lack 'service'")

    note_id = run.create_note(run.user_token, f"the user's own note {run.tag}",
                              "POST /v1/notes as the user (first-party)")
    response = run.expect_api("GET", "/v1/notes", token, 200, "GET /v1/notes as the service",
                              params={"filter": f"id = '{note_id}'"})
    ids = [item.get("id") for item in json_of(response, "GET /v1/notes as the service").get("items", [])]
    check(ids == [note_id], f"GET /v1/notes?filter=id = '{note_id}' as the service (role service): got ids {ids}")
    run.expect_api("GET", f"/v1/notes/{note_id}", token, 200, "GET the user's note as the service")
    run.expect_api("POST", "/v1/notes", token, 403, "POST /v1/notes as the service (notes:read)",
                   json={"text": f"must not exist {run.tag}", "owner": run.user_id})
    return "sub = client, role service reads the user's notes, create 403"


def check_revoke(run: Run) -> str:
    flow = run.code_flow("web", "offline_access notes:read")
    access, refresh = flow.raw["access_token"], flow.raw.get("refresh_token")
    check(isinstance(refresh, str) and refresh, f"no refresh_token with offline_access: {flow.raw!r}")
    run.expect_api("GET", "/v1/notes", access, 200, "GET /v1/notes before revocation")
    run.revoke(flow.session, refresh, "refresh_token", "revoke the refresh token")
    run.token_error("refresh with a revoked refresh token", flow.recorder,
                    lambda: flow.session.refresh_token(run.token_endpoint, refresh_token=refresh),
                    {"invalid_grant": 400})
    run.expect_api("GET", "/v1/notes", access, 401, "GET /v1/notes with the access token of a revoked refresh token")

    flow = run.code_flow("web", "offline_access notes:read")
    access, refresh = flow.raw["access_token"], flow.raw.get("refresh_token")
    run.expect_api("GET", "/v1/notes", access, 200, "GET /v1/notes before revocation")
    run.revoke(flow.session, access, "access_token", "revoke the access token")
    run.expect_api("GET", "/v1/notes", access, 401, "GET /v1/notes with a revoked access token")
    run.token_error("refresh in the session of a revoked access token", flow.recorder,
                    lambda: flow.session.refresh_token(run.token_endpoint, refresh_token=refresh),
                    {"invalid_grant": 400})
    run.revoke(flow.session, "not-a-token-" + generate_token(20), None, "revoke an unknown token")
    return "refresh token and access token end their session; unknown token 200"


def check_introspect(run: Run) -> str:
    web = run.clients["web"]
    flow = run.code_flow("web", "openid notes:read")
    access = flow.raw["access_token"]
    body = run.introspect(flow.session, access, "introspect an active access token")
    check(body["active"] is True, f"introspect an active access token: {body!r}")
    check(body.get("client_id") == web.id, f"introspection client_id {body.get('client_id')!r} != {web.id!r}")
    check(scope_set(body.get("scope")) == {"openid", "notes:read"}, f"introspection scope {body.get('scope')!r}")
    check(body.get("sub") == run.user_id, f"introspection sub {body.get('sub')!r} != {run.user_id!r}")
    check(body.get("iss") == run.issuer, f"introspection iss {body.get('iss')!r} != {run.issuer!r}")
    check(isinstance(body.get("exp"), int) and body["exp"] > time.time(), f"introspection exp {body.get('exp')!r}")
    check(isinstance(body.get("iat"), int) and body["iat"] <= time.time() + 5, f"introspection iat {body.get('iat')!r}")
    check(isinstance(body.get("token_type"), str) and body["token_type"],
          f"introspection token_type {body.get('token_type')!r}")

    body = run.introspect(flow.session, "not-a-token-" + generate_token(20), "introspect an unknown token")
    check(body == {"active": False}, f"introspect an unknown token: {body!r}")
    run.revoke(flow.session, access, "access_token", "revoke the introspected access token")
    body = run.introspect(flow.session, access, "introspect a revoked access token")
    check(body == {"active": False}, f"introspect a revoked access token: {body!r}")

    public, _ = run.oauth("public")
    response = public.introspect_token(run.introspection_endpoint, token=access)
    check(response.status_code == 401, f"introspect as a public client: expected 401, got {describe(response)}")
    error = json_of(response, "introspect as a public client").get("error")
    check(error == "invalid_client", f"introspect as a public client: error {error!r} != 'invalid_client'")
    return "active, unknown, revoked; public client invalid_client"


# -- refused requests


def authorize_url(run: Run, role: str, **overrides: str | None) -> tuple[str, str]:
    """A valid authorization request of client `role`, with some parameters replaced (None drops one)."""
    client = run.clients[role]
    state = generate_token(20)
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client.id,
        "redirect_uri": client.redirect_uri,
        "scope": "notes:read",
        "state": state,
        "code_challenge": create_s256_code_challenge(generate_token(64)),
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    query = urlencode([(name, value) for name, value in params.items() if value is not None])
    return f"{run.authorize_endpoint}?{query}", state


def expect_authorize_error(run: Run, role: str, error: str, what: str, **overrides: str | None) -> None:
    url, state = authorize_url(run, role, **overrides)
    response = requests.get(url, allow_redirects=False, timeout=TIMEOUT)
    params = run.redirect_params(response, run.clients[role].redirect_uri, state, what)
    check(params.get("error") == error, f"{what}: error {params.get('error')!r} != {error!r} "
                                        f"({response.headers.get('Location')})")
    check("code" not in params, f"{what}: an error redirect with a code: {response.headers.get('Location')}")


def expect_authorize_page_error(run: Run, url: str, what: str) -> None:
    response = requests.get(url, allow_redirects=False, timeout=TIMEOUT)
    check(response.status_code == 400, f"{what}: expected a 400 page, got {describe(response)}")
    check("Location" not in response.headers, f"{what}: a 400 with a Location header: {describe(response)}")
    check(response.headers.get("Content-Type", "").startswith("text/html"), f"{what}: not an HTML page: "
                                                                            f"{describe(response)}")


def refused_missing_challenge(run: Run) -> str:
    expect_authorize_error(run, "web", "invalid_request", "authorize without code_challenge",
                           code_challenge=None, code_challenge_method=None)
    return "302 error=invalid_request"


def refused_plain_challenge(run: Run) -> str:
    verifier = generate_token(64)
    expect_authorize_error(run, "web", "invalid_request", "authorize with code_challenge_method=plain",
                           code_challenge=verifier, code_challenge_method="plain")
    return "302 error=invalid_request"


def refused_challenge_without_method(run: Run) -> str:
    expect_authorize_error(run, "web", "invalid_request", "authorize with a code_challenge but no method",
                           code_challenge_method=None)
    return "302 error=invalid_request"


def refused_response_type(run: Run) -> str:
    expect_authorize_error(run, "web", "unsupported_response_type", "authorize with response_type=token",
                           response_type="token")
    return "302 error=unsupported_response_type"


def refused_redirect_uri(run: Run) -> str:
    registered = run.clients["web"].redirect_uri
    almost = registered[:-1] + ("c" if registered[-1] != "c" else "d")
    url, _ = authorize_url(run, "web", redirect_uri=almost)
    expect_authorize_page_error(run, url, f"redirect_uri {almost!r} (registered {registered!r})")
    url, _ = authorize_url(run, "web", redirect_uri=registered + "/")
    expect_authorize_page_error(run, url, f"redirect_uri {registered + '/'!r} (registered {registered!r})")
    url, _ = authorize_url(run, "web", client_id=str(uuid.uuid4()))
    expect_authorize_page_error(run, url, "an unknown client_id")
    return "400 page, no Location"


def refused_code_twice(run: Run) -> str:
    flow = run.code_flow("web", "notes:read")
    access = flow.raw["access_token"]
    run.expect_api("GET", "/v1/notes", access, 200, "GET /v1/notes with the first exchange's token")
    run.token_error("exchange the same code again", flow.recorder,
                    lambda: flow.session.fetch_token(run.token_endpoint, grant_type="authorization_code",
                                                     code=flow.code, code_verifier=flow.verifier),
                    {"invalid_grant": 400})
    run.expect_api("GET", "/v1/notes", access, 401, "GET /v1/notes with the first exchange's token after the replay")
    body = run.introspect(flow.session, access, "introspect the first exchange's token after the replay")
    check(body == {"active": False}, f"introspect the first exchange's token after the replay: {body!r}")
    return "invalid_grant; the first token revoked"


def refused_wrong_verifier(run: Run) -> str:
    session, recorder = run.oauth("web")
    client = run.clients["web"]
    verifier = generate_token(64)
    url, state = session.create_authorization_url(run.authorize_endpoint, code_verifier=verifier, scope="notes:read")
    location, _, _ = run.sign_in(url, state, client.redirect_uri)
    run.token_error("exchange a code with the wrong code_verifier", recorder,
                    lambda: session.fetch_token(run.token_endpoint, authorization_response=location, state=state,
                                                code_verifier=generate_token(64)),
                    {"invalid_grant": 400})
    return "invalid_grant"


def refused_public_client_credentials(run: Run) -> str:
    session, recorder = run.oauth("public")
    error = run.token_error("client_credentials as a public client", recorder,
                            lambda: session.fetch_token(run.token_endpoint, grant_type="client_credentials",
                                                        scope="notes:read"),
                            {"unauthorized_client": 400, "invalid_client": 401})
    return error


def refused_scope_at_authorize(run: Run) -> str:
    expect_authorize_error(run, "readonly", "invalid_scope", "authorize notes:write for a notes:read client",
                           scope="notes:write")
    return "302 error=invalid_scope"


def refused_scope_at_token(run: Run) -> str:
    session, recorder = run.oauth("service")
    run.token_error("client_credentials asking for notes:write (registered: notes:read)", recorder,
                    lambda: session.fetch_token(run.token_endpoint, grant_type="client_credentials",
                                                scope="notes:write"),
                    {"invalid_scope": 400})
    return "invalid_scope"


def refused_wrong_secret(run: Run) -> str:
    web = run.clients["web"]
    wrong = web.secret[:-1] + ("A" if web.secret[-1] != "A" else "B")
    for method in ("client_secret_basic", "client_secret_post"):
        session, recorder = run.oauth("web", auth_method=method, secret=wrong)
        run.token_error(f"client_credentials with a wrong secret ({method})", recorder,
                        lambda session=session: session.fetch_token(run.token_endpoint, grant_type="client_credentials",
                                                                    scope="notes:read"),
                        {"invalid_client": 401})
    return "401 invalid_client (basic and post)"


def refused_grant_type(run: Run) -> str:
    session, recorder = run.oauth("web")
    run.token_error("an unknown grant_type", recorder,
                    lambda: session.fetch_token(run.token_endpoint, grant_type="urn:example:basalt:no-such-grant"),
                    {"unsupported_grant_type": 400})
    return "unsupported_grant_type"


def refused_csrf(run: Run) -> str:
    url, state = authorize_url(run, "web")
    page = run.open_page(url)
    forged = page.submit("allow", session=requests.Session(), email=run.email, password=run.password)
    check(forged.status_code == 403, f"POST /oauth/authorize without the CSRF cookie: expected 403, got "
                                     f"{describe(forged)}")
    check("Location" not in forged.headers, f"POST /oauth/authorize without the CSRF cookie redirects: "
                                            f"{describe(forged)}")
    forged = page.submit("allow", email=run.email, password=run.password, csrf=generate_token(32))
    check(forged.status_code == 403, f"POST /oauth/authorize with a csrf field not matching the cookie: expected "
                                     f"403, got {describe(forged)}")
    check("Location" not in forged.headers, f"POST /oauth/authorize with a wrong csrf field redirects: "
                                            f"{describe(forged)}")
    # the same form with its cookie is accepted: the 403s were the CSRF defence
    response = page.submit("allow", email=run.email, password=run.password)
    params = run.redirect_params(response, run.clients["web"].redirect_uri, state,
                                 "the untampered form with its cookie, after the forged posts")
    check(bool(params.get("code")), f"the untampered form: no code in {response.headers.get('Location')!r}")
    return "no cookie 403, wrong field 403, no Location"


def refused_deny(run: Run) -> str:
    url, state = authorize_url(run, "web")
    page = run.open_page(url)
    response = page.submit("deny")  # the untouched form, as a user who declines without signing in
    params = run.redirect_params(response, run.clients["web"].redirect_uri, state, "the deny button")
    check(params.get("error") == "access_denied", f"the deny button: error {params.get('error')!r} "
                                                  f"({response.headers.get('Location')})")
    check("code" not in params, f"the deny button: a code in {response.headers.get('Location')}")
    return "302 error=access_denied"


CHECKS: list[tuple[str, Callable[[Run], str | None]]] = [
    ("discovery", check_discovery),
    ("admin-clients", check_admin_clients),
    ("code-flow", check_code_flow),
    ("scope-narrowing", check_scope_narrowing),
    ("refresh-rotation", check_refresh_rotation),
    ("client-credentials", check_client_credentials),
    ("revoke", check_revoke),
    ("introspect", check_introspect),
    ("refused-missing-code-challenge", refused_missing_challenge),
    ("refused-plain-code-challenge", refused_plain_challenge),
    ("refused-code-challenge-without-method", refused_challenge_without_method),
    ("refused-response-type", refused_response_type),
    ("refused-redirect-uri", refused_redirect_uri),
    ("refused-code-twice", refused_code_twice),
    ("refused-wrong-code-verifier", refused_wrong_verifier),
    ("refused-public-client-credentials", refused_public_client_credentials),
    ("refused-scope-at-authorize", refused_scope_at_authorize),
    ("refused-scope-at-token", refused_scope_at_token),
    ("refused-wrong-client-secret", refused_wrong_secret),
    ("refused-grant-type", refused_grant_type),
    ("refused-csrf", refused_csrf),
    ("refused-deny", refused_deny),
]


def main() -> int:
    if len(sys.argv) != 2:
        return usage(__doc__)
    if missing_environment(("BASALT_ADMIN_KEY", "BASALT_USER_EMAIL", "BASALT_USER_PASSWORD")):
        return 2
    run = Run(sys.argv[1].rstrip("/"), os.environ["BASALT_ADMIN_KEY"], os.environ["BASALT_USER_EMAIL"],
              os.environ["BASALT_USER_PASSWORD"])

    def setup() -> str:
        run.setup()
        return f"{len(run.clients)} clients registered, user {run.user_id}"

    report = Report("authlib flows")
    try:
        if report.run("setup", setup):
            report.run_all(CHECKS, run)
    finally:
        problems = run.teardown()
        if problems:
            report.fail("cleanup", "\n  ".join(problems))
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
