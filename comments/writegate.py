"""One SQLite writer at a time, handed over the moment the last one commits.

SQLite lets one connection write at a time. A connection that finds the lock taken sleeps in
SQLite's busy handler, in steps that grow to 100 ms, and tries again; under load (several
threads per worker, several workers) a writer can sleep through many commits and a
moderator's click waits a second or more. So before its first write a transaction passes
this gate: a lock per database file that threads of one process queue on (a ``Lock``) and
processes queue on (``flock`` on a file beside the database), released when the connection
goes back to the pool after its commit or rollback. A waiting writer is then woken as soon
as the gate opens, and SQLite's own lock is free by then.

The gate never waits forever: after the database's busy timeout it lets the writer through
to SQLite's own waiting, exactly as before. A process that dies releases its ``flock``.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time

_POLL_S = 0.0005  # how often a process waiting for another process's writer looks again


class WriteGate:
    def __init__(self, database_path: str) -> None:
        self.path = database_path + "-parley-writer"
        self._lock = threading.Lock()  # a Lock, not an RLock: any thread may hand it back
        self._owner: int | None = None
        self._depth = 0  # one thread holding it through two connections
        self._fd: int | None = None

    def acquire(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` to become the writer; False means go on without it."""
        me = threading.get_ident()
        if self._owner == me:
            self._depth += 1
            return True
        deadline = time.monotonic() + timeout_s
        if not self._lock.acquire(timeout=timeout_s):
            return False
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            while True:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        self._lock.release()
                        return False
                    time.sleep(_POLL_S)
        except BaseException:
            self._lock.release()
            raise
        self._owner, self._depth = me, 1
        return True

    def release(self) -> None:
        self._depth -= 1
        if self._depth > 0:
            return
        self._owner = None
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()


_gates: dict[str, WriteGate] = {}
_gates_lock = threading.Lock()


def gate_for(database_path: str | None) -> WriteGate | None:
    """The gate of a SQLite file (None for an in-memory database: one connection only)."""
    if not database_path or database_path == ":memory:" or database_path.startswith("file:"):
        return None
    path = os.path.abspath(database_path)
    with _gates_lock:
        gate = _gates.get(path)
        if gate is None:
            gate = _gates[path] = WriteGate(path)
        return gate


def reset_after_fork() -> None:
    """A forked child must not inherit its parent's holds or descriptors."""
    global _gates_lock
    _gates.clear()
    _gates_lock = threading.Lock()


os.register_at_fork(after_in_child=reset_after_fork)
