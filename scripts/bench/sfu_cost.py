#!/usr/bin/env python3
"""SFU forwarding cost: server CPU per WHEP subscriber for one 1.5 Mbit/s, 30 fps publisher.

One ffmpeg 9 WHIP publisher (libx264 1280x720@30, 1.5 Mbit/s CBR-ish, Opus) feeds a room; then
`whep_load` (ingest/examples) opens 1, 10 and 50 lightweight subscribers (they decrypt, they do
not decode). For each count, the server's CPU time (utime+stime from /proc) is measured over a
15 s window once every subscriber is receiving, three runs each; medians are printed, with the
marginal cost per subscriber and the subscribers one core would carry.

Run: .venv/bin/python scripts/bench/sfu_cost.py   (after scripts/setup.sh)
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import TARGET, Server, build, ffmpeg, log, median  # noqa: E402

WINDOW = 15.0
RUNS = int(os.environ.get("RUNS", "3"))
COUNTS = [int(c) for c in os.environ.get("COUNTS", "1,10,50").split(",")]


def measure(server, seconds):
    c0, t0 = server.cpu_seconds(), time.time()
    time.sleep(seconds)
    return (server.cpu_seconds() - c0) / (time.time() - t0)


def main():
    build()
    server = Server()
    room = server.create_room()
    whip = server.url(f"/whip/{room['id']}?presenter=main")
    total = 20 + len(COUNTS) * RUNS * (WINDOW + 20) + 60
    publisher = subprocess.Popen(
        [ffmpeg(), "-hide_banner", "-loglevel", "error", "-re",
         "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30", "-f", "lavfi", "-i", "sine=sample_rate=48000",
         "-t", str(int(total)),
         "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-profile:v", "baseline",
         "-b:v", "1500k", "-maxrate", "1500k", "-bufsize", "1500k", "-g", "60", "-bf", "0", "-pix_fmt", "yuv420p",
         "-c:a", "libopus", "-b:a", "64k", "-ar", "48000", "-ac", "2",
         "-f", "whip", "-authorization", room["publish_token"], whip],
        stdin=subprocess.DEVNULL)
    try:
        server.wait("the publisher", lambda: server.metric("video_frames_total") > 60)
        time.sleep(3)
        rx0, t0 = server.metric("udp_received_bytes_total"), time.time()
        baseline = [measure(server, WINDOW) for _ in range(RUNS)]
        ingest_mbps = (server.metric("udp_received_bytes_total") - rx0) * 8 / (time.time() - t0) / 1e6
        rows = []
        for count in COUNTS:
            runs = []
            for _ in range(RUNS):
                load = subprocess.Popen(
                    [os.path.join(TARGET, "release", "examples", "whep_load"),
                     server.url(f"/whep/{room['id']}"), str(count), str(WINDOW + 12)],
                    stdout=subprocess.PIPE, text=True)
                server.wait("subscribers connected", lambda: server.metric("subscribers_active") >= count, 60)
                time.sleep(4)
                fwd0 = server.metric("rtp_forwarded_packets_total")
                cpu = measure(server, WINDOW)
                pps = (server.metric("rtp_forwarded_packets_total") - fwd0) / WINDOW
                out, _ = load.communicate(timeout=120)
                result = json.loads(out.strip().splitlines()[-1])
                runs.append((cpu, pps, result))
                server.wait("subscribers gone", lambda: server.metric("subscribers_active") == 0, 60)
            cpu = median([r[0] for r in runs])
            pps = median([r[1] for r in runs])
            rows.append((count, cpu, pps, runs[-1][2]))
            log(f"{count} subscribers: cpu {cpu:.4f} cores, {pps:.0f} packets/s forwarded")
        base = median(baseline)
        print(f"publisher ingest: {ingest_mbps:.2f} Mbit/s; server CPU with no subscriber: {base * 100:.2f} % of a core (median of {RUNS})")
        print("| subscribers | server CPU (% of a core) | forwarded packets/s | CPU per subscriber (% of a core) | subscribers per core |")
        print("|---:|---:|---:|---:|---:|")
        for count, cpu, pps, result in rows:
            per = (cpu - base) / count
            per_core = 1 / per if per > 0 else float("inf")
            print(f"| {count} | {cpu * 100:.2f} | {pps:.0f} | {per * 100:.3f} | {per_core:.0f} |")
        last = rows[-1]
        print(f"min packets per subscriber at {last[0]}: {last[3]['packets_min']} (median {last[3]['packets_median']})")
    finally:
        publisher.terminate()
        publisher.wait(10)
        server.stop()


if __name__ == "__main__":
    main()
