"""forkscope's helper for Python programs (stdlib only).

    import forkscope
    counter = forkscope.watch(multiprocessing.Value("i", 0), "counter")
    barrier = forkscope.Barrier("step", parties=4)   # multiprocessing.Barrier's API
    forkscope.mark("epoch 1 done")

Under forkscope (``FORKSCOPE_SOCKET`` set) these talk to its control socket: watched objects
are read from memory and shown by name (``forkscope ctl status``, ``inspect --json`` under
``watched``); the barrier is hosted by forkscope, which breaks it when a party dies; marks
appear on the timeline. Outside forkscope every call is a silent no-op, so the program keeps
working unchanged (a ``Barrier`` then passes at once). Protocol: docs/protocol.md.
"""

import itertools
import json
import os
import socket
import threading

__all__ = ["Barrier", "BrokenBarrierError", "active", "mark", "watch"]


class BrokenBarrierError(threading.BrokenBarrierError):
    """The hosted barrier broke (a party died, timeout, abort, reset)."""


_ids = itertools.count(1)
_shared = {"pid": None, "conn": None}
_shared_lock = threading.Lock()
# Barrier waits use a connection per thread (a wait blocks it); closing it is leaving.
_waits = threading.local()


def active():
    """True when running under forkscope."""
    return bool(os.environ.get("FORKSCOPE_SOCKET"))


def _connect():
    path = os.environ.get("FORKSCOPE_SOCKET")
    if not path:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    return conn.makefile("rb"), conn


def _identity():
    fields = {}
    worker = os.environ.get("FORKSCOPE_WORKER", "")
    if worker.isdigit():
        fields["worker"] = int(worker)
        fields["pool"] = os.environ.get("FORKSCOPE_POOL")
    return fields


def _exchange(connection, op, fields):
    reader, conn = connection
    request_id = next(_ids)
    request = dict(fields, id=request_id, op=op)
    conn.sendall((json.dumps(request) + "\n").encode())
    while True:
        line = reader.readline()
        if not line:
            raise ConnectionError("forkscope closed the connection")
        reply = json.loads(line)
        if reply.get("id") == request_id and "event" not in reply:
            return reply


def _request(op, **fields):
    """One request on this process's shared connection; None when not under forkscope or
    when forkscope cannot be reached (helpers never break the program)."""
    if not active():
        return None
    with _shared_lock:
        try:
            if _shared["pid"] != os.getpid() or _shared["conn"] is None:
                # A forked child must not share its parent's connection.
                _shared["conn"] = _connect()
                _shared["pid"] = os.getpid()
            return _exchange(_shared["conn"], op, fields)
        except (OSError, ValueError):
            _shared["conn"] = None
            return None


def mark(label):
    """A named instant on forkscope's timeline (a ``mark`` event)."""
    _request("mark", label=str(label), **_identity())


def _arena_place(wrapper):
    (arena, start, _stop), size = wrapper._state
    fd = getattr(arena, "fd", -1)
    if fd is None or fd < 0:
        raise TypeError("this heap arena has no file descriptor")
    return {"fd": fd, "offset": start, "size": size}


def _semaphore_address(semlock_owner):
    return {"address": semlock_owner._semlock.handle}


