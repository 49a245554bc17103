"""Lip-sync inference speed on one CPU core: offline real-time factor and streaming per-frame latency.

Run from the repository root (either form)::

    python -m facetwin.benchmarks.bench_lipsync                   # ~20 s of TTS speech, best of 3
    python benchmarks/bench_lipsync.py --quick --json out/bench_lipsync.json

It prints one markdown table (shipped weights, the process pinned to one core, one BLAS / torch thread):

| row | what is timed |
|---|---|
| ``offline: features`` | :func:`facetwin.agents.audio_frontend.raw_features` of the whole file (40 log-mel + RMS at 90 rows/s) |
| ``offline: audio -> lips`` | :meth:`facetwin.agents.audio_to_lips.AudioToLips.predict_audio` (features, normalisation, the network batched over frames) |
| ``offline: lips -> motors`` | :meth:`facetwin.agents.lipsync.MouthController.commands`: face shapes and the inverse self-model, frame by frame |
| ``offline: total`` | :meth:`facetwin.agents.lipsync.LipSyncer.controls` on the audio (all of the above) |
| ``stream: total`` | :class:`facetwin.agents.lipsync.LipSyncStream` fed 10 ms chunks, then flushed |

with the real-time factor (seconds of audio per wall second) and, for streaming, the mean and 99th percentile
compute time per audio chunk that emits a command (features + model + inverse for one 33 ms frame), and the pass or
fail of the goal "offline >= 100x real time on one core". The simulation of the face is not timed here
(``python -m facetwin.benchmarks.bench_sim``); neither is rendering (``python -m facetwin.benchmarks.bench_video``).
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # before numpy loads: one BLAS/OpenMP thread, as on the pinned core
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from facetwin.benchmarks.common import best_wall, cpu_name, cpus_available, one_core, write_json

TARGET_RTF = 100.0
SR = 16000
CHUNK_S = 0.010
TEXT = ("The quick brown fox jumps over the lazy dog. Bob bought a blue umbrella, and my mom paid for it. "
        "Peter Piper picked a peck of pickled peppers; where is the peck of pickled peppers Peter Piper picked?")


def _speech(repeat_text: int) -> np.ndarray:
    from facetwin.audio.io import resample
    from facetwin.audio.tts import synthesize

    utt = synthesize(" ".join([TEXT] * repeat_text), "en")
    return resample(utt.audio, utt.sr, SR)


def run(quick: bool = False, repeats: int = 3) -> dict:
    """Time every row; returns ``{"rows": [...], "env": {...}, "meets_target": bool}``."""
    import torch

    from facetwin.agents.audio_frontend import raw_features
    from facetwin.agents.lipsync import LipSyncer
    from facetwin.agents.mouth_plan import plan_from_prediction

    torch.set_num_threads(1)
    audio = _speech(1 if quick else 2)
    dur = len(audio) / SR
    rows = []
    with one_core():
        off = LipSyncer("offline")
        plan = plan_from_prediction(off.audio_model.predict_audio(audio, SR))
        timed = {
            "offline: features": lambda: raw_features(audio),
            "offline: audio -> lips": lambda: off.audio_model.predict_audio(audio, SR),
            "offline: lips -> motors": lambda: off.controller.commands(plan),
            "offline: total": lambda: off.controls(audio, SR),
        }
        for label, fn in timed.items():
            wall = best_wall(fn, repeats)
            rows.append({"row": label, "audio_s": dur, "wall_s": wall, "rtf": dur / wall})
        st = LipSyncer("stream")
        chunk = int(CHUNK_S * SR)
        best = None
        for _ in range(max(1, repeats)):
            live = st.stream()
            per_cmd = []
            t_all = time.perf_counter()
            for i in range(0, len(audio), chunk):
                t0 = time.perf_counter()
                out = live.push(audio[i:i + chunk])
                if out:
                    per_cmd.append((time.perf_counter() - t0) / len(out))
            live.flush()
            wall = time.perf_counter() - t_all
            if best is None or wall < best[0]:
                best = (wall, per_cmd)
        wall, per_cmd = best
        rows.append({"row": "stream: total (10 ms chunks)", "audio_s": dur, "wall_s": wall, "rtf": dur / wall,
                     "frame_ms_mean": 1000 * float(np.mean(per_cmd)),
                     "frame_ms_p99": 1000 * float(np.percentile(per_cmd, 99)),
                     "lookahead_ms": 1000 * st.lookahead_s})
    total = next(r for r in rows if r["row"] == "offline: total")
    return {"rows": rows, "meets_target": total["rtf"] >= TARGET_RTF,
            "env": {"cpu": cpu_name(), "cpus": cpus_available(), "python": platform.python_version(),
                    "torch": torch.__version__}}


def table(result: dict) -> str:
    lines = ["| row | audio (s) | wall (ms) | real-time factor | per command (ms, mean / p99) |",
             "|---|---:|---:|---:|---:|"]
    for r in result["rows"]:
        per = f"{r['frame_ms_mean']:.3f} / {r['frame_ms_p99']:.3f}" if "frame_ms_mean" in r else ""
        lines.append(f"| {r['row']} | {r['audio_s']:.1f} | {1000 * r['wall_s']:.1f} | {r['rtf']:,.0f}x | {per} |")
    total = next(r for r in result["rows"] if r["row"] == "offline: total")
    lines.append("")
    lines.append(f"Target offline >= {TARGET_RTF:.0f}x real time on one core: "
                 f"{'PASS' if result['meets_target'] else 'FAIL'} ({total['rtf']:,.0f}x); "
                 f"{result['env']['cpu']}, {result['env']['cpus']} CPUs available")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench_lipsync", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="shorter audio, one repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = p.parse_args(argv)
    result = run(quick=args.quick, repeats=1 if args.quick else args.repeats)
    print(table(result))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
