"""The face's looks, render only: materials, the skin's texture and eyebrows, eyelids, teeth, gums and tongue, the head
around the mask (cranium, hair, ears, jaw and cheeks, neck) and the room's lights.

Nothing here changes the physics: every geom keeps the MJCF's default contype/conaffinity 0, and the bodies that
carry them have explicit inertials (a geom adds no mass). Sizes follow the face: ``s`` is its inter-ocular
distance over 64 mm (the canonical face: 0.99), and the head is fitted to the mask's outline (human proportions:
the crown 1.3 face heights above the chin, the head 1.05 face heights long); the shapes are
:mod:`facetwin.sim.visual_shapes`'.

| name | what |
|---|---|
| :func:`asset_xml` | textures, materials and the meshes below (``<asset>`` lines) |
| :func:`drawn_face` | the face as drawn (subdivided skin, a collar around it) and its materials: skin, lip, brow |
| :func:`skin_texcoords` | texture coordinates of the drawn face (its colour variation) |
| :func:`head_xml`, :func:`eye_xml`, :func:`lid_geoms`, :func:`jaw_xml`, :func:`room_xml` | the geoms and lights |
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import geometry as g
from . import render_surface as rs
from .face_design import FaceDesign
from .visual_shapes import (
    BROWS,
    CANONICAL_VERTICES,
    EYES,
    LID_GAP,
    band_mesh,
    collar,
    cranium,
    eye_rim,
    filler_points,
    hair_mesh,
    head_points,
    mouth_layout,
    outline,
    scale,
    teeth_meshes,
)

SKIN_RGBA = (0.86, 0.67, 0.56, 1.0)  # the skin's mean colour (the face's texture varies around it)
LIP_RGBA = (0.72, 0.36, 0.36, 1.0)
DETAIL_GROUP = 0  # geom group of small details (lashes, limbus, ears, inner eye corners, gums, throat): drawn by
# default, left out of the small "obs" images (facetwin.sim.render.PRESETS)
_DETAIL = f' group="{DETAIL_GROUP}"'


def _f(v) -> str:
    return " ".join(f"{float(x):.6g}" for x in np.ravel(v))


def _ints(a) -> str:
    return " ".join(str(int(i)) for i in np.ravel(a))


# ---------------------------------------------------------------------------------------------- the drawn face
def _chaikin(ring: np.ndarray, rounds: int = 3) -> np.ndarray:
    """A closed polygon rounded by corner cutting."""
    for _ in range(rounds):
        nxt = np.roll(ring, -1, axis=0)
        ring = np.stack([0.75 * ring + 0.25 * nxt, 0.25 * ring + 0.75 * nxt], axis=1).reshape(-1, 2)
    return ring


def _signed_distance(p: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Distance of 2D points to a closed polygon's edges, negative inside it."""
    a, b = ring, np.roll(ring, -1, axis=0)
    ab = b - a
    t = np.clip(np.einsum("pkj,kj->pk", p[:, None] - a[None], ab) / np.einsum("kj,kj->k", ab, ab), 0.0, 1.0)
    d = np.linalg.norm(p[:, None] - (a[None] + t[..., None] * ab[None]), axis=2).min(axis=1)
    return np.where(g.in_polygon(p, ring), -d, d)


@dataclass(frozen=True, eq=False)
class DrawnFace:
    """The face as drawn: a subdivided surface over ``rest`` (the skin's vertices, then the collar's), each of its
    triangles' material, and each ``rest`` vertex's attachment (the collar's ride on the head or the jaw)."""

    surface: rs.RenderSurface
    materials: np.ndarray
    rest: np.ndarray
    attach: np.ndarray

    def bodies(self, skin_bodies: list[str]) -> list[str]:
        """The body carrying each ``rest`` vertex, given those of the skin's (:func:`builder.skin_vertex_frames`)."""
        return list(skin_bodies) + [str(a) for a in self.attach[len(skin_bodies):]]


