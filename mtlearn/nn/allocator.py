"""Keep freed activation buffers inside the process, on every thread, instead of returning
them to the OS.

A training step allocates and frees the same few megabytes of activations, columns and
gradients every time. When glibc's ``malloc`` gives such memory back to the OS, the next step
takes a page fault on every fresh 4 KiB page it touches: for the course CNN that is about 2 ms
of an 8 ms step (``benchmarks/bench_nn.py --compare-malloc``). Three ``mallopt`` settings,
applied once when :mod:`mtlearn.nn` is imported, make ``malloc`` reuse the same memory step
after step; the arithmetic is unchanged, only the page faults go:

``M_MMAP_THRESHOLD`` = 32 MiB (the most glibc accepts)
    blocks below it come from the heap instead of a private ``mmap`` that ``free`` unmaps.
``M_TRIM_THRESHOLD`` = 256 MiB
    the free top of a heap is given back only beyond this. It governs the main heap
    (``systrim``) *and*, in recent glibc, the shrinking of a thread's heap (``heap_trim`` ->
    ``shrink_heap``, an ``madvise(MADV_DONTNEED)``): checked on glibc 2.36, a worker thread
    that frees an 8 or 20 MiB block re-faults it every time under the 128 KiB default and
    never under 256 MiB.
``M_TOP_PAD`` = 64 MiB (``HEAP_MAX``, the size of one heap of a thread's arena)
    the one that fixes worker threads. Every thread other than the main one allocates from
    its own *arena*, a chain of heaps of at most 64 MiB each. When a free leaves a whole
    heap of the chain empty, ``heap_trim`` unmaps it, and no trim threshold stops that:
    only the top pad does (a heap stays while the pad is larger than what would be freed).
    At batch 1024 the course CNN needs more than one heap, so without the pad a worker
    thread unmapped and re-faulted ~24 MB (6,100 pages) in every step, and the same step
    took 1.14-1.30x as long on a worker thread as on the main thread (2 cores; 1.31x
    recorded on 16). With the pad no thread faults: worker/main 0.97-1.03 at batch 1024,
    0.99-1.05 at batch 256.

Measured on 2 cores shared with other jobs (CPython 3.11, numpy 2.4.6, OpenBLAS, glibc 2.36;
5 repeats of 5 rounds, all settings interleaved, faults counted per thread; the tables are
in ``benchmarks/RESULTS.md``, ``python benchmarks/bench_nn.py --worker --malloc-variants``),
worker/main at batch 1024: thresholds only (this module before) 1.14-1.30; thresholds +
``M_ARENA_MAX=2`` (= cores here) 1.22-1.45, still faulting; thresholds + ``M_ARENA_MAX=1``
0.97-1.05; thresholds + top pad (now) 0.97-1.03. Sync data parallelism loses nothing (the 3
quietest runs, x2 over serial: batch 256 1.48-1.67x now vs 1.34-1.65x before, batch 1024
1.73-1.76x vs 1.18-1.55x; its page faults per step at batch 1024 fall from 2,800-5,200 to
400-480).
One arena for all threads removes the faults too, but then every thread allocates under one
lock: recorded on 16 cores (free-threaded 3.13, separate runs), sync x16 at batch 256 took
6.7 ms per step with ``MALLOC_ARENA_MAX=1`` against 4.5 ms with glibc's arenas. So the
arenas stay one per thread and only stop giving memory back.

The price is memory: each thread's arena keeps its peak working set, as the main heap
already did: 684 MB resident instead of 499 MB after batch-256 and batch-1024 steps on the
main thread and one worker (one shared arena: 441 MB; glibc defaults: ~300 MB). Set
``MTLEARN_MALLOC_TUNING=0`` to leave the allocator alone. Only glibc (Linux) has
``mallopt``; elsewhere this does nothing. :func:`describe` says in one line what is in
effect (``mtlearn.info`` shows it under ``malloc``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

from ..runtime import checks, info

M_TRIM_THRESHOLD = -1       # glibc's mallopt parameter numbers (malloc.h)
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

#: glibc's largest heap of a thread's arena (``HEAP_MAX_SIZE``, 2 x 32 MiB on 64-bit); a top
#: pad this large means no heap of an arena is ever unmapped while the process lives.
HEAP_MAX = 2 * 4 * 1024 * 1024 * ctypes.sizeof(ctypes.c_long)

#: What :func:`tune_malloc` did: None (not tried), True (applied), False (not available).
applied: bool | None = None
#: The settings glibc accepted, e.g. ``{"M_MMAP_THRESHOLD": 33554432, ...}`` (bytes).
settings: dict[str, int] = {}
_turned_off = False


def tune_malloc(mmap_threshold: int = 32 << 20, trim_threshold: int = 256 << 20,
                top_pad: int = HEAP_MAX) -> bool:
    """Serve blocks below ``mmap_threshold`` bytes from the heap, keep up to
    ``trim_threshold`` bytes of free heap top, and pad heaps by ``top_pad`` bytes (with
    :data:`HEAP_MAX`, no thread's heap is unmapped). Returns True when glibc accepted all
    three; :data:`settings` holds the ones it accepted."""
    global applied
    wanted = {"M_MMAP_THRESHOLD": (M_MMAP_THRESHOLD,
                                   checks.integer("mmap_threshold", mmap_threshold, min=0)),
              "M_TRIM_THRESHOLD": (M_TRIM_THRESHOLD,
                                   checks.integer("trim_threshold", trim_threshold, min=0)),
              "M_TOP_PAD": (M_TOP_PAD, checks.integer("top_pad", top_pad, min=0))}
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        applied = False
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings.clear()
    for name, (param, value) in wanted.items():
        if mallopt(param, value) == 1:
            settings[name] = value
    applied = len(settings) == len(wanted)
    return applied


def describe() -> str:
    """One line: the malloc tuning in effect in this process."""
    if applied:
        mib = {k: f"{v / 2**20:g} MiB" for k, v in settings.items()}
        return (f"glibc malloc keeps freed memory on every thread (mmap threshold "
                f"{mib['M_MMAP_THRESHOLD']}, trim threshold {mib['M_TRIM_THRESHOLD']}, top pad "
                f"{mib['M_TOP_PAD']}); MTLEARN_MALLOC_TUNING=0 turns it off")
    if settings:
        return f"glibc malloc partly tuned: only {', '.join(settings)} accepted"
    if applied is False:
        return "allocator not tuned: no glibc mallopt on this system"
    if _turned_off:
        return ("glibc malloc at its defaults (MTLEARN_MALLOC_TUNING=0): steps may page-fault "
                "on freed buffers, more on worker threads")
    return "allocator not tuned (mtlearn.nn.allocator.tune_malloc not called)"


def tune_from_environment() -> None:
    """Apply :func:`tune_malloc` unless ``MTLEARN_MALLOC_TUNING`` is ``0``, and record what is
    in effect with :func:`mtlearn.info.note` (``machine_info()["notes"]["malloc"]``)."""
    global _turned_off
    _turned_off = os.environ.get("MTLEARN_MALLOC_TUNING", "1") == "0"
    if not _turned_off:
        tune_malloc()
    info.note("malloc", describe())
