"""Barrier round trips: multiprocessing.Barrier against forkscope's hosted barrier, in the
same run (started by benches/coord.py under `forkscope run --python-helper`). Prints one JSON
line per (kind, parties): microseconds per round, median over the parent's rounds."""
import json
import multiprocessing as mp
import statistics
import sys
import time

import forkscope


def party(barrier, rounds):
    for _ in range(rounds):
        barrier.wait()


def measure(barrier, parties, rounds):
    children = [mp.Process(target=party, args=(barrier, rounds)) for _ in range(parties - 1)]
    for child in children:
        child.start()
    barrier.wait()  # everyone started
    times = []
    for _ in range(rounds - 1):
        start = time.perf_counter()
        barrier.wait()
        times.append(time.perf_counter() - start)
    for child in children:
        child.join()
    return statistics.median(times) * 1e6, statistics.mean(times) * 1e6


def main():
    mp.set_start_method("fork")
    rounds = int(sys.argv[1])
    for parties in (2, 4, 8):
        for kind in ("multiprocessing", "forkscope"):
            barrier = (
                mp.Barrier(parties)
                if kind == "multiprocessing"
                else forkscope.Barrier("bench%d" % parties, parties)
            )
            median, mean = measure(barrier, parties, rounds)
            print(json.dumps({"bench": "barrier", "kind": kind, "parties": parties,
                              "median_us": round(median, 1), "mean_us": round(mean, 1)}),
                  flush=True)


if __name__ == "__main__":
    main()