@lru_cache(maxsize=8)  # a design is immutable: both variants of a face draw it alike
def drawn_face(design: FaceDesign, levels: int) -> DrawnFace:
    """The face as drawn with ``levels`` of subdivision: the skin and, on a canonical-topology face, a collar
    around its outline (:func:`collar`); each triangle its parent's material (skin or lip) or ``brow`` inside the
    eyebrows (MediaPipe's upper and lower brow contours, rounded; the drawn triangles are cut along them)."""
    skin = design.skin
    if len(skin.vertices) != CANONICAL_VERTICES:
        surface = rs.subdivide(skin.vertices, skin.triangles, skin.tri_material, levels)
        return DrawnFace(surface, np.asarray(surface.tri_material).astype(str), skin.vertices, skin.attach)
    cv, ct, catt = collar(design)
    rest = np.vstack([skin.vertices, cv])
    mats = np.concatenate([skin.tri_material, np.full(len(ct), "skin")])
    surface = rs.subdivide(rest, np.vstack([skin.triangles, ct]), mats, levels)
    yz = surface.vertices(rest)[:, 1:]
    rings = [_chaikin(np.concatenate([skin.vertices[list(lo)], skin.vertices[list(up[::-1])]])[:, 1:])
             for lo, up in BROWS]
    surface, brow = rs.split_along(surface, np.minimum(*(_signed_distance(yz, r) for r in rings)))
    out = np.asarray(surface.tri_material).astype(object)
    out[brow & (out == "skin")] = "brow"
    return DrawnFace(surface, out.astype(str), rest, np.concatenate([skin.attach, catt]))


def skin_texcoords(drawn_rest: np.ndarray, design: FaceDesign) -> np.ndarray:
    """(n, 2) texture coordinates of the drawn face: its front view (y, z) mapped so that the skin texture's radial
    gradient is centred between the cheeks and reaches its edge colour at the face's outline."""
    v = design.skin.vertices
    centre = np.array([0.0, 0.5 * (design.eye_centers[0, 2] + design.mouth_z)])
    half = np.array([np.abs(v[:, 1]).max(), 0.5 * np.ptp(v[:, 2])]) * 1.15
    return np.clip(0.5 + 0.5 * (drawn_rest[:, 1:] - centre) / half, 0.0, 1.0)


def _mesh(name: str, v: np.ndarray, f: np.ndarray | None = None, extra: str = "") -> str:
    face = "" if f is None else f' face="{_ints(f)}"'
    return f'    <mesh name="{name}" vertex="{_f(v)}"{face}{extra}/>'


def lid_meshes(design: FaceDesign) -> list[str]:
    """Per eye: the upper lid, its lashes and the lower lid, their margins along the eye opening's rim at rest."""
    r, s = design.eye_radius, scale(design)
    L = []
    for side, tag in ((0, "R"), (1, "L")):
        az, up, lo = eye_rim(design, side)
        top = np.full_like(az, math.radians(80))
        L.append(_mesh(f"eyelid_upper_{tag}", *band_mesh((r + 1.2e-3 * s, r + 1.6e-3 * s), az, up + LID_GAP[0], top)))
        L.append(_mesh(f"lashes_{tag}", *band_mesh((r + 1.6e-3 * s, r + 2.0e-3 * s), az[2:-2], up[2:-2] + LID_GAP[0],
                                                   up[2:-2] + LID_GAP[0] + math.radians(3.0), n_el=2)))
        L.append(_mesh(f"eyelid_lower_{tag}", *band_mesh((r + 0.7e-3 * s, r + 1.1e-3 * s), az, lo + LID_GAP[1],
                                                         lo + LID_GAP[1] - math.radians(45))))
    return L


def _ellipsoid(name: str, centre, axes, material: str, extra: str = "") -> str:
    return f'      <geom name="{name}" type="ellipsoid" size="{_f(axes)}" pos="{_f(centre)}" material="{material}"{extra}/>'


