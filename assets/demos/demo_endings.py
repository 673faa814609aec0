"""endings: six ways a child process ends, with Python's exitcode and the shell's $? side by side.

Run it under forkscope (`forkscope demo endings`) or alone (`python3 demo_endings.py`).
"""
import ctypes
import json
import multiprocessing as mp
import os
import resource
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


def exit_3():
    sys.exit(3)


def raise_error():
    raise ValueError("an uncaught exception")


def sleep_forever():
    time.sleep(3600)


def segfault():
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file in your directory
    ctypes.string_at(0)  # read address 0: SIGSEGV


def clean():
    print(f"clean (pid {os.getpid()}): returning normally")


ENDINGS = [("sys.exit(3)", exit_3, None), ("exception", raise_error, None),
           ("terminate()", sleep_forever, "terminate"), ("kill()", sleep_forever, "kill"),
           ("segfault", segfault, None), ("clean exit", clean, None)]

if __name__ == "__main__":
    step("Six children, six endings",
         "Each child will end differently: exit(3), an exception, terminate() (SIGTERM), kill()"
         " (SIGKILL), a segfault (SIGSEGV) and a clean return. Watch the tree's ✓ and ✗ marks.",
         "Which of these can the child itself not catch or clean up after?")
    children = []
    for label, target, how in ENDINGS:
        p = mp.Process(target=target, name=label)
        p.start()
        children.append((label, p, how))
    time.sleep(1 * PACE)
    for label, p, how in children:
        if how:
            print(f"parent: calling {how}() on {label} (pid {p.pid})")
            getattr(p, how)()
        p.join()
    print(f"{'ending':<12} {'pid':>7} {'Python exitcode':>16} {'shell $?':>9}")
    for label, p, how in children:
        shell = p.exitcode if p.exitcode >= 0 else 128 - p.exitcode
        print(f"{label:<12} {p.pid:>7} {p.exitcode:>16} {shell:>9}")
    step("exitcode and $?",
         "Python reports death by signal N as exitcode -N; a shell reports 128+N. Select each"
         " child: forkscope's detail pane shows both numbers and the signal's name.",
         "A job script says 137. What happened to the process?")
