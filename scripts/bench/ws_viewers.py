#!/usr/bin/env python3
"""WebSocket viewers in one room (issue #5): a poll answered by every viewer within 10 s ("please
vote now"), and chat at 100 messages/s delivered to every viewer, with the delivery delays and
the server's CPU.

The load: `ws_viewers` (examples/ws_viewers/, a Rust load generator that is not part of the
server). N attendees connect to `/ws/{room}` of a fresh `townhall serve` on loopback, evenly over
a ramp of max(2, N/1000) s (at most 10 s), from 127.0.0.1-4 (an ephemeral port range each), and
read everything from then on; the host (the room's host token from `POST /api/rooms`) runs on its
own thread of the generator. Defaults of the server throughout (`websocket.queue_events` 1024,
`results_interval_ms` 500, hosts exempt from the chat rate limit); no publisher (program time is
the wall clock). The generator shares the 2 cores with the server.

1. vote: the host creates a poll of 4 options and opens it; each viewer votes once at a uniformly
   random instant within 10 s of the open; the host closes the poll when every vote has its ack.
   Figures: the time from the open until the last ack (goal: <= 10 s plus the ack latency), ack
   latency p50/p99, errors by code, `poll_opened` delivery delay p50/p99 over all viewers, and
   whether `poll_closed` counts every vote (sum = N, per option as voted) at every viewer.
2. chat: the host sends 100 messages/s for 20 s; delivery delay = receipt at a viewer - the
   host's send instant (one process, one monotonic clock), over every (message, viewer) pair:
   p50/p99/max; lost pairs (expected N x messages). The run waits at most 20 s after the last
   send for the deliveries still under way.
In both, a viewer more than 1024 events behind is told to `resync` and cut off; it reconnects
with `since` after a random pause of up to 1 s, as a client does (the missed events come then,
late). `resync` notices are counted (the goal is 0).

CPU (% of one core, user + system from /proc) of the server, of the generator and of everything
else (`others`) is sampled over each scenario's window: vote = poll open until the last ack,
chat = the 20 s of sending. Each run waits for a quiet machine first (other processes < 10 % of a
core, bounded) and is run once more if others used more than 15 % of a core in a window (if the
budget allows; otherwise it is kept and marked disturbed). The script stays under 15 minutes:
runs that would not fit are skipped and said so.

Run: python3 scripts/bench/ws_viewers.py   [COUNTS=1000,5000,10000] [RUNS=3] [SKIP_BUILD=1]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, TARGET, Server, cpu_of, children, log, machine_cpu, median, raise_fd_limit  # noqa: E402

COUNTS = [int(n) for n in os.environ.get("COUNTS", "1000,5000,10000").split(",") if n]
RUNS = int(os.environ.get("RUNS", "3"))
VOTE_WINDOW, CHAT_RATE, CHAT_SECONDS, TIMEOUT, SETTLE = 10, 100, 20, 20, 2
BUDGET_S = 14.5 * 60
GENERATOR = os.path.join(TARGET, "release", "examples", "ws_viewers")
STARTED = time.time()


def ramp(viewers):
    return min(10.0, max(2.0, viewers / 1000))


def estimate(viewers):
    """Seconds one run takes at most: start, ramp, settles, vote (+ its stragglers), chat and
    its drain, stop."""
    return 5 + ramp(viewers) + 3 * SETTLE + VOTE_WINDOW + 5 + CHAT_SECONDS + TIMEOUT + 5


def build():
    if os.environ.get("SKIP_BUILD") == "1":
        return
    env = dict(os.environ, CARGO_TARGET_DIR=TARGET)
    for what in (["--bin", "townhall"], ["--examples"]):
        subprocess.run(["cargo", "build", "--release", "--workspace"] + what, cwd=ROOT, env=env, check=True)










def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return None


def wait_quiet(what, limit_s):
    """Waits (at most `limit_s`) until nothing else uses more than 10 % of a core."""
    deadline = time.time() + max(0, limit_s)
    while True:
        mine = [os.getpid()] + children(os.getpid())
        m0, c0 = machine_cpu(), cpu_of(mine)
        time.sleep(2)
        foreign = (machine_cpu() - m0 - (cpu_of(mine) - c0)) / 2
        if foreign < 0.10:
            return True
        if time.time() > deadline:
            log(f"warning: the machine is still busy ({foreign * 100:.0f} % of a core not ours) before {what}")
            return False
        log(f"waiting for a quiet machine before {what}: {foreign * 100:.0f} % of a core is used by others")


class Sampler:
    """CPU seconds of the server, the generator and the machine at the generator's marks."""

    def __init__(self, server_pid, generator_pid):
        self.pids = {"server": [server_pid], "generator": [generator_pid]}
        self.marks = {}

    def sample(self, mark):
        ours = sorted(set([os.getpid()] + children(os.getpid()) + [p for ps in self.pids.values() for p in ps]))
        self.marks[mark] = {"wall": time.time(), "machine": machine_cpu(), "ours": cpu_of(ours),
                            **{name: cpu_of(pids) for name, pids in self.pids.items()}}

    def window(self, begin, end):
        a, b = self.marks.get(begin), self.marks.get(end)
        if not a or not b or b["wall"] <= a["wall"]:
            return None
        elapsed = b["wall"] - a["wall"]
        cpu = {name: round((b[name] - a[name]) / elapsed * 100, 1) for name in self.pids}
        cpu["others"] = round(max(0.0, (b["machine"] - a["machine"]) - (b["ours"] - a["ours"])) / elapsed * 100, 1)
        return cpu


