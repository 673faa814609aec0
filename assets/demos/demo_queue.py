"""queue: producers and consumers sharing a Queue, a poison pill, and a consumer blocked in get().

Run it under forkscope (`forkscope demo queue`) or alone (`python3 demo_queue.py`).
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


def producer(name, items, jobs):
    for i in range(items):
        jobs.put(f"{name}-{i}")
        time.sleep(0.1 * PACE)
    print(f"producer {name} (pid {os.getpid()}): put {items} items, leaving")


def consumer(name, jobs, done):
    while True:
        item = jobs.get()  # blocks while the queue is empty
        if item is None:  # the poison pill: no more work will come
            print(f"consumer {name} (pid {os.getpid()}): got the poison pill, leaving")
            return
        print(f"consumer {name} got {item}")
        done.put(item)


if __name__ == "__main__":
    jobs, done = mp.Queue(), mp.Queue()
    producers = [mp.Process(target=producer, args=(n, 5, jobs)) for n in ("a", "b")]
    consumers = [mp.Process(target=consumer, args=(n, jobs, done)) for n in ("X", "Y")]
    step("Producers and consumers",
         "Two producers will put 5 items each on one Queue; two consumers take items off it."
         " Queue.put pickles each item into a pipe; a feeder thread writes it.",
         "Which consumer gets which item? Can you predict it?")
    for p in producers + consumers:
        p.start()
    for p in producers:
        p.join()
    consumed = sorted(done.get() for _ in range(10))
    print(f"consumed {len(consumed)} items, each exactly once: {len(set(consumed)) == 10}")
    step("Blocked in get()",
         "Every item is consumed, the producers are gone, and both consumers sit in jobs.get()"
         " on an empty queue: alive, sleeping (state S), using no CPU. Nothing will wake them.",
         "How do we tell a consumer that no more work will ever come?")
    for _ in consumers:
        jobs.put(None)
    print("parent: put one poison pill (None) per consumer")
    for c in consumers:
        c.join()
        print(f"consumer pid {c.pid} ended with exitcode {c.exitcode}")
    step("Poison pills",
         "One None per consumer: each consumer leaves its loop when it gets one.",
         "What would happen with one pill and two consumers?")
