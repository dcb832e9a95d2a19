"""Keep freed activation buffers inside the process instead of returning them to the OS.

A training step allocates and frees the same few megabytes of activations, columns and
gradients every time. glibc's ``malloc`` serves blocks above its *mmap threshold* with
``mmap`` and gives them back with ``munmap`` on ``free``, and trims the heap top when more
than the *trim threshold* is free; the next step then takes a page fault on every fresh 4 KiB
page it touches. For the course CNN that is about 2 ms of an 8 ms step (measured with
``benchmarks/bench_nn.py --compare-malloc``). Raising both thresholds lets ``malloc`` reuse
the same memory step after step: the arithmetic is unchanged, only the page faults go.

Applied once when :mod:`mtlearn.nn` is imported; set ``MTLEARN_MALLOC_TUNING=0`` to leave
the allocator alone. Only glibc (Linux) has ``mallopt``; elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1       # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3

#: What :func:`tune_malloc` did: None (not tried), True (applied), False (not available).
applied: bool | None = None


def tune_malloc(mmap_threshold: int = 32 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Serve blocks below ``mmap_threshold`` bytes from the heap and keep up to
    ``trim_threshold`` bytes of free heap. Returns True when glibc accepted both."""
    global applied
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        applied = False
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    applied = bool(mallopt(M_MMAP_THRESHOLD, int(mmap_threshold))
                   and mallopt(M_TRIM_THRESHOLD, int(trim_threshold)))
    return applied


def tune_from_environment() -> None:
    """Apply :func:`tune_malloc` unless ``MTLEARN_MALLOC_TUNING`` is ``0``."""
    if os.environ.get("MTLEARN_MALLOC_TUNING", "1") != "0":
        tune_malloc()
