"""A face of your own: from a mesh file to a model folder in the style of MuJoCo Menagerie (``facetwin build-face``).

:func:`build_face` reads and cleans the mesh (:mod:`facetwin.sim.face_mesh`), fits the canonical face to it
(:mod:`facetwin.sim.face_registration`), turns the fitted 468 vertices into a face design (the skin, the skull, jaw
and eyes under it, the 26 actuators by landmark correspondence: :func:`facetwin.sim.face_design.mesh_design`),
measures the four mouth targets on it and writes the folder:

| file | what |
|---|---|
| ``face.xml`` | the complete, standalone model (reference variant, physics at 300 Hz) |
| ``face_fast.xml`` | the training variant (same face, larger physics step) |
| ``scene.xml`` | ``face.xml`` in front of a sky gradient |
| ``design.npz`` | the face's 468 vertices in the head frame (m): :func:`load_design` rebuilds the design from it |
| ``README.md`` | where the face comes from (file, units, fit) and its measured mouth targets |
| ``LICENSE`` | the terms: facetwin's Apache-2.0 for the model; the surface is the mesh owner's |

Use it: ``FaceModel.load("full", load_design("my_face/"))`` or open ``my_face/scene.xml`` in any MuJoCo viewer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin.files import atomic_write

from .face_design import FaceDesign, mesh_design, registered_head_frame

DESIGN_FILE = "design.npz"
FILES = ("face.xml", "face_fast.xml", "scene.xml", DESIGN_FILE, "README.md", "LICENSE")
SCENE_XML = """<mujoco model="facetwin scene">
  <!-- A facetwin face in front of its mirror. face.xml is the complete model (written by `facetwin build-face`);
       this scene adds a sky gradient so that free-camera views look tidy. -->
  <include file="face.xml"/>
  <statistic center="0.05 0 -0.02" extent="0.35"/>
  <asset>
    <texture type="skybox" builtin="gradient" rgb1="0.85 0.88 0.92" rgb2="0.55 0.60 0.68" width="256" height="256"/>
  </asset>
