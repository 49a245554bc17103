"""The shapes of the face's drawn parts (render only, pure numpy): the head fitted around the mask (cranium,
hair, a collar continuing the mask past its outline, the jaw behind it), eyelids along the eye openings, teeth and
gums along their arches. :mod:`facetwin.sim.visuals` turns them into MJCF.

Sizes follow the face: ``s`` (:func:`scale`) is its inter-ocular distance over 64 mm (the canonical face: 0.99).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from . import geometry as g
from .face_design import FaceDesign

CANONICAL_VERTICES = 468  # eyebrows, eyelids fitted to the eye openings: faces in MediaPipe's canonical topology
BROWS = (((46, 53, 52, 65, 55), (70, 63, 105, 66, 107)),  # (lower contour, upper contour) of the right brow ...
         ((276, 283, 282, 295, 285), (300, 293, 334, 296, 336)))  # ... and of the left
EYES = ((33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
        (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466))


def scale(design: FaceDesign) -> float:
    """The face's size: its inter-ocular distance over 64 mm."""
    return float(np.linalg.norm(design.eye_centers[1] - design.eye_centers[0])) / (2.0 * g.EYE_Y)


# ---------------------------------------------------------------------------------------------- meshes
def superellipsoid(centre, half, frame, n_lat: int = 4, n_lon: int = 8, e: float = 0.45):
    """A closed, outward-wound rounded box (vertices, faces): half sizes ``half`` along the columns of ``frame``."""
    lat = np.linspace(-0.5 * np.pi, 0.5 * np.pi, n_lat + 2)[1:-1]
    lon = np.linspace(-np.pi, np.pi, n_lon, endpoint=False)

    def p(w, f):
        return np.sign(f(w)) * np.abs(f(w)) ** e

    la, lo = np.meshgrid(lat, lon, indexing="ij")
    ring = np.stack([p(la, np.cos) * p(lo, np.cos), p(la, np.cos) * p(lo, np.sin), p(la, np.sin)], -1).reshape(-1, 3)
    pts = np.vstack([ring, [[0, 0, -1.0], [0, 0, 1.0]]]) * np.asarray(half)
    faces = []
    for i in range(n_lat - 1):
        for j in range(n_lon):
            a, b = i * n_lon + j, i * n_lon + (j + 1) % n_lon
            faces += [(a, b, b + n_lon), (a, b + n_lon, a + n_lon)]
    south, north, top = len(ring), len(ring) + 1, (n_lat - 1) * n_lon
    for j in range(n_lon):
        faces += [(south, (j + 1) % n_lon, j), (north, top + j, top + (j + 1) % n_lon)]
    return pts @ np.asarray(frame).T + np.asarray(centre), np.array(faces)


def merge(parts) -> tuple[np.ndarray, np.ndarray]:
    verts, faces, n = [], [], 0
    for v, f in parts:
        verts.append(v)
        faces.append(f + n)
        n += len(v)
    return np.vstack(verts), np.vstack(faces)


def band_mesh(radius: tuple[float, float], az: np.ndarray, el0: np.ndarray, el1: np.ndarray, n_el: int = 5):
    """A closed spherical band (vertices, faces) about the origin, facing +x: between radii ``radius``, for each
    azimuth ``az[j]`` from elevation ``el0[j]`` to ``el1[j]`` (radians)."""
    t = np.linspace(0.0, 1.0, n_el)[:, None]
    el = el0[None, :] + t * (el1 - el0)[None, :]  # (n_el, n_az)
    a = np.broadcast_to(az[None, :], el.shape)
    unit = np.stack([np.cos(el) * np.cos(a), np.cos(el) * np.sin(a), np.sin(el)], -1).reshape(-1, 3)
    verts = np.vstack([unit * radius[1], unit * radius[0]])
    n_az, n = len(az), n_el * len(az)
    flip = np.mean(el1 - el0) < 0  # bands grown downwards: wind the other way so that the outer side faces out

    def quad(a, b, c, d, outward):
        return [(a, b, c), (a, c, d)] if outward != flip else [(a, c, b), (a, d, c)]

    faces = []
    for i in range(n_el - 1):
        for j in range(n_az - 1):
            k = i * n_az + j
            faces += quad(k, k + 1, k + n_az + 1, k + n_az, True) + quad(n + k, n + k + 1, n + k + n_az + 1,
                                                                          n + k + n_az, False)
    for i, out in ((0, False), (n_el - 1, True)):  # the two rims along the azimuth
        for j in range(n_az - 1):
            k = i * n_az + j
            faces += quad(k, k + 1, n + k + 1, n + k, out)
    for j, out in ((0, True), (n_az - 1, False)):  # the two ends
        for i in range(n_el - 1):
            k = i * n_az + j
            faces += quad(k, k + n_az, n + k + n_az, n + k, out)
    return verts, np.array(faces)


