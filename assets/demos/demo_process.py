"""process: a multiprocessing.Process from start to exitcode, and os.fork returning twice.

Run it under forkscope (`forkscope demo process`) or alone (`python3 demo_process.py`).
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


def work(seconds):
    me = mp.current_process()
    print(f"{me.name} (pid {os.getpid()}): working {seconds:.1f} s; my parent is {os.getppid()}")
    time.sleep(seconds)
    print(f"{me.name}: done, returning from my target: exit code 0")


if __name__ == "__main__":
    p = mp.Process(target=work, args=(3 * PACE,), name="worker-1")
    print(f"before start(): name={p.name} pid={p.pid} is_alive={p.is_alive()}")
    p.start()
    print(f"after start():  name={p.name} pid={p.pid} is_alive={p.is_alive()}")
    step("A child process",
         f"start() forked pid {p.pid}: it appears in the tree under this Python process and runs"
         " work() while the parent goes on. Select it: its command is the parent's.",
         "What will is_alive() and exitcode say after join()?")
    p.join()
    print(f"after join():   pid={p.pid} is_alive={p.is_alive()} exitcode={p.exitcode}")
    step("join() and exitcode",
         "join() waited for the child; exitcode 0 means its target returned normally. The tree"
         " shows it ended with ✓ exit 0.",
         "Next: os.fork(). How many times will fork() return?")
    x = 10
    print(f"before fork: x = {x} (one process, pid {os.getpid()})")
    pid = os.fork()
    if pid == 0:
        x += 1
        print(f"child:  fork() returned 0,    x + 1 = {x}   (pid {os.getpid()})")
        time.sleep(2 * PACE)
        os._exit(0)
    x -= 1
    time.sleep(0.2 * PACE)
    print(f"parent: fork() returned {pid}, x - 1 = {x}   (pid {os.getpid()})")
    step("fork() returned twice",
         f"The child (pid {pid}) got 0 and added 1; the parent got the child's pid and subtracted"
         " 1. Both started from x = 10: each has its own copy of every variable.",
         "If the child changed a list instead of an int, would the parent see it?")
    _, status = os.waitpid(pid, 0)
    print(f"side by side: child saw x = 11, parent sees x = {x}; "
          f"child's wait status {os.waitstatus_to_exitcode(status)}")
