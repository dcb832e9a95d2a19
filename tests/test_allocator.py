"""The allocator tuning is applied on import, reaches worker threads, can be turned off, and
changes no numbers (each case in a fresh interpreter: mallopt settings are process-wide)."""

import json
import os
import platform
import subprocess
import sys

import pytest

from mtlearn.nn import allocator

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
needs_glibc = pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")


def _run(code, tuning):
    """Run ``code`` in a fresh interpreter with ``MTLEARN_MALLOC_TUNING`` unset (None) or
    set to ``tuning``; return its stdout."""
    env = dict(os.environ)
    env.pop("MTLEARN_MALLOC_TUNING", None)
    if tuning is not None:
        env["MTLEARN_MALLOC_TUNING"] = tuning
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True, timeout=120).stdout


STATE = ("import json; from mtlearn import info; from mtlearn.nn import allocator as a;"
         "print(json.dumps([a.applied, a.settings, a.describe(),"
         " info.machine_info()['notes'].get('malloc')]))")


@needs_glibc
def test_tuning_is_on_by_default_with_the_top_pad():
    applied, settings, text, note = json.loads(_run(STATE, None))
    assert applied is True
    assert settings == {"M_MMAP_THRESHOLD": 32 << 20, "M_TRIM_THRESHOLD": 256 << 20,
                        "M_TOP_PAD": allocator.HEAP_MAX}
    assert "top pad 64 MiB" in text and "MTLEARN_MALLOC_TUNING=0" in text
    assert note == text                      # what mtlearn.info reports


def test_tuning_off_leaves_malloc_alone_and_says_so():
    applied, settings, text, note = json.loads(_run(STATE, "0"))
    assert applied is None and settings == {}
    assert "defaults" in text and "MTLEARN_MALLOC_TUNING=0" in text
    assert note == text


# A worker thread allocates n arrays of 8 MiB (n = 8: 64 MiB, n = 20: 160 MiB, both more than
# one 64 MiB heap of its arena), frees them, and does it again; the second time, how many bytes
# did glibc give back to the OS on the free (mallinfo2: arena = heap bytes held, hblkhd =
# mmap'ed bytes held)? Prints the larger of the two. Which heap glibc unmaps depends on the
# layout: on glibc 2.36 the thresholds alone (without the top pad) give back 8 MiB at n = 8
# and 48 MiB at n = 20; glibc's defaults the same.
RETURNED = """
import ctypes, threading
import numpy as np
from mtlearn import nn  # noqa: F401  (applies the tuning unless MTLEARN_MALLOC_TUNING=0)

class Info(ctypes.Structure):
    _fields_ = [(f, ctypes.c_size_t) for f in ("arena ordblks smblks hblks hblkhd usmblks "
                                              "fsmblks uordblks fordblks keepcost").split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
def held():
    m = libc.mallinfo2()
    return m.arena + m.hblkhd
out = []
def work():
    for n in (8, 20):
        for _ in range(2):
            blocks = [np.ones(1 << 21, np.float32) for _ in range(n)]
            peak = held()
            del blocks
        out.append(peak - held())
t = threading.Thread(target=work)
t.start(); t.join()
print(max(out))
"""


@needs_glibc
def test_a_worker_thread_keeps_its_freed_buffers_only_when_tuned():
    if not hasattr(__import__("ctypes").CDLL("libc.so.6"), "mallinfo2"):
        pytest.skip("glibc older than 2.33 has no mallinfo2")
    kept = int(_run(RETURNED, None))
    given_back = int(_run(RETURNED, "0"))
    assert kept < 1 << 20                    # tuned: the worker's heaps stay
    assert given_back >= 8 << 20             # glibc defaults: at least one block returned


def test_tuning_changes_no_result():
    code = ("import numpy as np; from mtlearn import nn; m = nn.course_cnn(seed=1);"
            "x = np.random.default_rng(0).standard_normal((8, 1, 28, 28), dtype=np.float32);"
            "print(m(x).tobytes().hex())")
    outs = [_run(code, v) for v in ("0", "1")]
    assert outs[0] == outs[1] and len(outs[0]) > 100


@pytest.mark.parametrize(("kwargs", "error"), [({"top_pad": -1}, ValueError),
                                                ({"trim_threshold": 2.5}, TypeError),
                                                ({"mmap_threshold": "32M"}, TypeError)])
def test_bad_settings_are_refused_before_any_mallopt(kwargs, error):
    before = dict(allocator.settings)
    with pytest.raises(error, match=next(iter(kwargs))):
        allocator.tune_malloc(**kwargs)
    assert allocator.settings == before
