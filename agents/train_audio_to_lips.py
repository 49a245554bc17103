"""Training the audio -> lips model (:mod:`facetwin.agents.audio_to_lips`) on many voices, and measuring it.

The training corpus (:func:`train_corpus_dir`, ``TRAIN_CORPUS_ARGS``; built once into the cache): the 11 languages
of the robot's study, each utterance spoken by a drawn voice through a drawn channel (:mod:`facetwin.audio.voices`:
espeak-ng's speaker variants, vocal-tract length, pitch and tempo changed with WORLD, noise, reverberation, band
limits), most of them word salads of real words (:mod:`facetwin.audio.texts`) so that every phone is heard in many
contexts, and the songs sung in several keys. Splits: ``train``; ``heldout_sentence`` (sentences never heard);
``heldout_language`` (Hebrew, never heard); ``heldout_voice`` (voice variants training never uses, reading the
held-out sentences): what the model is judged on.

Targets per 30 fps frame, from each item's exact phone timeline (:mod:`facetwin.audio.visemes`): the 40 lip
landmarks of the lip track, its closure and rounding flags, whether an open vowel sounds (lip class ``"open"``) and
the dominant viseme. Loss: ``lip_weight * MSE(lips / 10 mm) + BCE(closure, pos_weight) + BCE(rounded) + BCE(open)
+ viseme_weight * CE(viseme)``; AdamW with a cosine learning rate over a fixed number of epochs (reproducible for a
seed, one torch thread by default). Augmentation per window: Gaussian noise on the normalised rows and a few
masked mel bands.

Metrics (:func:`evaluate_audio_to_lips`, over all frames of a split):

| key | meaning |
|---|---|
| ``lip_error_mm`` / ``neutral_lip_error_mm`` | lip-shape error of the prediction / of a motionless mouth |
| ``aperture_corr`` | Pearson r of predicted and target aperture |
| ``closure_event_recall``, ``closure_precision`` | closures (runs of closure frames) with a predicted closure frame within +-1 frame; frame-wise precision (``closure_p > 0.5``) |
| ``rounded_f1``, ``open_f1`` | frame-wise F1 (``p > 0.5``) |
| ``viseme_accuracy`` | frame-wise top-1 viseme |
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facetwin.audio.corpus import CORPUS_FPS, CORPUS_VERSION, load_item
from facetwin.audio.phone_sets import lip_class
from facetwin.audio.visemes import VISEMES
from facetwin.envs.clips import BUILTIN_CORPUS_ARGS

from .audio_frontend import N_FEATURES, N_MELS, ROWS_PER_FRAME, raw_features, speech_stats
from .audio_to_lips import LANDMARK_SCALE_MM, MODES, N_LIPS, AudioToLips, n_frames

if TYPE_CHECKING:
    import torch

#: the training corpus (:func:`train_corpus_dir`): the built-in corpus's languages, held-out split, songs and seed,
#: with many more utterances in many voices
TRAIN_CORPUS_NAME = f"lipsync-train-v{CORPUS_VERSION}"
TRAIN_CORPUS_ARGS: dict[str, Any] = {
    **BUILTIN_CORPUS_ARGS,
    "n_utterances": 1600,
    "voices": "diverse",
    "salad_fraction": 0.7,
    "n_heldout_voice": 80,
    "song_variants": 3,
    "kokoro_fraction": 0.25,
}
TRAIN_DEFAULTS: dict[str, float] = {
    "batch_size": 256,
    "lr": 2e-3,
    "weight_decay": 1e-4,
    "lip_weight": 10.0,
    "closure_pos_weight": 8.0,
    "rounded_pos_weight": 2.0,
    "open_pos_weight": 2.0,
    "viseme_weight": 0.5,
    "noise_std": 0.15,
    "band_mask": 4,
    "closure_dilate": 0,  # closure targets widened by this many frames on each side
}
SHIPPED_EPOCHS = 8  # more overfits the synthetic voices (held-out voices: 30 epochs worse than 8)
EVAL_SPLITS = ("heldout_sentence", "heldout_language", "heldout_voice")
_VISEME_INDEX = {v: i for i, v in enumerate(VISEMES)}


def train_corpus_dir(cache_dir: str | Path | None = None, progress: bool = False, workers: int = 2) -> Path:
    """The training corpus (``TRAIN_CORPUS_ARGS``), built deterministically into ``<cache>/lipsync-train-v<corpus version>`` on
    first use (minutes on 2 cores; later calls only read a marker)."""
    from facetwin.audio.cache import default_cache_dir
    from facetwin.audio.corpus import cached_corpus

    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return cached_corpus(root, TRAIN_CORPUS_NAME, TRAIN_CORPUS_ARGS, progress=progress, workers=workers)


def read_manifest(corpus_dir: str | Path) -> dict:
    """:func:`facetwin.audio.corpus.read_manifest`, at the model's frame rate."""
    from facetwin.audio.corpus import read_manifest as _read

    path = Path(corpus_dir) / "manifest.json"
    m = _read(corpus_dir)
    if float(m.get("fps", CORPUS_FPS)) != CORPUS_FPS:
        raise ValueError(f"{path}: frames at {m.get('fps')} fps, the model runs at {CORPUS_FPS:g} fps")
    return m


