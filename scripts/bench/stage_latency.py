#!/usr/bin/env python3
"""Stage glass-to-glass latency (WHIP → SFU → WHEP) in Chromium: runs stage_latency.mjs against
the real server RUNS times (default 3) for DURATION seconds each (default 30) and prints the
median p50/p95 over the runs.

Run: .venv/bin/python scripts/bench/stage_latency.py   (after scripts/setup.sh)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import build, median, run_node_benchmark  # noqa: E402

RUNS = int(os.environ.get("RUNS", "3"))
DURATION = int(os.environ.get("DURATION", "30"))


def main():
    build()
    results = run_node_benchmark("stage_latency.mjs", RUNS, DURATION, extra_timeout=180)
    print(f"stage glass-to-glass over {RUNS} runs of {DURATION} s: "
          f"p50 {median([r['p50_ms'] for r in results])} ms, p95 {median([r['p95_ms'] for r in results])} ms "
          f"(frames per run: {[r['frames'] for r in results]}, undecodable: {[r['undecodable'] for r in results]})")


if __name__ == "__main__":
    main()