def _describe(obj):
    """What forkscope needs to find and decode ``obj``."""
    import multiprocessing.synchronize as synchronize

    cls = type(obj).__name__
    module = type(obj).__module__
    if module == "multiprocessing.shared_memory" and cls == "ShareableList":
        return {"kind": "shareable_list", "segment": obj.shm.name, "size": obj.shm.size}
    if module == "multiprocessing.shared_memory" and cls == "SharedMemory":
        return {"kind": "shared_memory", "segment": obj.name, "size": obj.size}
    if isinstance(obj, synchronize.Barrier):
        place = _arena_place(obj._wrapper)
        return dict(place, kind="barrier", parties=obj._parties)
    if isinstance(obj, synchronize.Event):
        return dict(_semaphore_address(obj._flag), kind="event")
    if isinstance(obj, synchronize.Condition):
        return dict(_semaphore_address(obj._lock), kind="condition")
    if isinstance(obj, synchronize.RLock):
        return dict(_semaphore_address(obj), kind="rlock")
    if isinstance(obj, synchronize.Lock):
        return dict(_semaphore_address(obj), kind="lock")
    if isinstance(obj, synchronize.Semaphore):
        return dict(_semaphore_address(obj), kind="semaphore")
    if module == "multiprocessing.queues" and hasattr(obj, "_sem"):
        return dict(_semaphore_address(obj._sem), kind="queue", length=obj._maxsize)
    inner = getattr(obj, "_obj", obj)  # Synchronized wrappers keep the ctypes object here
    wrapper = getattr(inner, "_wrapper", None)
    if wrapper is None:
        raise TypeError("forkscope.watch: %s is not a shared multiprocessing object" % cls)
    place = _arena_place(wrapper)
    element = getattr(inner, "_type_", None)
    if isinstance(element, str):
        return dict(place, kind="value", typecode=element)
    code = getattr(element, "_type_", None)
    if isinstance(code, str):
        return dict(place, kind="array", typecode=code, length=len(inner))
    return dict(place, kind="bytes")


def watch(obj, name):
    """Names a shared object so forkscope shows it; returns ``obj``.

    Value, Array (plain or synchronized), Barrier, Lock, RLock, Semaphore, Event, Condition,
    Queue, SharedMemory and ShareableList. Unknown objects are ignored outside forkscope and
    raise TypeError under it.
    """
    if not active():
        return obj
    _request("watch", name=str(name), **_describe(obj))
    return obj


class Barrier:
    """A barrier hosted by forkscope, with ``multiprocessing.Barrier``'s API.

    Any process (fork, spawn, or not Python at all: ``forkscope barrier wait``) that uses the
    same name and parties meets at the same barrier. Picklable: pass it to children.
    """

    def __init__(self, name, parties, action=None, timeout=None):
        self._name = str(name)
        self._parties = int(parties)
        self._action = action
        self._timeout = timeout

    def __getstate__(self):
        return (self._name, self._parties, self._action, self._timeout)

    def __setstate__(self, state):
        self._name, self._parties, self._action, self._timeout = state

    def wait(self, timeout=None):
        """Blocks until ``parties`` processes arrived; returns 0..parties-1 (the last to
        arrive gets 0). Raises BrokenBarrierError if the barrier breaks."""
        if not active():
            return 0
        if timeout is None:
            timeout = self._timeout
        fields = dict(_identity(), name=self._name, parties=self._parties)
        if timeout is not None:
            fields["timeout"] = float(timeout)
        if getattr(_waits, "pid", None) != os.getpid() or _waits.conn is None:
            _waits.conn = _connect()
            _waits.pid = os.getpid()
        reader, conn = _waits.conn
        try:
            reply = _exchange(_waits.conn, "barrier_wait", fields)
        except BaseException:
            # Interrupted mid-wait: this connection's reply is still pending; leave.
            _waits.conn = None
            reader.close()
            conn.close()
            raise
        if not reply.get("ok"):
            raise BrokenBarrierError(reply.get("error", {}).get("message", "broken"))
        index = reply["result"]["index"]
        if index == 0 and self._action is not None:
            self._action()
        return index

    def abort(self):
        _request("barrier_abort", name=self._name)

    def reset(self):
        _request("barrier_reset", name=self._name)

    def _status(self):
        reply = _request("barrier_status", name=self._name)
        if reply and reply.get("ok") and reply.get("result"):
            return reply["result"]
        return {}

    @property
    def parties(self):
        return self._parties

    @property
    def n_waiting(self):
        return self._status().get("waiting", 0)

    @property
    def broken(self):
        return bool(self._status().get("broken"))
