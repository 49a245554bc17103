"""``facetwin evaluate``: every lip-sync method side by side, same held-out clips, same metrics, one table.

Each method turns a clip into a (T, 26) motor command sequence; the commands are played on the simulated face
(:func:`facetwin.sim.playback.play`, fast variant by default) and scored against the clip's target lip track with
:mod:`facetwin.agents.metrics`. The clips are the held-out splits of the lip-sync training corpus
(:func:`facetwin.agents.audio_to_lips.train_corpus_dir`: sentences never heard in training, and Hebrew, a
language never heard at all), or of any corpus folder.

| method | input | how |
|---|---|---|
| ``learned`` | audio | audio -> lips (offline weights) -> inverse self-model (:class:`facetwin.agents.lipsync.LipSyncer`) |
| ``learned_stream`` | audio | the same with the streaming weights and <= 100 ms lookahead |
| ``amplitude`` | audio | loudness drives the jaw (:func:`facetwin.agents.baselines.amplitude_controls`) |
| ``nearest_neighbour`` | audio | the learned lip targets -> the nearest babbled expression's commands (:func:`facetwin.agents.baselines.nearest_neighbour_controls`) |
| ``viseme_rule`` | phoneme timeline | a fixed pose per viseme, interpolated (:func:`facetwin.agents.baselines.viseme_rule_controls`); it is given the exact timeline, which the audio methods must infer |
| ``rest`` | nothing | the motionless neutral face (the floor every method must beat) |

The real-time factor is seconds of audio per second of computing the commands on this machine (audio features,
precomputed in the corpus, excluded; they run at > 1000x real time, ``python -m facetwin.benchmarks.bench_audio``).

>>> report = evaluate(max_clips=10)
>>> print(format_table(report))
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facetwin.sim.model import FaceModel
from facetwin.sim.playback import play

METHODS = ("learned", "learned_stream", "amplitude", "nearest_neighbour", "viseme_rule", "rest")
DEFAULT_SPLITS = ("heldout_sentence", "heldout_language")


@dataclass
class EvalReport:
    """Pooled metrics per method (``results[method][split]``, split ``"all"`` pools every split)."""

    results: dict[str, dict[str, dict]]
    clips: dict[str, list[str]]
    corpus_dir: str
    variant: str
    per_clip: dict[str, list[dict]] = field(default_factory=dict)

    def to_json(self) -> dict:
        def clean(d: dict) -> dict:
            return {k: (float(v) if isinstance(v, (np.floating, float)) else int(v) if isinstance(v, (np.integer, int)) else v)
                    for k, v in d.items() if not isinstance(v, (np.ndarray, list))}

        return {
            "corpus_dir": self.corpus_dir,
            "variant": self.variant,
            "clips": self.clips,
            "results": {m: {s: clean(r) for s, r in by.items()} for m, by in self.results.items()},
        }


class _Methods:
    """The command generators of every method, sharing loaded weights."""

    def __init__(self, weights_dir: str | Path | None, lead_frames: int | None = None):
        from facetwin.agents.lipsync import LipSyncer
        from facetwin.sim.actuators import rest_controls

        self.weights_dir = weights_dir
        self._syncers: dict[str, LipSyncer] = {}
        self._bank = None
        self.lead_frames = lead_frames
        self.rest = rest_controls().astype(float)

    def syncer(self, mode: str):
        from facetwin.agents.lipsync import LipSyncer

        if mode not in self._syncers:
            kw = {} if self.lead_frames is None or mode != "offline" else {"lead_frames": self.lead_frames}
            self._syncers[mode] = LipSyncer(mode, weights_dir=self.weights_dir, **kw)
        return self._syncers[mode]

    def bank(self):
        from facetwin.agents.baselines import BabbleBank
        from facetwin.agents.weights import BABBLE_BANK_FILE

        if self._bank is None:
            self._bank = (BabbleBank.load(Path(self.weights_dir) / BABBLE_BANK_FILE) if self.weights_dir
                          else BabbleBank.load_shipped())
        return self._bank

    def __call__(self, method: str, clip) -> tuple[np.ndarray, float]:
        from facetwin.agents import baselines

        T = clip.n_frames
        if method in ("learned", "nearest_neighbour"):  # load weights before the clock starts
            self.syncer("offline")
        if method == "learned_stream":
            self.syncer("stream")
        if method == "nearest_neighbour":
            self.bank()
        t0 = time.perf_counter()
        if method == "learned":
            ctrl = self.syncer("offline").controls_from_obs(clip.audio_obs).ctrl
        elif method == "learned_stream":
            ctrl = self.syncer("stream").controls_from_obs(clip.audio_obs).ctrl
        elif method == "amplitude":
            rms_db = clip.audio_obs[:, 80] * 50.0 - 100.0  # the RMS column of audio_obs_features, back to dB
            ctrl = baselines.amplitude_controls(rms_db, fps=clip.fps)
        elif method == "nearest_neighbour":
            s = self.syncer("offline")
            pred = s.audio_model.predict(clip.audio_obs)
            ctrl = baselines.nearest_neighbour_controls(np.asarray(pred.lips_mm), self.bank(), lead_frames=s.lead_frames)
        elif method == "viseme_rule":
            ctrl = baselines.viseme_rule_controls(clip.timeline, T, fps=clip.fps)
        elif method == "rest":
            ctrl = np.tile(self.rest, (T, 1))
        else:
            raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        return np.asarray(ctrl, dtype=float), time.perf_counter() - t0


def _clips(corpus_dir: Path, split: str, max_clips: int | None, only: set[str] | None = None):
    from facetwin.envs.lip_sync import LipSyncEnv

    try:
        env = LipSyncEnv(corpus_dir=corpus_dir, split=split)
    except ValueError as e:  # an empty split
        if "has no items" in str(e):
            return []
        raise
    try:
        ids = [i for i in env.unwrapped.clip_ids if only is None or i in only]
        if max_clips is not None and len(ids) > max_clips:
            ids = [ids[int(i)] for i in np.linspace(0, len(ids) - 1, max_clips).round().astype(int)]
        return [env.unwrapped.load_clip(i) for i in ids]
    finally:
        env.close()


def evaluate(
    corpus_dir: str | Path | None = None,
    *,
    splits: Sequence[str] = DEFAULT_SPLITS,
    methods: Sequence[str] = METHODS,
    max_clips: int | None = None,
    clip_ids: Sequence[str] | None = None,
    variant: str = "fast",
    weights_dir: str | Path | None = None,
    progress: bool = True,
) -> EvalReport:
    """Score ``methods`` on the clips of ``splits`` (at most ``max_clips`` per split, evenly spread; only
    ``clip_ids`` when given). Split ``"all"`` is every item of the corpus."""
    from facetwin.agents.metrics import aggregate, clip_metrics

    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
    if corpus_dir is None:
        from facetwin.agents.audio_to_lips import train_corpus_dir

        corpus_dir = train_corpus_dir(progress=progress)
    corpus_dir = Path(corpus_dir)
    only = set(clip_ids) if clip_ids is not None else None
    clips = {s: _clips(corpus_dir, s, max_clips, only) for s in splits}
    if not any(clips.values()):
        raise ValueError(f"no clips in splits {', '.join(splits)} of {corpus_dir}")
    face = FaceModel.load(variant)
    gen = _Methods(weights_dir)
    per_clip: dict[str, list[dict]] = {m: [] for m in methods}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(len(c) for c in clips.values()) * len(methods), desc="evaluate", unit="clip")
    try:
        for split, cs in clips.items():
            for clip in cs:
                for m in methods:
                    ctrl, secs = gen(m, clip)
                    pb = play(face, ctrl)
                    r = clip_metrics(pb, clip)
                    r.update(split=split, clip=clip.id, compute_s=secs, duration_s=clip.duration_s)
                    per_clip[m].append(r)
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    results: dict[str, dict[str, dict]] = {}
    for m in methods:
        results[m] = {}
        for split in dict.fromkeys([*splits, "all"]):
            rows = [r for r in per_clip[m] if split == "all" or r["split"] == split]
            if not rows:
                continue
            agg = aggregate(rows)
            secs = sum(r["compute_s"] for r in rows)
            agg["rtf"] = sum(r["duration_s"] for r in rows) / max(secs, 1e-9)
            agg["n_clips"] = len(rows)
            results[m][split] = agg
    return EvalReport(results=results, clips={s: [c.id for c in cs] for s, cs in clips.items()},
                      corpus_dir=str(corpus_dir), variant=variant, per_clip=per_clip)


def format_table(report: EvalReport, split: str = "all") -> str:
    """A markdown table of one split (default: all held-out clips pooled), one row per method."""
    from facetwin.agents.metrics import METRICS

    headers = {"lip_error_mm": "lip error (mm)", "aperture_corr": "aperture r", "closure_rate": "B/P/M closure",
               "rounding_rate": "W/OO rounding", "open_rate": "open vowels", "offset_ms": "A/V offset (ms)"}
    cols = [(s.name, headers.get(s.name, f"{s.name} ({s.unit})")) for s in METRICS] + [("rtf", "real-time factor")]
    lines = ["| method | " + " | ".join(h for _, h in cols) + " |", "|---|" + "---:|" * len(cols)]
    for m, by in report.results.items():
        r = by.get(split)
        if r is None:
            continue
        cells = []
        for name, _ in cols:
            v = float(r.get(name, float("nan")))
            if not np.isfinite(v):
                cells.append("-")
            elif name == "rtf":
                cells.append(f"{v:,.0f}x")
            elif name.endswith("_rate"):
                stem = name[: -len("_rate")]
                cells.append(f"{100 * v:.0f} % ({int(r.get(stem + '_hits', 0))}/{int(r.get(stem + '_n', 0))})")
            elif name == "offset_ms":
                cells.append(f"{v:+.0f}")
            else:
                cells.append(f"{v:.2f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    n = {s: len(c) for s, c in report.clips.items()}
    lines.append("")
    lines.append(f"{split} of {', '.join(f'{k} {v} clips' for k, v in n.items())}; face variant {report.variant}")
    return "\n".join(lines)


def write_report(report: EvalReport, path: str | Path) -> Path:
    """The report as JSON (pooled results per method and split, clip ids)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=1), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------- CLI
