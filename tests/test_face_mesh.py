"""A user's face mesh (scan, skin mold) read, cleaned, and fitted with the canonical face (facetwin.sim.face_mesh,
facetwin.sim.face_registration)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from facetwin.sim.face_mesh import (
    LEFT_EYE,
    LOWER_INNER_LIP,
    RIGHT_EYE,
    UPPER_INNER_LIP,
    MeshError,
    boundary_loops,
    canonical_face,
    eye_triangles,
    guess_scale_to_metres,
    load_face_mesh,
    load_landmark_map,
    mouth_slit_triangles,
)
from facetwin.sim.face_registration import closest_point, inter_ocular, register_to_canonical

# landmarks a user would click: nose, eye and mouth corners, chin, forehead, cheeks, lips, nose bridge
CLICKED = (1, 4, 33, 263, 133, 362, 61, 291, 152, 10, 234, 454, 13, 14, 168, 200)


def _loop_vertices(mesh: trimesh.Trimesh) -> list[set[int]]:
    return [set(np.unique(edges).tolist()) for edges in boundary_loops(mesh)]


def test_canonical_face_is_one_consistently_wound_sheet():
    face = canonical_face()
    assert face.vertices.shape == (468, 3) and face.faces.shape == (898, 3)
    assert face.is_winding_consistent
    assert len(boundary_loops(face)) == 1  # the outline
    assert face.vertices[4, 2] == face.vertices[:, 2].max()  # the nose tip looks toward +z
    assert face.vertices[33, 0] < 0 < face.vertices[263, 0]  # +x is the subject's left
    assert inter_ocular(face.vertices) == pytest.approx(8.8917, abs=1e-3)  # cm
    face.vertices[0] += 1.0
    assert canonical_face().vertices[0, 0] == 0.0  # a copy: the cache is untouched


def test_cutting_the_mouth_and_eyes_open_gives_four_loops():
    face = canonical_face()
    mouth, eyes = mouth_slit_triangles(), eye_triangles()
    assert (len(mouth), len(eyes)) == (18, 28)  # a 20-gon and two 16-gons, triangulated
    keep = np.ones(len(face.faces), bool)
    keep[np.concatenate([mouth, eyes])] = False
    cut = trimesh.Trimesh(face.vertices, face.faces[keep], process=False)
    loops = _loop_vertices(cut)
    assert len(loops) == 4  # outline, mouth, two eyes
    lips = set(UPPER_INNER_LIP) | set(LOWER_INNER_LIP)
    assert lips in loops and set(RIGHT_EYE) in loops and set(LEFT_EYE) in loops
    slit = sorted(lips, key=lambda i: face.vertices[i, 0])
    assert (slit[0], slit[-1]) == (78, 308)  # the slit's corners (subject's right, left)


@pytest.mark.parametrize(("factor", "expected"), [(0.01, 1.0), (1.0, 0.01), (10.0, 0.001), (1 / 2.54, 0.0254)])
def test_the_units_are_guessed_from_the_size(factor, expected):
    face = canonical_face()
    face.apply_scale(factor)
    assert guess_scale_to_metres(face) == expected


def _warp(v: np.ndarray) -> np.ndarray:
    """A smooth non-linear change of the face's shape: +-10 % wider and +-5 % taller in places, a 1 cm bulge."""
    x, y, z = v.T
    return np.column_stack([x * (1 + 0.1 * np.sin(np.pi * y / 18)), y * (1 + 0.05 * np.cos(np.pi * x / 16)),
                            z + np.exp(-((x - 2) ** 2 + (y - 1) ** 2) / 30) - 0.05 * x ** 2 / 8])


TURN = Rotation.from_rotvec([0.4, -0.9, 0.3]).as_matrix()
SHIFT = np.array([120.0, -40.0, 300.0])


def _user_face(path):
    """A user's scan made from the canonical face: warped, in mm, turned and moved, subdivided (other topology;
    its first 468 vertices are the canonical ones); written to ``path``; returns the true landmark positions."""
    face = canonical_face()
    truth = _warp(face.vertices) * 10.0 @ TURN.T + SHIFT
    vertices, faces = trimesh.remesh.subdivide(truth, face.faces)
    trimesh.Trimesh(vertices, faces, process=False).export(path)
    return truth


@pytest.mark.parametrize(("suffix", "clicked", "median_limit", "p95_limit"), [
    # measured (median, 95th percentile of the 468 vertices' errors, in inter-ocular distances):
    # without landmarks 0.021, 0.074; with the 16 clicked ones 0.013, 0.049
    (".ply", False, 0.03, 0.09), (".stl", False, 0.03, 0.09), (".obj", True, 0.02, 0.065),
    (".ply", True, 0.02, 0.065)])
def test_a_warped_turned_scan_in_mm_is_registered(tmp_path, suffix, clicked, median_limit, p95_limit):
    path = tmp_path / f"scan{suffix}"
    truth = _user_face(path)
    landmarks = None
    if clicked:
        (tmp_path / "map.json").write_text(json.dumps({str(i): i for i in CLICKED}))
        landmarks = load_landmark_map(tmp_path / "map.json", n_vertices=len(truth) + 2000)
    mesh = load_face_mesh(path)
    reg = register_to_canonical(mesh, landmarks)
    assert reg.scale_to_metres == 0.001
    assert reg.vertices.shape == (468, 3)
    error = np.linalg.norm(reg.vertices - truth, axis=1) / inter_ocular(truth)
    assert np.median(error) < median_limit and np.percentile(error, 95) < p95_limit, (np.median(error),
                                                                                      np.percentile(error, 95))
    assert reg.residual < 0.01  # measured 0.001
    assert closest_point(mesh, reg.vertices)[1].max() < 1e-6 * inter_ocular(truth)  # on the surface
    rigid = trimesh.transform_points(canonical_face().vertices, reg.rigid)
    assert np.median(np.linalg.norm(rigid - truth, axis=1)) < 0.06 * inter_ocular(truth)  # measured 0.04
    assert np.cbrt(np.linalg.det(reg.rigid[:3, :3])) == pytest.approx(10.0, rel=0.05)  # cm -> mm


