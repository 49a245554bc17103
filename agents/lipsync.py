"""Audio to motor commands: the learned lip-sync pipeline, offline and streaming, and its ``.npz`` output.

The pipeline of the physical robot, in the twin:

1. audio -> features (:func:`facetwin.audio.features.extract_features`, 30 fps) -> the observation rows of
   :func:`facetwin.envs.lip_sync.audio_obs_features`;
2. audio -> lips (:class:`facetwin.agents.audio_to_lips.AudioToLips`): per frame the target lip shape (40 landmarks)
   and the probabilities of a bilabial seal and of rounding;
3. lips -> motors (:class:`facetwin.agents.self_model.SelfModel`, the inverse self-model learned from babbling in
   the mirror): the command of control period ``k`` is the inverse model's answer for the target of frame
   ``j = k + lead_frames`` (the servos and the skin need ~2 frames to get there), with the previous command as
   context. The target is chosen per frame:

   | frame | target given to the inverse model |
   |---|---|
   | a likely seal (``closure_p > seal_threshold`` on any frame ``j - seal_back .. j + seal_frames - 1``) | the pressed B/P/M pose :data:`SEAL_POSE` (a ~30 ms closure is one frame; the face needs ~3 to shut from a vowel) |
   | likely rounded (``rounded_p > round_threshold``), ``round_mode="bank"`` | the nearest babbled lip shape at most :data:`ROUNDED_WIDTH` of the neutral width wide |
   | otherwise | the predicted shape pulled ``bank_blend`` of the way to the nearest babbled shape (:meth:`LipSyncer.project`) |

   ``round_mode="pose"`` instead pushes the mouth corners in (:data:`ROUNDING_POSE`) on rounded frames: more
   rounding, more shape error. Measured on 40 held-out clips (``facetwin evaluate``-style scoring): no rounding
   assist: lip error 1.78 mm, W/OO rounding 0 %; ``"bank"``: 1.95 mm, ~75 %; ``"pose"``: 2.13 mm, 86 %. The face
   rounds only by opening (the ``"oo"`` expression opens it 11 mm), which the viseme targets do not.

Two modes, same steps:

| mode | audio model | lookahead of a command | use |
|---|---|---|---|
| ``"offline"`` | offline weights (wide window) | the whole file is known | files, videos, evaluation |
| ``"stream"`` | streaming weights | ``lead_frames + lookahead_frames`` frames <= 100 ms | live audio: :class:`LipSyncStream` |

The command of period ``k`` in stream mode uses audio up to ``t_k + 100 ms`` (+ the 33 ms half feature window):
a live robot plays its audio that much later than it hears it (or speaks its own synthesized audio with that
buffer). :meth:`LipSyncer.controls` in stream mode computes exactly what :class:`LipSyncStream` emits frame by
frame (tested).

Output of ``facetwin lipsync`` (``.npz``, keys :data:`LIPSYNC_NPZ_KEYS`; ``T`` frames at 30 fps):

| key | shape, dtype | content |
|---|---|---|
| ``fps`` | () float | 30 |
| ``t`` | (T,) float64 | frame times, ``k / fps`` s |
| ``ctrl`` | (T, 26) float32 | normalized motor commands in actuator order (command of period ``k``) |
| ``actuators`` | (26,) str | actuator names (``assets/data/actuators.csv`` order) |
| ``aperture_mm``, ``width_mm``, ``protrusion_mm`` | (T,) float32 | measured on the simulated face driven by ``ctrl`` (end of period ``k``) |
| ``landmarks_mm`` | (T, N, 3) float32 | all schema landmarks of the simulated face, head frame, mm |
| ``landmark_ids`` | (N,) int64 | MediaPipe FaceMesh ids of the landmark rows |
| ``target_lips_mm`` | (T, 40, 3) float32 | the audio model's lip targets (displacement from neutral, ids ``lip_landmark_ids``) |
| ``closure_p``, ``rounded_p`` | (T,) float32 | the audio model's seal / rounding probabilities |
| ``mode``, ``variant``, ``audio``, ``text``, ``lang`` | () str | how it was made |

>>> syncer = LipSyncer("offline")                          # shipped weights
>>> result = syncer.run_audio(audio, sr)                    # commands + the face they produce
>>> save_lipsync_npz("out.npz", result)
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facetwin.audio.features import StreamingFeatures, extract_features
from facetwin.audio.io import resample
from facetwin.audio.timeline import Timeline
from facetwin.audio.visemes import lip_track
from facetwin.envs.lip_sync import audio_obs_features
from facetwin.sim.model import FaceModel
from facetwin.sim.playback import Playback, play

MODES = ("offline", "stream")
FPS = 30.0
FEATURE_SR = 16000
#: how far ahead (frames) each mode commands the face, and the seal rule (chosen with `facetwin evaluate`)
DEFAULT_LEAD_FRAMES = {"offline": 2, "stream": 2}
DEFAULT_SEAL_FRAMES = {"offline": 2, "stream": 1}
DEFAULT_SEAL_BACK = {"offline": 1, "stream": 1}
DEFAULT_SEAL_THRESHOLD = 0.5
DEFAULT_ROUND_THRESHOLD = 0.5
DEFAULT_ROUND_STRENGTH = 1.0
DEFAULT_BANK_BLEND = 0.5
ROUND_MODES = ("bank", "pose")
#: round_mode "bank": a rounded frame's target is the nearest babbled lip shape at most this wide (x neutral width)
ROUNDED_WIDTH = 0.8
MAX_STREAM_LOOKAHEAD_S = 0.1

LIPSYNC_NPZ_KEYS = {
    "fps": "() frames per second (30)",
    "t": "(T,) frame times in seconds, k / fps",
    "ctrl": "(T, 26) float32 normalized motor commands, actuator order",
    "actuators": "(26,) str actuator names",
    "aperture_mm": "(T,) float32 measured midline lip aperture of the simulated face",
    "width_mm": "(T,) float32 measured mouth width",
    "protrusion_mm": "(T,) float32 measured lip protrusion vs neutral",
    "landmarks_mm": "(T, N, 3) float32 simulated landmarks, head frame",
    "landmark_ids": "(N,) int64 MediaPipe ids of the landmark rows",
    "target_lips_mm": "(T, 40, 3) float32 lip targets of the audio model (displacement from neutral)",
    "closure_p": "(T,) float32 seal probability",
    "rounded_p": "(T,) float32 rounding probability",
    "mode": "() str offline | stream",
    "variant": "() str face variant",
    "audio": "() str the input audio file ('' when not from a file)",
    "text": "() str the transcript ('' when none)",
    "lang": "() str language code ('' when unknown)",
}


#: the command of a sealed frame (B/P/M), on top of rest: the ``"mm"`` expression (lower lip pushed up against the
#: upper) pressed harder, so that the lips meet sooner from an open vowel (the servos move in proportion to the
#: remaining error: from a 13 mm opening ~2 mm after 3 frames instead of 3.2 mm; settled they press to -1.5 mm).
SEAL_POSE = {"lip_lower_depress_R": -1.0, "lip_lower_depress_L": -1.0,
             "lip_upper_raise_R": -0.5, "lip_upper_raise_L": -0.5}


def seal_controls(rest: np.ndarray, names: list[str]) -> np.ndarray:
    """The commands of :data:`SEAL_POSE` (lips pressed together) on top of ``rest``."""
    u = np.array(rest, dtype=float)
    for name, value in SEAL_POSE.items():
        u[names.index(name)] = value
    return u


#: the lip actuators a rounded frame (W/OO) moves toward these values, on top of the inverse model's answer. The
#: corners pushed in narrow this face's mouth by 25 % (settled) and open it least (6 mm; the whole "oo" expression,
#: with the pucker, opens it 11 mm).
ROUNDING_POSE = {"lip_corner_pull_R": -1.0, "lip_corner_pull_L": -1.0}


def rounding_overrides(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(columns, values) of :data:`ROUNDING_POSE` in the actuator order ``names``."""
    cols = [names.index(n) for n in ROUNDING_POSE]
    return np.array(cols), np.array([ROUNDING_POSE[names[c]] for c in cols], dtype=float)


