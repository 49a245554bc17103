"""The real-time loop of ``facetwin deploy`` and ``facetwin live``: one call per control tick at its deadline, timed.

Tick ``n`` is due at ``t0 + n / fps`` (:func:`run_loop`); the loop sleeps coarsely until ``SPIN_S`` before the deadline,
then spins on ``time.perf_counter`` (:func:`sleep_until`), with garbage collection off and, where permitted, under
``SCHED_FIFO``. The audio :class:`Player` starts at the deadline of the tick that the audio begins on. Per tick the
target time, actual time and the time the tick's call took are kept (:class:`LoopTimes`, NaN until played), and
summarised as p50 / p99 / max lateness (:func:`jitter_stats`).

``facetwin deploy`` runs a fixed number of ticks. ``facetwin live`` runs open-ended (``n_ticks=None``: until its
``prepare`` step returns False), prepares each tick a little before its deadline (``prepare`` / ``prepare_s``: the
newest audio in, the command computed, so that the send itself is on time), starts on a given clock time
(``start``: in phase with the audio) and skips a tick whose slot has passed (``skip_missed``: after a stall the loop
resumes at the next deadline instead of sending a burst of stale commands; the skipped ticks stay NaN).
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from facetwin.sim.rates import CONTROL_HZ

#: the loop sleeps until this long before a deadline, then spins (Linux wakes a sleeper within ~0.1 ms when idle,
#: a few ms late under load)
SPIN_S = 0.002


class Player(Protocol):
    """Plays (or only times) the audio: ``start()`` at the audio's time 0, ``time()`` seconds since, ``stop()``."""

    def start(self) -> None: ...

    def time(self) -> float: ...

    def stop(self) -> None: ...


def sleep_until(deadline: float, spin_s: float = SPIN_S) -> float:
    """Sleep until ``spin_s`` before ``deadline`` (``time.perf_counter`` seconds), spin to it; returns the time."""
    while True:
        now = time.perf_counter()
        left = deadline - now
        if left <= 0:
            return now
        if left > spin_s:
            time.sleep(left - spin_s)


@dataclass
class LoopTimes:
    """Per-tick timing of :func:`run_loop` (seconds from the audio start: the deadline of tick ``audio_tick``)."""

    target_s: np.ndarray
    actual_s: np.ndarray
    send_s: np.ndarray
    realtime: bool = False  # the loop ran under SCHED_FIFO
    origin: float = float("nan")  # the time.perf_counter() value of time 0 (set by run_loop)

    @property
    def lateness_ms(self) -> np.ndarray:
        return 1000.0 * (self.actual_s - self.target_s)

    @property
    def jitter(self) -> dict[str, float]:
        return jitter_stats(self.lateness_ms)


def jitter_stats(lateness_ms: np.ndarray) -> dict[str, float]:
    """p50 / p99 / max of the lateness (ms)."""
    x = np.asarray(lateness_ms, dtype=float)
    x = x[np.isfinite(x)]  # ticks never played (an interrupted run) do not count
    if x.size == 0:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan"), "ticks": 0}
    return {"p50_ms": float(np.percentile(x, 50)), "p99_ms": float(np.percentile(x, 99)), "max_ms": float(x.max()),
            "ticks": int(x.size)}


