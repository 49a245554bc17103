"""Audio -> lips: a small model from speech to what the lips must do, frame by frame, offline and streaming.

For every 30 fps frame ``k`` (time ``t_k = k / 30``) the model predicts, from a window of audio around ``t_k``:

| output | shape | meaning |
|---|---|---|
| ``lips_mm`` | (40, 3) | the 40 lip landmarks of the viseme model (displacement from the neutral face, mm) |
| ``closure_p`` | () | probability that the lips must be sealed (a B/P/M closure frame) |
| ``rounded_p`` | () | probability of a rounded frame (W/OO/O-class: the lip track's rounding floor) |
| ``open_p`` | () | probability that an open vowel sounds (the jaw must open) |
| ``viseme_p`` | (15,) | the viseme sounding (``facetwin.audio.visemes.VISEMES``: sil + 14) |

Front end (:mod:`facetwin.agents.audio_frontend`): 40 log-mel bands and the RMS level at 90 rows/s (3 rows per
30 fps frame), **normalised per recording** (offline: the whole recording's speech statistics; streaming:
running ones, so the stream needs no future), plus a silence flag: 42 values a row.

Network (``ARCH_DEFAULTS``; 0.44 M parameters offline, 0.34 M streaming): the window of rows ``3k - C .. 3k + L`` (``C = context_rows``,
``L = lookahead_rows``; rows outside the recording are silence), each row through a shared ``Linear(42, 24) +
SiLU`` after standardisation, flattened, two hidden layers ``Linear + SiLU`` (256), a linear head of 138 outputs
(120 lip coordinates in units of ``LANDMARK_SCALE_MM``, 3 logits, 15 viseme logits). Inference runs in float64
numpy (batched for :meth:`AudioToLips.predict_audio`, frame by frame for :meth:`AudioToLips.streamer`, which
reproduces ``predict_audio`` of the stream model to rounding).

| mode | C | L | heard past ``t_k`` | use |
|---|---|---|---|---|
| ``"offline"`` | 30 rows | 24 rows | 267 ms + 12.5 ms window | files: the whole recording is known |
| ``"stream"`` | 36 rows | 1 row | 11 ms + 12.5 ms window | live audio (the pipeline commands 2 frames ahead: <= 100 ms in all) |

Training and its corpus: :mod:`facetwin.agents.train_audio_to_lips`. Checkpoints (:meth:`AudioToLips.save`,
``torch.load(path, weights_only=True)``): a dict with ``format`` (``"facetwin.audio_to_lips"``), ``version`` (2),
``mode``, ``context_rows``, ``lookahead_rows``, ``arch``, ``frontend`` (the front-end settings), ``state_dict``
(tensors; input statistics and the streaming prior included) and ``meta`` (plain data: training corpus, settings,
measured metrics). The shipped weights: ``assets/weights/audio_to_lips_{offline,stream}.pt``.

>>> model = AudioToLips.load_shipped("offline")
>>> pred = model.predict_audio(audio, sr)           # LipPrediction: lips_mm (T, 40, 3), closure_p, rounded_p ...
>>> s = AudioToLips.load_shipped("stream").streamer()
>>> for k, frame in s.push(chunk): ...              # 16 kHz samples in, 30 fps frames out as soon as they are ready
>>> rest = s.flush()
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin.audio.lip_track import measures_from_landmarks
from facetwin.audio.streaming_features import StreamingFeatures
from facetwin.audio.visemes import VISEMES
from facetwin.sim.rates import check_audio

from .audio_frontend import (
    FLOOR,
    FPS,
    MEL_GAIN,
    N_FEATURES,
    N_MELS,
    ROW_FPS,
    ROWS_PER_FRAME,
    SR,
    WIN_S,
    StreamNormaliser,
    extractor,
    normalise_offline,
    normalise_stream,
    raw_features,
    unscaled_rms,
)
from .mouth_plan import MouthPlan
from .weights import AUDIO_TO_LIPS_FILES, load_checkpoint, load_state, save_torch_atomic, shipped_path

MODES = ("offline", "stream")
LANDMARK_SCALE_MM = 10.0
N_LIPS = 40
N_VISEMES = len(VISEMES)
HEADS = ("closure", "rounded", "open")
N_OUT = N_LIPS * 3 + len(HEADS) + N_VISEMES
MODE_WINDOWS: dict[str, dict[str, int]] = {
    "offline": {"context_rows": 30, "lookahead_rows": 24},
    "stream": {"context_rows": 36, "lookahead_rows": 1},
}
MAX_STREAM_LOOKAHEAD_ROWS = 1  # 11 ms + 12.5 ms window: the stream's command lead (67 ms) keeps all <= 100 ms
ARCH_DEFAULTS: dict[str, int] = {"frame_dim": 24, "hidden": 256, "n_hidden": 2}
CHECKPOINT_FORMAT = "facetwin.audio_to_lips"
CHECKPOINT_VERSION = 2


# ---------------------------------------------------------------------------------------------------- network
def _torch():
    import torch

    return torch


def _make_net(window: int, frame_dim: int, hidden: int, n_hidden: int):
    """The torch module; input (B, W, 42) normalised rows, output (B, 138)."""
    torch = _torch()
    nn = torch.nn

    class LipNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("in_mean", torch.zeros(N_FEATURES))
            self.register_buffer("in_std", torch.ones(N_FEATURES))
            self.register_buffer("prior_mu", torch.zeros(N_MELS))  # streaming: the starting log-mel mean
            self.register_buffer("prior_level", torch.tensor(-30.0))
            self.register_buffer("prior_sd", torch.ones(N_MELS))
            self.frame = nn.Linear(N_FEATURES, frame_dim)
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


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------------------------------------------- outputs
@dataclass
class LipPrediction(MouthPlan):
    """Per-frame outputs of :meth:`AudioToLips.predict_audio` (frame ``k`` at ``k / 30`` s): a mouth plan
    (``lips_mm`` (T, 40, 3), ``closure_p``, ``rounded_p``, ``open_p`` (T,)), the visemes and the lips' measures."""

    viseme_p: np.ndarray  # (T, 15)
    aperture_mm: np.ndarray  # (T,) of lips_mm (measures_from_landmarks)
    width_mm: np.ndarray  # (T,)
    protrusion_mm: np.ndarray  # (T,)