</mujoco>
"""
#: the mouth targets (names of facetwin.sim.expressions) and what the built-in face is held to
MOUTH_BARS = {
    "mm": "aperture in [-0.2, 1] mm",
    "ah": "aperture >= 15 mm",
    "ee": "width >= 1.15 x neutral",
    "oo": "width <= 0.75 x neutral, aperture <= 6 mm, protrusion >= 3 mm",
}


@dataclass(frozen=True)
class BuiltFace:
    """What :func:`build_face` made: the folder, the design, the fit and the measured mouth targets."""

    folder: Path
    design: FaceDesign
    scale_to_metres: float
    residual: float  # the fit's median distance to the surface, in inter-ocular distances
    inter_ocular_mm: float
    mouth: dict[str, dict[str, float]]  # target -> aperture_mm, width_ratio, protrusion_mm
    passed: dict[str, bool]  # target -> meets MOUTH_BARS


def load_design(folder: str | Path, name: str | None = None) -> FaceDesign:
    """The face design of a model folder written by :func:`build_face` (``ValueError`` naming the file when it is
    missing or damaged)."""
    path = Path(folder) / DESIGN_FILE
    try:
        with np.load(path) as z:
            vertices = np.asarray(z["vertices_m"], dtype=float)
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"{path}: not a facetwin face design ({e})") from None
    return mesh_design(vertices, name=name or Path(folder).name)


def measure_mouth(design: FaceDesign, variant: str = "fast") -> tuple[dict[str, dict[str, float]], dict[str, bool]]:
    """The four mouth targets settled on ``design``: their measures and whether each meets :data:`MOUTH_BARS`."""
    from .expressions import EXPRESSIONS
    from .model import FaceModel

    face = FaceModel.load(variant, design)
    w0 = face.mouth()["width_mm"]
    out = {}
    for name in MOUTH_BARS:
        face.reset()
        face.settle(face.controls(EXPRESSIONS[name]), 1.0)
        m = face.mouth()
        out[name] = {"aperture_mm": m["aperture_mm"], "width_ratio": m["width_mm"] / w0,
                     "protrusion_mm": m["protrusion_mm"]}
    ok = {"mm": -0.2 <= out["mm"]["aperture_mm"] <= 1.0, "ah": out["ah"]["aperture_mm"] >= 15.0,
          "ee": out["ee"]["width_ratio"] >= 1.15,
          "oo": (out["oo"]["width_ratio"] <= 0.75 and out["oo"]["aperture_mm"] <= 6.0
                 and out["oo"]["protrusion_mm"] >= 3.0)}
    return out, ok


def build_face(mesh: str | Path, out: str | Path, landmarks: str | Path | None = None,
               scale_to_metres: float | None = None) -> BuiltFace:
    """``facetwin build-face``: the model folder ``out`` of the face in the file ``mesh`` (module doc).
    ``landmarks``: a JSON map MediaPipe id -> vertex index of the file (>= 4 pairs; optional); ``scale_to_metres``:
    the mesh's units when the guess would be wrong. :class:`~facetwin.sim.face_mesh.MeshError` for a bad mesh or no
    face found; nothing is written then."""
    from .face_mesh import load_face_mesh, load_landmark_map
    from .face_registration import inter_ocular, register_to_canonical

    surface = load_face_mesh(mesh)
    pairs = load_landmark_map(landmarks, len(surface.metadata["file_vertices"])) if landmarks is not None else None
    reg = register_to_canonical(surface, pairs, scale_to_metres=scale_to_metres)
    vertices = registered_head_frame(reg.vertices, reg.rigid, reg.scale_to_metres)
    design = mesh_design(vertices, name=Path(out).name)
    mouth, passed = measure_mouth(design)
    built = BuiltFace(folder=Path(out), design=design, scale_to_metres=reg.scale_to_metres, residual=reg.residual,
                      inter_ocular_mm=1000.0 * inter_ocular(vertices), mouth=mouth, passed=passed)
    _write_folder(built, vertices, source=Path(mesh).name)
    return built


def _write_folder(built: BuiltFace, vertices: np.ndarray, source: str) -> None:
    from .builder import build_mjcf

    out = built.folder
    out.mkdir(parents=True, exist_ok=True)
    texts = {"face.xml": build_mjcf("full", built.design), "face_fast.xml": build_mjcf("fast", built.design),
             "scene.xml": SCENE_XML, "README.md": _readme(built, source), "LICENSE": _license(source)}
    for name, text in texts.items():
        atomic_write(out / name, lambda p, t=text: Path(p).write_text(t, encoding="utf-8"))
    atomic_write(out / DESIGN_FILE, lambda p: np.savez_compressed(p, vertices_m=vertices))


def _readme(built: BuiltFace, source: str) -> str:
    rows = "\n".join(
        f"| `{k}` | {m['aperture_mm']:.2f} mm | {m['width_ratio']:.3f} | {m['protrusion_mm']:.2f} mm | {MOUTH_BARS[k]} "
        f"| {'yes' if built.passed[k] else '**no**'} |" for k, m in built.mouth.items())
    return f"""# {built.folder.name}: a facetwin face

Built by `facetwin build-face` from `{source}`: the mesh was read in units of {built.scale_to_metres:g} m, the
MediaPipe canonical face fitted to it (median distance to the surface {100 * built.residual:.2f} % of the
inter-ocular distance, {built.inter_ocular_mm:.1f} mm between the outer eye corners), and the skin, skull, jaw, eyes
and the 26 actuators placed by landmark correspondence, as for facetwin's built-in face.

| file | what |
|---|---|
| `face.xml` | the complete model (reference variant, physics at 300 Hz) |
| `face_fast.xml` | the training variant |
| `scene.xml` | `face.xml` in front of a sky gradient: `python -m mujoco.viewer --mjcf scene.xml` |
| `design.npz` | the 468 head-frame vertices: `FaceModel.load("full", load_design("{built.folder.name}"))` |

Mouth targets (`facetwin.sim.expressions`, settled 1 s, training variant):

| target | aperture | width / neutral | protrusion | built-in face's bar | met |
|---|---:|---:|---:|---|---|
{rows}
"""


def _license(source: str) -> str:
    return f"""The model files in this folder were generated by facetwin (Apache License 2.0, see facetwin's LICENSE).
The face's surface comes from `{source}`: its shape remains under its owner's terms. The canonical face topology
is MediaPipe's canonical face model (Copyright The MediaPipe Authors, Apache License 2.0).
"""


__all__ = ["BuiltFace", "DESIGN_FILE", "FILES", "MOUTH_BARS", "build_face", "load_design", "measure_mouth"]
