"""Giving the system back the memory a large transaction freed.

A revocation that reaches 10,000 descendants builds an event for each (about 25 MB of Python
objects at its peak) and frees them when it commits. Objects over 512 bytes (the events'
JSON text, large dicts and lists) come from the C allocator, whose freed pages stay with the
process when anything allocated after them is still in use, as in a server it always is: the
process kept 13 MB more resident after such a revocation than after a trim. glibc's
``malloc_trim`` gives back every free page of every thread's heap; it takes a few
milliseconds, holding each heap's lock in turn, so it is called only after the rare
transactions that are that large (:data:`packyard.store.engine.LARGE_WRITE_EVENTS`).
Elsewhere than glibc (musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from collections.abc import Callable
from functools import cache


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    if platform.libc_ver()[0] != "glibc":
        return None
    name = ctypes.util.find_library("c")
    trim: Callable[[int], int] | None = getattr(ctypes.CDLL(name), "malloc_trim", None)
    return trim


def release_freed() -> bool:
    """Return the C heaps' free pages to the system; whether the C library can."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
