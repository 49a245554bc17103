"""The face's own lip shapes: what the twin's 40 lip landmarks look like at a given aperture, width and protrusion.

A viseme asks for mouth measures (aperture, width, protrusion: :mod:`facetwin.audio.visemes`). The lip landmarks
of a target are the shape **this face** makes with those measures, so that every target is one the face can
reach: its soft skin bunches and its corners move in its own way (a narrow, rounded mouth is not a scaled neutral
mouth). The table (``assets/data/lip_shapes.npz``, :func:`load_lip_shapes`) holds settled lip shapes of the twin
(fast variant) under a fixed, seeded set of mouth commands: random mixes of the ``ah``, ``ee``, ``oo`` and ``mm``
expressions plus Gaussian noise on the 11 mouth motors, left/right symmetric, and the rest face. A query returns
the inverse-distance-weighted mean of the :data:`K` shapes nearest in measure space (scaled by
:data:`MEASURE_SCALE_MM`): measures the face cannot make get the nearest shapes it can.

| key | shape, dtype | content |
|---|---|---|
| ``measures_mm`` | (n, 3) float32 | aperture (13-14), width (61-291), protrusion (0/17 vs neutral), mm |
| ``lips_mm`` | (n, 40, 3) float32 | lip landmark displacement from the neutral face (the 40 ``lips_outer`` + ``lips_inner`` rows of the landmark schema, in order), head frame |
| ``ctrl`` | (n, 26) float32 | the commands that made them |
| ``seed``, ``settle_s``, ``variant`` | scalars | how the table was made (:func:`build_lip_shapes`) |

Rebuild: ``facetwin build-lip-shapes --out assets/data/lip_shapes.npz`` (deterministic; ~2 minutes).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

K = 8
MEASURE_SCALE_MM = np.array([3.0, 3.0, 1.5])  # aperture, width, protrusion: distances in measure space
N_SHAPES = 1500
SETTLE_S = 0.5
SEED = 0
#: the expressions a speech-like mouth pose is mixed from (:func:`speech_mix`)
SPEECH_EXPRESSIONS = ("ah", "ee", "oo", "mm")


def speech_mix(rng: np.random.Generator, rest: np.ndarray, names: list[str]) -> np.ndarray:
    """``rest`` (the controls, in ``names`` order) plus a random mix of the :data:`SPEECH_EXPRESSIONS`: each one
    present with probability 1/2, with a weight uniform on [0, 1]. Not clipped. The mouth poses of speech: the
    commands of this table and the ``"speech"`` targets of :func:`facetwin.envs.mirror_self_model.sample_expression`
    start from it."""
    from .expressions import EXPRESSIONS

    u = np.array(rest, dtype=float)
    col = {n: i for i, n in enumerate(names)}
    w = rng.uniform(0.0, 1.0, len(SPEECH_EXPRESSIONS)) * (rng.uniform(size=len(SPEECH_EXPRESSIONS)) < 0.5)
    for weight, expr in zip(w, SPEECH_EXPRESSIONS):
        for name, value in EXPRESSIONS[expr].items():
            u[col[name]] += weight * (value - rest[col[name]])
    return u


def _sample(rng: np.random.Generator, names: list[str], rest: np.ndarray) -> np.ndarray:
    """One mouth command of the table: a :func:`speech_mix` plus Gaussian noise on the right and middle mouth
    motors, the left ones copying the right, clipped."""
    u = speech_mix(rng, rest, names)
    col = {n: i for i, n in enumerate(names)}
    for i, n in enumerate(names):
        if n.startswith(("lip_", "jaw_")) and not n.endswith("_L"):
            u[i] += 0.35 * rng.standard_normal()
    for i, n in enumerate(names):  # symmetric: the left motor copies the right
        if n.endswith("_L"):
            u[i] = u[col[n[:-2] + "_R"]]
    return np.clip(u, -1.0, 1.0)


def build_lip_shapes(n: int = N_SHAPES, *, seed: int = SEED, settle_s: float = SETTLE_S, variant: str = "fast",
                     progress: bool = True) -> dict[str, np.ndarray]:
    """Settle ``n`` seeded mouth commands (and the rest face) and record the lip shapes (module docstring)."""
    from tqdm.auto import tqdm

    from .landmarks import LIP_MASK_REGIONS, mouth_measures, region_mask
    from .model import FaceModel

    face = FaceModel.load(variant)
    names, rest = list(face.actuator_names), np.asarray(face.rest_ctrl, dtype=float)
    cols = np.flatnonzero(region_mask(*LIP_MASK_REGIONS))  # the 40 lip rows, schema order
    neutral = np.asarray(face.neutral_landmarks_mm, dtype=float)
    rng = np.random.default_rng(seed)
    ctrl = [rest] + [_sample(rng, names, rest) for _ in range(int(n))]
    steps = max(1, int(round(settle_s * 30)))
    lips, meas = [], []
    for u in tqdm(ctrl, desc="lip shapes", unit="pose", disable=not progress):
        face.reset()
        face.step(u, n_control_steps=steps)
        lm = face.landmarks_mm()
        m = mouth_measures(lm, neutral)
        lips.append(lm[cols] - neutral[cols])
        meas.append([float(m["aperture_mm"]), float(m["width_mm"]), float(m["protrusion_mm"])])
    return {"measures_mm": np.asarray(meas, np.float32), "lips_mm": np.asarray(lips, np.float32),
            "ctrl": np.asarray(ctrl, np.float32), "seed": np.int64(seed), "settle_s": np.float64(settle_s),
            "variant": np.array(variant)}


@lru_cache(maxsize=1)
def load_lip_shapes() -> dict[str, np.ndarray]:
    """The shipped table (``assets/data/lip_shapes.npz``)."""
    path = resources.files("facetwin.assets").joinpath("data/lip_shapes.npz")
    with path.open("rb") as f, np.load(f) as z:
        return {k: z[k] for k in z.files}


def face_lip_shapes(aperture_mm, width_mm, protrusion_mm, *, neutral=None, table: dict | None = None) -> np.ndarray:
    """(..., 40, 3) the face's lip shape (displacement from neutral, mm) for each (aperture, width, protrusion).

    ``neutral``: the (aperture, width) the caller's measures count as neutral (default: the table's rest face);
    the query is taken relative to it, so the caller's neutral maps exactly to the face at rest."""
    t = load_lip_shapes() if table is None else table
    q = np.stack(np.broadcast_arrays(np.asarray(aperture_mm, float), np.asarray(width_mm, float),
                                     np.asarray(protrusion_mm, float)), axis=-1)
    shape = q.shape[:-1]
    q = q.reshape(-1, 3)
    if neutral is not None:
        rest = np.asarray(t["measures_mm"][0], float)  # entry 0 is the rest face
        q = q + np.array([rest[0] - float(neutral[0]), rest[1] - float(neutral[1]), rest[2]])
    q = q / MEASURE_SCALE_MM
    x = np.asarray(t["measures_mm"], float) / MEASURE_SCALE_MM
    lips = np.asarray(t["lips_mm"], float)
    k = min(K, len(x))
    out = np.empty((len(q), lips.shape[1], 3))
    for i in range(0, len(q), 2048):
        d = ((q[i:i + 2048, None, :] - x[None]) ** 2).sum(-1)
        idx = np.argpartition(d, k - 1, axis=1)[:, :k]
        dd = np.sqrt(np.take_along_axis(d, idx, 1))
        w = 1.0 / (dd + 0.05)
        exact = dd.min(axis=1) < 1e-6  # a query on a table entry (the rest face) gets that entry
        w[exact] = (dd[exact] < 1e-6).astype(float)
        w /= w.sum(1, keepdims=True)
        out[i:i + 2048] = np.einsum("nk,nkpc->npc", w, lips[idx])
    return out.reshape(shape + lips.shape[1:])



__all__ = [
    "K", "MEASURE_SCALE_MM", "SPEECH_EXPRESSIONS", "build_lip_shapes", "face_lip_shapes", "load_lip_shapes",
    "speech_mix",
]