def one_run(viewers, seed):
    server = Server()
    proc = None
    try:
        room = server.create_room()
        url = server.url(f"/ws/{room['id']}").replace("http://", "ws://")
        args = [GENERATOR, url, "--host-token", room["host_token"], "--viewers", str(viewers),
                "--ramp", str(ramp(viewers)), "--sources", "4", "--settle", str(SETTLE),
                "--vote-window", str(VOTE_WINDOW), "--chat-rate", str(CHAT_RATE),
                "--chat-seconds", str(CHAT_SECONDS), "--timeout", str(TIMEOUT), "--seed", str(seed)]
        err = tempfile.TemporaryFile(mode="w+")
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True)
        # Every loop here is bounded: the generator is killed if it outlives its estimate.
        watchdog = threading.Timer(estimate(viewers) + 60, proc.kill)
        watchdog.start()
        sampler = Sampler(server.proc.pid, proc.pid)
        results, server_rss = {}, None
        try:
            for line in proc.stdout:
                message = json.loads(line)
                if "mark" in message:
                    sampler.sample(message["mark"])
                    if message["mark"] == "connected":
                        server_rss = rss_mb(server.proc.pid)
                elif "scenario" in message:
                    results[message["scenario"]] = message
            proc.wait(30)
        finally:
            watchdog.cancel()
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"ws_viewers failed ({proc.returncode}): {err.read()[-3000:]}")
        results["connect"]["server_rss_mb"] = server_rss
        for scenario, (begin, end) in {"vote": ("vote_begin", "vote_end"), "chat": ("chat_begin", "chat_end")}.items():
            if scenario in results:
                results[scenario]["cpu_percent_of_one_core"] = sampler.window(begin, end)
        # The server's own counts: clients told to resync, and cut off (a send timed out).
        results["server_metrics"] = {name: metric_or_none(server, name) for name in ("ws_resyncs_total", "ws_cut_off_total")}
        return results
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


def metric_or_none(server, name):
    try:
        return server.metric(name)
    except (OSError, AttributeError):  # unreachable, or no such metric
        return None


def others(result):
    return max((result[s]["cpu_percent_of_one_core"] or {}).get("others", 0) for s in ("vote", "chat") if s in result)


def fits(estimate_s):
    return time.time() - STARTED + estimate_s <= BUDGET_S


def measure(viewers, run, skipped):
    """One run on a quiet machine, once more if it was disturbed and the budget allows."""
    what = f"{viewers} viewers, run {run + 1}"
    result = None
    for attempt in range(2):
        if not fits(estimate(viewers) + 10):
            skipped.append(what if attempt == 0 else f"{what} (again, disturbed)")
            log(f"skipped (15-minute budget): {skipped[-1]}")
            break
        wait_quiet(what, min(120, BUDGET_S - (time.time() - STARTED) - estimate(viewers)))
        result = one_run(viewers, seed=run + 1)
        log(f"{what}: {json.dumps(result)}")
        if others(result) <= 15:
            return result
        log(f"{what}: other processes used {others(result)} % of a core during a window")
        result["disturbed"] = True
    return result


def fmt(value, unit="", digits=1):
    if value is None:
        return "–"
    return f"{value:.{digits}f}{unit}"


