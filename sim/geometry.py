"""Procedural geometry of the facetwin face: skin surface, skin mesh, skull parts.

Everything here is pure numpy/scipy and deterministic: the same code always yields the same mesh, so the
MJCF built from it (see :mod:`facetwin.sim.model`) is reproducible and can be checked in.

Head frame (used everywhere in facetwin): origin at the centre of the head at eye depth, ``+x`` out of the face
(forward), ``+y`` to the face's own left, ``+z`` up. Lengths here are metres; landmark APIs convert to mm.

The skin is one triangle mesh seen from the front as a height field ``x = surface_x(y, z)``. Around the mouth it is
built from explicit rings that share one parametrisation ``s in [-1, 1]`` (``s=-1`` the face's right corner,
MediaPipe 61/78; ``s=+1`` the left corner, 291/308), so that each lip contour of the landmark schema falls exactly
on a vertex. Ring 0 is the inner lip edge (the mouth slit), ring 1 the vermilion border, ring 2 the perioral skin,
ring 3 (twice as dense) the ring where the skin is glued (pinned) to the skull under the nose and to the jaw on the
chin; its points beside the mouth corners are free, as are the lower cheeks, so the jaw can open.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import Delaunay

# ---------------------------------------------------------------------------------------------------------------
# Face proportions (metres). One place for them; the builder and tests read these names.
HEAD_DEPTH = 0.092  # skull ellipsoid semi-axis along x (face front at x ~ HEAD_DEPTH)
HEAD_HALF_WIDTH = 0.074
HEAD_HALF_HEIGHT = 0.112
MOUTH_Z = -0.060  # height of the mouth slit
EYE_Y = 0.032  # eye centres at y = +-EYE_Y
EYE_Z = 0.012
EYE_RADIUS = 0.0125
EYE_HOLE = (0.0135, 0.0068)  # half-width, half-height of the palpebral fissure in the skin
BROW_Z = 0.031
NOSE_TIP_Z = -0.030
CHIN_Z = 0.119  # depth of the outline below the origin used by the face profile
JAW_PIVOT = np.array([-0.008, 0.0, -0.018])  # temporomandibular joint axis point (axis = y)
NEUTRAL_LIP_GAP = 0.001  # half the neutral midline aperture (lips slightly parted at rest)

# Mouth rings: (corner half-width, upper height, lower height), heights measured from MOUTH_Z at the midline.
RING_SHAPES = (
    (0.0225, NEUTRAL_LIP_GAP, NEUTRAL_LIP_GAP),  # 0: inner lip edge
    (0.0250, 0.0085, 0.0100),  # 1: vermilion border (outer lip contour)
    (0.0340, 0.0160, 0.0210),  # 2: perioral skin
    (0.0450, 0.0235, 0.0340),  # 3: glued ring (pinned)
)


def _gauss(y, z, cy, cz, sy, sz):
    return np.exp(-(((y - cy) / sy) ** 2) - ((z - cz) / sz) ** 2)


def _profile_r2(y, z):
    """Normalised 'radius' of the face outline: an ellipse across, flatter below the eyes (a face, not an egg)."""
    zn = np.where(z > 0.0, (z / HEAD_HALF_HEIGHT) ** 2, np.abs(z / CHIN_Z) ** 8)
    return (y / HEAD_HALF_WIDTH) ** 2 + zn


def surface_x(y, z):
    """Forward coordinate (x) of the face surface at (y, z): head profile plus facial features."""
    y = np.asarray(y, dtype=float)
    z = np.asarray(z, dtype=float)
    r2 = _profile_r2(y, z)
    base = HEAD_DEPTH * np.clip(1.0 - r2, 0.0, None) ** 0.5
    # flatten the front a little
    base = base - 0.008 * np.clip(1.0 - r2, 0.0, None) ** 2
    x = base
    for sgn in (-1.0, 1.0):
        x = x - 0.010 * _gauss(y, z, sgn * EYE_Y, EYE_Z, 0.016, 0.012)  # eye sockets
        x = x + 0.004 * _gauss(y, z, sgn * 0.030, BROW_Z + 0.002, 0.020, 0.006)  # brow ridge
        x = x + 0.005 * _gauss(y, z, sgn * 0.042, -0.020, 0.016, 0.016)  # cheekbones
        x = x + 0.004 * _gauss(y, z, sgn * 0.012, NOSE_TIP_Z - 0.002, 0.0055, 0.0055)  # nostril wings
        x = x - 0.003 * _gauss(y, z, sgn * 0.022, -0.040, 0.004, 0.012)  # nasolabial folds
    # nose: ridge from the bridge down to the tip, a tip bulb and a columella
    ridge = np.clip((EYE_Z + 0.006 - z) / (EYE_Z + 0.006 - NOSE_TIP_Z), 0.0, 1.0)
    width = 0.0045 + 0.0045 * ridge
    nose = 0.019 * ridge**1.3 * np.exp(-((y / width) ** 2))
    nose = nose * (1.0 / (1.0 + np.exp(-(z - (NOSE_TIP_Z - 0.006)) / 0.0018)))  # ends under the tip
    x = x + nose + 0.008 * _gauss(y, z, 0.0, NOSE_TIP_Z, 0.0075, 0.0065)
    # lips, philtrum, chin
    x = x + 0.0060 * _gauss(y, z, 0.0, MOUTH_Z + 0.004, 0.020, 0.0055)  # upper lip
    x = x + 0.0050 * _gauss(y, z, 0.0, MOUTH_Z - 0.006, 0.018, 0.0055)  # lower lip
    x = x + 0.0020 * _gauss(y, z, 0.0, MOUTH_Z + 0.014, 0.005, 0.006)  # philtrum
    x = x - 0.0030 * _gauss(y, z, 0.0, MOUTH_Z - 0.020, 0.020, 0.005)  # labiomental fold
    x = x + 0.0080 * _gauss(y, z, 0.0, -0.100, 0.016, 0.010)  # chin
    return x


def ring_points(k: int, density: int = 1) -> np.ndarray:
    """(20 * density, 2) array of (y, z) points of mouth ring ``k``.

    ``10 * density + 1`` upper points from s=-1 to 1, then the lower points from s just below +1 back to just above
    -1: the ring runs counter-clockwise seen from the front (+x): right corner, along the upper contour to the left
    corner, back along the lower contour. With ``density=1`` the contour points are the landmark points.
    """
    half_w, up, low = RING_SHAPES[k]
    s = np.linspace(-1.0, 1.0, 10 * density + 1)
    shape = np.sqrt(np.clip(1.0 - s**2, 0.0, None))
    if k == 0:
        prof_u = prof_l = shape
    else:
        bow = 1.0 - (0.18 * np.exp(-((s / 0.16) ** 2)) if k == 1 else 0.0)  # cupid's bow
        prof_u = shape**0.7 * bow
        prof_l = shape**0.8
    upper = np.stack([half_w * s, MOUTH_Z + up * prof_u], axis=1)
    lower = np.stack([half_w * s, MOUTH_Z - low * prof_l], axis=1)[1:-1][::-1]
    return np.concatenate([upper, lower])


def eye_ring(side: float, n: int = 16) -> np.ndarray:
    a = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    hw, hh = EYE_HOLE
    return np.stack([side * EYE_Y + hw * np.cos(a), EYE_Z + hh * np.sin(a)], axis=1)


def brow_points(side: float) -> np.ndarray:
    """(5, 2) brow points from the inner (medial) end to the outer end of the brow on ``side`` (+1 left)."""
    u = np.linspace(0.0, 1.0, 5)
    y = side * (0.013 + 0.036 * u)
    z = BROW_Z + 0.004 * np.sin(np.pi * (0.25 + 0.75 * u)) - 0.003 * u
    return np.stack([y, z], axis=1)


def in_cheek_band(y, z) -> bool:
    """Lower cheeks beside the mouth: skin that slides between the skull and the jaw (free vertices)."""
    return 0.030 < abs(y) < 0.056 and MOUTH_Z - 0.024 < z < MOUTH_Z + 0.016


def in_polygon(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd point in polygon test for (N, 2) points."""
    inside = np.zeros(len(pts), dtype=bool)
    px, py = pts[:, 0], pts[:, 1]
    for i in range(len(poly)):
        (x1, y1), (x2, y2) = poly[i], poly[(i + 1) % len(poly)]
        cond = (y1 > py) != (y2 > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            xin = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
        inside ^= cond & (px < xin)
    return inside


@dataclass
class SkinMesh:
    """The skin: vertices (head frame, m), CCW triangles seen from the front, and per-vertex attachment."""

    vertices: np.ndarray  # (N, 3)
    triangles: np.ndarray  # (M, 3) int
    attach: np.ndarray  # (N,) str: "free", "head" or "jaw"
    tri_material: np.ndarray  # (M,) str: "skin" or "lip"
    named: dict[str, int] = field(default_factory=dict)  # named vertices (ring points, brows)

    @property
    def free(self) -> np.ndarray:
        return np.flatnonzero(self.attach == "free")


def _free_stride(y: float, z: float) -> int:
    """Background-grid skin that slides (free vertices), as the stride of its lattice in fine grid steps.

    0: glued. Around the brows and over the lower forehead the free skin is coarser (stride 3) than on the lower
    cheeks beside the mouth (stride 2): it only folds there, and every free vertex costs simulation time.
    """
    for side in (-1.0, 1.0):
        if ((y - side * 0.031) / 0.024) ** 2 + ((z - BROW_Z - 0.005) / 0.0135) ** 2 < 1.0:
            return 3
    return 2 if in_cheek_band(y, z) else 0


@dataclass
class _Points:
    """The skin's points as they are added: (y, z) position, attachment, and the names of the named ones."""

    yz: list[np.ndarray] = field(default_factory=list)
    attach: list[str] = field(default_factory=list)
    named: dict[str, int] = field(default_factory=dict)

    def add(self, p, how: str, name: str | None = None) -> int:
        self.yz.append(np.asarray(p, dtype=float))
        self.attach.append(how)
        if name is not None:
            self.named[name] = len(self.yz) - 1
        return len(self.yz) - 1


def _add_mouth_rings(points: _Points, rings: list[np.ndarray]) -> list[list[int]]:
    """Add the mouth rings' points (attached by ring and place) and name the contour points; their ids per ring."""
    ring_ids = []
    for k, ring in enumerate(rings):
        n_up = len(ring) // 2  # index of the left corner
        ids = []
        for i, (y, z) in enumerate(ring):
            upper = i <= n_up
            j = i if upper else 2 * n_up - i  # contour index from the right corner
            s = -1.0 + 2.0 * j / n_up
            if k == 2 and not upper and abs(s) <= 0.45:
                how = "jaw"  # the lower lip's base rides on the jaw
            elif k < 3 or abs(s) > 0.5:
                how = "free"  # lips, perioral skin, and the cheeks beside the mouth corners
            else:
                how = "jaw" if z < MOUTH_Z - 0.004 else "head"  # glued under the nose and on the chin
            ids.append(points.add((y, z), how, f"ring{k}_{'u' if upper else 'l'}{j}" if k < 3 else None))
        ring_ids.append(ids)
    # shared corner names for the lower contour
    for k in range(3):
        points.named[f"ring{k}_l0"] = ring_ids[k][0]
        points.named[f"ring{k}_l10"] = ring_ids[k][10]
    return ring_ids


def _background_grid(fine_step: float, glued_ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The background grid's (y, z) points inside the face outline, kept clear of the explicit features (mouth,
    eyes, brows), and whether each is free skin."""
    fine = fine_step
    iy = np.arange(-round(0.072 / fine), round(0.072 / fine) + 1)
    iz = np.arange(-round(0.118 / fine), round(0.080 / fine) + 1)
    gi, gk = np.meshgrid(iy, iz)
    grid = np.stack([gi.ravel() * fine, gk.ravel() * fine], axis=1)
    stride = np.array([_free_stride(y, z) for y, z in grid])
    is_free = stride > 0
    keep_lattice = ~is_free | ((gi.ravel() % np.maximum(stride, 1) == 0) & (gk.ravel() % np.maximum(stride, 1) == 0))
    keep = keep_lattice & ((grid[:, 0] / 0.070) ** 2 + ((grid[:, 1] + 0.018) / 0.099) ** 2 < 1.0)
    keep &= ~in_polygon(grid, _inflate(glued_ring, 0.004))
    for side in (-1.0, 1.0):
        ring = eye_ring(side)
        keep &= ~in_polygon(grid, _inflate(ring, 0.0035))
        bp = brow_points(side)
        d = np.min(np.linalg.norm(grid[:, None, :] - bp[None], axis=2), axis=1)
        keep &= d > 0.0045
    return grid[keep], is_free[keep]


def _grid_attach(y: float, z: float, free: bool) -> str:
    """Attachment of a background grid point: free skin, glued to the jaw (the chin) or to the head."""
    if free:
        return "free"
    if z < MOUTH_Z - 0.012 and abs(y) < 0.056:
        return "jaw"
    return "head"


def _mouth_strips(ring_ids: list[list[int]]) -> tuple[list[tuple[int, int, int]], list[str]]:
    """The explicit triangle strips between mouth rings k and k + 1 (lip material between rings 0 and 1)."""
    tris: list[tuple[int, int, int]] = []
    mats: list[str] = []
    for k in range(2):
        a, b = ring_ids[k], ring_ids[k + 1]
        for i in range(20):
            i2 = (i + 1) % 20
            tris.append((a[i], b[i], b[i2]))
            tris.append((a[i], b[i2], a[i2]))
            mats += ["lip" if k == 0 else "skin"] * 2
    a, b = ring_ids[2], ring_ids[3]  # ring 2 (20 points) -> ring 3 (40 points)
    for i in range(20):
        i2, b0, b1, b2 = (i + 1) % 20, b[2 * i], b[2 * i + 1], b[(2 * i + 2) % 40]
        tris += [(a[i], b0, b1), (a[i], b1, a[i2]), (a[i2], b1, b2)]
        mats += ["skin"] * 3
    return tris, mats


def _outer_triangles(yz: np.ndarray, outer_ids: np.ndarray, glued_ring: np.ndarray, fine_step: float) -> np.ndarray:
    """Delaunay triangles over the points outside the glued ring, without those inside the ring or the eyes and
    without the slivers on the convex hull of the outline."""
    dl = Delaunay(yz[outer_ids])
    simp = outer_ids[dl.simplices]
    cent = yz[simp].mean(axis=1)
    bad = in_polygon(cent, glued_ring)
    for side in (-1.0, 1.0):
        bad |= in_polygon(cent, eye_ring(side))
    e = np.stack([yz[simp[:, 1]] - yz[simp[:, 0]], yz[simp[:, 2]] - yz[simp[:, 1]], yz[simp[:, 0]] - yz[simp[:, 2]]])
    longest = np.linalg.norm(e, axis=2).max(axis=0)
    bad |= longest > 6.0 * fine_step
    return simp[~bad]


def _orient(yz: np.ndarray, tri: np.ndarray, mats: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every triangle counter-clockwise seen from the front (+x: in (y, z) that is CCW too), and those of (near)
    zero area dropped: they destabilise flex elasticity."""
    p0, p1, p2 = yz[tri[:, 0]], yz[tri[:, 1]], yz[tri[:, 2]]
    cross = (p1[:, 0] - p0[:, 0]) * (p2[:, 1] - p0[:, 1]) - (p1[:, 1] - p0[:, 1]) * (p2[:, 0] - p0[:, 0])
    flip = cross < 0
    tri[flip] = tri[flip][:, [0, 2, 1]]
    area = 0.5 * np.abs(cross)
    ok = area > 1e-7
    return tri[ok], np.array(mats)[ok]


def build_skin(fine_step: float = 0.00325) -> SkinMesh:
    """Build the skin mesh. Deterministic.

    Outside the mouth rings the skin is a grid: glued skin (not simulated, only drawn) at ``fine_step``, free skin on
    a coarser sub-lattice of it (see :func:`_free_stride`).
    """
    # the glued ring is twice as dense, so that the Delaunay triangulation outside it keeps every ring edge
    rings = [ring_points(k) for k in range(3)] + [ring_points(3, density=2)]
    points = _Points()
    ring_ids = _add_mouth_rings(points, rings)
    for side, tag in ((-1.0, "R"), (1.0, "L")):
        for i, p in enumerate(eye_ring(side)):
            points.add(p, "head", f"eye{tag}_{i}")
    for side, tag in ((-1.0, "R"), (1.0, "L")):
        for i, p in enumerate(brow_points(side)):
            points.add(p, "free", f"brow{tag}_{i}")
    for p, free in zip(*_background_grid(fine_step, rings[3])):
        points.add(p, _grid_attach(p[0], p[1], free))

    yz, attach, named = np.array(points.yz), points.attach, points.named
    n_mouth = sum(len(r) for r in rings)
    tris, mats = _mouth_strips(ring_ids)
    # Delaunay for everything outside ring 3
    for t in _outer_triangles(yz, np.array(ring_ids[3] + list(range(n_mouth, len(yz)))), rings[3], fine_step):
        tris.append(tuple(int(v) for v in t))
        mats.append("skin")
    tri, mats = _orient(yz, np.array(tris, dtype=int), mats)

    used = np.zeros(len(yz), dtype=bool)
    used[tri.ravel()] = True
    if not used.all():  # remove unreferenced points and reindex
        remap = -np.ones(len(yz), dtype=int)
        remap[used] = np.arange(used.sum())
        tri = remap[tri]
        named = {k: int(remap[v]) for k, v in named.items() if used[v]}
        yz, attach = yz[used], list(np.array(attach)[used])
    verts = np.stack([surface_x(yz[:, 0], yz[:, 1]), yz[:, 0], yz[:, 1]], axis=1)
    # the inner lip edge curls slightly inwards, so the lips read as lips
    for name, vid in named.items():
        if name.startswith("ring0_"):
            verts[vid, 0] -= 0.002
    return SkinMesh(verts, tri, np.array(attach), np.asarray(mats), named)


def _inflate(poly: np.ndarray, d: float) -> np.ndarray:
    c = poly.mean(axis=0)
    v = poly - c
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return c + v * (1.0 + d / np.maximum(n, 1e-9))