@dataclass
class LipFrame:
    """One frame of a :class:`LipStreamer`."""

    lips_mm: np.ndarray  # (40, 3)
    closure_p: float
    rounded_p: float
    open_p: float
    viseme_p: np.ndarray  # (15,)


def _split(out: np.ndarray) -> dict[str, np.ndarray]:
    n = N_LIPS * 3
    return {"lips_mm": out[..., :n].reshape(*out.shape[:-1], N_LIPS, 3) * LANDMARK_SCALE_MM,
            "closure_p": _sigmoid(out[..., n]), "rounded_p": _sigmoid(out[..., n + 1]),
            "open_p": _sigmoid(out[..., n + 2]), "viseme_p": _softmax(out[..., n + 3:])}


def _prediction(out: np.ndarray) -> LipPrediction:
    d = _split(out)
    meas = measures_from_landmarks(d["lips_mm"]) if len(out) else {k: np.zeros(0) for k in
                                                                    ("aperture_mm", "width_mm", "protrusion_mm")}
    return LipPrediction(**d, aperture_mm=meas["aperture_mm"], width_mm=meas["width_mm"],
                         protrusion_mm=meas["protrusion_mm"])


def _check_audio(audio, sr) -> np.ndarray:
    from facetwin.audio.io import resample

    if sr is None:
        raise ValueError("sr must be a positive integer rate in Hz, got None")
    x = check_audio(audio, sr, allow_empty=True)
    return resample(x, int(sr), SR) if int(sr) != SR else x


def n_frames(n_samples: int) -> int:
    """30 fps frames of ``n_samples`` at 16 kHz (the frame convention of :mod:`facetwin.audio.features`)."""
    from facetwin.sim.rates import num_frames

    return num_frames(int(n_samples), SR, FPS)