def add_evaluate_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--corpus", default=None,
                        help="corpus folder (default: the lip-sync training corpus, built on first use)")
    parser.add_argument("--splits", default=",".join(DEFAULT_SPLITS),
                        help=f"comma-separated splits (default {','.join(DEFAULT_SPLITS)})")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated (default all: {','.join(METHODS)})")
    parser.add_argument("--max-clips", type=int, default=None, help="at most this many clips per split (evenly spread)")
    parser.add_argument("--variant", choices=("fast", "full"), default="fast", help="face variant (default fast)")
    parser.add_argument("--weights", default=None, help="folder of weights from `facetwin train-lipsync` (default: shipped)")
    parser.add_argument("--json", default=None, help="also write the results as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main_evaluate(args: argparse.Namespace) -> int:
    if args.max_clips is not None and args.max_clips < 1:
        raise ValueError(f"--max-clips must be >= 1, got {args.max_clips}")
    report = evaluate(args.corpus, splits=[s for s in args.splits.split(",") if s],
                      methods=[m for m in args.methods.split(",") if m], max_clips=args.max_clips,
                      variant=args.variant, weights_dir=args.weights, progress=not args.quiet)
    for split in dict.fromkeys([*report.clips, "all"]):
        print(f"\n### {split}\n")
        print(format_table(report, split))
    if args.json:
        print(f"\nwrote {write_report(report, args.json)}")
    return 0


__all__ = ["DEFAULT_SPLITS", "METHODS", "EvalReport", "add_evaluate_arguments", "evaluate", "format_table",
           "main_evaluate", "write_report"]