def heldout_keys(manifest: dict) -> dict[str, list[str]]:
    """What a model trained on the ``train`` split never heard: sentence keys, languages and voices."""
    sent = sorted({it["sentence"] for it in manifest["items"] if it["split"] in ("heldout_sentence", "heldout_voice")})
    voices = sorted({it.get("voice", "") for it in manifest["items"] if it["split"] == "heldout_voice"})
    return {"heldout_sentences": sent, "heldout_languages": list(manifest.get("heldout_languages", [])),
            "heldout_voices": voices}


# ---------------------------------------------------------------------------------------------------- data
def item_targets(arrays: dict) -> dict[str, np.ndarray]:
    """Per-frame targets of a corpus item's npz arrays: lips (T, 120) in 10 mm units, closure, rounded, open
    (float32 0/1) and viseme (int64 index)."""
    T = len(arrays["t"])
    phon = arrays["phoneme"]
    return {
        "lips": (np.asarray(arrays["lip_landmarks_mm"], np.float32).reshape(T, -1) / LANDMARK_SCALE_MM),
        "closure": np.asarray(arrays["closure"], np.float32),
        "rounded": np.asarray(arrays["rounded"], np.float32),
        "open": np.array([lip_class(str(p)) == "open" for p in phon], np.float32),
        "viseme": np.array([_VISEME_INDEX.get(str(v), 0) for v in arrays["viseme"]], np.int64),
    }


def _item_rows(corpus_dir: Path, item: dict, model: AudioToLips) -> tuple[np.ndarray, np.ndarray, int]:
    from facetwin.audio.io import load_audio

    audio = load_audio(corpus_dir / item["audio"], sr=16000)
    logmel, rms = raw_features(audio)
    rows, pad = model.normalise(logmel, rms)
    return rows.astype(np.float32), pad.astype(np.float32), n_frames(len(audio))


def load_split(corpus_dir: str | Path, split: str, model: AudioToLips, progress: bool = False,
               ids: list[str] | None = None) -> list[dict]:
    """Every item of ``split`` (``"all"``: every item) as normalised rows for ``model`` + targets."""
    from tqdm.auto import tqdm

    corpus_dir = Path(corpus_dir)
    m = read_manifest(corpus_dir)
    items = [it for it in m["items"] if (split == "all" or it["split"] == split) and (ids is None or it["id"] in ids)]
    if not items:
        counts = {s: len(v) for s, v in m.get("splits", {}).items()}
        raise ValueError(f"{corpus_dir}: split {split!r} has no items (items per split: {counts})")
    out = []
    for it in tqdm(items, desc=f"features {split}", unit="item", disable=not progress):
        rows, pad, T = _item_rows(corpus_dir, it, model)
        tg = item_targets(load_item(corpus_dir, it["id"]))
        if len(tg["lips"]) != T:
            raise ValueError(f"corpus item {it['id']}: {len(tg['lips'])} target frames, its audio has {T}")
        out.append({"id": it["id"], "rows": rows, "pad": pad, **tg})
    return out


