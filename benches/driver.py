#!/usr/bin/env python3
"""Benchmark driver for forkscope (see docs/PERFORMANCE.md). Called by benches/*.sh.

    driver.py spawn   FORKSCOPE HELPERS_DIR N RUNS
    driver.py output  FORKSCOPE BYTES LINE_LEN RUNS
    driver.py latency FORKSCOPE HELPERS_DIR N STEP_MS RUNS [BUSY_LOOPS]
    driver.py output-pty   FORKSCOPE BYTES LINE_LEN RUNS
    driver.py python-start FORKSCOPE PYTHON BOOTSTRAP_PY RUNS
    driver.py stopflood FORKSCOPE LINE_LEN RUNS

Every measurement starts the programs itself, stops them afterwards and checks that none of
the processes it started is left running.
"""

import json
import os
import shutil
import signal
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def now():
    return time.monotonic()


def children(pid, comm=None):
    """Live children of pid (optionally only those whose comm is `comm`)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                text = f.read()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] not in "ZX" and (comm is None or name == comm):
            found.append(int(entry))
    return found


def wait_execd(parent, n, comm, timeout=10):
    """The n children of parent once every one of them runs `comm`: a child counts only after
    its exec (before, its comm is still the parent's). Fails after `timeout` seconds."""
    deadline = now() + timeout
    while True:
        kids = children(parent)
        ready = children(parent, comm)
        if len(ready) == n == len(kids):
            return ready
        if now() >= deadline:
            raise SystemExit(f"after {timeout} s: {len(kids)} children of {parent}, "
                             f"{len(ready)} of them exec'd {comm!r}, expected {n}")
        time.sleep(0.002)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def engine_of(guardian, timeout=5):
    """The engine: the child of the guardian's child (the watchdog)."""
    deadline = now() + timeout
    while now() < deadline:
        for watchdog in children(guardian):
            kids = children(watchdog)
            if kids:
                return kids[0]
        time.sleep(0.005)
    return None


def vm_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def wait_gone(pids, timeout=30):
    deadline = now() + timeout
    while now() < deadline:
        if not any(os.path.exists(f"/proc/{p}") and _alive(p) for p in pids):
            return
        time.sleep(0.02)
    raise SystemExit(f"processes still running: {[p for p in pids if _alive(p)]}")


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
        return text[text.rindex(")") + 2] not in "ZX"
    except OSError:
        return False


def summary(values, unit="ms", scale=1000.0):
    values = sorted(values)
    med = statistics.median(values)
    return f"median {med * scale:.1f} {unit} (runs: {', '.join(f'{v * scale:.1f}' for v in values)})"


# --------------------------------------------------------------------------------------------
# spawn


def spawn_forkscope(forkscope, n):
    t0 = now()
    proc = subprocess.Popen(
        [forkscope, "run", "-n", str(n), "--headless", "--", "sleep", "60"],
        stdout=subprocess.PIPE,
    )
    seen = 0
    engine = None
    t_all = None
    for line in proc.stdout:
        if b'"kind":"spawn"' in line:
            seen += 1
            if seen == n:
                t_all = now() - t0
                break
        elif b'"kind":"session"' in line:
            engine = json.loads(line)["pid"]
        elif b'"kind":"spawn_failed"' in line:
            raise SystemExit(f"spawn failed: {line!r}")
    workers = wait_execd(engine, n, "sleep")
    t_stop0 = now()
    proc.send_signal(signal.SIGTERM)
    for _ in proc.stdout:
        pass
    proc.wait(timeout=30)
    t_stop = now() - t_stop0
    wait_gone(workers + [engine])
    return t_all, t_stop


def spawn_floor(helper, n, confirm):
    args = [helper] + (["--confirm"] if confirm else []) + [str(n), "sleep", "60"]
    t0 = now()
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = proc.stdout.readline()
    took = now() - t0
    assert line.startswith(b"started"), line
    # Without --confirm the loop ends before the last children have exec'd.
    workers = wait_execd(proc.pid, n, "sleep")
    proc.stdin.write(b"stop\n")
    proc.stdin.close()
    proc.wait(timeout=30)
    wait_gone(workers)
    return took


SUPERVISORD_CONF = """
[supervisord]
nodaemon=true
logfile=%(here)s/supervisord.log
pidfile=%(here)s/supervisord.pid
childlogdir=%(here)s
minfds=4096
[unix_http_server]
file=%(here)s/supervisor.sock
[supervisorctl]
serverurl=unix://%(here)s/supervisor.sock
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:sleep]
command=sleep 60
numprocs={n}
process_name=%(program_name)s_%(process_num)03d
startsecs=0
autorestart=false
stopwaitsecs=5
"""


def spawn_supervisord(n):
    """Returns (time until n sleep children exist, time until supervisorctl shows n RUNNING)."""
    supervisord = shutil.which("supervisord")
    supervisorctl = shutil.which("supervisorctl")
    if not supervisord or not supervisorctl:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        conf = os.path.join(tmp, "supervisord.conf")
        with open(conf, "w") as f:
            f.write(SUPERVISORD_CONF.replace("{n}", str(n)))
        t0 = now()
        proc = subprocess.Popen(
            [supervisord, "-n", "-c", conf],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        t_procs = None
        deadline = t0 + 60
        while now() < deadline:
            if len(children(proc.pid, "sleep")) == n:
                t_procs = now() - t0
                break
            time.sleep(0.005)
        t_running = None
        while now() < deadline:
            out = subprocess.run(
                [supervisorctl, "-c", conf, "status"], capture_output=True, text=True
            ).stdout
            if out.count(" RUNNING ") == n:
                t_running = now() - t0
                break
            time.sleep(0.01)
        workers = children(proc.pid, "sleep")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        wait_gone(workers)
        return t_procs, t_running


def bench_spawn(forkscope, helpers, n, runs):
    print(f"## spawn: {n} x `sleep 60`, {runs} runs each (wall time from launch)")
    fs_all, fs_stop, floor, floor_confirm, sup_procs, sup_running = [], [], [], [], [], []
    for _ in range(runs):
        a, s = spawn_forkscope(forkscope, n)
        fs_all.append(a)
        fs_stop.append(s)
        floor.append(spawn_floor(os.path.join(helpers, "forkexec"), n, False))
        floor_confirm.append(spawn_floor(os.path.join(helpers, "forkexec"), n, True))
        sup = spawn_supervisord(n)
        if sup:
            sup_procs.append(sup[0])
            sup_running.append(sup[1])
    print(f"fork+exec loop (floor)             : {summary(floor)}")
    print(f"fork+exec loop, exec confirmed     : {summary(floor_confirm)}")
    print(f"forkscope, all {n} spawn events    : {summary(fs_all)}")
    print(f"forkscope, stop all (SIGTERM->end) : {summary(fs_stop)}")
    if sup_procs:
        print(f"supervisord, all {n} processes     : {summary(sup_procs)}")
        print(f"supervisord, all RUNNING in ctl    : {summary(sup_running)}")
    else:
        print("supervisord: not installed (pip install supervisor)")
    m = statistics.median
    print(
        f"ratios (medians): forkscope/floor {m(fs_all) / m(floor):.2f}, "
        f"forkscope/floor-confirmed {m(fs_all) / m(floor_confirm):.2f}"
        + (f", supervisord-processes/forkscope {m(sup_procs) / m(fs_all):.2f}"
           f", supervisord-RUNNING/forkscope {m(sup_running) / m(fs_all):.2f}" if sup_procs else "")
    )


# --------------------------------------------------------------------------------------------
# output


def output_command(total, line_len):
    # `yes` repeats one line of line_len-1 characters; head cuts exactly `total` bytes.
    return f"yes {'x' * (line_len - 1)} | head -c {total}"


def children_cpu():
    """CPU seconds (user + sys) of every waited-for descendant so far: on a loaded machine
    the CPU a run costs says more than its wall time."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def output_plain(total, line_len):
    t0 = now()
    subprocess.run(["sh", "-c", output_command(total, line_len)], stdout=subprocess.DEVNULL, check=True)
    return now() - t0


def output_piped(total, line_len):
    """The same command through one more pipe, read by `cat` into /dev/null."""
    t0 = now()
    subprocess.run(
        ["sh", "-c", f"{output_command(total, line_len)} | cat"],
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return now() - t0


def output_forkscope(forkscope, total, line_len, flags=()):
    t0 = now()
    with open("/dev/null", "wb") as null:
        proc = subprocess.Popen(
            [forkscope, "run", "--headless", *flags, "--", "sh", "-c", output_command(total, line_len)],
            stdout=null,
        )
        engine = engine_of(proc.pid)
        peak = 0
        while proc.poll() is None:
            if engine:
                peak = max(peak, vm_hwm_kb(engine))
            time.sleep(0.02)
    took = now() - t0
    assert proc.returncode == 0, proc.returncode
    return took, peak


def output_forkscope_lines(forkscope, total, line_len, flags=()):
    """Runs once with stdout to a pipe read here, to check that every line was reported."""
    proc = subprocess.Popen(
        [forkscope, "run", "--headless", *flags, "--", "sh", "-c", output_command(total, line_len)],
        stdout=subprocess.PIPE,
    )
    lines = 0
    last_seq = 0
    for line in proc.stdout:
        if b'"kind":"output"' in line:
            lines += 1
            seq = int(line[line.rindex(b'"seq":') + 6 :].split(b",")[0].split(b"}")[0])
            assert seq == last_seq + 1, (seq, last_seq)
            last_seq = seq
    proc.wait()
    return lines


def bench_output(forkscope, total, line_len, runs):
    mb = total / 1e6
    print(f"## output: {mb:.0f} MB in lines of {line_len} bytes, {runs} runs each")
    print(f"load average at the start: {open('/proc/loadavg').read().strip()}")
    plain, piped, fs, peaks = [], [], [], []
    cpu_piped, cpu_fs = [], []
    for _ in range(runs):
        plain.append(output_plain(total, line_len))
        cpu0 = children_cpu()
        piped.append(output_piped(total, line_len))
        cpu_piped.append(children_cpu() - cpu0)
        cpu0 = children_cpu()
        took, peak = output_forkscope(forkscope, total, line_len)
        cpu_fs.append(children_cpu() - cpu0)
        fs.append(took)
        peaks.append(peak)
    m = statistics.median
    print(f"straight to /dev/null : {summary(plain, 's', 1)} -> {mb / m(plain):.0f} MB/s")
    print(f"through a pipe to cat : {summary(piped, 's', 1)} -> {mb / m(piped):.0f} MB/s")
    print(f"forkscope --headless  : {summary(fs, 's', 1)} -> {mb / m(fs):.0f} MB/s")
    print(f"forkscope engine VmHWM: max {max(peaks) / 1024:.1f} MiB (runs: {', '.join(f'{p / 1024:.1f}' for p in peaks)})")
    print(
        f"ratios (median time): forkscope/plain {m(fs) / m(plain):.2f}, "
        f"forkscope/pipe-to-cat {m(fs) / m(piped):.2f}"
    )
    print(f"CPU (user+sys, all processes): pipe to cat {summary(cpu_piped, 's', 1)}, "
          f"forkscope {summary(cpu_fs, 's', 1)}, ratio {m(cpu_fs) / m(cpu_piped):.2f}")
    print(f"load average at the end: {open('/proc/loadavg').read().strip()}")
    lines = output_forkscope_lines(forkscope, total, line_len)
    print(f"check run: {lines} output events, seq contiguous, expected {total // line_len}")


def bench_output_pty(forkscope, total, line_len, runs):
    """The same flood through forkscope's pipes and through `--pty`, in turn."""
    mb = total / 1e6
    print(f"## output through a pty: {mb:.0f} MB in lines of {line_len} bytes, {runs} runs each")
    piped, pty = [], []
    for _ in range(runs):
        piped.append(output_forkscope(forkscope, total, line_len)[0])
        pty.append(output_forkscope(forkscope, total, line_len, ["--pty"])[0])
    m = statistics.median
    print(f"forkscope (pipes)     : {summary(piped, 's', 1)} -> {mb / m(piped):.0f} MB/s")
    print(f"forkscope --pty       : {summary(pty, 's', 1)} -> {mb / m(pty):.0f} MB/s")
    print(f"ratio (median time): pty/pipes {m(pty) / m(piped):.2f}")
    lines = output_forkscope_lines(forkscope, total, line_len, ["--pty"])
    print(f"check run (--pty): {lines} output events, seq contiguous, expected {total // line_len}")


# --------------------------------------------------------------------------------------------
# Python start-up with forkscope's bootstrap


def python_start(python, env, stdout=None):
    """Wall and CPU (user + sys) seconds of one `python -c pass`, and the microseconds
    `-X importtime` gives the sitecustomize import (cumulative; 0 when there is none)."""
    t0 = now()
    proc = subprocess.Popen([python, "-X", "importtime", "-c", "pass"], env=env,
                            stdout=stdout, stderr=subprocess.PIPE)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, err
    wall = now() - t0
    site_us = 0
    for line in err.decode().splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == "sitecustomize":
            site_us = int(parts[1])
    return wall, usage.ru_utime + usage.ru_stime, site_us


def bench_python_start(python, bootstrap, runs):
    """`python -c pass`, without and with the bootstrap on PYTHONPATH, in turn. "worker":
    the variables a worker gets, fd 1 not a capture pipe (the worker itself, and every Python
    process whose output is not on a shared pipe). "switch": fd 1 is a pipe listed in
    FORKSCOPE_CAPTURE_INODES but no forkscope answers (the cost of trying: importing socket,
    two pipes, a failed connect). Wall time is at the mercy of the machine's load; CPU time
    and `-X importtime` much less."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    with tempfile.TemporaryDirectory() as hooks:
        with open(bootstrap) as src, open(os.path.join(hooks, "sitecustomize.py"), "w") as dst:
            dst.write(src.read())
        r, w = os.pipe()
        inode = os.fstat(w).st_ino
        worker = dict(base, PYTHONPATH=hooks, FORKSCOPE_CAPTURE_INODES="1",
                      FORKSCOPE_OUTPUT_SOCKET=os.path.join(hooks, "none.sock"))
        switch = dict(worker, FORKSCOPE_CAPTURE_INODES=str(inode))
        results = {"plain": [], "worker": [], "switch": []}
        for _ in range(runs):
            results["plain"].append(python_start(python, base))
            results["worker"].append(python_start(python, worker))
            results["switch"].append(python_start(python, switch, stdout=w))
        os.close(r)
        os.close(w)
    m = statistics.median
    print(f"## python start-up: {python} -c pass, {runs} runs each, in turn")
    plain_wall = m(x[0] for x in results["plain"])
    plain_cpu = m(x[1] for x in results["plain"])
    for name, label in [("plain", "without the bootstrap "), ("worker", "bootstrap (worker)    "),
                        ("switch", "bootstrap (switch try)")]:
        wall = m(x[0] for x in results[name])
        cpu = m(x[1] for x in results[name])
        site = m(x[2] for x in results[name])
        print(f"{label}: wall {wall * 1e3:.2f} ms (x{wall / plain_wall:.3f}), "
              f"CPU {cpu * 1e3:.2f} ms (+{(cpu - plain_cpu) * 1e3:.2f} ms), "
              f"sitecustomize import {site / 1e3:.2f} ms")


# --------------------------------------------------------------------------------------------
# stopping during an output flood


def stop_flood_run(forkscope, worker, stop_after):
    """forkscope run --headless --stop-timeout 1 -- sh -c WORKER > /dev/null; SIGTERM after
    `stop_after` seconds (None: no signal). Returns (seconds from the signal, or from the
    start, to forkscope's exit; the engine's peak VmHWM in KiB)."""
    with open("/dev/null", "wb") as null:
        proc = subprocess.Popen(
            [forkscope, "run", "--headless", "--stop-timeout", "1", "--", "sh", "-c", worker],
            stdout=null,
        )
        t0 = now()
        engine = engine_of(proc.pid)
        peak = 0
        signalled = stop_after is None
        while proc.poll() is None:
            peak = max(peak, vm_hwm_kb(engine))
            if peak > 2 * 1024 * 1024:
                proc.kill()
                os.kill(engine, signal.SIGKILL)
                raise SystemExit(f"engine passed 2 GiB: {peak} KiB")
            if not signalled and now() - t0 >= stop_after:
                proc.send_signal(signal.SIGTERM)
                t0 = now()
                signalled = True
            time.sleep(0.01)
    return now() - t0, peak


def bench_stop_flood(forkscope, line_len, runs):
    flood = f"yes {'x' * (line_len - 1)}"
    cases = [
        ("running: 1 GB flood to its end", f"{flood} | head -c 1000000000", None),
        ("SIGTERM 2 s into an endless flood", f"{flood} | head -c 1000000000000", 2.0),
        ("orphan ignoring SIGTERM floods its dead worker's pipe",
         f"(trap '' TERM; exec {flood}) & exit 0", None),
    ]
    print(f"## stopping during a flood: lines of {line_len} bytes, {runs} runs each")
    peaks = {}
    for name, worker, stop_after in cases:
        times, hwm = [], []
        for _ in range(runs):
            took, peak = stop_flood_run(forkscope, worker, stop_after)
            times.append(took)
            hwm.append(peak)
        peaks[name] = statistics.median(hwm)
        print(f"{name}: until exit {summary(times, 's', 1)}; "
              f"engine VmHWM max {max(hwm) / 1024:.1f} MiB (runs: {', '.join(f'{p / 1024:.1f}' for p in hwm)})")
    base = peaks[cases[0][0]]
    for name, _, _ in cases[1:]:
        print(f"ratio of median peaks, {name} / running: {peaks[name] / base:.2f}")


# --------------------------------------------------------------------------------------------
# exit-to-event latency


def latency_forkscope(forkscope, helpers, n, step_ms):
    proc = subprocess.Popen(
        [forkscope, "run", "-n", str(n), "--headless", "--",
         os.path.join(helpers, "exitstamp"), str(step_ms)],
        stdout=subprocess.PIPE,
        bufsize=0,
    )
    stamps = {}
    latencies = []
    emitted = []
    started_unix = None
    buf = b""
    while True:
        chunk = proc.stdout.read(65536)
        t = time.time_ns()
        if not chunk:
            break
        buf += chunk
        *complete, buf = buf.split(b"\n")
        for line in complete:
            if b'"kind":"output"' in line:
                event = json.loads(line)
                if event["line"].startswith("stamp "):
                    stamps[event["pid"]] = int(event["line"][6:])
            elif b'"kind":"exit"' in line:
                event = json.loads(line)
                if event["pid"] in stamps:
                    stamp = stamps.pop(event["pid"])
                    latencies.append(t - stamp)
                    emitted.append(int((started_unix + event["t"]) * 1e9) - stamp)
            elif b'"kind":"session"' in line:
                started_unix = json.loads(line)["started_unix"]
    proc.wait()
    assert len(latencies) == n, (len(latencies), n)
    return latencies, emitted


def latency_floor(helpers, n, step_ms, mode="floor"):
    out = subprocess.run(
        [os.path.join(helpers, "exitstamp"), mode, str(n), str(step_ms)],
        capture_output=True, text=True, check=True,
    ).stdout
    return [int(x) for x in out.split()]


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def busy_loops(count):
    """`count` shell busy loops (`while :; do :; done`), the load both sides run under."""
    return [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(count)]


def stop_all(procs):
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.wait(timeout=10)


def bench_latency(forkscope, helpers, n, step_ms, runs, busy):
    print(f"## exit-to-event latency: {n} workers exiting {step_ms} ms apart, {runs} runs, "
          f"under {busy} busy loops of our own (on top of the machine's load)")
    fs, fs_emitted, floor, peer = [], [], [], []
    loops = busy_loops(busy)
    try:
        for _ in range(runs):
            read, emitted = latency_forkscope(forkscope, helpers, n, step_ms)
            fs += read
            fs_emitted += emitted
            floor += latency_floor(helpers, n, step_ms)
            peer += latency_floor(helpers, n, step_ms, "floor-read")
            print(f"# load average after a round: {loadavg()}", flush=True)
    finally:
        stop_all(loops)
    for name, values in [("waitpid() in a C parent (floor)", floor),
                         ("C parent reading output + reaping", peer),
                         ("forkscope exit event, read", fs),
                         ("(of which: until emitted, `t`)", fs_emitted)]:
        print(
            f"{name:34}: median {statistics.median(values) / 1000:.0f} us, "
            f"p99 {pct(values, 99) / 1000:.0f} us, max {max(values) / 1000:.0f} us (n={len(values)})"
        )
    print(
        f"ratio forkscope/floor: median {statistics.median(fs) / statistics.median(floor):.1f}, "
        f"p99 {pct(fs, 99) / pct(floor, 99):.1f}; "
        f"forkscope/C reader: median {statistics.median(fs) / statistics.median(peer):.1f}, "
        f"p99 {pct(fs, 99) / pct(peer, 99):.1f}"
    )


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    mode, forkscope = sys.argv[1], sys.argv[2]
    print(f"# load average before: {loadavg()}", flush=True)
    if mode == "spawn":
        bench_spawn(forkscope, sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "output":
        bench_output(forkscope, int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "output-pty":
        bench_output_pty(forkscope, int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "python-start":
        bench_python_start(sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif mode == "stopflood":
        bench_stop_flood(forkscope, int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "latency":
        busy = int(sys.argv[7]) if len(sys.argv) > 7 else 0
        bench_latency(forkscope, sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), busy)
    else:
        raise SystemExit(__doc__)
    print(f"# load average after: {loadavg()}")


if __name__ == "__main__":
    main()
