"""Audio -> lips: a small torch model from audio features to the target lip landmarks, offline and streaming.

The model reads the LipSyncEnv audio observation rows (:func:`facetwin.envs.lip_sync.audio_obs_features`: 80
log-mel bands + RMS per 30 fps frame, digital silence = 0) and predicts, for every frame ``k``, what the viseme model
of :mod:`facetwin.audio.visemes` would give from the exact phoneme timing: the 40 lip landmark displacements
(corpus ``lip_landmarks_mm``), a bilabial closure probability (``closure``) and a rounding probability
(``rounded``). It sees the frames ``k - C .. k + L`` (``C = context_frames``, ``L = lookahead_frames``; frames
outside the clip are silence, 0). Two modes share the architecture and differ in the window:

| mode | C | L | heard past ``t_k`` | use |
|---|---|---|---|---|
| ``"offline"`` | 10 | 8 | 267 ms + 33 ms feature window | whole file known (``facetwin lipsync`` on a wav) |
| ``"stream"`` | 12 | 1 | 33 ms + 33 ms feature window | live audio, causal: :meth:`AudioToLips.streamer` (the lip-sync pipeline commands 2 frames ahead of the lips, so a command hears 100 ms ahead in all) |

Architecture (``ARCH_DEFAULTS``; 113k parameters offline, 100k stream): per-frame input normalisation
(training-set mean / std), a shared frame encoder ``Linear(81, 32) + SiLU``, the ``W = C + 1 + L`` encoded frames
flattened, two hidden layers ``Linear + SiLU`` (128), and a linear head of 122 outputs: 120 lip coordinates in units of
``LANDMARK_SCALE_MM`` (10 mm), the closure logit and the rounding logit. Inference runs the same layers in
float64 numpy (batched over frames for :meth:`AudioToLips.predict`, one frame at a time for the streamer, which
therefore reproduces ``predict`` to rounding).

Training (:func:`train_audio_to_lips`): the ``train`` split of a corpus (:mod:`facetwin.audio.corpus`), loss
``lip_weight * MSE(lips / 10 mm) + BCE(closure, pos_weight) + BCE(rounded, pos_weight)`` (closure frames are
rare and short, ~1 frame per bilabial, and they matter: B/P/M is the robot's known weakness), AdamW with a cosine
learning rate. Augmentation, per training window: a random gain ``g`` (log-uniform in ``GAIN_RANGE``) applied
exactly to the features, mel power ``x -> log1p(g^2 expm1(10 x)) / 10`` and RMS ``r -> max(r + 20 log10(g) / 50,
0)`` where the frame is not silence, then Gaussian noise (``NOISE_STD``) on the non-silent values.

Metrics (:func:`evaluate_audio_to_lips`, over all frames of a split):

| key | meaning |
|---|---|
| ``lip_error_mm`` | mean over frames and the 40 points of the Euclidean error after removing the mean displacement difference (LipSyncEnv's ``"centroid"`` error: the lip shape) |
| ``neutral_lip_error_mm`` | the same for the all-neutral prediction (zero displacement): the reference |
| ``lip_error_ratio`` | ``lip_error_mm / neutral_lip_error_mm`` |
| ``aperture_corr`` | Pearson correlation of predicted and target midline aperture (mm) |
| ``aperture_mae_mm`` | mean absolute aperture error |
| ``closure_precision`` / ``closure_recall`` / ``closure_f1`` | frame-wise, closure predicted where ``closure_p > 0.5`` |
| ``closure_event_recall`` | share of target closures (runs of closure frames) with a predicted closure frame within +-1 frame |
| ``rounded_precision`` / ``rounded_recall`` / ``rounded_f1`` | frame-wise, ``rounded_p > 0.5`` |
| ``n_items`` / ``n_frames`` | size of the split |

Measured (shipped weights: :func:`train_shipped_weights`, ``SHIPPED_EPOCHS`` = 60 epochs, 8040 steps, one torch
thread, ~170 s each on the shared 2-core VM; the 660-utterance corpus: 527 train items, 34k frames, 80
held-out-sentence and 60 Hebrew items):

| mode | split | lip error mm (neutral) | aperture corr | closure P / R (event R) | rounded F1 |
|---|---|---|---|---|---|
| offline | heldout_sentence | 0.732 (2.504) | 0.859 | 0.85 / 0.77 (0.85) | 0.87 |
| offline | heldout_language | 0.678 (1.710) | 0.901 | 0.87 / 0.93 (0.99) | 0.84 |
| stream | heldout_sentence | 0.732 (2.504) | 0.859 | 0.86 / 0.79 (0.89) | 0.87 |
| stream | heldout_language | 0.746 (1.710) | 0.889 | 0.88 / 0.92 (0.96) | 0.88 |

Speed (one thread, ``OPENBLAS_NUM_THREADS=1``): ``predict`` 0.3-0.4 ms per second of audio (real-time factor
~2600x; ~800x including feature extraction), the streamer 22 us per frame. numpy's default BLAS threads on a busy
machine slow both ~3x (64 us per frame).

Checkpoints (:meth:`AudioToLips.save`, ``torch.load(path, weights_only=True)``): a dict with ``format``
(``"facetwin.audio_to_lips"``), ``version``, ``mode``, ``context_frames``, ``lookahead_frames``, ``arch``
(layer sizes), ``state_dict`` (tensors, normalisation statistics included) and ``meta`` (plain data: training
corpus arguments, the training corpus's held-out sentence keys and languages, settings, measured metrics). The
shipped weights (``assets/weights/audio_to_lips_{offline,stream}.pt``) are trained on :func:`train_corpus_dir`.

>>> from facetwin.agents.audio_to_lips import AudioToLips
>>> model = AudioToLips.load_shipped("offline")
>>> pred = model.predict_audio(audio, sr)            # LipPrediction: lips_mm (T, 40, 3), closure_p, aperture_mm ...
>>> s = AudioToLips.load_shipped("stream").streamer()
>>> for row in audio_obs_rows:                       # (81,) rows as they arrive (StreamingFeatures, then
...                                                  # audio_obs_features)
...     for k, frame in s.push(row): ...             # frame k is out once row k + 3 was pushed
>>> rest = s.flush()                                 # the last frames (silence-padded, as predict)
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from facetwin.audio.corpus import (
    CORPUS_FPS,
    CORPUS_SR,
    DEFAULT_HELDOUT_LANGUAGES,
    DEFAULT_LANGUAGES,
    load_item,
)
from facetwin.audio.visemes import measures_from_landmarks
from facetwin.envs.lip_sync import (
    LANDMARK_SCALE_MM,
    N_AUDIO_FEATURES,
    N_LIPS,
    RMS_SCALE_DB,
    audio_obs_features,
    default_cache_dir,
)

from .weights import AUDIO_TO_LIPS_FILES, save_torch_atomic, shipped_path

MODES = ("offline", "stream")
#: the audio window of each mode (frames at 30 fps)
MODE_WINDOWS: dict[str, dict[str, int]] = {
    "offline": {"context_frames": 10, "lookahead_frames": 8},
    # 1 frame: the pipeline (facetwin.agents.lipsync) adds a 2-frame command lead for the servo and skin lag, and
    # the whole must stay within 100 ms. Lookahead barely helps the lips (held-out sentences, lip error: 3 frames
    # 0.732 mm, 2 frames 0.734, 1 frame 0.783), the lead matters for the sync.
    "stream": {"context_frames": 12, "lookahead_frames": 1},
}
MAX_STREAM_LOOKAHEAD = 3  # 100 ms
CHECKPOINT_FORMAT = "facetwin.audio_to_lips"
CHECKPOINT_VERSION = 1

#: the training corpus (:func:`train_corpus_dir`): 60 utterances per language x 11 languages + the shipped songs
TRAIN_CORPUS_NAME = "lipsync-train-v1"
TRAIN_CORPUS_ARGS: dict[str, Any] = {
    "n_utterances": 660,
    "langs": DEFAULT_LANGUAGES,
    "heldout_langs": DEFAULT_HELDOUT_LANGUAGES,
    "heldout_fraction": 0.15,
    "include_songs": True,
    "seed": 0,
}

#: architecture defaults (:class:`LipNet`)
ARCH_DEFAULTS: dict[str, int] = {"frame_dim": 32, "hidden": 128, "n_hidden": 2}
#: training defaults (:func:`train_audio_to_lips`)
TRAIN_DEFAULTS: dict[str, float] = {
    "batch_size": 256,
    "lr": 2e-3,
    "weight_decay": 1e-4,
    "lip_weight": 10.0,
    "closure_pos_weight": 12.0,  # 4 -> 12 raised the held-out closure event recall 0.85 -> 0.88 at equal lip error
    "rounded_pos_weight": 2.0,
}
GAIN_RANGE = (0.3, 3.0)  # random gain of the augmentation (log-uniform), ~ -10 .. +10 dB
NOISE_STD = 0.02  # Gaussian noise on non-silent feature values (observation units)
SHIPPED_EPOCHS = 60  # training length of the shipped weights (passes over the ~34k training frames), seed 0
N_OUT = N_LIPS * 3 + 2


# ---------------------------------------------------------------------------------------------------- corpus
def train_corpus_dir(cache_dir: str | Path | None = None, progress: bool = False) -> Path:
    """The training corpus (``TRAIN_CORPUS_ARGS``), built deterministically into ``<cache_dir>/lipsync-train-v1``
    on first use (about a minute on one core; later calls only read a marker).

    ``cache_dir`` defaults to :func:`facetwin.envs.lip_sync.default_cache_dir`. A file lock makes concurrent first
    uses build it once (as :func:`facetwin.envs.lip_sync.builtin_corpus_dir`).
    """
    from facetwin.audio.corpus import cached_corpus

    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return cached_corpus(root, TRAIN_CORPUS_NAME, TRAIN_CORPUS_ARGS, progress=progress)


def _read_manifest(corpus_dir: str | Path) -> dict:
    path = Path(corpus_dir) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{corpus_dir} is not a facetwin corpus (no manifest.json); build one with "
                                "facetwin.audio.corpus.build_corpus or train_corpus_dir()")
    m = json.loads(path.read_text(encoding="utf-8"))
    if float(m.get("fps", CORPUS_FPS)) != CORPUS_FPS:
        raise ValueError(f"{path}: frames at {m.get('fps')} fps, the model runs at {CORPUS_FPS:g} fps")
    return m


def heldout_keys(manifest: dict) -> dict[str, list[str]]:
    """The held-out sentence keys (``"fr:3"``) and languages of a corpus manifest: what a model trained on its
    ``train`` split never heard, whatever the voice."""
    sent = sorted({it["sentence"] for it in manifest["items"] if it["split"] == "heldout_sentence"})
    return {"heldout_sentences": sent, "heldout_languages": list(manifest.get("heldout_languages", []))}


@dataclass
class _Clip:
    id: str
    obs: np.ndarray  # (T, 81) float32
    lips: np.ndarray  # (T, 40, 3) float32 mm
    aperture: np.ndarray  # (T,) mm
    closure: np.ndarray  # (T,) bool
    rounded: np.ndarray  # (T,) bool


def _load_clips(corpus_dir: str | Path, split: str, progress: bool = False) -> list[_Clip]:
    from tqdm import tqdm

    m = _read_manifest(corpus_dir)
    items = [it for it in m["items"] if split == "all" or it["split"] == split]
    if not items:
        counts = {s: len(v) for s, v in m.get("splits", {}).items()}
        raise ValueError(f"{corpus_dir}: split {split!r} has no items (items per split: {counts})")
    clips = []
    for it in tqdm(items, desc=f"load {split}", unit="item", disable=not progress):
        a = load_item(corpus_dir, it["id"])
        clips.append(_Clip(it["id"], audio_obs_features(a["logmel"], a["rms_db"]),
                           a["lip_landmarks_mm"].astype(np.float32), a["aperture_mm"].astype(np.float64),
                           a["closure"].astype(bool), a["rounded"].astype(bool)))
    return clips


# ---------------------------------------------------------------------------------------------------- network
def _torch():
    import torch

    return torch


def _make_net(window: int, frame_dim: int, hidden: int, n_hidden: int):
    """The torch module (see the module docstring); input (B, W, 81) raw audio_obs rows, output (B, 122)."""
    torch = _torch()
    nn = torch.nn

    class LipNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("in_mean", torch.zeros(N_AUDIO_FEATURES))
            self.register_buffer("in_std", torch.ones(N_AUDIO_FEATURES))
            self.frame = nn.Linear(N_AUDIO_FEATURES, frame_dim)
            dims = [window * frame_dim] + [hidden] * n_hidden
            self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
            self.head = nn.Linear(dims[-1], N_OUT)

        def forward(self, x):
            h = nn.functional.silu(self.frame((x - self.in_mean) / self.in_std)).flatten(1)
            for layer in self.hidden:
                h = nn.functional.silu(layer(h))
            return self.head(h)

    return LipNet()


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


# ---------------------------------------------------------------------------------------------------- model
@dataclass
class LipPrediction:
    """Per-frame outputs of :meth:`AudioToLips.predict` (frame ``k`` at ``k / 30`` s)."""

    lips_mm: np.ndarray  # (T, 40, 3) lip landmark displacement from the neutral face, head frame, mm
    closure_p: np.ndarray  # (T,) probability of a bilabial closure frame
    rounded_p: np.ndarray  # (T,) probability of a rounding frame
    aperture_mm: np.ndarray  # (T,) midline inner-lip aperture of lips_mm (measures_from_landmarks)
    width_mm: np.ndarray  # (T,) mouth width (outer corners)
    protrusion_mm: np.ndarray  # (T,) protrusion vs neutral

    def __len__(self) -> int:
        return len(self.closure_p)


@dataclass
class LipFrame:
    """One frame of a :class:`LipStreamer`."""

    lips_mm: np.ndarray  # (40, 3)
    closure_p: float
    rounded_p: float


def _prediction(out: np.ndarray) -> LipPrediction:
    lips = out[:, : N_LIPS * 3].reshape(-1, N_LIPS, 3) * LANDMARK_SCALE_MM
    meas = measures_from_landmarks(lips) if len(lips) else {k: np.zeros(0) for k in
                                                           ("aperture_mm", "width_mm", "protrusion_mm")}
    return LipPrediction(lips_mm=lips, closure_p=_sigmoid(out[:, -2]), rounded_p=_sigmoid(out[:, -1]),
                         aperture_mm=meas["aperture_mm"], width_mm=meas["width_mm"],
                         protrusion_mm=meas["protrusion_mm"])


class AudioToLips:
    """Audio observation rows -> lip landmarks, closure and rounding (see the module docstring)."""

    def __init__(self, mode: str = "offline", *, context_frames: int | None = None,
                 lookahead_frames: int | None = None, arch: dict | None = None, meta: dict | None = None,
                 seed: int = 0) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        win = MODE_WINDOWS[mode]
        self.mode = mode
        self.context_frames = int(win["context_frames"] if context_frames is None else context_frames)
        self.lookahead_frames = int(win["lookahead_frames"] if lookahead_frames is None else lookahead_frames)
        if self.context_frames < 0 or self.lookahead_frames < 0:
            raise ValueError("context_frames and lookahead_frames must be >= 0")
        if mode == "stream" and self.lookahead_frames > MAX_STREAM_LOOKAHEAD:
            raise ValueError(f"stream mode allows at most {MAX_STREAM_LOOKAHEAD} lookahead frames (100 ms), "
                             f"got {self.lookahead_frames}")
        self.arch = {**ARCH_DEFAULTS, **(arch or {})}
        unknown = set(self.arch) - set(ARCH_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown arch key(s) {', '.join(sorted(unknown))}; known: {', '.join(ARCH_DEFAULTS)}")
        self.meta: dict = dict(meta or {})
        torch = _torch()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.net = _make_net(self.window, **self.arch)
        self._np: list[np.ndarray] | None = None

    @property
    def window(self) -> int:
        return self.context_frames + 1 + self.lookahead_frames

    @property
    def n_params(self) -> int:
        return int(sum(p.numel() for p in self.net.parameters()))

    # ---------------------------------------------------------------------------------------- inference
    def _params(self) -> list[np.ndarray]:
        if self._np is None:
            sd = {k: v.detach().cpu().double().numpy() for k, v in self.net.state_dict().items()}
            layers = [(sd["frame.weight"].T.copy(), sd["frame.bias"])]
            n_hidden = self.arch["n_hidden"]
            layers += [(sd[f"hidden.{i}.weight"].T.copy(), sd[f"hidden.{i}.bias"]) for i in range(n_hidden)]
            layers.append((sd["head.weight"].T.copy(), sd["head.bias"]))
            self._np = [1.0 / sd["in_std"], -sd["in_mean"] / sd["in_std"], *[a for ly in layers for a in ly]]
        return self._np

    def invalidate(self) -> None:
        """Forget the numpy copy of the weights (call after changing ``net`` in place)."""
        self._np = None

    def _encode(self, rows: np.ndarray) -> np.ndarray:
        """(..., 81) raw rows -> (..., frame_dim) frame encodings, float64 numpy."""
        scale, shift, wf, bf = self._params()[:4]
        return _silu((rows * scale + shift) @ wf + bf)

    def _head(self, h: np.ndarray) -> np.ndarray:
        """(..., W * frame_dim) flattened window encodings -> (..., 122) raw outputs."""
        rest = self._params()[4:]
        for i in range(0, len(rest) - 2, 2):
            h = _silu(h @ rest[i] + rest[i + 1])
        return h @ rest[-2] + rest[-1]

    def _forward(self, windows: np.ndarray) -> np.ndarray:
        """(B, W, 81) raw rows -> (B, 122) raw outputs, float64 numpy."""
        return self._head(self._encode(windows).reshape(len(windows), -1))

    def _check_obs(self, audio_obs) -> np.ndarray:
        x = np.asarray(audio_obs)
        if x.ndim != 2 or x.shape[1] != N_AUDIO_FEATURES:
            raise ValueError(f"audio_obs must be (T, {N_AUDIO_FEATURES}) rows of audio_obs_features, got shape "
                             f"{x.shape}")
        if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
            raise ValueError("audio_obs must be finite numbers")
        return x.astype(np.float64)

    def windows(self, audio_obs: np.ndarray) -> np.ndarray:
        """(T, W, 81) windows of every frame (frames ``k - C .. k + L``, silence = 0 outside the clip); a view."""
        x = self._check_obs(audio_obs)
        if not len(x):
            return np.zeros((0, self.window, N_AUDIO_FEATURES))
        pad = np.concatenate([np.zeros((self.context_frames, N_AUDIO_FEATURES)), x,
                              np.zeros((self.lookahead_frames, N_AUDIO_FEATURES))])
        return np.lib.stride_tricks.sliding_window_view(pad, (self.window, N_AUDIO_FEATURES))[:, 0]

    def predict(self, audio_obs) -> LipPrediction:
        """Outputs of every frame of a whole clip of (T, 81) :func:`audio_obs_features` rows (batched)."""
        w = self.windows(audio_obs)
        out = np.zeros((0, N_OUT))
        if len(w):
            out = np.concatenate([self._forward(w[i:i + 4096]) for i in range(0, len(w), 4096)])
        return _prediction(out)

    def predict_audio(self, audio, sr: int) -> LipPrediction:
        """Raw mono audio at ``sr`` Hz -> (16 kHz) features at 30 fps -> :meth:`predict`."""
        from facetwin.audio.features import extract_features
        from facetwin.audio.io import resample

        x = np.asarray(audio, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"audio must be 1-D (mono), got shape {x.shape}")
        if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
            raise ValueError(f"sr must be a positive int, got {sr!r}")
        if not np.isfinite(x).all():
            raise ValueError("audio contains NaN or inf")
        if sr != CORPUS_SR:
            x = resample(x, sr, CORPUS_SR)
        f = extract_features(x, CORPUS_SR, fps=CORPUS_FPS)
        return self.predict(audio_obs_features(f.logmel, f.rms_db))

    def streamer(self) -> LipStreamer:
        """A frame-by-frame streamer that reproduces :meth:`predict` (see :class:`LipStreamer`)."""
        return LipStreamer(self)

    # ---------------------------------------------------------------------------------------- files
    def checkpoint(self) -> dict:
        """The checkpoint dict (plain data and tensors; see the module docstring)."""
        return {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "mode": self.mode,
            "context_frames": self.context_frames, "lookahead_frames": self.lookahead_frames,
            "arch": dict(self.arch),
            "state_dict": {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()},
            "meta": self.meta,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the checkpoint atomically."""
        return save_torch_atomic(self.checkpoint(), path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> AudioToLips:
        """Load a checkpoint written by :meth:`save` (``torch.load(weights_only=True)``)."""
        torch = _torch()
        ck = torch.load(Path(path), map_location="cpu", weights_only=True)
        if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not an audio-to-lips checkpoint (format {CHECKPOINT_FORMAT!r})")
        if ck.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"{path}: checkpoint version {ck.get('version')!r}, this code reads {CHECKPOINT_VERSION}")
        model = cls(ck["mode"], context_frames=ck["context_frames"], lookahead_frames=ck["lookahead_frames"],
                    arch=ck["arch"], meta=ck["meta"])
        model.net.load_state_dict(ck["state_dict"])
        model.net.eval()
        return model

    @classmethod
    def load_shipped(cls, mode: str = "offline") -> AudioToLips:
        """The shipped weights of ``mode`` (``assets/weights/audio_to_lips_<mode>.pt``)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        return cls.load(shipped_path(AUDIO_TO_LIPS_FILES[mode]))

    def __repr__(self) -> str:
        return (f"AudioToLips(mode={self.mode!r}, context_frames={self.context_frames}, "
                f"lookahead_frames={self.lookahead_frames}, params={self.n_params})")


class LipStreamer:
    """Frame-by-frame inference: ``push(row)`` one (81,) audio observation row as it arrives and get the frames
    that became ready, as ``(k, LipFrame)`` pairs. Frame ``k`` is ready once row ``k + L`` was pushed;
    :meth:`flush` ends the stream (pads with silence rows like :meth:`AudioToLips.predict` past the end, returns
    the remaining frames) and resets the streamer for a new stream. Outputs equal ``predict`` to rounding."""

    def __init__(self, model: AudioToLips) -> None:
        self.model = model
        self.reset()

    def reset(self) -> None:
        """Start a new stream (frame 0 next)."""
        m = self.model
        self._silence = m._encode(np.zeros(N_AUDIO_FEATURES))
        self._enc = np.tile(self._silence, (m.window, 1))  # frame encodings of the window, oldest first
        self._n_rows = 0  # rows pushed (clip frames)
        self._next = 0  # next frame to emit

    def _emit(self) -> tuple[int, LipFrame]:
        out = self.model._head(self._enc.reshape(-1))
        k = self._next
        self._next += 1
        return k, LipFrame(lips_mm=out[: N_LIPS * 3].reshape(N_LIPS, 3) * LANDMARK_SCALE_MM,
                           closure_p=float(_sigmoid(out[-2])), rounded_p=float(_sigmoid(out[-1])))

    def _shift_in(self, enc: np.ndarray) -> None:
        self._enc[:-1] = self._enc[1:]
        self._enc[-1] = enc

    def push(self, row) -> list[tuple[int, LipFrame]]:
        """Add the next (81,) row; returns the frames that became ready (zero or one)."""
        r = np.asarray(row)
        if r.shape != (N_AUDIO_FEATURES,):
            raise ValueError(f"push needs one ({N_AUDIO_FEATURES},) audio observation row, got shape {r.shape}")
        if not np.issubdtype(r.dtype, np.number) or not np.isfinite(r).all():
            raise ValueError("audio observation rows must be finite numbers")
        self._shift_in(self.model._encode(r.astype(np.float64)))
        self._n_rows += 1
        if self._n_rows - 1 - self.model.lookahead_frames >= self._next:
            return [self._emit()]
        return []

    def flush(self) -> list[tuple[int, LipFrame]]:
        """The frames still pending at the end of the stream; then resets the streamer."""
        out = []
        end = self._n_rows - 1  # frame of the buffer's last row
        while self._next < self._n_rows:
            while end < self._next + self.model.lookahead_frames:
                self._shift_in(self._silence)
                end += 1
            out.append(self._emit())
        self.reset()
        return out


# ---------------------------------------------------------------------------------------------------- training
def _augment(x, gen, torch):
    """Random gain (exact on the features, per window) and noise on non-silent values; x (B, W, 81) raw rows."""
    b = x.shape[0]
    lo, hi = math.log(GAIN_RANGE[0]), math.log(GAIN_RANGE[1])
    ln_g = torch.empty(b, 1, 1).uniform_(lo, hi, generator=gen)
    mel, rms = x[..., :-1], x[..., -1:]
    exact = torch.log1p(torch.exp(2 * ln_g) * torch.expm1(10.0 * mel)) / 10.0  # mel power x g^2 above the floor
    mel = torch.where(mel > 3.0, mel + 0.2 * ln_g, exact)  # far above the floor (expm1 would overflow): a shift
    rms_on = rms > 0
    rms = torch.where(rms_on, torch.clamp(rms + ln_g * (20.0 / math.log(10.0) / RMS_SCALE_DB), min=0.0), rms)
    y = torch.cat([mel, rms], dim=-1)
    on = y > 0
    noise = torch.randn(y.shape, generator=gen) * NOISE_STD
    return torch.where(on, torch.clamp(y + noise, min=0.0), y)


def _stack(clips: list[_Clip], model: AudioToLips) -> dict[str, np.ndarray]:
    """Padded rows of all clips end to end (window of sample i: rows start[i] .. start[i] + W - 1) + targets."""
    C, L = model.context_frames, model.lookahead_frames
    rows, starts, lips, closure, rounded = [], [], [], [], []
    off = 0
    for c in clips:
        T = len(c.obs)
        rows += [np.zeros((C, N_AUDIO_FEATURES), np.float32), c.obs, np.zeros((L, N_AUDIO_FEATURES), np.float32)]
        starts.append(off + np.arange(T))
        off += C + T + L
        lips.append(c.lips.reshape(T, -1) / LANDMARK_SCALE_MM)
        closure.append(c.closure)
        rounded.append(c.rounded)
    return {"rows": np.concatenate(rows), "start": np.concatenate(starts), "lips": np.concatenate(lips),
            "closure": np.concatenate(closure).astype(np.float32),
            "rounded": np.concatenate(rounded).astype(np.float32)}


def train_audio_to_lips(
    corpus_dir: str | Path,
    *,
    mode: str = "offline",
    seed: int = 0,
    max_minutes: float = 5.0,
    epochs: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    threads: int = 1,
    arch: dict | None = None,
    settings: dict | None = None,
    evaluate_splits: tuple[str, ...] = ("heldout_sentence", "heldout_language"),
) -> tuple[AudioToLips, dict]:
    """Train a model of ``mode`` on the ``train`` split of ``corpus_dir``; returns ``(model, info)``.

    ``epochs`` (passes over the training frames) fixes the number of steps (reproducible for a seed); without it
    training runs for ``max_minutes`` with the learning rate scheduled on elapsed time. ``threads`` torch threads
    (at most 2) are used during training and the previous setting restored. ``settings`` overrides
    ``TRAIN_DEFAULTS``, ``arch`` ``ARCH_DEFAULTS``. At the end the model is evaluated on ``evaluate_splits`` (those
    the corpus has). ``info``: ``train_time_s``, ``steps``, ``epochs``, ``n_train_frames``, ``n_train_items``,
    ``final_loss``, ``loss_history`` (mean loss per 5 % of training), ``metrics`` ({split: metrics}); the same
    is stored in ``model.meta`` together with the corpus's held-out keys and the settings.
    """
    torch = _torch()
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if epochs is None and not max_minutes > 0:
        raise ValueError("max_minutes must be > 0 (or give epochs)")
    if epochs is not None and (isinstance(epochs, bool) or int(epochs) != epochs or epochs < 1):
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not 1 <= int(threads) <= 2:
        raise ValueError(f"threads must be 1 or 2, got {threads!r}")
    cfg = {**TRAIN_DEFAULTS, **(settings or {})}
    unknown = set(cfg) - set(TRAIN_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(TRAIN_DEFAULTS)}")
    say = log or (lambda msg: None)
    manifest = _read_manifest(corpus_dir)
    clips = _load_clips(corpus_dir, "train", progress=progress)
    model = AudioToLips(mode, arch=arch, seed=seed)
    data = _stack(clips, model)
    n = len(data["start"])
    rows_t = torch.from_numpy(data["rows"])
    lips_t, clo_t, rnd_t = (torch.from_numpy(data[k]) for k in ("lips", "closure", "rounded"))
    start_t = torch.from_numpy(data["start"])
    net = model.net
    with torch.no_grad():  # input statistics over the clip frames (padding excluded)
        frames = torch.from_numpy(np.concatenate([c.obs for c in clips]))
        net.in_mean.copy_(frames.mean(0))
        net.in_std.copy_(frames.std(0).clamp_min(1e-3))
    bs = int(cfg["batch_size"])
    steps_per_epoch = max(1, n // bs)
    total_steps = None if epochs is None else int(epochs) * steps_per_epoch
    opt = torch.optim.AdamW(net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    bce_c = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(cfg["closure_pos_weight"]))
    bce_r = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(cfg["rounded_pos_weight"]))
    gen = torch.Generator().manual_seed(seed)
    offsets = torch.arange(model.window)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    budget = max_minutes * 60.0
    from tqdm import tqdm

    bar = tqdm(total=total_steps if total_steps else int(budget), desc=f"train {mode}",
               unit="step" if total_steps else "s", disable=not progress)
    hist: list[float] = []
    bucket: list[float] = []
    t0 = time.perf_counter()
    step = 0
    net.train()
    try:
        while True:
            elapsed = time.perf_counter() - t0
            frac = step / total_steps if total_steps else elapsed / budget
            if frac >= 1.0:
                break
            for g in opt.param_groups:
                g["lr"] = cfg["lr"] * 0.5 * (1.0 + math.cos(math.pi * frac))
            idx = torch.randint(0, n, (bs,), generator=gen)
            x = rows_t[start_t[idx, None] + offsets]
            x = _augment(x, gen, torch)
            out = net(x)
            loss = (cfg["lip_weight"] * torch.nn.functional.mse_loss(out[:, :-2], lips_t[idx])
                    + bce_c(out[:, -2], clo_t[idx]) + bce_r(out[:, -1], rnd_t[idx]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            bucket.append(float(loss.detach()))
            if total_steps:
                bar.update(1)
                done_frac = step / total_steps
            else:
                now = time.perf_counter() - t0
                bar.update(int(now) - bar.n)
                done_frac = now / budget
            if done_frac >= (len(hist) + 1) / 20 or (total_steps and step == total_steps):
                hist.append(float(np.mean(bucket)))
                bucket = []
                say(f"{mode} step {step} ({step / steps_per_epoch:.1f} epochs) loss {hist[-1]:.4f}")
    finally:
        bar.close()
        torch.set_num_threads(old_threads)
    train_time = time.perf_counter() - t0
    net.eval()
    model.invalidate()
    if bucket:
        hist.append(float(np.mean(bucket)))
    info: dict[str, Any] = {
        "train_time_s": round(train_time, 2), "steps": step, "epochs": round(step / steps_per_epoch, 3),
        "n_train_frames": int(n), "n_train_items": len(clips), "final_loss": hist[-1] if hist else float("nan"),
        "loss_history": hist,
    }
    metrics = {}
    for split in evaluate_splits:
        if manifest.get("splits", {}).get(split):
            metrics[split] = evaluate_audio_to_lips(model, corpus_dir, split)
            m = metrics[split]
            say(f"{mode} {split}: lip error {m['lip_error_mm']:.3f} mm (neutral {m['neutral_lip_error_mm']:.3f}), "
                f"aperture corr {m['aperture_corr']:.3f}, closure P/R {m['closure_precision']:.2f}/"
                f"{m['closure_recall']:.2f}")
    info["metrics"] = metrics
    model.meta = {
        "corpus_args": _corpus_args(corpus_dir, manifest),
        **heldout_keys(manifest),
        "seed": int(seed), "settings": {k: float(v) for k, v in cfg.items()}, "arch": dict(model.arch),
        "augmentation": {"gain_range": list(GAIN_RANGE), "noise_std": NOISE_STD},
        "n_params": model.n_params, "torch_threads": int(threads), **info,
    }
    return model, info


def _corpus_args(corpus_dir: str | Path, manifest: dict) -> dict:
    """The build arguments of a corpus: those of its ``complete.json`` marker (:func:`train_corpus_dir`), else
    what the manifest tells."""
    try:
        return dict(json.loads((Path(corpus_dir) / "complete.json").read_text(encoding="utf-8"))["args"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    n_speech = sum(1 for it in manifest["items"] if it["kind"] == "speech")
    songs = any(it["kind"] == "song" for it in manifest["items"])
    return {"n_utterances": n_speech, "langs": manifest.get("languages"),
            "heldout_langs": manifest.get("heldout_languages"), "include_songs": songs, "seed": manifest.get("seed")}


# ---------------------------------------------------------------------------------------------------- evaluation
def _prf(pred: np.ndarray, true: np.ndarray) -> tuple[float, float, float]:
    tp = float(np.sum(pred & true))
    p = tp / max(1.0, float(pred.sum()))
    r = tp / max(1.0, float(true.sum()))
    return p, r, (2 * p * r / (p + r) if p + r > 0 else 0.0)


def _event_recall(pred: np.ndarray, true: np.ndarray, tol: int = 1) -> tuple[int, int]:
    """(detected, total) runs of ``true`` with a ``pred`` frame within +-tol frames."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], true.astype(np.int8), [0]])))
    hit = 0
    for a, b in zip(edges[::2], edges[1::2]):
        hit += bool(pred[max(0, a - tol):b + tol].any())
    return hit, len(edges) // 2