@dataclass
class LipSyncResult:
    """Commands for ``T`` frames and what produced them (``playback``: the simulated face, when played)."""

    ctrl: np.ndarray  # (T, 26)
    target_lips_mm: np.ndarray  # (T, 40, 3)
    closure_p: np.ndarray  # (T,)
    rounded_p: np.ndarray  # (T,)
    mode: str
    fps: float = FPS
    inference_s: float = 0.0  # compute time of the commands (features + models), seconds
    playback: Playback | None = None
    meta: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.ctrl)

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps


class LipSyncer:
    """Audio -> (T, 26) motor commands with the shipped (or given) self-model and audio-to-lips weights."""

    def __init__(
        self,
        mode: str = "offline",
        *,
        self_model=None,
        audio_model=None,
        weights_dir: str | Path | None = None,
        lead_frames: int | None = None,
        seal_frames: int | None = None,
        seal_back: int | None = None,
        seal_threshold: float = DEFAULT_SEAL_THRESHOLD,
        round_threshold: float | None = DEFAULT_ROUND_THRESHOLD,
        round_strength: float = DEFAULT_ROUND_STRENGTH,
        round_mode: str = "bank",
        bank_blend: float = DEFAULT_BANK_BLEND,
        bank=None,
    ):
        from facetwin.agents.audio_to_lips import AudioToLips
        from facetwin.agents.self_model import SelfModel
        from facetwin.agents.weights import AUDIO_TO_LIPS_FILES, SELF_MODEL_FILE

        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        self.mode = mode
        wd = Path(weights_dir) if weights_dir is not None else None
        if self_model is None:
            self_model = SelfModel.load(wd / SELF_MODEL_FILE) if wd else SelfModel.load_shipped()
        if audio_model is None:
            audio_model = AudioToLips.load(wd / AUDIO_TO_LIPS_FILES[mode]) if wd else AudioToLips.load_shipped(mode)
        self.self_model, self.audio_model = self_model, audio_model
        self.lead_frames = int(DEFAULT_LEAD_FRAMES[mode] if lead_frames is None else lead_frames)
        self.seal_frames = max(1, int(DEFAULT_SEAL_FRAMES[mode] if seal_frames is None else seal_frames))
        self.seal_back = max(0, int(DEFAULT_SEAL_BACK[mode] if seal_back is None else seal_back))
        self.seal_threshold = float(seal_threshold)
        self.round_threshold = None if round_threshold is None else float(round_threshold)
        self.round_strength = float(round_strength)
        if not 0.0 <= self.round_strength <= 1.0:
            raise ValueError(f"round_strength must be in [0, 1], got {round_strength}")
        if round_mode not in ROUND_MODES:
            raise ValueError(f"unknown round_mode {round_mode!r}; choose one of {', '.join(ROUND_MODES)}")
        self.round_mode = round_mode
        self.bank_blend = float(bank_blend)
        if not 0.0 <= self.bank_blend <= 1.0:
            raise ValueError(f"bank_blend must be in [0, 1], got {bank_blend}")
        self.bank = None
        if self.bank_blend > 0 or round_mode == "bank":
            from facetwin.agents.baselines import BabbleBank
            from facetwin.agents.weights import BABBLE_BANK_FILE

            self.bank = bank if bank is not None else (
                BabbleBank.load(wd / BABBLE_BANK_FILE) if wd else BabbleBank.load_shipped())
            self._bank_shapes = np.asarray(self.bank.shapes_mm, dtype=float)
            from facetwin.audio.visemes import lip_landmark_ids, neutral_lip_landmarks_mm

            ids, n0 = list(lip_landmark_ids()), neutral_lip_landmarks_mm()
            a, b = ids.index(61), ids.index(291)
            w = np.linalg.norm((self._bank_shapes[:, b] + n0[b]) - (self._bank_shapes[:, a] + n0[a]), axis=1)
            self._rounded_shapes = self._bank_shapes[w <= ROUNDED_WIDTH * np.linalg.norm(n0[b] - n0[a])]
        if self.lead_frames < 0:
            raise ValueError(f"lead_frames must be >= 0, got {lead_frames}")
        if mode == "stream":
            total = (self.lead_frames + self.seal_frames - 1 + int(audio_model.lookahead_frames)) / FPS
            if total > MAX_STREAM_LOOKAHEAD_S + 1e-9:
                raise ValueError(
                    f"stream mode looks {total * 1000:.0f} ms ahead (lead {self.lead_frames} + seal "
                    f"{self.seal_frames - 1} + model {audio_model.lookahead_frames} frames); the limit is "
                    f"{MAX_STREAM_LOOKAHEAD_S * 1000:.0f} ms"
                )
        from facetwin.sim.actuators import actuator_names, rest_controls

        self.actuator_names = list(actuator_names())
        self.rest = rest_controls().astype(float)
        self.seal_ctrl = seal_controls(self.rest, self.actuator_names)
        self.seal_lips = np.asarray(self_model.forward_lips(self.seal_ctrl), dtype=float)
        self._round_cols, self._round_vals = rounding_overrides(self.actuator_names)

    # ------------------------------------------------------------------------------------------ core
    def project(self, lips: np.ndarray) -> np.ndarray:
        """(T, 40, 3) lip targets -> the shapes the inverse model is asked for: the target's shape (mean over the 40
        points removed) moved ``bank_blend`` of the way to the nearest lip shape the face made while babbling.

        The audio model predicts the viseme model's lips, which this face cannot always make; the inverse model,
        trained on babbled shapes, answers shapes near them better (held-out clips: lip error 1.88 -> 1.73 mm)."""
        x = np.asarray(lips, dtype=float)
        x = x - x.mean(axis=-2, keepdims=True)
        if self.bank is None or len(x) == 0:
            return x
        near = self._bank_shapes[self.bank.nearest(x)]
        return (1.0 - self.bank_blend) * x + self.bank_blend * near

    @property
    def lookahead_frames(self) -> int:
        """Frames of audio beyond the commanded frame that one command needs."""
        return self.lead_frames + self.seal_frames - 1 + int(self.audio_model.lookahead_frames)

    def _targets(self, lips: np.ndarray, closure_p: np.ndarray, k: int, rounded_p: np.ndarray | None = None) -> np.ndarray:
        """The lip target of command ``k``: the seal when any prediction frame ``j - seal_back .. j + seal_frames - 1``
        (``j = k + lead``) is a likely closure, else the target of frame ``j``."""
        T = len(lips)
        j = min(k + self.lead_frames, T - 1)
        lo, hi = max(j - self.seal_back, 0), min(j + self.seal_frames, T)
        if closure_p[lo:hi].max() > self.seal_threshold:
            return self.seal_lips
        if (self.round_mode == "bank" and rounded_p is not None and self.round_threshold is not None
                and rounded_p[j] > self.round_threshold):
            d = ((self._rounded_shapes - lips[j]) ** 2).sum(axis=(1, 2))
            return self._rounded_shapes[int(np.argmin(d))]
        return lips[j]

    def _command(self, target: np.ndarray, prev: np.ndarray, rounded_p: np.ndarray, k: int) -> np.ndarray:
        """Command ``k``: the inverse model's answer; on rounded frames (not sealing) the corners move toward the
        :data:`ROUNDING_POSE` by ``round_strength``."""
        u = np.asarray(self.self_model.inverse(target[None], prev[None]), dtype=float)[0]
        if self.round_mode == "pose" and self.round_threshold is not None and target is not self.seal_lips:
            j = min(k + self.lead_frames, len(rounded_p) - 1)
            if rounded_p[j] > self.round_threshold:
                c = self._round_cols
                u[c] += self.round_strength * (self._round_vals - u[c])
        return u

    def commands_from_prediction(self, lips: np.ndarray, closure_p: np.ndarray, rounded_p: np.ndarray | None = None
                                 ) -> np.ndarray:
        """(T, 26) commands from per-frame lip targets and seal / rounding probabilities (sequential: previous command
        as context). Frame ``k`` depends only on prediction frames up to ``k + lead + seal_frames - 1``."""
        T = len(lips)
        lips = self.project(lips)
        rounded_p = np.zeros(T) if rounded_p is None else np.asarray(rounded_p, dtype=float)
        out = np.empty((T, len(self.rest)))
        prev = self.rest
        for k in range(T):
            prev = out[k] = self._command(self._targets(lips, closure_p, k, rounded_p), prev, rounded_p, k)
        return out

    def controls_from_obs(self, audio_obs: np.ndarray, timeline: Timeline | None = None) -> LipSyncResult:
        """Commands for the (T, 81) audio observation rows of a clip (:func:`audio_obs_features`).

        ``timeline`` (optional: a transcript's forced alignment, a song's or TTS's own phonemes) makes the seal
        certain on the bilabial closure frames of its lip track; the audio decides everything else.
        """
        obs = np.asarray(audio_obs, dtype=np.float32)
        if obs.ndim != 2 or obs.shape[1] != 81 or len(obs) == 0:
            raise ValueError(f"audio_obs must be (T, 81) with T >= 1, got {obs.shape}")
        t0 = time.perf_counter()
        pred = self.audio_model.predict(obs)
        closure_p = np.asarray(pred.closure_p, dtype=float)
        if timeline is not None and len(timeline):
            track = lip_track(timeline, fps=FPS, duration=len(obs) / FPS)
            closure_p = np.maximum(closure_p, track.closure[: len(obs)].astype(float))
        ctrl = self.commands_from_prediction(np.asarray(pred.lips_mm, float), closure_p, np.asarray(pred.rounded_p, float))
        return LipSyncResult(
            ctrl=ctrl, target_lips_mm=np.asarray(pred.lips_mm), closure_p=closure_p,
            rounded_p=np.asarray(pred.rounded_p), mode=self.mode, inference_s=time.perf_counter() - t0,
        )

    def controls(self, audio: np.ndarray, sr: int, timeline: Timeline | None = None) -> LipSyncResult:
        """Commands for mono ``audio`` at ``sr`` Hz (features at 16 kHz, 30 fps); ``inference_s`` includes features."""
        a = np.asarray(audio, dtype=np.float64)
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"audio must be a non-empty 1-D array, got shape {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError("audio contains NaN or inf")
        t0 = time.perf_counter()
        if int(sr) != FEATURE_SR:
            a = resample(a, int(sr), FEATURE_SR)
        f = extract_features(a, FEATURE_SR, fps=FPS)
        res = self.controls_from_obs(audio_obs_features(f.logmel, f.rms_db), timeline)
        res.inference_s = time.perf_counter() - t0
        return res

    def run_audio(self, audio: np.ndarray, sr: int, *, face: FaceModel | None = None, variant: str = "fast") -> LipSyncResult:
        """:meth:`controls`, then play them on the face (``result.playback``)."""
        res = self.controls(audio, sr)
        res.playback = play(face if face is not None else FaceModel.load(variant), res.ctrl)
        res.meta["variant"] = variant if face is None else face.variant
        return res

    def stream(self) -> "LipSyncStream":
        """A live session: push audio chunks, get commands frame by frame (stream mode only)."""
        if self.mode != "stream":
            raise ValueError("LipSyncer.stream() needs mode='stream'")
        return LipSyncStream(self)