# ---------------------------------------------------------------------------------------------- MJCF
def asset_xml(design: FaceDesign) -> list[str]:
    """Textures, materials and meshes (``<asset>`` lines). The face's skin is textured (a warmer centre fading to
    its outline, fine mottling); everything else skin-coloured is plain (``skin_body``)."""
    sk, lip = _f(SKIN_RGBA), _f(LIP_RGBA)
    body = _f(np.array(SKIN_RGBA) * [0.955, 0.96, 0.98, 1.0])  # the face texture's colour at the outline
    L = [
        '    <texture name="skin_tex" type="2d" builtin="gradient" rgb1="1 0.975 0.97" rgb2="0.955 0.96 0.98" '
        'mark="random" markrgb="0.96 0.92 0.91" random="0.03" width="256" height="256"/>',
        '    <texture name="hair_tex" type="cube" builtin="flat" rgb1="0.17 0.12 0.09" rgb2="0.17 0.12 0.09" '
        'mark="random" markrgb="0.27 0.2 0.15" random="0.25" width="128" height="128"/>',
        f'    <material name="skin" texture="skin_tex" rgba="{sk}" specular="0.18" shininess="0.3"/>',
        f'    <material name="skin_body" rgba="{body}" specular="0.15" shininess="0.25"/>',
        f'    <material name="lip" rgba="{lip}" specular="0.35" shininess="0.45"/>',
        '    <material name="brow" rgba="0.24 0.16 0.11 1" specular="0.05" shininess="0.1"/>',
        '    <material name="lashes" rgba="0.08 0.06 0.05 1" specular="0.05"/>',
        '    <material name="sclera" rgba="0.95 0.93 0.9 1" specular="0.7" shininess="0.9"/>',
        '    <material name="iris" rgba="0.30 0.45 0.62 1" specular="0.7" shininess="0.9"/>',
        '    <material name="limbus" rgba="0.12 0.17 0.25 1" specular="0.6" shininess="0.9"/>',
        '    <material name="pupil" rgba="0.02 0.02 0.02 1" specular="0.8" shininess="1"/>',
        '    <material name="caruncle" rgba="0.74 0.50 0.46 1" specular="0.5" shininess="0.7"/>',
        '    <material name="mouth" rgba="0.22 0.05 0.06 1" specular="0.1"/>',
        '    <material name="teeth" rgba="0.96 0.94 0.88 1" specular="0.5" shininess="0.7"/>',
        '    <material name="gum" rgba="0.80 0.42 0.42 1" specular="0.4" shininess="0.6"/>',
        '    <material name="tongue" rgba="0.80 0.42 0.44 1" specular="0.35" shininess="0.5"/>',
        '    <material name="hair" texture="hair_tex" rgba="1 1 1 1" specular="0.12" shininess="0.2"/>',
        '    <material name="ear_inner" rgba="0.74 0.55 0.46 1" specular="0.1"/>',
        '    <material name="shirt" rgba="0.25 0.32 0.42 1" specular="0.1"/>',
        '    <material name="backdrop" rgba="0.80 0.82 0.85 1" specular="0"/>',
        *lid_meshes(design),
    ]
    for upper, origin in ((True, np.zeros(3)), (False, np.asarray(design.jaw_pivot, dtype=float))):
        (tv, tf), (gv, gf) = teeth_meshes(design, upper, origin)
        tag = "upper" if upper else "lower"
        L += [_mesh(f"teeth_{tag}", tv, tf), _mesh(f"gums_{tag}", gv, gf)]
    L += [_mesh("cranium", head_points(design)), _mesh("hair", *hair_mesh(design), ' inertia="shell"'),
          _mesh("jaw_filler", filler_points(design) - np.asarray(design.jaw_pivot, dtype=float))]
    return L


def head_xml(design: FaceDesign) -> list[str]:
    """The head's drawn parts: cranium, hair, ears, cheeks, the mouth's dark cavity and throat, the upper teeth and
    gums, the inner eye corners."""
    s, (c, ax) = scale(design), cranium(design)
    lay = mouth_layout(design)
    L = ['      <geom name="cranium" type="mesh" mesh="cranium" material="skin_body"/>',
         '      <geom name="hair" type="mesh" mesh="hair" material="hair"/>']
    v = design.skin.vertices
    ear_z = design.eye_centers[0, 2] - 0.020 * s
    ear_x = v[outline(design)][:, 0].min() - 0.018 * s
    for side, tag in ((-1, "R"), (1, "L")):
        y = ax[1] * math.sqrt(max(1 - ((ear_x - c[0]) / ax[0]) ** 2 - ((ear_z - c[2]) / ax[2]) ** 2, 0.0))
        tilt = f' euler="{side * 0.25:.3g} -0.2 0"'
        L += [_ellipsoid(f"ear_{tag}", [ear_x, side * (y + 0.002 * s), ear_z], np.array([0.012, 0.006, 0.029]) * s,
                         "skin_body", tilt + _DETAIL),
              _ellipsoid(f"ear_inner_{tag}", [ear_x + 0.001 * s, side * (y + 0.0062 * s), ear_z - 0.004 * s],
                         np.array([0.0065, 0.003, 0.014]) * s, "ear_inner", tilt + _DETAIL)]
        inner = v[EYES[0 if side < 0 else 1][8]] if len(v) == CANONICAL_VERTICES else design.eye_center(side)
        toward = design.eye_center(side) - inner
        L.append(_ellipsoid(f"caruncle_{tag}", inner + 0.35 * toward, np.array([0.002, 0.002, 0.003]) * s,
                            "caruncle", _DETAIL))
    ux, uz = lay["upper_x"], lay["upper_z"]
    return L + [
        _ellipsoid("mouth_cavity", [ux - 0.027 * s, 0.0, uz + 0.006 * s], np.array([0.024, 0.022, 0.012]) * s,
                   "mouth"),
        _ellipsoid("throat", [ux - 0.050 * s, 0.0, uz - 0.008 * s], np.array([0.018, 0.018, 0.018]) * s, "mouth",
                   _DETAIL),
        '      <geom name="teeth_upper" type="mesh" mesh="teeth_upper" material="teeth"/>',
        f'      <geom name="gums_upper" type="mesh" mesh="gums_upper" material="gum"{_DETAIL}/>',
    ]


