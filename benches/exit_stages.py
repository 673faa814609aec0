"""Where an exit event's latency goes: one run of the exit_latency bench's forkscope side under
`perf record` (scheduler and signal tracepoints, `write(1)`, `wait4`), then each worker's
exit split into stages from the kernel's own timestamps:

  last write -> exit -> SIGCHLD -> engine on CPU -> wait4 -> printer's write(1) -> reader on CPU

Prints each stage's median/p90/p99/max and, for the worst 1 % of exits, the stage that took
the longest. Needs root (or perf_event_paranoid <= -1) and tracefs.

    python3 benches/exit_stages.py FORKSCOPE HELPERS [N=400] [STEP_MS=5]
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections import Counter

import driver

EVENTS = ["sched:sched_process_exit", "signal:signal_generate", "sched:sched_switch",
          "sched:sched_waking", "syscalls:sys_enter_write", "syscalls:sys_enter_wait4"]
STAGES = [("exit", "worker: last write -> exit"), ("sigchld", "exit -> SIGCHLD"),
          ("eng_in", "SIGCHLD -> engine on CPU"), ("reap", "engine on CPU -> wait4"),
          ("print", "wait4 -> printer's write(1)"), ("read", "write(1) -> reader on CPU")]
LINE = re.compile(r"^\s*(.+?)\s+(\d+)/(\d+)\s+\[\d+\]\s+([\d.]+):\s+(\S+):\s*(.*)$")


def record(forkscope, helpers, n, step_ms, data):
    me = os.path.abspath(__file__)
    cmd = ["perf", "record", "-q", "-a", "-o", data]
    for event in EVENTS:
        cmd += ["-e", event]
        if event == "syscalls:sys_enter_write":
            cmd += ["--filter", "fd == 1"]
    cmd += ["--", sys.executable, me, "--run", forkscope, helpers, str(n), str(step_ms)]
    subprocess.run(cmd, check=True)
    return subprocess.run(["perf", "script", "-i", data, "-F", "comm,pid,tid,cpu,time,event,trace"],
                          capture_output=True, text=True, check=True).stdout


def parse(text, binary):
    events = []
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            comm, pid, tid, t, name, rest = m.groups()
            events.append((float(t), comm, int(pid), int(tid), name, rest))
    events.sort(key=lambda e: e[0])
    # Its workers carry its name too, between their clone and their exec.
    ours = {e[2] for e in events if e[1] == binary[:15]}
    main, engine = next((e[2], e[3]) for e in events if e[1] == "engine" and e[2] in ours)
    reader = next(int(re.search(r"pid=(\d+)", e[5]).group(1)) for e in events
                  if e[3] == main and e[4] == "sched:sched_waking" and "comm=python3" in e[5])
    exits, unprinted = {}, []
    for t, comm, pid, tid, name, rest in events:
        if comm == "exitstamp" and name == "syscalls:sys_enter_write":
            exits.setdefault(tid, {})["stamp"] = t
        elif name == "sched:sched_process_exit" and "comm=exitstamp" in rest:
            p = int(re.search(r"pid=(\d+)", rest).group(1))
            if p in exits:
                exits[p]["exit"] = t
        elif name == "signal:signal_generate" and rest.startswith("sig=17") and tid in exits:
            exits[tid]["sigchld"] = t
        elif name == "sched:sched_switch" and f"next_pid={engine} " in rest:
            for d in exits.values():
                if "exit" in d and "eng_in" not in d and d["exit"] < t:
                    d["eng_in"] = t
        elif tid == engine and name == "syscalls:sys_enter_wait4":
            p = int(re.search(r"upid: (0x[0-9a-f]+)", rest).group(1), 16)
            if p in exits:
                exits[p]["reap"] = t
                unprinted.append(p)
        elif tid == main and name == "syscalls:sys_enter_write":
            for p in unprinted:
                exits[p]["print"] = t
            unprinted = []
        elif name == "sched:sched_switch" and f"next_pid={reader} " in rest:
            for d in exits.values():
                if "print" in d and "read" not in d:
                    d["read"] = t
    keys = ["stamp"] + [k for k, _ in STAGES]
    return [d for d in exits.values() if all(k in d for k in keys)]


def durations(d):
    """Each stage's time, in order; a stage that began before the last one ended counts 0
    (the engine already on CPU when SIGCHLD came)."""
    out, prev = {}, d["stamp"]
    for key, _ in STAGES:
        out[key] = max(0.0, d[key] - prev)
        prev = max(prev, d[key])
    return out


def report(complete):
    print(f"{len(complete)} exits traced")
    per = [durations(d) for d in complete]
    for key, name in STAGES:
        v = sorted(p[key] * 1e6 for p in per)
        print(f"{name:30} median {statistics.median(v):6.0f} us  p90 {driver.pct(v, 90):6.0f}"
              f"  p99 {driver.pct(v, 99):6.0f}  max {max(v):6.0f}")
    total = sorted((d["read"] - d["stamp"]) * 1e6 for d in complete)
    print(f"{'total':30} median {statistics.median(total):6.0f} us  p90 {driver.pct(total, 90):6.0f}"
          f"  p99 {driver.pct(total, 99):6.0f}  max {max(total):6.0f}")
    worst = sorted(complete, key=lambda d: d["read"] - d["stamp"])[-max(1, len(complete) // 100):]
    longest = Counter(max(durations(d).items(), key=lambda kv: kv[1])[0] for d in worst)
    print(f"worst 1 % ({len(worst)} exits), longest stage: "
          + ", ".join(f"{name} {longest[key]}" for key, name in STAGES if longest[key]))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--run":
        forkscope, helpers, n, step_ms = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        driver.latency_forkscope(forkscope, helpers, n, step_ms)
        return
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    forkscope, helpers = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 400
    step_ms = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    print(f"# load average before: {driver.loadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        text = record(forkscope, helpers, n, step_ms, os.path.join(tmp, "perf.data"))
    print(f"# load average after: {driver.loadavg()}")
    report(parse(text, os.path.basename(forkscope)))


if __name__ == "__main__":
    main()
