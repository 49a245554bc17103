"""The face as drawn: a finer surface than the simulated skin, moved by it (render only, no physics).

The skin mesh (MediaPipe's 468 vertices, about 900 triangles) is subdivided with Loop's scheme: every vertex of the
finer surface is a fixed linear combination of the skin's vertices (:class:`RenderSurface.weights`), so wherever the
simulated skin goes the drawn surface follows it exactly, smooth. The openings (mouth slit, eyes) and the outline are
boundaries, interpolated: they pass through the skin's own boundary vertices (the four-point rule along them), so the
lips look sealed exactly when they are, and their sharp corners (mouth and eye corners) stay sharp.
Every new triangle keeps its parent's material, so the lips' border stays where it is.

:func:`skin_bones` turns a surface into the bones of MuJoCo ``<skin>`` elements (per-vertex weights over the bodies
that carry the skin's vertices): the free skin vertex bodies only translate and the head never moves, so a
weighted sum over them is exact; the jaw turns, and a vertex mixing jaw and other parents gets exact offsets through
three extra bones on the head and three on the jaw (see :func:`skin_bones`).

Pure numpy, deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The face is drawn twice, each in its own skin group: finely for pictures (group 0, drawn by default) and more
# coarsely for the small, fast observation images (group OBS_GROUP, hidden by default; the "obs" render preset
# shows it instead of group 0). (levels of subdivision, skin group, name suffix) per drawing:
OBS_GROUP = 5
DRAWINGS = ((2, 0, ""), (0, OBS_GROUP, "_obs"))
CORNER_ANGLE_DEG = 100.0  # a boundary vertex whose two boundary edges meet at less than this is a corner: it stays


@dataclass(frozen=True, eq=False)
class RenderSurface:
    """A subdivided skin: ``vertices = weights @ skin vertices`` (at rest), its triangles and their materials."""

    weights: np.ndarray  # (n, n_skin) each row sums to 1
    triangles: np.ndarray  # (m, 3) counter-clockwise seen from the front, like the skin's
    tri_material: np.ndarray  # (m,) the parent skin triangle's material
    parent: np.ndarray  # (m,) the skin triangle each triangle lies in

    def vertices(self, skin_vertices: np.ndarray) -> np.ndarray:
        """(n, 3) positions of the surface for the skin's vertex positions ``skin_vertices`` (n_skin, 3)."""
        return self.weights @ np.asarray(skin_vertices, dtype=float)


def _edges(tri: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique edges (e, 2) sorted, the edge of each triangle side (t, 3: sides ab, bc, ca), and each edge's count."""
    sides = np.stack([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]], axis=1)  # (t, 3, 2)
    uniq, inv, count = np.unique(np.sort(sides.reshape(-1, 2), axis=1), axis=0, return_inverse=True,
                                 return_counts=True)
    if count.max() > 2:
        raise ValueError("the mesh is not a manifold: an edge is shared by more than two triangles")
    return uniq, inv.reshape(-1, 3), count


def _corners(v: np.ndarray, edges: np.ndarray, boundary: np.ndarray) -> set[int]:
    """Boundary vertices where the boundary turns sharply (interior angle below :data:`CORNER_ANGLE_DEG`)."""
    nb: dict[int, list[int]] = {}
    for a, b in edges[boundary]:
        nb.setdefault(int(a), []).append(int(b))
        nb.setdefault(int(b), []).append(int(a))
    out = set()
    for k, (p, q) in ((k, n) for k, n in nb.items() if len(n) == 2):
        d1, d2 = v[p] - v[k], v[q] - v[k]
        cos = d1 @ d2 / (np.linalg.norm(d1) * np.linalg.norm(d2))
        if np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))) < CORNER_ANGLE_DEG:
            out.add(k)
    return out | {k for k, n in nb.items() if len(n) != 2}  # non-manifold boundary points stay too


