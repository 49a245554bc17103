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
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

try:  # POSIX file locks for the first build of a cached corpus (no lock elsewhere)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

from facetwin.files import atomic_write
from facetwin.sim.rates import AUDIO_SR, CONTROL_HZ

from .features import extract_features
from .io import resample, save_wav
from .lip_track import lip_track
from .sing import sing
from .songs import list_songs, load_song
from .timeline import Timeline
from .tts import LANGUAGES, synthesize
from .voices import (
    HELDOUT_VARIANTS,
    Channel,
    Voice,
    apply_channel,
    draw_channel,
    draw_voice,
    train_variants,
    world_perturb,
)

CORPUS_VERSION = 2  # 2: lip targets are the face's own shapes (facetwin.sim.lip_shapes)
CORPUS_SR = AUDIO_SR
CORPUS_FPS = CONTROL_HZ
DEFAULT_LANGUAGES = ("en", "fr", "es", "de", "it", "ru", "ja", "ko", "zh", "ar", "he")
DEFAULT_HELDOUT_LANGUAGES = ("he",)
SPLIT_NAMES = ("train", "heldout_sentence", "heldout_language", "heldout_voice")
VOICE_MODES = ("default", "diverse")

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
    voice: Voice | None = None  # diverse corpora: who speaks (None: the language's default espeak-ng voice)
    channel: Channel | None = None  # diverse corpora: the recording channel
    seed: int = 0  # seed of the channel's noise
    transpose: float = 0.0  # songs: semitones


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


def _plan_diverse(n_utterances: int, langs: tuple[str, ...], heldout_langs: tuple[str, ...],
                  heldout_fraction: float, seed: int, include_songs: bool, salad_fraction: float,
                  n_heldout_voice: int, song_variants: int, kokoro_fraction: float = 0.0
                  ) -> tuple[list[_Job], dict[str, str]]:
    """Many voices (:mod:`facetwin.audio.voices`): each speech item a drawn voice and channel, ``salad_fraction``
    of them word salads (:mod:`facetwin.audio.texts`); ``n_heldout_voice`` extra items spoken by the held-out
    voice variants (split ``heldout_voice``, reading the held-out sentences); songs ``song_variants`` times each,
    transposed and perturbed; ``kokoro_fraction`` of the speech in the Kokoro languages is spoken by the neural
    voice (:mod:`facetwin.audio.kokoro`; every other held-out-voice item then by its held-out voice)."""
    from . import kokoro
    from .texts import word_salad
    from .voices import draw_kokoro_voice

    rng = np.random.default_rng(seed)
    sentences = {lang: load_sentences(lang) for lang in langs}
    train_langs = tuple(lg for lg in langs if lg not in heldout_langs)
    heldout_sentence: set[str] = set()
    for lang in train_langs:
        n = len(sentences[lang])
        k = int(round(heldout_fraction * n))
        if heldout_fraction > 0 and n >= 2:
            k = max(k, 1)
        heldout_sentence.update(f"{lang}:{int(i)}" for i in rng.choice(n, size=k, replace=False))
    variants = train_variants()
    jobs: list[_Job] = []
    splits: dict[str, str] = {}
    for k in range(n_utterances):
        lang = langs[k % len(langs)]
        voice, channel = draw_voice(rng, variants), draw_channel(rng)
        if kokoro_fraction > 0 and lang in kokoro.LANGUAGES and rng.random() < kokoro_fraction:
            voice = draw_kokoro_voice(rng, tuple(v for v in kokoro.VOICES if v != kokoro.HELDOUT_VOICE))
        item_seed = int(rng.integers(2**31))
        if lang not in heldout_langs and rng.random() < salad_fraction:
            text = word_salad(lang, rng, int(rng.integers(6, 16)))
            sentence = f"{lang}:salad{k}"
        else:
            i = int(rng.integers(len(sentences[lang])))
            text, sentence = sentences[lang][i], f"{lang}:{i}"
        jid = f"{lang}_{k:05d}"
        jobs.append(_Job(jid, "speech", lang, text, sentence, voice.rate_wpm, voice.pitch, voice=voice,
                         channel=channel, seed=item_seed))
        splits[jid] = ("heldout_language" if lang in heldout_langs
                       else "heldout_sentence" if sentence in heldout_sentence else "train")
    held = sorted(heldout_sentence)
    for k in range(n_heldout_voice if held else 0):
        key = held[k % len(held)]
        lang, i = key.split(":")
        voice = draw_voice(rng, HELDOUT_VARIANTS)
        voice = Voice(HELDOUT_VARIANTS[k % len(HELDOUT_VARIANTS)], voice.rate_wpm, voice.pitch, voice.vtl, voice.f0,
                      voice.tempo)
        if kokoro_fraction > 0 and k % 2 == 1 and lang in kokoro.LANGUAGES:
            voice = Voice("", voice.rate_wpm, None, voice.vtl, voice.f0, voice.tempo, kokoro=kokoro.HELDOUT_VOICE)
        jid = f"hv_{lang}_{k:04d}"
        jobs.append(_Job(jid, "speech", lang, sentences[lang][int(i)], key, voice.rate_wpm, voice.pitch, voice=voice,
                         channel=draw_channel(rng), seed=int(rng.integers(2**31))))
        splits[jid] = "heldout_voice"
    if include_songs:
        for name in list_songs():
            song = load_song(name)
            for lang in song.lyrics:
                if lang not in langs:
                    continue
                for v in range(song_variants):
                    voice = draw_voice(rng, (), perturb_p=1.0 if v else 0.0)
                    voice = Voice("", None, None, voice.vtl, 1.0, 1.0)  # songs: the melody sets pitch and tempo
                    jid = f"song_{name}_{lang}" + (f"_{v}" if v else "")
                    jobs.append(_Job(jid, "song", lang, song.title, f"song:{name}", None, None, name, voice=voice,
                                     channel=draw_channel(rng) if v else Channel(), seed=int(rng.integers(2**31)),
                                     transpose=float(rng.integers(-7, 8)) if v else 0.0))
                    splits[jid] = "heldout_language" if lang in heldout_langs else "train"
    return jobs, splits