class LipSyncStream:
    """Live lip sync: ``push(chunk)`` returns the commands that became ready, as ``(k, ctrl)`` pairs.

    Command ``k`` is ready once the audio up to frame ``k + syncer.lookahead_frames`` (<= 100 ms ahead) has arrived;
    ``flush()`` ends the stream (silence is assumed past the end) and returns the rest. Identical to
    ``LipSyncer("stream").controls(audio, 16000).ctrl``.
    """

    def __init__(self, syncer: LipSyncer):
        self.syncer = syncer
        self._features = StreamingFeatures(FEATURE_SR, fps=FPS)
        self._lips = self.syncer.audio_model.streamer()
        # the predictions still needed: frames self._base .. self._base + len - 1 (older ones are dropped)
        self._pred_lips: list[np.ndarray] = []
        self._pred_closure: list[float] = []
        self._pred_rounded: list[float] = []
        self._base = 0
        self._prev = syncer.rest.copy()
        self._next = 0  # next command index
        self._ended = False

    def _consume(self, frames: Iterable, final: bool) -> list[tuple[int, np.ndarray]]:
        s = self.syncer
        for k, lips, closure_p, rounded_p in frames:
            assert k == self._base + len(self._pred_lips), (k, self._base, len(self._pred_lips))
            self._pred_lips.append(s.project(np.asarray(lips, float)[None])[0])
            self._pred_closure.append(float(closure_p))
            self._pred_rounded.append(float(rounded_p))
        n = self._base + len(self._pred_lips)  # frames predicted so far
        out = []
        while self._next < n:
            k = self._next
            need = k + s.lead_frames + s.seal_frames - 1
            if need >= n and not final:
                break
            # only the window command k reads (frames j - seal_back .. need, j = k + lead clamped to the end),
            # indices relative to it
            lo = max(min(k + s.lead_frames, n - 1) - s.seal_back, 0)
            hi = n if final else need + 1
            a, b = lo - self._base, hi - self._base
            lips = np.stack(self._pred_lips[a:b])
            cl = np.asarray(self._pred_closure[a:b])
            ro = np.asarray(self._pred_rounded[a:b])
            self._prev = u = s._command(s._targets(lips, cl, k - lo, ro), self._prev, ro, k - lo)
            out.append((k, u))
            self._next += 1
        # drop what no later command reads (command k >= next reads from min(k + lead, end) - seal_back >= next - seal_back)
        keep_from = max(self._next - s.seal_back, 0)
        drop = min(max(keep_from - self._base, 0), len(self._pred_lips))
        if drop:
            del self._pred_lips[:drop], self._pred_closure[:drop], self._pred_rounded[:drop]
            self._base += drop
        return out

    def _lip_frames(self, rows: list) -> list:
        out = []
        for row in rows:
            for k, frame in self._lips.push(row):
                out.append((k, frame.lips_mm, frame.closure_p, frame.rounded_p))
        return out

    def push(self, chunk: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Feed 16 kHz mono samples; returns the ``(k, ctrl)`` commands that became ready."""
        if self._ended:
            raise RuntimeError("the stream was flushed; start a new one")
        feats = self._features.push(np.asarray(chunk, dtype=np.float64))
        rows = list(audio_obs_features(feats.logmel, feats.rms_db)) if len(feats.t) else []
        return self._consume(self._lip_frames(rows), final=False)

    def flush(self) -> list[tuple[int, np.ndarray]]:
        """End of audio: the remaining commands."""
        self._ended = True
        feats = self._features.flush()
        rows = list(audio_obs_features(feats.logmel, feats.rms_db)) if len(feats.t) else []
        frames = self._lip_frames(rows)
        frames += [(k, f.lips_mm, f.closure_p, f.rounded_p) for k, f in self._lips.flush()]
        return self._consume(frames, final=True)


# ---------------------------------------------------------------------------------------------------- npz
def save_lipsync_npz(path: str | Path, result: LipSyncResult, *, audio: str = "", text: str = "", lang: str = "") -> Path:
    """Write ``result`` (which must have been played: ``result.playback``) as the ``facetwin lipsync`` npz."""
    from facetwin.agents.weights import atomic_write
    from facetwin.sim.landmarks import landmark_ids

    pb = result.playback
    if pb is None:
        raise ValueError("play the commands first (LipSyncer.run_audio or result.playback = play(face, ctrl))")
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"the output must be a .npz file, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    from facetwin.sim.actuators import actuator_names

    arrays = {
        "fps": np.float64(result.fps),
        "t": np.arange(result.n_frames) / result.fps,
        "ctrl": result.ctrl.astype(np.float32),
        "actuators": np.array(list(actuator_names())),
        "aperture_mm": pb.aperture_mm.astype(np.float32),
        "width_mm": pb.width_mm.astype(np.float32),
        "protrusion_mm": pb.protrusion_mm.astype(np.float32),
        "landmarks_mm": pb.landmarks_mm.astype(np.float32),
        "landmark_ids": np.asarray(landmark_ids(), dtype=np.int64),
        "target_lips_mm": np.asarray(result.target_lips_mm, dtype=np.float32),
        "closure_p": np.asarray(result.closure_p, dtype=np.float32),
        "rounded_p": np.asarray(result.rounded_p, dtype=np.float32),
        "mode": np.array(result.mode),
        "variant": np.array(str(result.meta.get("variant", ""))),
        "audio": np.array(str(audio)),
        "text": np.array(str(text)),
        "lang": np.array(str(lang)),
    }
    assert set(arrays) == set(LIPSYNC_NPZ_KEYS)
    atomic_write(path, lambda p: np.savez_compressed(p, **arrays))
    return path


__all__ = [
    "DEFAULT_LEAD_FRAMES",
    "LIPSYNC_NPZ_KEYS",
    "MODES",
    "LipSyncResult",
    "LipSyncStream",
    "LipSyncer",
    "save_lipsync_npz",
    "seal_controls",
]
