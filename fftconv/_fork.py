"""fftconv's locks in a forked child.

A child is a copy of its parent with one thread. A lock that another thread of
the parent held at the fork stays held in the child, and no thread there will
ever release it: the child's first call that takes it hangs. Every lock of
fftconv's shared state is therefore made here: a forked child gets each one
back released (`os.register_at_fork`), and the modules that own them reset the
state behind them in their own after-fork hooks.

Releasing is not enough where a lock is held across work that a child can
neither finish nor undo: the first import of pyFFTW or numba (the child would
find the module half initialised in ``sys.modules`` and its import lock held by
a thread that does not exist), FFTW's planner (C state) and numba's compiler
(`wait_for` adopts its lock once numba is imported). For such a lock, made
with ``wait_at_fork=True``, the fork waits until no other thread holds it, and
the child sees the work either done or not begun. The wait is bounded
(`WAIT_S`): a fork that waits longer (an FFTW_PATIENT plan) goes ahead.

Waited locks are taken in the order they were made; a module that holds one
while taking another must make the outer one first.
"""

from __future__ import annotations

import os
import threading
import weakref

#: The longest a fork waits for one waited lock, in seconds.
WAIT_S = 30.0

_all: weakref.WeakSet = weakref.WeakSet()
_waited: list = []
_held: list = []


def lock(*, reentrant: bool = False, wait_at_fork: bool = False):
    """A new ``threading.Lock`` (``RLock`` when `reentrant`) that a forked child gets
    released; with `wait_at_fork`, a fork first waits until no thread holds it."""
    lk = threading.RLock() if reentrant else threading.Lock()
    if wait_at_fork:
        return wait_for(lk)
    _all.add(lk)
    return lk


def wait_for(lk):
    """Make a fork wait while another thread holds `lk` (a lock of fftconv or of a
    library it calls), and give a forked child `lk` released; returns `lk`."""
    if lk not in _all:
        _all.add(lk)
        _waited.append(lk)
    return lk


def _before() -> None:
    for lk in _waited:
        if lk.acquire(timeout=WAIT_S):
            _held.append(lk)


def _after_in_parent() -> None:
    while _held:
        _held.pop().release()


def _after_in_child() -> None:
    _held.clear()
    for lk in list(_all):
        lk._at_fork_reinit()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before, after_in_parent=_after_in_parent, after_in_child=_after_in_child
    )
