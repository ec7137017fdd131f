#!/usr/bin/env python3
"""Turn bench/run.sh's results.jsonl into the summary tables (Markdown, printed and saved).

    report.py OUT_DIR     reads OUT_DIR/results.jsonl, writes OUT_DIR/summary.md

Each line of results.jsonl is one measured wrk run
  {"target": "basalt"|"pb"|"pb-nologs", "workload": "get"|..., "rps", "p99_us", "non2xx",
   "socket_errors", "hwm_kb"}
or one memory reading after seeding {"target", "workload": "seed", "hwm_kb"}.
"""

import json
import os
import sys

TARGETS = [("basalt", "Basalt"), ("pb", "PB"), ("pb-nologs", "PB-nologs")]


def fmt_rps(r):
    return "–" if r is None else "%.0f" % r["rps"]


def fmt_p99(r):
    return "–" if r is None else "%.1f ms" % (r["p99_us"] / 1000)


def fmt_ratio(a, b):
    if a is None or b is None or not b.get("rps"):
        return "–"
    return "%.2f×" % (a["rps"] / b["rps"])


def fmt_mib(r):
    return "–" if r is None or not r.get("hwm_kb") else "%.0f MiB" % (r["hwm_kb"] / 1024)


def main(out_dir):
    rows = {}
    order = []
    with open(os.path.join(out_dir, "results.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            rows[(r["target"], r["workload"])] = r
            if r["workload"] not in order:
                order.append(r["workload"])
    workloads = [w for w in order if w != "seed"]

    lines = ["| workload | Basalt req/s | p99 | PB req/s | p99 | PB-nologs req/s | p99 "
             "| Basalt/PB | Basalt/PB-nologs |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for w in workloads:
        b, p, n = (rows.get((t, w)) for t, _ in TARGETS)
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            w, fmt_rps(b), fmt_p99(b), fmt_rps(p), fmt_p99(p), fmt_rps(n), fmt_p99(n),
            fmt_ratio(b, p), fmt_ratio(b, n)))

    lines += ["", "Peak RSS of the server process (VmHWM; reset before each workload, so each "
              "cell is that workload's own peak; `seed` is the peak from start through seeding):", "",
              "| phase | Basalt | PB | PB-nologs |", "| --- | ---: | ---: | ---: |"]
    for w in ["seed"] + workloads:
        lines.append("| %s | %s |" % (w, " | ".join(fmt_mib(rows.get((t, w))) for t, _ in TARGETS)))

    pub, auth = rows.get(("basalt", "get")), rows.get(("basalt", "get-auth"))
    if pub and auth and pub.get("rps"):
        lines += ["", "Authenticated read (`get-auth`: bearer JWT + `owner = @auth.id`) against the public "
                  "read (`get`): %.0f vs %.0f req/s, %.1f%% fewer; p99 %.1f vs %.1f ms." % (
                      auth["rps"], pub["rps"], 100 * (1 - auth["rps"] / pub["rps"]),
                      auth["p99_us"] / 1000, pub["p99_us"] / 1000)]

    bad = ["%s/%s: %d error responses, %d socket errors" % (t, w, r.get("non2xx", 0), r.get("socket_errors", 0))
           for (t, w), r in rows.items() if r.get("non2xx") or r.get("socket_errors")]
    if bad:
        lines += ["", "**Errors during measurement** (such a run's req/s is not comparable):", ""]
        lines += ["- " + b for b in bad]

    text = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, "summary.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
