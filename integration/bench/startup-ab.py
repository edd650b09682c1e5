#!/usr/bin/env python3
"""A/B of two netshim builds' start-up, interleaved round by round.

    sudo python3 integration/bench/startup-ab.py OLD_BINARY NEW_BINARY [ROUNDS]

Times `BINARY run --target-netns netns:NS -- true` (NS an `ip netns` made
here and removed at the end), alternating which binary goes first, and
prints each one's median and the per-round NEW / OLD ratio with its spread.
"""
import os
import statistics
import subprocess
import sys
import time

old, new = sys.argv[1], sys.argv[2]
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 60
ns = f"nsab-{os.getpid()}"
subprocess.run(["ip", "netns", "add", ns], check=True)
try:
    res = {"old": [], "new": []}
    for i in range(rounds):
        order = [("old", old), ("new", new)]
        if i % 2:
            order.reverse()
        for name, b in order:
            t = time.perf_counter()
            subprocess.run([b, "run", "--target-netns", f"netns:{ns}", "--", "true"], check=True)
            res[name].append((time.perf_counter() - t) * 1000)
    for k, v in res.items():
        s = sorted(v)
        print(f"{k}: median {statistics.median(v):.2f} ms, p10 {s[len(s) // 10]:.2f}, p90 {s[len(s) * 9 // 10]:.2f}")
    r = sorted(n / o for n, o in zip(res["new"], res["old"]))
    print(f"new/old per round: median {statistics.median(r):.3f}, p10-p90 {r[len(r) // 10]:.3f}-{r[len(r) * 9 // 10]:.3f}")
finally:
    subprocess.run(["ip", "netns", "del", ns])
