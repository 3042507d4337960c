"""A run's wall time, throughput and peak memory, measured without platform-specific imports at module level.

Peak memory (decision, see ``docs/evaluation.md``): on a CUDA device ``torch.cuda.max_memory_allocated`` since
the meter was entered; on the CPU the process's peak resident set size since it started — from
``resource.getrusage`` where the module exists (Linux, macOS), from ``GetProcessMemoryInfo``'s peak working set
on Windows (through ``ctypes``: psutil is not a dependency), else 0 with the kind ``unavailable``.
``tracemalloc`` is not used: it sees Python's allocator only, not tensor storage.
"""

from __future__ import annotations

import sys
import time

CUDA_KIND = "cuda-max-allocated"
RSS_KIND = "cpu-peak-rss"
WORKING_SET_KIND = "cpu-peak-working-set"
UNAVAILABLE_KIND = "unavailable"


def _peak_rss_unix() -> int | None:
    try:
        import resource
    except ImportError:
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)  # bytes on macOS, KiB on Linux


def _peak_working_set_windows() -> int | None:
    if sys.platform != "win32":
        return None
    import ctypes
    from ctypes import wintypes

    class Counters(ctypes.Structure):  # PROCESS_MEMORY_COUNTERS
        _fields_ = [("cb", wintypes.DWORD), ("PageFaultCount", wintypes.DWORD),
                    ("PeakWorkingSetSize", ctypes.c_size_t), ("WorkingSetSize", ctypes.c_size_t),
                    ("QuotaPeakPagedPoolUsage", ctypes.c_size_t), ("QuotaPagedPoolUsage", ctypes.c_size_t),
                    ("QuotaPeakNonPagedPoolUsage", ctypes.c_size_t), ("QuotaNonPagedPoolUsage", ctypes.c_size_t),
                    ("PagefileUsage", ctypes.c_size_t), ("PeakPagefileUsage", ctypes.c_size_t)]

    counters = Counters()
    counters.cb = ctypes.sizeof(Counters)
    try:
        process = ctypes.windll.kernel32.GetCurrentProcess()
        ok = ctypes.windll.psapi.GetProcessMemoryInfo(process, ctypes.byref(counters), counters.cb)
    except (AttributeError, OSError):
        return None
    return int(counters.PeakWorkingSetSize) if ok else None


def peak_cpu_memory() -> tuple[int, str]:
    """``(bytes, kind)``: the process's peak resident memory, or ``(0, "unavailable")``."""
    rss = _peak_rss_unix()
    if rss is not None:
        return rss, RSS_KIND
    working_set = _peak_working_set_windows()
    if working_set is not None:
        return working_set, WORKING_SET_KIND
    return 0, UNAVAILABLE_KIND


class ResourceMeter:
    """Measures a run's wall time, throughput and peak memory.

    Use as a context manager around fitting and evaluation; call :meth:`count` with the number of images
    predicted.
    """

    def __init__(self, device: str = "cpu") -> None:
        self.device = str(device)
        self.images = 0
        self.wall_time_s = 0.0
        self._start: float | None = None

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")

    def __enter__(self) -> ResourceMeter:
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall_time_s = time.perf_counter() - (self._start or time.perf_counter())

    def count(self, n: int) -> None:
        self.images += int(n)

    @property
    def images_per_s(self) -> float:
        return self.images / self.wall_time_s if self.wall_time_s > 0 else 0.0

    def peak_memory(self) -> tuple[int, str]:
        """``(bytes, kind)``: CUDA peak allocated on a CUDA device, else :func:`peak_cpu_memory`."""
        if self.cuda:
            import torch

            return int(torch.cuda.max_memory_allocated(self.device)), CUDA_KIND
        return peak_cpu_memory()


__all__ = ["CUDA_KIND", "RSS_KIND", "UNAVAILABLE_KIND", "WORKING_SET_KIND", "ResourceMeter", "peak_cpu_memory"]
