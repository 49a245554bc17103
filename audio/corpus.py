"""The training corpus builder: many utterances and songs across languages, with features and lip targets.

``build_corpus(out_dir, n_utterances=..., seed=...)`` (CLI: ``facetwin corpus build``) writes::

    out_dir/
      manifest.json          # the index (schema below), rewritten atomically after every item
      audio/<id>.wav         # 16 kHz mono 16-bit PCM
      data/<id>.npz          # features, phoneme timeline and lip targets (keys: CORPUS_NPZ_KEYS)

Every item is synthesized offline (espeak-ng speech with a per-item speaking rate and pitch, or a sung song), so
the phoneme timeline is exact; which items a corpus holds, and their splits, is planned in
:mod:`facetwin.audio.corpus_plan`. The corpus is deterministic for a given seed and arguments; an interrupted build
resumes where it stopped (finished items are kept and skipped). Items are built in this process, in ``workers``
processes, or as Ray tasks (``executor="ray"``, a local runtime or the cluster at ``address``): the same files.

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
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:  # POSIX file locks for the first build of a cached corpus (no lock elsewhere)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

from facetwin.files import atomic_write
from facetwin.sim.rates import AUDIO_SR, CONTROL_HZ

from .corpus_plan import Job, plan_default, plan_diverse
from .features import extract_features
from .io import resample, save_wav
from .lip_track import lip_track
from .sing import sing
from .timeline import Timeline
from .tts import LANGUAGES, synthesize
from .voices import Channel, apply_channel, world_perturb

CORPUS_VERSION = 3  # 2: lip targets are the face's own shapes (facetwin.sim.lip_shapes); 3: of the canonical-mesh face
CORPUS_SR = AUDIO_SR
CORPUS_FPS = CONTROL_HZ
DEFAULT_LANGUAGES = ("en", "fr", "es", "de", "it", "ru", "ja", "ko", "zh", "ar", "he")
DEFAULT_HELDOUT_LANGUAGES = ("he",)
SPLIT_NAMES = ("train", "heldout_sentence", "heldout_language", "heldout_voice")
VOICE_MODES = ("default", "diverse")
EXECUTORS = ("process", "ray")  # where build_corpus(workers > 1) builds items

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


def _render(job: Job) -> tuple[np.ndarray, Timeline]:
    """The 16 kHz audio and phone timeline of one job."""
    if job.kind == "song":
        utt = sing(job.song, lang=job.lang, transpose=job.transpose)
    elif job.voice is not None and job.voice.kokoro:
        from .kokoro import synthesize_kokoro

        speed = (job.rate_wpm or 175) / 175.0
        utt = synthesize_kokoro(job.text, job.lang, job.voice.kokoro_blend(), speed=speed)
    else:
        variant = job.voice.variant if job.voice is not None else None
        utt = synthesize(job.text, job.lang, rate_wpm=job.rate_wpm, pitch=job.pitch, variant=variant or None)
    audio16 = resample(utt.audio, utt.sr, CORPUS_SR).astype(np.float32)
    timeline = utt.timeline
    if job.voice is not None and job.voice.perturbed:
        audio16, timeline = world_perturb(audio16, CORPUS_SR, timeline, job.voice.vtl, job.voice.f0, job.voice.tempo)
    if job.channel is not None:
        audio16 = apply_channel(audio16, CORPUS_SR, job.channel, job.seed)
    return audio16, timeline


def _build_item(out: Path, job: Job, split: str) -> dict:
    """Render, featurize and write one item; its manifest entry."""
    return _write_item(out, *_make_item(job, split))


def _write_item(out: Path, audio16: np.ndarray, arrays: dict[str, np.ndarray], item: dict) -> dict:
    """Write one item's wav and npz files (atomically); its manifest entry ``item``."""
    atomic_write(out / item["audio"], lambda p: save_wav(p, audio16, CORPUS_SR))
    atomic_write(out / item["data"], lambda p: np.savez_compressed(p, **arrays))
    return item


def _make_item(job: Job, split: str) -> tuple[np.ndarray, dict[str, np.ndarray], dict]:
    """Render and featurize one item: its 16 kHz audio, npz arrays and manifest entry (nothing written: a Ray task
    returns them to the process that writes the corpus)."""
    audio16, timeline = _render(job)
    arrays = _item_arrays(audio16, timeline)
    wav_rel, npz_rel = f"audio/{job.id}.wav", f"data/{job.id}.npz"
    item = {
        "id": job.id, "kind": job.kind, "lang": job.lang, "text": job.text, "sentence": job.sentence,
        "split": split, "duration_s": round(len(audio16) / CORPUS_SR, 4),
        "n_frames": int(len(arrays["t"])), "rate_wpm": job.rate_wpm, "pitch": job.pitch,
        "audio": wav_rel, "data": npz_rel,
    }
    if job.voice is not None:
        item["voice"] = job.voice.name()
        item["channel"] = (job.channel or Channel()).name()
        if job.transpose:
            item["transpose"] = job.transpose
    return audio16, arrays, item


