"""Live mode end to end (``facetwin live``): loop jitter, dropped ticks and voice-to-mouth latency on the twin.

Run from the repository root (either form)::

    python -m facetwin.benchmarks.bench_live --minutes 10             # 10 min per scheduling mode
    python benchmarks/bench_live.py --minutes 1 --json out/bench_live.json

A looped speech signal (five espeak-ng sentences, each after 1 s of silence) is played in real time through
:class:`facetwin.audio.input.SignalSource` (exact sample times) into :func:`facetwin.sim2real.live.run_live` on the
sim backend (the twin stepped one period per tick through the safety layer), with the behaviour layer on. Per run:

| column | what |
|---|---|
| dropped | ticks skipped (their slot passed) or sent after the next deadline |
| lateness | send time - deadline (the jitter), p50 / p99 / max |
| latency | from a sentence onset's sample time to the send of the first command that moves the mouth (:func:`facetwin.sim2real.live.reaction_latency`), median / p90 over the onsets |
| holds / skipped | ticks without a new lip command (the last one held) / lip commands never sent (a newer one in the same tick) |
| overruns / underruns | audio chunks dropped because the loop fell behind / ticks that found no audio |

Bars (issue 14): median latency <= 150 ms, p99 lateness <= 5 ms, no tick dropped. Each run goes with normal
scheduling and with the loop under ``SCHED_FIFO`` (``facetwin live --realtime``; needs root or ``CAP_SYS_NICE``,
the row then says ``normal``); ``--busy`` pins this process to one core and busies another (as
``bench_deploy``). The README's "Live mode" section has the figures.
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # before numpy loads: one BLAS/OpenMP thread
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import argparse
import contextlib
import platform
from pathlib import Path

import numpy as np

from facetwin.benchmarks.common import cpu_name, cpus_available, write_json

SENTENCES = ("Bob met my mom by the pool.", "Where are you going this evening?", "I will tell you a story.",
             "Seven purple fish swam away.", "Hello, how are you today?")
SILENCE_S = 1.0
TARGET_LATENCY_MS = 150.0
TARGET_P99_MS = 5.0


def speech_loop() -> tuple[np.ndarray, np.ndarray]:
    """One loop of the signal (16 kHz) and its sentence onsets (sample indices): the first 10 ms frame of each
    sentence above -40 dBFS."""
    from facetwin.audio.io import resample
    from facetwin.audio.tts import synthesize

    sr = 16000
    parts, onsets, pos = [], [], 0
    for text in SENTENCES:
        u = synthesize(text, "en")
        x = resample(u.audio, u.sr, sr).astype(np.float32)
        frames = x[: len(x) // 160 * 160].reshape(-1, 160)
        first = int(np.flatnonzero(np.sqrt((frames.astype(float) ** 2).mean(axis=1)) > 0.01)[0]) * 160
        parts += [np.zeros(int(SILENCE_S * sr), np.float32), x]
        onsets.append(pos + int(SILENCE_S * sr) + first)
        pos += int(SILENCE_S * sr) + len(x)
    return np.concatenate(parts), np.asarray(onsets)


def run_once(minutes: float, realtime: bool, loop: np.ndarray, onsets: np.ndarray, log: Path | None = None) -> dict:
    """One live session of ``minutes`` on the twin; its row (module doc)."""
    from facetwin.audio.input import SignalSource
    from facetwin.sim2real.live import reaction_latency, run_live

    res = run_live(SignalSource(loop, repeat=None, name="speech loop"), backend="sim", window=False,
                   duration_s=minutes * 60.0, realtime=realtime, log_path=log)
    a, s, j = res.arrays, res.stats, res.jitter
    reached = int(a["audio_samples"][-1])
    all_onsets = (onsets[None, :] + len(loop) * np.arange(reached // len(loop) + 1)[:, None]).ravel()
    lat = 1000.0 * reaction_latency(a, all_onsets[all_onsets < reached - 16000])
    found = lat[np.isfinite(lat)]
    row = {"realtime": bool(s["realtime"]), "minutes": minutes, "ticks": s["ticks"],
           "dropped": s["dropped"], "p50_ms": j["p50_ms"], "p99_ms": j["p99_ms"], "max_ms": j["max_ms"],
           "onsets": int(len(lat)), "onsets_found": int(len(found)),
           "latency_median_ms": float(np.median(found)) if len(found) else float("nan"),
           "latency_p90_ms": float(np.percentile(found, 90)) if len(found) else float("nan"),
           "mouth_lag_ms": s["mouth_lag_ms"], "holds": s["holds"], "skipped": s["skipped_frames"],
           "overruns": s["overruns"], "underruns": s["underruns"], "prepare_ms_p99": s["prepare_ms_p99"],
           "send_ms_p99": float(np.percentile(a["send_ms"], 99))}
    row["pass"] = {"latency": row["latency_median_ms"] <= TARGET_LATENCY_MS, "jitter": row["p99_ms"] <= TARGET_P99_MS,
                   "dropped": row["dropped"] == 0}
    return row


def run(minutes: float = 10.0, modes: tuple[str, ...] = ("normal", "fifo"), busy: bool = False,
        log_dir: Path | None = None) -> dict:
    """Every scheduling mode for ``minutes`` each (the other core busy with ``busy``)."""
    import torch

    torch.set_num_threads(1)
    loop, onsets = speech_loop()
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
    cores: tuple = (None, None)
    with contextlib.ExitStack() as stack:
        if busy:
            from facetwin.benchmarks.bench_deploy import busy_other_core

            cores = stack.enter_context(busy_other_core())
        rows = [run_once(minutes, m == "fifo", loop, onsets, None if log_dir is None else log_dir / f"live_{m}.npz")
                for m in modes]
    return {"rows": rows, "busy_other_core": busy, "cores": list(cores), "loop_s": len(loop) / 16000,
            "env": {"cpu": cpu_name(), "cpus": cpus_available(), "python": platform.python_version()}}


def table(result: dict) -> str:
    ok = {True: "PASS", False: "FAIL"}
    lines = ["| scheduling | min | ticks | dropped | lateness p50 / p99 / max (ms) | latency median / p90 (ms) "
             "| onsets | holds / skipped | overruns / underruns | latency <= 150 ms | p99 <= 5 ms | no drop |",
             "|---|---:|---:|---:|---|---|---:|---|---|---|---|---|"]
    for r in result["rows"]:
        p = r["pass"]
        lines.append(f"| {'SCHED_FIFO' if r['realtime'] else 'normal'} | {r['minutes']:g} | {r['ticks']} "
                     f"| {r['dropped']} | {r['p50_ms']:.3f} / {r['p99_ms']:.2f} / {r['max_ms']:.2f} "
                     f"| {r['latency_median_ms']:.1f} / {r['latency_p90_ms']:.1f} "
                     f"| {r['onsets_found']}/{r['onsets']} | {r['holds']} / {r['skipped']} "
                     f"| {r['overruns']} / {r['underruns']} | {ok[p['latency']]} | {ok[p['jitter']]} "
                     f"| {ok[p['dropped']]} |")
    lines.append("")
    lines.append(f"sim backend, behaviour on, a {result['loop_s']:.1f} s speech loop; "
                 f"{'the other core busy' if result['busy_other_core'] else 'no extra load'}; "
                 f"{result['env']['cpu']}, {result['env']['cpus']} CPUs available")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench_live", description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0, help="length of each run (default 10)")
    p.add_argument("--modes", nargs="+", choices=("normal", "fifo"), default=["normal", "fifo"],
                   help="scheduling of the loop: normal and/or SCHED_FIFO (default both)")
    p.add_argument("--busy", action="store_true", help="pin to one core and busy another")
    p.add_argument("--logs", type=Path, default=None, help="write each run's live log (.npz) into this folder")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = p.parse_args(argv)
    result = run(args.minutes, tuple(args.modes), busy=args.busy, log_dir=args.logs)
    print(table(result))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
