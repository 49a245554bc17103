"""A user's face surface (a 3-D scan, a skin mold's CAD model) read and cleaned so that the canonical face can be
fitted to it (:mod:`facetwin.sim.face_registration`), and the canonical face itself.

**The canonical face** (``assets/face/meshes/canonical_face.obj``) is MediaPipe's canonical face model: 468
vertices, vertex *i* = FaceMesh landmark *i*, 898 triangles, centimetres, one boundary loop (the face's outline);
the mouth and the eyes are closed by triangles. Its frame: +x the subject's left, +y up, +z out of the face toward
the viewer (the nose tip, landmark 4, has the largest z); triangle normals point out of the face.

**A user's mesh** keeps its own frame and units; :func:`guess_scale_to_metres` says which units they are.

| name | what |
|---|---|
| :func:`canonical_face` | the canonical face (a copy; ``process=False``: the vertex order is the landmark order) |
| :class:`MeshError` | a ``ValueError`` whose message is one line naming the file and the problem |
| :func:`load_face_mesh` | read ``.obj .stl .ply .glb .gltf`` and :func:`clean_face_mesh` it |
| :func:`clean_face_mesh` | the steps below, on a mesh in memory |
| :func:`guess_scale_to_metres` | metres per unit: m, cm, mm or inch, from the size (a face is ~0.12-0.25 m) |
| :func:`boundary_loops` | the boundary loops of a surface, each as its directed edges |
| :func:`fill_small_holes` | fan-fill the loops shorter than a tenth of the outline |
| :func:`mouth_slit_triangles` / :func:`eye_triangles` | the canonical triangles that close the mouth / the eyes |
| :func:`load_landmark_map` | a ``--landmarks map.json`` file: ``{"mp_id": vertex_index, ...}`` |

Cleaning (:func:`clean_face_mesh`), in order: the coordinates must be finite; duplicate vertices are merged;
degenerate and duplicate triangles and unreferenced vertices are dropped; an edge shared by more than two triangles
(non-manifold) is repaired by dropping the triangles on it when they are few (<= 2 %), an error otherwise; the
largest connected piece is kept when every other piece is a small bit (< 5 % of the area), an error otherwise
("several separate surfaces"); the winding is made consistent; the size must be a face's in some common unit;
holes shorter than a tenth of the outline are filled (a few missing triangles, nostrils; a mold's eye openings too,
~6 cm around against a ~63 cm outline: the fit does not need them open). One outer boundary (an open mask), larger
openings (a mold's mouth) and a closed surface (a whole head) are all accepted.

Vertex indices of a landmark map refer to the file as written (``load_face_mesh`` keeps the file's vertex
positions in ``mesh.metadata["file_vertices"]``: cleaning renumbers vertices); ``mesh.metadata["file_name"]``
names the file and ``mesh.metadata["scale_to_metres"]`` holds the guess.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
from pathlib import Path

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
import trimesh

from facetwin.files import load_json

N_CANONICAL = 468  # vertices of the canonical face = FaceMesh landmarks without the iris points
SUFFIXES = (".obj", ".stl", ".ply", ".glb", ".gltf")
# metres per unit of the units a face mesh comes in, and the size of a face: its largest extent (principal axes)
# from ~0.06 m (a cropped mask of a small face) to 0.6 m (a bust with neck and shoulders); typical 0.18 m
UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254}
FACE_SIZE_M = (0.06, 0.6)
TYPICAL_FACE_M = 0.18
NON_MANIFOLD_REPAIRABLE = 0.02  # share of triangles on non-manifold edges that may be dropped to repair them
SMALL_PIECE = 0.05  # share of the area a piece other than the largest may have (scan noise, a stray bit)
SMALL_HOLE = 0.1  # holes shorter than this share of the outline's length are filled

# the canonical triangles that close the mouth (all three vertices on the inner-lip contour) and the eyes
UPPER_INNER_LIP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_INNER_LIP = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)


class MeshError(ValueError):
    """A face mesh that cannot be used; the message is one line naming the file and the problem."""


@functools.cache
def _canonical() -> trimesh.Trimesh:
    path = importlib.resources.files("facetwin.assets.face.meshes") / "canonical_face.obj"
    with importlib.resources.as_file(path) as p:
        mesh = trimesh.load(str(p), force="mesh", process=False, maintain_order=True, skip_materials=True)
    return trimesh.Trimesh(np.asarray(mesh.vertices, float), np.asarray(mesh.faces, np.int64), process=False)


def canonical_face() -> trimesh.Trimesh:
    """The canonical face (a fresh copy of a cached mesh): 468 vertices in landmark order, 898 triangles, cm."""
    return _canonical().copy()


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:200]}" if text else type(e).__name__


def load_face_mesh(path: str | os.PathLike) -> trimesh.Trimesh:
    """Read a face surface from ``path`` (``.obj .stl .ply .glb .gltf``; a scene's meshes are concatenated) and
    :func:`clean_face_mesh` it; :class:`MeshError` naming the file when it is missing, unreadable, of another type,
    or not usable as a face (see the module docstring)."""
    p = Path(path)
    if p.suffix.lower() not in SUFFIXES:
        raise MeshError(f"{p}: unsupported file type {p.suffix or '(no suffix)'!r}; use one of {', '.join(SUFFIXES)}")
    if not p.is_file():
        raise MeshError(f"{p}: no such file" if not p.exists() else f"{p}: not a file")
    if p.stat().st_size == 0:
        raise MeshError(f"{p}: the file is empty")
    extra = {"maintain_order": True, "skip_materials": True} if p.suffix.lower() == ".obj" else {}
    try:
        loaded = trimesh.load(str(p), force="mesh", process=False, **extra)
    except Exception as e:  # noqa: BLE001 - any parser failure is a file that cannot be read
        raise MeshError(f"{p}: cannot read it as a mesh ({_one_line(e)})") from None
    faces = getattr(loaded, "faces", None)
    if not isinstance(loaded, trimesh.Trimesh) or faces is None or len(faces) == 0:
        raise MeshError(f"{p}: no triangles in the file (a face surface is needed, not points or lines)")
    mesh = clean_face_mesh(loaded, name=str(p))
    mesh.metadata["file_vertices"] = np.array(loaded.vertices, dtype=float)
    return mesh


def _drop_non_manifold(mesh: trimesh.Trimesh, name: str) -> None:
    """Drop the triangles on edges shared by more than two triangles when they are few; MeshError otherwise."""
    groups = trimesh.grouping.group_rows(mesh.edges_sorted)
    bad = [g for g in groups if len(g) > 2]
    if not bad:
        return
    faces = np.unique(mesh.edges_face[np.concatenate(bad)])
    if len(faces) > NON_MANIFOLD_REPAIRABLE * len(mesh.faces) or len(faces) == len(mesh.faces):
        raise MeshError(f"{name}: {len(bad)} non-manifold edges (shared by more than two triangles), on "
                        f"{len(faces)} of {len(mesh.faces)} triangles: too many to repair by dropping them")
    keep = np.ones(len(mesh.faces), bool)
    keep[faces] = False
    mesh.update_faces(keep)
    mesh.remove_unreferenced_vertices()


def _keep_largest_piece(mesh: trimesh.Trimesh, name: str) -> None:
    """Keep the largest connected piece when the others are small bits; MeshError otherwise."""
    labels = trimesh.graph.connected_component_labels(mesh.face_adjacency, node_count=len(mesh.faces))
    area = np.bincount(labels, weights=mesh.area_faces)
    if len(area) < 2:
        return
    order = np.argsort(area)[::-1]
    share = area / max(area.sum(), 1e-300)
    if share[order[1]] >= SMALL_PIECE:
        raise MeshError(f"{name}: several separate surfaces ({len(area)} pieces; the largest has "
                        f"{100 * share[order[0]]:.0f} % of the area, the next {100 * share[order[1]]:.0f} %); "
                        f"keep only the face in the file")
    mesh.update_faces(labels == order[0])
    mesh.remove_unreferenced_vertices()


def clean_face_mesh(mesh: trimesh.Trimesh, name: str = "the mesh") -> trimesh.Trimesh:
    """A cleaned copy of ``mesh`` (positions and triangles only; the steps are in the module docstring), with
    ``metadata["file_name"]`` = ``name`` and ``metadata["scale_to_metres"]``; :class:`MeshError` naming ``name``."""
    vertices = np.asarray(mesh.vertices, dtype=float)
    faces = np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3)
    if len(faces) == 0:
        raise MeshError(f"{name}: no triangles")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise MeshError(f"{name}: triangles refer to vertices that do not exist")
    bad = ~np.isfinite(vertices[np.unique(faces)]).all(axis=1)
    if bad.any():
        raise MeshError(f"{name}: non-finite coordinates (NaN or infinity) in {int(bad.sum())} vertices")
    out = trimesh.Trimesh(vertices, faces, process=False)
    out.merge_vertices()
    out.update_faces(out.nondegenerate_faces())
    out.update_faces(out.unique_faces())
    out.remove_unreferenced_vertices()
    if len(out.faces) == 0:
        raise MeshError(f"{name}: no triangles with an area (all degenerate)")
    _drop_non_manifold(out, name)
    _keep_largest_piece(out, name)
    trimesh.repair.fix_winding(out)
    scale = guess_scale_to_metres(out, name)
    fill_small_holes(out)
    out.metadata.update(file_name=name, scale_to_metres=scale)
    return out


def principal_extent(points: np.ndarray) -> float:
    """The largest extent of points along their principal axes (independent of how the mesh is turned)."""
    centred = points - points.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ axes.T
    return float((projected.max(axis=0) - projected.min(axis=0)).max())


def guess_scale_to_metres(mesh: trimesh.Trimesh, name: str | None = None) -> float:
    """Metres per unit of ``mesh`` (1, 0.01, 0.001 or 0.0254): of the units m, cm, mm and inch in which the mesh's
    largest extent is a face's (0.06-0.6 m), the one nearest a typical face (0.18 m, on a log scale; between cm and
    inch a face of 6-11 units is taken as inches). :class:`MeshError` when no unit fits."""
    name = name or mesh.metadata.get("file_name", "the mesh")
    size = principal_extent(np.asarray(mesh.vertices, float))
    fits = {u: s for u, s in UNITS.items() if FACE_SIZE_M[0] <= size * s <= FACE_SIZE_M[1]}
    if not fits:
        raise MeshError(f"{name}: wrong scale or units: the mesh is {size:.4g} units across, which is not a face's "
                        f"size ({FACE_SIZE_M[0]}-{FACE_SIZE_M[1]} m) in m, cm, mm or inches")
    unit = min(fits, key=lambda u: abs(np.log(size * fits[u] / TYPICAL_FACE_M)))
    return fits[unit]


def boundary_loops(mesh: trimesh.Trimesh) -> list[np.ndarray]:
    """The boundary loops of a surface (edges used by one triangle, grouped by connection), each as its directed
    edges (k, 2) in the direction the triangle uses them; longest first (by length)."""
    edges = np.asarray(mesh.edges)
    single = trimesh.grouping.group_rows(np.sort(edges, axis=1), require_count=1)
    if len(single) == 0:
        return []
    boundary = edges[single]
    n = len(mesh.vertices)
    graph = scipy.sparse.coo_matrix((np.ones(len(boundary)), (boundary[:, 0], boundary[:, 1])), shape=(n, n))
    _, labels = scipy.sparse.csgraph.connected_components(graph, directed=False)
    edge_label = labels[boundary[:, 0]]
    loops = [boundary[edge_label == lab] for lab in np.unique(edge_label)]
    return sorted(loops, key=lambda e: -_loop_length(mesh, e))


def _loop_length(mesh: trimesh.Trimesh, edges: np.ndarray) -> float:
    v = np.asarray(mesh.vertices)
    return float(np.linalg.norm(v[edges[:, 0]] - v[edges[:, 1]], axis=1).sum())


def fill_small_holes(mesh: trimesh.Trimesh, share: float = SMALL_HOLE) -> int:
    """Fan-fill (in place; a new vertex at each hole's centre) every boundary loop shorter than ``share`` of the
    outline: the longest loop, or for a closed-but-holed surface pi times the largest extent if that is longer.
    Returns the number of holes filled; the winding of the new triangles matches their neighbours'."""
    loops = boundary_loops(mesh)
    if not loops:
        return 0
    outline = max(_loop_length(mesh, loops[0]), np.pi * principal_extent(np.asarray(mesh.vertices)))
    small = [e for e in loops if _loop_length(mesh, e) < share * outline]
    if not small:
        return 0
    vertices, faces = [np.asarray(mesh.vertices)], [np.asarray(mesh.faces)]
    n = len(mesh.vertices)
    for k, edges in enumerate(small):
        vertices.append(np.asarray(mesh.vertices)[np.unique(edges)].mean(axis=0, keepdims=True))
        faces.append(np.column_stack([edges[:, 1], edges[:, 0], np.full(len(edges), n + k)]))
    metadata = dict(mesh.metadata)
    filled = trimesh.Trimesh(np.concatenate(vertices), np.concatenate(faces), process=False)
    mesh.vertices, mesh.faces = filled.vertices, filled.faces  # in place, so that callers' references see it
    mesh.metadata.update(metadata)
    return len(small)


def _triangles_on(contour: set[int]) -> np.ndarray:
    faces = _canonical().faces
    return np.flatnonzero(np.isin(faces, sorted(contour)).all(axis=1))


def mouth_slit_triangles() -> np.ndarray:
    """Indices of the canonical triangles that close the mouth: all three vertices on the inner-lip contour
    (:data:`UPPER_INNER_LIP`, :data:`LOWER_INNER_LIP`; 18 triangles). Dropping them cuts the mouth open as a slit
    whose corners are landmarks 78 (the subject's right) and 308 (left)."""
    return _triangles_on(set(UPPER_INNER_LIP) | set(LOWER_INNER_LIP))


def eye_triangles() -> np.ndarray:
    """Indices of the canonical triangles that close the eyes: all three vertices on one eye's contour
    (:data:`RIGHT_EYE` or :data:`LEFT_EYE`; 14 each). Dropping them opens the two eyes."""
    return np.union1d(_triangles_on(set(RIGHT_EYE)), _triangles_on(set(LEFT_EYE)))


def _parse_landmark_map(data: object, n_vertices: int | None) -> dict[int, int]:
    if not isinstance(data, dict) or not data:
        raise MeshError('a landmark map must be a non-empty JSON object {"mp_id": vertex_index, ...}')
    out = {}
    for key, value in data.items():
        try:
            mp_id = int(key)
        except ValueError:
            raise MeshError(f"landmark id {key!r} is not an integer (MediaPipe ids 0-{N_CANONICAL - 1})") from None
        if not 0 <= mp_id < N_CANONICAL:
            raise MeshError(f"unknown MediaPipe landmark id {mp_id} (ids are 0-{N_CANONICAL - 1})")
        if isinstance(value, bool) or not isinstance(value, int):
            raise MeshError(f"landmark {mp_id}: vertex index {value!r} is not an integer")
        if value < 0 or (n_vertices is not None and value >= n_vertices):
            raise MeshError(f"landmark {mp_id}: vertex index {value} is out of range (the mesh has "
                            f"{n_vertices if n_vertices is not None else 'no negative'} vertices)")
        out[mp_id] = value
    return out


def load_landmark_map(path: str | os.PathLike, n_vertices: int | None = None) -> dict[int, int]:
    """A landmark map file: JSON ``{"mp_id": vertex_index, ...}`` (MediaPipe ids 0-467 -> 0-based indices of the
    vertices as written in the mesh file); with ``n_vertices`` the indices are checked against it. :class:`MeshError`
    naming the file for a missing file, bad JSON, a non-integer, an unknown id or an index out of range."""
    p = Path(path)
    if not p.is_file():
        raise MeshError(f"{p}: no such landmark map file")
    return load_json(p, "landmark map", lambda d: _parse_landmark_map(d, n_vertices), error=MeshError)


__all__ = ["LEFT_EYE", "LOWER_INNER_LIP", "N_CANONICAL", "RIGHT_EYE", "SUFFIXES", "UNITS", "UPPER_INNER_LIP",
           "MeshError", "boundary_loops", "canonical_face", "clean_face_mesh", "eye_triangles", "fill_small_holes",
           "guess_scale_to_metres", "load_face_mesh", "load_landmark_map", "mouth_slit_triangles", "principal_extent"]
