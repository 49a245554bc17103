"""Play a motor command sequence on the face and measure it: the one definition of "what the face did".

Frame convention (the same as :class:`facetwin.envs.lip_sync.LipSyncEnv`): row ``k`` of ``ctrl`` is the command of
control period ``k`` (``k / fps`` .. ``(k + 1) / fps`` s); the face is measured at the end of that period and the
measurement is stored as frame ``k``. The face starts settled and neutral (rest command).

>>> pb = play(FaceModel.load("fast"), ctrl)          # ctrl: (T, 26) normalized commands
>>> pb.aperture_mm.shape, pb.lips_mm.shape             # (T,), (T, 40, 3)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from facetwin.sim.landmarks import lip_landmark_ids

from .landmarks import column, mouth_measures
from .model import FaceModel


def lip_columns() -> np.ndarray:
    """(40,) columns of the 40 lip landmarks (``facetwin.sim.landmarks.lip_landmark_ids`` order) in the schema."""
    return np.array([column(int(i)) for i in lip_landmark_ids()])


@dataclass(frozen=True)
class Playback:
    """What the face did under a command sequence (``T`` frames, head frame, mm)."""

    ctrl: np.ndarray  # (T, 26) the commands, clipped to [-1, 1]
    landmarks_mm: np.ndarray  # (T, N, 3) all schema landmarks
    lips_mm: np.ndarray  # (T, 40, 3) lip landmark displacement from the face's neutral lips
    aperture_mm: np.ndarray  # (T,) midline inner-lip opening (signed: < 0 when the lips press)
    width_mm: np.ndarray  # (T,) mouth corner distance
    protrusion_mm: np.ndarray  # (T,) forward lip movement vs neutral
    neutral_width_mm: float
    diverged: bool

    def __len__(self) -> int:
        return len(self.ctrl)


def play(face: FaceModel, ctrl, *, on_frame: Callable[[int, FaceModel], None] | None = None) -> Playback:
    """Reset ``face`` to the settled neutral face and play ``ctrl`` (T, 26), one control period per row.

    ``on_frame(k, face)`` is called after each period (e.g. to render the frame). Raises ``ValueError`` for a
    malformed command array; a diverged simulation is reported in ``Playback.diverged`` (later frames hold NaN).
    """
    u = np.asarray(ctrl, dtype=float)
    if u.ndim != 2 or u.shape[1] != face.n_actuators:
        raise ValueError(f"ctrl must be (T, {face.n_actuators}), got {u.shape}")
    if len(u) == 0:
        raise ValueError("ctrl has no frames")
    if not np.isfinite(u).all():
        raise ValueError("ctrl contains NaN or inf")
    u = np.clip(u, -1.0, 1.0)
    face.reset()
    n_lm = len(face.landmark_ids)
    lms = np.full((len(u), n_lm, 3), np.nan)
    diverged = False
    for k in range(len(u)):
        face.step(u[k])
        if face.is_diverged():
            diverged = True
            break
        lms[k] = face.landmarks_mm()
        if on_frame is not None:
            on_frame(k, face)
    neutral = np.asarray(face.neutral_landmarks_mm, dtype=float)
    mm = mouth_measures(lms, neutral)
    cols = lip_columns()
    return Playback(
        ctrl=u,
        landmarks_mm=lms,
        lips_mm=lms[:, cols] - neutral[cols],
        aperture_mm=mm["aperture_mm"],
        width_mm=mm["width_mm"],
        protrusion_mm=mm["protrusion_mm"],
        neutral_width_mm=float(mouth_measures(neutral)["width_mm"]),
        diverged=diverged,
    )


__all__ = ["Playback", "lip_columns", "play"]
