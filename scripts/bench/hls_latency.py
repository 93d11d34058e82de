#!/usr/bin/env python3
"""LL-HLS glass-to-glass latency (canvas timecode → WHIP → program → hls.js low-latency mode on
the watch page): runs hls_latency.mjs RUNS times (default 3) for DURATION seconds (default 60)
and prints the median p50/p95, hls.js's own latency, and the ratio of p50 to the protocol's
floor PART-HOLD-BACK + one part (3 × 0.21 + 0.21 = 0.84 s at the default 200 ms parts).

Run: .venv/bin/python scripts/bench/hls_latency.py   (after scripts/setup.sh)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import build, median, run_node_benchmark  # noqa: E402

RUNS = int(os.environ.get("RUNS", "3"))
DURATION = int(os.environ.get("DURATION", "60"))
FLOOR_S = 4 * 0.21


def main():
    build()
    results = run_node_benchmark("hls_latency.mjs", RUNS, DURATION)
    p50 = median([r["p50_ms"] for r in results])
    print(f"LL-HLS glass-to-glass over {RUNS} runs of {DURATION} s: p50 {p50} ms, "
          f"p95 {median([r['p95_ms'] for r in results])} ms, "
          f"hls.latency p50 {median([r['hls_latency_p50_ms'] for r in results])} ms; "
          f"p50 / (PART-HOLD-BACK + one part) = {p50 / 1000 / FLOOR_S:.2f}")


if __name__ == "__main__":
    main()
