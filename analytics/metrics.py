"""Counters for `/metrics`, in Prometheus' text format (version 0.0.4): what an operator graphs and alerts on.

Plain integers and dictionaries updated on the ingest path (an increment costs ~30 ns; a client library's locks
and label objects cost more than the rest of a pageview's work). Nothing here is per visitor: counts by reason,
never by address, site visitor or User-Agent.
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import ctypes.util
import resource
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

# Batch commits take ~1-5 ms when healthy; the tail is what load shedding and lock waits show up in.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Histogram:
    buckets: tuple[float, ...] = BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0
    observations: int = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, seconds)] += 1
        self.total += seconds
        self.observations += 1

    def lines(self, name: str) -> Iterable[str]:
        cumulative = 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            cumulative += count
            yield f'{name}_bucket{{le="{bound:g}"}} {cumulative}'
        yield f'{name}_bucket{{le="+Inf"}} {self.observations}'
        yield f"{name}_sum {self.total:.6f}"
        yield f"{name}_count {self.observations}"


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    kind: str  # counter, gauge, histogram
    help: str
    read: Callable[[], int | float | dict[str, int] | Histogram]
    label: str = ""
    """For a dict value: the label its keys fill (e.g. `reason`)."""


def render(metrics: Iterable[Metric]) -> str:
    out: list[str] = []
    for m in metrics:
        out.append(f"# HELP {m.name} {m.help}")
        out.append(f"# TYPE {m.name} {m.kind}")
        value = m.read()
        if isinstance(value, Histogram):
            out.extend(value.lines(m.name))
        elif isinstance(value, dict):
            out.extend(f'{m.name}{{{m.label}="{key}"}} {count}' for key, count in sorted(value.items()))
        else:
            out.append(f"{m.name} {value:g}" if isinstance(value, float) else f"{m.name} {value}")
    return "\n".join(out) + "\n"


def max_rss_bytes() -> int:
    """Peak resident memory of this process (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss_bytes() -> int:
    """Current resident memory, from /proc where there is one (the peak where not)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return max_rss_bytes()
    return pages * resource.getpagesize()


def _libc_trim() -> Callable[[int], int] | None:
    with contextlib.suppress(OSError, AttributeError, TypeError):
        trim: Callable[[int], int] = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        return trim
    return None


_TRIM = _libc_trim()


def trim_memory() -> None:
    """Gives freed heap memory back to the system (glibc keeps it otherwise: after a flood of 1,024 connections
    the server stayed at twice its resting size for good). A few milliseconds; a no-op elsewhere."""
    if _TRIM is not None:
        _TRIM(0)
