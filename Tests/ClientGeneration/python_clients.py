#!/usr/bin/env python3
"""Python clients generated from Basalt's OpenAPI documents work, for every caller scope.

Usage: python3 python_clients.py BASE_URL WORKDIR

Environment:
  BASALT_ADMIN_KEY     an admin API key (bsk_…)
  BASALT_USER_TOKEN    access token of a plain signed-in user
  BASALT_USER_ID       that user's id
  BASALT_EDITOR_TOKEN  access token of a user with the role editor
  BASALT_EDITOR_ID     that user's id
  OPENAPI_PYTHON_CLIENT  the generator command (default: openapi-python-client on PATH)

The server must serve Tests/ClientGeneration/all-types.yaml. For each scope (anon, user,
editor, admin) the script downloads GET /v1/openapi.json with that scope's credentials, runs
`openapi-python-client generate` on it (any warning — a skipped endpoint or schema — is a
failure), imports the generated package and does a CRUD round trip through the generated
code only (Client/AuthenticatedClient, the `api.*` modules' `sync_detailed` and the generated
models):

  anon    things (every field type), plus a 422, a 409 (unique) and a 412 (If-Match)
  user    drafts of its own (row rules: another owner is 403), plus a 422
  editor  reviews of a thing, plus a 422
  admin   things and reviews, plus admin_list_collections

It prints one line per scope, `scope anon: ok (create get list patch delete)`, and exits 1
when any scope fails. A generated model that cannot parse a response, an undocumented status
(the clients are made with raise_on_unexpected_status=True) or a generator warning are
failures of the server's OpenAPI document: they are reported, never worked around.
"""

from __future__ import annotations

import datetime
import importlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import traceback
import urllib.error
import urllib.request
import uuid
from http import HTTPStatus
from typing import Any, Callable

SCOPES = ["anon", "user", "editor", "admin"]

# What each scope's document must (and must not) describe: the scopes differ (API.md §13).
EXPECTED_PATHS = {
    "anon": ({"/v1/things", "/v1/things/{id}", "/v1/tags"}, {"/v1/drafts", "/v1/reviews", "/v1/admin/collections"}),
    "user": ({"/v1/things", "/v1/drafts", "/v1/drafts/{id}"}, {"/v1/reviews", "/v1/admin/collections"}),
    "editor": ({"/v1/things", "/v1/drafts", "/v1/reviews", "/v1/reviews/{id}"}, {"/v1/admin/collections"}),
    "admin": ({"/v1/things", "/v1/drafts", "/v1/reviews", "/v1/admin/collections"}, set()),
}

GENERATOR_WARNING_MARKS = ("warning", "unable to parse", "will not be generated", "could not")