def _stack(clips: list[dict], model: AudioToLips) -> dict[str, np.ndarray]:
    """All clips' rows end to end, padded, and the start row of every frame's window."""
    C, L = model.context_rows, model.lookahead_rows
    rows, starts = [], []
    off = 0
    for c in clips:
        T = len(c["lips"])
        need = ROWS_PER_FRAME * (T - 1) + L + 1
        tail = max(0, need - len(c["rows"]))
        block = [np.tile(c["pad"], (C, 1)), c["rows"], np.tile(c["pad"], (tail, 1))]
        starts.append(off + ROWS_PER_FRAME * np.arange(T))
        n = C + len(c["rows"]) + tail
        rows += block
        off += n
    cat = {k: np.concatenate([c[k] for c in clips]) for k in ("lips", "closure", "rounded", "open", "viseme")}
    return {"rows": np.concatenate(rows).astype(np.float32), "start": np.concatenate(starts), **cat}


# ---------------------------------------------------------------------------------------------------- training
def _checked_settings(mode: str, epochs: int, threads: int, settings: dict | None) -> dict:
    """The training settings (``TRAIN_DEFAULTS`` updated by ``settings``), once the arguments are checked."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if isinstance(epochs, bool) or int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not 1 <= int(threads) <= 2:
        raise ValueError(f"threads must be 1 or 2, got {threads!r}")
    cfg = {**TRAIN_DEFAULTS, **(settings or {})}
    unknown = set(cfg) - set(TRAIN_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(TRAIN_DEFAULTS)}")
    return cfg


def _training_clips(corpus_dir: str | Path, manifest: dict, model: AudioToLips, extra_corpora: tuple[str | Path, ...],
                    progress: bool) -> list[dict]:
    """The ``train`` split of ``corpus_dir`` and of every extra corpus, less the extra corpora's items of sentences
    that ``corpus_dir`` holds out."""
    clips = load_split(corpus_dir, "train", model, progress=progress)
    held = set(heldout_keys(manifest)["heldout_sentences"])
    for extra in extra_corpora:
        em = read_manifest(extra)
        ids = [it["id"] for it in em["items"] if it["split"] == "train" and it["sentence"] not in held]
        if ids:
            clips += load_split(extra, "train", model, progress=progress, ids=ids)
    return clips


def _dilate_closures(clips: list[dict], d: int) -> None:
    """Widen every clip's closure targets by ``d`` frames on each side (in place)."""
    for c in clips:
        cl = c["closure"] > 0.5
        wide = cl.copy()
        for sh in range(1, d + 1):
            wide[sh:] |= cl[:-sh]
            wide[:-sh] |= cl[sh:]
        c["closure"] = wide.astype(np.float32)


@dataclass
class _Windows:
    """Random training windows of the stacked clips (:func:`_stack`) with their targets, augmented with Gaussian
    noise on the rows and, in half the windows, ``band_mask`` masked mel bands."""

    rows: torch.Tensor  # (rows, 42): all clips' rows end to end, padded
    start: torch.Tensor  # (frames,): the first row of every frame's window
    targets: dict[str, torch.Tensor]  # per-frame targets: lips, closure, rounded, open, viseme
    offsets: torch.Tensor  # (W,): 0 .. W - 1
    gen: torch.Generator
    noise_std: float
    band_mask: int

    @property
    def n(self) -> int:
        return len(self.start)

    def batch(self, bs: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``bs`` windows (bs, W, 42) drawn with replacement, and their frames' targets."""
        import torch

        idx = torch.randint(0, self.n, (bs,), generator=self.gen)
        x = self.rows[self.start[idx, None] + self.offsets]
        x = x + torch.randn(x.shape, generator=self.gen) * self.noise_std
        if self.band_mask:
            lo = torch.randint(0, N_MELS - self.band_mask, (bs, 1, 1), generator=self.gen)
            band = torch.arange(N_FEATURES)[None, None, :]
            masked = (band >= lo) & (band < lo + self.band_mask) & (torch.rand(bs, 1, 1, generator=self.gen) < 0.5)
            x = torch.where(masked, torch.zeros_like(x), x)
        return x, {k: v[idx] for k, v in self.targets.items()}


def _windows(clips: list[dict], model: AudioToLips, cfg: dict, seed: int) -> _Windows:
    """The training windows of ``clips`` for ``model`` (their random draws seeded with ``seed``); sets the network's
    input statistics from the clips' rows."""
    import torch

    data = _stack(clips, model)
    with torch.no_grad():
        frames = torch.from_numpy(np.concatenate([c["rows"] for c in clips]))
        model.net.in_mean.copy_(frames.mean(0))
        model.net.in_std.copy_(frames.std(0).clamp_min(1e-2))
    targets = {k: torch.from_numpy(data[k]) for k in ("lips", "closure", "rounded", "open", "viseme")}
    return _Windows(torch.from_numpy(data["rows"]), torch.from_numpy(data["start"]), targets,
                    torch.arange(model.window), torch.Generator().manual_seed(seed), cfg["noise_std"],
                    int(cfg["band_mask"]))


def _loss_fn(cfg: dict) -> Callable:
    """``loss(out, targets)`` of a batch: the weighted lip MSE, seal / rounding / opening BCEs and viseme CE of the
    module docstring."""
    import torch

    fn = torch.nn.functional
    bce = {k: torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(cfg[f"{k}_pos_weight"])) for k in
           ("closure", "rounded", "open")}
    nl = N_LIPS * 3

    def loss(out: torch.Tensor, tg: dict[str, torch.Tensor]) -> torch.Tensor:
        return (cfg["lip_weight"] * fn.mse_loss(out[:, :nl], tg["lips"])
                + bce["closure"](out[:, nl], tg["closure"])
                + bce["rounded"](out[:, nl + 1], tg["rounded"])
                + bce["open"](out[:, nl + 2], tg["open"])
                + cfg["viseme_weight"] * fn.cross_entropy(out[:, nl + 3:], tg["viseme"]))

    return loss


