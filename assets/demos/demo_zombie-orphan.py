"""zombie-orphan: a zombie that stays until its parent waits, and an orphan adopted by the
subreaper (forkscope) when its parent dies.

Run it under forkscope (`forkscope demo zombie-orphan`) or alone (`python3 demo_zombie-orphan.py`).
"""
import json
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


if __name__ == "__main__":
    child = os.fork()
    if child == 0:
        os._exit(7)  # ends at once
    time.sleep(1 * PACE)
    print(f"zombie: child {child} has exited with 7, and I have not called wait() yet")
    step("A zombie", f"pid {child} has exited (the tree shows its exit 7), but its parent has"
         " not waited for it: it is a zombie (state Z in ps) and keeps its pid and exit status"
         " until the parent calls wait().", "What happens to zombies whose parent never waits?")
    time.sleep(1 * PACE)
    _, status = os.waitpid(child, 0)
    print(f"zombie: reaped {child}: exit code {os.waitstatus_to_exitcode(status)}; it is gone")
    done_r, done_w = os.pipe()
    middle = os.fork()
    if middle == 0:
        me = os.getpid()
        grandchild = os.fork()
        if grandchild == 0:
            os.close(done_r)
            while os.getppid() == me:
                time.sleep(0.01)  # until the middle process has died
            print(f"orphan {os.getpid()}: my parent {me} died; my parent is now pid {os.getppid()}")
            time.sleep(3 * PACE)
            os._exit(0)  # done_w closes: the grandparent stops waiting
        print(f"middle {os.getpid()}: forked {grandchild}, now exiting without waiting")
        os._exit(0)
    os.close(done_w)
    os.waitpid(middle, 0)
    step("An orphan", f"The middle process {middle} died; its child lives on and was adopted by"
         " the nearest subreaper: forkscope (or init without it). forkscope will reap it.",
         "Why can the grandparent not wait() for its grandchild?")
    os.read(done_r, 1)  # end-of-file when the orphan exits
    print("orphan: gone; its new parent reaped it")
