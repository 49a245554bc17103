"""The face's commands: ``facetwin demo``, ``export-xml``, ``build-face``, ``view``, ``info``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from facetwin import __version__

from .table import Command, add_behaviour, behaviour_config, command

COMMANDS: list[Command] = []  # filled by @command, in the order of the definitions below

DEFAULT_DEMO_DIR = "facetwin_out"
DEFAULT_XML = "facetwin_face.xml"
DEMO_SONG = "happy_birthday"  # the shortest built-in song (15 s)


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=DEFAULT_DEMO_DIR, help=f"output folder (default: ./{DEFAULT_DEMO_DIR})")
    _variant(parser)
    parser.add_argument("--seconds", type=float, default=6.0, help="length of the random-expression video (default: 6)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the video (default: 0)")
    parser.add_argument("--song", default=DEMO_SONG,
                        help=f"the built-in song the twin sings into song.mp4 (default {DEMO_SONG}; 'none': skip)")
    add_behaviour(parser)


@command(COMMANDS, "demo", add_demo_arguments,
         "render expressions, a landmark overlay, a contact sheet, a video and the twin singing a song")
def cmd_demo(args: argparse.Namespace) -> int:
    if not args.seconds > 0:
        raise ValueError(f"--seconds must be positive, got {args.seconds}")
    from facetwin.audio.songs import list_songs

    if args.song != "none" and args.song not in list_songs():
        raise ValueError(f"--song: unknown song {args.song!r}; choose one of {', '.join(list_songs())} or none")
    behaviour = behaviour_config(args)  # a bad --emotion fails here, before any work
    out_dir = Path(args.out)
    from facetwin.sim.demo import run_demo

    result = run_demo(out_dir, variant=args.variant, seconds=args.seconds, seed=args.seed)
    if args.song != "none":
        from facetwin.agents.perform import sing_file

        song = out_dir / "song.mp4"
        perf = sing_file(args.song, song, layout="side_by_side", behaviour=behaviour, progress=True)
        result["files"].append(song)
        print(f"the twin sings {args.song}: {song} ({perf.video.duration_s:.1f} s, audio "
              f"{'muxed' if perf.video.has_audio else 'missing'})")
    print(f"wrote {len(result['files'])} files to {out_dir.resolve()}:")
    for f in result["files"]:
        print(f"  {f}")
    print("\nmouth measures (mm; protrusion relative to the neutral face):")
    print(f"  {'expression':<12} {'aperture':>9} {'width':>8} {'protrusion':>11}")
    for name, m in result["mouth"].items():
        a, w, p = (round(m[k], 2) + 0.0 for k in ("aperture_mm", "width_mm", "protrusion_mm"))  # no "-0.00"
        print(f"  {name:<12} {a:9.2f} {w:8.2f} {p:11.2f}")
    return 0


def add_build_face_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mesh", required=True, help="the face's surface: .obj, .stl, .ply, .glb or .gltf")
    parser.add_argument("--landmarks", default=None,
                        help='JSON map {"mp_id": vertex_index, ...} of MediaPipe landmarks on the mesh (>= 4; optional)')
    parser.add_argument("--scale", type=float, default=None,
                        help="metres per mesh unit (default: guessed from the size: m, cm, mm or inch)")
    parser.add_argument("--out", required=True, help="the model folder to write (face.xml, scene.xml, README, ...)")


@command(COMMANDS, "build-face", add_build_face_arguments,
         "make a face model folder from a face mesh (scan, skin mold) fitted with the canonical face")
def cmd_build_face(args: argparse.Namespace) -> int:
    from facetwin.sim.model_folder import build_face

    if args.scale is not None and not args.scale > 0:
        raise ValueError(f"--scale must be positive, got {args.scale}")
    built = build_face(args.mesh, args.out, landmarks=args.landmarks, scale_to_metres=args.scale)
    print(f"wrote {built.folder.resolve()}: fit {100 * built.residual:.2f} % of the inter-ocular distance "
          f"({built.inter_ocular_mm:.1f} mm)")
    for name, m in built.mouth.items():
        print(f"  {name}: aperture {m['aperture_mm']:5.2f} mm, width x{m['width_ratio']:.3f}, "
              f"protrusion {m['protrusion_mm']:5.2f} mm  {'ok' if built.passed[name] else 'below the bar'}")
    return 0


# ---------------------------------------------------------------------------------------------------- others
def add_export_xml_arguments(parser: argparse.ArgumentParser) -> None:
    _variant(parser)
    parser.add_argument("--out", default=DEFAULT_XML, help=f"output path (default: ./{DEFAULT_XML})")


@command(COMMANDS, "export-xml", add_export_xml_arguments, "write the standalone MJCF of the face")
def cmd_export_xml(args: argparse.Namespace) -> int:
    from facetwin.sim.model import FaceModel

    path = FaceModel.load(args.variant).export_xml(args.out)
    print(path.resolve())
    return 0


def has_display() -> bool:
    """Whether an interactive window can be opened (a desktop session on macOS/Windows, X11 or Wayland on Linux)."""
    if sys.platform == "darwin" or sys.platform.startswith("win"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _variant(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", choices=("full", "fast"), default="full", help="model variant (default: full)")


@command(COMMANDS, "view", _variant, "open the interactive MuJoCo viewer (needs a display)")
def cmd_view(args: argparse.Namespace) -> int:
    if not has_display() or os.environ.get("MUJOCO_GL", "glfw") in ("egl", "osmesa"):
        print(
            "facetwin view: no display available for the interactive viewer "
            "(no DISPLAY/WAYLAND_DISPLAY, or MUJOCO_GL is set to an offscreen backend).\n"
            "Use `facetwin demo` to render pictures and a video instead.",
            file=sys.stderr,
        )
        return 2
    import mujoco.viewer

    from facetwin.sim.model import FaceModel

    face = FaceModel.load(args.variant)
    print(f"facetwin view: {args.variant} model; the neck joints move the room (camera, lights) around the head.")
    mujoco.viewer.launch(face.model, face.data)
    return 0


@command(COMMANDS, "info", _variant, "list the actuators and model statistics")
def cmd_info(args: argparse.Namespace) -> int:
    from facetwin.sim.builder import VARIANTS
    from facetwin.sim.model import FaceModel

    face = FaceModel.load(args.variant)
    m = face.model
    print(f"facetwin {__version__}  model variant {face.variant!r}: {VARIANTS[face.variant].description}")
    print(
        f"  nq={m.nq} nv={m.nv} nu={m.nu} nbody={m.nbody} flex vertices={int(m.flex_vertnum.sum())} "
        f"landmarks={face.n_landmarks}"
    )
    print(
        f"  timestep={m.opt.timestep:.6g} s  substeps={face.substeps}  control={face.control_hz:g} Hz "
        f"(one control step = {face.substeps} physics steps)"
    )
    print(f"\n  {'idx':>3}  {'name':<22} {'region':<8} {'rest':>5}  description")
    for a in face.actuators:
        print(f"  {a.index:>3}  {a.name:<22} {a.region:<8} {a.rest:>5g}  {a.description}")
    return 0
