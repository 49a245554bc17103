"""One face's shape, as the MJCF builder and :class:`~facetwin.sim.model.FaceModel` need it.

A :class:`FaceDesign` holds the skin mesh (vertices in the head frame, triangles, which vertices are free or glued
to the skull or the jaw, lip and skin materials, the named points the actuators insert on) and where the rigid
parts go under it: the eyes, the mouth (teeth, tongue, cavity), the jaw's hinge and the skull. The builder turns a
design into MJCF; the model finds each landmark of the schema on it.

Two kinds of design:

* :func:`procedural_design` - the face of :mod:`facetwin.sim.geometry` (a height field with explicit lip rings);
* :func:`mesh_design` - a face made from a mesh in the MediaPipe canonical topology (468 vertices, vertex ``i`` is
  FaceMesh landmark ``i``): the canonical face itself (:func:`canonical_design`) or a user's scan registered to it
  (``facetwin build-face``). Every landmark of the schema is then a real skin vertex. The skin is made from the mesh
  by :mod:`facetwin.sim.mesh_skin`.

Head frame (everywhere in facetwin): +x out of the face, +y the face's own left, +z up; metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import geometry as g
from .landmarks import load_schema


@dataclass(frozen=True, eq=False)
class FaceDesign:
    """A face: its skin and the rigid parts' placement (head frame, metres)."""

    name: str
    skin: g.SkinMesh
    eye_centers: np.ndarray  # (2, 3): right eye, left eye
    eye_radius: float
    mouth_z: float  # height of the mouth slit at the midline
    lip_x: float  # forward position of the lips at the midline
    jaw_pivot: np.ndarray  # (3,) a point on the jaw's hinge axis (the axis is y)
    head_half_width: float
    head_half_height: float
    landmark_vertices: dict[int, int]  # MediaPipe id -> skin vertex, for every "vertex" landmark of the schema
    lip_contact: bool = False  # upper and lower lip collide (capsules on the inner lip vertices)

    def eye_center(self, side: float) -> np.ndarray:
        """Centre of the eye on ``side`` (-1 right, +1 left)."""
        return self.eye_centers[0 if side < 0 else 1].copy()

    def surface_x(self, y: float, z: float) -> float:
        """Forward position (x) of the skin surface at (y, z) at rest, the frontmost where several layers overlap;
        NaN outside the skin (the openings, beyond the outline)."""
        v, tri = self.skin.vertices, self.skin.triangles
        a, b, c = (v[tri[:, k]] for k in range(3))
        d1, d2, q = b[:, 1:] - a[:, 1:], c[:, 1:] - a[:, 1:], np.array([y, z]) - a[:, 1:]
        det = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = (q[:, 0] * d2[:, 1] - q[:, 1] * d2[:, 0]) / det
            w = (d1[:, 0] * q[:, 1] - d1[:, 1] * q[:, 0]) / det
        inside = (u >= 0) & (w >= 0) & (u + w <= 1) & (det != 0)
        if not inside.any():
            return float("nan")
        x = a[:, 0] + u * (b[:, 0] - a[:, 0]) + w * (c[:, 0] - a[:, 0])
        return float(x[inside].max())


# ------------------------------------------------------------------------------------------ procedural face
def _procedural_landmarks(skin: g.SkinMesh) -> dict[int, int]:
    """The schema's vertex landmarks on the procedural skin: a named point, or the vertex nearest ``yz:Y,Z`` (mm)."""
    out = {}
    for lm in load_schema():
        if lm.source != "vertex":
            continue
        if lm.ref.startswith("yz:"):
            y, z = (float(t) / 1000.0 for t in lm.ref[3:].split(","))
            out[lm.mp_id] = int(np.argmin(np.hypot(skin.vertices[:, 1] - y, skin.vertices[:, 2] - z)))
        elif lm.ref in skin.named:
            out[lm.mp_id] = skin.named[lm.ref]
        else:
            raise ValueError(f"landmark {lm.mp_id}: unknown skin point {lm.ref!r}")
    return out