def eye_rim(design: FaceDesign, side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The eye opening seen from the eye's centre: (azimuth, elevation of the upper rim, of the lower rim), radians,
    sorted by azimuth (a canonical-topology face; a round opening otherwise)."""
    c = design.eye_center(-1 if side == 0 else 1)
    v = design.skin.vertices
    if len(v) != CANONICAL_VERTICES:
        az = np.radians(np.linspace(-60, 60, 9))
        return az, np.full(9, math.radians(14.0)), np.full(9, math.radians(-16.0))
    ring = EYES[side]
    out = []
    for ids in (ring[8:] + ring[:1], ring[:9]):  # upper rim (inner corner -> outer), lower rim (outer -> inner)
        p = v[list(ids)] - c
        az, el = np.arctan2(p[:, 1], p[:, 0]), np.arcsin(p[:, 2] / np.linalg.norm(p, axis=1))
        out.append((az[np.argsort(az)], el[np.argsort(az)]))
    grid = np.linspace(min(out[0][0].min(), out[1][0].min()) - 0.35, max(out[0][0].max(), out[1][0].max()) + 0.35, 18)
    return grid, np.interp(grid, *out[0]), np.interp(grid, *out[1])


LID_GAP = (math.radians(-0.5), math.radians(1.5))  # upper margin this far below the rim, lower one above it


# ---------------------------------------------------------------------------------------------- mouth
UPPER_TEETH = ((8.6, 6.6, 7.6, 7.0),  # widths along the arch (mm), from the midline back
               (10.0, 8.5, 10.0, 8.0),  # crown heights
               (6.5, 6.0, 7.5, 8.5),  # depths
               (0.0, 0.4, 0.0, 0.3))  # edges raised over the incisors'
LOWER_TEETH = ((5.4, 5.9, 6.9, 7.0), (8.0, 8.0, 9.5, 7.5), (5.5, 6.0, 7.0, 7.5), (0.0, 0.0, 0.3, 0.2))
ARCH_CURVE = 38.0  # 1/m: the arches are parabolas x = front - ARCH_CURVE / s * y^2 (canines ~10 mm behind incisors)


def mouth_layout(design: FaceDesign) -> dict[str, float]:
    """Where the teeth go (head frame, m): arch fronts (labial surface of the central incisors) and incisal edges."""
    s = scale(design)
    upper_x = design.lip_x - 0.0070 * s
    upper_z = design.mouth_z + 0.0003 * s
    return {"upper_x": upper_x, "upper_z": upper_z, "lower_x": upper_x - 0.0030 * s, "lower_z": upper_z + 0.0015 * s}


def teeth_meshes(design: FaceDesign, upper: bool, origin: np.ndarray) -> tuple[tuple, tuple]:
    """(teeth, gums) meshes of one arch, in the frame of the body at ``origin`` that carries it."""
    s, lay = scale(design), mouth_layout(design)
    widths, heights, depths, raise_ = (np.array(t) * 1e-3 * s for t in (UPPER_TEETH if upper else LOWER_TEETH))
    front, edge, up = (lay["upper_x"], lay["upper_z"], 1.0) if upper else (lay["lower_x"], lay["lower_z"], -1.0)
    k = ARCH_CURVE / s
    ys = np.linspace(0.0, 0.05 * s, 500)
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(k * ys**2), np.diff(ys)))])
    centre_arc = np.cumsum(widths) - 0.5 * widths
    teeth, gums = [], []
    for side in (-1.0, 1.0):
        y = np.interp(centre_arc, arc, ys)
        for i, yi in enumerate(y):
            ys_ = side * yi
            t = np.array([-2 * k * ys_, 1.0, 0.0]) / math.hypot(2 * k * yi, 1.0)  # along the arch
            n = np.array([1.0, 2 * k * ys_, 0.0]) / math.hypot(2 * k * yi, 1.0)  # out of the mouth
            frame = np.stack([n, t, [0.0, 0.0, 1.0]], axis=1)  # right-handed: outward faces stay outward
            lab = np.array([front - k * yi**2, side * yi, 0.0]) - origin
            z_edge = edge - origin[2] + up * raise_[i]
            h = heights[i]
            teeth.append(superellipsoid(lab - n * 0.5 * depths[i] + [0, 0, z_edge + up * 0.5 * h - lab[2]],
                                        (0.5 * depths[i], 0.46 * widths[i], 0.5 * h), frame, e=0.35))
            gh = 0.003 * s
            gums.append(superellipsoid(lab - n * 0.5 * depths[i] + [0, 0, z_edge + up * (h - 0.0015 * s + 0.5 * gh)
                                                                      - lab[2]],
                                       (0.5 * depths[i] + 0.0007 * s, 0.56 * widths[i], 0.5 * gh), frame, e=0.5))
    return merge(teeth), merge(gums)


# ---------------------------------------------------------------------------------------------- head
@lru_cache(maxsize=8)  # a design is immutable; the head and the drawn face both ask
def outline(design: FaceDesign) -> np.ndarray:
    """The mask's outline (:func:`mesh_skin.outline_vertices`; on other faces: boundary vertices far from the
    openings), in order around the face."""
    from .mesh_skin import boundary_vertices, outline_vertices

    v = design.skin.vertices
    if len(v) == CANONICAL_VERTICES:
        b = outline_vertices(design.skin)
    else:
        b = boundary_vertices(design.skin.triangles)
        mouth = np.array([design.lip_x, 0.0, design.mouth_z])
        far = [np.linalg.norm(v[b] - p, axis=1) > 0.03 * scale(design) for p in (*design.eye_centers, mouth)]
        b = b[np.logical_and.reduce(far)]
    centre = v[b][:, 1:].mean(axis=0)
    return b[np.argsort(np.arctan2(v[b, 2] - centre[1], v[b, 1] - centre[0]))]


@lru_cache(maxsize=8)  # a design is immutable; the head and the drawn face both ask
def cranium(design: FaceDesign) -> tuple[np.ndarray, np.ndarray]:
    """Centre and semi-axes of the cranium: an ellipsoid just inside the mask's upper outline (the face's collar
    bends onto it), its crown 1.3 face heights above the chin and its back 1.05 face heights behind the forehead's
    top."""
    v = design.skin.vertices
    top = v[np.argmax(v[:, 2])]
    face_h = top[2] - v[:, 2].min()
    z_crown, x_back = v[:, 2].min() + 1.30 * face_h, top[0] - 1.05 * face_h
    p = v[outline(design)]
    p = p[p[:, 2] > design.mouth_z]
    best = None
    for cx in np.linspace(-0.05, 0.03, 41):
        for cz in np.linspace(-0.04, 0.05, 46):
            a, c = cx - x_back, z_crown - cz
            xz = ((p[:, 0] - cx) / a) ** 2 + ((p[:, 2] - cz) / c) ** 2
            if xz.max() >= 1.04:
                continue
            inv_b2 = max(np.sum((1.04 - xz) * p[:, 1] ** 2) / np.sum(p[:, 1] ** 4), 1e-6)
            err = np.sum((xz + inv_b2 * p[:, 1] ** 2 - 1.04) ** 2)
            if best is None or err < best[0]:
                best = (err, np.array([cx, 0.0, cz]), np.array([a, inv_b2**-0.5, c]))
    return best[1], best[2]


def ellipsoid_points(centre, axes, n: int = 24) -> np.ndarray:
    """Points on an ellipsoid: ``n`` azimuths by ``n // 2`` elevations and the two poles."""
    az = np.linspace(-np.pi, np.pi, n, endpoint=False)
    el = np.linspace(-0.5 * np.pi, 0.5 * np.pi, n // 2 + 1)
    a, e = np.meshgrid(az, el)
    unit = np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], -1).reshape(-1, 3)
    return np.asarray(centre) + unit * np.asarray(axes)


