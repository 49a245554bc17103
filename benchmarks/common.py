"""Helpers shared by the facetwin benchmarks: pinning to one core, best-of-N wall time, machine description."""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def one_core() -> Iterator[int | None]:
    """Pin this process to one CPU core (Linux) for the duration; yields the core, or None where unsupported."""
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    allowed = os.sched_getaffinity(0)
    core = min(allowed)
    os.sched_setaffinity(0, {core})
    try:
        yield core
    finally:
        os.sched_setaffinity(0, allowed)


def best_wall(run: Callable[[], object], repeats: int, warmup: bool = True) -> float:
    """Smallest wall time (s) of ``repeats`` calls of ``run`` (after one untimed warm-up call)."""
    if warmup:
        run()
    best = math.inf
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best


def cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpus_available() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def write_json(path: Path | None, data: dict) -> None:
    """Write a benchmark's numbers as JSON to ``path`` (parents created) and say so; nothing when ``path`` is None."""
    if path is None:
        return
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path}")