def summarize(report):
    print("\nvote: every viewer votes once within 10 s of the open (medians of the runs)")
    print("| viewers | runs | all acked after | ack p50 | ack p99 | vote errors | poll_opened p50 | poll_opened p99 "
          "| final sum = viewers (runs) | server CPU | generator CPU | others |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for viewers, runs in report.items():
        votes = [r["vote"] for r in runs if "vote" in r]
        if not votes:
            continue
        m = lambda f: median([f(v) for v in votes if f(v) is not None] or [None]) if any(f(v) is not None for v in votes) else None  # noqa: E731,E501
        errors = sum(sum(v["errors"].values()) for v in votes)
        exact = sum(1 for v in votes if v["final_sum"] == v["viewers"] and v["final_counts_as_voted"]
                    and v["poll_closed_at_viewers"] == v["viewers"])
        print(f"| {viewers} | {len(votes)} | {fmt(m(lambda v: v['all_acked_s']), ' s', 2)} "
              f"| {fmt(m(lambda v: v['ack_ms']['p50']), ' ms')} | {fmt(m(lambda v: v['ack_ms']['p99']), ' ms')} "
              f"| {errors} | {fmt(m(lambda v: v['poll_opened_ms']['p50']), ' ms')} "
              f"| {fmt(m(lambda v: v['poll_opened_ms']['p99']), ' ms')} | {exact}/{len(votes)} "
              f"| {fmt(m(lambda v: (v['cpu_percent_of_one_core'] or {}).get('server')), ' %', 0)} "
              f"| {fmt(m(lambda v: (v['cpu_percent_of_one_core'] or {}).get('generator')), ' %', 0)} "
              f"| {fmt(m(lambda v: (v['cpu_percent_of_one_core'] or {}).get('others')), ' %', 0)} |")
        print(f"  per run: all acked after {[v['all_acked_s'] for v in votes]} s, acked {[v['acked'] for v in votes]}, "
              f"ack p99 {[v['ack_ms']['p99'] for v in votes]} ms, errors {[v['errors'] for v in votes]}, "
              f"resyncs {[v['resyncs'] for v in votes]} ({[v['viewers_resynced'] for v in votes]} viewers), host resyncs "
              f"{[v['host_resyncs'] for v in votes]}, ended early {[v['ended_early'] for v in votes]}")
    print("\nchat: the host sends 100 messages/s for 20 s; delay = receipt - send, every (message, viewer) pair "
          "(medians of the runs)")
    print("| viewers | runs | deliveries/s | delay p50 | delay p99 | delay max | lost | resyncs | host send late p99 "
          "| server CPU | generator CPU | others | server RSS |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for viewers, runs in report.items():
        chats = [(r["chat"], r["connect"]) for r in runs if "chat" in r]
        if not chats:
            continue
        m = lambda f: median([f(c, k) for c, k in chats if f(c, k) is not None]) if any(f(c, k) is not None for c, k in chats) else None  # noqa: E731,E501
        cpu = lambda name: m(lambda c, k: (c["cpu_percent_of_one_core"] or {}).get(name))  # noqa: E731
        print(f"| {viewers} | {len(chats)} | {fmt(m(lambda c, k: c['expected'] / max(1, c['send_seconds'])), '', 0)} "
              f"| {fmt(m(lambda c, k: c['delay_ms']['p50']), ' ms')} | {fmt(m(lambda c, k: c['delay_ms']['p99']), ' ms')} "
              f"| {fmt(m(lambda c, k: c['delay_ms']['max']), ' ms')} | {fmt(m(lambda c, k: c['lost']), '', 0)} "
              f"| {fmt(m(lambda c, k: c['resyncs']), '', 0)} | {fmt(m(lambda c, k: c['send_late_ms']['p99']), ' ms')} "
              f"| {fmt(cpu('server'), ' %', 0)} | {fmt(cpu('generator'), ' %', 0)} | {fmt(cpu('others'), ' %', 0)} "
              f"| {fmt(m(lambda c, k: k.get('server_rss_mb')), ' MB', 0)} |")
        print(f"  per run: p50 {[c['delay_ms']['p50'] for c, _ in chats]} ms, p99 {[c['delay_ms']['p99'] for c, _ in chats]} ms, "
              f"lost {[c['lost'] for c, _ in chats]} of {[c['expected'] for c, _ in chats]}, "
              f"resyncs {[c['resyncs'] for c, _ in chats]} ({[c['viewers_resynced'] for c, _ in chats]} viewers), host resyncs "
              f"{[c['host_resyncs'] for c, _ in chats]}, drain {[c['drain_after_last_send_s'] for c, _ in chats]} s, "
              f"disturbed {sum(1 for r in runs if r.get('disturbed'))}")
    print("\nconnect: " + "; ".join(
        f"{viewers}: welcomed {[r['connect']['welcomed'] for r in runs]}, connect->welcome p99 "
        f"{[r['connect']['connect_to_welcome_ms']['p99'] for r in runs]} ms, errors {[r['connect']['errors'] for r in runs]}"
        for viewers, runs in report.items() if runs))


def main():
    # The generator holds one socket per viewer, the server one per viewer: both inherit this.
    raise_fd_limit(max(COUNTS) + 1000)
    build()
    skipped = []
    report = {}
    # Smallest first: the runs of one count one after the other.
    for viewers in COUNTS:
        runs = []
        for run in range(RUNS):
            result = measure(viewers, run, skipped)
            if result:
                runs.append(result)
        report[viewers] = runs
    summarize(report)
    if skipped:
        print(f"skipped to stay within 15 minutes: {skipped}")
    print(f"total {time.time() - STARTED:.0f} s")
    out = os.path.join(tempfile.gettempdir(), "townhall-ws-viewers.json")
    with open(out, "w") as f:
        json.dump(report, f)
    print(f"every run's figures: {out}")


if __name__ == "__main__":
    main()