def shape_error_mm(pred_lips: np.ndarray, target_lips: np.ndarray) -> np.ndarray:
    """(T,) lip shape error: mean over the 40 points of the Euclidean error after removing the mean difference."""
    d = np.asarray(pred_lips, dtype=np.float64) - np.asarray(target_lips, dtype=np.float64)
    d = d - d.mean(axis=-2, keepdims=True)
    return np.linalg.norm(d, axis=-1).mean(axis=-1)


def evaluate_audio_to_lips(model: AudioToLips, corpus_dir: str | Path, split: str,
                           ids: list[str] | None = None) -> dict:
    """Metrics of ``model`` on the items of ``split`` (``"all"`` for every item; ``ids`` restricts to those items)
    of a corpus: the table of the module docstring."""
    clips = _load_clips(corpus_dir, split)
    if ids is not None:
        want = set(ids)
        missing = want - {c.id for c in clips}
        if missing:
            raise ValueError(f"item(s) {', '.join(sorted(missing))} are not in split {split!r} of {corpus_dir}")
        clips = [c for c in clips if c.id in want]
    err, neutral, ap_p, ap_t, cp, ct, rp, rt = [], [], [], [], [], [], [], []
    hits = total = 0
    for c in clips:
        pred = model.predict(c.obs)
        err.append(shape_error_mm(pred.lips_mm, c.lips))
        neutral.append(shape_error_mm(np.zeros_like(c.lips), c.lips))
        ap_p.append(pred.aperture_mm)
        ap_t.append(c.aperture)
        cp.append(pred.closure_p > 0.5)
        ct.append(c.closure)
        rp.append(pred.rounded_p > 0.5)
        rt.append(c.rounded)
        h, t = _event_recall(cp[-1], c.closure)
        hits, total = hits + h, total + t
    e, ne = float(np.concatenate(err).mean()), float(np.concatenate(neutral).mean())
    a_p, a_t = np.concatenate(ap_p), np.concatenate(ap_t)
    corr = float(np.corrcoef(a_p, a_t)[0, 1]) if a_p.std() > 0 and a_t.std() > 0 else 0.0
    c_p, c_r, c_f = _prf(np.concatenate(cp), np.concatenate(ct))
    r_p, r_r, r_f = _prf(np.concatenate(rp), np.concatenate(rt))
    return {
        "lip_error_mm": e, "neutral_lip_error_mm": ne, "lip_error_ratio": e / ne if ne > 0 else float("nan"),
        "aperture_corr": corr, "aperture_mae_mm": float(np.abs(a_p - a_t).mean()),
        "closure_precision": c_p, "closure_recall": c_r, "closure_f1": c_f,
        "closure_event_recall": hits / total if total else float("nan"),
        "rounded_precision": r_p, "rounded_recall": r_r, "rounded_f1": r_f,
        "n_items": len(clips), "n_frames": len(a_t),
    }