class Failure(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failure(message)


# ---- documents and generation ---------------------------------------------------------------


def download_document(base_url: str, credential: str | None, dest: str) -> dict[str, Any]:
    request = urllib.request.Request(base_url.rstrip("/") + "/v1/openapi.json")
    request.add_header("Accept", "application/json")
    if credential:
        request.add_header("Authorization", f"Bearer {credential}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        raise Failure(f"GET /v1/openapi.json: {error.code} {error.read()[:500]!r}") from None
    with open(dest, "wb") as file:
        file.write(body)
    return json.loads(body)


def generator_command() -> list[str]:
    configured = os.environ.get("OPENAPI_PYTHON_CLIENT")
    if configured:
        return shlex.split(configured)
    found = shutil.which("openapi-python-client")
    if found:
        return [found]
    return [sys.executable, "-m", "openapi_python_client"]


def generate(document: str, package_dir: str) -> None:
    command = generator_command() + [
        "generate", "--path", document, "--output-path", package_dir,
        "--meta", "none", "--overwrite", "--fail-on-warning",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600)
    output = (run.stdout + run.stderr).strip()
    lowered = output.lower()
    if run.returncode != 0 or any(mark in lowered for mark in GENERATOR_WARNING_MARKS):
        raise Failure(
            f"openapi-python-client did not generate a clean client (exit {run.returncode}):\n"
            f"  $ {shlex.join(command)}\n" + "\n".join("  | " + line for line in output.splitlines())
        )
    check(os.path.isfile(os.path.join(package_dir, "__init__.py")),
          f"the generator wrote no package at {package_dir}:\n{output}")


def import_package(parent_dir: str, name: str):
    sys.path.insert(0, parent_dir)
    try:
        importlib.invalidate_caches()
        return importlib.import_module(name)
    finally:
        sys.path.remove(parent_dir)


# ---- calling the generated code ---------------------------------------------------------------


class Exchange:
    """The last request and response, read by an httpx event hook, to explain a failure."""

    def __init__(self) -> None:
        self.request = ""
        self.response = ""

    def on_request(self, request) -> None:
        body = request.content.decode("utf-8", "replace") if request.content else ""
        self.request = f"{request.method} {request.url}" + (f"\n    body: {body[:2000]}" if body else "")
        self.response = ""

    def on_response(self, response) -> None:
        response.read()
        self.response = f"{response.status_code} {response.headers.get('content-type', '')}\n    body: {response.text[:2000]}"


class Scope:
    def __init__(self, name: str, package, base_url: str, credential: str | None) -> None:
        self.name = name
        self.pkg = package
        self.exchange = Exchange()
        hooks = {"event_hooks": {"request": [self.exchange.on_request], "response": [self.exchange.on_response]}}
        client_module = importlib.import_module(f"{package.__name__}.client")
        if credential is None:
            self.client = client_module.Client(base_url=base_url, raise_on_unexpected_status=True, httpx_args=hooks)
        else:
            self.client = client_module.AuthenticatedClient(
                base_url=base_url, token=credential, raise_on_unexpected_status=True, httpx_args=hooks)
        self.done: list[str] = []

    def op(self, tag: str, operation: str) -> Callable[..., Any]:
        """The generated `sync_detailed` of api/<tag>/<operation>.py."""
        try:
            module = importlib.import_module(f"{self.pkg.__name__}.api.{tag}.{operation}")
        except ModuleNotFoundError as error:
            raise Failure(f"the generated client has no api.{tag}.{operation} ({error})") from None
        return module.sync_detailed

    def model(self, name: str):
        try:
            return getattr(importlib.import_module(f"{self.pkg.__name__}.models"), name)
        except AttributeError:
            raise Failure(f"the generated client has no model {name}") from None

    def call(self, what: str, tag: str, operation: str, expected: int, **arguments):
        """Calls a generated operation; checks the status; returns the parsed body."""
        function = self.op(tag, operation)
        try:
            response = function(client=self.client, **arguments)
        except Failure:
            raise
        except Exception as error:  # the generated code failed: most likely parsing a response
            raise Failure(
                f"{what}: api.{tag}.{operation}.sync_detailed raised {type(error).__name__}: {error}\n"
                f"  request:  {self.exchange.request}\n  response: {self.exchange.response}\n"
                + "".join("  " + line for line in traceback.format_exc().splitlines(True)[-12:])
            ) from None
        if response.status_code != expected:
            raise Failure(
                f"{what}: expected {expected}, got {int(response.status_code)} "
                f"({HTTPStatus(response.status_code).phrase})\n"
                f"  request:  {self.exchange.request}\n  response: {self.exchange.response}"
            )
        return response

    def fail_context(self) -> str:
        return f"\n  request:  {self.exchange.request}\n  response: {self.exchange.response}"


def problem_of(scope: Scope, response, status: int):
    """The generated Problem model of an error response, checked against API.md §4."""
    problem = response.parsed
    check(isinstance(problem, scope.model("Problem")),
          f"a {status} was parsed as {type(problem).__name__}, not Problem{scope.fail_context()}")
    check(problem.status == status, f"problem.status {problem.status} != {status}")
    check(response.headers.get("content-type", "").startswith("application/problem+json"),
          f"a {status} has Content-Type {response.headers.get('content-type')!r}")
    return problem


def error_fields(problem) -> dict[str, str]:
    errors = problem.errors if isinstance(problem.errors, list) else []
    return {entry.field: str(entry.code) for entry in errors}


def uid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


# ---- the round trips ---------------------------------------------------------------------------


def record_crud(scope: Scope, collection: str, create_body, check_created: Callable[[Any], None],
                patch_body, check_patched: Callable[[Any], None], list_expand: str | None = None,
                check_listed: Callable[[Any], None] | None = None) -> uuid.UUID:
    """create → get → list (filter) → patch → delete → get (404), all through the generated code."""
    record_model = scope.model(collection.capitalize())

    response = scope.call(f"create {collection}", collection, f"create_{collection}", 201, body=create_body)
    created = response.parsed
    check(isinstance(created, record_model),
          f"create {collection}: the 201 was parsed as {type(created).__name__}, not {record_model.__name__}"
          f"{scope.fail_context()}")
    record_id = uid(created.id)
    check(created.version == 1, f"create {collection}: version {created.version} != 1")
    check(response.headers.get("location") == f"/v1/{collection}/{record_id}",
          f"create {collection}: Location {response.headers.get('location')!r}")
    check_created(created)
    scope.done.append("create")

    response = scope.call(f"get {collection}", collection, f"get_{collection}", 200, id=record_id)
    fetched = response.parsed
    check(isinstance(fetched, record_model), f"get {collection}: parsed as {type(fetched).__name__}")
    check(uid(fetched.id) == record_id and fetched.version == 1, f"get {collection}: id/version differ")
    check(response.headers.get("etag") == '"1"', f"get {collection}: ETag {response.headers.get('etag')!r}")
    check_created(fetched)
    scope.done.append("get")

    arguments: dict[str, Any] = {"filter_": f"id = '{record_id}'", "total": True}
    if list_expand:
        arguments["expand"] = list_expand
    response = scope.call(f"list {collection}", collection, f"list_{collection}", 200, **arguments)
    page = response.parsed
    check(isinstance(page, scope.model(f"{collection.capitalize()}List")),
          f"list {collection}: parsed as {type(page).__name__}")
    ids = [uid(item.id) for item in page.items]
    check(ids == [record_id], f"list {collection} with filter id = '{record_id}': got ids {ids}")
    check(page.total == 1, f"list {collection}: total {page.total!r} != 1")
    check(page.next_cursor is None, f"list {collection}: next_cursor {page.next_cursor!r} on the only page")
    if check_listed:
        check_listed(page.items[0])
    scope.done.append("list")

    response = scope.call(f"patch {collection}", collection, f"update_{collection}", 200,
                          id=record_id, body=patch_body, if_match='"1"')
    patched = response.parsed
    check(isinstance(patched, record_model), f"patch {collection}: parsed as {type(patched).__name__}")
    check(patched.version == 2, f"patch {collection}: version {patched.version} != 2")
    check(uid(patched.id) == record_id, f"patch {collection}: id changed")
    check_patched(patched)
    # the same If-Match again: the record is at version 2 now
    response = scope.call(f"stale patch {collection}", collection, f"update_{collection}", 412,
                          id=record_id, body=patch_body, if_match='"1"')
    problem_of(scope, response, 412)
    scope.done.append("patch")

    response = scope.call(f"delete {collection}", collection, f"delete_{collection}", 204, id=record_id)
    check(response.content == b"", f"delete {collection}: a 204 with a body {response.content[:200]!r}")
    response = scope.call(f"get deleted {collection}", collection, f"get_{collection}", 404, id=record_id)
    problem_of(scope, response, 404)
    scope.done.append("delete")
    return record_id


def expect_validation_error(scope: Scope, collection: str, body, expected: dict[str, str]) -> None:
    response = scope.call(f"invalid create {collection}", collection, f"create_{collection}", 422, body=body)
    problem = problem_of(scope, response, 422)
    fields = error_fields(problem)
    for field, code in expected.items():
        check(fields.get(field) == code,
              f"invalid create {collection}: expected errors[].field {field} with code {code}, got {fields}")
    # `type` is a Python builtin: the generator names the attribute `type_`
    check(problem.type_ == "/problems/validation-failed", f"422 problem type {problem.type_!r}")
    if "422" not in scope.done:
        scope.done.append("422")


def create_plain(scope: Scope, collection: str, body) -> Any:
    response = scope.call(f"create {collection}", collection, f"create_{collection}", 201, body=body)
    return response.parsed


def delete_plain(scope: Scope, collection: str, record_id) -> None:
    scope.call(f"delete {collection}", collection, f"delete_{collection}", 204, id=uid(record_id))


def things_round_trip(scope: Scope, owner_id: str | None) -> None:
    """Every field type of API.md §2 on `things`, with defaults, unique and a 422."""
    run = uuid.uuid4().hex[:10]
    ThingsCreate = scope.model("ThingsCreate")
    ThingsPatch = scope.model("ThingsPatch")
    Published = scope.model("ThingsCreateStatusType1").PUBLISHED
    Archived = scope.model("ThingsPatchStatusType1").ARCHIVED

    tag = create_plain(scope, "tags", scope.model("TagsCreate")(label=f"tag {run}"))
    parent = create_plain(scope, "things", ThingsCreate(title=f"Parent {run}"))
    # defaults: quantity 0, active true, status draft; everything else null
    check(parent.quantity == 0 and parent.active is True and parent.status == "draft",
          f"defaults not applied: quantity={parent.quantity!r} active={parent.active!r} status={parent.status!r}")
    check(parent.notes is None and parent.data is None and parent.tag is None and parent.due_at is None,
          "unset optional fields are not null")

    due_at = datetime.datetime(2027, 3, 4, 5, 6, 7, 123000, tzinfo=datetime.timezone.utc)
    data = {"nested": {"list": [1, 2.5, "three", None, True]}, "empty": {}, "n": None, "text": "ünïcode ✓"}
    contact = f"Thing.{run}@Example.com"
    values: dict[str, Any] = {
        "title": f"Widget {run}",
        "notes": "Plain text — with ünïcode ✓ and\nnew lines",
        "quantity": 42,
        "price": 19.25,
        "active": False,
        "due_at": due_at,
        "contact": contact,
        "homepage": f"https://example.com/things/{run}?q=1#top",
        "status": Published,
        "data": data,
        "tag": uid(tag.id),
        "parent": uid(parent.id),
        "owner": uuid.UUID(owner_id) if owner_id else None,
    }

    def check_created(record) -> None:
        for name, value in values.items():
            got = getattr(record, name)
            if name in ("tag", "parent", "owner") and got is not None:
                got = uid(got)
            if value is None or isinstance(value, bool):
                same = got is value
            elif isinstance(value, (int, float)):
                same = got == value and type(got) is type(value)
            else:
                same = got == value
            check(same, f"things.{name}: sent {value!r}, got back {got!r}")
        check(isinstance(record.due_at, datetime.datetime), f"due_at parsed as {type(record.due_at).__name__}")
        check(isinstance(record.created_at, datetime.datetime), "created_at is not a datetime")
        check(isinstance(record.quantity, int) and not isinstance(record.quantity, bool), "quantity is not an int")

    def check_listed(item) -> None:
        check(uid(item.tag) == uid(tag.id), "listed thing: tag differs")
        expand = item.expand
        check(expand is not None and uid(expand.tag.id) == uid(tag.id) and expand.tag.label == f"tag {run}",
              f"listed thing: expand.tag is {expand!r}")
        check(uid(expand.parent.id) == uid(parent.id), f"listed thing: expand.parent is {expand.parent!r}")

    def check_patched(record) -> None:
        check(record.quantity == 43, f"patch: quantity {record.quantity!r} != 43")
        check(record.notes is None, f"patch: notes {record.notes!r} not cleared")
        check(record.status == "archived", f"patch: status {record.status!r}")
        merged = {"nested": {"list": [1, 2.5, "three", None, True], "extra": "x"}, "empty": {}, "n": None,
                  "text": "ünïcode ✓"}
        check(record.data == merged, f"patch: data {record.data!r} is not the RFC 7396 merge {merged!r}")
        check(record.title == values["title"] and record.price == 19.25 and record.contact == contact,
              "patch: untouched fields changed")

    record_crud(
        scope, "things", ThingsCreate(**values), check_created,
        ThingsPatch(quantity=43, notes=None, status=Archived, data={"nested": {"extra": "x"}}), check_patched,
        list_expand="tag,parent", check_listed=check_listed,
    )

    # unique: a second record with the same contact (compared case-insensitively) is 409
    duplicate = ThingsCreate(title=f"Dup {run}", contact=contact.lower())
    first = create_plain(scope, "things", ThingsCreate(title=f"First {run}", contact=contact))
    response = scope.call("duplicate contact", "things", "create_things", 409, body=duplicate)
    problem = problem_of(scope, response, 409)
    check(error_fields(problem).get("/contact") == "unique", f"409 errors: {error_fields(problem)}")
    delete_plain(scope, "things", first.id)

    expect_validation_error(
        scope, "things",
        ThingsCreate(title="1 starts with a digit", quantity=-1, price=2_000_000.0,
                     contact="not an email", homepage="no scheme"),
        {"/title": "pattern", "/quantity": "min", "/price": "max", "/contact": "format", "/homepage": "format"},
    )
    delete_plain(scope, "things", parent.id)
    delete_plain(scope, "tags", tag.id)


def drafts_round_trip(scope: Scope, user_id: str, other_id: str | None) -> None:
    DraftsCreate = scope.model("DraftsCreate")
    owner = uuid.UUID(user_id)

    def check_created(record) -> None:
        check(record.body == "A private draft" and uid(record.owner) == owner and record.words == 3,
              f"drafts: fields differ: {record!r}")
        check(record.published is False, f"drafts.published default: {record.published!r}")

    def check_patched(record) -> None:
        check(record.published is True and record.words == 4 and record.body == "A private draft",
              f"drafts patch: {record!r}")

    record_crud(scope, "drafts", DraftsCreate(body="A private draft", owner=owner, words=3), check_created,
                scope.model("DraftsPatch")(published=True, words=4), check_patched)
    if other_id:  # the row rule @new.owner = @auth.id
        response = scope.call("create a draft for another user", "drafts", "create_drafts", 403,
                              body=DraftsCreate(body="not mine", owner=uuid.UUID(other_id)))
        problem_of(scope, response, 403)
    expect_validation_error(scope, "drafts", DraftsCreate(body="x" * 2001, owner=owner, words=-5),
                            {"/body": "max", "/words": "min"})


def reviews_round_trip(scope: Scope) -> None:
    run = uuid.uuid4().hex[:10]
    thing = create_plain(scope, "things", scope.model("ThingsCreate")(title=f"Reviewed {run}"))
    ReviewsCreate = scope.model("ReviewsCreate")
    Reject = scope.model("ReviewsCreateVerdictType1").REJECT

    def check_created(record) -> None:
        check(uid(record.thing) == uid(thing.id) and record.rating == 4 and record.comment == "Solid"
              and record.verdict == "reject", f"reviews: fields differ: {record!r}")

    def check_patched(record) -> None:
        check(record.rating == 5 and record.comment is None and record.verdict == "reject",
              f"reviews patch: {record!r}")

    record_crud(scope, "reviews", ReviewsCreate(thing=uid(thing.id), rating=4, comment="Solid", verdict=Reject),
                check_created, scope.model("ReviewsPatch")(rating=5, comment=None), check_patched)
    expect_validation_error(scope, "reviews", ReviewsCreate(thing=uid(thing.id), rating=9), {"/rating": "max"})
    # a relation target that does not exist (checked once the values themselves are valid)
    expect_validation_error(scope, "reviews", ReviewsCreate(thing=uuid.uuid4(), rating=3), {"/thing": "not_found"})
    delete_plain(scope, "things", thing.id)


def admin_calls(scope: Scope) -> None:
    response = scope.call("list collections", "admin", "admin_list_collections", 200)
    names = {item.name for item in response.parsed.items}
    check({"things", "tags", "drafts", "reviews"} <= names, f"admin_list_collections: {sorted(names)}")
    scope.done.append("admin_list_collections")


# ---- main ---------------------------------------------------------------------------------------


def run_scope(name: str, base_url: str, workdir: str, credential: str | None, documents: dict[str, str]) -> str:
    scope_dir = os.path.join(workdir, name)
    os.makedirs(scope_dir, exist_ok=True)
    document_path = os.path.join(scope_dir, "openapi.json")
    document = download_document(base_url, credential, document_path)
    documents[name] = json.dumps(document, sort_keys=True)
    paths = set(document.get("paths", {}))
    present, absent = EXPECTED_PATHS[name]
    check(present <= paths, f"the {name} document lacks {sorted(present - paths)}")
    check(not (absent & paths), f"the {name} document shows {sorted(absent & paths)}")

    package_name = f"basalt_{name}"
    generate(document_path, os.path.join(scope_dir, package_name))
    package = import_package(scope_dir, package_name)
    scope = Scope(name, package, base_url, credential)

    user_id = os.environ.get("BASALT_USER_ID")
    if name == "anon":
        things_round_trip(scope, owner_id=None)
        summary = " ".join(scope.done)
    elif name == "user":
        check(bool(user_id), "BASALT_USER_ID is not set")
        drafts_round_trip(scope, user_id, os.environ.get("BASALT_EDITOR_ID"))
        summary = " ".join(scope.done)
    elif name == "editor":
        reviews_round_trip(scope)
        summary = " ".join(scope.done)
    else:
        things_round_trip(scope, owner_id=user_id)
        on_things = " ".join(scope.done)
        scope.done = []
        reviews_round_trip(scope)
        on_reviews = " ".join(scope.done)
        scope.done = []
        admin_calls(scope)
        summary = f"things: {on_things}; reviews: {on_reviews}; {' '.join(scope.done)}"
    return summary


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    base_url, workdir = sys.argv[1].rstrip("/"), os.path.abspath(sys.argv[2])
    credentials = {
        "anon": None,
        "user": os.environ.get("BASALT_USER_TOKEN"),
        "editor": os.environ.get("BASALT_EDITOR_TOKEN"),
        "admin": os.environ.get("BASALT_ADMIN_KEY"),
    }
    missing = [var for var in ("BASALT_ADMIN_KEY", "BASALT_USER_TOKEN", "BASALT_USER_ID",
                               "BASALT_EDITOR_TOKEN", "BASALT_EDITOR_ID") if not os.environ.get(var)]
    if missing:
        print(f"missing environment: {', '.join(missing)}", file=sys.stderr)
        return 2
    os.makedirs(workdir, exist_ok=True)

    failed = []
    documents: dict[str, str] = {}
    for name in SCOPES:
        try:
            summary = run_scope(name, base_url, workdir, credentials[name], documents)
            print(f"scope {name}: ok ({summary})", flush=True)
        except Failure as failure:
            failed.append(name)
            print(f"scope {name}: FAILED: {failure}", flush=True)
        except Exception:
            failed.append(name)
            print(f"scope {name}: FAILED with an unexpected error:\n{traceback.format_exc()}", flush=True)

    if len(documents) == len(SCOPES) and len(set(documents.values())) != len(SCOPES):
        failed.append("documents")
        print("documents: FAILED: two scopes got the same OpenAPI document", flush=True)
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("all scopes ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
