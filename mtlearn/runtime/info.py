"""What this machine and interpreter are: the facts every measurement is reported with."""

from __future__ import annotations

import copy
import functools
import os
import platform
import sys
import sysconfig


def cpu_count() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def free_threaded_build() -> bool:
    """True when this CPython was built with ``--disable-gil`` (PEP 703)."""
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def gil_enabled() -> bool:
    """True while the GIL is on now (always on a normal build; on a free-threaded build it
    can be turned back on by ``PYTHON_GIL=1`` or by importing a non-free-threaded extension)."""
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


def blas_info() -> list[dict]:
    """The BLAS/OpenMP libraries numpy loaded: ``[{"api", "library", "version", "threads",
    "kernel"}]`` as reported by threadpoolctl."""
    import numpy  # noqa: F401  (loads numpy's BLAS so threadpoolctl can see it)
    from threadpoolctl import threadpool_info

    return [{"api": p.get("user_api"), "library": p.get("internal_api"),
             "version": p.get("version"), "threads": p.get("num_threads"),
             "kernel": p.get("architecture")} for p in threadpool_info()]


def machine_info() -> dict:
    """Cores, Python version and build, GIL state, numpy version and BLAS, as a dict.

    Read once per process (threadpoolctl's scan of the loaded libraries takes milliseconds,
    and every ``History`` carries these facts); ``gil_enabled`` is read afresh each call.
    """
    return {**copy.deepcopy(_machine_info()), "gil_enabled": gil_enabled()}


@functools.cache
def _machine_info() -> dict:
    import numpy

    return {
        "cores": cpu_count(),
        "machine": platform.machine(),
        "system": platform.system(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "free_threaded_build": free_threaded_build(),
        "gil_enabled": gil_enabled(),
        "numpy": numpy.__version__,
        "blas": blas_info(),
    }


def describe(info: dict | None = None) -> str:
    """``machine_info()`` as a few human-readable lines."""
    i = info or machine_info()
    build = "free-threaded" if i["free_threaded_build"] else "with the GIL"
    gil = "GIL on" if i["gil_enabled"] else "GIL off"
    lines = [
        f"cores        {i['cores']} ({i['system']} {i['machine']})",
        f"python       {i['implementation']} {i['python']}, built {build}, {gil} now",
        f"numpy        {i['numpy']}",
    ]
    for b in i["blas"] or [{"api": "blas", "library": "none found", "version": "",
                            "threads": "-", "kernel": ""}]:
        kernel = f", {b['kernel']} kernel" if b.get("kernel") else ""
        lines.append(f"{b['api']:<12} {b['library']} {b['version'] or ''}{kernel}, "
                     f"{b['threads']} threads")
    return "\n".join(lines)
