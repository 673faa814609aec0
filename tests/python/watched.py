"""Watched multiprocessing objects changed by a child (fork or spawn), checked from outside
at two checkpoints of the hosted barrier "sync" (the test is its other party)."""
import multiprocessing as mp
import sys
import time

import forkscope


def child(value, array, barrier, event):
    value.value = 7
    array[2] = 1.25
    event.set()
    barrier.wait()  # waits alone until the parent joins: n_waiting is 1 meanwhile
    value.value = 8
    event.clear()


def main():
    mp.set_start_method(sys.argv[1])
    value = forkscope.watch(mp.Value("i", 0), "counter")
    array = forkscope.watch(mp.Array("d", 3), "samples")
    barrier = forkscope.watch(mp.Barrier(2), "meet")
    event = forkscope.watch(mp.Event(), "ready")
    sync = forkscope.Barrier("sync", 2)
    proc = mp.Process(target=child, args=(value, array, barrier, event))
    proc.start()
    deadline = time.monotonic() + 30
    while not (event.is_set() and barrier.n_waiting == 1):
        if time.monotonic() > deadline:
            sys.exit("the child never reached the barrier")
        time.sleep(0.01)
    forkscope.mark("child waiting")
    sync.wait(timeout=60)  # the test checks now...
    sync.wait(timeout=60)  # ...until it meets us again
    barrier.wait()
    proc.join(30)
    sync.wait(timeout=60)  # second check
    sync.wait(timeout=60)
    print("done", proc.exitcode, flush=True)


if __name__ == "__main__":
    main()
