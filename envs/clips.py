"""The clips that ``LipSyncEnv`` plays: corpus items, labelled recordings and a user's own audio, as
:class:`ClipData` (features, lip targets, phone classes at the control rate), with the audio observation scaling
and the built-in corpus. The environment itself is :mod:`facetwin.envs.lip_sync`."""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facetwin.audio.cache import default_cache_dir
from facetwin.audio.corpus import (
    CORPUS_FPS,
    CORPUS_SR,
    CORPUS_VERSION,
    DEFAULT_HELDOUT_LANGUAGES,
    DEFAULT_LANGUAGES,
    cached_corpus,
    load_item,
    read_manifest,
)
from facetwin.audio.features import LOG_FLOOR, N_MELS, extract_features
from facetwin.audio.lip_track import lip_track
from facetwin.audio.phone_sets import IPA_SET, lip_class
from facetwin.audio.timeline import Timeline

LOGMEL_OFFSET = math.log(LOG_FLOOR)
LOGMEL_SCALE = 10.0
RMS_OFFSET_DB = -100.0
RMS_SCALE_DB = 50.0
N_AUDIO_FEATURES = N_MELS + 1  # 80 log-mel bands + RMS
AUDIO_OBS_BOUND = 10.0  # audio observations are clipped to [-10, 10] (speech/song: 0 .. ~2.5)
N_LIPS = 40
SPLITS = ("train", "heldout_sentence", "heldout_language", "heldout_voice", "all")
#: the built-in corpus (built on first use into ``<cache>/corpus-v<CORPUS_VERSION>`` with :func:`facetwin.audio.corpus.build_corpus`)
BUILTIN_CORPUS_NAME = f"corpus-v{CORPUS_VERSION}"
BUILTIN_CORPUS_ARGS: dict[str, Any] = {
    "n_utterances": 44,
    "langs": DEFAULT_LANGUAGES,
    "heldout_langs": DEFAULT_HELDOUT_LANGUAGES,
    "heldout_fraction": 0.15,
    "include_songs": True,
    "seed": 0,
}


# ---------------------------------------------------------------------------------------------------- audio helpers
def audio_obs_features(logmel: np.ndarray, rms_db: np.ndarray) -> np.ndarray:
    """(T, 81) float32 audio observation rows from corpus / :func:`facetwin.audio.features.extract_features` arrays:
    ``[:, :80] = (logmel - ln(1e-6)) / 10``, ``[:, 80] = (rms_db + 100) / 50``, clipped to +-``AUDIO_OBS_BOUND``."""
    # the floor as float32 (what corpus arrays hold): silence maps to exactly 0
    lm = (np.asarray(logmel, dtype=np.float64) - float(np.float32(LOGMEL_OFFSET))) / LOGMEL_SCALE
    rms = (np.asarray(rms_db, dtype=np.float64) - RMS_OFFSET_DB) / RMS_SCALE_DB
    if lm.ndim != 2 or lm.shape[1] != N_MELS or rms.shape != (lm.shape[0],):
        raise ValueError(f"audio_obs_features needs logmel (T, {N_MELS}) and rms_db (T,), got {lm.shape}, {rms.shape}")
    out = np.concatenate([lm, rms[:, None]], axis=1)
    return np.clip(out, -AUDIO_OBS_BOUND, AUDIO_OBS_BOUND).astype(np.float32)


