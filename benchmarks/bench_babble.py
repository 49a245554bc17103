"""Babbling throughput in parallel: samples per second with 1 and 2 workers for each executor of ``facetwin babble``.

Run from the repository root (either form)::

    python -m facetwin.benchmarks.bench_babble --samples 200          # ~8 min on 2 cores
    python benchmarks/bench_babble.py --samples 20 --settle 0.5       # a fast smoke run
    python -m facetwin.benchmarks.bench_babble --executors thread,process --json out/bench_babble.json

Each figure is the fastest of ``--repeats`` (2) calls of :func:`facetwin.envs.babble.babble` (``--samples``
expressions, ``--settle`` seconds each, the fast variant, chunks of ``--chunk``, a fresh output file), the calls of
all executors interleaved round by round (other work on a shared machine comes and goes), after one untimed warm-up
call that imports everything. A call is timed end to end with ``time.perf_counter``: loading the face, starting the
worker processes (``"process"``) or the threads' model copies (``"thread"``), simulating, and writing the chunks and
the dataset. With one worker ``"thread"`` and ``"process"`` run the same code (no pool: the chunks in this
process), timed as one row; ``"ray"`` with one worker is one task at a time on a local runtime of 2 CPUs started
before the timing (its start time is printed apart: on a cluster it is already running). Every call's arrays are
compared with the first one-worker call's (they must be bit-identical). The bar (issue 15): 2 workers >= 1.8x the
samples/s of one worker, PASS/FAIL per executor. The 1-minute load average at the start of each counted call is
printed beside it: other work on the machine lowers the ratio (on 2 cores, one other busy process takes half).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

BAR = 1.8


def _timed_babble(out: Path, args: argparse.Namespace, workers: int, executor: str | None
                  ) -> tuple[float, dict, float]:
    """Wall seconds of one babble run, its per-sample arrays, and the 1-minute load average when it started."""
    from facetwin.envs.babble import PER_SAMPLE_KEYS, babble

    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    path = babble(args.samples, out, seed=args.seed, variant=args.variant, settle_s=args.settle, chunk=args.chunk,
                  progress=False, resume=False, workers=workers, executor=executor)
    wall = time.perf_counter() - t0
    with np.load(path) as d:
        return wall, {k: d[k] for k in PER_SAMPLE_KEYS}, load


def run(args: argparse.Namespace) -> list[dict]:
    """Time every (executor, workers) pair ``--repeats`` times, interleaved, keeping each pair's fastest run; rows of
    executor, workers, seconds, samples/s, ratios, same data, load at start."""
    tmp = Path(tempfile.mkdtemp(prefix="bench_babble_"))
    best: dict[tuple[str, int], dict] = {}
    try:
        from facetwin.envs.babble import babble

        babble(1, tmp / "warmup.npz", variant=args.variant, settle_s=0.1, progress=False)  # imports, caches: untimed
        base = None
        for rep in range(args.repeats):
            for ex in ("in-process", *args.executors):
                ray = _start_ray() if ex == "ray" else None
                try:
                    for w in {"in-process": (1,), "ray": (1, 2)}.get(ex, (2,)):
                        wall, arrays, load = _timed_babble(tmp / f"{ex}{w}.npz", args, w,
                                                           None if ex == "in-process" else ex)
                        base = arrays if base is None else base
                        same = all(np.array_equal(arrays[k], base[k]) for k in base)
                        print(f"round {rep + 1}: {ex}, {w} workers: {wall:.1f} s, same data: {same}", flush=True)
                        old = best.get((ex, w))
                        if old is None or wall < old["seconds"]:
                            best[(ex, w)] = {"seconds": wall, "same_data": same and (old or {}).get("same_data", True),
                                             "load_at_start": load}
                        else:
                            old["same_data"] = old["same_data"] and same
                finally:
                    if ray is not None:
                        ray.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _rows(best, args)


def _rows(best: dict[tuple[str, int], dict], args: argparse.Namespace) -> list[dict]:
    """The table rows: one worker and two per executor ("thread" and "process" share the in-process run)."""
    base_wall = best[("in-process", 1)]["seconds"]
    rows = []
    for ex in args.executors:
        one = best[("ray", 1)] if ex == "ray" else best[("in-process", 1)]
        for w, r in ((1, one), (2, best[(ex, 2)])):
            rows.append({"executor": ex, "workers": w, "seconds": r["seconds"],
                         "samples_per_s": args.samples / r["seconds"], "vs_one_worker": one["seconds"] / r["seconds"],
                         "vs_in_process": base_wall / r["seconds"], "same_data": r["same_data"],
                         "load_at_start": r["load_at_start"]})
    return rows


def _start_ray():
    """A local Ray runtime of 2 CPUs (its start time printed, not counted in the babble runs)."""
    from facetwin.ray_tasks import import_ray

    ray = import_ray()
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    print(f"ray runtime started in {time.perf_counter() - t0:.1f} s", flush=True)
    return ray


def table(rows: list[dict], args: argparse.Namespace) -> str:
    """The markdown table and the PASS/FAIL lines."""
    lines = [f"babble: {args.samples} samples, settle {args.settle} s, variant {args.variant}, chunks of {args.chunk}, "
             f"{os.cpu_count()} CPUs", "",
             "| executor | workers | wall s | samples/s | vs 1 worker | vs in-process | same data | load at start |",
             "|---|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        lines.append(f"| {r['executor']} | {r['workers']} | {r['seconds']:.1f} | {r['samples_per_s']:.2f} | "
                     f"{r['vs_one_worker']:.2f}x | {r['vs_in_process']:.2f}x | {'yes' if r['same_data'] else 'NO'} | "
                     f"{r['load_at_start']:.2f} |")
    lines.append("")
    for r in rows:
        if r["workers"] == 2:
            ok = r["vs_one_worker"] >= BAR and r["same_data"]
            lines.append(f"{'PASS' if ok else 'FAIL'}: {r['executor']}, 2 workers {r['vs_one_worker']:.2f}x one worker "
                         f"(bar >= {BAR}x, same data)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--samples", type=int, default=200, help="expressions per run (default 200)")
    p.add_argument("--settle", type=float, default=2.0, help="seconds each expression is held (default 2, as babble)")
    p.add_argument("--chunk", type=int, default=10, help="samples per chunk (default 10: 20 chunks for 2 workers)")
    p.add_argument("--variant", default="fast", choices=("fast", "full"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=2, help="rounds of every run, interleaved; the fastest counts (2)")
    p.add_argument("--executors", default="thread,process,ray", help="comma-separated (default thread,process,ray)")
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = p.parse_args(argv)
    args.executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    from facetwin.envs.babble_executors import EXECUTORS

    bad = [e for e in args.executors if e not in EXECUTORS]
    if bad or args.samples < 2 or args.chunk < 1 or args.repeats < 1:
        p.error(f"executors must be among {EXECUTORS} (got {bad}), --samples >= 2, --chunk >= 1, --repeats >= 1")
    rows = run(args)
    print(table(rows, args))
    from facetwin.benchmarks.common import write_json

    write_json(args.json, {"samples": args.samples, "settle_s": args.settle, "chunk": args.chunk,
                           "repeats": args.repeats, "rows": rows})
    return 0 if all(r["vs_one_worker"] >= BAR and r["same_data"] for r in rows if r["workers"] == 2) else 1


if __name__ == "__main__":
    raise SystemExit(main())
