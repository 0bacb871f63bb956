"""Giving the system back the memory a large transaction freed.

A revocation that reaches 10,000 descendants builds an event for each (about 25 MB of Python
objects at its peak) and frees them when it commits. Objects over 512 bytes (the events'
JSON text, large dicts and lists) come from the C allocator, whose freed pages stay with the
process when anything allocated after them is still in use, as in a server it always is: the
process kept 13 MB more resident after such a revocation than after a trim. glibc's
``malloc_trim`` gives back the free pages inside every thread's heap; it takes a few
milliseconds, holding each heap's lock in turn, so it is called only after the rare
transactions that are that large (:data:`packyard.store.engine.LARGE_WRITE_EVENTS`).
Elsewhere than glibc (musl, macOS) the trim does nothing.

The free end of a thread's heap is another matter: glibc gives it back on its own, once it
outgrows the trim threshold, and no trim reaches it. That threshold moves: once
a block larger than glibc's mmap threshold (128 KiB at first) is freed, glibc raises the mmap
threshold to that block's size (up to 32 MiB) and the trim threshold to twice it, for good.
After a revocation whose PostgreSQL results took tens of MB, a write thread's heap kept up to
64 MiB of free memory at its end: 22 MB more resident after a 10,000-descendant revocation
than before it, which neither a trim nor closing the connection gave back.
:func:`bound_heap_ends` fixes both thresholds at start-up (setting them stops glibc's own
adjustments): 6.5 MB more after the same revocation; reads and pushes as fast (alternated
runs at size S, within the noise). Not always to nothing: a thread's heap is a chain of
segments of 64 MiB, and when it had to grow into a second one (the address layout decides),
only the last segment's free end is its end; the first keeps what was freed at its own
(about 11 of 30 MiB in ``tests/test_heap.py``, in about half of fresh processes).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import platform
from collections.abc import Callable
from functools import cache

# mallopt's parameters (glibc's malloc.h) and the values Packyard gives them: blocks up to
# glibc's own ceiling for its mmap threshold come from the heaps, as they do once glibc has
# raised it; a heap whose free end outgrows 4 MiB gives it back.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 4 * 2**20


@cache
def _libc() -> ctypes.CDLL | None:
    if platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL(ctypes.util.find_library("c"))


def _malloc_trim() -> Callable[[int], int] | None:
    libc = _libc()
    return None if libc is None else getattr(libc, "malloc_trim", None)


def bound_heap_ends() -> bool:
    """Fix glibc's mmap and trim thresholds (see the module's docstring); whether the C
    library took them."""
    libc = _libc()
    if libc is None:
        return False
    settings = ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return all(libc.mallopt(parameter, value) == 1 for parameter, value in settings)


def release_freed() -> bool:
    """Free the garbage in reference cycles, then return the C heaps' free pages to the
    system; whether the C library can do the second.

    What a large transaction built in reference cycles is freed by a full collection only,
    which the interpreter makes once enough objects have been allocated after it, with no
    trim after it: until then those objects hold pages a trim cannot give back. A full
    collection also empties the interpreter's free lists. After the benchmark's revocation of
    10,000 descendants the collection took 18 ms on SQLite and 32 ms on PostgreSQL, and the
    SQLite server kept 3 MB less (size S, three runs or more each)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