def run_loop(
    n_ticks: int | None, send: Callable[[int], object], fps: float = CONTROL_HZ, *, audio_tick: int = 0,
    player: Player | None = None, spin_s: float = SPIN_S, realtime: bool = False, progress: bool = False,
    out: LoopTimes | None = None, prepare: Callable[[int], object] | None = None, prepare_s: float = 0.0,
    start: float | None = None, skip_missed: bool = False,
) -> LoopTimes:
    """Call ``send(n)`` at the deadline of each tick ``n = 0 .. n_ticks - 1`` (``1 / fps`` apart); ``player.start()``
    at tick ``audio_tick``'s deadline, before its send. Garbage collection is off during the loop. ``realtime``:
    run the loop under ``SCHED_FIFO`` (Linux; needs root or ``CAP_SYS_NICE``, silently skipped without). ``out``:
    times filled in place tick by tick (NaN until played), so an interrupted loop leaves what it played.

    ``n_ticks=None``: open-ended; the times grow as needed and are cut to the ticks reached when the loop ends.
    ``prepare(n)``: called ``prepare_s`` before tick ``n``'s deadline; returning ``False`` ends the loop before
    tick ``n``. ``start``: the ``time.perf_counter()`` deadline of tick 0 (default: two periods from now).
    ``skip_missed``: a tick reached more than a period after its slot (its ``prepare`` time) is skipped (NaN),
    the loop resumes at the next deadline ahead."""
    period = 1.0 / fps
    times = out if out is not None else LoopTimes(*(np.full(n_ticks or 0, np.nan) for _ in range(3)))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_ticks, unit="tick", desc="deploy", mininterval=1.0)
    gc_was = gc.isenabled()
    gc.disable()
    policy = _enter_realtime() if realtime else None
    t0 = time.perf_counter() + 2 * period if start is None else float(start)  # a little head start by default
    origin = times.origin = t0 + audio_tick * period
    times.realtime = policy is not None
    n = 0
    try:
        while n_ticks is None or n < n_ticks:
            deadline = t0 + n * period
            if skip_missed and time.perf_counter() > deadline - prepare_s + period:  # this tick's slot has passed
                n = int(np.ceil((time.perf_counter() + prepare_s - t0) / period))
                continue
            if prepare is not None:
                sleep_until(deadline - prepare_s, spin_s)
                if prepare(n) is False:
                    break
            now = sleep_until(deadline, spin_s)
            if n == audio_tick and player is not None:
                player.start()
            send(n)
            done = time.perf_counter()
            if n >= len(times.target_s):
                _grow(times, n + 1)
            times.target_s[n], times.actual_s[n], times.send_s[n] = deadline - origin, now - origin, done - now
            n += 1
            if bar is not None and n % 30 == 1:
                bar.update(min(30, n_ticks - bar.n) if n_ticks is not None else n - bar.n)
    finally:
        if policy is not None:
            os.sched_setscheduler(0, *policy)
        if gc_was:
            gc.enable()
        if n_ticks is None:
            _grow(times, n, cut=True)
        if bar is not None:
            bar.update((n_ticks if n_ticks is not None else n) - bar.n)
            bar.close()
    return times


def _grow(times: LoopTimes, n: int, cut: bool = False) -> None:
    """Make the time arrays at least ``n`` long (doubled, NaN filled); exactly ``n`` with ``cut``."""
    for name in ("target_s", "actual_s", "send_s"):
        a = getattr(times, name)
        if len(a) < n:
            a = np.concatenate([a, np.full((n if cut else max(n, 2 * len(a), 64)) - len(a), np.nan)])
        setattr(times, name, a[:n] if cut else a)


@contextmanager
def one_blas_thread() -> Iterator[int]:
    """During the block every OpenBLAS the process has loaded (numpy's, scipy's: found in ``/proc/self/maps``) runs
    on one thread, its own count restored after; yields how many libraries it set. A loop that calls into a
    multi-threaded BLAS waits on the BLAS's worker threads, which other processes can starve: under SCHED_FIFO
    with the other core busy, ``facetwin live``'s ticks came seconds late until this was in place."""
    import ctypes

    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line})
    except OSError:  # not Linux
        paths = []
    restore = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("openblas_{}_num_threads64_", "openblas_{}_num_threads", "scipy_openblas_{}_num_threads64_",
                     "scipy_openblas_{}_num_threads"):
            get, put = getattr(lib, name.format("get"), None), getattr(lib, name.format("set"), None)
            if get is not None and put is not None:
                restore.append((put, int(get())))
                put(1)
                break
    try:
        yield len(restore)
    finally:
        for put, n in restore:
            put(n)


def _enter_realtime() -> tuple[int, os.sched_param] | None:
    """Switch this thread to SCHED_FIFO (priority 50); returns the previous (policy, param) or None if refused."""
    if not hasattr(os, "sched_setscheduler"):
        return None
    old = (os.sched_getscheduler(0), os.sched_getparam(0))
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
    except OSError:  # PermissionError without CAP_SYS_NICE
        return None
    return old


__all__ = ["SPIN_S", "LoopTimes", "Player", "jitter_stats", "one_blas_thread", "run_loop", "sleep_until"]
