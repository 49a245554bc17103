"""``facetwin evaluate``: every lip-sync method side by side, same clips, same metrics, tables per language and voice.

Each method turns a clip into a (T, 26) motor command sequence; the commands are played on the simulated face
(:func:`facetwin.sim.playback.play`, fast variant by default) and scored with :mod:`facetwin.agents.metrics`
against the clip's phone times: B/P/M closure, rounding and opening within 20 ms of each phone, the A/V offset
against the openness the phones call for, and the lip-shape error against the phones' lip track.

Data (``data=`` / ``--data``), any of:

| data | clips | groups |
|---|---|---|
| a labelled folder: ``NAME.wav`` + ``NAME.segs`` (festival) [+ ``manifest.json``] (:mod:`facetwin.audio.labelled`), e.g. a development set of real speech | every clip (split = the folder's name) | language, speaker |
| a corpus folder (``facetwin corpus build``, :mod:`facetwin.audio.corpus`) | the items of ``splits`` | split, language, voice |
| nothing | the held-out splits of the lip-sync training corpus (:func:`facetwin.agents.train_audio_to_lips.train_corpus_dir`) | split, language, voice |

Methods:

| method | input | how |
|---|---|---|
| ``learned`` | audio | audio -> lips (offline weights) -> inverse self-model (:class:`facetwin.agents.lipsync.LipSyncer`) |
| ``learned_stream`` | audio | the same with the streaming weights and <= 100 ms lookahead |
| ``learned_text`` | audio + transcript | the offline pipeline given the clip's transcript (aligned to the recording: :meth:`facetwin.agents.lipsync.LipSyncer.align_transcript`); clips without a transcript, or in a language no aligner speaks, are not scored |
| ``amplitude`` | audio | loudness drives the jaw (:func:`facetwin.agents.baselines.amplitude_controls`) |
| ``nearest_neighbour`` | audio | the learned lip targets -> the nearest babbled expression's commands (:func:`facetwin.agents.baselines.nearest_neighbour_controls`) |
| ``viseme_rule`` | exact phone times | a fixed pose per viseme, interpolated (:func:`facetwin.agents.baselines.viseme_rule_controls`); it is given the labelled timeline, which no other method sees: an upper reference, not a competitor |
| ``rest`` | nothing | the motionless neutral face (the floor every method must beat) |
| ``learned_residual`` | audio | with ``residual=`` (``--residual``): the offline pipeline plus a correction trained with RL in ``LipSync-v0`` (:mod:`facetwin.agents.residual`), rolled out closed loop on the twin |

The real-time factor is seconds of audio per second of computing the commands on this machine (the learned
methods' audio features included, and the transcript's alignment for ``learned_text``; the amplitude baseline reads
the clip's precomputed loudness).

>>> report = evaluate("human_dev")                            # a labelled folder
>>> print(format_table(report))                               # all clips pooled, one row per method
>>> print(format_table(report, by="lang", methods=("learned",)))
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facetwin.sim.model import FaceModel
from facetwin.sim.playback import play

METHODS = ("learned", "learned_stream", "learned_text", "amplitude", "nearest_neighbour", "viseme_rule", "rest")
#: a method that needs a trained residual policy (``residual=``): the offline pipeline + its RL correction
RESIDUAL_METHOD = "learned_residual"
DEFAULT_SPLITS = ("heldout_sentence", "heldout_language", "heldout_voice")
#: the groupings of the tables: each clip's split, language and voice (speaker)
GROUPINGS = ("split", "lang", "voice")
ALL = "all"


@dataclass
class EvalReport:
    """Pooled metrics per method: ``results[method][group]`` with group ``"all"`` (every clip) or
    ``"<grouping>:<value>"`` (``"lang:en"``, ``"voice:ENG_M15"``, ``"split:heldout_sentence"``)."""

    results: dict[str, dict[str, dict]]
    clips: dict[str, list[str]]
    data_dir: str
    variant: str
    per_clip: dict[str, list[dict]] = field(default_factory=dict)

    @property
    def corpus_dir(self) -> str:  # the name of earlier versions
        return self.data_dir

    def groups(self, by: str) -> list[str]:
        """The group keys of a grouping, in order of first appearance (``by="all"``: ``["all"]``)."""
        if by == ALL:
            return [ALL]
        seen: dict[str, None] = {}
        for rows in self.per_clip.values():
            for r in rows:
                seen.setdefault(f"{by}:{r[by]}", None)
        return list(seen)

    @classmethod
    def load(cls, path: str | Path) -> EvalReport:
        """A report written by :func:`write_report` (``--json``), e.g. to format other tables from it."""
        try:
            j = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(results=j["results"], clips=j["clips"], data_dir=j["data_dir"], variant=j["variant"],
                       per_clip=j.get("per_clip", {}))
        except (ValueError, RecursionError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{path}: not a report that `facetwin evaluate --json` wrote ({type(e).__name__})"
                             ) from None

    def to_json(self) -> dict:
        def clean(d: dict) -> dict:
            return {k: (float(v) if isinstance(v, (np.floating, float)) else int(v) if isinstance(v, (np.integer, int)) else v)
                    for k, v in d.items() if not isinstance(v, (np.ndarray, list))}

        return {
            "data_dir": self.data_dir,
            "variant": self.variant,
            "clips": self.clips,
            "results": {m: {g: clean(r) for g, r in by.items()} for m, by in self.results.items()},
            "per_clip": {m: [clean(r) for r in rows] for m, rows in self.per_clip.items()},
        }


class _Methods:
    """The command generators of every method, sharing loaded weights."""

    def __init__(self, weights_dir: str | Path | None, residual: str | Path | None = None):
        from facetwin.sim.actuators import rest_controls

        self.weights_dir = weights_dir
        self.residual = None
        if residual is not None:
            from facetwin.agents.residual import ResidualPolicy

            self.residual = ResidualPolicy.load(residual)
        self._syncers: dict[str, object] = {}
        self._bank = None
        self.rest = rest_controls().astype(float)

    def syncer(self, mode: str):
        from facetwin.agents.lipsync import LipSyncer

        if mode not in self._syncers:
            self._syncers[mode] = LipSyncer(mode, weights_dir=self.weights_dir)
        return self._syncers[mode]

    def bank(self):
        from facetwin.agents.baselines import BabbleBank
        from facetwin.agents.weights import BABBLE_BANK_FILE

        if self._bank is None:
            self._bank = (BabbleBank.load(Path(self.weights_dir) / BABBLE_BANK_FILE) if self.weights_dir
                          else BabbleBank.load_shipped())
        return self._bank

    def __call__(self, method: str, clip) -> tuple[np.ndarray | None, float]:
        """(commands, compute seconds); commands None when the method cannot run on the clip (no transcript)."""
        from facetwin.agents import baselines

        T = clip.n_frames
        if method in ("learned", "learned_text", "nearest_neighbour", RESIDUAL_METHOD):  # weights before the clock
            self.syncer("offline")
        if method == "learned_stream":
            self.syncer("stream")
        if method == "nearest_neighbour":
            self.bank()
        if method == "learned_text" and not clip.text.strip():
            return None, 0.0
        audio = clip.load_audio16() if method in ("learned", "learned_stream", "learned_text", "nearest_neighbour") \
            else None
        tl = None
        if method == "learned_text":
            from facetwin.audio.tts import languages

            if clip.lang not in languages():
                return None, 0.0  # no aligner speaks the language: not scored
            t0 = time.perf_counter()
            try:
                tl = self.syncer("offline").align_transcript(audio, 16000, clip.text, clip.lang)
            except ValueError:
                tl = None  # the alignment failed: the audio alone, as `facetwin lipsync` would do
        else:
            t0 = time.perf_counter()
        if method in ("learned", "learned_text"):
            ctrl = self.syncer("offline").controls(audio, 16000, timeline=tl).ctrl
        elif method == "learned_stream":
            ctrl = self.syncer("stream").controls(audio, 16000).ctrl
        elif method == "amplitude":
            rms_db = clip.audio_obs[:, 80] * 50.0 - 100.0  # the RMS column of audio_obs_features, back to dB
            ctrl = baselines.amplitude_controls(rms_db, fps=clip.fps)
        elif method == "nearest_neighbour":
            s = self.syncer("offline")
            pred = s.audio_model.predict_audio(audio, 16000)
            ctrl = baselines.nearest_neighbour_controls(np.asarray(pred.lips_mm), self.bank(), lead_frames=s.lead_frames)
        elif method == "viseme_rule":
            ctrl = baselines.viseme_rule_controls(clip.timeline, T, fps=clip.fps)
        elif method == "rest":
            ctrl = np.tile(self.rest, (T, 1))
        elif method == RESIDUAL_METHOD:
            if self.residual is None:
                raise ValueError(f"method {RESIDUAL_METHOD} needs a trained residual policy (--residual PATH)")
            ctrl = self.residual.controls(clip, self.syncer("offline"))
        else:
            raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        return np.asarray(ctrl, dtype=float), time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------------- clips
def _pick(ids: list[str], max_clips: int | None) -> list[str]:
    if max_clips is not None and len(ids) > max_clips:
        return [ids[int(i)] for i in np.linspace(0, len(ids) - 1, max_clips).round().astype(int)]
    return ids


def _corpus_clips(corpus_dir: Path, split: str, max_clips: int | None, only: set[str] | None = None):
    from facetwin.envs.lip_sync import LipSyncEnv

    try:
        env = LipSyncEnv(corpus_dir=corpus_dir, split=split)
    except ValueError as e:  # an empty split
        if "has no items" in str(e):
            return []
        raise
    try:
        ids = _pick([i for i in env.unwrapped.clip_ids if only is None or i in only], max_clips)
        return [env.unwrapped.load_clip(i) for i in ids]
    finally:
        env.close()


def load_clips(data: str | Path, *, splits: Sequence[str] = DEFAULT_SPLITS, max_clips: int | None = None,
               clip_ids: Sequence[str] | None = None, progress: bool = False) -> dict[str, list]:
    """The clips of ``data`` (a labelled folder or a corpus, see the module docstring) by split, as
    :class:`facetwin.envs.lip_sync.ClipData`. A labelled folder is one split named after the folder."""
    from facetwin.audio.labelled import is_labelled_folder, read_labelled_folder
    from facetwin.envs.lip_sync import load_labelled_clip

    data = Path(data)
    if not data.exists():
        raise FileNotFoundError(f"{data}: no such folder")
    only = set(clip_ids) if clip_ids is not None else None
    if is_labelled_folder(data) and not _is_corpus(data):
        entries = [c for c in read_labelled_folder(data) if only is None or c.name in only]
        entries = [entries[i] for i in _pick_index(len(entries), max_clips)]
        from tqdm.auto import tqdm

        clips = [load_labelled_clip(c) for c in tqdm(entries, desc=f"load {data.name}", unit="clip",
                                                     disable=not progress)]
        return {data.name or "clips": clips}
    if not (data / "manifest.json").exists():
        raise FileNotFoundError(f"{data} is neither a facetwin corpus (manifest.json) nor a labelled folder "
                                "(NAME.wav + NAME.segs)")
    return {s: _corpus_clips(data, s, max_clips, only) for s in splits}


def _is_corpus(folder: Path) -> bool:
    """A facetwin corpus has a manifest.json object with ``items`` (a labelled folder's manifest is a list)."""
    try:
        m = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(m, dict) and "items" in m


def _pick_index(n: int, max_clips: int | None) -> list[int]:
    return _pick(list(range(n)), max_clips)  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------------- evaluate
def evaluate(
    data: str | Path | None = None,
    *,
    splits: Sequence[str] = DEFAULT_SPLITS,
    methods: Sequence[str] = METHODS,
    max_clips: int | None = None,
    clip_ids: Sequence[str] | None = None,
    variant: str = "fast",
    weights_dir: str | Path | None = None,
    residual: str | Path | None = None,
    behaviour=None,
    progress: bool = True,
) -> EvalReport:
    """Score ``methods`` on the clips of ``data`` (at most ``max_clips`` per split, evenly spread; only
    ``clip_ids`` when given); for a corpus, the items of ``splits`` (``"all"``: every item). ``behaviour``: a
    :class:`facetwin.agents.behaviour.BehaviourConfig`: every method's commands with the behaviour layer on (eyes,
    brows, head, emotion), to check that it leaves the mouth's scores alone."""
    from facetwin.agents.metrics import clip_metrics

    for m in methods:
        if m not in METHODS and m != RESIDUAL_METHOD:
            raise ValueError(f"unknown method {m!r}; choose from {', '.join(METHODS)}, {RESIDUAL_METHOD}")
    if RESIDUAL_METHOD in methods and residual is None:
        raise ValueError(f"method {RESIDUAL_METHOD} needs a trained residual policy (residual=, --residual)")
    if not methods:
        raise ValueError("no methods to evaluate")
    if data is None:
        from facetwin.agents.train_audio_to_lips import train_corpus_dir

        data = train_corpus_dir(progress=progress)
    data = Path(data)
    clips = load_clips(data, splits=splits, max_clips=max_clips, clip_ids=clip_ids, progress=progress)
    if not any(clips.values()):
        raise ValueError(f"no clips in {data}" + ("" if len(clips) == 1 else f" (splits {', '.join(splits)})"))
    face = FaceModel.load(variant)
    gen = _Methods(weights_dir, residual)
    beh = None
    if behaviour is not None:
        from facetwin.agents.behaviour import Behaviour

        beh = Behaviour(behaviour, model=face.model)
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
                    if ctrl is not None and beh is not None:
                        ctrl = beh.apply(ctrl, clip.load_audio16(), 16000)
                    if ctrl is not None:
                        r = clip_metrics(play(face, ctrl), clip)
                        r.update(split=split, lang=clip.lang or "?", voice=clip.voice or "?", clip=clip.id,
                                 compute_s=secs, duration_s=clip.duration_s)
                        per_clip[m].append(r)
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return EvalReport(results=pool(per_clip), clips={s: [c.id for c in cs] for s, cs in clips.items()},
                      data_dir=str(data), variant=variant, per_clip=per_clip)


def pool(per_clip: dict[str, list[dict]]) -> dict[str, dict[str, dict]]:
    """Pooled metrics of every method for all clips and for every group of :data:`GROUPINGS`."""
    from facetwin.agents.metrics import aggregate

    results: dict[str, dict[str, dict]] = {}
    for m, rows in per_clip.items():
        results[m] = {}
        if not rows:
            continue
        keys = [ALL] + [f"{g}:{v}" for g in GROUPINGS for v in dict.fromkeys(r[g] for r in rows)]
        for key in keys:
            sel = rows if key == ALL else [r for r in rows if f"{key.split(':', 1)[0]}:{r[key.split(':', 1)[0]]}" == key]
            agg = aggregate(sel)
            secs = sum(r["compute_s"] for r in sel)
            agg["rtf"] = sum(r["duration_s"] for r in sel) / max(secs, 1e-9)
            results[m][key] = agg
    return results


_HEADERS = {"lip_error_mm": "lip error (mm)", "aperture_corr": "aperture r", "closure_rate": "B/P/M closure",
            "rounding_rate": "rounding", "open_rate": "opening", "offset_ms": "A/V offset (ms)",
            "offset_median_ms": "median clip offset (ms)", "offset_within_60": "clips within +-60 ms",
            "rtf": "real-time factor"}
COLUMNS = tuple(_HEADERS)


def _cell(name: str, r: dict) -> str:
    v = float(r.get(name, float("nan")))
    if not np.isfinite(v):
        return "-"
    if name == "rtf":
        return f"{v:,.0f}x"
    if name.endswith("_rate"):
        stem = name[: -len("_rate")]
        return f"{100 * v:.0f} % ({int(r.get(stem + '_hits', 0))}/{int(r.get(stem + '_n', 0))})"
    if name == "offset_within_60":
        return f"{100 * v:.0f} %"
    if name.endswith("_ms") and name != "lip_error_mm":
        return f"{v:+.0f}"
    return f"{v:.2f}"


def format_table(report: EvalReport, by: str = ALL, *, methods: Sequence[str] | None = None,
                 columns: Sequence[str] = COLUMNS) -> str:
    """A markdown table: one row per method (``by="all"``: every clip pooled) or per group and method
    (``by="lang"``, ``"voice"``, ``"split"``)."""
    if by != ALL and by not in GROUPINGS:
        raise ValueError(f"unknown grouping {by!r}; choose from {ALL}, {', '.join(GROUPINGS)}")
    methods = [m for m in (methods or report.results) if m in report.results]
    lead = ["method"] if by == ALL else [by, "method"]
    lines = ["| " + " | ".join(lead + [_HEADERS[c] for c in columns]) + " |",
             "|" + "---|" * len(lead) + "---:|" * len(columns)]
    for g in report.groups(by):
        for m in methods:
            r = report.results[m].get(g)
            if r is None:
                continue
            label = [m] if by == ALL else [g.split(":", 1)[1], m]
            lines.append("| " + " | ".join(label + [_cell(c, r) for c in columns]) + " |")
    n = {s: len(c) for s, c in report.clips.items()}
    lines.append("")
    lines.append(f"{', '.join(f'{k}: {v} clips' for k, v in n.items())}; face variant {report.variant}")
    return "\n".join(lines)


def write_report(report: EvalReport, path: str | Path) -> Path:
    """The report as JSON (pooled results per method and group, per-clip metrics, clip ids)."""
    from facetwin.files import atomic_write

    path = Path(path)
    text = json.dumps(report.to_json(), indent=1)
    atomic_write(path, lambda p: Path(p).write_text(text, encoding="utf-8"))
    return path


__all__ = ["ALL", "COLUMNS", "DEFAULT_SPLITS", "GROUPINGS", "METHODS", "RESIDUAL_METHOD", "EvalReport",
           "evaluate", "format_table", "load_clips", "pool", "write_report"]
