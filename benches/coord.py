#!/usr/bin/env python3
"""Control-socket benchmarks (results in docs/PERFORMANCE.md).

    cargo build --release && env -u PYTHONUNBUFFERED python3 benches/coord.py [BIN [barrier|status|flood]]

1. Hosted barrier round trip with 2, 4, 8 parties against multiprocessing.Barrier, in the
   same Python program under the same forkscope (benches/coord_barrier.py).
2. `ctl status` latency with 1,000 workers: one socket request, a whole `forkscope ctl
   status --json` process, and the peer `forkscope inspect ENGINE` (a /proc walk of the same
   tree) in the same run.
3. `demo flood` engine throughput (output lines/s reaching the headless consumer) without
   subscribers, with 200 `ctl events --follow`, and without again.
Every forkscope it starts uses a private XDG_RUNTIME_DIR and is stopped before it returns.
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/forkscope")
HERE = os.path.dirname(os.path.abspath(__file__))
XDG = tempfile.mkdtemp(prefix="fks-bench-")
ENV = dict(os.environ, XDG_RUNTIME_DIR=XDG)
ENV.pop("FORKSCOPE_SOCKET", None)
ENV.pop("PYTHONUNBUFFERED", None)


def start(args, stdout=subprocess.DEVNULL):
    return subprocess.Popen([BIN] + args, env=ENV, stdout=stdout, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)


def wait_socket(proc, timeout=30):
    path = os.path.join(XDG, "forkscope", "%d.sock" % proc.pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)
                return path
        except OSError:
            time.sleep(0.02)
    raise SystemExit("no socket at %s" % path)


class Client:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        self.next = 0

    def request(self, op, **fields):
        self.next += 1
        self.sock.sendall((json.dumps(dict(fields, id=self.next, op=op)) + "\n").encode())
        while True:
            reply = json.loads(self.file.readline())
            if reply.get("id") == self.next and "event" not in reply:
                return reply.get("result")


def stop(proc, path):
    try:
        Client(path).request("action", action={"action": "quit"})
    except OSError:
        pass
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def timed(fn, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return {"median_ms": round(statistics.median(times) * 1e3, 3),
            "p95_ms": round(times[int(len(times) * 0.95) - 1] * 1e3, 3)}


def bench_barrier(rounds=500):
    out = subprocess.run([BIN, "run", "--headless", "--python-helper", "--", sys.executable,
                          os.path.join(HERE, "coord_barrier.py"), str(rounds)],
                         env=ENV, capture_output=True, timeout=600).stdout
    results = []
    for line in out.splitlines():
        event = json.loads(line)
        if event.get("kind") == "output" and event["line"].startswith('{"bench"'):
            results.append(json.loads(event["line"]))
    return results


def bench_status(workers=1000):
    proc = start(["run", "--headless", "-n", str(workers), "--", "sleep", "600"])
    path = wait_socket(proc)
    client = Client(path)
    deadline = time.monotonic() + 120
    while client.request("status")["processes"] < workers:
        if time.monotonic() > deadline:
            raise SystemExit("workers did not start")
        time.sleep(0.1)
    engine = client.request("hello")["engine_pid"]
    result = {
        "workers": workers,
        "socket_request": timed(lambda: client.request("status"), 100),
        "ctl_status_process": timed(lambda: subprocess.run(
            [BIN, "ctl", "--socket", path, "status", "--json"], env=ENV,
            stdout=subprocess.DEVNULL, check=True), 20),
        "peer_inspect_process": timed(lambda: subprocess.run(
            [BIN, "inspect", str(engine)], env=ENV, stdout=subprocess.DEVNULL, check=True), 20),
    }
    stop(proc, path)
    return result


def flood_rate(subscribers, seconds=5.0):
    proc = start(["demo", "flood", "--headless"], stdout=subprocess.PIPE)
    path = wait_socket(proc)
    followers = [start(["ctl", "--socket", path, "events", "--follow"])
                 for _ in range(subscribers)]
    client = Client(path)
    deadline = time.monotonic() + 60
    while client.request("status")["subscribers"] < subscribers:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    subscribed = client.request("status")["subscribers"]
    fd = proc.stdout.fileno()
    cut_off = 0
    warm = time.monotonic() + 1.0
    while time.monotonic() < warm:
        cut_off += os.read(fd, 1 << 20).count(b"subscription cut off")
    lines = 0
    begin = time.monotonic()
    while time.monotonic() - begin < seconds:
        chunk = os.read(fd, 1 << 20)
        lines += chunk.count(b"\n")
        cut_off += chunk.count(b"subscription cut off")
    elapsed = time.monotonic() - begin
    left = client.request("status")["subscribers"]
    client.request("action", action={"action": "quit"})
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        cut_off += chunk.count(b"subscription cut off")
    proc.wait(60)
    proc.stdout.close()
    for follower in followers:
        try:
            follower.wait(30)
        except subprocess.TimeoutExpired:
            follower.kill()
            follower.wait()
    return {"subscribers": subscribers, "subscribed_before_window": subscribed,
            "lines_per_s": round(lines / elapsed), "still_subscribed": left,
            "cut_off_notices": cut_off}


def main():
    only = sys.argv[2] if len(sys.argv) > 2 else "all"
    report = {"load_before": os.getloadavg(), "binary": BIN}
    if only in ("all", "barrier"):
        report["barrier"] = bench_barrier()
    if only in ("all", "status"):
        report["status"] = bench_status()
    if only in ("all", "flood"):
        report["flood"] = [flood_rate(0), flood_rate(200), flood_rate(0)]
    report["load_after"] = os.getloadavg()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
