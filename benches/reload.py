"""Reload timing for benches/reload.sh: forkscope up --headless on an N-pool file; the
driver stamps (its own monotonic clock) the start and the reading of the Nth spawn (the
floor: a cold start), then the SIGHUP and the reading of the Nth spawn after the `reload`
event (the new state running). Runs interleave the two reloads; the
medians are printed."""

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time


def pools(n, prefix, body):
    return "".join(
        f'[[pool]]\nname = "{prefix}{i}"\ncommand = ["sh", "-c", "{body}"]\nstop_timeout = 2\n\n'
        for i in range(n)
    )


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def events(proc, deadline):
    for line in proc.stdout:
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        event = json.loads(line)
        yield event


def run(binary, n, mode):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "forkscope.toml")
        base = pools(n, "p", "exec sleep 600")
        write(path, base)
        started = time.monotonic()
        proc = subprocess.Popen(
            [binary, "up", "-f", path, "--headless", "--sample-interval", "5"],
            stdout=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        stream = events(proc, deadline)
        spawns = 0
        for e in stream:
            if e["kind"] == "spawn":
                spawns += 1
                if spawns == n:
                    cold = time.monotonic() - started
                    break
        if mode == "change":
            write(path, pools(n, "p", "exec sleep 601"))
        else:
            write(path, base + pools(n, "q", "exec sleep 600"))
        sent = time.monotonic()
        proc.send_signal(signal.SIGHUP)
        reloaded = False
        got = 0
        for e in stream:
            if e["kind"] == "reload":
                reloaded = True
                if not e["ok"]:
                    raise SystemExit(e["error"])
            if reloaded and e["kind"] == "spawn":
                got += 1
                if got == n:
                    took = time.monotonic() - sent
                    break
        proc.send_signal(signal.SIGTERM)
        for e in stream:
            pass
        proc.wait(timeout=60)
        return cold, took


def main():
    binary, n, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    results = {"change": [], "add": []}
    colds = []
    for _ in range(runs):
        for mode in ("change", "add"):
            cold, took = run(binary, n, mode)
            colds.append(cold)
            results[mode].append(took)
    floor = statistics.median(colds)
    print(f"loadavg: {open('/proc/loadavg').read().strip()}")
    print(
        f"cold start of {n} pools (floor): median {floor * 1000:.1f} ms, runs "
        + ", ".join(f"{c * 1000:.0f}" for c in colds)
    )
    for mode, values in results.items():
        med = statistics.median(values)
        print(
            f"reload {mode} {n} pools: median {med * 1000:.1f} ms "
            f"(runs {', '.join(f'{v * 1000:.0f}' for v in values)}), "
            f"{med / floor:.2f}x the cold start"
        )


main()
