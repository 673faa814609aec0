"""pipe: a three-stage pipeline over Pipe(), then the same pipeline hung on an end nobody writes.

Run it under forkscope (`forkscope demo pipe`) or alone (`python3 demo_pipe.py`).
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


def source(out):
    for n in range(1, 6):
        out.send(n)
        time.sleep(0.1 * PACE)
    out.send(None)


def square(inp, out, unused_write_end=None):
    if unused_write_end is not None:
        unused_write_end.close()  # our copy of the end we read from: close it, or no EOF
    try:
        while (n := inp.recv()) is not None:
            out.send(n * n)
    except EOFError:
        print(f"square (pid {os.getpid()}): recv() raised EOFError: nobody can write any more")
    out.send(None)


def sink(inp):
    total = 0
    while (n := inp.recv()) is not None:
        total += n
    print(f"sink (pid {os.getpid()}): sum of the squares = {total}")


if __name__ == "__main__":
    step("A pipeline", "source → square → sink, three processes joined by two Pipe()s. Each"
         " stage blocks in recv() until the stage before it sends.",
         "What does the sink print for 1..5?")
    (a_in, a_out), (b_in, b_out) = mp.Pipe(duplex=False), mp.Pipe(duplex=False)
    stages = [mp.Process(target=source, args=(a_out,), name="source"),
              mp.Process(target=square, args=(a_in, b_out), name="square"),
              mp.Process(target=sink, args=(b_in,), name="sink")]
    [p.start() for p in stages]
    [p.join() for p in stages]
    print(f"pipeline done: exitcodes {[p.exitcode for p in stages]}")
    d_in, d_out = mp.Pipe(duplex=False)
    hung = [mp.Process(target=sink, args=(d_in,), name="sink")]
    hung[0].start()  # before the next Pipe exists: sink holds no copy of its ends
    c_in, c_out = mp.Pipe(duplex=False)
    hung.insert(0, mp.Process(target=square, args=(c_in, d_out, c_out), name="square"))
    hung[0].start()
    time.sleep(0.5 * PACE)
    print(f"the same pipeline without its source: square is pid {hung[0].pid}")
    step("A hang", f"No source this time. square (pid {hung[0].pid}) waits in recv() on a pipe"
         " whose write end this parent holds and never writes; sink waits on square. Both"
         " are alive, sleeping (state S), 0% CPU: nothing in the tree looks wrong.",
         "Who could unblock square? What if the parent closes its end?")
    c_out.close()
    print("parent: closed the last write end")
    [p.join() for p in hung]
    print(f"hung pipeline ended: exitcodes {[p.exitcode for p in hung]}")
    step("EOF ends the hang", "Once every copy of the write end is closed, recv() raises"
         " EOFError. The child closed its inherited copy at once, or it would hang for ever.",
         "Why does a forked child hold a copy of the parent's pipe ends?")