def _write(path, vertices, faces):
    trimesh.Trimesh(np.asarray(vertices, float), np.asarray(faces), process=False).export(path)
    return path


def _two_faces(path):
    face = canonical_face()
    return _write(path, np.vstack([face.vertices, face.vertices + [40.0, 0, 0]]),
                  np.vstack([face.faces, face.faces + 468]))


def _text(content):
    def make(path):
        path.write_text(content)
        return path
    return make


BAD = {
    "empty.obj": (_text(""), "empty"),
    "words.obj": (_text("this is not a mesh\nv 0 0 0\n"), "no triangles"),
    "nan.obj": (_text("v 0 0 0\nv 1 0 0\nv 0 nan 0\nv 1 1 0\nf 1 2 3\nf 2 4 3\n"), "non-finite"),
    "fan.obj": (lambda p: _write(p, [[0, 0, 0], [0, 0, 10], [10, 0, 0], [-5, 8, 0], [-5, -8, 0]],
                                 [[0, 1, 2], [0, 1, 3], [0, 1, 4]]), "non-manifold"),
    "twins.ply": (_two_faces, "several separate surfaces"),
    "planet.stl": (lambda p: _write(p, *_sphere(1500.0)), "wrong scale or units"),
    "broken.ply": (_text("garbage"), "cannot read"),
    "face.fbx": (_text("x"), "unsupported file type"),
    "missing.obj": (lambda p: p, "no such file"),
}


def _sphere(radius):
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=radius)
    return sphere.vertices, sphere.faces


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_mesh_is_refused_naming_the_file(tmp_path, name):
    make, words = BAD[name]
    path = make(tmp_path / name)
    with pytest.raises(MeshError) as info:
        load_face_mesh(path)
    message = str(info.value)
    assert str(path) in message and words in message and "\n" not in message, message


@pytest.mark.parametrize(("name", "shape"), [
    ("ball.ply", trimesh.creation.icosphere(subdivisions=4, radius=9.0)),  # cm
    ("block.stl", trimesh.creation.box(extents=(150.0, 150.0, 150.0)).subdivide().subdivide().subdivide()),  # mm
])
def test_a_sphere_or_a_cube_is_no_face(tmp_path, name, shape):
    shape.export(tmp_path / name)
    mesh = load_face_mesh(tmp_path / name)
    with pytest.raises(MeshError, match=f"no face found in {tmp_path / name}: the canonical face fits"):
        register_to_canonical(mesh)


def test_small_holes_are_filled_and_a_fin_is_dropped(tmp_path):
    face = canonical_face()
    vertices, faces = trimesh.remesh.subdivide(face.vertices * 10.0, face.faces)
    cheek = np.argsort(np.linalg.norm(vertices[faces].mean(axis=1) - vertices[205], axis=1))[:3]
    holed = np.delete(faces, cheek, axis=0)
    assert len(boundary_loops(trimesh.Trimesh(vertices, holed, process=False))) == 2
    mesh = load_face_mesh(_write(tmp_path / "holed.ply", vertices, holed))
    assert len(boundary_loops(mesh)) == 1 and mesh.is_winding_consistent
    assert mesh.area == pytest.approx(100.0 * face.area, rel=1e-3)
    edge = faces[1000, :2]  # a third triangle on an inner edge: dropped with the two it shares the edge with
    fin = np.vstack([vertices, vertices[edge].mean(axis=0) + [0, 0, 30.0]])
    mesh = load_face_mesh(_write(tmp_path / "fin.obj", fin, np.vstack([faces, [[*edge, len(vertices)]]])))
    assert len(boundary_loops(mesh)) == 1 and len(mesh.faces) == len(faces) - 2 + 4  # the hole fan-filled


def test_a_stray_bit_is_dropped(tmp_path):
    face = canonical_face()
    crumb = np.array([[50.0, 0, 0], [50.5, 0, 0], [50, 0.5, 0]])
    mesh = load_face_mesh(_write(tmp_path / "crumb.obj", np.vstack([face.vertices, crumb]),
                                 np.vstack([face.faces, [[468, 469, 470]]])))
    assert mesh.faces.shape == (898, 3) and mesh.area == pytest.approx(face.area)


@pytest.mark.parametrize(("content", "words"), [
    ('{"1": 5, "x": 3}', "'x' is not an integer"), ('{"1": 2.5}', "2.5 is not an integer"),
    ('{"1": 5000}', "out of range"), ('{"468": 1}', "unknown MediaPipe landmark id 468"), ("[1, 2]", "JSON object"),
    ("{", "not valid JSON")])
def test_a_bad_landmark_map_is_refused_naming_the_file(tmp_path, content, words):
    path = tmp_path / "map.json"
    path.write_text(content)
    with pytest.raises(MeshError) as info:
        load_landmark_map(path, n_vertices=1000)
    assert str(path) in str(info.value) and words in str(info.value), str(info.value)


def test_too_few_landmarks_are_refused(tmp_path):
    path = tmp_path / "face.obj"
    _user_face(path)
    with pytest.raises(MeshError, match="at least 4"):
        register_to_canonical(load_face_mesh(path), {1: 1, 33: 33, 263: 263})
