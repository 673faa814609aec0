"""pool: the same work serially and with a Pool, apply_async, and a ProcessPoolExecutor.

Run it under forkscope (`forkscope demo pool`) or alone (`python3 demo_pool.py`).
"""
import json
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

PACE = float(os.environ.get("FORKSCOPE_DEMO_PACE", "1"))
STEP_FD = os.environ.pop("FORKSCOPE_STEP_FD", None)
sys.stdout.reconfigure(line_buffering=True, write_through=False)  # whole lines at once


def step(title, text, question=""):
    """Announce a lesson step; under forkscope, wait here until the teacher presses '.'."""
    words = {"title": title, "text": text, "question": question}
    print("@@forkscope-step", json.dumps(words), flush=True)
    if STEP_FD:
        os.read(int(STEP_FD), 1)  # b"" if forkscope went away: just go on


def crunch(n):
    """CPU-bound work: the sum of the first n squares, the slow way."""
    total = 0
    for i in range(n):
        total += i * i
    return total


def who(task):
    time.sleep(0.02)
    return task, os.getpid()


if __name__ == "__main__":
    cpus = os.cpu_count() or 1
    tasks = [max(1000, int(2_000_000 * PACE))] * 8
    step("Serial against parallel",
         f"8 equal CPU-bound tasks, first one after the other in this process, then with"
         f" Pool({cpus}) (this machine has {cpus} CPUs). Watch the CPU column in the tree.",
         "How much faster will the pool be? Why not 8 times?")
    start = time.perf_counter()
    serial = [crunch(n) for n in tasks]
    serial_s = time.perf_counter() - start
    with mp.Pool(cpus) as pool:
        start = time.perf_counter()
        parallel = pool.map(crunch, tasks)
        parallel_s = time.perf_counter() - start
        print(f"serial {serial_s:.2f} s, Pool.map {parallel_s:.2f} s on {cpus} CPUs: "
              f"speedup {serial_s / parallel_s:.1f}x; same results: {serial == parallel}")
        workers = sorted({pid for _, pid in pool.map(who, range(16), chunksize=1)})
        print(f"Pool.map used {len(workers)} worker processes: {workers}")
        step("The pool's workers",
             f"The {cpus} pool workers are the children under this process: they stay alive"
             " between tasks and take tasks from a queue.",
             "Next: apply_async. What does it return at once, before the work is done?")
        pending = pool.apply_async(crunch, (tasks[0],))
        print(f"apply_async returned {type(pending).__name__}; ready() = {pending.ready()}")
        print(f"get() waited for the result: {pending.get() == serial[0]}")
    step("ProcessPoolExecutor",
         "The pool is gone (its workers ended). Next, concurrent.futures: submit() returns"
         " futures, as_completed() yields them in the order they finish.",
         "Will the results come back in the order they were submitted?")
    with ProcessPoolExecutor(max_workers=cpus) as executor:
        futures = {executor.submit(crunch, n * (5 - k)): k for k, n in enumerate(tasks[:4])}
        order = [futures[f] for f in as_completed(futures)]
    print(f"submitted 0, 1, 2, 3; completed in the order {order}")
