#!/usr/bin/env python3
"""LL-HLS viewers per origin (issue #4): how many viewers following the live edge one townhall
origin serves on this machine, how fast each new part reaches them, how it compares with nginx
serving the same objects from disk, and how much a CDN edge in front collapses.

The program: one ffmpeg 9 WHIP publisher (the tests' `ffmpeg_publish` settings: testsrc2
640x360@30, libx264 baseline zerolatency, GOP 30, Opus), encoded once beforehand and sent with
`-re -c copy` so that encoding does not take CPU from the measurement. Default LL-HLS settings
(parts of 200 ms, segments of 2 s). Viewers: `hls_viewers` (origin/examples/hls_viewers/, a
Rust load generator that is not part of the server), one HTTP/1.1 keep-alive connection per
viewer, `Accept-Encoding: gzip` as browsers send; each viewer follows the live edge the way
hls.js does in low-latency mode: a blocking request `live.m3u8?_HLS_msn=M&_HLS_part=P` for the
next part, then the new part, every part interval. Everything on loopback (127.0.0.1); the
generator shares the 2 cores with the server.

1. Viewers per origin (COUNTS, default 1000,5000,10000; RUNS runs each, default 3): viewers
   join evenly over a ramp of 5 + N/2000 s (at most 10 s), then after 2 s of settling a 20 s
   window is measured. Figures: responses per second in the window, errors of the whole run
   by kind and status, and the delivery latency p50/p99:
     part ready = the first instant any viewer learned the part exists (the earliest arrival of
       the headers of a blocking playlist answer that lists it); the origin answers every request
       parked on a part at the wake-up that adds it, so this is the origin's availability instant
       plus the service time of the first viewer it served;
     delivery latency = arrival of the part's last byte at a viewer - part ready, for every
       viewer and every part that became ready in the window (less its last 2 s), parts loaded
       late to catch up included.
   Because "part ready" is itself observed by a client, an origin slow to answer even its first
   waiter would not show in it; `first_answer_after_media_end_ms` (part ready minus the part's
   media end: EXT-X-PROGRAM-DATE-TIME + part durations, i.e. the whole pipeline) would grow
   with the load instead, so it is reported beside.
   One extra run at the largest count with `Accept-Encoding: identity` (DIAG=1, default) shows
   what the per-request gzip of playlists costs.
2. Same object mix from nginx (RUNS runs): the newest part and the blocking playlist URI for it
   (answered at once, as it exists) requested in turn over 500 keep-alive connections, as fast
   as answers come, for 8 s after 2 s of warm-up ("saturate" mode): once from townhall (which
   renders the playlist and gzips it per request), once from nginx 1.22 serving the same part
   bytes and the same playlist text as static files (`gzip on`, level 6 as tower-http's
   default, access log off, `open_file_cache`, unlimited keep-alive requests); the order
   alternates. Ratio = townhall responses/s / nginx responses/s.
3. CDN collapse (CDN_RUNS runs, default 2): 5,000 viewers through one nginx edge
   (config/nginx-edge.conf filled in; worker_connections raised from 4096 to 16384 per worker
   because 5,000 viewers' connections may land unevenly on the 2 workers), origin with
   hls.require_cdn; the origin's own `townhall_hls_requests_total{kind}` grows by how much over
   the 20 s window, per distinct part and per distinct blocking playlist URI the viewers were
   answered in it.

Each run waits for a quiet machine first (nothing else above 10 % of a core) and is run again
(at most twice) when other processes used more than 15 % of a core during its window: the
CPU figures printed include `others`. The whole script stays under 15 minutes (about 10 on a
quiet machine; runs that would not fit are skipped and said so).

Run: .venv/bin/python scripts/bench/hls_viewers.py   (after scripts/setup.sh; needs nginx)
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, TARGET, Server, build, children, cpu_of, ffmpeg, log, machine_cpu, median, raise_fd_limit  # noqa: E402

COUNTS = [int(n) for n in os.environ.get("COUNTS", "1000,5000,10000").split(",") if n]
RUNS = int(os.environ.get("RUNS", "3"))
CDN_RUNS = int(os.environ.get("CDN_RUNS", "2"))
CDN_VIEWERS = int(os.environ.get("CDN_VIEWERS", "5000"))
DIAG = os.environ.get("DIAG", "1") == "1"
SETTLE, MEASURE = 2, 20
SAT_CONNECTIONS, SAT_WARMUP, SAT_MEASURE = 500, 2, 8
BUDGET_S = 14 * 60
SECRET = "bench-edge-secret-0123456789abcdef"
GENERATOR = os.path.join(TARGET, "release", "examples", "hls_viewers")
STARTED = time.time()


def ramp(viewers):
    return min(10.0, 5.0 + viewers / 2000)




def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]






class Nginx:
    """nginx in the foreground with a config from `make(dir, listen)`; stopped by its pid."""

    def __init__(self, make):
        self.dir = tempfile.mkdtemp(prefix="townhall-bench-nginx-")
        # nginx's workers run as an unprivileged user when the master is root: they must reach
        # the cache and temporary directories under this one.
        os.chmod(self.dir, 0o755)
        os.makedirs(os.path.join(self.dir, "tmp"))
        for _ in range(5):
            self.port = free_port()
            path = os.path.join(self.dir, "nginx.conf")
            with open(path, "w") as f:
                f.write(make(self.dir, f"127.0.0.1:{self.port}"))
            self.proc = subprocess.Popen(["nginx", "-p", self.dir, "-c", path], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "stderr"), "w"))
            deadline = time.time() + 20
            while time.time() < deadline and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                    return
                except OSError:
                    time.sleep(0.05)
            self.stop(keep=True)
        raise SystemExit(f"nginx did not start: {open(os.path.join(self.dir, 'error.log')).read()[-2000:]}")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def pids(self):
        return [self.proc.pid] + children(self.proc.pid)

    def stop(self, keep=False):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def edge_config(origin):
    with open(os.path.join(ROOT, "config", "nginx-edge.conf")) as f:
        template = f.read()

    def make(dir, listen):
        config = (template.replace("@LISTEN@", listen).replace("@ORIGIN@", origin).replace("@DIR@", dir)
                  .replace("@CDN_SECRET@", SECRET))
        assert "worker_connections 4096;" in config, "the template changed: revisit worker_connections here"
        assert "@" not in re.sub(r"#.*", "", config), "a placeholder is left"
        return config.replace("worker_connections 4096;", "worker_connections 16384;")
    return make


def static_config(root):
    def make(dir, listen):
        temp = "\n".join(f"    {k}_temp_path {dir}/tmp/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        return f"""daemon off;
