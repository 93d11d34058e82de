#!/usr/bin/env python3
"""Stage glass-to-glass latency (WHIP → SFU → WHEP) in Chromium: runs stage_latency.mjs against
the real server RUNS times (default 3) for DURATION seconds each (default 30) and prints the median
p50/p95 over the runs.

Run: .venv/bin/python scripts/bench/stage_latency.py   (after scripts/setup.sh)
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, Server, build, log, median  # noqa: E402

RUNS = int(os.environ.get("RUNS", "3"))
SECONDS = int(os.environ.get("DURATION", "30"))


def main():
    build()
    results = []
    for run in range(RUNS):
        server = Server()
        try:
            room = server.create_room()
            out = subprocess.run(
                ["node", os.path.join(ROOT, "scripts", "bench", "stage_latency.mjs"), server.url(""), room["id"],
                 room["publish_token"], str(SECONDS)],
                cwd=ROOT, capture_output=True, text=True, timeout=SECONDS + 180)
            if out.returncode != 0:
                raise SystemExit(out.stderr)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            log(f"run {run + 1}: {result}")
            results.append(result)
        finally:
            server.stop()
    print(f"stage glass-to-glass over {RUNS} runs of {SECONDS} s: "
          f"p50 {median([r['p50_ms'] for r in results])} ms, p95 {median([r['p95_ms'] for r in results])} ms "
          f"(frames per run: {[r['frames'] for r in results]}, undecodable: {[r['undecodable'] for r in results]})")


if __name__ == "__main__":
    main()
