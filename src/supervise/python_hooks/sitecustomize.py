"""forkscope's Python bootstrap (stdlib only).

forkscope puts this file's directory first on the workers' PYTHONPATH. In every Python
process of the tree that still writes into its worker's shared capture pipe (fd 1 or 2 has
an inode listed in FORKSCOPE_CAPTURE_INODES) and is not the worker itself, it creates a pipe
of its own per such fd, hands the read ends to forkscope over FORKSCOPE_OUTPUT_SOCKET
(SCM_RIGHTS) and, once forkscope accepted them, dup2s the write ends onto fd 1 and 2: its
lines are then filed under its own pid. Processes forked later do the same at once
(os.register_at_fork). Any failure leaves the process on the shared pipe, unchanged.
Then the sitecustomize the program would have had without forkscope is imported.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def _forkscope_shared_fds(inodes):
    shared = []
    for fd in (1, 2):
        try:
            if os.fstat(fd).st_ino in inodes:
                shared.append(fd)
        except OSError:
            pass
    return shared


def _forkscope_own_pipes(state):
    try:
        targets = _forkscope_shared_fds(state["inodes"])
        # A worker (the leader of its process group) keeps its pipes.
        if not targets or os.getpid() == os.getpgrp():
            return
        _forkscope_switch(state, targets)
    except Exception:
        pass


def _forkscope_switch(state, targets):
    # _socket, not socket: the C module alone costs a fraction of a millisecond to import.
    import _socket

    pipes = []
    try:
        for _ in targets:
            pipes.append(os.pipe())
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.settimeout(2.0)
            sock.connect(state["socket"])
            message = "%d %s" % (os.getpid(), ",".join(str(fd) for fd in targets))
            fds = b"".join(r.to_bytes(4, sys.byteorder) for r, _ in pipes)
            rights = (_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)
            sock.sendmsg([message.encode()], [rights])
            accepted = sock.recv(1) == b"1"
        finally:
            sock.close()
        for read_end, _ in pipes:
            os.close(read_end)
        if not accepted:
            for _, write_end in pipes:
                os.close(write_end)
            return
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        for fd, (_, write_end) in zip(targets, pipes):
            os.dup2(write_end, fd)
            os.close(write_end)
            state["inodes"].add(os.fstat(fd).st_ino)
        os.environ["FORKSCOPE_CAPTURE_INODES"] = ",".join(
            str(inode) for inode in sorted(state["inodes"])
        )
    except Exception:
        for pair in pipes:
            for end in pair:
                try:
                    os.close(end)
                except OSError:
                    pass


def _forkscope_start():
    sys.path[:] = [entry for entry in sys.path if entry != _HERE]
    socket_path = os.environ.get("FORKSCOPE_OUTPUT_SOCKET", "")
    try:
        inodes = {
            int(text)
            for text in os.environ.get("FORKSCOPE_CAPTURE_INODES", "").split(",")
            if text
        }
    except ValueError:
        inodes = set()
    if not (inodes and socket_path):
        return
    state = {"inodes": inodes, "socket": socket_path}
    _forkscope_own_pipes(state)
    os.register_at_fork(after_in_child=lambda: _forkscope_own_pipes(state))


_forkscope_start()

# The program's own sitecustomize, under its real name: with our directory gone from
# sys.path, importing the name again finds the next one (site.py reports its errors).
_forkscope_self = sys.modules.pop("sitecustomize")
try:
    import sitecustomize  # noqa: F401
except ModuleNotFoundError as error:
    # None: this module stays (the import machinery expects a module under the name).
    sys.modules["sitecustomize"] = _forkscope_self
    if error.name != "sitecustomize":
        raise
