"""The training corpus builder: many utterances and songs across languages, with features and lip targets.

``build_corpus(out_dir, n_utterances=..., seed=...)`` (CLI: ``facetwin corpus build``) writes::

    out_dir/
      manifest.json          # the index (schema below), rewritten atomically after every item
      audio/<id>.wav         # 16 kHz mono 16-bit PCM
      data/<id>.npz          # features, phoneme timeline and lip targets (keys: CORPUS_NPZ_KEYS)

Every item is synthesized offline (espeak-ng speech with a per-item speaking rate and pitch, or a sung song), so
the phoneme timeline is exact. The corpus is deterministic for a given seed and arguments; an interrupted build
resumes where it stopped (finished items are kept and skipped).

Items that other tools added to a corpus folder (``facetwin ingest-video``: kind ``"video"``, split ``"train"``)
are kept when the corpus is rebuilt or resumed.

Splits (``manifest["splits"]``): ``heldout_language`` holds every item of the held-out languages (default: Hebrew);
``heldout_sentence`` holds the items of a seeded random fraction of each other language's sentences (all voices
of those sentences, so no sentence is in two splits); ``train`` the rest. Songs follow their lyric language and
are never in ``heldout_sentence``.

Manifest schema (version 1)::

    {"version": 1, "fps": 30.0, "sr": 16000, "seed": 0, "languages": [...], "heldout_languages": [...],
     "splits": {"train": [ids], "heldout_sentence": [ids], "heldout_language": [ids]},
     "items": [{"id", "kind": "speech"|"song"|"video", "lang", "text", "sentence": "<lang>:<index>" or "song:<name>",
                "split", "duration_s", "n_frames", "rate_wpm", "pitch", "audio": "audio/<id>.wav",
                "data": "data/<id>.npz"}],
     "total_duration_s": float}
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

try:  # POSIX file locks for the first build of a cached corpus (no lock elsewhere)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

from .features import extract_features
from .io import resample, save_wav
from .sing import list_songs, load_song, sing
from .timeline import Timeline
from .tts import LANGUAGES, synthesize
from .visemes import lip_track

CORPUS_VERSION = 1
CORPUS_SR = 16000
CORPUS_FPS = 30.0
DEFAULT_LANGUAGES = ("en", "fr", "es", "de", "it", "ru", "ja", "ko", "zh", "ar", "he")
DEFAULT_HELDOUT_LANGUAGES = ("he",)

# The npz layout of one corpus item: the one definition, read by environments and trainers.
CORPUS_NPZ_KEYS = {
    "fps": "frames per second of every per-frame array (30)",
    "sr": "sample rate of audio/<id>.wav",
    "t": "(T,) frame times in seconds, t[k] = k / fps",
    "logmel": "(T, n_mels) float32 log-mel spectrogram (facetwin.audio.features)",
    "rms_db": "(T,) RMS loudness in dB",
    "f0_hz": "(T,) pitch in Hz (0 when unvoiced)",
    "voiced": "(T,) bool",
    "aperture_mm": "(T,) target midline lip aperture",
    "width_mm": "(T,) target mouth width",
    "protrusion_mm": "(T,) target lip protrusion relative to neutral",
    "lip_landmarks_mm": "(T, 40, 3) target lip landmarks, displacement from the neutral face, head frame",
    "lip_landmark_ids": "(40,) MediaPipe ids of lip_landmarks_mm",
    "closure": "(T,) bool, frames forced closed (bilabials)",
    "rounded": "(T,) bool, frames given the rounding floor (W/OO-class phones)",
    "viseme": "(T,) str, dominant viseme per frame (from the lip track)",
    "phoneme": "(T,) str, phoneme sounding at each frame ('' in silence)",
    "phone_start": "(P,) float64 s, phoneme timeline (facetwin.audio.timeline)",
    "phone_end": "(P,) float64 s",
    "phone_label": "(P,) str IPA",
    "phone_word": "(P,) str",
}


@dataclass(frozen=True)
class _Job:
    id: str
    kind: str
    lang: str
    text: str
    sentence: str
    rate_wpm: int | None
    pitch: int | None
    song: str | None = None


def load_sentences(lang: str) -> list[str]:
    """The built-in sentences of ``lang`` (assets/data/sentences/<lang>.txt)."""
    path = resources.files("facetwin.assets").joinpath(f"data/sentences/{lang}.txt")
    if not path.is_file():
        raise ValueError(f"no built-in sentences for language {lang!r}")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def _plan(n_utterances: int, langs: tuple[str, ...], heldout_langs: tuple[str, ...], heldout_fraction: float,
          seed: int, include_songs: bool) -> tuple[list[_Job], dict[str, str]]:
    rng = np.random.default_rng(seed)
    sentences = {lang: load_sentences(lang) for lang in langs}
    jobs: list[_Job] = []
    # round-robin over languages, sentences in a seeded order, voices varied per item
    orders = {lang: list(rng.permutation(len(sentences[lang]))) for lang in langs}
    counts = {lang: 0 for lang in langs}
    for k in range(n_utterances):
        lang = langs[k % len(langs)]
        i = int(orders[lang][counts[lang] % len(orders[lang])])
        variant = counts[lang] // len(orders[lang])
        counts[lang] += 1
        rate = int(rng.integers(135, 196))
        pitch = int(rng.integers(30, 71))
        jobs.append(_Job(f"{lang}_{i:03d}_v{variant}", "speech", lang, sentences[lang][i], f"{lang}:{i}", rate, pitch))
    if include_songs:
        for name in list_songs():
            song = load_song(name)
            for lang in song.lyrics:
                if lang in langs:
                    jobs.append(_Job(f"song_{name}_{lang}", "song", lang, song.title, f"song:{name}", None, None, name))
    # held-out sentences: a seeded fraction of the sentences each language actually uses (at least one when it
    # uses two or more), so that small corpora have the split too
    heldout_sentence: set[str] = set()
    for lang in langs:
        if lang in heldout_langs:
            continue
        used = sorted({j.sentence for j in jobs if j.kind == "speech" and j.lang == lang})
        k = int(round(heldout_fraction * len(used)))
        if heldout_fraction > 0 and len(used) >= 2:
            k = max(k, 1)
        if k:
            heldout_sentence.update(str(x) for x in rng.choice(used, size=k, replace=False))
    splits = {}
    for job in jobs:
        if job.lang in heldout_langs:
            splits[job.id] = "heldout_language"
        elif job.sentence in heldout_sentence:
            splits[job.id] = "heldout_sentence"
        else:
            splits[job.id] = "train"
    return jobs, splits


def _atomic_write_bytes(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".part{path.suffix}")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def feature_arrays(feats) -> dict[str, np.ndarray]:
    """The audio part of a corpus item (``fps``, ``sr``, ``t``, ``logmel``, ``rms_db``, ``f0_hz``, ``voiced``) from
    :func:`facetwin.audio.features.extract_features` at ``CORPUS_SR`` / ``CORPUS_FPS``: shared by every tool that
    writes corpus items."""
    return {
        "fps": np.float64(CORPUS_FPS),
        "sr": np.int64(CORPUS_SR),
        "t": feats.t.astype(np.float64),
        "logmel": feats.logmel.astype(np.float32),
        "rms_db": feats.rms_db.astype(np.float32),
        "f0_hz": feats.f0_hz.astype(np.float32),
        "voiced": feats.voiced.astype(bool),
    }


def _item_arrays(audio16: np.ndarray, timeline: Timeline) -> dict[str, np.ndarray]:
    feats = extract_features(audio16, CORPUS_SR, fps=CORPUS_FPS)
    n = len(feats.t)
    track = lip_track(timeline, fps=CORPUS_FPS, duration=n / CORPUS_FPS)
    if len(track.t) != n:
        raise RuntimeError(f"lip track has {len(track.t)} frames, features {n}")
    return {
        **feature_arrays(feats),
        "aperture_mm": np.asarray(track.aperture_mm, dtype=np.float32),
        "width_mm": np.asarray(track.width_mm, dtype=np.float32),
        "protrusion_mm": np.asarray(track.protrusion_mm, dtype=np.float32),
        "lip_landmarks_mm": np.asarray(track.landmarks_mm, dtype=np.float32),
        "lip_landmark_ids": np.asarray(track.landmark_ids, dtype=np.int64),
        "closure": np.asarray(track.closure, dtype=bool),
        "rounded": np.asarray(track.rounded, dtype=bool),
        "viseme": np.asarray(track.viseme, dtype=str),
        "phoneme": np.asarray(timeline.labels_at(feats.t), dtype=str),
        **timeline.to_arrays(),
    }


def build_corpus(
    out_dir: str | Path,
    n_utterances: int = 110,
    *,
    langs: tuple[str, ...] | list[str] | None = None,
    heldout_langs: tuple[str, ...] | list[str] = DEFAULT_HELDOUT_LANGUAGES,
    heldout_fraction: float = 0.15,
    include_songs: bool = True,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Build (or resume) a corpus in ``out_dir``; returns the manifest. See the module docstring."""
    langs = tuple(langs or DEFAULT_LANGUAGES)
    unknown = [lang for lang in langs if lang not in LANGUAGES]
    if unknown:
        raise ValueError(f"unsupported language(s) {unknown}; supported: {', '.join(sorted(LANGUAGES))}")
    bad_heldout = [lang for lang in heldout_langs if lang not in langs]
    if bad_heldout:
        raise ValueError(f"held-out language(s) {bad_heldout} are not among the corpus languages {list(langs)}")
    if n_utterances < 0:
        raise ValueError("n_utterances must be >= 0")
    if not 0.0 <= heldout_fraction < 1.0:
        raise ValueError("heldout_fraction must be in [0, 1)")
    out = Path(out_dir)
    jobs, splits = _plan(int(n_utterances), langs, tuple(heldout_langs), heldout_fraction, seed, include_songs)
    manifest_path = out / "manifest.json"
    done: dict[str, dict] = {}
    added: list[dict] = []  # items added by other tools (kind "video": facetwin ingest-video): always kept
    if manifest_path.exists():
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
        added = [it for it in old.get("items", []) if it.get("kind") not in ("speech", "song")
                 and (out / it["data"]).exists()]
        if old.get("version") == CORPUS_VERSION and old.get("seed") == seed:
            done = {it["id"]: it for it in old.get("items", []) if (out / it["data"]).exists()}

    from tqdm import tqdm

    items: list[dict] = list(added)

    def write_manifest() -> dict:
        ordered = sorted(items, key=lambda it: it["id"])
        manifest = {
            "version": CORPUS_VERSION,
            "fps": CORPUS_FPS,
            "sr": CORPUS_SR,
            "seed": seed,
            "languages": list(langs),
            "heldout_languages": list(heldout_langs),
            "npz_keys": CORPUS_NPZ_KEYS,
            "splits": {s: [it["id"] for it in ordered if it["split"] == s]
                       for s in ("train", "heldout_sentence", "heldout_language")},
            "items": ordered,
            "total_duration_s": round(sum(it["duration_s"] for it in ordered), 3),
        }
        text = json.dumps(manifest, ensure_ascii=False, indent=1)
        _atomic_write_bytes(manifest_path, lambda p: Path(p).write_text(text, encoding="utf-8"))
        return manifest

    bar = tqdm(jobs, desc="corpus", unit="item", disable=not progress)
    for job in bar:
        bar.set_postfix_str(job.id)
        if job.id in done and done[job.id].get("kind") in ("speech", "song"):
            items.append(done[job.id])
            continue
        if job.kind == "song":
            utt = sing(job.song, lang=job.lang)
        else:
            utt = synthesize(job.text, job.lang, rate_wpm=job.rate_wpm, pitch=job.pitch)
        audio16 = resample(utt.audio, utt.sr, CORPUS_SR).astype(np.float32)
        arrays = _item_arrays(audio16, utt.timeline)
        wav_rel, npz_rel = f"audio/{job.id}.wav", f"data/{job.id}.npz"
        _atomic_write_bytes(out / wav_rel, lambda p: save_wav(p, audio16, CORPUS_SR))
        _atomic_write_bytes(out / npz_rel, lambda p: np.savez_compressed(p, **arrays))
        items.append({
            "id": job.id, "kind": job.kind, "lang": job.lang, "text": job.text, "sentence": job.sentence,
            "split": splits[job.id], "duration_s": round(len(audio16) / CORPUS_SR, 4),
            "n_frames": int(len(arrays["t"])), "rate_wpm": job.rate_wpm, "pitch": job.pitch,
            "audio": wav_rel, "data": npz_rel,
        })
        write_manifest()
    return write_manifest()