def _render(job: _Job) -> tuple[np.ndarray, Timeline]:
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


def _build_item(out: Path, job: _Job, split: str) -> dict:
    """Render, featurize and write one item; its manifest entry."""
    audio16, timeline = _render(job)
    arrays = _item_arrays(audio16, timeline)
    wav_rel, npz_rel = f"audio/{job.id}.wav", f"data/{job.id}.npz"
    atomic_write(out / wav_rel, lambda p: save_wav(p, audio16, CORPUS_SR))
    atomic_write(out / npz_rel, lambda p: np.savez_compressed(p, **arrays))
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
    return item


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
) -> dict:
    """Build (or resume) a corpus in ``out_dir``; returns the manifest. See the module docstring.

    ``voices="diverse"`` draws a voice and a channel per item (:mod:`facetwin.audio.voices`), makes
    ``salad_fraction`` of the speech word salads, adds ``n_heldout_voice`` items by held-out voices and sings each
    song ``song_variants`` times; ``"default"`` (the built-in corpora) speaks everything with each language's
    default voice. ``workers`` processes build items in parallel (same files for any count)."""
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
    if voices not in VOICE_MODES:
        raise ValueError(f"unknown voices mode {voices!r}; choose one of {', '.join(VOICE_MODES)}")
    if not 0.0 <= salad_fraction <= 1.0:
        raise ValueError(f"salad_fraction must be in [0, 1], got {salad_fraction!r}")
    if int(workers) < 1:
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    if not 0.0 <= kokoro_fraction <= 1.0:
        raise ValueError(f"kokoro_fraction must be in [0, 1], got {kokoro_fraction!r}")
    if int(n_heldout_voice) < 0 or int(song_variants) < 1:
        raise ValueError(f"n_heldout_voice must be >= 0 and song_variants >= 1, got {n_heldout_voice!r}, "
                         f"{song_variants!r}")
    if kokoro_fraction > 0:
        from . import kokoro

        if not kokoro.available():
            raise ValueError("kokoro_fraction needs the Kokoro voice: pip install 'facetwin[voices]'")
    out = Path(out_dir)
    if voices == "default":
        if salad_fraction or n_heldout_voice or song_variants != 1 or kokoro_fraction:
            raise ValueError("salad_fraction, n_heldout_voice, song_variants and kokoro_fraction need voices='diverse'")
        jobs, splits = _plan(int(n_utterances), langs, tuple(heldout_langs), heldout_fraction, seed, include_songs)
    else:
        jobs, splits = _plan_diverse(int(n_utterances), langs, tuple(heldout_langs), heldout_fraction, seed,
                                     include_songs, float(salad_fraction), int(n_heldout_voice), int(song_variants),
                                     float(kokoro_fraction))
    plan_key = {"voices": voices, "salad_fraction": salad_fraction, "n_heldout_voice": n_heldout_voice,
                "song_variants": song_variants}
    if kokoro_fraction:
        plan_key["kokoro_fraction"] = kokoro_fraction
    manifest_path = out / "manifest.json"
    done: dict[str, dict] = {}
    added: list[dict] = []  # items added by other tools (kind "video": facetwin ingest-video): always kept
    if manifest_path.exists():
        try:
            old = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{manifest_path}: damaged corpus manifest ({type(e).__name__}); delete it to rebuild "
                             "the corpus from scratch (items another tool added are then dropped from the index)"
                             ) from None
        added = [it for it in old.get("items", []) if it.get("kind") not in ("speech", "song")
                 and (out / it["data"]).exists()]
        this_plan = plan_key if voices != "default" else {"voices": "default"}
        if (old.get("version") == CORPUS_VERSION and old.get("seed") == seed
                and old.get("plan", {"voices": "default"}) == this_plan):
            # resume: keep finished items of the same plan (split as planned now: a changed split rebuilds nothing)
            done = {it["id"]: {**it, "split": splits[it["id"]]} for it in old.get("items", [])
                    if (out / it["data"]).exists() and it["id"] in splits}

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
                       for s in SPLIT_NAMES if s != "heldout_voice" or voices != "default"},
            "items": ordered,
            "total_duration_s": round(sum(it["duration_s"] for it in ordered), 3),
        }
        if voices != "default":
            manifest["plan"] = plan_key
        text = json.dumps(manifest, ensure_ascii=False, indent=1)
        atomic_write(manifest_path, lambda p: Path(p).write_text(text, encoding="utf-8"))
        return manifest

    todo = []
    for job in jobs:
        if job.id in done and done[job.id].get("kind") in ("speech", "song"):
            items.append(done[job.id])
        else:
            todo.append(job)
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="corpus", unit="item", disable=not progress)
    try:
        if int(workers) == 1 or len(todo) < 2:
            for job in todo:
                items.append(_build_item(out, job, splits[job.id]))
                write_manifest()
                bar.update(1)
        else:
            import multiprocessing as mp

            with mp.get_context("fork").Pool(int(workers)) as pool:
                for n_done, item in enumerate(pool.imap_unordered(
                        _build_item_star, [(out, job, splits[job.id]) for job in todo], chunksize=1), start=1):
                    items.append(item)
                    if n_done % 20 == 0 or n_done == len(todo):
                        write_manifest()
                    bar.update(1)
    finally:
        bar.close()
    return write_manifest()


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
