"""Schemathesis hooks for the contract run (loaded by tests/contract/schemathesis.toml).

The `positive_data_acceptance` check expects every request that is valid per the OpenAPI
document to be accepted. A few inputs are valid JSON Schema yet rejected by our documented
contract (API.md), for reasons a schema cannot express:

- a relation field holding a well-formed id of a record that does not exist: 422 `not_found` (§2);
- `filter`: an expression of the filter language; arbitrary text is a 400 (§3);
- `cursor`: opaque, valid only as returned in `next_cursor`; anything else is a 400 (§3);
- `Idempotency-Key` reused with another body: 422 (§6) — generated keys repeat ("0", "a", …);
- `POST /v1/auth/register`: common passwords are refused by policy, and a deliverable address is
  narrower than JSON Schema's `email` format (§8);
- `POST /v1/batch`: each operation is validated against its own collection, so a generated
  operation list is almost never a valid batch (§7).

For test cases generated as *positive* only, these hooks put valid values in those places.
Negative cases are left alone, so the rejection of invalid input is still checked in full
(Schemathesis re-validates a case after a hook edits it, so an edit never mislabels a case).
Everything is specific to tests/fixtures/all-types.yaml.
"""

import os
from collections.abc import MutableMapping
import uuid

import schemathesis

# An existing `authors` record, created by scripts/test.sh before the run.
AUTHOR_ID = os.environ.get("BASALT_CONTRACT_AUTHOR_ID")

# A filter that is valid on every collection: `id` is a system field everywhere, and `!=`
# against null is the null-safe comparison (matches every record).
VALID_FILTER = "id != null"


def _is_positive(case):
    meta = case.meta
    return meta is not None and meta.generation.mode.is_positive


def _is_valid_key(value):
    return isinstance(value, str) and 1 <= len(value) <= 255 and all(" " <= c <= "~" for c in value)


def _strip_nul(value):
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    if isinstance(value, dict):
        return {_strip_nul(k): _strip_nul(v) for k, v in value.items()}
    return value


@schemathesis.hook
def before_call(context, case, kwargs):
    # Every phase reuses generated keys ("0", "a", …); a reused key with another body is a 422
    # by contract. A valid key stays valid (a fresh UUID), an invalid one is left to be rejected.
    if os.environ.get("BASALT_HOOK_DEBUG"):
        with open(os.environ["BASALT_HOOK_DEBUG"], "a") as f:
            f.write(f"{case.method} {case.operation.path} headers={case.headers!r} kwargs={list((kwargs or {}).keys())}\n")
    # The request may already be built from the case (kwargs), so both are updated. A valid key is
    # dropped: checks re-send derived requests with the case's headers (not through this hook),
    # and a key reused with another body is a 422 by contract. Idempotency has its own tests.
    for headers in (case.headers, (kwargs or {}).get("headers")):
        # Coverage-phase cases carry a case-insensitive mapping, not a dict.
        if isinstance(headers, MutableMapping):
            for name in list(headers):
                if name.lower() == "idempotency-key" and _is_valid_key(headers[name]):
                    del headers[name]
    if not _is_positive(case):
        return
    path = case.operation.path

    if isinstance(case.query, dict):
        if "filter" in case.query:
            case.query["filter"] = VALID_FILTER
        case.query.pop("cursor", None)

    # U+0000 is refused anywhere in a json value (PostgreSQL's jsonb cannot store it); JSON Schema
    # has no way to say so for member names, so positive bodies lose it here.
    if isinstance(case.body, (dict, list)):
        case.body = _strip_nul(case.body)

    if path.startswith("/v1/items") and isinstance(case.body, dict) and AUTHOR_ID:
        if isinstance(case.body.get("author"), str):
            case.body["author"] = AUTHOR_ID

    # Sign-up: any string of 8+ characters is a valid password per the schema, but common ones
    # ("password", "12345678") are refused by policy (API.md §8), and the email format of JSON
    # Schema is wider than a deliverable address. Positive cases get a fresh address and passphrase.
    if path == "/v1/auth/register" and isinstance(case.body, dict):
        case.body["email"] = "u%s@example.com" % uuid.uuid4().hex
        case.body["password"] = "contract passphrase %s" % uuid.uuid4().hex

    if path == "/v1/batch" and case.method.upper() == "POST":
        # A small batch that must succeed: two creates, one of them referencing the author.
        case.body = {"operations": [
            {"method": "POST", "path": "/v1/authors", "body": {"name": "batch author"}},
            {"method": "POST", "path": "/v1/items",
             "body": {"title": "Batch item", "author": AUTHOR_ID}},
        ]}
