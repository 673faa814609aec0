"""sync: a Barrier with a late party, an Event, Semaphore(2) limiting a crowd, a long-held Lock."""
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


def party(name, barrier, go=None):
    if go is not None:
        go.wait()  # the late party comes when the teacher says so
    print(f"barrier: {name} (pid {os.getpid()}) arrives at {time.monotonic():.3f}")
    barrier.wait()
    print(f"barrier: {name} passed at {time.monotonic():.3f}")


def waiter(event):
    event.wait()
    print(f"event: pid {os.getpid()} woke up")


def crowd(gate, inside, most):
    with gate:  # at most two at a time
        with inside.get_lock():
            inside.value += 1
            most.value = max(most.value, inside.value)
        time.sleep(1 * PACE)
        with inside.get_lock():
            inside.value -= 1


def hold(lock, name, seconds):
    with lock:
        print(f"lock: {name} (pid {os.getpid()}) got the lock; keeps it {seconds:.1f} s")
        time.sleep(seconds)


def run(target, *argsets):
    processes = [mp.Process(target=target, args=args) for args in argsets]
    [p.start() for p in processes]
    return processes


if __name__ == "__main__":
    barrier, go, event = mp.Barrier(3), mp.Event(), mp.Event()
    parties = run(party, ("A", barrier), ("B", barrier), ("late C", barrier, go))
    step("A barrier with a late party", "A and B wait in barrier.wait(): state S, no CPU. C"
         " comes when you go on; only then do all three pass.", "What if C never comes?")
    go.set()
    [p.join() for p in parties]
    waiters = run(waiter, (event,), (event,), (event,))
    step("An Event", "Three processes wait on one Event; set() wakes them all at once.",
         "How is an Event different from a Barrier?")
    event.set()
    [p.join() for p in waiters]
    gate, lock, inside, most = mp.Semaphore(2), mp.Lock(), mp.Value("i", 0), mp.Value("i", 0)
    people = run(crowd, *[(gate, inside, most)] * 6)
    step("Semaphore(2)", "Six processes, at most two inside at once: the others wait in acquire().",
         "What would Semaphore(1) be?")
    [p.join() for p in people]
    print(f"semaphore: 6 processes, at most {most.value} inside at once")
    holders = run(hold, (lock, "slow", 2 * PACE))
    time.sleep(0.2 * PACE)
    holders += run(hold, (lock, "quick", 0))
    step("A lock held too long", "`slow` holds the lock; `quick` waits in acquire() meanwhile.",
         "How would you find which process holds a lock?")
    [p.join() for p in holders]