def _build_item_star(args) -> dict:
    return _build_item(*args)


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


@dataclass(frozen=True)
class _Request:
    """The arguments of one :func:`build_corpus` call, as given (the plan key and manifest keep their values)."""

    n_utterances: int
    langs: tuple[str, ...]
    heldout_langs: tuple[str, ...] | list[str]
    heldout_fraction: float
    include_songs: bool
    seed: int
    voices: str
    salad_fraction: float
    n_heldout_voice: int
    song_variants: int
    kokoro_fraction: float
    workers: int
    executor: str = "process"
    address: str | None = None

    def check(self) -> None:
        """``ValueError`` naming the first bad argument."""
        if any(lang not in LANGUAGES for lang in self.langs):
            raise ValueError(f"unsupported language(s) {[lg for lg in self.langs if lg not in LANGUAGES]}; "
                             f"supported: {', '.join(sorted(LANGUAGES))}")
        if any(lang not in self.langs for lang in self.heldout_langs):
            raise ValueError(f"held-out language(s) {[lg for lg in self.heldout_langs if lg not in self.langs]} are "
                             f"not among the corpus languages {list(self.langs)}")
        if self.n_utterances < 0:
            raise ValueError("n_utterances must be >= 0")
        if not 0.0 <= self.heldout_fraction < 1.0:
            raise ValueError("heldout_fraction must be in [0, 1)")
        if self.voices not in VOICE_MODES:
            raise ValueError(f"unknown voices mode {self.voices!r}; choose one of {', '.join(VOICE_MODES)}")
        if not 0.0 <= self.salad_fraction <= 1.0:
            raise ValueError(f"salad_fraction must be in [0, 1], got {self.salad_fraction!r}")
        if int(self.workers) < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers!r}")
        if self.executor not in EXECUTORS:
            raise ValueError(f"unknown executor {self.executor!r}; choose one of {', '.join(EXECUTORS)}")
        if self.address is not None and self.executor != "ray":
            raise ValueError(f"address={self.address!r} needs executor='ray' (the address of a Ray cluster)")
        if not 0.0 <= self.kokoro_fraction <= 1.0:
            raise ValueError(f"kokoro_fraction must be in [0, 1], got {self.kokoro_fraction!r}")
        if int(self.n_heldout_voice) < 0 or int(self.song_variants) < 1:
            raise ValueError(f"n_heldout_voice must be >= 0 and song_variants >= 1, got {self.n_heldout_voice!r}, "
                             f"{self.song_variants!r}")
        if self.kokoro_fraction > 0:
            from . import kokoro

            if not kokoro.available():
                raise ValueError("kokoro_fraction needs the Kokoro voice: pip install 'facetwin[voices]'")
        if self.voices == "default" and (self.salad_fraction or self.n_heldout_voice or self.song_variants != 1
                                         or self.kokoro_fraction):
            raise ValueError("salad_fraction, n_heldout_voice, song_variants and kokoro_fraction need voices='diverse'")

    def plan(self) -> tuple[list[Job], dict[str, str]]:
        """The jobs and the split of each job id (:mod:`facetwin.audio.corpus_plan`)."""
        if self.voices == "default":
            return plan_default(int(self.n_utterances), self.langs, tuple(self.heldout_langs), self.heldout_fraction,
                                self.seed, self.include_songs)
        return plan_diverse(int(self.n_utterances), self.langs, tuple(self.heldout_langs), self.heldout_fraction,
                            self.seed, self.include_songs, float(self.salad_fraction), int(self.n_heldout_voice),
                            int(self.song_variants), float(self.kokoro_fraction))

    @property
    def plan_key(self) -> dict:
        """What, besides the seed and version, must match for a resumed build to keep an earlier build's items."""
        key = {"voices": self.voices, "salad_fraction": self.salad_fraction, "n_heldout_voice": self.n_heldout_voice,
               "song_variants": self.song_variants}
        if self.kokoro_fraction:
            key["kokoro_fraction"] = self.kokoro_fraction
        return key