# ---------------------------------------------------------------------------------------------------- cache
def builtin_corpus_dir(cache_dir: str | Path | None = None, *, progress: bool = False) -> Path:
    """The built-in corpus (``BUILTIN_CORPUS_ARGS``: 44 utterances in 11 languages + the shipped songs), built
    deterministically into ``<cache_dir>/corpus-v<version>`` on first use (a few seconds; later calls only read a marker).

    ``cache_dir`` defaults to :func:`default_cache_dir`. A file lock makes concurrent first uses (vector envs in
    subprocesses) build it once.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return cached_corpus(root, BUILTIN_CORPUS_NAME, BUILTIN_CORPUS_ARGS, progress=progress)


# ---------------------------------------------------------------------------------------------------- clips
@dataclass(eq=False)
class ClipData:
    """One clip's arrays on the 30 fps frame grid (frame ``k`` at ``k / fps`` s; ``n_frames`` frames)."""

    id: str
    kind: str  # "speech", "song", "video" (facetwin ingest-video) or "user"
    lang: str
    text: str
    fps: float
    audio_obs: np.ndarray  # (T, 81) float32: audio_obs_features(logmel, rms_db)
    target_lips_mm: np.ndarray  # (T, 40, 3) target lip landmark displacement from neutral, head frame, mm
    target_aperture_mm: np.ndarray  # (T,)
    target_width_mm: np.ndarray  # (T,)
    target_protrusion_mm: np.ndarray  # (T,)
    closure: np.ndarray  # (T,) bool: bilabial closure frames of the target
    rounded: np.ndarray  # (T,) bool: rounding frames of the target (W/OO class)
    phoneme: np.ndarray  # (T,) str: the phone of the timeline sounding at t_k ("" in silence)
    viseme: np.ndarray  # (T,) str: the target's dominant viseme
    timeline: Timeline
    voice: str = ""  # who speaks (a TTS voice, a recorded speaker; "" when unknown)
    phone_set: str = IPA_SET  # the label set the timeline came from (facetwin.audio.phone_sets)
    #: lip class of each timeline phone ("bilabial", "rounded", "open", ""); default: from the IPA (viseme table)
    phone_classes: tuple[str, ...] = ()
    audio_path: str = ""  # the clip's audio file, when it has one
    audio16: np.ndarray | None = None  # the clip's 16 kHz samples when it has no file

    def load_audio16(self) -> np.ndarray:
        """The clip's audio, 16 kHz mono float32 (from ``audio16`` or ``audio_path``)."""
        if self.audio16 is not None:
            return np.asarray(self.audio16, dtype=np.float32)
        if not self.audio_path:
            raise ValueError(f"clip {self.id!r} has no audio (neither samples nor a file)")
        from facetwin.audio.io import load_audio

        return load_audio(self.audio_path, sr=CORPUS_SR)

    def __post_init__(self) -> None:
        if not self.phone_classes:
            self.phone_classes = tuple(lip_class(p.phoneme) for p in self.timeline)
        if len(self.phone_classes) != len(self.timeline):
            raise ValueError(f"clip {self.id!r}: {len(self.phone_classes)} phone classes for {len(self.timeline)} "
                             "timeline phones")

    @property
    def n_frames(self) -> int:
        return len(self.target_aperture_mm)

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps


def _clip_from_arrays(cid: str, kind: str, lang: str, text: str, fps: float, logmel, rms_db, track_arrays: dict,
                      timeline: Timeline, rounded: np.ndarray | None, **extra) -> ClipData:
    T = int(np.asarray(rms_db).shape[0])
    if T < 1:
        raise ValueError(f"clip {cid!r} has no frames (empty audio)")
    if rounded is None:  # not stored in the corpus npz: the rounding frames of the same lip track, recomputed
        rounded = lip_track(timeline, fps=fps, duration=T / fps).rounded
    t = np.arange(T) / fps
    phoneme = np.array(timeline.labels_at(t) if len(timeline) else [""] * T, dtype=str)
    data = ClipData(
        id=cid, kind=kind, lang=lang, text=text, fps=float(fps),
        audio_obs=audio_obs_features(logmel, rms_db),
        target_lips_mm=np.asarray(track_arrays["lip_landmarks_mm"], dtype=np.float64),
        target_aperture_mm=np.asarray(track_arrays["aperture_mm"], dtype=np.float64),
        target_width_mm=np.asarray(track_arrays["width_mm"], dtype=np.float64),
        target_protrusion_mm=np.asarray(track_arrays["protrusion_mm"], dtype=np.float64),
        closure=np.asarray(track_arrays["closure"], dtype=bool),
        rounded=np.asarray(rounded, dtype=bool),
        phoneme=phoneme,
        viseme=np.asarray(track_arrays["viseme"], dtype=str),
        timeline=timeline,
        **extra,
    )
    for name in ("target_lips_mm", "target_aperture_mm", "target_width_mm", "target_protrusion_mm", "closure",
                 "rounded", "viseme"):
        if len(getattr(data, name)) != T:
            raise ValueError(f"clip {cid!r}: {name} has {len(getattr(data, name))} frames, the audio features {T}")
    if data.target_lips_mm.shape[1:] != (N_LIPS, 3):
        raise ValueError(f"clip {cid!r}: lip targets must be (T, {N_LIPS}, 3), got {data.target_lips_mm.shape}")
    for arr in (data.audio_obs, data.target_lips_mm, data.target_aperture_mm):
        arr.setflags(write=False)
    return data


# corpus items are shared by every env of a process (vector envs): (path, id, mtime, size) -> ClipData
_CLIP_CACHE: dict[tuple, ClipData] = {}
_CLIP_CACHE_MAX = 4096
_CLIP_LOCK = threading.Lock()


