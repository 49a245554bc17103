"""Fitting the canonical face (:func:`facetwin.sim.face_mesh.canonical_face`) to a user's face surface, so that the
canonical topology -- and with it the 26-actuator table, which is written on FaceMesh landmarks -- can be placed on
a user's own scan or skin mold.

| name | what |
|---|---|
| :func:`register_to_canonical` | the 468 canonical vertices placed on the user's surface: a :class:`Registration` |
| :class:`Registration` | ``vertices`` (468, 3) on the user's surface, ``scale_to_metres``, ``rigid``, ``residual`` |
| :func:`inter_ocular` | the distance of the outer eye corners (landmarks 33 and 263): the unit of every error here |

Frames and units: the canonical face is in cm, +x the subject's left, +y up, +z out of the face; the user's mesh
keeps its own frame and units (``scale_to_metres`` converts them). The result is in the user's frame and units.

The steps:

1. **A similarity start** (rotation, uniform scale, translation; canonical -> user). With a landmark map (>= 4 pairs
   MediaPipe id -> user vertex): Procrustes on the pairs. Without: the canonical face, scaled from cm to the user's
   units, is put in front of the user's surface in 48 orientations (the 24 turns of a cube that map axes onto axes,
   in the user's frame and in the frame of its principal axes), each refined briefly by ICP at that fixed scale; the
   best few are refined further, the best one kept.
2. **Symmetric ICP with scale** from the start: each iteration pairs the canonical surface's points with their
   nearest user points and the user's points inside the canonical face's box with their nearest canonical points
   (a one-sided pairing lets a face fit half a face, upside down or shrunk); the landmark pairs, if any, weigh half.
3. The user's surface is brought into the canonical frame (the inverse similarity) and cropped to the face's box;
   **non-rigid ICP** (``trimesh.registration.nricp_amberg``, Amberg et al. 2007) deforms the canonical mesh onto
   it, pulled by the landmark pairs when known.
4. Every fitted vertex is **projected onto the user's surface** (closest point), then mapped back to the user frame.

``residual``: the median distance of the fitted vertices (step 3, before the projection) to the user's surface, as a
fraction of the inter-ocular distance. :class:`~facetwin.sim.face_mesh.MeshError` "no face found in <file>" when
the similarity fit of step 2 leaves the surfaces too far apart (see :data:`RIGID_LIMIT`) or step 3 cannot reach
the surface (:data:`RESIDUAL_LIMIT`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from .face_mesh import N_CANONICAL, MeshError, canonical_face, guess_scale_to_metres

EYE_CORNERS = (33, 263)  # outer eye corners (the subject's right, left): the inter-ocular distance
CANONICAL_SAMPLES = 1500  # surface points of the canonical face for ICP, besides its 468 vertices
USER_SAMPLES = 3000  # surface points of the user's mesh for ICP
COARSE = 4  # the 48 starts' ICP uses every 4th point
BOX_PAD = 0.1  # the canonical face's box, grown by this share of its size on every side (the ICP footprint)
CROP_PAD = 0.3  # ... and by this share for the crop of the user's surface that non-rigid ICP fits
# Acceptance of the similarity fit (step 2): the symmetric mean distance (_Problem.cost) in inter-ocular distances.
# Measured: the warped test faces (+-10 % bulges and stretches, mm, turned) 0.03, a doubly warped one 0.05; what is
# not a face: a face-sized hemisphere 0.12, a flat sheet 0.15, spheres, cubes, boxes and a cylinder 0.18-0.21 (the
# nose, the eye sockets and the mouth find nothing to fit). Real faces differ from the canonical by more than the
# test warps (shape varies by about a centimetre, ~0.1 of the distance locally, less on average): 0.1 leaves them
# room and still refuses a featureless dome.
RIGID_LIMIT = 0.1
# The fitted face's size: inter-ocular distance 0.5-2 times the canonical's 8.9 cm (a wrong unit guess, e.g. inches
# taken for cm, lands outside)
SIZE_LIMITS = (0.5, 2.0)
# After the non-rigid fit the vertices lie on a face's surface (measured: residual 0.001-0.002); a median vertex more
# than 5 % of the inter-ocular distance (~4.5 mm on a real face) off the surface is a fit that did not converge.
RESIDUAL_LIMIT = 0.05
# nricp_amberg's steps (stiffness, landmark weight, normal weight, iterations) for a target in cm: trimesh's default
# schedule, which measured best of the stiffer ones tried (and folded no triangle, noisy scans included); the last
# step lets the landmark pairs go (the surface decides).
NRICP_STEPS = ((0.01, 10.0, 0.5, 10), (0.02, 5.0, 0.5, 10), (0.03, 2.5, 0.5, 10), (0.01, 0.0, 0.0, 10))
NRICP_EDGE = 0.2  # cm: the cropped surface is subdivided to this edge length (nricp matches its vertices)
NRICP_DISTANCE = 2.0  # cm: a canonical vertex farther from the user's surface than this is not pulled


@dataclass(frozen=True)
class Registration:
    """The canonical face fitted to a user's surface: ``vertices`` (468, 3) in the user mesh's frame and units
    (vertex *i* = FaceMesh landmark *i*, on the surface), ``scale_to_metres`` (metres per user unit), ``rigid`` (4x4:
    the similarity canonical cm -> user frame), ``residual`` (median distance of the fitted vertices to the surface
    before their projection onto it, in inter-ocular distances)."""

    vertices: np.ndarray
    scale_to_metres: float
    rigid: np.ndarray
    residual: float

    def mesh(self) -> trimesh.Trimesh:
        """The canonical topology at the fitted positions (user frame and units)."""
        return trimesh.Trimesh(self.vertices, canonical_face().faces, process=False)

    def vertices_metres(self) -> np.ndarray:
        """``vertices`` in metres (the user's frame)."""
        return self.vertices * self.scale_to_metres


def inter_ocular(vertices: np.ndarray) -> float:
    """The distance of the outer eye corners (landmarks 33 and 263) of 468 FaceMesh-ordered points."""
    return float(np.linalg.norm(vertices[EYE_CORNERS[0]] - vertices[EYE_CORNERS[1]]))


def _similarity(s: float, rotation: np.ndarray, t: np.ndarray) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = s * rotation
    matrix[:3, 3] = t
    return matrix


def _scale_of(matrix: np.ndarray) -> float:
    return float(np.cbrt(np.linalg.det(matrix[:3, :3])))


def _procrustes(src: np.ndarray, dst: np.ndarray, weights: np.ndarray, scale: float | None) -> np.ndarray:
    """The similarity src -> dst (weighted; ``scale`` fixed when given, free otherwise)."""
    if scale is None:
        return trimesh.registration.procrustes(src, dst, weights=weights, reflection=False, scale=True,
                                               return_cost=False)
    matrix = trimesh.registration.procrustes(scale * src, dst, weights=weights, reflection=False, scale=False,
                                             return_cost=False)
    return matrix @ np.diag([scale, scale, scale, 1.0])


class _Problem:
    """What the ICP steps share: the canonical face's points, the user's points (kd-trees) and the face's box."""

    def __init__(self, mesh: trimesh.Trimesh, pairs: tuple[np.ndarray, np.ndarray] | None):
        canon = canonical_face()
        self.canon = np.vstack([canon.vertices, canon.sample(CANONICAL_SAMPLES, seed=1)])
        self.canon_tree = cKDTree(self.canon)
        every = max(1, len(mesh.vertices) // USER_SAMPLES)
        self.user = np.vstack([mesh.sample(USER_SAMPLES, seed=0), mesh.vertices[::every]])
        self.user_tree = cKDTree(self.user)
        lo, hi = canon.bounds
        self.lo, self.hi = lo - BOX_PAD * (hi - lo), hi + BOX_PAD * (hi - lo)
        self.size = float(np.linalg.norm(hi - lo))
        self.pairs = pairs

    def matches(self, matrix: np.ndarray, every: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pairs (canonical point, user point) both ways under ``matrix`` (of every ``every``-th point), farther
        ones than half the face's size dropped; and the distances of the two sets (canonical units)."""
        s = _scale_of(matrix)
        canon, user = self.canon[::every], self.user[::every]
        placed = trimesh.transform_points(canon, matrix)
        d_a, i_a = self.user_tree.query(placed, distance_upper_bound=0.5 * self.size * s)
        ok_a = np.isfinite(d_a)
        local = trimesh.transform_points(user, np.linalg.inv(matrix))
        inside = np.flatnonzero(np.all((local > self.lo) & (local < self.hi), axis=1))
        d_b, i_b = self.canon_tree.query(local[inside], distance_upper_bound=0.5 * self.size)
        ok_b = np.isfinite(d_b)
        src = np.vstack([canon[ok_a], self.canon[i_b[ok_b]]])
        dst = np.vstack([self.user[i_a[ok_a]], user[inside[ok_b]]])
        return src, dst, np.concatenate([np.minimum(d_a / s, 0.5 * self.size), np.minimum(d_b, 0.5 * self.size)])

    def icp(self, matrix: np.ndarray, iterations: int, scale: float | None, every: int = 1) -> np.ndarray:
        """Symmetric ICP from ``matrix``: ``scale`` fixed when given, free otherwise; landmark pairs weigh half."""
        for _ in range(iterations):
            src, dst, _ = self.matches(matrix, every)
            if len(src) < 10:
                break
            weights = np.ones(len(src))
            if self.pairs is not None:
                ids, pos = self.pairs
                src, dst = np.vstack([src, self.canon[ids]]), np.vstack([dst, pos])
                weights = np.concatenate([weights, np.full(len(ids), len(weights) / len(ids))])
            new = _procrustes(src, dst, weights, scale)
            done = np.abs(new[:3] - matrix[:3]).max() < 1e-5 * _scale_of(matrix) * self.size
            matrix = new
            if done:
                break
        return matrix

    def cost(self, matrix: np.ndarray, every: int = 1) -> float:
        """Mean distance of both pairings (each point's capped at half the face's size), in inter-ocular
        distances of the canonical face."""
        _, _, distances = self.matches(matrix, every)
        return float(distances.mean()) / inter_ocular(self.canon) if len(distances) else np.inf


def _cube_turns() -> list[np.ndarray]:
    """The 24 rotations that map the axes onto the axes (signed permutation matrices of determinant 1)."""
    turns = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = np.zeros((3, 3))
            m[range(3), perm] = signs
            if np.linalg.det(m) > 0:
                turns.append(m)
    return turns


def _principal_axes(points: np.ndarray) -> np.ndarray:
    """Columns: the principal axes of points, as a rotation (determinant 1)."""
    _, _, axes = np.linalg.svd(points - points.mean(axis=0), full_matrices=False)
    axes = axes.T
    if np.linalg.det(axes) < 0:
        axes[:, 2] *= -1
    return axes


def _automatic_start(problem: _Problem, scale: float) -> np.ndarray:
    """The best of 48 orientations (see the module docstring), each put in front of the user's surface (the face's
    +z toward the surface's far side in that direction) at the fixed ``scale`` (cm -> user units) and refined by 8
    ICP iterations; the best 4 refined by 30 more, the best kept."""
    canon, user = problem.canon, problem.user
    user_axes, canon_axes = _principal_axes(user), _principal_axes(canon)
    rotations = _cube_turns() + [user_axes @ turn @ canon_axes.T for turn in _cube_turns()]
    starts = []
    for rotation in rotations:
        front = rotation[:, 2]
        placed = scale * canon @ rotation.T
        t = user.mean(axis=0) - placed.mean(axis=0)
        t += front * ((user @ front).max() - (placed @ front).max() - t @ front)
        matrix = problem.icp(_similarity(scale, rotation, t), 8, scale, every=COARSE)
        starts.append((problem.cost(matrix, every=COARSE), matrix))
    starts.sort(key=lambda c: c[0])
    refined = [problem.icp(matrix, 30, scale) for _, matrix in starts[:4]]
    return min(refined, key=problem.cost)


def _landmark_pairs(mesh: trimesh.Trimesh, landmarks: dict[int, int] | None,
                    name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(MediaPipe ids, user positions) of a landmark map, whose vertex indices refer to the file as written
    (``metadata["file_vertices"]``) or else to ``mesh.vertices``."""
    if not landmarks:
        return None
    vertices = np.asarray(mesh.metadata.get("file_vertices", mesh.vertices), dtype=float)
    ids = np.array(sorted(landmarks), dtype=int)
    index = np.array([landmarks[i] for i in ids], dtype=int)
    if len(ids) < 4:
        raise MeshError(f"{name}: the landmark map has {len(ids)} landmarks; at least 4 are needed")
    unknown = ids[(ids < 0) | (ids >= N_CANONICAL)]
    if len(unknown):
        raise MeshError(f"{name}: unknown MediaPipe landmark id {int(unknown[0])} in the landmark map (ids are "
                        f"0-{N_CANONICAL - 1})")
    outside = (index < 0) | (index >= len(vertices))
    if outside.any():
        raise MeshError(f"{name}: landmark {int(ids[outside][0])}'s vertex index {int(index[outside][0])} is out of "
                        f"range (the file has {len(vertices)} vertices)")
    positions = vertices[index]
    spread = np.linalg.svd(positions - positions.mean(axis=0), compute_uv=False)
    if not np.isfinite(positions).all() or spread[1] < 1e-3 * spread[0]:
        raise MeshError(f"{name}: the landmark map's vertices lie on a line (or coincide); pick spread-out ones")
    return ids, positions


def _crop(mesh: trimesh.Trimesh, matrix: np.ndarray, problem: _Problem) -> trimesh.Trimesh:
    """The user's surface in the canonical frame (inverse of ``matrix``), cropped to the face's box grown by
    :data:`CROP_PAD`; faces wound like the canonical face (outward), flipped if need be."""
    local = mesh.copy()
    local.apply_transform(np.linalg.inv(matrix))
    box = problem.hi - problem.lo
    lo, hi = problem.lo - CROP_PAD * box, problem.hi + CROP_PAD * box
    inside = np.all((local.vertices > lo) & (local.vertices < hi), axis=1)
    local.update_faces(inside[local.faces].any(axis=1))
    local.remove_unreferenced_vertices()
    if len(local.faces) == 0:
        return local
    local = trimesh.Trimesh(*trimesh.remesh.subdivide_to_size(local.vertices, local.faces, NRICP_EDGE), process=False)
    canon = canonical_face()
    _, _, triangle = closest_point(local, canon.vertices)
    if np.einsum("ij,ij->i", canon.vertex_normals, local.face_normals[triangle]).mean() < 0:
        local.invert()
    return local


def closest_point(mesh: trimesh.Trimesh, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The closest points of ``mesh``'s surface to ``points``: (points (n, 3), distances (n,), triangle ids (n,)),
    like ``trimesh.proximity.closest_point`` but without its ``rtree`` dependency: the candidate triangles of a point
    are those whose centroid lies within (distance to the nearest centroid + the largest centroid-to-corner distance)
    -- the closest point is no farther than the nearest centroid, so the answer is exact."""
    points = np.asarray(points, dtype=float)
    triangles = np.asarray(mesh.triangles)
    centroids = triangles.mean(axis=1)
    reach = float(np.linalg.norm(triangles - centroids[:, None], axis=2).max())
    tree = cKDTree(centroids)
    nearest, _ = tree.query(points)
    candidates = tree.query_ball_point(points, nearest + reach + 1e-12)
    query = np.repeat(np.arange(len(points)), [len(c) for c in candidates])
    triangle = np.concatenate([np.asarray(c, dtype=int) for c in candidates])
    found = trimesh.triangles.closest_point(triangles[triangle], points[query])
    distance = np.linalg.norm(found - points[query], axis=1)
    order = np.lexsort((distance, query))  # per query, the nearest first
    first = order[np.searchsorted(query[order], np.arange(len(points)))]
    return found[first], distance[first], triangle[first]


def _no_face(name: str, why: str) -> MeshError:
    return MeshError(f"no face found in {name}: {why}")


def register_to_canonical(mesh: trimesh.Trimesh, landmarks: dict[int, int] | None = None, *,
                          scale_to_metres: float | None = None, name: str | None = None) -> Registration:
    """Fit the canonical face to ``mesh`` (a :func:`~facetwin.sim.face_mesh.load_face_mesh` result, or any clean
    surface) by the steps of the module docstring. ``landmarks``: MediaPipe id -> vertex index of the mesh file
    (>= 4 pairs; :func:`~facetwin.sim.face_mesh.load_landmark_map`); ``scale_to_metres``: the mesh's units when
    known (guessed otherwise); ``name``: the file, for the messages (default ``metadata["file_name"]``).
    :class:`~facetwin.sim.face_mesh.MeshError` "no face found in <name>: ..." when no face fits."""
    name = name or mesh.metadata.get("file_name", "the mesh")
    scale = scale_to_metres or mesh.metadata.get("scale_to_metres") or guess_scale_to_metres(mesh, name)
    pairs = _landmark_pairs(mesh, landmarks, name)
    problem = _Problem(mesh, pairs)
    if pairs is not None:
        start = _procrustes(problem.canon[pairs[0]], pairs[1], np.ones(len(pairs[0])), None)
    else:
        start = _automatic_start(problem, 0.01 / scale)
    rigid = problem.icp(start, 50, None)
    fit = problem.cost(rigid)
    if not fit <= RIGID_LIMIT:
        raise _no_face(name, f"the canonical face fits the surface only to {fit:.2f} inter-ocular distances "
                             f"(mean; a face fits to < {RIGID_LIMIT})")
    size = _scale_of(rigid) * scale / 0.01
    if not SIZE_LIMITS[0] <= size <= SIZE_LIMITS[1]:
        raise _no_face(name, f"the face that fits is {size:.2f} times the canonical's size (eyes "
                             f"{100 * size * inter_ocular(problem.canon):.0f} cm apart with {scale:g} m per unit); "
                             f"if the units are wrong, give the scale to metres")
    local = _crop(mesh, rigid, problem)
    if len(local.faces) == 0:
        raise _no_face(name, "no surface where the face was placed")
    source = canonical_face()
    targets = trimesh.transform_points(pairs[1], np.linalg.inv(rigid)) if pairs is not None else None
    fitted = trimesh.registration.nricp_amberg(
        source, local, source_landmarks=None if pairs is None else pairs[0], target_positions=targets,
        steps=[list(step) for step in NRICP_STEPS], distance_threshold=NRICP_DISTANCE, use_faces=False)
    on_surface, distance, _ = closest_point(local, fitted)
    residual = float(np.median(distance)) / inter_ocular(fitted)
    if not residual <= RESIDUAL_LIMIT:
        raise _no_face(name, f"the fitted face stays {residual:.3f} inter-ocular distances off the surface "
                             f"(median; a face fits to < {RESIDUAL_LIMIT})")
    vertices = trimesh.transform_points(on_surface, rigid)
    return Registration(vertices=vertices, scale_to_metres=float(scale), rigid=rigid, residual=residual)


__all__ = ["EYE_CORNERS", "RESIDUAL_LIMIT", "RIGID_LIMIT", "SIZE_LIMITS", "Registration", "closest_point",
           "inter_ocular", "register_to_canonical"]