def _neighbours(n: int, edges: np.ndarray, boundary: np.ndarray) -> tuple[list[list[int]], list[list[int]]]:
    """Each vertex's neighbours, and its neighbours along the boundary."""
    nbrs: list[list[int]] = [[] for _ in range(n)]
    bnbrs: list[list[int]] = [[] for _ in range(n)]
    for (a, b), on_boundary in zip(edges.tolist(), boundary.tolist()):
        nbrs[a].append(b)
        nbrs[b].append(a)
        if on_boundary:
            bnbrs[a].append(b)
            bnbrs[b].append(a)
    return nbrs, bnbrs


def _even_rows(nbrs: list[list[int]], bnbrs: list[list[int]]) -> tuple[list, list, list]:
    """Loop's rule for the old vertices as (row, column, weight) triplets: interior ``(1 - k beta) v + beta
    sum(neighbours)`` (Warren's beta); boundary vertices stay (the openings and the outline pass through the skin's
    own vertices: sealed lips look sealed)."""
    rows, cols, vals = [], [], []
    for i, nb in enumerate(nbrs):
        if bnbrs[i] or not nb:
            own, others, w = 1.0, [], 0.0
        else:
            k = len(nb)
            w = 3.0 / 16.0 if k == 3 else 3.0 / (8.0 * k)
            own, others = 1.0 - k * w, nb
        rows += [i] * (1 + len(others))
        cols += [i, *others]
        vals += [own] + [w] * len(others)
    return rows, cols, vals


def _boundary_rows(n: int, edges: np.ndarray, boundary: np.ndarray, bnbrs: list[list[int]], corners: set[int]):
    """The new vertex of each boundary edge (a, b): the four-point rule ``(9 (a + b) - a' - b') / 16`` over the
    boundary neighbours a' of a and b' of b (interpolating: the boundary curve passes through the old vertices);
    beyond a corner the curve is extended straight (a' = 2 a - b)."""
    rows, cols, vals = [], [], []
    for e in np.flatnonzero(boundary):
        a, b = (int(x) for x in edges[e])
        w = {a: 9 / 16, b: 9 / 16}
        for p, q in ((a, b), (b, a)):
            other = [x for x in bnbrs[p] if x != q]
            if p in corners or len(other) != 1:
                w[p] -= 2 / 16  # - (2 p - q) / 16
                w[q] += 1 / 16
            else:
                w[other[0]] = w.get(other[0], 0.0) - 1 / 16
        rows += [n + e] * len(w)
        cols += list(w)
        vals += list(w.values())
    return rows, cols, vals


def loop_step(v: np.ndarray, tri: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
    """One level of Loop subdivision of (v, tri): the weights of the new vertices over the old ones as (row,
    column, weight) triplets (old vertices first, then one per edge), the new triangles (4 per old one, same
    winding) and each one's parent. Boundaries are interpolated (:func:`_even_rows`, :func:`_boundary_rows`)."""
    n = len(v)
    edges, side, count = _edges(tri)
    boundary = count == 1
    nbrs, bnbrs = _neighbours(n, edges, boundary)
    parts = [_even_rows(nbrs, bnbrs), _boundary_rows(n, edges, boundary, bnbrs, _corners(v, edges, boundary))]
    e = np.flatnonzero(~boundary)
    rows = [np.asarray(p[0], dtype=int) for p in parts] + [n + e, n + e]
    cols = [np.asarray(p[1], dtype=int) for p in parts] + [edges[e, 0], edges[e, 1]]
    vals = [np.asarray(p[2], dtype=float) for p in parts] + [np.full(len(e), 0.375)] * 2
    for k in range(3):  # the vertex opposite each triangle side weighs 1/8 on an interior edge
        inner = ~boundary[side[:, k]]
        rows.append(n + side[inner, k])
        cols.append(tri[inner, (k + 2) % 3])
        vals.append(np.full(inner.sum(), 0.125))
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    ab, bc, ca = (n + side[:, k] for k in range(3))
    new = np.stack([np.stack(t, axis=1) for t in ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))], axis=1)
    triplets = (np.concatenate(rows), np.concatenate(cols), np.concatenate(vals))
    return triplets, new.reshape(-1, 3), np.repeat(np.arange(len(tri)), 4)


