"""What the OAuth test drivers in this folder share: a failed check, the `ok NAME` / `FAIL NAME:
reason` lines and the summary line, an HTTP answer described for a failure message, PKCE, and an
HTML form parser.

Not a driver: authlib_flows.py, consent_browser.py, social_signin.py and fake_provider.py import
it. They run as `python3 Tests/OAuth/NAME.py …`, which puts this folder on sys.path. It needs only
the standard library; the helpers that take an HTTP answer take a requests or an httpx response
unless they say otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import socket
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import httpx
    import requests

Subject = TypeVar("Subject")


# ---- checks and their report ----------------------------------------------------------------------


class Failure(Exception):
    """A check's reason to fail: its message is the `FAIL NAME: reason` line's reason."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failure(message)


class Report:
    """One line per check, `ok NAME (detail)` or `FAIL NAME: reason`, then `TITLE: N ok` or
    `TITLE: N ok, M FAILED: names`. Every line is flushed at once."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.passed = 0
        self.failed: list[str] = []

    def run(self, name: str, function: Callable[[], str | None]) -> bool:
        """Runs one check; `function` returns the detail of its ok line, or raises Failure. Any other
        exception is a crash: its line ends with the last lines of the traceback."""
        try:
            detail = function()
        except Failure as failure:
            self.fail(name, str(failure))
            return False
        except Exception as error:  # a crash in the check (HTTP client, browser, a bug): show where
            trace = "".join("    " + line for line in traceback.format_exc().splitlines(True)[-8:])
            self.fail(name, f"unexpected {type(error).__name__}: {error}\n{trace}")
            return False
        self.passed += 1
        print(f"ok {name}" + (f" ({detail})" if detail else ""), flush=True)
        return True

    def run_all(self, checks: Iterable[tuple[str, Callable[[Subject], str | None]]], subject: Subject) -> None:
        """Runs each (name, function) of `checks` on `subject`, in order, whatever the others gave."""
        for name, function in checks:
            self.run(name, lambda function=function: function(subject))

    def fail(self, name: str, reason: str) -> None:
        """A failure that is not a check's (the browser, the cleanup): counted and reported as one."""
        self.failed.append(name)
        print(f"FAIL {name}: {reason}", flush=True)

    def finish(self) -> int:
        """Prints the summary line; returns the exit code, 1 when anything failed."""
        if self.failed:
            print(f"{self.title}: {self.passed} ok, {len(self.failed)} FAILED: {', '.join(self.failed)}", flush=True)
            return 1
        print(f"{self.title}: {self.passed} ok", flush=True)
        return 0


# ---- the command line -----------------------------------------------------------------------------


def usage(doc: str | None, lines: int = 1) -> int:
    """Prints a driver's usage, `lines` lines from the third line of its docstring, to stderr;
    returns the exit code 2."""
    print("\n".join((doc or "").strip().splitlines()[2:2 + lines]), file=sys.stderr)
    return 2


def missing_environment(names: Iterable[str]) -> bool:
    """True, after a `missing environment: …` line on stderr, when any of these variables is unset
    or empty."""
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        print(f"missing environment: {', '.join(missing)}", file=sys.stderr)
    return bool(missing)


# ---- HTTP answers ---------------------------------------------------------------------------------


def describe(response: requests.Response | httpx.Response) -> str:
    """The request and the answer, to explain a failure."""
    request = response.request
    location = response.headers.get("Location")
    text = response.text
    return (
        f"{request.method} {request.url} → {response.status_code} "
        f"{response.headers.get('Content-Type', '(no Content-Type)')}"
        + (f", Location: {location}" if location else "")
        + (f"\n    body: {text[:800]!r}" if text else "")
    )


def json_of(response: requests.Response | httpx.Response, what: str) -> dict[str, Any]:
    """The JSON object of an answer."""
    try:
        body = response.json()
    except ValueError:
        raise Failure(f"{what}: the answer is not JSON: {describe(response)}") from None
    check(isinstance(body, dict), f"{what}: the answer is not a JSON object: {describe(response)}")
    return body


def set_cookie_headers(response: requests.Response) -> list[str]:
    """Every Set-Cookie header of a requests answer, each as sent."""
    return list(response.raw.headers.getlist("Set-Cookie")) if response.raw is not None else []


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- PKCE (RFC 7636) ------------------------------------------------------------------------------


def new_verifier() -> str:
    """A fresh code_verifier."""
    return secrets.token_urlsafe(48)  # 64 characters of [A-Za-z0-9_-]


def s256(verifier: str) -> str:
    """The S256 code_challenge of a code_verifier."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


# ---- HTML forms -----------------------------------------------------------------------------------


@dataclass
class Form:
    attrs: dict[str, str]
    inputs: list[dict[str, str]] = field(default_factory=list)
    buttons: list[dict[str, str]] = field(default_factory=list)

    @property
    def method(self) -> str:
        return self.attrs.get("method", "get").lower()

    @property
    def action(self) -> str:
        return self.attrs.get("action", "")

    def input(self, name: str) -> dict[str, str] | None:
        for element in self.inputs:
            if element.get("name") == name:
                return element
        return None

    def hidden(self) -> dict[str, str]:
        return {e["name"]: e.get("value", "") for e in self.inputs
                if e.get("_tag") == "input" and e.get("type", "").lower() == "hidden" and e.get("name")}

    def button(self, name: str, value: str) -> dict[str, str] | None:
        for element in self.buttons:
            if element.get("name") == name and element.get("value") == value:
                return element
        return None

    def submission(self, pressed: tuple[str, str], overrides: dict[str, str]) -> list[tuple[str, str]]:
        """The fields a browser sends when the button `pressed` (name, value) is clicked."""
        pairs: list[tuple[str, str]] = []
        for element in self.inputs:
            name = element.get("name")
            if not name or "disabled" in element:
                continue
            kind = element.get("type", "text").lower()
            if element.get("_tag") == "input" and kind in ("submit", "button", "reset", "image", "file"):
                continue
            if kind in ("checkbox", "radio") and "checked" not in element:
                continue
            pairs.append((name, overrides.get(name, element.get("value", ""))))
        pairs.append(pressed)
        return pairs


class PageParser(HTMLParser):
    """Forms (inputs, submit buttons) and the title of an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.title = ""
        self._form: Form | None = None
        self._button: dict[str, str] | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: (value if value is not None else "") for name, value in attrs}
        if tag == "form":
            self._form = Form(values)
            self.forms.append(self._form)
        elif tag in ("input", "select", "textarea") and self._form is not None:
            self._form.inputs.append({**values, "_tag": tag})
        elif tag == "button" and self._form is not None:
            self._button = {**values, "_text": ""}
            if values.get("type", "submit").lower() == "submit":
                self._form.buttons.append(self._button)
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "button":
            self._button = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._button is not None:
            self._button["_text"] += data
