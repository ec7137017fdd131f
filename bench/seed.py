#!/usr/bin/env python3
"""Seed the benchmark's `posts` collection through each server's batch API.

Both servers get the *same* records: they are generated from one seeded random
generator, so Basalt and PocketBase are measured on identical data. Only the
standard library is used, so the harness needs nothing beyond python3.

    seed.py --target basalt|pocketbase --url http://127.0.0.1:PORT --token TOKEN \
            --count 100000 --ids-out FILE [--sample 10000] [--batch 100] [--seed 42]

Writes a random sample of the created ids (one per line) to --ids-out: the wrk
scripts rotate over them for the "get one" and "patch" workloads.
"""

import argparse
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse

WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
         "incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud "
         "exercitation ullamco laboris nisi aliquip ex ea commodo consequat").split()


def make_records(count, seed):
    """Deterministic records: ~half published, views uniform in 0..1000."""
    rng = random.Random(seed)
    records = []
    for i in range(count):
        records.append({
            "title": "Post %d %s" % (i, " ".join(rng.choice(WORDS) for _ in range(4))),
            "body": " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60))),
            "status": "published" if rng.random() < 0.5 else "draft",
            "views": rng.randint(0, 1000),
            "author": "author-%d" % rng.randint(1, 500),
        })
    return records


class Target:
    """What differs between the two servers: batch path, body shape, auth header, result shape."""

    def __init__(self, kind, token, collection="posts"):
        self.kind = kind
        self.token = token
        self.collection = collection

    def headers(self):
        h = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.kind == "basalt":
            h["Authorization"] = "Bearer " + self.token   # admin API key (bsk_...)
        else:
            h["Authorization"] = self.token               # PocketBase superuser token, no scheme
        return h

    def batch_request(self, records):
        if self.kind == "basalt":
            # API.md §7: {"operations": [{"method","path","body"}]}, at most 100 per batch.
            return "/v1/batch", {"operations": [
                {"method": "POST", "path": "/v1/" + self.collection, "body": r} for r in records]}
        # PocketBase: {"requests": [{"method","url","body"}]}, limit set by settings.batch.maxRequests.
        return "/api/batch", {"requests": [
            {"method": "POST", "url": "/api/collections/posts/records", "body": r} for r in records]}

    def ids_from_response(self, payload):
        results = payload["results"] if self.kind == "basalt" else payload
        ids = []
        for r in results:
            if r.get("status") not in (200, 201):
                raise RuntimeError("operation failed inside batch: %r" % (r,))
            ids.append(r["body"]["id"])
        return ids

    def count_path(self):
        if self.kind == "basalt":
            return "/v1/%s?limit=1&total=true" % self.collection, lambda p: p["total"]
        return "/api/collections/posts/records?perPage=1", lambda p: p["totalItems"]


def request(conn, method, path, headers, body=None):
    """One request with retries on 429/503 (honouring Retry-After) and on a dropped connection."""
    data = json.dumps(body).encode() if body is not None else None
    for attempt in range(20):
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (http.client.HTTPException, ConnectionError):
            conn.close()
            time.sleep(0.5)
            continue
        if resp.status in (429, 503):
            time.sleep(float(resp.getheader("Retry-After") or 1))
            continue
        if resp.status != 200:
            raise RuntimeError("%s %s -> %d: %s" % (method, path, resp.status, raw[:500].decode(errors="replace")))
        return json.loads(raw)
    raise RuntimeError("%s %s: gave up after retries" % (method, path))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", choices=["basalt", "pocketbase"], required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2,
                    help="concurrent batch senders (both servers have a single SQLite writer; 2 overlaps encoding with I/O)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--ids-out", required=True)
    ap.add_argument("--sample", type=int, default=10_000, help="how many ids to write to --ids-out")
    ap.add_argument("--collection", default="posts", help="Basalt only: the collection to seed (same fields as posts)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="Basalt only: a field every record gets (e.g. owner=<user id>)")
    args = ap.parse_args()

    url = urllib.parse.urlsplit(args.url)
    target = Target(args.target, args.token, args.collection)
    records = make_records(args.count, args.seed)
    for pair in args.set:
        field, _, value = pair.partition("=")
        for r in records:
            r[field] = value
    chunks = [records[i:i + args.batch] for i in range(0, len(records), args.batch)]
    ids = [None] * len(chunks)
    errors = []
    next_chunk = [0]
    lock = threading.Lock()
    started = time.monotonic()

    def worker():
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
        headers = target.headers()
        while not errors:
            with lock:
                n = next_chunk[0]
                next_chunk[0] += 1
            if n >= len(chunks):
                break
            path, body = target.batch_request(chunks[n])
            try:
                ids[n] = target.ids_from_response(request(conn, "POST", path, headers, body))
            except Exception as e:  # noqa: BLE001 - reported below, stops the other workers
                errors.append(e)
                break
            if n % 100 == 0:
                print("  %s: batch %d/%d" % (args.target, n, len(chunks)), file=sys.stderr, flush=True)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(max(1, args.workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        print("seed failed: %s" % errors[0], file=sys.stderr)
        return 1

    all_ids = [i for chunk in ids for i in chunk]
    elapsed = time.monotonic() - started

    # Check the server agrees on the count before anything is measured.
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    path, extract = target.count_path()
    total = extract(request(conn, "GET", path, target.headers()))
    if total != args.count:
        print("seed failed: server reports %s records, expected %d" % (total, args.count), file=sys.stderr)
        return 1

    sample = random.Random(args.seed + 1).sample(all_ids, min(args.sample, len(all_ids)))
    with open(args.ids_out, "w") as f:
        f.write("\n".join(sample) + "\n")
    print("  %s: seeded %d records in %.1f s (%.0f records/s)" % (
        args.target, len(all_ids), elapsed, len(all_ids) / elapsed), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
