"""Shared helpers of the benchmark scripts: build, start the real server on loopback, create a
room, read /metrics, and measure a process's CPU time from /proc."""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/townhall-target"))
ADMIN = "bench-admin-token"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def build():
    env = dict(os.environ, CARGO_TARGET_DIR=TARGET)
    # The same targets as scripts/test.sh, so the build is shared.
    subprocess.run(["cargo", "build", "--release", "--workspace", "--all-targets"], cwd=ROOT, env=env, check=True)


class Server:
    def __init__(self, extra_env=None):
        self.dir = tempfile.mkdtemp(prefix="townhall-bench-")
        env = dict(os.environ, TOWNHALL_ADMIN_TOKEN=ADMIN, TOWNHALL_LOG="warn,townhall=info", **(extra_env or {}))
        self.log = open(os.path.join(self.dir, "server.log"), "w+")
        self.proc = subprocess.Popen(
            [os.path.join(TARGET, "release", "townhall"), "serve", "--listen", "127.0.0.1:0",
             "--udp-listen", "127.0.0.1:0", "--data-dir", self.dir],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            self.log.seek(0)
            m = re.search(r"townhall listening http=(\S+) udp=(\S+)", self.log.read())
            if m:
                self.http = m.group(1)
                return
            time.sleep(0.1)
        raise SystemExit("server did not start")

    def url(self, path):
        return f"http://{self.http}{path}"

    def request(self, method, path, body=b"", token=ADMIN):
        req = urllib.request.Request(self.url(path), data=body, method=method,
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read() or b"null")

    def create_room(self):
        return self.request("POST", "/api/rooms")

    def metric(self, name):
        text = urllib.request.urlopen(self.url("/metrics")).read().decode()
        return float(re.search(rf"^townhall_{name} (\S+)$", text, re.M).group(1))

    def cpu_seconds(self):
        return cpu_seconds(self.proc.pid)

    def wait(self, what, condition, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if condition():
                return
            time.sleep(0.2)
        raise SystemExit(f"timed out waiting for {what}")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def cpu_seconds(pid):
    """User + system CPU time of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def ffmpeg():
    venv = os.path.join(ROOT, ".venv", "bin", "python")
    return subprocess.run([venv, "-c", "import imageio_ffmpeg as i; print(i.get_ffmpeg_exe())"],
                          capture_output=True, text=True, check=True).stdout.strip()


def median(values):
    values = sorted(values)
    return values[len(values) // 2] if len(values) % 2 else (values[len(values) // 2 - 1] + values[len(values) // 2]) / 2


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def run_node_benchmark(script, runs, duration, extra_timeout=240):
    """Runs `node scripts/bench/<script> <base URL> <room> <publish token> <duration>` against a
    fresh server `runs` times; returns the JSON each run printed last."""
    results = []
    for run in range(runs):
        server = Server()
        try:
            room = server.create_room()
            out = subprocess.run(
                ["node", os.path.join(ROOT, "scripts", "bench", script), server.url(""), room["id"],
                 room["publish_token"], str(duration)],
                cwd=ROOT, capture_output=True, text=True, timeout=duration + extra_timeout)
            if out.returncode != 0:
                raise SystemExit(out.stderr)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            log(f"run {run + 1}: {result}")
            results.append(result)
        finally:
            server.stop()
    return results


def raise_fd_limit(needed):
    """Raises this process's open-file limit (its children inherit it) toward `needed`."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        log(f"warning: file descriptor limit {target} < {needed}: the largest runs will fail to connect")


def children(pid):
    """Direct children of a process (nginx's workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return found


def cpu_of(pids):
    """CPU seconds of these processes (those that are gone count nothing)."""
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:
            pass
    return total


def machine_cpu():
    """CPU seconds the whole machine spent in user and system mode (all processes)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return sum(int(x) for x in fields[1:4]) / CLK_TCK
