"""Audio feature speed benchmark: real-time factors of the feature extractors on one CPU core.

Run from the repository root (either form)::

    python -m facetwin.benchmarks.bench_audio                 # 60 s of audio, fps 30 and 100, best of 3
    python benchmarks/bench_audio.py --quick                  # a fast smoke run (5 s of audio, one repeat)
    python benchmarks/bench_audio.py --seconds 120 --fps 30 --json out/bench_audio.json

It prints one markdown table, one row per measurement and frame rate:

* ``log-mel``, ``RMS``, ``pitch`` alone and ``all features`` (:func:`facetwin.audio.features.extract_features`)
  offline on the whole signal;
* ``streaming, 10 ms chunks``: :class:`facetwin.audio.streaming_features.StreamingFeatures` fed 10 ms chunks, then
  flushed;
* ``load_audio``: decoding a 44.1 kHz stereo 16-bit WAV to 16 kHz mono (mixdown + polyphase resampling);

and the pass/fail of the target "all features >= 200x real time on one core". The real-time factor (RTF) is
seconds of audio processed per wall-clock second. The test signal is a deterministic 16 kHz speech-like mix
(harmonic voiced stretches with gliding pitch, noise bursts, pauses). Every figure is the best of ``--repeats``
(3) timed repetitions after a warm-up, timed with ``time.perf_counter``, with the process pinned to one CPU core
(``os.sched_setaffinity``); run as a script, BLAS/OpenMP thread pools are also limited to one thread.

* ``corpus build``: :func:`facetwin.audio.corpus.build_corpus` on ~``seconds`` of speech in 11 languages (one
  timed run), in seconds of audio produced per wall second;

Adding a row: write a function ``(BenchConfig) -> list[Row]`` and append it to ``ROW_GROUPS``.
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # before numpy loads: one BLAS/OpenMP thread, as on the pinned core
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import argparse
import math
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facetwin.audio.features import get_extractor
from facetwin.audio.io import load_audio, save_wav
from facetwin.audio.streaming_features import StreamingFeatures
from facetwin.benchmarks.common import best_wall, cpu_name, cpus_available, one_core, write_json

TARGET_RTF = 200.0  # all features must run at least this many times faster than real time on one core
SR = 16000
FPS_CHOICES: tuple[float, ...] = (30.0, 100.0)
STREAM_CHUNK_S = 0.010


@dataclass(frozen=True)
class BenchConfig:
    """What to measure: ``seconds`` of test audio per repetition, at each frame rate in ``fps``."""

    seconds: float = 60.0
    fps: tuple[float, ...] = FPS_CHOICES
    repeats: int = 3
    seed: int = 0
    load: bool = True  # also time load_audio on a 44.1 kHz stereo WAV
    corpus: bool = True  # also time a corpus build (speech only)

    @classmethod
    def quick(cls, **overrides: Any) -> BenchConfig:
        base: dict[str, Any] = dict(seconds=5.0, repeats=1)
        base.update(overrides)
        return cls(**base)


@dataclass
class Row:
    """One timed measurement: ``audio_seconds`` of audio handled in ``wall_seconds`` (best of the repeats)."""

    label: str
    audio_seconds: float
    wall_seconds: float
    fps: float | None = None  # the feature frame rate, None where it does not apply

    @property
    def rtf(self) -> float:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else math.inf


@dataclass
class BenchResult:
    config: BenchConfig
    rows: list[Row]
    env: dict[str, Any]

    def all_features(self) -> list[Row]:
        return [r for r in self.rows if r.label == ALL_FEATURES]

    @property
    def meets_target(self) -> bool:
        rows = self.all_features()
        return bool(rows) and all(r.rtf >= TARGET_RTF for r in rows)


ALL_FEATURES = "all features (log-mel + RMS + pitch)"


# ---------------------------------------------------------------------------------------------------- helpers
def speech_like_signal(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Deterministic speech-like audio: voiced stretches (7 harmonics, gliding 90-320 Hz pitch, syllable-rate
    amplitude), noise bursts and pauses, in 0.25-0.6 s segments; float32 peak about 0.5."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    out = np.zeros(n)
    pos = 0
    while pos < n:
        seg = min(n - pos, int(rng.uniform(0.25, 0.6) * sr))
        t = np.arange(seg) / sr
        kind = rng.choice(3, p=[0.6, 0.25, 0.15])
        if kind == 0:
            f0 = rng.uniform(90, 320) * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
            phase = 2 * np.pi * np.cumsum(f0) / sr
            x = sum(np.sin(h * phase) / h for h in range(1, 8))
            x = x * 0.25 * (1 - np.cos(2 * np.pi * t / max(seg / sr, 1e-3)))  # a syllable-like swell
        elif kind == 1:
            x = rng.normal(0.0, 0.08, seg)
        else:
            x = rng.normal(0.0, 1e-4, seg)
        out[pos : pos + seg] = x
        pos += seg
    return out.astype(np.float32)


# ---------------------------------------------------------------------------------------------------- rows
def bench_features(cfg: BenchConfig) -> list[Row]:
    """Offline log-mel / RMS / pitch / all features and 10 ms streaming, at each frame rate."""
    audio = speech_like_signal(cfg.seconds, SR, cfg.seed)
    seconds = len(audio) / SR
    chunk = max(1, int(round(STREAM_CHUNK_S * SR)))
    chunks = [audio[i : i + chunk] for i in range(0, len(audio), chunk)]
    rows: list[Row] = []
    for fps in cfg.fps:
        ex = get_extractor(SR, fps)
        for label, what in (
            ("log-mel spectrogram", ("logmel",)),
            ("RMS loudness", ("rms",)),
            ("pitch (f0 + voicing)", ("pitch",)),
            (ALL_FEATURES, ("logmel", "rms", "pitch")),
        ):
            rows.append(Row(label, seconds, best_wall(lambda what=what: ex(audio, what), cfg.repeats), fps))
        stream = StreamingFeatures(SR, fps)

        def run_stream() -> None:
            stream.reset()
            for c in chunks:
                stream.push(c)
            stream.flush()

        label = f"streaming, {STREAM_CHUNK_S * 1e3:g} ms chunks"
        rows.append(Row(label, seconds, best_wall(run_stream, cfg.repeats), fps))
    return rows


def bench_load(cfg: BenchConfig) -> list[Row]:
    """load_audio of a 44.1 kHz stereo 16-bit WAV to 16 kHz mono."""
    if not cfg.load:
        return []
    sr_file = 44100
    mono = speech_like_signal(cfg.seconds, sr_file, cfg.seed + 1)
    stereo = np.stack([mono, 0.5 * mono], axis=1)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_wav(Path(tmp) / "bench.wav", stereo, sr_file)
        wall = best_wall(lambda: load_audio(path, SR), cfg.repeats)
    return [Row("load_audio: 44.1 kHz stereo WAV -> 16 kHz mono", len(mono) / sr_file, wall)]


def bench_corpus(cfg: BenchConfig) -> list[Row]:
    """Corpus build throughput: seconds of audio produced per wall second by ``build_corpus`` (speech in 11
    languages through espeak-ng, features, lip targets, files). Single run: a second build would only resume."""
    if not cfg.corpus:
        return []
    from facetwin.audio.corpus import build_corpus

    n = max(11, int(round(cfg.seconds / 2.0)))  # ~2 s per utterance
    with tempfile.TemporaryDirectory() as tmp:
        build_corpus(Path(tmp) / "warmup", 1, langs=["en"], heldout_langs=[], include_songs=False, progress=False)
        start = time.perf_counter()
        manifest = build_corpus(Path(tmp) / "corpus", n, include_songs=False, progress=False)
        wall = time.perf_counter() - start
    return [Row(f"corpus build: {n} utterances, 11 languages (speech)", manifest["total_duration_s"], wall)]


# Each group returns its rows; add new measurements here.
ROW_GROUPS: list[Callable[[BenchConfig], list[Row]]] = [bench_features, bench_load, bench_corpus]


# ---------------------------------------------------------------------------------------------------- driver
def environment() -> dict[str, Any]:
    return {
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu": cpu_name(),
        "cpus_available": cpus_available(),
        "pinned_to_one_core": hasattr(os, "sched_setaffinity"),
        "blas_threads_env": os.environ.get("OPENBLAS_NUM_THREADS", ""),
    }


def run_benchmark(cfg: BenchConfig) -> BenchResult:
    if cfg.seconds <= 0:
        raise ValueError(f"seconds must be positive, got {cfg.seconds}")
    rows: list[Row] = []
    with one_core():
        for group in ROW_GROUPS:
            rows += group(cfg)
    return BenchResult(cfg, rows, environment())


# ---------------------------------------------------------------------------------------------------- output
def _fmt(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def format_table(result: BenchResult) -> str:
    lines = [
        f"| measurement | fps | audio (s) | wall (ms, best of {result.config.repeats}) | real-time factor (1 core) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in result.rows:
        fps = "-" if r.fps is None else f"{r.fps:g}"
        lines.append(f"| {r.label} | {fps} | {r.audio_seconds:g} | {_fmt(r.wall_seconds * 1e3)} | {_fmt(r.rtf)}x |")
    return "\n".join(lines)


def format_report(result: BenchResult) -> str:
    env, cfg = result.env, result.config
    head = (
        f"facetwin audio benchmark: numpy {env['numpy']}, {env['cpu']} ({env['cpus_available']} cpus available, "
        f"pinned to one), {cfg.seconds:g} s of {SR} Hz audio, best of {cfg.repeats}"
    )
    detail = "; ".join(f"fps {r.fps:g}: {_fmt(r.rtf)}x" for r in result.all_features())
    verdict = "PASS" if result.meets_target else "FAIL"
    target = f"Target all features >= {TARGET_RTF:g}x real time on one core: {verdict} ({detail})"
    return "\n".join([head, "", format_table(result), "", target])


def to_json(result: BenchResult) -> dict[str, Any]:
    out = asdict(result)
    for row, r in zip(out["rows"], result.rows):
        row["rtf"] = r.rtf
    out["target_rtf"] = TARGET_RTF
    out["meets_target"] = result.meets_target
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=None, help="seconds of test audio (default 60; 5 with --quick)")
    p.add_argument("--quick", action="store_true", help="short run: 5 s of audio, one repetition")
    p.add_argument("--repeats", type=int, default=None, help="timed repetitions per figure; the best is kept (default 3)")
    p.add_argument("--fps", type=float, nargs="+", default=list(FPS_CHOICES), help="feature frame rates (default 30 100)")
    p.add_argument("--no-load", action="store_true", help="skip the load_audio row")
    p.add_argument("--no-corpus", action="store_true", help="skip the corpus build row")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the numbers as JSON")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> BenchResult:
    args = parse_args(argv)
    overrides: dict[str, Any] = dict(fps=tuple(args.fps), load=not args.no_load, corpus=not args.no_corpus)
    if args.seconds is not None:
        overrides["seconds"] = args.seconds
    if args.repeats is not None:
        overrides["repeats"] = args.repeats
    cfg = BenchConfig.quick(**overrides) if args.quick else BenchConfig(**overrides)
    result = run_benchmark(cfg)
    print(format_report(result))
    write_json(args.json, to_json(result))
    return result


if __name__ == "__main__":
    main()