def train_shipped_weights(modes: tuple[str, ...] = MODES, out_dir: str | Path | None = None, *,
                          progress: bool = True, log: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Reproduce the shipped weights: train every mode on :func:`train_corpus_dir` (``SHIPPED_EPOCHS``, seed 0) and
    save them as ``AUDIO_TO_LIPS_FILES`` into ``out_dir`` (default: ``assets/weights/``). Returns the paths."""
    from .weights import shipped_weights_dir

    out = Path(out_dir) if out_dir is not None else shipped_weights_dir()
    corpus = train_corpus_dir(progress=progress)
    paths = {}
    for mode in modes:
        model, _ = train_audio_to_lips(corpus, mode=mode, seed=0, epochs=SHIPPED_EPOCHS, progress=progress, log=log)
        paths[mode] = model.save(out / AUDIO_TO_LIPS_FILES[mode])
    return paths


__all__ = [
    "ARCH_DEFAULTS",
    "GAIN_RANGE",
    "MODES",
    "MODE_WINDOWS",
    "NOISE_STD",
    "SHIPPED_EPOCHS",
    "TRAIN_CORPUS_ARGS",
    "TRAIN_CORPUS_NAME",
    "TRAIN_DEFAULTS",
    "AudioToLips",
    "LipFrame",
    "LipPrediction",
    "LipStreamer",
    "evaluate_audio_to_lips",
    "heldout_keys",
    "shape_error_mm",
    "train_audio_to_lips",
    "train_corpus_dir",
    "train_shipped_weights",
]
