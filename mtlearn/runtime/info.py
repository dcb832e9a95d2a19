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


def physical_cores() -> int | None:
    """Physical cores among the CPUs this process may use (SMT siblings counted once), from
    Linux's ``/sys``; None where the OS does not say."""
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:
        return None
    cores = set()
    for cpu in cpus:
        base = f"/sys/devices/system/cpu/cpu{cpu}/topology/"
        try:
            with open(base + "core_id") as f1, open(base + "physical_package_id") as f2:
                cores.add((f1.read().strip(), f2.read().strip()))
        except OSError:
            return None
    return len(cores) or None


def cpu_quota() -> float | None:
    """CPUs' worth of time a container's cgroup allows (``cpu.max``), None if unlimited or
    unknown: a quota of 2 on a 16-CPU machine means 2 threads' worth of work at a time."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


_notes: dict[str, str] = {}


def note(topic: str, text: str) -> None:
    """Record a process-wide setting a measurement depends on, e.g. the malloc tuning made
    by ``mtlearn.nn`` at import; ``machine_info()["notes"]`` and ``describe()`` show it."""
    _notes[topic] = text


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
    "kernel", "threading"}]`` as reported by threadpoolctl (``threading``: OpenBLAS's
    threading layer, ``"pthreads"`` or ``"openmp"``; MKL's, e.g. ``"intel"``)."""
    import numpy  # noqa: F401  (loads numpy's BLAS so threadpoolctl can see it)
    from threadpoolctl import threadpool_info

    return [{"api": p.get("user_api"), "library": p.get("internal_api"),
             "version": p.get("version"), "threads": p.get("num_threads"),
             "kernel": p.get("architecture"), "threading": p.get("threading_layer")}
            for p in threadpool_info()]


def blas_limit_scope(blas: list[dict] | None = None) -> str:
    """Where a BLAS thread limit (threadpoolctl) takes effect on this machine.

    ``"process"``: OpenBLAS built with pthreads (numpy's wheels from PyPI) keeps one thread
    count for the whole process, so a limit set on one thread holds for every thread.
    ``"thread"``: OpenMP builds (OpenBLAS with OpenMP, MKL from conda) keep it per calling
    thread, so each worker thread must set its own (mtlearn's strategies do).
    ``"none"``: no BLAS library was found.
    """
    blas = blas_info() if blas is None else blas
    if not blas:
        return "none"
    per_process = all(b["library"] == "openblas" and b.get("threading") in ("pthreads",
                                                                            "disabled")
                      for b in blas)
    return "process" if per_process else "thread"


def machine_info() -> dict:
    """Cores, Python version and build, GIL state, numpy version and BLAS, as a dict.

    Read once per process (threadpoolctl's scan of the loaded libraries takes milliseconds,
    and every ``History`` carries these facts); ``gil_enabled`` is read afresh each call.
    """
    return {**copy.deepcopy(_machine_info()), "gil_enabled": gil_enabled(),
            "notes": dict(_notes)}


@functools.cache
def _machine_info() -> dict:
    import numpy

    return {
        "cores": cpu_count(),
        "physical_cores": physical_cores(),
        "cpu_quota": cpu_quota(),
        "machine": platform.machine(),
        "system": platform.system(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "free_threaded_build": free_threaded_build(),
        "gil_enabled": gil_enabled(),
        "numpy": numpy.__version__,
        "blas": blas_info(),
        "blas_limit_scope": blas_limit_scope(),
    }


def describe(info: dict | None = None) -> str:
    """``machine_info()`` as a few human-readable lines."""
    i = info or machine_info()
    build = "free-threaded" if i["free_threaded_build"] else "with the GIL"
    gil = "GIL on" if i["gil_enabled"] else "GIL off"
    physical = i.get("physical_cores")
    extra = f", {physical} physical cores" if physical and physical != i["cores"] else ""
    if i.get("cpu_quota"):
        extra += f", container quota {i['cpu_quota']:g} CPUs"
    lines = [
        f"cores        {i['cores']} logical CPUs{extra} ({i['system']} {i['machine']})",
        f"python       {i['implementation']} {i['python']}, built {build}, {gil} now",
        f"numpy        {i['numpy']}",
    ]
    for b in i["blas"] or [{"api": "blas", "library": "none found", "version": "",
                            "threads": "-", "kernel": ""}]:
        kernel = f", {b['kernel']} kernel" if b.get("kernel") else ""
        lines.append(f"{b['api']:<12} {b['library']} {b['version'] or ''}{kernel}, "
                     f"{b['threads']} threads")
    scope = i.get("blas_limit_scope")
    if scope in ("process", "thread"):
        lines.append("blas limit   " + ("process-wide (a limit set on one thread holds for all)"
                                       if scope == "process" else
                                       "per thread (each worker sets its own)"))
    for topic, text in (i.get("notes") or {}).items():
        lines.append(f"{topic:<12} {text}")
    return "\n".join(lines)