@lru_cache(maxsize=1)
def procedural_design() -> FaceDesign:
    """The procedural face of :mod:`facetwin.sim.geometry`."""
    skin = g.build_skin()
    eyes = np.array([[float(g.surface_x(s * g.EYE_Y, g.EYE_Z)) - g.EYE_RADIUS + 0.0025, s * g.EYE_Y, g.EYE_Z]
                     for s in (-1.0, 1.0)])
    return FaceDesign(
        name="procedural", skin=skin, eye_centers=eyes, eye_radius=g.EYE_RADIUS, mouth_z=g.MOUTH_Z,
        lip_x=float(g.surface_x(0.0, g.MOUTH_Z)), jaw_pivot=np.asarray(g.JAW_PIVOT, dtype=float),
        head_half_width=g.HEAD_HALF_WIDTH, head_half_height=g.HEAD_HALF_HEIGHT,
        landmark_vertices=_procedural_landmarks(skin),
    )


def builtin_design() -> FaceDesign:
    """The face that ``FaceModel.load()`` builds: the MediaPipe canonical face."""
    return canonical_design()


# ------------------------------------------------------------------------------------------ mesh faces
def mesh_design(vertices: np.ndarray, name: str = "mesh", *, lip_contact: bool = True) -> FaceDesign:
    """A face from 468 canonical-topology vertices in the head frame (metres): see :func:`mesh_skin.skin_from_mesh`.

    The rigid parts are placed from the face's own landmarks and scaled with its inter-ocular distance (the
    procedural face's proportions at 64 mm)."""
    from . import mesh_skin as ms
    from .face_mesh import N_CANONICAL

    v = np.asarray(vertices, dtype=float)
    if v.shape != (N_CANONICAL, 3) or not np.isfinite(v).all():
        raise ValueError(f"a mesh face needs ({N_CANONICAL}, 3) finite vertices, got {v.shape}")
    skin = ms.skin_from_mesh(v)
    eyes = ms.eye_centers(v)
    s = float(np.linalg.norm(eyes[1] - eyes[0])) / (2.0 * g.EYE_Y)
    radius = g.EYE_RADIUS * s
    eyes = eyes - np.array([radius - 0.0025 * s, 0.0, 0.0])
    mouth = 0.5 * (v[ms.UPPER_LIP_MID] + v[ms.LOWER_LIP_MID])
    jaw_pivot = np.array([mouth[0] - 0.0954 * s, 0.0, mouth[2] + 0.042 * s])
    outline = v[ms.outline_vertices(skin)]
    return FaceDesign(
        name=name, skin=skin, eye_centers=eyes, eye_radius=radius, mouth_z=float(mouth[2]), lip_x=float(mouth[0]),
        jaw_pivot=jaw_pivot, head_half_width=float(np.abs(outline[:, 1]).max()),
        head_half_height=float(0.5 * np.ptp(outline[:, 2]) * 1.05),
        landmark_vertices={lm.mp_id: lm.mp_id for lm in load_schema() if lm.source == "vertex"},
        lip_contact=lip_contact,
    )


def registered_head_frame(vertices: np.ndarray, rigid: np.ndarray, scale_to_metres: float) -> np.ndarray:
    """A registration's 468 vertices (user frame and units; ``rigid``: the similarity canonical cm -> user) in the
    head frame (m): turned and moved into the canonical frame, the user's size kept."""
    from .mesh_skin import to_head_frame

    rigid = np.asarray(rigid, dtype=float)
    scale = float(np.cbrt(np.linalg.det(rigid[:3, :3])))  # user units per canonical cm
    rotation = rigid[:3, :3] / scale
    canonical_axes = (np.asarray(vertices, dtype=float) - rigid[:3, 3]) @ rotation  # rotation^T applied, user units
    size = scale * scale_to_metres / 0.01  # the user's face relative to the canonical one
    return to_head_frame(canonical_axes * scale_to_metres * 100.0, size=size)


@lru_cache(maxsize=1)
def canonical_design() -> FaceDesign:
    """The MediaPipe canonical face (``assets/face/meshes/canonical_face.obj``) as a facetwin face."""
    from . import mesh_skin as ms

    return mesh_design(ms.canonical_head_frame(), name="canonical")


__all__ = ["FaceDesign", "builtin_design", "canonical_design", "mesh_design", "procedural_design"]