master_process on;
worker_processes auto;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
{temp}
    access_log off;
    server_tokens off;
    types {{ application/vnd.apple.mpegurl m3u8; video/iso.segment m4s; video/mp4 mp4; }}
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 100000000;
    keepalive_timeout 75s;
    open_file_cache max=1000 inactive=60s;
    gzip on;
    gzip_comp_level 6;
    gzip_min_length 1;
    gzip_types application/vnd.apple.mpegurl;
    gzip_vary on;
    server {{
        listen {listen};
        root {root};
        location /hls/ {{ add_header Cache-Control "public, max-age=12"; }}
    }}
}}
"""
    return make


_FFMPEG = []


def make_input(work):
    """The tests' publisher settings, encoded once: 100 s of testsrc2 640x360@30 + Opus."""
    path = os.path.join(work, "input.mkv")
    _FFMPEG.append(ffmpeg())
    subprocess.run(
        [_FFMPEG[0], "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=sample_rate=48000",
         "-t", "100", "-c:v", "libx264", "-profile:v", "baseline", "-tune", "zerolatency", "-g", "30", "-bf", "0",
         "-pix_fmt", "yuv420p", "-c:a", "libopus", "-ar", "48000", "-ac", "2", path],
        check=True)
    return path


def publish(server, room, source, work):
    return subprocess.Popen(
        [_FFMPEG[0], "-hide_banner", "-loglevel", "error", "-re", "-i", source, "-c", "copy",
         "-f", "whip", "-authorization", room["publish_token"], server.url(f"/whip/{room['id']}?presenter=main")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "ffmpeg.log"), "a"))


