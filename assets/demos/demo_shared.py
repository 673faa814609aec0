"""shared: Value and Array incremented by four processes with and without the lock, and a
ShareableList changing live in shared memory.

Run it under forkscope (`forkscope demo shared`) or alone (`python3 demo_shared.py`).
"""
import json
import multiprocessing as mp
import os
import sys
import time
from multiprocessing.shared_memory import ShareableList

PACE = float(os.environ.get("FORKSCOPE_DEMO_PACE", "1"))
STEP_FD = os.environ.pop("FORKSCOPE_STEP_FD", None)
sys.stdout.reconfigure(line_buffering=True, write_through=False)  # whole lines at once
WORKERS, ROUNDS = 4, 20_000


def step(title, text, question=""):
    """Announce a lesson step; under forkscope, wait here until the teacher presses '.'."""
    words = {"title": title, "text": text, "question": question}
    print("@@forkscope-step", json.dumps(words), flush=True)
    if STEP_FD:
        os.read(int(STEP_FD), 1)  # b"" if forkscope went away: just go on


def add(counter, per_worker, index, locked):
    for _ in range(ROUNDS):
        if locked:
            with counter.get_lock():
                counter.value += 1  # read, add, write: nobody else in between
        else:
            counter.value += 1  # read, add, write: another process may write in between
        per_worker[index] += 1  # a slot of its own: no race


def tick(board):
    for i in range(1, 11):
        board[0], board[1], board[2] = i, f"tick {i}", i / 4
        time.sleep(0.5 * PACE)


def count(locked):
    counter, per_worker = mp.Value("i", 0), mp.Array("i", WORKERS)
    workers = [mp.Process(target=add, args=(counter, per_worker, i, locked))
               for i in range(WORKERS)]
    for p in workers:
        p.start()
    for p in workers:
        p.join()
    expected = WORKERS * ROUNDS
    name = "with the lock" if locked else "without the lock"
    print(f"{name}: counter = {counter.value} of {expected}, lost updates: "
          f"{expected - counter.value}; per-worker Array {list(per_worker)}")


if __name__ == "__main__":
    step("A race", f"{WORKERS} processes each add 1 to a shared Value {ROUNDS} times, first"
         " without taking its lock.", f"Will the counter reach {WORKERS * ROUNDS}?")
    count(locked=False)
    step("The lock", "The same, each += inside `with counter.get_lock()`.",
         "What does the lock cost? Why do the per-worker Array slots never lose a count?")
    count(locked=True)
    board = ShareableList([0, "starting", 0.0])
    print(f"ShareableList in /dev/shm/{board.shm.name}: {list(board)}")
    step("Shared memory, live", f"Press m: the segment {board.shm.name} holds a ShareableList"
         " [tick, text, float]. A child will now change it ten times.",
         "Who can read the segment while the child writes it?")
    writer = mp.Process(target=tick, args=(board,))
    writer.start()
    writer.join()
    print(f"after the child: {list(board)}")
    board.shm.close()
    board.shm.unlink()
    print(f"unlinked /dev/shm/{board.shm.name}")