@dataclass
class CorpusClip:
    corpus_dir: Path
    item: dict
    fps: float

    @property
    def id(self) -> str:
        return self.item["id"]

    def load(self) -> ClipData:
        path = self.corpus_dir / self.item.get("data", f"data/{self.id}.npz")
        try:
            st = path.stat()
        except OSError:
            raise FileNotFoundError(f"corpus item {self.id!r}: data file {path} is missing") from None
        key = (str(path.resolve()), self.id, st.st_mtime_ns, st.st_size)
        with _CLIP_LOCK:
            hit = _CLIP_CACHE.get(key)
        if hit is not None:
            return hit
        a = load_item(self.corpus_dir, self.id)
        missing = {"logmel", "rms_db", "lip_landmarks_mm", "aperture_mm", "width_mm", "protrusion_mm", "closure",
                   "viseme", "phone_start", "phone_end", "phone_label", "phone_word"} - set(a)
        if missing:
            raise ValueError(f"corpus item {self.id!r} ({path}) lacks the key(s) {', '.join(sorted(missing))}")
        data = _clip_from_arrays(
            self.id, self.item.get("kind", "speech"), self.item.get("lang", ""), self.item.get("text", ""), self.fps,
            a["logmel"], a["rms_db"], a, Timeline.from_arrays(a), a.get("rounded"),
            voice=str(self.item.get("voice", "")),
            audio_path=str(self.corpus_dir / self.item["audio"]) if self.item.get("audio") else "",
        )
        with _CLIP_LOCK:
            if len(_CLIP_CACHE) >= _CLIP_CACHE_MAX:
                _CLIP_CACHE.pop(next(iter(_CLIP_CACHE)))
            _CLIP_CACHE[key] = data
        return data


@dataclass
class UserClip:
    id: str
    audio: Any  # path or 1-D array
    sr: int | None
    timeline: Any  # Timeline, path to a timeline json, or None
    transcript: str | None
    lang: str
    text: str
    fps: float

    def load(self) -> ClipData:
        from facetwin.audio.io import load_audio, resample

        if isinstance(self.audio, (str, os.PathLike)):
            audio16 = load_audio(self.audio, sr=CORPUS_SR)
        else:
            x = np.asarray(self.audio, dtype=np.float32)
            if x.ndim != 1 or x.size == 0:
                raise ValueError(f"clip {self.id!r}: audio arrays must be 1-D (mono) and non-empty, got shape {x.shape}")
            if not np.isfinite(x).all():
                raise ValueError(f"clip {self.id!r}: the audio contains NaN or inf")
            audio16 = resample(x, self.sr, CORPUS_SR).astype(np.float32) if self.sr != CORPUS_SR else x
        if self.timeline is not None:
            tl = self.timeline if isinstance(self.timeline, Timeline) else Timeline.load(self.timeline)
        else:
            from facetwin.audio.align import align

            tl = align(audio16, CORPUS_SR, self.transcript)
        is_file = isinstance(self.audio, (str, os.PathLike))
        return clip_from_audio(self.id, audio16, tl, fps=self.fps, lang=self.lang, text=self.text,
                               audio_path=str(self.audio) if is_file else "",
                               audio16=None if is_file else np.asarray(audio16, dtype=np.float32))


def clip_from_audio(cid: str, samples: np.ndarray, timeline: Timeline, *, fps: float = CORPUS_FPS, kind: str = "user",
                    lang: str = "", text: str = "", **extra) -> ClipData:
    """A :class:`ClipData` from 16 kHz mono ``samples`` and their phone timeline (lip targets from
    :func:`facetwin.audio.lip_track.lip_track`); ``extra``: the optional ClipData fields (voice, phone_set, ...)."""
    feats = extract_features(np.asarray(samples), CORPUS_SR, fps=fps)
    T = len(feats)
    track = lip_track(timeline, fps=fps, duration=T / fps)
    arrays = {"lip_landmarks_mm": track.landmarks_mm, "aperture_mm": track.aperture_mm,
              "width_mm": track.width_mm, "protrusion_mm": track.protrusion_mm, "closure": track.closure,
              "viseme": track.viseme}
    return _clip_from_arrays(cid, kind, lang, text, fps, feats.logmel, feats.rms_db, arrays, timeline, track.rounded,
                             **extra)


def load_labelled_clip(clip, fps: float = CORPUS_FPS) -> ClipData:
    """A recording with phone times (:class:`facetwin.audio.labelled.LabelledClip`) as a :class:`ClipData` (kind
    ``"recording"``): targets from its IPA timeline, each phone scored in the lip class of its original label."""
    from facetwin.audio.io import load_audio
    from facetwin.audio.labelled import read_segs

    audio16 = load_audio(clip.audio_path, sr=CORPUS_SR)
    tl, classes = read_segs(clip.segs_path, clip.phone_set)
    return clip_from_audio(clip.name, audio16, tl, fps=fps, kind="recording", lang=clip.lang, text=clip.text,
                           voice=clip.speaker, phone_set=clip.phone_set, phone_classes=classes,
                           audio_path=str(clip.audio_path))


