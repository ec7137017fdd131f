#!/usr/bin/env python3
"""Basalt's OAuth sign-in and consent page works in a real browser, with the keyboard only.

Usage: python3 consent_browser.py BASE_URL
       python3 consent_browser.py --smoke      (only launches chromium on about:blank)

Environment:
  BASALT_ADMIN_KEY      an admin API key (bsk_…)
  BASALT_USER_EMAIL     email of an existing, verified user without MFA
  BASALT_USER_PASSWORD  that user's password
  CHROMIUM              the chromium executable (default /usr/bin/chromium)

The server must serve a collection `notes` that a signed-in user may list. The script starts a
stdlib HTTP server on a free loopback port as the client's redirect target (it records the
query of each request to /cb and answers 200 "done"), registers a public OAuth client with that
redirect URI through the admin API (deleted at the end), and drives headless chromium through
Playwright to the authorization URL (PKCE S256, state, scope `openid notes:read`):

  consent-page       200; the title names the client; the email and password fields have a
                     <label>; the requested collection scope is shown (`notes:read` as is or
                     in words naming `notes` and `read`); Allow is the first button
  keyboard-sign-in   focus email, type, Tab to password, type, Tab to Allow (before Deny),
                     Enter: the browser lands on the redirect URI with code, state and iss
  code-exchange      the code and code_verifier (public client, httpx) give an access token
                     that lists /v1/notes (200)
  wrong-password     a wrong password first: a 401 page with a role="alert" message, the
                     password not echoed, the form still usable; the right password then
                     lands on the redirect URI with a code that exchanges

One line per check, `ok NAME` or `FAIL NAME: reason`; the last line is `consent browser: N ok`.
Exits 1 when any check fails. The browser and the HTTP server are always stopped.
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from oauth_support import (
    Failure,
    Report,
    check,
    describe,
    missing_environment,
    new_verifier,
    s256,
    usage,
)

TIMEOUT = 30
BROWSER_TIMEOUT_MS = 15_000
SCOPE = "openid notes:read"


def pkce_pair() -> tuple[str, str]:
    verifier = new_verifier()
    return verifier, s256(verifier)


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(
        executable_path=os.environ.get("CHROMIUM") or "/usr/bin/chromium",
        headless=True,
        args=["--no-sandbox"],
    )


# ---- the client's redirect target ------------------------------------------------------------------


class CallbackServer:
    """A loopback HTTP server recording the query of every GET /cb."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        self._changed = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                parts = urlsplit(self.path)
                if parts.path == "/cb":
                    with server._changed:
                        server.queries.append(parts.query)
                        server._changed.notify_all()
                    body, status = b"done", 200
                else:
                    body, status = b"not found", 404
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.redirect_uri = f"http://127.0.0.1:{self.port}/cb"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="callback-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.httpd.shutdown()
            self._thread.join(timeout=10)
        self.httpd.server_close()

    def wait(self, count: int, timeout: float) -> str | None:
        """The query of request number `count` (0-based) to /cb, waiting for it; None on timeout."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.queries) > count, timeout=timeout)
            return self.queries[count] if len(self.queries) > count else None


# ---- the run --------------------------------------------------------------------------------------


class Run:
    def __init__(self, base: str, admin_key: str, email: str, password: str, callback: CallbackServer) -> None:
        self.base = base
        self.issuer = base
        self.admin_key = admin_key
        self.email = email
        self.password = password
        self.callback = callback
        self.http = httpx.Client(timeout=TIMEOUT, follow_redirects=False)
        self.client_name = f"Basalt consent test {uuid.uuid4().hex[:8]}"
        self.client_id = ""
        self.browser: Browser | None = None
        self.page: Page | None = None  # the first run's page
        self.state = ""
        self.verifier = ""
        self.code = ""

    def admin(self, method: str, path: str, **kwargs) -> httpx.Response:
        return self.http.request(method, self.base + path, headers={"Authorization": f"Bearer {self.admin_key}"},
                                 **kwargs)

    def register(self) -> None:
        body = {
            "name": self.client_name,
            "redirect_uris": [self.callback.redirect_uri],
            "confidential": False,
            "grants": ["authorization_code"],
            "scopes": ["openid", "notes:read"],
            "roles": [],
        }
        response = self.admin("POST", "/v1/admin/oauth/clients", json=body)
        check(response.status_code == 201, f"register the client: expected 201, got {describe(response)}")
        try:
            self.client_id = str(response.json().get("id") or "")
        except (ValueError, AttributeError):
            raise Failure(f"register the client: the 201 is not a JSON object: {describe(response)}") from None
        check(bool(self.client_id), f"register the client: no id in {response.text[:500]!r}")

    def unregister(self) -> str | None:
        if not self.client_id:
            return None
        response = self.admin("DELETE", f"/v1/admin/oauth/clients/{self.client_id}")
        if response.status_code != 204:
            return f"delete the client: expected 204, got {describe(response)}"
        return None

    def authorization_url(self) -> tuple[str, str, str]:
        """(url, state, code_verifier) of a fresh authorization request."""
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(16)
        query = urlencode({
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.callback.redirect_uri,
            "scope": SCOPE,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        })
        return f"{self.base}/oauth/authorize?{query}", state, verifier

    def open(self, url: str) -> Page:
        """A fresh browser context (no cookies) on the authorization URL; the page must be a 200."""
        assert self.browser is not None
        context = self.browser.new_context()
        context.set_default_timeout(BROWSER_TIMEOUT_MS)
        page = context.new_page()
        response = page.goto(url)
        check(response is not None, f"opening {url} gave no response")
        check(response.status == 200, f"GET the authorization URL: expected the 200 sign-in page, got "
                                      f"{response.status} at {page.url}")
        return page

    # -- keyboard

    @staticmethod
    def focused(page: Page) -> dict[str, str]:
        return page.evaluate("""() => {
            const e = document.activeElement;
            if (!e || e === document.body) return {tag: "body"};
            return {tag: e.tagName.toLowerCase(), name: e.getAttribute("name") || "",
                    type: (e.getAttribute("type") || "").toLowerCase(), value: e.getAttribute("value") || "",
                    text: (e.innerText || "").trim().slice(0, 40)};
        }""")

    def type_credentials(self, page: Page, password: str, replace: bool = False) -> None:
        """Focus the email field, type, Tab to the password field, type."""
        email_field = page.locator('input[name="email"]')
        check(email_field.count() == 1, f"the page has {email_field.count()} input[name=email]")
        email_field.focus()
        if replace:  # a re-rendered form may keep the email: replace what is there
            page.keyboard.press("ControlOrMeta+A")
            page.keyboard.press("Delete")
        page.keyboard.type(self.email)
        check(email_field.input_value() == self.email, f"typing the email gave {email_field.input_value()!r}")
        page.keyboard.press("Tab")
        now = self.focused(page)
        check(now.get("tag") == "input" and now.get("name") == "password",
              f"Tab from the email field focuses {now}, not the password field")
        page.keyboard.type(password)

    def tab_to_allow(self, page: Page) -> None:
        """Tab from the password field until a button has the focus: it must be Allow."""
        path = []
        for _ in range(10):
            page.keyboard.press("Tab")
            now = self.focused(page)
            path.append(now)
            if now.get("tag") == "button" or now.get("type") in ("submit", "button"):
                check(now.get("name") == "decision" and now.get("value") == "allow",
                      f"the first button Tab reaches after the password is {now}, not decision=allow "
                      f"(tab path: {path})")
                return
            check(now.get("tag") != "body", f"Tab left the form before reaching a button (tab path: {path})")
        raise Failure(f"ten Tabs after the password reach no button (tab path: {path})")

    def landed(self, page: Page, before: int, state: str, what: str) -> str:
        """Waits until the browser is on the redirect URI; checks state and iss; returns the code."""
        try:
            page.wait_for_url(lambda url: url.startswith(self.callback.redirect_uri), timeout=BROWSER_TIMEOUT_MS)
        except PlaywrightError:
            raise Failure(f"{what}: the browser did not reach {self.callback.redirect_uri} within "
                          f"{BROWSER_TIMEOUT_MS // 1000} s; it is on {page.url} showing "
                          f"{page.inner_text('body')[:400]!r}") from None
        query = self.callback.wait(before, timeout=5)
        check(query is not None, f"{what}: the browser is on {page.url} but the callback server got no request")
        params = {name: values[0] for name, values in parse_qs(query, keep_blank_values=True).items()}
        check(urlsplit(page.url).query == query, f"{what}: the page URL {page.url} and the callback query {query!r} "
                                                 f"differ")
        check("error" not in params, f"{what}: redirected with an error: {query!r}")
        check(params.get("state") == state, f"{what}: state {params.get('state')!r} != the sent {state!r}")
        check(params.get("iss") == self.issuer, f"{what}: iss {params.get('iss')!r} != issuer {self.issuer!r}")
        check(bool(params.get("code")), f"{what}: no code in {query!r}")
        return params["code"]

    def exchange(self, code: str, verifier: str, what: str) -> dict[str, Any]:
        response = self.http.post(self.base + "/oauth/token", data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.callback.redirect_uri,
            "client_id": self.client_id,
            "code_verifier": verifier,
        })
        check(response.status_code == 200, f"{what}: expected 200, got {describe(response)}")
        check("no-store" in response.headers.get("Cache-Control", ""),
              f"{what}: no Cache-Control: no-store ({response.headers.get('Cache-Control')!r})")
        token = response.json()
        check(isinstance(token.get("access_token"), str) and token["access_token"],
              f"{what}: no access_token: {token!r}")
        check(token.get("token_type") == "Bearer", f"{what}: token_type {token.get('token_type')!r}")
        check(isinstance(token.get("id_token"), str), f"{what}: no id_token with scope openid: {token!r}")
        check(set(str(token.get("scope", "")).split()) == set(SCOPE.split()), f"{what}: scope {token.get('scope')!r}")
        return token


# ---- the checks -----------------------------------------------------------------------------------


def check_consent_page(run: Run) -> str:
    url, run.state, run.verifier = run.authorization_url()
    page = run.page = run.open(url)

    title = page.title()
    check(run.client_name in title, f"the page title {title!r} does not name the client {run.client_name!r}")
    for name in ("email", "password"):
        field = page.locator(f'input[name="{name}"]')
        check(field.count() == 1, f"the page has {field.count()} input[name={name}]")
        labels = field.evaluate("e => Array.from(e.labels || []).map(l => l.textContent.trim())")
        check(any(labels), f"the {name} field has no <label> with text (labels: {labels})")
    check(page.locator('input[name="password"]').get_attribute("type") == "password",
          "the password field is not type=password")
    # A collection scope may be shown as itself or in words ("Read your notes"): its collection and its
    # access must be on the page. How `openid` is put into words is the server's choice.
    shown = page.inner_text("body").lower()
    for scope in SCOPE.split():
        if ":" in scope:
            collection, access = scope.split(":", 1)
            check(collection in shown and access in shown,
                  f"the page does not show the requested scope {scope} (neither {collection!r} and {access!r} "
                  f"in its text: {page.inner_text('body')[:600]!r})")
    buttons = page.locator("form button").evaluate_all(
        "bs => bs.map(b => [b.getAttribute('name'), b.getAttribute('value'), b.innerText.trim()])")
    decisions = [b for b in buttons if b[0] == "decision"]
    check([b[1] for b in decisions] == ["allow", "deny"],
          f"the form's decision buttons are {decisions}, expected allow then deny")
    return f"title {title!r}"


def check_keyboard_sign_in(run: Run) -> str:
    check(run.page is not None, "not run: the consent page did not open")
    page = run.page
    before = len(run.callback.queries)
    run.type_credentials(page, run.password)
    run.tab_to_allow(page)
    page.keyboard.press("Enter")
    run.code = run.landed(page, before, run.state, "keyboard sign-in")
    check("done" in page.inner_text("body"), f"the redirect target's answer is not shown: {page.content()[:300]!r}")
    return "email, Tab, password, Tab… Allow, Enter"


def check_code_exchange(run: Run) -> str:
    check(bool(run.code), "not run: the keyboard sign-in gave no code")
    token = run.exchange(run.code, run.verifier, "exchange the code (public client)")
    response = run.http.get(run.base + "/v1/notes", headers={"Authorization": f"Bearer {token['access_token']}"})
    check(response.status_code == 200, f"GET /v1/notes with the access token: expected 200, got {describe(response)}")
    check(isinstance(response.json().get("items"), list), f"GET /v1/notes: no items: {response.text[:300]!r}")
    return "access token lists /v1/notes"


def check_wrong_password(run: Run) -> str:
    url, state, verifier = run.authorization_url()
    page = run.open(url)
    wrong = "wrong-" + secrets.token_urlsafe(12)
    run.type_credentials(page, wrong)
    run.tab_to_allow(page)
    try:
        with page.expect_navigation() as navigation:
            page.keyboard.press("Enter")
    except PlaywrightError as error:
        raise Failure(f"Enter with a wrong password did not load a page: {error}") from None
    response = navigation.value
    check(response is not None and response.status == 401,
          f"a wrong password: expected a 401 page, got {response.status if response else None} at {page.url}")
    check(urlsplit(page.url).path == "/oauth/authorize", f"a wrong password left the sign-in page: {page.url}")
    alert = page.get_by_role("alert")
    check(alert.count() >= 1, f"a wrong password: no role=\"alert\" on the page: {page.inner_text('body')[:500]!r}")
    check(alert.first.is_visible() and alert.first.inner_text().strip() != "",
          "a wrong password: the role=\"alert\" element is hidden or empty")
    message = alert.first.inner_text().strip()
    check(wrong not in page.content(), "a wrong password: the page echoes the typed password")
    for selector in ('input[name="email"]', 'input[name="password"]', 'button[name="decision"][value="allow"]'):
        element = page.locator(selector)
        check(element.count() == 1 and element.is_enabled(),
              f"after a wrong password the form lacks a usable {selector}")

    before = len(run.callback.queries)
    run.type_credentials(page, run.password, replace=True)
    run.tab_to_allow(page)
    page.keyboard.press("Enter")
    code = run.landed(page, before, state, "the right password after a wrong one")
    run.exchange(code, verifier, "exchange the code after a wrong password")
    page.context.close()
    return f"alert {message[:60]!r}, then signed in"


CHECKS: list[tuple[str, Callable[[Run], str]]] = [
    ("consent-page", check_consent_page),
    ("keyboard-sign-in", check_keyboard_sign_in),
    ("code-exchange", check_code_exchange),
    ("wrong-password", check_wrong_password),
]


def smoke() -> int:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page()
            page.goto("about:blank")
            check(page.url == "about:blank", f"chromium is on {page.url!r}, not about:blank")
            version = browser.version
        finally:
            browser.close()
    print(f"ok smoke (chromium {version})", flush=True)
    return 0


def main() -> int:
    if len(sys.argv) != 2:
        return usage(__doc__, lines=2)
    if sys.argv[1] == "--smoke":
        try:
            return smoke()
        except Exception as error:
            print(f"FAIL smoke: {type(error).__name__}: {error}", flush=True)
            return 1
    if missing_environment(("BASALT_ADMIN_KEY", "BASALT_USER_EMAIL", "BASALT_USER_PASSWORD")):
        return 2

    callback = CallbackServer()
    callback.start()
    run = Run(sys.argv[1].rstrip("/"), os.environ["BASALT_ADMIN_KEY"], os.environ["BASALT_USER_EMAIL"],
              os.environ["BASALT_USER_PASSWORD"], callback)
    def setup() -> str:
        run.register()
        return f"client {run.client_id}, redirect {callback.redirect_uri}"

    report = Report("consent browser")
    try:
        if report.run("setup", setup):
            with sync_playwright() as playwright:
                try:
                    run.browser = launch(playwright)
                except PlaywrightError as error:
                    report.fail("browser", f"chromium does not launch: {error}")
                else:
                    try:
                        report.run_all(CHECKS, run)
                    finally:
                        run.browser.close()
    finally:
        callback.stop()
        try:
            problem = run.unregister()
        except httpx.HTTPError as error:
            problem = f"delete the client: {type(error).__name__}: {error}"
        run.http.close()
        if problem:
            report.fail("cleanup", problem)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