# ---------------------------------------------------------------------------------------------------- model
class AudioToLips:
    """Audio -> lip landmarks, closure, rounding, opening and visemes (see the module docstring)."""

    def __init__(self, mode: str = "offline", *, context_rows: int | None = None, lookahead_rows: int | None = None,
                 arch: dict | None = None, meta: dict | None = None, seed: int = 0) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        win = MODE_WINDOWS[mode]
        self.mode = mode
        self.context_rows = int(win["context_rows"] if context_rows is None else context_rows)
        self.lookahead_rows = int(win["lookahead_rows"] if lookahead_rows is None else lookahead_rows)
        if self.context_rows < 0 or self.lookahead_rows < 0:
            raise ValueError("context_rows and lookahead_rows must be >= 0")
        if mode == "stream" and self.lookahead_rows > MAX_STREAM_LOOKAHEAD_ROWS:
            raise ValueError(f"stream mode allows at most {MAX_STREAM_LOOKAHEAD_ROWS} lookahead row(s), "
                             f"got {self.lookahead_rows}")
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
        return self.context_rows + 1 + self.lookahead_rows

    @property
    def lookahead_s(self) -> float:
        """Audio heard past a frame's time: the window's lookahead plus half a feature window."""
        return (self.lookahead_rows + 0.0) / ROW_FPS + extractor().spectral_lookahead / SR

    @property
    def n_params(self) -> int:
        return int(sum(p.numel() for p in self.net.parameters()))

    @property
    def prior(self) -> tuple[np.ndarray, float, np.ndarray]:
        """(log-mel mean, level dB, spread): the normalisation of a recording with no speech yet / at all."""
        return (self.net.prior_mu.detach().double().numpy().copy(), float(self.net.prior_level),
                self.net.prior_sd.detach().double().numpy().copy())

    # ---------------------------------------------------------------------------------------- inference
    def _params(self) -> list[np.ndarray]:
        if self._np is None:
            sd = {k: v.detach().cpu().double().numpy() for k, v in self.net.state_dict().items()}
            layers = [(sd["frame.weight"].T.copy(), sd["frame.bias"])]
            layers += [(sd[f"hidden.{i}.weight"].T.copy(), sd[f"hidden.{i}.bias"]) for i in range(self.arch["n_hidden"])]
            layers.append((sd["head.weight"].T.copy(), sd["head.bias"]))
            self._np = [1.0 / sd["in_std"], -sd["in_mean"] / sd["in_std"], *[a for ly in layers for a in ly]]
        return self._np

    def invalidate(self) -> None:
        """Forget the numpy copy of the weights (call after changing ``net`` in place)."""
        self._np = None

    def _encode(self, rows: np.ndarray) -> np.ndarray:
        scale, shift, wf, bf = self._params()[:4]
        return _silu((rows * scale + shift) @ wf + bf)

    def _head(self, h: np.ndarray) -> np.ndarray:
        rest = self._params()[4:]
        for i in range(0, len(rest) - 2, 2):
            h = _silu(h @ rest[i] + rest[i + 1])
        return h @ rest[-2] + rest[-1]

    def normalise(self, logmel: np.ndarray, rms_db: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised rows and the padding row of this mode (offline: whole recording; stream: causal)."""
        if self.mode == "offline":
            return normalise_offline(logmel, rms_db, self.prior)
        return normalise_stream(logmel, rms_db, self.prior)

    def frame_windows(self, rows: np.ndarray, pad: np.ndarray, n_out: int) -> np.ndarray:
        """(n_out, W, 42) windows: frame ``k`` sees rows ``3k - C .. 3k + L`` (``pad`` outside); a view."""
        C, L = self.context_rows, self.lookahead_rows
        need = ROWS_PER_FRAME * max(n_out - 1, 0) + L + 1
        tail = max(0, need - len(rows))
        full = np.concatenate([np.tile(pad, (C, 1)), rows, np.tile(pad, (tail, 1))])
        win = np.lib.stride_tricks.sliding_window_view(full, (self.window, N_FEATURES))[:, 0]
        return win[: ROWS_PER_FRAME * n_out: ROWS_PER_FRAME][:n_out]

    def predict_rows(self, rows: np.ndarray, pad: np.ndarray, n_out: int) -> LipPrediction:
        """Outputs for ``n_out`` frames from normalised rows (batched)."""
        w = self.frame_windows(rows, pad, n_out)
        out = np.zeros((0, N_OUT))
        if len(w):
            enc = self._encode(np.asarray(w))
            out = np.concatenate([self._head(enc[i:i + 4096].reshape(len(enc[i:i + 4096]), -1))
                                  for i in range(0, len(enc), 4096)])
        return _prediction(out)

    def predict_audio(self, audio, sr: int = SR) -> LipPrediction:
        """Every 30 fps frame of mono ``audio`` at ``sr`` Hz (resampled to 16 kHz)."""
        x = _check_audio(audio, sr)
        logmel, rms = raw_features(x)
        rows, pad = self.normalise(logmel, rms)
        return self.predict_rows(rows, pad, n_frames(len(x)))

    def streamer(self) -> LipStreamer:
        """A live streamer (16 kHz chunks in, frames out) that reproduces :meth:`predict_audio` of this model."""
        return LipStreamer(self)

    # ---------------------------------------------------------------------------------------- files
    def checkpoint(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "mode": self.mode,
            "context_rows": self.context_rows, "lookahead_rows": self.lookahead_rows, "arch": dict(self.arch),
            "frontend": {"row_fps": ROW_FPS, "n_mels": N_MELS, "win_s": WIN_S, "floor": FLOOR},
            "state_dict": {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()},
            "meta": self.meta,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the checkpoint atomically."""
        return save_torch_atomic(self.checkpoint(), path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> AudioToLips:
        """Load a checkpoint written by :meth:`save` (``torch.load(weights_only=True)``)."""
        ck = load_checkpoint(path, "audio-to-lips")
        if ck.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not an audio-to-lips checkpoint (format {CHECKPOINT_FORMAT!r})")
        if ck.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"{path}: checkpoint version {ck.get('version')!r}, this code reads {CHECKPOINT_VERSION}; "
                             "retrain with `facetwin train-lipsync`")
        try:
            model = cls(ck["mode"], context_rows=ck["context_rows"], lookahead_rows=ck["lookahead_rows"],
                        arch=ck["arch"], meta=ck["meta"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: a damaged audio-to-lips checkpoint ({type(e).__name__}: {e})") from None
        load_state(model.net, ck.get("state_dict"), path, "audio-to-lips")
        model.net.eval()
        return model

    @classmethod
    def load_shipped(cls, mode: str = "offline") -> AudioToLips:
        """The shipped weights of ``mode`` (``assets/weights/audio_to_lips_<mode>.pt``)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        return cls.load(shipped_path(AUDIO_TO_LIPS_FILES[mode]))

    def __repr__(self) -> str:
        return (f"AudioToLips(mode={self.mode!r}, context_rows={self.context_rows}, "
                f"lookahead_rows={self.lookahead_rows}, params={self.n_params})")


class LipStreamer:
    """Live inference: ``push(chunk)`` 16 kHz mono samples, get the frames that became ready as ``(k, LipFrame)``.

    Frame ``k`` is ready once row ``3k + L`` is complete (audio up to ``t_k + model.lookahead_s``); :meth:`flush`
    ends the stream (silence past the end, as the offline form), returns the rest and resets. With the stream
    model the frames equal :meth:`AudioToLips.predict_audio` to rounding (the offline model normalises with the
    whole recording, which a stream cannot)."""

    def __init__(self, model: AudioToLips) -> None:
        self.model = model
        self._features = StreamingFeatures(SR, fps=ROW_FPS, n_mels=N_MELS, win_s=WIN_S, what=("logmel", "rms"))
        self.reset()

    def reset(self) -> None:
        m = self.model
        self._norm = StreamNormaliser(m.prior)
        self._features.reset()
        pad = self._norm.pad_row()
        self._enc = np.tile(m._encode(pad), (m.window, 1))  # encodings of the window, oldest first
        self._rows = 0  # rows shifted in (recording rows)
        self._next = 0  # next frame to emit
        self._samples = 0

    def _emit(self) -> tuple[int, LipFrame]:
        d = _split(self.model._head(self._enc.reshape(-1)))
        k = self._next
        self._next += 1
        return k, LipFrame(lips_mm=d["lips_mm"], closure_p=float(d["closure_p"]), rounded_p=float(d["rounded_p"]),
                           open_p=float(d["open_p"]), viseme_p=d["viseme_p"])

    def _shift_in(self, enc: np.ndarray) -> None:
        self._enc[:-1] = self._enc[1:]
        self._enc[-1] = enc

    def _ready(self, total_frames: int | None) -> list[tuple[int, LipFrame]]:
        out = []
        L = self.model.lookahead_rows
        while (total_frames is None or self._next < total_frames) and \
                self._rows - 1 >= ROWS_PER_FRAME * self._next + L:
            # the window of frame `next` ends at row 3 next + L; the buffer ends at row self._rows - 1
            back = self._rows - 1 - (ROWS_PER_FRAME * self._next + L)
            if back == 0:
                out.append(self._emit())
            else:  # more rows arrived than frames were emitted: cannot happen with push() below
                raise AssertionError("streamer fell behind")  # pragma: no cover
        return out

    def _push_rows(self, logmel: np.ndarray, rms: np.ndarray, total_frames: int | None) -> list:
        out = []
        rows = self._norm(logmel, rms)
        for r in rows:
            self._shift_in(self.model._encode(r))
            self._rows += 1
            out += self._ready(total_frames)
        return out

    def push(self, chunk: np.ndarray) -> list[tuple[int, LipFrame]]:
        """Feed 16 kHz mono samples; returns the ``(k, LipFrame)`` frames that became ready."""
        x = np.asarray(chunk, dtype=np.float64).ravel()
        if not np.isfinite(x).all():
            raise ValueError("audio contains NaN or inf")
        self._samples += len(x)
        f = self._features.push(x * MEL_GAIN)
        return self._push_rows(f.logmel, unscaled_rms(f.rms_db), None) if len(f.t) else []

    def flush(self) -> list[tuple[int, LipFrame]]:
        """The frames still pending at the end of the stream; then resets for a new stream."""
        total = n_frames(self._samples)
        f = self._features.flush()
        out = self._push_rows(f.logmel, unscaled_rms(f.rms_db), total) if len(f.t) else []
        pad_enc = self.model._encode(self._norm.pad_row())
        while self._next < total:
            self._shift_in(pad_enc)
            self._rows += 1
            out += self._ready(total)
        self.reset()
        return out


__all__ = ["ARCH_DEFAULTS", "HEADS", "MODES", "MODE_WINDOWS", "N_OUT", "AudioToLips", "LipFrame", "LipPrediction",
           "LipStreamer", "n_frames"]
