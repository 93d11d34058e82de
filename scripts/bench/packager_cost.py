#!/usr/bin/env python3
"""Packager cost: server CPU for one 720p30 2.5 Mbit/s program (H.264 passed through, Opus →
AAC-LC, CMAF parts and segments, LL-HLS playlists), as a ratio to Debian's ffmpeg 5.1 doing the
same packaging of the same input in the same run:
`ffmpeg -re -i input -c:v copy -c:a aac -f hls -hls_segment_type fmp4 ...`.

The input is made once (libx264 baseline 1280x720@30, 2.5 Mbit/s, no B-frames, Opus). townhall
gets it over WHIP from ffmpeg 9 (`-c copy`), once with the program (`hls.enabled = true`) and
once stage-only (`false`): the difference is the packager's own cost (timeline, Opus → AAC,
CMAF, playlists, segment files), which is compared with ffmpeg; the whole server's cost (WebRTC
ingest included, which ffmpeg's file input does not pay) is reported too.
CPU is utime+stime from /proc over a 40 s window; RUNS runs (default 3), medians.

Run: .venv/bin/python scripts/bench/packager_cost.py   (after scripts/setup.sh)
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Server, build, cpu_seconds, ffmpeg, log, median  # noqa: E402

RUNS = int(os.environ.get("RUNS", "3"))
WINDOW = 40.0


def main():
    build()
    work = tempfile.mkdtemp(prefix="townhall-packager-bench-")
    source = os.path.join(work, "input.mkv")
    subprocess.run(
        [ffmpeg(), "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30", "-f", "lavfi", "-i", "sine=sample_rate=48000",
         "-t", str(int(WINDOW + 25)),
         "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "baseline", "-b:v", "2500k", "-maxrate", "2500k",
         "-bufsize", "2500k", "-g", "60", "-bf", "0", "-pix_fmt", "yuv420p",
         "-c:a", "libopus", "-b:a", "64k", "-ar", "48000", "-ac", "2", source],
        check=True)
    ours, theirs, stage_only = [], [], []
    for run in range(RUNS * 2):
        with_program = run % 2 == 0
        server = Server({} if with_program else {"TOWNHALL_HLS_ENABLED": "false"})
        room = server.create_room()
        publisher = subprocess.Popen(
            [ffmpeg(), "-hide_banner", "-loglevel", "error", "-re", "-i", source, "-c", "copy",
             "-f", "whip", "-authorization", room["publish_token"], server.url(f"/whip/{room['id']}")],
            stdin=subprocess.DEVNULL)
        out_dir = os.path.join(work, f"ffmpeg-hls-{run}")
        os.makedirs(out_dir)
        reference = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", source,
             "-c:v", "copy", "-c:a", "aac", "-b:a", "128k", "-f", "hls", "-hls_time", "2",
             "-hls_segment_type", "fmp4", "-hls_flags", "independent_segments", "-hls_list_size", "10",
             os.path.join(out_dir, "index.m3u8")],
            stdin=subprocess.DEVNULL)
        try:
            server.wait("the program", lambda: server.metric("video_frames_total") > 90, 60)
            time.sleep(5)
            s0, r0, t0 = server.cpu_seconds(), cpu_seconds(reference.pid), time.time()
            time.sleep(WINDOW)
            elapsed = time.time() - t0
            server_cpu = (server.cpu_seconds() - s0) / elapsed
            if with_program:
                ours.append(server_cpu)
                theirs.append((cpu_seconds(reference.pid) - r0) / elapsed)
                log(f"run {run + 1}: townhall {server_cpu * 100:.2f} % of a core, ffmpeg {theirs[-1] * 100:.2f} %")
            else:
                stage_only.append(server_cpu)
                log(f"run {run + 1}: townhall stage-only {server_cpu * 100:.2f} % of a core")
        finally:
            for p in (publisher, reference):
                p.terminate()
                p.wait(10)
            server.stop()
    shutil.rmtree(work, ignore_errors=True)
    a, b, c = median(ours), median(theirs), median(stage_only)
    print(f"townhall with the program: {a * 100:.2f} % of a core; stage only: {c * 100:.2f} %; "
          f"packager = {(a - c) * 100:.2f} %; ffmpeg 5.1 HLS fMP4: {b * 100:.2f} %")
    print(f"packager / ffmpeg = {(a - c) / b:.2f}; whole server / ffmpeg = {a / b:.2f} "
          f"(per run: {[round(x / y, 2) for x, y in zip(ours, theirs)]})")


if __name__ == "__main__":
    main()
