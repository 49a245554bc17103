"""The real-time loop of ``facetwin deploy``: one call per control tick at its deadline, timed; the audio on its tick.

Tick ``n`` is due at ``t0 + n / fps`` (:func:`run_loop`); the loop sleeps coarsely until ``SPIN_S`` before the deadline,
then spins on ``time.perf_counter`` (:func:`sleep_until`), with garbage collection off and, where permitted, under
``SCHED_FIFO``. The audio :class:`Player` starts at the deadline of the tick that the audio begins on. Per tick the
target time, actual time and the time the tick's call took are kept (:class:`LoopTimes`, NaN until played), and
summarised as p50 / p99 / max lateness (:func:`jitter_stats`).
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
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
    n_ticks: int, send: Callable[[int], object], fps: float = CONTROL_HZ, *, audio_tick: int = 0,
    player: Player | None = None, spin_s: float = SPIN_S, realtime: bool = False, progress: bool = False,
    out: LoopTimes | None = None,
) -> LoopTimes:
    """Call ``send(n)`` at the deadline of each tick ``n = 0 .. n_ticks - 1`` (``1 / fps`` apart); ``player.start()``
    at tick ``audio_tick``'s deadline, before its send. Garbage collection is off during the loop. ``realtime``:
    run the loop under ``SCHED_FIFO`` (Linux; needs root or ``CAP_SYS_NICE``, silently skipped without). ``out``:
    times filled in place tick by tick (NaN until played), so an interrupted loop leaves what it played."""
    period = 1.0 / fps
    times = out if out is not None else LoopTimes(*(np.full(n_ticks, np.nan) for _ in range(3)))
    target, actual, spent = times.target_s, times.actual_s, times.send_s
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_ticks, unit="tick", desc="deploy", mininterval=1.0)
    gc_was = gc.isenabled()
    gc.disable()
    policy = _enter_realtime() if realtime else None
    t0 = time.perf_counter() + 2 * period  # a little head start for the first deadline
    origin = t0 + audio_tick * period
    times.realtime = policy is not None
    try:
        for n in range(n_ticks):
            deadline = t0 + n * period
            now = sleep_until(deadline, spin_s)
            if n == audio_tick and player is not None:
                player.start()
            send(n)
            done = time.perf_counter()
            target[n], actual[n], spent[n] = deadline - origin, now - origin, done - now
            if bar is not None and n % 30 == 0:
                bar.update(min(30, n_ticks - bar.n))
    finally:
        if policy is not None:
            os.sched_setscheduler(0, *policy)
        if gc_was:
            gc.enable()
        if bar is not None:
            bar.update(n_ticks - bar.n)
            bar.close()
    return times


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


__all__ = ["SPIN_S", "LoopTimes", "Player", "jitter_stats", "run_loop", "sleep_until"]