def get(url, headers=None):
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
        return r.read()


def wait_live(server, room, headers=None):
    live = server.url(f"/hls/{room['id']}/live.m3u8")

    def ready():
        try:
            text = get(live, headers).decode()
        except OSError:
            return False
        return "#EXTINF" in text and text.count("#EXT-X-PART:") >= 3
    server.wait("the program's live playlist", ready, 60)




def wait_quiet(what):
    """Waits (at most 3 minutes) until nothing else on the machine uses more than 10 % of a
    core: another build or test would share the 2 cores with the measurement."""
    deadline = time.time() + 180
    while True:
        mine = [os.getpid()] + children(os.getpid())
        m0, c0 = machine_cpu(), cpu_of(mine)
        time.sleep(2)
        foreign = (machine_cpu() - m0 - (cpu_of(mine) - c0)) / 2
        if foreign < 0.10:
            return
        if time.time() > deadline:
            log(f"warning: the machine is still busy ({foreign * 100:.0f} % of a core not ours) before {what}")
            return
        log(f"waiting for the machine to be quiet before {what}: {foreign * 100:.0f} % of a core is used by others")


def run_generator(args, watch_pids, window_at, timeout):
    """Runs hls_viewers; returns its JSON summary with the CPU (% of one core) that the
    processes in `watch_pids` (name -> pid list) and the generator spent in its window, and
    what the rest of the machine spent (`others`: user+system of every process, less ours)."""
    err = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen([GENERATOR] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=err,
                            stdin=subprocess.DEVNULL, text=True)
    t0 = time.time()
    start, end = window_at
    cpu = {}
    try:
        time.sleep(max(0.0, t0 + start - time.time()))
        watch = dict(watch_pids(), generator=[proc.pid])
        # Ours: the watched processes, this script and all its children (the publisher).
        ours = sorted(set([os.getpid()] + children(os.getpid()) + [p for pids in watch.values() for p in pids]))
        before = {name: cpu_of(pids) for name, pids in watch.items()}
        m0, o0 = machine_cpu(), cpu_of(ours)
        time.sleep(max(0.0, t0 + end - time.time()))
        after = {name: cpu_of(pids) for name, pids in watch.items()}
        m1, o1 = machine_cpu(), cpu_of(ours)
        elapsed = end - start
        cpu = {name: round((after[name] - before[name]) / elapsed * 100, 1) for name in watch}
        cpu["others"] = round(max(0.0, (m1 - m0) - (o1 - o0)) / elapsed * 100, 1)
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    if proc.returncode != 0:
        err.seek(0)
        raise SystemExit(f"hls_viewers failed ({proc.returncode}): {err.read()[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["cpu_percent_of_one_core"] = cpu
    return result


def live_run(source, viewers, gzip=True):
    work = tempfile.mkdtemp(prefix="townhall-bench-viewers-")
    server = Server()
    publisher = None
    try:
        room = server.create_room()
        publisher = publish(server, room, source, work)
        wait_live(server, room)
        r = ramp(viewers)
        args = ["live", server.url(f"/hls/{room['id']}/index.m3u8"), "--viewers", viewers, "--ramp", r,
                "--settle", SETTLE, "--measure", MEASURE] + ([] if gzip else ["--identity"])
        return run_generator(args, lambda: {"server": [server.proc.pid]}, (r + SETTLE, r + SETTLE + MEASURE),
                             r + SETTLE + MEASURE + 60)
    finally:
        if publisher:
            publisher.terminate()
            publisher.wait(10)
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def newest_part(server, room, headers=None):
    """The newest listed part of the live playlist: (msn, index)."""
    text = get(server.url(f"/hls/{room['id']}/live.m3u8"), headers).decode()
    media_sequence, msn, index, newest = 0, None, 0, None
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            media_sequence = int(line.split(":")[1])
        elif line.startswith("#EXT-X-PART:"):
            msn = media_sequence if msn is None else msn
            newest = (msn, index)
            index += 1
        elif line and not line.startswith("#"):
            msn = (media_sequence if msn is None else msn) + 1
            index = 0
    return newest


def compare_run(source, run):
    """Saturation on the same object mix: townhall, then nginx from disk (or the other way)."""
    work = tempfile.mkdtemp(prefix="townhall-bench-static-")
    os.chmod(work, 0o755)  # nginx's workers read the files under it
    server = Server()
    publisher = None
    nginx = None
    results = {}
    try:
        room = server.create_room()
        publisher = publish(server, room, source, work)
        wait_live(server, room)
        time.sleep(2)
        for phase in (["townhall", "nginx"] if run % 2 == 0 else ["nginx", "townhall"]):
            msn, index = newest_part(server, room)
            playlist_path = f"/hls/{room['id']}/live.m3u8?_HLS_msn={msn}&_HLS_part={index}"
            part_path = f"/hls/{room['id']}/part-{msn}.{index}.m4s"
            # The objects townhall serves at this moment (nginx gets them as files).
            playlist_bytes, part_bytes = get(server.url(playlist_path)), get(server.url(part_path))
            if phase == "nginx":
                www = os.path.join(work, "www")
                os.makedirs(os.path.join(www, "hls", room["id"]), exist_ok=True)
                with open(os.path.join(www, "hls", room["id"], "live.m3u8"), "wb") as f:
                    f.write(playlist_bytes)
                with open(os.path.join(www, part_path.lstrip("/")), "wb") as f:
                    f.write(part_bytes)
                nginx = Nginx(static_config(www))
                urls = [nginx.url(playlist_path), nginx.url(part_path)]
                watch = lambda: {"server": [server.proc.pid], "nginx": nginx.pids()}  # noqa: E731
            else:
                urls = [server.url(playlist_path), server.url(part_path)]
                watch = lambda: {"server": [server.proc.pid]}  # noqa: E731
            args = ["saturate"] + urls + ["--connections", SAT_CONNECTIONS, "--warmup", SAT_WARMUP,
                                          "--measure", SAT_MEASURE]
            results[phase] = run_generator(args, watch, (SAT_WARMUP, SAT_WARMUP + SAT_MEASURE),
                                           SAT_WARMUP + SAT_MEASURE + 60)
            results[phase]["object_bytes"] = {"playlist": len(playlist_bytes), "part": len(part_bytes)}
            if nginx:
                nginx.stop()
                nginx = None
        return results
    finally:
        if nginx:
            nginx.stop()
        if publisher:
            publisher.terminate()
            publisher.wait(10)
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def cdn_run(source, viewers):
    work = tempfile.mkdtemp(prefix="townhall-bench-cdn-")
    server = Server({"TOWNHALL_HLS_CDN_SECRET": SECRET, "TOWNHALL_HLS_REQUIRE_CDN": "true"})
    publisher = None
    edge = None
    try:
        edge = Nginx(edge_config(server.http))
        room = server.create_room()
        publisher = publish(server, room, source, work)
        wait_live(server, room, {"X-Townhall-CDN": SECRET})
        r = ramp(viewers)
        args = ["live", edge.url(f"/hls/{room['id']}/index.m3u8"), "--viewers", viewers, "--ramp", r,
                "--settle", SETTLE, "--measure", MEASURE, "--metrics", server.url("/metrics")]
        return run_generator(args, lambda: {"server": [server.proc.pid], "nginx": edge.pids()},
                             (r + SETTLE, r + SETTLE + MEASURE), r + SETTLE + MEASURE + 60)
    finally:
        if edge:
            edge.stop()
        if publisher:
            publisher.terminate()
            publisher.wait(10)
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def fits(estimate_s, what, skipped):
    if time.time() - STARTED + estimate_s > BUDGET_S:
        log(f"skipped (15-minute budget): {what}")
        skipped.append(what)
        return False
    return True


def others_cpu(result):
    phases = [result[k] for k in ("townhall", "nginx") if k in result] or [result]
    return max(p["cpu_percent_of_one_core"].get("others", 0) for p in phases)


def measure(what, estimate_s, skipped, run):
    """One run on a quiet machine: waits for quiet, and runs again (at most twice more) when
    other processes used more than 15 % of a core during the window. None if out of time."""
    result = None
    for attempt in range(3):
        if not fits(estimate_s, what if attempt == 0 else f"{what} (again)", skipped):
            break
        wait_quiet(what)
        result = run()
        if others_cpu(result) <= 15:
            return result
        log(f"{what}: other processes used {others_cpu(result)} % of a core during the window: "
            + ("run again" if attempt < 2 else "kept, marked disturbed"))
        result["disturbed"] = True
    return result


def summary_errors(results):
    total = {}
    for r in results:
        for k, n in r["errors"].items():
            total[k] = total.get(k, 0) + n
        if r.get("unfinished"):
            total["unfinished"] = total.get("unfinished", 0) + r["unfinished"]
    return total


def us_per_response(result, process):
    return result["cpu_percent_of_one_core"][process] / 100 / max(1, result["requests_per_s"]) * 1e6


def main():
    # Per process: the generator holds one socket per viewer, the server (or edge) one per viewer.
    raise_fd_limit(max(COUNTS + [CDN_VIEWERS]) + 1000)
    if not shutil.which("nginx"):
        raise SystemExit("nginx is needed (scripts/setup.sh installs it)")
    build()
    work = tempfile.mkdtemp(prefix="townhall-bench-input-")
    skipped = []
    report = {"live": {}, "identity": None, "compare": [], "cdn": []}
    try:
        source = make_input(work)
        # Smallest first, and the runs of one count one after the other.
        for viewers in COUNTS:
            runs = []
            for run in range(RUNS):
                what = f"{viewers} viewers, run {run + 1}"
                result = measure(what, ramp(viewers) + SETTLE + MEASURE + 25, skipped,
                                 lambda: live_run(source, viewers))
                if result:
                    log(f"{what}: {json.dumps(result)}")
                    runs.append(result)
            report["live"][viewers] = runs
        if DIAG and COUNTS:
            what = f"{max(COUNTS)} viewers, Accept-Encoding identity"
            report["identity"] = measure(what, ramp(max(COUNTS)) + SETTLE + MEASURE + 25, skipped,
                                         lambda: live_run(source, max(COUNTS), gzip=False))
            if report["identity"]:
                log(f"{what}: {json.dumps(report['identity'])}")
        for run in range(RUNS):
            what = f"townhall vs nginx, run {run + 1}"
            result = measure(what, 2 * (SAT_WARMUP + SAT_MEASURE) + 20, skipped, lambda: compare_run(source, run))
            if result:
                log(f"{what}: {json.dumps(result)}")
                report["compare"].append(result)
        for run in range(CDN_RUNS):
            what = f"CDN edge, {CDN_VIEWERS} viewers, run {run + 1}"
            result = measure(what, ramp(CDN_VIEWERS) + SETTLE + MEASURE + 25, skipped,
                             lambda: cdn_run(source, CDN_VIEWERS))
            if result:
                log(f"{what}: {json.dumps(result)}")
                report["cdn"].append(result)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("\nviewers per origin (medians of the runs; errors summed over the runs)")
    print("| viewers | runs | responses/s | Mbit/s | delivery p50 | delivery p99 | first answer after media end p50 "
          "| min viewers per part | server CPU | generator CPU | errors |")
    for viewers, runs in report["live"].items():
        if not runs:
            continue
        m = lambda f: median([f(r) for r in runs])  # noqa: E731
        print(f"| {viewers} | {len(runs)} | {m(lambda r: r['requests_per_s']):.0f} | {m(lambda r: r['mbit_per_s']):.0f} "
              f"| {m(lambda r: r['delivery_ms']['p50'] or 0):.1f} ms | {m(lambda r: r['delivery_ms']['p99'] or 0):.1f} ms "
              f"| {m(lambda r: r['first_answer_after_media_end_ms']['p50'] or 0):.0f} ms "
              f"| {m(lambda r: r['deliveries_per_part']['min'] or 0):.0f} "
              f"| {m(lambda r: r['cpu_percent_of_one_core']['server']):.0f} % "
              f"| {m(lambda r: r['cpu_percent_of_one_core']['generator']):.0f} % | {summary_errors(runs) or 0} |")
        print(f"  per run: p50 {[r['delivery_ms']['p50'] for r in runs]}, p99 {[r['delivery_ms']['p99'] for r in runs]}, "
              f"responses/s {[r['requests_per_s'] for r in runs]}, other processes' CPU "
              f"{[r['cpu_percent_of_one_core']['others'] for r in runs]} %"
              + (f", {sum(1 for r in runs if r.get('disturbed'))} disturbed" if any(r.get("disturbed") for r in runs) else ""))
    if report["identity"]:
        r = report["identity"]
        print(f"{max(COUNTS)} viewers without gzip (1 run): {r['requests_per_s']:.0f} responses/s, delivery p50 "
              f"{r['delivery_ms']['p50']} ms, p99 {r['delivery_ms']['p99']} ms, server CPU "
              f"{r['cpu_percent_of_one_core']['server']} %, errors {summary_errors([r]) or 0}")
    if report["compare"]:
        ratios = [c["townhall"]["requests_per_s"] / max(1, c["nginx"]["requests_per_s"]) for c in report["compare"]]
        print(f"\nsame object mix, {SAT_CONNECTIONS} connections: townhall "
              f"{median([c['townhall']['requests_per_s'] for c in report['compare']]):.0f} responses/s, nginx "
              f"{median([c['nginx']['requests_per_s'] for c in report['compare']]):.0f} responses/s; "
              f"townhall / nginx = {median(ratios):.2f} (per run: {[round(x, 2) for x in ratios]}); server CPU per "
              f"response: townhall {median([us_per_response(c['townhall'], 'server') for c in report['compare']]):.1f} µs, "
              f"nginx {median([us_per_response(c['nginx'], 'nginx') for c in report['compare']]):.1f} µs; errors: "
              f"townhall {summary_errors([c['townhall'] for c in report['compare']]) or 0}, nginx "
              f"{summary_errors([c['nginx'] for c in report['compare']]) or 0}")
    if report["cdn"]:
        for kind in ("part", "blocking_playlist"):
            per = [c["origin_requests"].get(kind, 0) / max(1, c["distinct"][kind]) for c in report["cdn"]]
            print(f"CDN edge, {CDN_VIEWERS} viewers: origin {kind} requests / distinct {kind}s = "
                  f"{[(c['origin_requests'].get(kind, 0), c['distinct'][kind]) for c in report['cdn']]} "
                  f"-> {[round(x, 2) for x in per]}")
        print(f"  through the edge: errors {summary_errors(report['cdn']) or 0}, delivery p50 "
              f"{[c['delivery_ms']['p50'] for c in report['cdn']]} ms, p99 {[c['delivery_ms']['p99'] for c in report['cdn']]} ms")
    if skipped:
        print(f"skipped to stay within 15 minutes: {skipped}")
    print(f"total {time.time() - STARTED:.0f} s")
    out = os.path.join(tempfile.gettempdir(), "townhall-hls-viewers.json")
    with open(out, "w") as f:
        json.dump(report, f)
    print(f"every run's figures: {out}")


if __name__ == "__main__":
    main()
