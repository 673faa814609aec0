"""Peer for benches/shm_refresh.rs: CPython reading every item of a 1,000-item
ShareableList (ints, floats, short strings), per full read. Run: python3 benches/shm_peer.py"""
import timeit
from multiprocessing import shared_memory

items = [i if i % 3 == 0 else float(i) if i % 3 == 1 else f"s{i:06}" for i in range(1000)]
sl = shared_memory.ShareableList(items)
try:
    n = 200
    t = timeit.timeit(lambda: list(sl), number=n) / n
    print(f"python ShareableList read all 1000 items: {t * 1e6:.0f} us per read")
finally:
    sl.shm.close()
    sl.shm.unlink()