def _compose(step: tuple[np.ndarray, ...], rows: np.ndarray, cols: np.ndarray, vals: np.ndarray):
    """The triplets of ``step @ W`` for the triplets ``step`` and those of ``W`` (rows, cols, vals; ``W``'s sorted by
    row), duplicates summed."""
    r, k, a = step
    start = np.searchsorted(rows, np.arange(rows.max() + 2))
    n = start[k + 1] - start[k]
    at = np.repeat(start[k] - np.cumsum(n) + n, n) + np.arange(n.sum())  # every entry of W's row k, per step entry
    key = np.repeat(r, n) * (cols.max() + 1) + cols[at]
    uniq, inv = np.unique(key, return_inverse=True)
    return uniq // (cols.max() + 1), uniq % (cols.max() + 1), np.bincount(inv, np.repeat(a, n) * vals[at])


def subdivide(v: np.ndarray, tri: np.ndarray, tri_material: np.ndarray, levels: int) -> RenderSurface:
    """``levels`` levels of Loop subdivision of the mesh (v, tri): 4**levels triangles per triangle."""
    v = np.asarray(v, dtype=float)
    t, parent = np.asarray(tri, dtype=int), np.arange(len(tri))
    w = (np.arange(len(v)), np.arange(len(v)), np.ones(len(v)))  # triplets, sorted by row
    for _ in range(levels):
        dense = np.zeros((w[0].max() + 1, len(v)))
        dense[w[0], w[1]] = w[2]
        step, t, up = loop_step(dense @ v, t)
        w, parent = _compose(step, *w), parent[up]
    weights = np.zeros((w[0].max() + 1, len(v)))
    weights[w[0], w[1]] = w[2]
    return RenderSurface(weights=weights, triangles=t, tri_material=np.asarray(tri_material)[parent], parent=parent)


OFFSET_LEVER = 0.1  # m: the bind position offset of the six offset bones (see skin_bones)


@dataclass(frozen=True, eq=False)
class Bone:
    """One ``<bone>`` of a MuJoCo ``<skin>``: a body, its bind position (bind orientation: identity) and the
    weights of the vertices it moves."""

    body: str
    bindpos: np.ndarray  # (3,)
    vertid: np.ndarray  # (k,) indices into the skin's vertices
    weight: np.ndarray  # (k,)