_NEEDS_TIMELINE = (
    "needs phoneme timing: give a timeline (a facetwin.audio.timeline.Timeline or the path of a .phones.json as "
    "written by `facetwin say` / `facetwin align`) or an English transcript (forced alignment), e.g. "
    "{'audio': path, 'transcript': 'what was said'} or (audio, sr, transcript)"
)


def user_clip(spec: Any, index: int, fps: float) -> UserClip:
    """Parse one entry of ``clips=`` (see the LipSyncEnv docstring) without loading anything heavy."""
    audio = sr = timeline = transcript = None
    cid = lang = text = None
    if isinstance(spec, (str, os.PathLike)):
        audio = Path(spec)
        sib = audio.with_name(audio.stem + ".phones.json")
        timeline = sib if sib.exists() else None
    elif hasattr(spec, "audio") and hasattr(spec, "sr") and hasattr(spec, "timeline"):  # an Utterance
        audio, sr, timeline = spec.audio, spec.sr, spec.timeline
        lang, text = getattr(spec, "lang", ""), getattr(spec, "text", "")
    elif isinstance(spec, tuple) and len(spec) in (2, 3):
        audio, sr = spec[0], spec[1]
        if len(spec) == 3:
            if isinstance(spec[2], str) and not spec[2].endswith(".json"):
                transcript = spec[2]
            else:
                timeline = spec[2]
    elif isinstance(spec, dict):
        unknown = set(spec) - {"audio", "sr", "timeline", "transcript", "id", "lang", "text"}
        if unknown:
            raise ValueError(f"clips[{index}]: unknown key(s) {', '.join(sorted(unknown))}; "
                             "known: audio, sr, timeline, transcript, id, lang, text")
        if "audio" not in spec:
            raise ValueError(f"clips[{index}]: a clip dict needs 'audio' (a path or a 1-D array with 'sr')")
        audio, sr, timeline, transcript = spec["audio"], spec.get("sr"), spec.get("timeline"), spec.get("transcript")
        cid, lang, text = spec.get("id"), spec.get("lang"), spec.get("text")
    else:
        raise TypeError(
            f"clips[{index}] must be an audio path, an Utterance, (audio, sr), (audio, sr, transcript or timeline) "
            f"or a dict, got {type(spec).__name__}"
        )
    is_path = isinstance(audio, (str, os.PathLike))
    if is_path:
        if not Path(audio).exists():
            raise FileNotFoundError(f"clips[{index}]: audio file {audio} not found")
        sr = None
    else:
        if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
            raise ValueError(f"clips[{index}]: an audio array needs its sample rate sr (a positive int), got {sr!r}")
        sr = int(sr)
    if timeline is not None and not isinstance(timeline, Timeline) and (
        not isinstance(timeline, (str, os.PathLike)) or not Path(timeline).exists()
    ):
        raise ValueError(
            f"clips[{index}]: timeline must be a Timeline or an existing .phones.json path, got {timeline!r}"
        )
    if timeline is None:
        if not (isinstance(transcript, str) and transcript.strip()):
            name = Path(audio).name if is_path else f"clips[{index}]"
            raise ValueError(f"clip {name} {_NEEDS_TIMELINE}")
        if lang not in (None, "", "en"):
            raise ValueError(f"clips[{index}]: forced alignment is English-only; for lang {lang!r} give a timeline")
        lang = "en"
    if cid is None:
        cid = Path(audio).stem if is_path else f"clip{index}"
    if text is None:
        text = transcript or ""
    return UserClip(str(cid), audio, sr, timeline, transcript, lang or "", text, fps)


def corpus_clips(corpus_dir: Path, split: str, fps: float) -> list[CorpusClip]:
    mpath = corpus_dir / "manifest.json"
    m = read_manifest(corpus_dir)
    if float(m.get("fps", CORPUS_FPS)) != fps:
        raise ValueError(f"{mpath}: corpus frames are at {m.get('fps')} fps, the control rate is {fps:g} Hz")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    items = [it for it in m.get("items", []) if split == "all" or it.get("split") == split]
    if not items:
        counts = {s: len(v) for s, v in m.get("splits", {}).items()}
        raise ValueError(f"{corpus_dir}: split {split!r} has no items (items per split: {counts})")
    return [CorpusClip(corpus_dir, it, fps) for it in items]


__all__ = ["AUDIO_OBS_BOUND", "BUILTIN_CORPUS_ARGS", "BUILTIN_CORPUS_NAME", "LOGMEL_OFFSET", "LOGMEL_SCALE",
           "N_AUDIO_FEATURES", "N_LIPS", "RMS_OFFSET_DB", "RMS_SCALE_DB", "SPLITS", "ClipData", "CorpusClip", "UserClip",
           "audio_obs_features", "builtin_corpus_dir", "clip_from_audio", "corpus_clips", "load_labelled_clip",
           "user_clip"]
