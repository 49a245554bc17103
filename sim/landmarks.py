"""The landmark schema contract (``assets/data/landmarks.csv``) and the mouth measures derived from it.

Landmarks use MediaPipe FaceMesh indices so that the twin, a human video and the robot's own camera share one
schema. Positions are in millimetres in the head frame (+x forward, +y the face's left, +z up).

Mouth measures (mm):

* ``aperture_mm``  - signed midline aperture: z of the upper inner lip (13) minus z of the lower inner lip (14).
  Negative only if the lips cross; <= 1 mm is a seal (B, P, M).
* ``width_mm``     - distance between the outer mouth corners (61, 291).
* ``protrusion_mm`` - forward (x) displacement of the outer lip midline (0, 17), averaged, relative to the neutral
  face.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

UPPER_INNER, LOWER_INNER = 13, 14
CORNER_R, CORNER_L = 61, 291
UPPER_OUTER, LOWER_OUTER = 0, 17


@dataclass(frozen=True)
class Landmark:
    mp_id: int
    name: str
    region: str
    source: str  # "vertex" or "site"
    ref: str


@lru_cache(maxsize=1)
def load_schema() -> tuple[Landmark, ...]:
    text = resources.files("facetwin.assets").joinpath("data/landmarks.csv").read_text()
    rows = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    out = []
    for r in csv.DictReader(io.StringIO("\n".join(rows))):
        if r["source"] not in ("vertex", "site"):
            raise ValueError(f"landmarks.csv: landmark {r['mp_id']} has unknown source {r['source']!r}")
        out.append(Landmark(int(r["mp_id"]), r["name"], r["region"], r["source"], r["ref"]))
    ids = [lm.mp_id for lm in out]
    if len(set(ids)) != len(ids):
        raise ValueError("landmarks.csv: duplicate MediaPipe ids")
    return tuple(out)


def landmark_ids() -> np.ndarray:
    """MediaPipe ids in schema order."""
    return np.array([lm.mp_id for lm in load_schema()], dtype=int)


def region_mask(*regions: str) -> np.ndarray:
    schema = load_schema()
    known = {lm.region for lm in schema}
    for r in regions:
        if r not in known:
            raise ValueError(f"unknown landmark region {r!r}; known: {', '.join(sorted(known))}")
    return np.array([lm.region in regions for lm in schema])


def column(mp_id: int) -> int:
    """Column of MediaPipe landmark ``mp_id`` in landmark arrays."""
    for k, lm in enumerate(load_schema()):
        if lm.mp_id == mp_id:
            return k
    raise KeyError(f"MediaPipe landmark {mp_id} is not in the facetwin schema")


LIP_MASK_REGIONS = ("lips_outer", "lips_inner")


# ------------------------------------------------------------------------------- the 40 lip landmarks
@lru_cache(maxsize=1)
def lip_schema() -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """(MediaPipe ids, skin vertex names, regions) of the 40 lip landmarks in schema order (outer 20, inner 20):
    the lip points that the lip-sync models, the metrics and a human video's retargeting share."""
    rows = [lm for lm in load_schema() if lm.region in LIP_MASK_REGIONS]
    if len(rows) != 40:
        raise ValueError(f"landmarks.csv: expected 40 lip landmarks, found {len(rows)}")
    return np.array([lm.mp_id for lm in rows], dtype=int), tuple(lm.ref for lm in rows), tuple(lm.region for lm in rows)


def inner_lip_ids() -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe ids of the upper and lower inner lip contours without the corners, each from the face's right to
    its left (schema order): the points where the lips meet."""
    rows = [lm for lm in load_schema() if lm.region == "lips_inner" and "corner" not in lm.name]
    return (np.array([lm.mp_id for lm in rows if "upper" in lm.name]),
            np.array([lm.mp_id for lm in rows if "lower" in lm.name]))


def lip_landmark_ids() -> np.ndarray:
    """MediaPipe ids of the 40 lip landmarks, in schema order (outer 20 then inner 20)."""
    return lip_schema()[0].copy()


@lru_cache(maxsize=1)
def _neutral_lips() -> np.ndarray:
    from .face_design import builtin_design

    design = builtin_design()
    ids, _, _ = lip_schema()
    return np.array([design.skin.vertices[design.landmark_vertices[int(i)]] * 1000.0 for i in ids])


def neutral_lip_landmarks_mm() -> np.ndarray:
    """(40, 3) neutral lip landmarks (head frame, mm): the twin's named lip ring vertices (no MuJoCo needed)."""
    return _neutral_lips().copy()


def mouth_measures(landmarks_mm: np.ndarray, neutral_mm: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Aperture, width and protrusion (mm) from landmark arrays of shape (..., N, 3) in schema order."""
    lm = np.asarray(landmarks_mm, dtype=float)
    up, lo = lm[..., column(UPPER_INNER), :], lm[..., column(LOWER_INNER), :]
    aperture = up[..., 2] - lo[..., 2]
    width = np.linalg.norm(lm[..., column(CORNER_L), :] - lm[..., column(CORNER_R), :], axis=-1)
    fwd = 0.5 * (lm[..., column(UPPER_OUTER), 0] + lm[..., column(LOWER_OUTER), 0])
    if neutral_mm is not None:
        nm = np.asarray(neutral_mm, dtype=float)
        fwd = fwd - 0.5 * (nm[column(UPPER_OUTER), 0] + nm[column(LOWER_OUTER), 0])
    return {"aperture_mm": aperture, "width_mm": width, "protrusion_mm": fwd}
