"""start-methods: the same child under fork, spawn and forkserver, the helper processes each
start method creates, and a leaked SharedMemory cleaned by the resource tracker at the end.

Run it under forkscope (`forkscope demo start-methods`) or alone (`python3 demo_start-methods.py`).
"""
import json
import multiprocessing as mp
import os
import sys
from multiprocessing.shared_memory import SharedMemory

PACE = float(os.environ.get("FORKSCOPE_DEMO_PACE", "1"))
STEP_FD = os.environ.pop("FORKSCOPE_STEP_FD", None)
sys.stdout.reconfigure(line_buffering=True, write_through=False)  # whole lines at once
LOADED_AT = os.getpid()  # runs again in every child that re-imports this file


def step(title, text, question=""):
    """Announce a lesson step; under forkscope, wait here until the teacher presses '.'."""
    words = {"title": title, "text": text, "question": question}
    print("@@forkscope-step", json.dumps(words), flush=True)
    if STEP_FD:
        os.read(int(STEP_FD), 1)  # b"" if forkscope went away: just go on


def hello(method):
    fresh = "re-imported this file" if LOADED_AT == os.getpid() else "inherited the parent's memory"
    print(f"{method}: child pid {os.getpid()}, parent {os.getppid()}: {fresh}")


def leak():
    segment = SharedMemory(create=True, size=4096)
    print(f"leak: created /dev/shm/{segment.name} and exit without unlink()")
    segment.close()


if __name__ == "__main__":
    for method, text in (
            ("fork", "fork copies this process: no new interpreter, no helper process."),
            ("spawn", "spawn starts a fresh python that re-imports this file, and starts the"
                      " resource tracker: a helper that cleans up what children leak."),
            ("forkserver", "forkserver starts a server once; it forks every later child.")):
        step(f"Start method: {method}", text + " Look at the tree: who is whose parent?",
             f"What does a {method} child share with its parent?")
        child = mp.get_context(method).Process(target=hello, args=(method,))
        child.start()
        child.join()
    step("A leak", "A spawn child will create a SharedMemory segment and exit without"
         " unlink(). Press m to watch /dev/shm.", "Who removes the segment, and when?")
    child = mp.get_context("spawn").Process(target=leak)
    child.start()
    child.join()
    print("parent: ending; the resource tracker unlinks what was leaked and says so on stderr")