def eye_xml(design: FaceDesign, tag: str) -> list[str]:
    """The eyeball's drawn parts (in the eye's body): sclera, limbus, iris, pupil."""
    r = design.eye_radius
    s = scale(design)
    return [f'        <geom name="sclera_{tag}" type="sphere" size="{r:.6g}" material="sclera"/>',
            f'        <geom name="limbus_{tag}" type="ellipsoid" size="{_f(np.array([0.0012, 0.0062, 0.0062]) * s)}" '
            f'pos="{r - 0.0012 * s:.5g} 0 0" material="limbus"{_DETAIL}/>',
            f'        <geom name="iris_{tag}" type="ellipsoid" size="{_f(np.array([0.0012, 0.0054, 0.0054]) * s)}" '
            f'pos="{r - 0.0009 * s:.5g} 0 0" material="iris"/>',
            f'        <geom name="pupil_{tag}" type="ellipsoid" size="{_f(np.array([0.0006, 0.0024, 0.0024]) * s)}" '
            f'pos="{r:.5g} 0 0" material="pupil"/>']


def lid_geoms(lid: str, tag: str) -> list[str]:
    """The drawn eyelid (and, on the upper one, its lashes) in the lid's body."""
    L = [f'        <geom name="eyelid_{lid}_{tag}" type="mesh" mesh="eyelid_{lid}_{tag}" material="skin_body"/>']
    if lid == "upper":
        L.append(f'        <geom name="lashes_{tag}" type="mesh" mesh="lashes_{tag}" material="lashes"{_DETAIL}/>')
    return L


def jaw_xml(design: FaceDesign) -> list[str]:
    """The jaw's drawn parts (in the jaw's body): lower teeth and gums, tongue, the mouth's floor, the jaw."""
    s, lay = scale(design), mouth_layout(design)
    o = np.asarray(design.jaw_pivot, dtype=float)
    lx, lz = lay["lower_x"], lay["lower_z"]
    return [
        '        <geom name="teeth_lower" type="mesh" mesh="teeth_lower" material="teeth"/>',
        f'        <geom name="gums_lower" type="mesh" mesh="gums_lower" material="gum"{_DETAIL}/>',
        f'  {_ellipsoid("tongue", np.array([lx - 0.026 * s, 0, lz - 0.006 * s]) - o, np.array([0.023, 0.017, 0.007]) * s, "tongue")}',
        f'  {_ellipsoid("mouth_floor", np.array([lx - 0.026 * s, 0, lz - 0.014 * s]) - o, np.array([0.022, 0.021, 0.009]) * s, "mouth")}',
        '        <geom name="jaw_filler" type="mesh" mesh="jaw_filler" material="skin_body"/>',
    ]


def room_xml(design: FaceDesign) -> list[str]:
    """The room's lights (a key light that casts the shadows of the "video" preset, a fill and a rim light), the
    neck, shoulders and chest, and the backdrop; all in the room's body (they move with the neck)."""
    s, v = scale(design), design.skin.vertices
    chin = v[:, 2].min()
    neck_x = -0.018 * s
    return [
        '      <light name="key" pos="0.55 -0.2 0.3" dir="-0.84 0.3 -0.45" diffuse="0.5 0.48 0.45" '
        'specular="0.2 0.2 0.2" cutoff="25" exponent="1" castshadow="true"/>',
        '      <light name="fill" pos="0.5 0.4 0.0" dir="-0.78 -0.62 0.0" diffuse="0.34 0.34 0.37" '
        'specular="0.05 0.05 0.05" cutoff="50" castshadow="false"/>',
        '      <light name="rim" pos="-0.4 0.3 0.4" dir="0.6 -0.4 -0.5" diffuse="0.3 0.3 0.32" '
        'specular="0.1 0.1 0.1" cutoff="40" castshadow="false"/>',
        '      <geom name="backdrop" type="box" pos="-0.35 0 0" size="0.01 1 1" material="backdrop" group="2"/>',
        f'      <geom name="shoulders" type="capsule" fromto="-0.03 -0.15 {chin - 0.145 * s:.4g} -0.03 0.15 '
        f'{chin - 0.145 * s:.4g}" size="{0.065 * s:.4g}" material="shirt"/>',
        f'      <geom name="chest" type="box" pos="-0.03 0 {chin - 0.225 * s:.4g}" size="0.07 0.21 0.08" '
        'material="shirt"/>',
        f'      <geom name="neck" type="capsule" fromto="{neck_x:.4g} 0 {chin - 0.14 * s:.4g} {neck_x + 0.006 * s:.4g} 0 '
        f'{chin + 0.05 * s:.4g}" size="{0.054 * s:.4g}" material="skin_body"/>',
    ]
