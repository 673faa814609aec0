#!/usr/bin/env python3
"""1,000 idle workers: forkscope up --headless against supervisord (numprocs=1000).

Memory (RSS of the supervisor's own processes) and CPU (utime+stime of those processes over
the steady window after every worker started), plus forkscope's metrics scrape latency
(p50/p99 of SCRAPES GETs of /metrics with the 1,000 workers running) against a floor: the
same bytes served as a static file by `python3 -m http.server`, scraped alternately with
forkscope in the same window. Runs are interleaved (forkscope, supervisord, forkscope,
...); medians over the rounds are reported.
Usage: idle_1000.py FORKSCOPE SUPERVISORD [SECONDS] [ROUNDS]
"""
import json, os, signal, socket, statistics, subprocess, sys, tempfile, time

TICK = os.sysconf("SC_CLK_TCK")
N = 1000


def stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])  # ppid, utime+stime


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def children(pid):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if stat(int(p))[0] == pid:
                    out.append(int(p))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
    return out


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def measure(own, seconds):
    """CPU seconds of the `own` pids over `seconds`, and their RSS (MiB) at the end."""
    cpu0 = sum(stat(p)[1] for p in own)
    time.sleep(seconds)
    cpu1 = sum(stat(p)[1] for p in own)
    return (cpu1 - cpu0) / TICK, sum(rss_kb(p) for p in own) / 1024


SCRAPES = 200


def get(host, port, path):
    """One HTTP GET on a fresh connection: (milliseconds, body)."""
    t0 = time.perf_counter()
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := s.recv(1 << 16):
            chunks.append(chunk)
    ms = (time.perf_counter() - t0) * 1000
    return ms, b"".join(chunks).split(b"\r\n\r\n", 1)[1]


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def scrape(addr, tmp):
    """p50/p99 of forkscope's /metrics and of the floor serving the same bytes, alternately."""
    host, port = addr.rsplit(":", 1)
    _, body = get(host, int(port), "/metrics")
    with open(os.path.join(tmp, "metrics"), "wb") as f:
        f.write(body)
    floor = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind",
                              "127.0.0.1", "--directory", tmp],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        floor_port = int(floor.stdout.readline().split(" port ")[1].split()[0])
        ours, theirs = [], []
        for _ in range(SCRAPES):
            ours.append(get(host, int(port), "/metrics")[0])
            ms, served = get("127.0.0.1", floor_port, "/metrics")
            assert len(served) == len(body)
            theirs.append(ms)
    finally:
        floor.terminate()
        floor.wait(timeout=10)
    return pct(ours, 0.5), pct(ours, 0.99), pct(theirs, 0.5), pct(theirs, 0.99), len(body)


def run_forkscope(binary, seconds, tmp):
    cfg = os.path.join(tmp, "idle.toml")
    with open(cfg, "w") as f:
        f.write('[[pool]]\nname = "idle"\ncommand = ["sleep", "100000"]\nworkers = 1000\n')
    proc = subprocess.Popen([binary, "up", "-f", cfg, "--headless", "--metrics", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    spawned, addr, engine = 0, None, None
    for line in proc.stdout:
        ev = json.loads(line)
        if ev["kind"] == "session":
            addr, engine = ev.get("metrics"), ev["pid"]
        elif ev["kind"] == "spawn":
            spawned += 1
            if spawned == N:
                break
    # The guardian, the watchdog (the engine's parent) and the engine.
    own = [proc.pid, stat(engine)[0], engine]
    time.sleep(2)
    cpu, rss = measure(own, seconds)
    scraped = scrape(addr, tmp)
    proc.send_signal(signal.SIGTERM)
    # Keep reading so the stop is not held up by a full stdout pipe.
    for _ in proc.stdout:
        pass
    proc.wait(timeout=60)
    return (cpu, rss) + scraped


def run_supervisord(binary, seconds, tmp):
    conf = os.path.join(tmp, "supervisord.conf")
    with open(conf, "w") as f:
        f.write(f"""[supervisord]
nodaemon=true
logfile={tmp}/supervisord.log
pidfile={tmp}/supervisord.pid
childlogdir={tmp}
minfds=4096

[unix_http_server]
file={tmp}/supervisor.sock

[program:idle]
command=sleep 100000
process_name=%(program_name)s_%(process_num)d
numprocs={N}
autostart=true
startsecs=0
stdout_logfile={tmp}/idle_%(process_num)d.log
redirect_stderr=true
""")
    proc = subprocess.Popen([binary, "-n", "-c", conf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: len(children(proc.pid)) >= N, 300, "supervisord's 1000 children")
    time.sleep(2)
    cpu, rss = measure([proc.pid], seconds)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    return cpu, rss


def main():
    forkscope, supervisord = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 20
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    fk, sv = [], []
    for r in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            fk.append(run_forkscope(forkscope, seconds, tmp))
        with tempfile.TemporaryDirectory() as tmp:
            sv.append(run_supervisord(supervisord, seconds, tmp))
        print(f"round {r}: forkscope cpu {fk[-1][0]:.2f}s rss {fk[-1][1]:.1f}MiB "
              f"scrape p50 {fk[-1][2]:.2f}ms p99 {fk[-1][3]:.2f}ms "
              f"(floor p50 {fk[-1][4]:.2f}ms p99 {fk[-1][5]:.2f}ms, {fk[-1][6]} bytes); "
              f"supervisord cpu {sv[-1][0]:.2f}s rss {sv[-1][1]:.1f}MiB; "
              f"load {open('/proc/loadavg').read().split()[0]}", flush=True)
    med = lambda xs, i: statistics.median(x[i] for x in xs)
    fc, fr = med(fk, 0), med(fk, 1)
    p50, p99, f50, f99 = (med(fk, i) for i in (2, 3, 4, 5))
    sc, sr = med(sv, 0), med(sv, 1)
    print(f"median over {rounds} rounds of {seconds:.0f}s with {N} idle workers:")
    print(f"  CPU:    forkscope {fc:.2f}s  supervisord {sc:.2f}s  ratio {fc / sc if sc else float('inf'):.2f}")
    print(f"  RSS:    forkscope {fr:.1f}MiB  supervisord {sr:.1f}MiB  ratio {fr / sr:.2f}")
    print(f"  scrape p50: forkscope {p50:.2f}ms  floor {f50:.2f}ms  ratio {p50 / f50:.2f}")
    print(f"  scrape p99: forkscope {p99:.2f}ms  floor {f99:.2f}ms  ratio {p99 / f99:.2f}"
          f"  ({SCRAPES} GETs each per round, {med(fk, 6):.0f} bytes)")
    print(f"  load average: {open('/proc/loadavg').read().strip()}")


if __name__ == "__main__":
    main()