def skin_bones(weights: np.ndarray, bodies: list[str], rest: np.ndarray, jaw_pivot: np.ndarray) -> list[Bone]:
    """The bones that move drawn vertices ``weights @ skin vertices`` exactly with the skin.

    ``bodies[i]``: the body carrying skin vertex ``i``: ``"head"`` (fixed, the world frame), ``"jaw"`` (turns about
    ``jaw_pivot``) or a free vertex body (only translates; its rest position is ``rest[i]``). A drawn vertex ``v``
    gets each body's share of its weights. MuJoCo moves it by every bone as if it were rigidly attached to that bone,
    at its own rest position ``v``, so a bone carrying parents at rest centroid ``c`` with weight ``W`` adds the
    error ``W (T(v) - T(c))`` (``W c``: the weighted sum of those parents; weights may be negative): for translating
    bodies these sum to ``W_jaw (c_jaw - v)``, the jaw's is ``W_jaw R (v - c_jaw)``. Both are cancelled by pairs of bones with opposite weights whose bind positions differ
    by :data:`OFFSET_LEVER` along an axis: on the head they add a constant vector, on the jaw a vector that turns
    with it. The vertex's total weight stays 1.
    """
    weights = np.asarray(weights, dtype=float)
    rest = np.asarray(rest, dtype=float)
    names = list(dict.fromkeys(["head", "jaw", *bodies]))  # the offset bones need the head's and the jaw's
    col = np.array([names.index(b) for b in bodies])
    onehot = np.zeros((len(bodies), len(names)))
    onehot[np.arange(len(bodies)), col] = 1.0
    share = weights @ onehot  # (n, bodies)
    v = weights @ rest
    jaw = np.array([b == "jaw" for b in bodies])
    w_jaw = weights[:, jaw].sum(axis=1)
    const = w_jaw[:, None] * v - weights[:, jaw] @ rest[jaw]  # W (v - c): to add, fixed, it cancels W (c - v)
    const[np.abs(const) < 1e-12] = 0.0
    turning = -const  # to add, turning with the jaw: cancels W R (v - c)
    # a pair (weight a at bind + L e_k, -a at bind) adds -a L e_k (turned with the body)
    head_off, jaw_off = -const / OFFSET_LEVER, -turning / OFFSET_LEVER
    extra = {"head": -head_off.sum(axis=1), "jaw": -jaw_off.sum(axis=1)}
    bones = []
    for j, name in enumerate(names):
        w = share[:, j] + extra.get(name, 0.0)
        bind = np.zeros(3) if name == "head" else (np.asarray(jaw_pivot, float) if name == "jaw" else
                                                     rest[col == j][0])
        bones.append(_bone(name, bind, w))
    lever = OFFSET_LEVER * np.eye(3)
    for name, base, off in (("head", np.zeros(3), head_off), ("jaw", np.asarray(jaw_pivot, float), jaw_off)):
        bones += [_bone(name, base + lever[k], off[:, k]) for k in range(3)]
    return [b for b in bones if len(b.vertid)]


def _bone(body: str, bindpos: np.ndarray, w: np.ndarray) -> Bone:
    ids = np.flatnonzero(w != 0.0)
    return Bone(body, np.asarray(bindpos, dtype=float), ids, w[ids])


def split_along(surface: RenderSurface, values: np.ndarray) -> tuple[RenderSurface, np.ndarray]:
    """``surface`` with every triangle that the zero level of ``values`` (one per drawn vertex, linear over each
    triangle) crosses cut in three along it, and which triangles lie where ``values < 0``.

    The new vertices sit on the edges where the values cross zero, each a combination of its edge's two ends (so of
    the skin's vertices too); neighbouring triangles share them. Materials and parents are kept."""
    f = np.asarray(values, dtype=float)
    f = np.where(f == 0.0, 1e-12, f)  # no vertex exactly on the line
    weights, rows = list(surface.weights), {}
    tris, parent, mats, inside = [], [], [], []

    def cut(a, b):  # the vertex where edge a-b crosses zero
        key = (min(a, b), max(a, b))
        if key not in rows:
            t = f[a] / (f[a] - f[b])
            rows[key] = len(weights)
            weights.append((1.0 - t) * surface.weights[a] + t * surface.weights[b])
        return rows[key]

    for k, tri in enumerate(surface.triangles.tolist()):
        neg = [f[i] < 0 for i in tri]
        if all(neg) or not any(neg):
            pieces = [(tri, neg[0])]
        else:
            j = next(j for j in range(3) if neg[j] != neg[(j + 1) % 3] and neg[j] != neg[(j + 2) % 3])
            a, b, c = tri[j], tri[(j + 1) % 3], tri[(j + 2) % 3]
            ab, ac = cut(a, b), cut(a, c)
            pieces = [((a, ab, ac), neg[j]), ((ab, b, c), not neg[j]), ((ab, c, ac), not neg[j])]
        for t, side in pieces:
            tris.append(t)
            parent.append(surface.parent[k])
            mats.append(surface.tri_material[k])
            inside.append(side)
    out = RenderSurface(weights=np.array(weights), triangles=np.array(tris, dtype=int),
                        tri_material=np.array(mats), parent=np.array(parent))
    return out, np.array(inside)