def head_points(design: FaceDesign) -> np.ndarray:
    """Points whose convex hull is the head above the jaw: the outer ring of the face's collar (riding on the head,
    1.5 mm inwards) and the cranium's surface where the face is not (outside the outline seen from the front, or
    behind it)."""
    s, (c, ax) = scale(design), cranium(design)
    v = design.skin.vertices
    ring = outline(design)
    rim = collar_rim(design, jaw=False)
    p = ellipsoid_points(c, ax, 64)
    behind_face = ~g.in_polygon(p[:, 1:], v[ring][:, 1:]) | (p[:, 0] < v[ring][:, 0].min() - 0.01 * s)
    low = p[:, 2] < np.where(p[:, 0] > c[0] - 0.02 * s, design.eye_centers[0, 2] - 0.03 * s, design.mouth_z)
    return np.vstack([rim, p[behind_face & ~low]])


def collar_rim(design: FaceDesign, jaw: bool) -> np.ndarray:
    """The collar's outer ring where it rides on the jaw (``jaw``) or not, 1.5 mm towards the head's vertical axis
    (the mask's outline on a face without a collar)."""
    s, (c, _) = scale(design), cranium(design)
    if len(design.skin.vertices) == CANONICAL_VERTICES:
        cv, _, att = collar(design)
        p = cv[len(cv) // 2:][(att[len(cv) // 2:] == "jaw") == jaw]
    else:
        ids = outline(design)
        p = design.skin.vertices[ids][(design.skin.attach[ids] == "jaw") == jaw]
    axis = np.stack([np.full(len(p), c[0]), np.zeros(len(p)), p[:, 2]], axis=1)
    return p + 0.0015 * s * (axis - p) / np.linalg.norm(axis - p, axis=1, keepdims=True)


def hair_mesh(design: FaceDesign) -> tuple[np.ndarray, np.ndarray]:
    """The hair: a cap (a surface) 3 mm over the cranium, down to a hairline over the collar's top edge at the front,
    30 mm above the eyes at the sides and the mouth's height at the back."""
    s, (c, ax) = scale(design), cranium(design)
    az = np.linspace(-np.pi, np.pi, 33)
    z_front, z_side = collar(design)[0][:, 2].max() - 0.004 * s, design.eye_centers[0, 2] + 0.032 * s
    z_back = design.mouth_z
    z_line = z_side + (z_front - z_side) * np.clip(np.cos(az), 0, 1) ** 1.5 \
        + (z_back - z_side) * np.clip(-np.cos(az), 0, 1) ** 1.5
    el0 = np.arcsin(np.clip((z_line - c[2]) / ax[2], -0.99, 0.99))
    unit, faces = band_mesh((1.0, 2.0), az, el0, np.full_like(az, 0.5 * np.pi - 1e-3), n_el=7)
    half = len(unit) // 2  # outer layer first (radius 2): only it is drawn (the inside is never seen)
    dirs = unit[:half] / np.linalg.norm(unit[:half], axis=1, keepdims=True)
    return c + dirs * (ax + 0.003 * s), faces[(faces < half).all(axis=1)]


def filler_points(design: FaceDesign) -> np.ndarray:
    """Points whose convex hull fills the head behind the face's lower outline on the jaw: the collar's outer ring
    there, and the same points taken back towards the neck."""
    s = scale(design)
    p = collar_rim(design, jaw=True)
    back = np.stack([np.minimum(p[:, 0] - 0.03 * s, -0.01 * s), 0.85 * p[:, 1], p[:, 2] + 0.006 * s], axis=1)
    return np.vstack([p, back])


COLLAR = (0.007, 0.009)  # m (times s): the collar's two rings, the mask's surface continued, then bent back


@lru_cache(maxsize=8)  # a design is immutable; the head and the drawn face both ask
def collar(design: FaceDesign) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A band drawn around the mask's outline (render only): its vertices (two rings: the surface continued
    outwards, then bent back towards the head, ending on the cranium above the mouth), its triangles (vertex ids after the skin's, wound like the skin's)
    and each vertex's attachment (its outline vertex's: head or jaw)."""
    from .mesh_skin import boundary_vertices

    v, tri, s = design.skin.vertices, design.skin.triangles, scale(design)
    ring = outline(design)
    edge_of = {}
    for t in tri.tolist():
        for k in range(3):
            edge_of[(t[k], t[(k + 1) % 3])] = True
    rim = set(boundary_vertices(tri).tolist())
    inner: dict[int, set[int]] = {int(i): set() for i in ring}
    for t in tri.tolist():
        for a in t:
            if a in inner:
                inner[a] |= {b for b in t if b not in rim}
    d = np.array([v[i] - v[list(inner[int(i)])].mean(axis=0) if inner[int(i)] else v[i] - v.mean(axis=0)
                  for i in ring])
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    back = d - 0.8 * np.array([1.0, 0.0, 0.0])
    ring1 = v[ring] + COLLAR[0] * s * d
    ring2 = ring1 + COLLAR[1] * s * back / np.linalg.norm(back, axis=1, keepdims=True)
    # above the mouth the collar ends on the cranium, so that the head goes on from it without a step
    c, ax = cranium(design)
    w = np.clip((v[ring, 2] - design.mouth_z) / (design.eye_centers[0, 2] - design.mouth_z), 0.0, 1.0)[:, None]
    for r, share in ((ring1, 0.5), (ring2, 1.0)):
        on = c + (r - c) / np.sqrt((((r - c) / ax) ** 2).sum(axis=1, keepdims=True))
        r += share * w * (on - r)
    n, m = len(v), len(ring)
    faces = []
    for k in range(m):
        a, b = int(ring[k]), int(ring[(k + 1) % m])
        A1, B1, A2, B2 = n + k, n + (k + 1) % m, n + m + k, n + m + (k + 1) % m
        if (a, b) not in edge_of:  # the skin runs b -> a along this edge: the collar goes a -> b
            a, b, A1, B1, A2, B2 = b, a, B1, A1, B2, A2
        faces += [(b, a, A1), (b, A1, B1), (B1, A1, A2), (B1, A2, B2)]
    attach = np.concatenate([design.skin.attach[ring]] * 2)
    return np.vstack([ring1, ring2]), np.array(faces), attach
