"""Deployment loop jitter at 30 Hz with the other core busy: null bus and the twin (sim backend).

Run from the repository root (either form)::

    python -m facetwin.benchmarks.bench_deploy                     # 20 s per backend
    python benchmarks/bench_deploy.py --seconds 5 --json out/bench_deploy.json

The loop of :func:`facetwin.sim2real.realtime_loop.run_loop` (sleep coarsely, spin the last ``SPIN_S``, garbage
collection off) runs ``seconds x 30`` ticks; each tick sends a lip-sync-like command (a 2 Hz jaw and lip swing)
through the safety layer (:class:`facetwin.hardware.safety.SafeBus`, nominal calibration, default limits) to:

| backend | bus |
|---|---|
| ``null`` | a bus whose ``write`` does nothing: the loop and the safety layer alone |
| ``sim`` | :class:`facetwin.hardware.sim_bus.SimBus` ("fast" twin), advanced one 1/30 s period per tick |

This process is pinned to one core and a busy-loop process to another (the physical robot's computer runs the
audio and vision beside the loop). Lateness = actual send time - tick deadline (``time.perf_counter``); the table
gives p50 / p99 / max (ms) and the time a tick spends sending. Target: p99 <= 5 ms. Each backend runs twice: with
normal scheduling, and with the loop under ``SCHED_FIFO`` (``run_loop(realtime=True)``, ``facetwin deploy
--realtime``; needs root or ``CAP_SYS_NICE``, the row then says ``normal``).

Measured (``python -m facetwin.benchmarks.bench_deploy``, 20 s each, 2-core AMD EPYC VM shared with other jobs):

| backend | scheduling | lateness p50 / p99 / max (ms) | send mean / p99 (ms) | p99 <= 5 ms |
|---|---|---|---|---|
| null | normal | 0.000 / 6.36 / 9.42 | 1.21 / 8.30 | FAIL |
| sim | normal | 0.000 / 7.80 / 11.79 | 8.07 / 19.39 | FAIL |
| null | SCHED_FIFO | 0.000 / 0.000 / 0.000 | 0.22 / 0.26 | PASS |
| sim | SCHED_FIFO | 0.000 / 0.018 / 0.030 | 3.05 / 3.53 | PASS |

With normal scheduling the loop is preempted by the other processes of the machine (a 5 s run on a quieter moment:
null p99 3.0 ms); under SCHED_FIFO it is not.
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # before numpy loads: one BLAS/OpenMP thread
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import argparse
import multiprocessing as mp
import platform
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from facetwin.benchmarks.common import cpu_name, cpus_available, write_json
from facetwin.hardware.bus import ServoBus

TARGET_P99_MS = 5.0
FPS = 30.0


def _spin(core: int | None) -> None:
    if core is not None:
        os.sched_setaffinity(0, {core})
    while True:
        pass


@contextmanager
def busy_other_core():
    """Pin this process to one core and a busy-loop process to another; yields (loop core, busy core)."""
    if not hasattr(os, "sched_setaffinity"):
        proc = mp.get_context("spawn").Process(target=_spin, args=(None,), daemon=True)
        proc.start()
        try:
            yield None, None
        finally:
            proc.terminate()
            proc.join()
        return
    allowed = sorted(os.sched_getaffinity(0))
    mine = allowed[0]
    other = allowed[1] if len(allowed) > 1 else allowed[0]
    proc = mp.get_context("spawn").Process(target=_spin, args=(other,), daemon=True)
    proc.start()
    os.sched_setaffinity(0, {mine})
    try:
        yield mine, other
    finally:
        os.sched_setaffinity(0, set(allowed))
        proc.terminate()
        proc.join()


class NullBus(ServoBus):
    """A servo bus that does nothing (the loop and safety layer alone)."""

    units = "position"
    name = "sim"

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def write(self, channels, values) -> None:
        pass

    def read(self, channels):
        return [None] * len(channels)

    def relax(self, channels) -> None:
        pass


def _commands(n: int) -> np.ndarray:
    from facetwin.sim.actuators import actuator_names, rest_controls

    names = list(actuator_names())
    t = np.arange(n) / FPS
    u = np.repeat(rest_controls()[None].astype(float), n, axis=0)
    phase = 2 * np.pi * 2.0 * t  # 2 Hz, within the default slew limit: no clamp log lines inside the loop
    u[:, names.index("jaw_open")] = -1.0 + 0.6 * (1 - np.cos(phase))
    for name in ("lip_upper_raise_R", "lip_upper_raise_L", "lip_lower_depress_R", "lip_lower_depress_L"):
        u[:, names.index(name)] = 0.5 * np.sin(phase)
    return u


def run_backend(backend: str, seconds: float, realtime: bool = False) -> dict:
    """Jitter of one backend (see the module docstring)."""
    from facetwin.hardware.calibration import nominal_calibration
    from facetwin.hardware.safety import SafeBus
    from facetwin.hardware.sim_bus import SimBus
    from facetwin.sim2real.realtime_loop import run_loop

    cal = nominal_calibration("sim")
    if backend == "sim":
        bus = SimBus(cal, variant="fast")
    else:
        bus = NullBus()
    n = int(round(seconds * FPS))
    u = _commands(n)

    def send(k: int) -> None:
        layer.command(u[k])
        if backend == "sim":
            bus.advance(bus.period)

    layer = SafeBus({"sim": bus}, cal)
    with layer:
        times = run_loop(n, send, FPS, realtime=realtime, progress=True)
    lat = times.lateness_ms
    return {"backend": backend, "ticks": n, "seconds": seconds, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max()),
            "send_ms_mean": 1000 * float(times.send_s.mean()), "send_ms_p99": 1000 * float(np.percentile(times.send_s, 99)),
            "meets_target": bool(np.percentile(lat, 99) <= TARGET_P99_MS), "realtime": times.realtime}


def run(seconds: float = 20.0, backends: tuple[str, ...] = ("null", "sim"), busy: bool = True,
        realtime: tuple[bool, ...] = (False, True)) -> dict:
    """Every backend, plain and (if allowed) under SCHED_FIFO, with the other core busy unless ``busy=False``."""
    cores: tuple = (None, None)

    def rows_() -> list[dict]:
        return [run_backend(b, seconds, rt) for rt in realtime for b in backends]

    if busy:
        with busy_other_core() as cores:
            rows = rows_()
    else:
        rows = rows_()
    return {"rows": rows, "busy_other_core": busy, "cores": list(cores),
            "env": {"cpu": cpu_name(), "cpus": cpus_available(), "python": platform.python_version()}}


def table(result: dict) -> str:
    lines = ["| backend | scheduling | ticks | lateness p50 (ms) | p99 (ms) | max (ms) | send mean / p99 (ms) "
             "| p99 <= 5 ms |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in result["rows"]:
        sched = "SCHED_FIFO" if r["realtime"] else "normal"
        lines.append(f"| {r['backend']} | {sched} | {r['ticks']} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['max_ms']:.3f} "
                     f"| {r['send_ms_mean']:.2f} / {r['send_ms_p99']:.2f} | {'PASS' if r['meets_target'] else 'FAIL'} |")
    lines.append("")
    lines.append(f"30 Hz, {'the other core busy' if result['busy_other_core'] else 'idle machine'}; "
                 f"{result['env']['cpu']}, {result['env']['cpus']} CPUs available")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench_deploy", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0, help="loop length per backend (default 20)")
    p.add_argument("--backends", nargs="+", choices=("null", "sim"), default=["null", "sim"])
    p.add_argument("--idle", action="store_true", help="do not busy the other core")
    p.add_argument("--no-realtime", action="store_true", help="skip the SCHED_FIFO rows")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = p.parse_args(argv)
    result = run(args.seconds, tuple(args.backends), busy=not args.idle,
                 realtime=(False,) if args.no_realtime else (False, True))
    print(table(result))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
