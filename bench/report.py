#!/usr/bin/env python3
"""Turn bench/run.sh's results.jsonl into the summary tables (Markdown, printed and saved).

    report.py OUT_DIR     reads OUT_DIR/results.jsonl, writes OUT_DIR/summary.md

Each line of results.jsonl is one measured wrk run
  {"target": "basalt"|"ceiling"|"pb"|"pb-nologs"|"pb-tuned"|"basalt-pg"|"ceiling-pg"|"pgbench",
   "workload": "get"|..., "connections",
   "round", "rps", "p99_us", "non2xx", "socket_errors", "hwm_kb"}
or one memory reading after seeding {"target", "workload": "seed", "hwm_kb"}.
Each cell is the median of the rounds (min–max beside it); every ratio is Basalt's median over the
other's median, from the same run.
"""

import json
import os
import statistics
import sys

TARGETS = [("basalt", "Basalt"), ("ceiling", "ceiling"), ("pb", "PB"), ("pb-nologs", "PB-nologs"),
           ("pb-tuned", "PB-tuned")]
# On PostgreSQL: a table of its own, Basalt on PostgreSQL against the PostgresNIO ceiling and
# against pgbench -S (the database's own limit, for `get`).
PG_TARGETS = [("basalt-pg", "Basalt (PG)"), ("ceiling-pg", "ceiling (PG)"), ("pgbench", "pgbench -S")]


def med(runs, key):
    return statistics.median(r[key] for r in runs) if runs else None


def fmt_rps(runs):
    if not runs:
        return "–"
    rps = [r["rps"] for r in runs]
    if len(rps) == 1:
        return "%.0f" % rps[0]
    return "%.0f (%.0f–%.0f)" % (statistics.median(rps), min(rps), max(rps))


def fmt_p99(runs):
    return "–" if not runs else "%.1f ms" % (med(runs, "p99_us") / 1000)


def fmt_ratio(a, b, key="rps"):
    if not a or not b or not med(b, key):
        return "–"
    return "%.2f×" % (med(a, key) / med(b, key))


def fmt_mib(runs):
    peaks = [r["hwm_kb"] for r in runs or [] if r.get("hwm_kb")]
    return "–" if not peaks else "%.0f MiB" % (max(peaks) / 1024)


def main(out_dir):
    runs = {}
    order = []
    with open(os.path.join(out_dir, "results.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            key = (r["target"], r["workload"], r.get("connections"))
            runs.setdefault(key, []).append(r)
            if (r["workload"], r.get("connections")) not in order:
                order.append((r["workload"], r.get("connections")))
    cells = [(w, c) for w, c in order if w != "seed"]
    lines = []
    present = []
    for targets, base, title in [(TARGETS, "basalt", None), (PG_TARGETS, "basalt-pg", "On PostgreSQL:")]:
        here = [(t, n) for t, n in targets if any(k[0] == t for k in runs)]
        present += here
        if not here:
            continue
        if title:
            lines += ["", title, ""]
        head = "| workload | conns | " + " | ".join("%s req/s | p99" % n for _, n in here)
        ratios = [(t, n) for t, n in here if t != base]
        head += " | " + " | ".join("Basalt/%s" % n for _, n in ratios) + " |"
        lines += [head, "| --- | ---: | " + " | ".join("---: | ---:" for _ in here) + " | " +
                  " | ".join("---:" for _ in ratios) + " |"]
        for w, c in cells:
            if not any(runs.get((t, w, c)) for t, _ in here):
                continue
            row = [w, str(c)]
            for t, _ in here:
                rs = runs.get((t, w, c))
                row += [fmt_rps(rs), fmt_p99(rs)]
            b = runs.get((base, w, c))
            row += [fmt_ratio(b, runs.get((t, w, c))) for t, _ in ratios]
            lines.append("| " + " | ".join(row) + " |")

    for base, ceiling, where in [("basalt", "ceiling", ""), ("basalt-pg", "ceiling-pg", " on PostgreSQL")]:
        if any(k[0] == ceiling for k in runs):
            lines += ["", "p99 latency, Basalt over the ceiling%s (lower is better):" % where, "",
                      "| workload | conns | Basalt p99 / ceiling p99 |", "| --- | ---: | ---: |"]
            for w, c in cells:
                b, k = runs.get((base, w, c)), runs.get((ceiling, w, c))
                if b and k:
                    lines.append("| %s | %s | %s |" % (w, c, fmt_ratio(b, k, "p99_us")))

    lines += ["", "Peak RSS of the server process (VmHWM, reset before each measured run; the highest "
              "of its rounds; `seed` is the peak from start through seeding):", "",
              "| phase | conns | " + " | ".join(n for _, n in present) + " |",
              "| --- | ---: | " + " | ".join("---:" for _ in present) + " |"]
    for w, c in [("seed", None)] + cells:
        lines.append("| %s | %s | %s |" % (w, "" if c is None else c,
                                            " | ".join(fmt_mib(runs.get((t, w, c))) for t, _ in present)))

    for c in sorted({c for _, c in cells if c is not None}):
        pub, auth = runs.get(("basalt", "get", c)), runs.get(("basalt", "get-auth", c))
        if pub and auth:
            lines += ["", "Authenticated read (`get-auth`: bearer JWT + `owner = @auth.id`) against the public "
                      "read (`get`), %d connections: %.0f vs %.0f req/s (%.2f×); p99 %.1f vs %.1f ms." % (
                          c, med(auth, "rps"), med(pub, "rps"), med(auth, "rps") / med(pub, "rps"),
                          med(auth, "p99_us") / 1000, med(pub, "p99_us") / 1000)]

    bad = ["%s/%s c=%s r%s: %d error responses, %d socket errors" % (
        r["target"], r["workload"], r.get("connections"), r.get("round"), r.get("non2xx", 0), r.get("socket_errors", 0))
        for rs in runs.values() for r in rs if r.get("non2xx") or r.get("socket_errors")]
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