def _optimise(model: AudioToLips, windows: _Windows, cfg: dict, epochs: int, progress: bool,
              say: Callable[[str], None]) -> tuple[list[float], int]:
    """AdamW with a cosine learning rate over ``epochs`` passes of random windows; returns the loss history (the
    means of 20 equal parts of the run) and the number of steps."""
    import torch
    from tqdm.auto import tqdm

    net = model.net
    bs = int(cfg["batch_size"])
    steps_per_epoch = max(1, windows.n // bs)
    total = int(epochs) * steps_per_epoch
    opt = torch.optim.AdamW(net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    loss_of = _loss_fn(cfg)
    bar = tqdm(total=total, desc=f"train {model.mode}", unit="step", disable=not progress)
    hist: list[float] = []
    bucket: list[float] = []
    net.train()
    try:
        for step in range(total):
            for g in opt.param_groups:
                g["lr"] = cfg["lr"] * 0.5 * (1.0 + math.cos(math.pi * step / total))
            x, tg = windows.batch(bs)
            loss = loss_of(net(x), tg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.update(1)
            bucket.append(float(loss.detach()))
            if (step + 1) / total >= (len(hist) + 1) / 20:
                hist.append(float(np.mean(bucket)))
                bucket = []
                say(f"{model.mode} step {step + 1} ({(step + 1) / steps_per_epoch:.1f} epochs) loss {hist[-1]:.4f}")
    finally:
        bar.close()
    net.eval()
    model.invalidate()
    return hist, total


def _evaluate_splits(model: AudioToLips, corpus_dir: str | Path, manifest: dict, splits: tuple[str, ...],
                     say: Callable[[str], None]) -> dict[str, dict]:
    """:func:`evaluate_audio_to_lips` on each of ``splits`` that the corpus has, logged."""
    metrics = {}
    for split in splits:
        if manifest.get("splits", {}).get(split):
            metrics[split] = m = evaluate_audio_to_lips(model, corpus_dir, split)
            say(f"{model.mode} {split}: lip error {m['lip_error_mm']:.3f} mm (neutral {m['neutral_lip_error_mm']:.3f}), "
                f"closure recall {m['closure_event_recall']:.2f} precision {m['closure_precision']:.2f}, "
                f"rounded F1 {m['rounded_f1']:.2f}, open F1 {m['open_f1']:.2f}, visemes {m['viseme_accuracy']:.2f}")
    return metrics


def train_audio_to_lips(
    corpus_dir: str | Path,
    *,
    mode: str = "offline",
    seed: int = 0,
    epochs: int = SHIPPED_EPOCHS,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    threads: int = 1,
    arch: dict | None = None,
    settings: dict | None = None,
    evaluate_splits: tuple[str, ...] = EVAL_SPLITS,
    extra_corpora: tuple[str | Path, ...] = (),
) -> tuple[AudioToLips, dict]:
    """Train a model of ``mode`` on the ``train`` split of ``corpus_dir`` (and of every ``extra_corpora``, less their
    items of sentences ``corpus_dir`` holds out) for ``epochs`` passes over its frames; returns ``(model, info)``
    (``train_time_s``, ``steps``, ``n_train_frames``, ``loss_history``, ``metrics`` per evaluated split of
    ``corpus_dir``; also stored in ``model.meta``)."""
    import torch

    cfg = _checked_settings(mode, epochs, threads, settings)
    say = log or (lambda msg: None)
    manifest = read_manifest(corpus_dir)
    model = AudioToLips(mode, arch=arch, seed=seed)
    # the stream's prior: the average speech log-mel mean and level of the training recordings
    _set_prior(model, corpus_dir, manifest)
    train_data = _training_clips(corpus_dir, manifest, model, extra_corpora, progress)
    if int(cfg["closure_dilate"]):
        _dilate_closures(train_data, int(cfg["closure_dilate"]))
    windows = _windows(train_data, model, cfg, seed)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    t0 = time.perf_counter()
    try:
        hist, total = _optimise(model, windows, cfg, epochs, progress, say)
    finally:
        torch.set_num_threads(old_threads)
    info: dict[str, Any] = {"train_time_s": round(time.perf_counter() - t0, 2), "steps": total,
                            "epochs": int(epochs), "n_train_frames": int(windows.n), "n_train_items": len(train_data),
                            "final_loss": hist[-1] if hist else float("nan"), "loss_history": hist}
    info["metrics"] = _evaluate_splits(model, corpus_dir, manifest, evaluate_splits, say)
    model.meta = {"corpus_args": _corpus_args(corpus_dir), **heldout_keys(manifest), "seed": int(seed),
                  "extra_corpora_args": [_corpus_args(e) for e in extra_corpora],
                  "settings": {k: float(v) for k, v in cfg.items()}, "arch": dict(model.arch),
                  "n_params": model.n_params, "torch_threads": int(threads), **info}
    return model, info


def _set_prior(model: AudioToLips, corpus_dir: str | Path, manifest: dict, max_items: int = 200) -> None:
    """The starting normalisation (streams; recordings without speech): the mean over (up to ``max_items``, evenly
    spread) training recordings of their speech log-mel means, spreads and levels."""
    import torch

    from facetwin.audio.io import load_audio

    items = [it for it in manifest["items"] if it["split"] == "train"]
    if len(items) > max_items:
        items = [items[int(i)] for i in np.linspace(0, len(items) - 1, max_items).round()]
    mus, levels, sds = [], [], []
    for it in items:
        logmel, rms = raw_features(load_audio(Path(corpus_dir) / it["audio"], sr=16000))
        mu, level, sd = speech_stats(logmel, rms, (np.zeros(N_MELS), -30.0, np.ones(N_MELS)))
        mus.append(mu)
        levels.append(level)
        sds.append(sd)
    with torch.no_grad():
        model.net.prior_mu.copy_(torch.from_numpy(np.mean(mus, axis=0)))
        model.net.prior_level.fill_(float(np.mean(levels)))
        model.net.prior_sd.copy_(torch.from_numpy(np.mean(sds, axis=0)))


def _corpus_args(corpus_dir: str | Path) -> dict:
    try:
        return dict(json.loads((Path(corpus_dir) / "complete.json").read_text(encoding="utf-8"))["args"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


# ---------------------------------------------------------------------------------------------------- metrics
def _prf(pred: np.ndarray, true: np.ndarray) -> tuple[float, float, float]:
    tp = float(np.sum(pred & true))
    p = tp / max(1.0, float(pred.sum()))
    r = tp / max(1.0, float(true.sum()))
    return p, r, (2 * p * r / (p + r) if p + r > 0 else 0.0)


def _event_recall(pred: np.ndarray, true: np.ndarray, tol: int = 1) -> tuple[int, int]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], true.astype(np.int8), [0]])))
    hit = 0
    for a, b in zip(edges[::2], edges[1::2]):
        hit += bool(pred[max(0, a - tol):b + tol].any())
    return hit, len(edges) // 2


