"""manager: a Manager dict shared by workers, and the server process that holds it.

Run it under forkscope (`forkscope demo manager`) or alone (`python3 demo_manager.py`).
"""
import json
import multiprocessing as mp
import os
import sys
import time

PACE = float(os.environ.get("FORKSCOPE_DEMO_PACE", "1"))
STEP_FD = os.environ.pop("FORKSCOPE_STEP_FD", None)
sys.stdout.reconfigure(line_buffering=True, write_through=False)  # whole lines at once


def step(title, text, question=""):
    """Announce a lesson step; under forkscope, wait here until the teacher presses '.'."""
    words = {"title": title, "text": text, "question": question}
    print("@@forkscope-step", json.dumps(words), flush=True)
    if STEP_FD:
        os.read(int(STEP_FD), 1)  # b"" if forkscope went away: just go on


def worker(name, scores, lock):
    for round_ in range(3):
        with lock:  # read-modify-write through the proxy: two messages, so lock it
            scores[name] = scores.get(name, 0) + 1
            scores["total"] = scores.get("total", 0) + 1
        time.sleep(0.3 * PACE)
    print(f"worker {name} (pid {os.getpid()}): done; the dict proxy talks to the manager")


if __name__ == "__main__":
    with mp.Manager() as manager:
        server = manager._process.pid  # the manager's own process (a private attribute)
        scores, lock = manager.dict(), manager.Lock()
        print(f"manager server process: pid {server}; this program is pid {os.getpid()}")
        step("The manager is a process", f"Manager() started pid {server}: a server that holds"
             " the real dict. scores is only a proxy; every access is a message to it.",
             "Where does the dict live, and who can reach it?")
        workers = [mp.Process(target=worker, args=(n, scores, lock)) for n in ("a", "b", "c")]
        [p.start() for p in workers]
        step("Workers share the dict", "Three workers update the dict through their proxies,"
             " under a manager Lock. They are children of this program, not of the manager.",
             "What would happen to the total without the lock?")
        [p.join() for p in workers]
        print(f"the dict after the workers: {dict(sorted(scores.items()))}")
        step("Shutting down", f"Leaving the with-block shuts the manager down: pid {server}"
             " ends and the dict is gone.", "Why use a Manager instead of a Value or an Array?")
    print(f"manager stopped: its process is alive: {manager._process.is_alive()}")