def cached_corpus(root: str | Path, name: str, args: dict, *, progress: bool = False) -> Path:
    """A corpus built with ``build_corpus(**args)`` into ``<root>/<name>`` once: later calls only read its marker
    (``complete.json``, which records ``args``; other args rebuild it). A file lock makes concurrent first uses
    (vector envs in subprocesses, parallel trainers) build it once."""
    root = Path(root).expanduser()
    out = root / name
    marker = out / "complete.json"
    plain = {k: (list(v) if isinstance(v, tuple) else v) for k, v in args.items()}

    def done() -> bool:
        try:
            m = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return m.get("args") == plain and (out / "manifest.json").exists()

    if done():
        return out
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name}.lock", "w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not done():
                build_corpus(out, progress=progress, **args)
                _atomic_write_bytes(marker, lambda t: Path(t).write_text(json.dumps({"args": plain}), encoding="utf-8"))
        finally:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)
    return out


def load_item(corpus_dir: str | Path, item_id: str) -> dict[str, np.ndarray]:
    """The npz arrays of one corpus item (keys: CORPUS_NPZ_KEYS)."""
    path = Path(corpus_dir) / "data" / f"{item_id}.npz"
    if not path.exists():
        raise FileNotFoundError(f"corpus item {item_id!r} not found in {corpus_dir} (expected {path})")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}
