"""Honest lip-sync baselines: each turns a clip into a (T, 26) motor command sequence as well as its idea allows.

Every baseline returns normalized commands in actuator order (``facetwin.sim.actuators.actuator_names()``) for
``T`` frames at 30 fps, row ``k`` = the command of control period ``k`` (play them with
:func:`facetwin.sim.playback.play`); only the mouth actuators (the 10 lip actuators and ``jaw_open``) move, every
other actuator stays at its rest value. Score them with :mod:`facetwin.agents.metrics`.

| baseline | input | idea |
|---|---|---|
| :func:`amplitude_controls` | loudness (``rms_db``) | what most animatronics do: the louder, the wider the jaw. Causal: noise gate, auto-gain (running peak with a slow decay), attack/release smoothing, loudness -> aperture -> ``"ah"`` intensity through the aperture the face settles to; below the gate the lips seal (``"mm"``) |
| :func:`viseme_rule_controls` | phoneme timeline | a fixed pose per viseme (:data:`VISEME_POSES`) at each viseme segment's centre, linearly interpolated, silence = rest, bilabials held closed over their segment; commanded ``lead_frames`` early (servo and skin lag) |
| :func:`nearest_neighbour_controls` | target lips (T, 40, 3) | per frame the babbled expression (:class:`BabbleBank`) whose settled lip SHAPE (mean displacement removed) is nearest the target's, commanded ``lead_frames`` early |

The bank of the nearest-neighbour baseline (``assets/weights/babble_bank.npz``, :meth:`BabbleBank.load_shipped`):

| key | shape, dtype | content |
|---|---|---|
| ``shapes_mm`` | (n, 40, 3) float16 | settled lip displacement from neutral minus its mean over the 40 points (lip landmark order of ``facetwin.sim.landmarks.lip_landmark_ids()``) |
| ``ctrl`` | (n, 26) float32 | the babbled commands, non-mouth actuators set to rest |
| ``actuator_names`` | (26,) str | actuator order of ``ctrl`` |
| ``source``, ``n_source`` | scalars | the babble dataset it came from and how many of its samples were offered |

The shipped bank holds 3000 evenly strided samples of the first 90 % of a 6000-sample ``"speech"`` babble
dataset (the last 10 % are the self-model's held-out set)::

    babble(6000, "babble_speech.npz", distribution="speech", settle_s=1.0, workers=2)
    BabbleBank.from_babble("babble_speech.npz", max_samples=3000, fraction=0.9).save("assets/weights/babble_bank.npz")

>>> env = LipSyncEnv(split="heldout_sentence"); clip = env.unwrapped.load_clip(0)
>>> u1 = amplitude_controls(clip.audio_obs[:, 80] * 50.0 - 100.0)     # or the rms_db of extract_features
>>> u2 = viseme_rule_controls(clip.timeline, clip.n_frames)
>>> u3 = nearest_neighbour_controls(clip.target_lips_mm, BabbleBank.load_shipped())
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin.audio.timeline import Timeline
from facetwin.audio.visemes import viseme_segments
from facetwin.envs.lip_sync import AH_APERTURE, AH_LEVELS
from facetwin.files import atomic_write
from facetwin.sim.actuators import actuator_names, indices, rest_controls
from facetwin.sim.expressions import mix_ctrl
from facetwin.sim.landmarks import lip_landmark_ids

from .weights import BABBLE_BANK_FILE, shipped_path

#: one fixed mouth pose per viseme: a mix of the expressions ah / ee / oo / mm (intensities, see
#: ``facetwin.sim.expressions.mix_ctrl``). Fitted on the settled fast face to each viseme's target lip shape,
#: aperture, width and protrusion (``assets/data/viseme_targets.csv``); this face cannot round its lips without
#: opening them, so ``ou`` trades shape error for a visibly rounded mouth.
VISEME_POSES: dict[str, dict[str, float]] = {
    "sil": {},
    "PP": {"mm": 1.0},
    "FF": {"mm": 0.3},
    "TH": {"ah": 0.1},
    "DD": {"ah": 0.1, "oo": 0.25},
    "kk": {"ah": 0.2, "oo": 0.25},
    "CH": {"ah": 0.2, "oo": 0.25},
    "SS": {"ee": 0.5},
    "nn": {"ah": 0.1, "oo": 0.25},
    "RR": {"ah": 0.2, "oo": 0.25},
    "aa": {"ah": 0.9, "ee": 0.25},
    "E": {"ah": 0.5, "ee": 0.25},
    "ih": {"ah": 0.3, "ee": 0.5},
    "oh": {"ah": 0.4, "oo": 0.25},
    "ou": {"oo": 0.75, "mm": 0.5},
}

_MOUTH = np.concatenate([indices("lips"), indices("jaw")])


def _pose(weights: Mapping[str, float]) -> np.ndarray:
    """(26,) rest + the weighted expression offsets, clipped (``mix_ctrl`` in the actuator-table order)."""
    return mix_ctrl(actuator_names(), weights)


def _check_fps(fps: float) -> float:
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, got {fps}")
    return float(fps)


# ------------------------------------------------------------------------------------------------ amplitude
def amplitude_controls(
    rms_db,
    *,
    fps: float = 30.0,
    gate_db: float = -45.0,
    range_db: float = 30.0,
    peak_decay_db_s: float = 3.0,
    attack_ms: float = 30.0,
    release_ms: float = 60.0,
    max_aperture_mm: float = 12.0,
    seal: bool = True,
) -> np.ndarray:
    """(T, 26) commands from the loudness ``rms_db`` (T,) in dB (``facetwin.audio.features``), causally.

    Per frame: the running peak ``peak = max(rms, peak - peak_decay_db_s / fps)`` (never below
    ``gate_db + range_db``) sets the gain; the level ``(rms - (peak - range_db)) / range_db`` clipped to [0, 1]
    (0 below ``gate_db``) is smoothed with the ``attack_ms`` / ``release_ms`` time constants and mapped to an
    aperture ``level * max_aperture_mm``, commanded as the ``"ah"`` (jaw) intensity the face settles to at that
    aperture. Below the rest aperture (2.3 mm) the lips blend into the ``"mm"`` seal when ``seal`` (quiet frames,
    such as the hold of /b p m/, close the mouth), else stay at rest.
    """
    fps = _check_fps(fps)
    x = np.asarray(rms_db, dtype=float)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"rms_db must be a non-empty 1-D array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("rms_db contains NaN or inf")
    if not range_db > 0 or peak_decay_db_s < 0 or attack_ms < 0 or release_ms < 0 or not max_aperture_mm > 0:
        raise ValueError("range_db and max_aperture_mm must be > 0; peak_decay_db_s, attack_ms, release_ms >= 0")
    a_att = 1.0 - np.exp(-1000.0 / (fps * attack_ms)) if attack_ms > 0 else 1.0
    a_rel = 1.0 - np.exp(-1000.0 / (fps * release_ms)) if release_ms > 0 else 1.0
    floor = gate_db + range_db
    peak, y = floor, 0.0
    level = np.empty(len(x))
    for k, v in enumerate(x):
        peak = max(v, peak - peak_decay_db_s / fps, floor)
        target = float(np.clip((v - (peak - range_db)) / range_db, 0.0, 1.0)) if v >= gate_db else 0.0
        y += (a_att if target > y else a_rel) * (target - y)
        level[k] = y
    aperture = level * max_aperture_mm
    ah = np.interp(aperture, AH_APERTURE, AH_LEVELS)
    mm = np.clip(1.0 - aperture / AH_APERTURE[0], 0.0, 1.0) if seal else np.zeros(len(x))
    rest = rest_controls()
    d_ah, d_mm = _pose({"ah": 1.0}) - rest, _pose({"mm": 1.0}) - rest
    return np.clip(rest + ah[:, None] * d_ah + mm[:, None] * d_mm, -1.0, 1.0)


# ------------------------------------------------------------------------------------------------ viseme rule
def viseme_rule_controls(timeline: Timeline, n_frames: int, *, fps: float = 30.0, lead_frames: int = 1,
                         seal_lead_frames: int = 1) -> np.ndarray:
    """(n_frames, 26) commands from a phoneme timeline: the :data:`VISEME_POSES` pose of every viseme segment
    (:func:`facetwin.audio.visemes.viseme_segments`: phones split into their viseme parts, gaps as ``sil``, long
    segments tiled) at the segment's centre, linearly interpolated in between; every frame sampling a bilabial
    (``PP``) segment, and at least the one nearest its centre, holds the ``"mm"`` seal, starting
    ``seal_lead_frames`` frames earlier (the jaw needs a head start to shut from a vowel). Row ``k`` is the pose of
    time ``(k + lead_frames) / fps`` (the face needs ~1 frame to reach a pose: on the training corpus's held-out sentences and language, a lead of 1
    frame rather than 2 brought the median offset from -44 ms to -11 ms and closure from 88 % to 94 %).
    """
    fps = _check_fps(fps)
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 1:
        raise ValueError(f"n_frames must be a positive integer, got {n_frames!r}")
    if not isinstance(timeline, Timeline):
        raise TypeError(f"timeline must be a facetwin.audio.timeline.Timeline, got {type(timeline).__name__}")
    T = int(n_frames)
    segs = viseme_segments(timeline, T / fps)
    t = (np.arange(T) + int(lead_frames)) / fps
    centres = np.array([s.centre for s in segs])
    poses = np.array([_pose(VISEME_POSES[s.viseme]) for s in segs])
    out = np.stack([np.interp(t, centres, poses[:, j]) for j in range(poses.shape[1])], axis=1)
    seal = _pose(VISEME_POSES["PP"])
    for s in segs:
        if s.viseme == "PP":
            k = np.flatnonzero((t >= s.start - 1e-9) & (t <= s.end + 1e-9))
            k = np.union1d(k, [int(np.argmin(np.abs(t - s.centre)))]).astype(int)
            out[max(0, int(k[0]) - int(seal_lead_frames)):int(k[-1]) + 1] = seal
    return out


# ------------------------------------------------------------------------------------------------ nearest neighbour
def _lip_cols(landmark_ids) -> np.ndarray:
    pos = {int(i): k for k, i in enumerate(np.asarray(landmark_ids))}
    missing = [int(i) for i in lip_landmark_ids() if int(i) not in pos]
    if missing:
        raise ValueError(f"the babble dataset lacks the lip landmark(s) {missing}")
    return np.array([pos[int(i)] for i in lip_landmark_ids()])


def _shapes(lips: np.ndarray) -> np.ndarray:
    """Lip displacements (..., 40, 3) minus their mean over the 40 points."""
    return lips - lips.mean(axis=-2, keepdims=True)


@dataclass(eq=False)
class BabbleBank:
    """The nearest-neighbour baseline's memory: babbled lip shapes and the commands that made them."""

    shapes_mm: np.ndarray  # (n, 40, 3) float16: settled lip displacement minus its mean over the 40 points
    ctrl: np.ndarray  # (n, 26) float32: commands, non-mouth actuators at rest
    source: str = ""
    n_source: int = 0

    def __post_init__(self) -> None:
        self.shapes_mm = np.asarray(self.shapes_mm, dtype=np.float16)
        self.ctrl = np.asarray(self.ctrl, dtype=np.float32)
        n = len(self.ctrl)
        if n == 0 or self.shapes_mm.shape != (n, 40, 3) or self.ctrl.shape != (n, len(actuator_names())):
            raise ValueError(f"a bank needs shapes (n, 40, 3) and ctrl (n, {len(actuator_names())}) with n >= 1, "
                             f"got {self.shapes_mm.shape} and {self.ctrl.shape}")
        self._flat = self.shapes_mm.reshape(n, -1).astype(np.float32)
        self._sq = (self._flat**2).sum(axis=1)

    def __len__(self) -> int:
        return len(self.ctrl)

    @classmethod
    def from_babble(cls, path_or_arrays, max_samples: int = 3000, *, fraction: float = 1.0) -> BabbleBank:
        """A bank from a babble dataset (:mod:`facetwin.envs.babble`; a path or its arrays): the first
        ``int(fraction * n)`` samples, at most ``max_samples`` of them, evenly strided."""
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        if int(max_samples) < 1:
            raise ValueError(f"max_samples must be >= 1, got {max_samples}")
        if isinstance(path_or_arrays, (str, os.PathLike)):
            with np.load(path_or_arrays) as d:
                arrays = {k: d[k] for k in ("ctrl", "landmarks_mm", "landmark_ids", "neutral_landmarks_mm",
                                            "actuator_names") if k in d.files}
            source = str(path_or_arrays)
        else:
            arrays, source = path_or_arrays, ""
        need = {"ctrl", "landmarks_mm", "landmark_ids", "neutral_landmarks_mm"} - set(arrays)
        if need:
            raise ValueError(f"not a babble dataset: missing {', '.join(sorted(need))}")
        if "actuator_names" in arrays and [str(a) for a in arrays["actuator_names"]] != actuator_names():
            raise ValueError("the babble dataset's actuator order differs from the actuator table")
        n = int(fraction * len(arrays["ctrl"]))
        if n < 1:
            raise ValueError("the babble dataset has no samples in the requested fraction")
        idx = np.unique(np.linspace(0, n - 1, min(n, int(max_samples))).round().astype(int))
        cols = _lip_cols(arrays["landmark_ids"])
        neutral = np.asarray(arrays["neutral_landmarks_mm"], dtype=float)[cols]
        lips = np.asarray(arrays["landmarks_mm"][idx], dtype=float)[:, cols] - neutral
        ctrl = np.tile(rest_controls(), (len(idx), 1))
        ctrl[:, _MOUTH] = np.asarray(arrays["ctrl"][idx], dtype=float)[:, _MOUTH]
        return cls(_shapes(lips), ctrl, source=source, n_source=n)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the bank (compressed ``.npz``, atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: np.savez_compressed(
            tmp, shapes_mm=self.shapes_mm, ctrl=self.ctrl, actuator_names=np.array(actuator_names()),
            source=np.array(self.source), n_source=np.int64(self.n_source)))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> BabbleBank:
        with np.load(path) as d:
            if [str(a) for a in d["actuator_names"]] != actuator_names():
                raise ValueError(f"{path}: the bank's actuator order differs from the actuator table")
            return cls(d["shapes_mm"], d["ctrl"], source=str(d["source"]), n_source=int(d["n_source"]))

    @classmethod
    def load_shipped(cls) -> BabbleBank:
        """The bank shipped in ``assets/weights/babble_bank.npz``."""
        return cls.load(shipped_path(BABBLE_BANK_FILE))

    def nearest(self, shapes) -> np.ndarray:
        """(T,) index of the nearest bank shape (Euclidean over the 120 coordinates) for each of (T, 40, 3)."""
        q = np.asarray(shapes, dtype=np.float32).reshape(len(shapes), -1)
        d = self._sq[None, :] - 2.0 * (q @ self._flat.T)
        return np.argmin(d, axis=1)


def nearest_neighbour_controls(target_lips, bank: BabbleBank, *, lead_frames: int = 1) -> np.ndarray:
    """(T, 26) commands: row ``k`` = the commands of the bank entry whose lip shape is nearest the shape of target
    frame ``k + lead_frames`` (clamped to the clip; shape = ``target_lips`` (T, 40, 3) minus its mean over the 40
    points)."""
    g = np.asarray(target_lips, dtype=float)
    if g.ndim != 3 or g.shape[1:] != (40, 3) or len(g) == 0:
        raise ValueError(f"target_lips must be (T, 40, 3) with T >= 1, got {g.shape}")
    if not np.isfinite(g).all():
        raise ValueError("target_lips contains NaN or inf")
    T = len(g)
    src = np.clip(np.arange(T) + int(lead_frames), 0, T - 1)
    return bank.ctrl[bank.nearest(_shapes(g[src]))].astype(np.float64)


__all__ = ["VISEME_POSES", "BabbleBank", "amplitude_controls", "nearest_neighbour_controls", "viseme_rule_controls"]
