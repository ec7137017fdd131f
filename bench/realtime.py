#!/usr/bin/env python3
"""Realtime latency and throughput of one `basalt serve` (API.md §10), over loopback.

    python3 bench/realtime.py --basalt .build/release/basalt [--database postgres://…]
        [--subscribers 1,100,1000] [--writes 200] [--rounds 3]

For each subscriber count: that many SSE subscribers (`GET /v1/realtime?collections=ticks`,
anonymous, the collection public) stay connected while one writer creates records one at a time
(`--rate` a second). Latency is the time from the write's response arriving at the writer to
the event arriving at a subscriber, for every (write, subscriber) pair; p50/p99/max over all of
them, median of `--rounds` rounds. Then throughput: batches of 100 creates as fast as the server
takes them, with 1 and 100 subscribers, counting events delivered per second.

The clients run in this Python process on the same 2 cores as the server, so the figures
include their scheduling: an upper bound on what the server adds.
"""
import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

SCHEMA = """collections:
  ticks:
    fields:
      n: {type: integer}
    access:
      list: [{who: public}]
      view: [{who: public}]
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, key=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


class Subscriber:
    """One SSE connection; records when each event's subject arrived."""

    def __init__(self, port, source):
        self.port = port
        self.source = source
        self.arrivals = {}
        self.count = 0
        self.ready = asyncio.Event()
        self.task = None

    async def run(self):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", self.port, limit=1 << 20, local_addr=(self.source, 0)
        )
        writer.write(
            f"GET /v1/realtime?collections=ticks HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"subscribe failed: {status!r}")
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass  # headers
        self.ready.set()
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                # A `data:` line holds the CloudEvent (chunk-size lines and the rest are skipped).
                i = line.find(b'"subject":"')
                if i >= 0:
                    self.arrivals[line[i + 11 : line.index(b'"', i + 11)].decode()] = time.perf_counter()
                    self.count += 1
        finally:
            writer.close()


async def connect(port, n):
    # Each subscriber is its own client, from its own loopback address: the server allows a
    # caller (an anonymous address) 16 streams, as it would a browser.
    subs = [Subscriber(port, f"127.1.{i // 250}.{i % 250 + 1}") for i in range(n)]
    for i in range(0, n, 50):  # connect in steps: a burst of 1,000 SYNs overflows the backlog
        chunk = subs[i : i + 50]
        for s in chunk:
            s.task = asyncio.create_task(s.run())
        await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in chunk)), 60)
    await asyncio.sleep(0.5)
    return subs


async def latency_round(port, key, subs, writes, rate):
    loop = asyncio.get_running_loop()
    acks = {}
    for n in range(writes):
        rec = await loop.run_in_executor(None, request, port, "POST", "/v1/ticks", {"n": n}, key)
        acks[rec["id"]] = time.perf_counter()
        await asyncio.sleep(1 / rate)
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline and any(len([k for k in acks if k in s.arrivals]) < writes for s in subs):
        await asyncio.sleep(0.1)
    samples = []
    missing = 0
    for s in subs:
        for rid, t in acks.items():
            if rid in s.arrivals:
                samples.append((s.arrivals[rid] - t) * 1000)
            else:
                missing += 1
    samples.sort()
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
    return {"p50": pick(0.50), "p99": pick(0.99), "max": samples[-1], "missing": missing, "n": len(samples)}


async def throughput(port, key, subs, batches):
    loop = asyncio.get_running_loop()
    before = sum(s.count for s in subs)
    expected = before + batches * 100 * len(subs)
    start = time.perf_counter()
    for b in range(batches):
        ops = [{"method": "POST", "path": "/v1/ticks", "body": {"n": b}} for _ in range(100)]
        await loop.run_in_executor(None, request, port, "POST", "/v1/batch", {"operations": ops}, key)
    wrote = time.perf_counter() - start
    deadline = time.perf_counter() + 60
    while sum(s.count for s in subs) < expected and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    took = time.perf_counter() - start
    delivered = sum(s.count for s in subs) - before
    return {"events_per_s": batches * 100 / took, "deliveries_per_s": delivered / took, "writes_per_s": batches * 100 / wrote}


async def main(args):
    tmp = tempfile.mkdtemp(prefix="basalt-rt-")
    port = free_port()
    schema = os.path.join(tmp, "ticks.yaml")
    with open(schema, "w") as f:
        f.write(SCHEMA)
    store = ["--database", args.database] if args.database else ["--data", os.path.join(tmp, "data")]
    key = subprocess.run(
        [args.basalt, "admin", "key", "create", "--name", "bench", *store], check=True, capture_output=True, text=True
    ).stdout.strip()
    env = dict(os.environ, BASALT_RATE_LIMIT_ANONYMOUS="0", BASALT_RATE_LIMIT_SUBJECT="0")
    server = subprocess.Popen(
        [args.basalt, "serve", "--http", f"127.0.0.1:{port}", "--schema", schema, *store],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "server.log"), "w"), env=env,
    )
    try:
        for _ in range(300):
            try:
                request(port, "GET", "/health/ready")
                break
            except Exception:
                time.sleep(0.1)
        print(f"store: {'postgresql' if args.database else 'sqlite'}; {args.writes} writes at {args.rate}/s per round, "
              f"median of {args.rounds} rounds")
        print("| subscribers | p50 ms | p99 ms | max ms | samples | missing |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: |")
        for n in [int(x) for x in args.subscribers.split(",")]:
            subs = await connect(port, n)
            rounds = [await latency_round(port, key, subs, args.writes, args.rate) for _ in range(args.rounds)]
            med = lambda k: statistics.median(r[k] for r in rounds)
            print(f"| {n} | {med('p50'):.1f} | {med('p99'):.1f} | {max(r['max'] for r in rounds):.1f} | "
                  f"{sum(r['n'] for r in rounds)} | {sum(r['missing'] for r in rounds)} |", flush=True)
            for s in subs:
                s.task.cancel()
            await asyncio.sleep(1)
        print()
        print("| subscribers | events/s through the process | deliveries/s | writes/s (batches of 100) |")
        print("| ---: | ---: | ---: | ---: |")
        for n in (1, 100):
            subs = await connect(port, n)
            r = [await throughput(port, key, subs, args.batches) for _ in range(args.rounds)]
            med = lambda k: statistics.median(x[k] for x in r)
            print(f"| {n} | {med('events_per_s'):.0f} | {med('deliveries_per_s'):.0f} | {med('writes_per_s'):.0f} |", flush=True)
            for s in subs:
                s.task.cancel()
            await asyncio.sleep(1)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--basalt", required=True, help="the basalt executable (a release build)")
    p.add_argument("--database", help="a postgres:// URL (default: SQLite in a temp folder)")
    p.add_argument("--subscribers", default="1,100,1000")
    p.add_argument("--writes", type=int, default=200, help="writes per latency round")
    p.add_argument("--rate", type=float, default=20, help="latency writes per second")
    p.add_argument("--batches", type=int, default=20, help="batches of 100 creates per throughput round")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    try:
        asyncio.run(main(args))
    except KeyboardInterrupt:
        sys.exit(130)