def shape_error_mm(pred_lips: np.ndarray, target_lips: np.ndarray) -> np.ndarray:
    """(T,) lip shape error: mean over the 40 points of the error after removing the mean difference."""
    d = np.asarray(pred_lips, dtype=np.float64) - np.asarray(target_lips, dtype=np.float64)
    d = d - d.mean(axis=-2, keepdims=True)
    return np.linalg.norm(d, axis=-1).mean(axis=-1)


def evaluate_audio_to_lips(model: AudioToLips, corpus_dir: str | Path, split: str,
                           ids: list[str] | None = None) -> dict:
    """Frame-level metrics of ``model`` on ``split`` of a corpus (the table of the module docstring)."""
    clips = load_split(corpus_dir, split, model, ids=ids)
    if ids is not None:
        missing = set(ids) - {c["id"] for c in clips}
        if missing:
            raise ValueError(f"item(s) {', '.join(sorted(missing))} are not in split {split!r} of {corpus_dir}")
    acc: dict[str, list] = {k: [] for k in ("err", "neutral", "ap_p", "ap_t", "cp", "ct", "rp", "rt", "op", "ot",
                                            "vp", "vt")}
    hits = total = 0
    from facetwin.audio.lip_track import measures_from_landmarks

    for c in clips:
        pred = model.predict_rows(c["rows"], c["pad"], len(c["lips"]))
        tl = c["lips"].reshape(-1, N_LIPS, 3) * LANDMARK_SCALE_MM
        acc["err"].append(shape_error_mm(pred.lips_mm, tl))
        acc["neutral"].append(shape_error_mm(np.zeros_like(tl), tl))
        acc["ap_p"].append(pred.aperture_mm)
        acc["ap_t"].append(measures_from_landmarks(tl)["aperture_mm"])
        for key, p, t in (("c", pred.closure_p, c["closure"]), ("r", pred.rounded_p, c["rounded"]),
                          ("o", pred.open_p, c["open"])):
            acc[key + "p"].append(p > 0.5)
            acc[key + "t"].append(t > 0.5)
        acc["vp"].append(pred.viseme_p.argmax(axis=1))
        acc["vt"].append(c["viseme"])
        h, t = _event_recall(acc["cp"][-1], acc["ct"][-1])
        hits, total = hits + h, total + t
    cat = {k: np.concatenate(v) for k, v in acc.items()}
    e, ne = float(cat["err"].mean()), float(cat["neutral"].mean())
    a_p, a_t = cat["ap_p"], cat["ap_t"]
    corr = float(np.corrcoef(a_p, a_t)[0, 1]) if a_p.std() > 0 and a_t.std() > 0 else 0.0
    cp, _, _ = _prf(cat["cp"], cat["ct"])
    _, _, rf = _prf(cat["rp"], cat["rt"])
    _, _, of = _prf(cat["op"], cat["ot"])
    return {"lip_error_mm": e, "neutral_lip_error_mm": ne, "aperture_corr": corr,
            "closure_event_recall": hits / total if total else float("nan"), "closure_precision": cp,
            "rounded_f1": rf, "open_f1": of, "viseme_accuracy": float(np.mean(cat["vp"] == cat["vt"])),
            "n_items": len(clips), "n_frames": int(len(a_t))}


def train_shipped_weights(modes: tuple[str, ...] = MODES, out_dir: str | Path | None = None, *,
                          progress: bool = True, log: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Reproduce the shipped audio weights: every mode on :func:`train_corpus_dir`, ``SHIPPED_EPOCHS``, seed 0."""
    from .weights import AUDIO_TO_LIPS_FILES, shipped_weights_dir

    out = Path(out_dir) if out_dir is not None else shipped_weights_dir()
    corpus = train_corpus_dir(progress=progress)
    paths = {}
    for mode in modes:
        model, _ = train_audio_to_lips(corpus, mode=mode, seed=0, epochs=SHIPPED_EPOCHS, progress=progress, log=log,
                                       threads=2)
        paths[mode] = model.save(out / AUDIO_TO_LIPS_FILES[mode])
    return paths


__all__ = ["EVAL_SPLITS", "SHIPPED_EPOCHS", "TRAIN_CORPUS_ARGS", "TRAIN_CORPUS_NAME", "TRAIN_DEFAULTS",
           "evaluate_audio_to_lips", "heldout_keys", "item_targets", "load_split", "read_manifest", "shape_error_mm",
           "train_audio_to_lips", "train_corpus_dir", "train_shipped_weights"]