def _earlier_items(out: Path, req: _Request, splits: dict[str, str]) -> tuple[dict[str, dict], list[dict]]:
    """What an earlier build left in ``out``: its finished items of the same plan by id (split as planned now: a
    changed split rebuilds nothing), and the items other tools added (kind "video": ``facetwin ingest-video``), which
    are always kept."""
    manifest_path = out / "manifest.json"
    if not manifest_path.exists():
        return {}, []
    try:
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{manifest_path}: damaged corpus manifest ({type(e).__name__}); delete it to rebuild "
                         "the corpus from scratch (items another tool added are then dropped from the index)"
                         ) from None
    added = [it for it in old.get("items", []) if it.get("kind") not in ("speech", "song")
             and (out / it["data"]).exists()]
    this_plan = req.plan_key if req.voices != "default" else {"voices": "default"}
    done: dict[str, dict] = {}
    if (old.get("version") == CORPUS_VERSION and old.get("seed") == req.seed
            and old.get("plan", {"voices": "default"}) == this_plan):
        done = {it["id"]: {**it, "split": splits[it["id"]]} for it in old.get("items", [])
                if (out / it["data"]).exists() and it["id"] in splits}
    return done, added


def _write_manifest(out: Path, req: _Request, items: list[dict]) -> dict:
    """Write (atomically) and return the manifest indexing ``items`` (schema in the module docstring)."""
    ordered = sorted(items, key=lambda it: it["id"])
    manifest = {
        "version": CORPUS_VERSION,
        "fps": CORPUS_FPS,
        "sr": CORPUS_SR,
        "seed": req.seed,
        "languages": list(req.langs),
        "heldout_languages": list(req.heldout_langs),
        "npz_keys": CORPUS_NPZ_KEYS,
        "splits": {s: [it["id"] for it in ordered if it["split"] == s]
                   for s in SPLIT_NAMES if s != "heldout_voice" or req.voices != "default"},
        "items": ordered,
        "total_duration_s": round(sum(it["duration_s"] for it in ordered), 3),
    }
    if req.voices != "default":
        manifest["plan"] = req.plan_key
    text = json.dumps(manifest, ensure_ascii=False, indent=1)
    atomic_write(out / "manifest.json", lambda p: Path(p).write_text(text, encoding="utf-8"))
    return manifest


def _build_missing(out: Path, req: _Request, todo: list[Job], splits: dict[str, str], items: list[dict], bar) -> None:
    """Build the ``todo`` items (in ``req.workers`` processes or Ray tasks), adding each to ``items`` and rewriting
    the manifest after each one (with several processes or Ray: after every 20 and the last)."""
    if req.executor != "ray" and (int(req.workers) == 1 or len(todo) < 2):
        for job in todo:
            items.append(_build_item(out, job, splits[job.id]))
            _write_manifest(out, req, items)
            bar.update(1)
        return
    for n_done, item in enumerate(_parallel_items(out, req, todo, splits), start=1):
        items.append(item)
        if n_done % 20 == 0 or n_done == len(todo):
            _write_manifest(out, req, items)
        bar.update(1)


def _parallel_items(out: Path, req: _Request, todo: list[Job], splits: dict[str, str]):
    """The manifest entries of the ``todo`` items as they are built and written: in ``req.workers`` processes, or
    as Ray tasks (``req.workers`` at a time) whose audio and arrays this process writes."""
    if req.executor == "ray":
        from facetwin.ray_tasks import ray_map

        for _i, made in ray_map(_make_item, [(job, splits[job.id]) for job in todo], workers=int(req.workers),
                                address=req.address):
            yield _write_item(out, *made)
        return
    import multiprocessing as mp

    with mp.get_context("fork").Pool(int(req.workers)) as pool:
        yield from pool.imap_unordered(_build_item_star, [(out, job, splits[job.id]) for job in todo], chunksize=1)


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
    voices: str = "default",
    salad_fraction: float = 0.0,
    n_heldout_voice: int = 0,
    song_variants: int = 1,
    kokoro_fraction: float = 0.0,
    workers: int = 1,
    executor: str = "process",
    address: str | None = None,
) -> dict:
    """Build (or resume) a corpus in ``out_dir``; returns the manifest. See the module docstring.

    ``voices="diverse"`` draws a voice and a channel per item (:mod:`facetwin.audio.voices`), makes
    ``salad_fraction`` of the speech word salads, adds ``n_heldout_voice`` items by held-out voices and sings each
    song ``song_variants`` times; ``"default"`` (the built-in corpora) speaks everything with each language's
    default voice. ``workers`` processes build items in parallel (same files for any count); ``executor="ray"``
    makes them Ray tasks instead (``workers`` at a time, :mod:`facetwin.ray_tasks`: a local runtime, or the
    cluster at ``address``; the same files)."""
    req = _Request(n_utterances, tuple(langs or DEFAULT_LANGUAGES), heldout_langs, heldout_fraction, include_songs,
                   seed, voices, salad_fraction, n_heldout_voice, song_variants, kokoro_fraction, workers, executor,
                   address)
    req.check()
    out = Path(out_dir)
    jobs, splits = req.plan()
    done, added = _earlier_items(out, req, splits)

    from tqdm import tqdm

    items: list[dict] = list(added)
    todo = []
    for job in jobs:
        if job.id in done and done[job.id].get("kind") in ("speech", "song"):
            items.append(done[job.id])
        else:
            todo.append(job)
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="corpus", unit="item", disable=not progress)
    try:
        _build_missing(out, req, todo, splits, items, bar)
    finally:
        bar.close()
    return _write_manifest(out, req, items)


