"""The skin of a face made from a mesh in MediaPipe's canonical topology (468 vertices, vertex ``i`` = landmark ``i``).

From the surface to a :class:`~facetwin.sim.geometry.SkinMesh`:

1. the triangles that close the mouth (all three corners on the inner lip contour) and the eyes (all on an eye
   contour) are removed: the mouth becomes a slit from corner 78 to corner 308, the eyes two openings;
2. triangles are wound counter-clockwise seen from the front (+x);
3. each vertex is glued to the skull (``head``), to the jaw (``jaw``) or ``free`` (simulated), by region, with
   distances scaled by the face's inter-ocular distance ``s`` (64 mm = 1): the lower face between the nose and the
   chin is free (lips, cheeks, the skin over the jaw's opening), the chin and the outline below the mouth ride on
   the jaw, the brows are free in a band around the brow landmarks, everything else (forehead, nose, temples, the
   face's outline above the mouth) is glued to the skull;
4. triangles inside the outer lip contour are lip material;
5. the named points of the landmark schema (``ring1_u3`` ...) are the vertices of their MediaPipe ids, so the
   actuator table's insertions apply unchanged.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import trimesh

from . import geometry as g
from .face_mesh import LEFT_EYE as EYE_L
from .face_mesh import (
    LOWER_INNER_LIP,
    UPPER_INNER_LIP,
    boundary_loops,
    canonical_face,
    eye_triangles,
    mouth_slit_triangles,
)
from .face_mesh import RIGHT_EYE as EYE_R
from .landmarks import load_schema

OUTER_LIP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
BROW_R = (55, 65, 52, 53, 46)
BROW_L = (285, 295, 282, 283, 276)
UPPER_LIP_MID, LOWER_LIP_MID, SUBNASALE, LOWER_LIP_OUTER_MID = 13, 14, 2, 17

# canonical model (cm; +x the subject's left, +y up, +z forward) -> head frame (m): x = z + DX, y = x, z = y + DZ.
# DX, DZ put the lips and eyes where the procedural face has them (lips 87 mm forward, mouth slit 60 mm below).
CANONICAL_DX = 0.0352
CANONICAL_DZ = -0.0173

# region rules, in units of s * metres (s = inter-ocular distance / 64 mm)
FREE_HALF_WIDTH = 0.052  # free lower face: |y| below this ...
FREE_BELOW_SUBNASALE = 0.001  # ... and below the subnasale by this much
JAW_BELOW_LOWER_LIP = 0.009  # glued to the jaw: this far below the outer lower lip's midline
BROW_BAND = 0.007  # free skin around each brow landmark


def to_head_frame(canonical_cm: np.ndarray, size: float = 1.0) -> np.ndarray:
    """Points in the canonical frame (cm) -> the head frame (m); ``size``: the face's size relative to the canonical
    one (its offsets from the head's origin scale with it)."""
    vc = np.asarray(canonical_cm, dtype=float) / 100.0
    return np.stack([vc[:, 2] + CANONICAL_DX * size, vc[:, 0], vc[:, 1] + CANONICAL_DZ * size], axis=1)


def canonical_head_frame() -> np.ndarray:
    """(468, 3) vertices of the canonical face (``assets/face/meshes/canonical_face.obj``) in the head frame (m)."""
    return to_head_frame(canonical_face().vertices)


def cut_openings() -> np.ndarray:
    """The canonical triangles without those that close the mouth and the eyes."""
    tri = np.asarray(canonical_face().faces)
    closing = np.zeros(len(tri), dtype=bool)
    closing[np.concatenate([mouth_slit_triangles(), eye_triangles()])] = True
    return tri[~closing]


def boundary_vertices(tri: np.ndarray) -> np.ndarray:
    """Vertices on an edge used by one triangle only (the outline and the openings' rims)."""
    surface = trimesh.Trimesh(np.zeros((int(tri.max()) + 1, 3)), tri, process=False)
    loops = boundary_loops(surface)
    return np.unique(np.concatenate(loops)) if loops else np.zeros(0, dtype=int)


def outline_vertices(skin: g.SkinMesh) -> np.ndarray:
    """The face's outline: boundary vertices that are not on the mouth's or the eyes' rims."""
    rims = set(UPPER_INNER_LIP + LOWER_INNER_LIP + EYE_R + EYE_L)
    return np.array([v for v in boundary_vertices(skin.triangles) if v not in rims], dtype=int)


def eye_centers(v: np.ndarray) -> np.ndarray:
    """(2, 3) centres of the right and left eye openings (mean of each contour)."""
    return np.stack([v[list(EYE_R)].mean(axis=0), v[list(EYE_L)].mean(axis=0)])


def _attach(v: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """``head``, ``jaw`` or ``free`` per vertex (module doc, step 3)."""
    eyes = eye_centers(v)
    s = float(np.linalg.norm(eyes[1] - eyes[0])) / (2.0 * g.EYE_Y)
    y, z = v[:, 1], v[:, 2]
    rims = set(UPPER_INNER_LIP + LOWER_INNER_LIP + EYE_R + EYE_L)
    outline = np.isin(np.arange(len(v)), [b for b in boundary_vertices(tri) if b not in rims])
    z_jaw = v[LOWER_LIP_OUTER_MID, 2] - JAW_BELOW_LOWER_LIP * s
    attach = np.full(len(v), "head", dtype=object)
    attach[(z < v[SUBNASALE, 2] - FREE_BELOW_SUBNASALE * s) & (np.abs(y) < FREE_HALF_WIDTH * s)] = "free"
    attach[z < z_jaw] = "jaw"
    attach[outline] = np.where(z[outline] < v[LOWER_LIP_OUTER_MID, 2] - 0.003 * s, "jaw", "head")
    brow = np.zeros(len(v), dtype=bool)
    for b in BROW_R + BROW_L:
        brow |= np.linalg.norm(v - v[b], axis=1) < BROW_BAND * s
    attach[brow & ~outline] = "free"
    return attach.astype(str)


@lru_cache(maxsize=1)
def schema_points() -> dict[str, int]:
    """Named skin points of the landmark schema (``ring1_u3`` ...) -> their MediaPipe ids."""
    return {lm.ref: lm.mp_id for lm in load_schema() if lm.source == "vertex" and not lm.ref.startswith("yz:")}


NEUTRAL_APERTURE = 0.002  # the lips' midline gap at rest (m), as on the procedural face
LIP_PAIRS = ((191, 95), (80, 88), (81, 178), (82, 87), (13, 14), (312, 317), (311, 402), (310, 318), (415, 324))
MOUTH_REACH = 0.012  # how far from the inner lips (s * m) the mouth's closing spreads, fading linearly


def close_mouth(v: np.ndarray, aperture: float = NEUTRAL_APERTURE) -> np.ndarray:
    """``v`` with the lips brought to ``aperture`` apart along the whole slit (corners kept): lips closing under a
    press then meet everywhere at once.

    Each inner lip pair moves toward the other by its share of the closing; the skin around follows the nearest
    inner lip vertex of its side (above or below the slit), fading to nothing at :data:`MOUTH_REACH`."""
    v = np.array(v, dtype=float)
    s = float(np.linalg.norm(np.subtract(*eye_centers(v)))) / (2.0 * g.EYE_Y)
    up, lo = (np.array(k) for k in zip(*LIP_PAIRS))
    gap = v[up, 2] - v[lo, 2]
    shift = 0.5 * (gap - aperture)  # each side moves half of the way: every lip pair ends ``aperture`` apart
    slit_z = np.interp(v[:, 1], v[up, 1], 0.5 * (v[up, 2] + v[lo, 2]))
    out = v.copy()
    for side, ids, sign in ((v[:, 2] >= slit_z, up, -1.0), (v[:, 2] < slit_z, lo, 1.0)):
        d = np.linalg.norm(v[:, None, :] - v[None, ids, :], axis=2)
        near = d.argmin(axis=1)
        fade = np.clip(1.0 - d.min(axis=1) / (MOUTH_REACH * s), 0.0, 1.0)
        out[side, 2] += sign * (shift[near] * fade)[side]
    out[[78, 308]] = v[[78, 308]]  # the corners stay
    return out


def skin_from_mesh(v: np.ndarray) -> g.SkinMesh:
    """The :class:`SkinMesh` of 468 canonical-topology vertices ``v`` (head frame, m), its mouth closed to
    :data:`NEUTRAL_APERTURE`."""
    v = close_mouth(v)
    tri = cut_openings()
    normal_x = np.cross(v[tri[:, 1]] - v[tri[:, 0]], v[tri[:, 2]] - v[tri[:, 0]])[:, 0]
    if (normal_x < 0).mean() > 0.5:
        tri = tri[:, [0, 2, 1]]
    lip = g.in_polygon(v[:, 1:], v[list(OUTER_LIP)][:, 1:]) | np.isin(np.arange(len(v)), OUTER_LIP)
    return g.SkinMesh(vertices=np.asarray(v, dtype=float), triangles=tri, attach=_attach(v, tri),
                      tri_material=np.where(lip[tri].all(axis=1), "lip", "skin"), named=dict(schema_points()))