def cached_corpus(root: str | Path, name: str, args: dict, *, progress: bool = False, workers: int = 1) -> Path:
    """A corpus built with ``build_corpus(**args)`` into ``<root>/<name>`` once: later calls only read its marker
    (``complete.json``, which records ``args``; other args rebuild it). A file lock makes concurrent first uses
    (vector envs in subprocesses, parallel trainers) build it once. ``workers``: build processes (same files)."""
    root = Path(root).expanduser()
    out = root / name
    marker = out / "complete.json"
    plain = {k: (list(v) if isinstance(v, tuple) else v) for k, v in args.items()}

    def done() -> bool:  # complete with these args, and every file of it still there (a deleted one is remade)
        try:
            m = json.loads(marker.read_text(encoding="utf-8"))
            items = read_manifest(out)["items"]
        except (OSError, ValueError):
            return False
        return m.get("args") == plain and all((out / it[k]).exists() for it in items for k in ("data", "audio")
                                              if isinstance(it, dict) and isinstance(it.get(k), str))

    if done():
        return out
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name}.lock", "w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not done():
                build_corpus(out, progress=progress, workers=workers, **args)
                atomic_write(marker, lambda t: Path(t).write_text(json.dumps({"args": plain}), encoding="utf-8"))
        finally:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)
    return out


def _rebuild_hint(path: Path, corpus_dir: Path) -> str:
    if path.name == "manifest.json":
        return (f"delete {corpus_dir} and build it again (`facetwin corpus build --out {corpus_dir}`, or the command "
                "that made this cache)")
    return (f"delete {path} and build again (`facetwin corpus build --out {corpus_dir}` with the same options, or "
            "the command that made this cache, remakes only what is missing)")


def read_manifest(corpus_dir: str | Path) -> dict:
    """The ``manifest.json`` of a corpus folder (the one reader of it): ``FileNotFoundError`` without one,
    ``ValueError`` naming the file when it is damaged, not a corpus manifest, or of another :data:`CORPUS_VERSION`."""
    corpus_dir = Path(corpus_dir)
    path = corpus_dir / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{corpus_dir} is not a facetwin corpus (no manifest.json); build one with "
                                "`facetwin corpus build --out DIR`")
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:  # a truncated or overwritten file
        raise ValueError(f"{path}: damaged corpus manifest ({type(e).__name__}); {_rebuild_hint(path, corpus_dir)}"
                         ) from None
    if not isinstance(m, dict) or not isinstance(m.get("items"), list):
        raise ValueError(f"{path}: not a corpus manifest (no list of items); {_rebuild_hint(path, corpus_dir)}")
    if m.get("version") != CORPUS_VERSION:
        raise ValueError(f"{path}: corpus version {m.get('version')!r}, this facetwin reads {CORPUS_VERSION}; "
                         f"{_rebuild_hint(path, corpus_dir)}")
    return m


def load_item(corpus_dir: str | Path, item_id: str) -> dict[str, np.ndarray]:
    """The npz arrays of one corpus item (keys: CORPUS_NPZ_KEYS); a damaged file is a ``ValueError`` naming it."""
    path = Path(corpus_dir) / "data" / f"{item_id}.npz"
    if not path.exists():
        raise FileNotFoundError(f"corpus item {item_id!r} not found in {corpus_dir} (expected {path})")
    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: damaged corpus item ({type(e).__name__}); {_rebuild_hint(path, Path(corpus_dir))}"
                         ) from None
