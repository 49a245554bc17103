"""The ``facetwin`` command line.

Face: ``demo``, ``export-xml``, ``view``, ``info``. Audio: ``say``, ``sing-audio``, ``align``, ``corpus build``.
Learning: ``babble`` (mirror self-modeling data), ``train`` (SB3 on the Gymnasium environments), ``train-lipsync``
(the self-model and audio-to-lips weights), ``evaluate`` (all lip-sync methods, one table), ``ingest-video``.
Performing: ``lipsync`` (any audio file -> motor commands + simulated face), ``sing`` (an mp4 of the twin singing).
Sim-to-real: ``calibrate`` (a robot's calibration file), ``deploy`` (audio + motor commands on the robot or the twin),
``export-policy`` (TorchScript).

``facetwin demo`` is the first thing to run: it renders the neutral face and a set of named expressions through
the mirror camera, a landmark overlay, a contact sheet and a short video of random expressions.

Layout: this module holds the entry point (:func:`main`: one place for errors and exit codes, output paths and
numbers checked before any work) and the parser; the commands live in modules of this package as a table
(:class:`facetwin.cli.table.Command`: name, help, ``add_arguments``, ``run``) calling plain library functions:
:mod:`facetwin.cli.learning` (babble, train, train-residual, ingest-video),
:mod:`facetwin.cli.lipsync` (lipsync, sing, evaluate, train-lipsync), :mod:`facetwin.cli.robot` (calibrate,
deploy, export-policy). The other commands move there in turn.
"""

from __future__ import annotations

import argparse
import os
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

from facetwin import __version__

DEFAULT_DEMO_DIR = "facetwin_out"
DEFAULT_XML = "facetwin_face.xml"


def cmd_demo(args: argparse.Namespace) -> int:
    if not args.seconds > 0:
        raise ValueError(f"--seconds must be positive, got {args.seconds}")
    out_dir = Path(args.out)
    from facetwin.sim.demo import run_demo

    result = run_demo(out_dir, variant=args.variant, seconds=args.seconds, seed=args.seed)
    print(f"wrote {len(result['files'])} files to {out_dir.resolve()}:")
    for f in result["files"]:
        print(f"  {f}")
    print("\nmouth measures (mm; protrusion relative to the neutral face):")
    print(f"  {'expression':<12} {'aperture':>9} {'width':>8} {'protrusion':>11}")
    for name, m in result["mouth"].items():
        a, w, p = (round(m[k], 2) + 0.0 for k in ("aperture_mm", "width_mm", "protrusion_mm"))  # no "-0.00"
        print(f"  {name:<12} {a:9.2f} {w:8.2f} {p:11.2f}")
    return 0


# ---------------------------------------------------------------------------------------------------- others
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


# ---------------------------------------------------------------------------------------------------- audio
def _timeline_path(out: Path) -> Path:
    return out.with_name(out.stem + ".phones.json")


def _write_utterance(utt, out: str) -> Path:
    from facetwin.audio.io import save_wav

    path = Path(out)
    save_wav(path, utt.audio, utt.sr)
    tl = utt.timeline.save(_timeline_path(path))
    dur = len(utt.audio) / utt.sr
    print(f"wrote {path} ({dur:.2f} s, {utt.sr} Hz) and {tl} ({len(utt.timeline)} phones)")
    print("  " + " ".join(p.phoneme for p in utt.timeline.phones[:40]) + (" ..." if len(utt.timeline) > 40 else ""))
    return path


def cmd_say(args: argparse.Namespace) -> int:
    from facetwin.audio.tts import synthesize

    utt = synthesize(args.text, args.lang, rate_wpm=args.rate, pitch=args.pitch)
    _write_utterance(utt, args.out)
    return 0


def cmd_sing_audio(args: argparse.Namespace) -> int:
    from facetwin.audio.sing import list_songs, load_song, sing

    if args.list or not args.song:
        for name in list_songs():
            song = load_song(name)
            print(f"  {name:<16} {song.title}  (lyrics: {', '.join(song.lyrics)})")
        return 0 if args.list else 2
    utt = sing(args.song, lang=args.lang, tempo_bpm=args.tempo, transpose=args.transpose)
    _write_utterance(utt, args.out)
    return 0


def cmd_align(args: argparse.Namespace) -> int:
    from facetwin.audio.align import align_file

    out = Path(args.out) if args.out else _timeline_path(Path(args.audio))
    if out.exists() and not args.overwrite:  # e.g. the exact timeline `facetwin say` wrote for this file
        raise ValueError(f"--out {out} exists (the timeline of {Path(args.audio).name}?); give --overwrite to replace it")
    timeline = align_file(args.audio, args.text)
    timeline.save(out)
    print(f"wrote {out} ({len(timeline)} phones, {timeline.end:.2f} s)")
    return 0


def cmd_corpus_build(args: argparse.Namespace) -> int:
    from facetwin.audio.corpus import build_corpus

    langs = args.langs.split(",") if args.langs else None
    heldout = [x for x in args.heldout_langs.split(",") if x] if args.heldout_langs else []
    manifest = build_corpus(
        args.out, args.n, langs=langs, heldout_langs=heldout, heldout_fraction=args.heldout_fraction,
        include_songs=not args.no_songs, seed=args.seed, voices=args.voices, salad_fraction=args.salad_fraction,
        n_heldout_voice=args.heldout_voices, song_variants=args.song_variants, kokoro_fraction=args.kokoro_fraction,
        workers=args.workers,
    )
    sizes = {k: len(v) for k, v in manifest["splits"].items()}
    print(f"corpus in {args.out}: {len(manifest['items'])} items, {manifest['total_duration_s']:.1f} s of audio, "
          f"{len(manifest['languages'])} languages; splits {sizes}")
    return 0


# ---------------------------------------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage is one ``--help`` away); subcommand parsers inherit it."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="facetwin", description="MuJoCo digital twin of a humanoid face robot.")
    p.add_argument("--version", action="version", version=f"facetwin {__version__}")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def variant_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--variant", choices=("full", "fast"), default="full", help="model variant (default: full)")

    d = sub.add_parser("demo", help="render expressions, a landmark overlay, a contact sheet and a video")
    d.add_argument("--out", default=DEFAULT_DEMO_DIR, help=f"output folder (default: ./{DEFAULT_DEMO_DIR})")
    variant_arg(d)
    d.add_argument("--seconds", type=float, default=6.0, help="length of the random-expression video (default: 6)")
    d.add_argument("--seed", type=int, default=0, help="random seed of the video (default: 0)")
    d.set_defaults(func=cmd_demo)

    e = sub.add_parser("export-xml", help="write the standalone MJCF of the face")
    variant_arg(e)
    e.add_argument("--out", default=DEFAULT_XML, help=f"output path (default: ./{DEFAULT_XML})")
    e.set_defaults(func=cmd_export_xml)

    v = sub.add_parser("view", help="open the interactive MuJoCo viewer (needs a display)")
    variant_arg(v)
    v.set_defaults(func=cmd_view)

    i = sub.add_parser("info", help="list the actuators and model statistics")
    variant_arg(i)
    i.set_defaults(func=cmd_info)

    sy = sub.add_parser("say", help="speak a text offline (espeak-ng) to a wav plus its phoneme timeline")
    sy.add_argument("text")
    sy.add_argument("--lang", default="en", help="ISO 639-1 language code (default: en)")
    sy.add_argument("--out", default="say.wav", help="output wav; the timeline goes to <out>.phones.json")
    sy.add_argument("--rate", type=int, default=None, help="speaking rate, words per minute")
    sy.add_argument("--pitch", type=int, default=None, help="voice pitch 0-100")
    sy.set_defaults(func=cmd_say)

    sg = sub.add_parser("sing-audio", help="sing a built-in song to a wav plus its phoneme timeline")
    sg.add_argument("song", nargs="?", help="song name (see --list)")
    sg.add_argument("--list", action="store_true", help="list the built-in songs")
    sg.add_argument("--lang", default=None, help="lyrics language (default: the song's first)")
    sg.add_argument("--tempo", type=float, default=None, help="tempo in beats per minute")
    sg.add_argument("--transpose", type=int, default=0, help="semitones")
    sg.add_argument("--out", default="song.wav", help="output wav; the timeline goes to <out>.phones.json")
    sg.set_defaults(func=cmd_sing_audio)

    al = sub.add_parser("align", help="forced-align an English recording with its transcript")
    al.add_argument("audio")
    al.add_argument("--text", required=True, help="the transcript")
    al.add_argument("--out", default=None, help="timeline json (default: <audio>.phones.json)")
    al.add_argument("--overwrite", action="store_true", help="replace an existing timeline json")
    al.set_defaults(func=cmd_align)

    co = sub.add_parser("corpus", help="training corpus tools")
    cosub = co.add_subparsers(dest="corpus_command", required=True, metavar="ACTION")
    cb = cosub.add_parser("build", help="build a multi-language corpus of speech and songs with lip targets")
    cb.add_argument("--out", default="facetwin_corpus", help="output folder (default: ./facetwin_corpus)")
    cb.add_argument("-n", type=int, default=110, help="number of spoken utterances (default: 110)")
    cb.add_argument("--langs", default=None, help="comma-separated ISO 639-1 codes (default: all 11)")
    cb.add_argument("--heldout-langs", default="he", help="comma-separated held-out languages (default: he)")
    cb.add_argument("--heldout-fraction", type=float, default=0.15, help="held-out share of sentences (0.15)")
    cb.add_argument("--no-songs", action="store_true", help="speech only")
    cb.add_argument("--seed", type=int, default=0)
    cb.add_argument("--voices", choices=("default", "diverse"), default="default",
                    help="default: each language's espeak-ng voice; diverse: a drawn voice and channel per item "
                         "(speaker variants, WORLD perturbation, noise, reverberation, band limits)")
    cb.add_argument("--heldout-voices", type=int, default=0,
                    help="with --voices diverse: items by held-out voices reading held-out sentences (default 0)")
    cb.add_argument("--salad-fraction", type=float, default=0.0,
                    help="with --voices diverse: share of word salads of real words (default 0)")
    cb.add_argument("--kokoro-fraction", type=float, default=0.0,
                    help="with --voices diverse: share spoken by the Kokoro-82M neural voice ([voices] extra; default 0)")
    cb.add_argument("--song-variants", type=int, default=1, help="times each song is sung (default 1)")
    cb.add_argument("--workers", type=int, default=1, help="worker processes (same files for any count; default 1)")
    cb.set_defaults(func=cmd_corpus_build)

    from . import learning, lipsync, robot

    for group in (learning, lipsync, robot):  # the commands written as a table (the others move there in turn)
        for c in group.COMMANDS:
            c.add_arguments(sp := sub.add_parser(c.name, help=c.help))
            sp.set_defaults(func=c.run)
    return p


#: every file (suffix or None) or folder each command writes: checked before any work starts (``check_outputs``)
OUTPUTS: dict[str, dict[str, tuple[str, str | None]]] = {
    "demo": {"out": ("folder", None)},
    "export-xml": {"out": ("file", None)},
    "say": {"out": ("file", None)},
    "sing-audio": {"out": ("file", None)},
    "align": {"out": ("file", ".json")},
    "corpus build": {"out": ("folder", None)},
    "babble": {"out": ("file", ".npz")},
    "train": {"out": ("folder", None)},
    "lipsync": {"out": ("file", ".npz"), "video": ("file", ".mp4")},
    "sing": {"out": ("file", ".mp4")},
    "evaluate": {"json": ("file", None)},
    "train-lipsync": {"out": ("folder", None)},
    "train-residual": {"out": ("folder", None)},
    "ingest-video": {"corpus": ("folder", None)},
    "calibrate": {"out": ("file", ".json")},
    "deploy": {"log": ("file", ".npz")},
    "export-policy": {"out": ("folder", None)},
}


def check_outputs(args: argparse.Namespace) -> None:
    """Every output of the command (:data:`OUTPUTS`) can be written: ``ValueError`` naming the option and the path
    otherwise, before any work starts."""
    from facetwin.files import check_writable, check_writable_folder

    key = args.command + (f" {args.corpus_command}" if getattr(args, "corpus_command", None) else "")
    for name, (kind, suffix) in OUTPUTS.get(key, {}).items():
        value = getattr(args, name, None)
        if value is None:
            continue
        opt = "--" + name.replace("_", "-")
        path = Path(value)
        if suffix is not None and path.suffix.lower() != suffix:
            raise ValueError(f"{opt} {path}: must be a {suffix} file")
        try:
            (check_writable if kind == "file" else check_writable_folder)(path)
        except ValueError as e:
            raise ValueError(f"{opt}: {e}") from None


def check_numbers(args: argparse.Namespace) -> None:
    """No option of any command takes NaN or infinity: ``ValueError`` naming the option, before any work."""
    import math

    for name, value in vars(args).items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"--{name.replace('_', '-')} must be a finite number, got {value}")


#: exceptions that mean bad input (a file, a path, a number): one line, exit code 2
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile)


def error_message(exc: BaseException) -> str:
    """One line for a user error: the problem and the path or field it names."""
    if isinstance(exc, KeyError) and exc.args:
        msg = str(exc.args[0])
    elif isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        msg = f"{exc.filename}: {exc.strerror}"
    elif isinstance(exc, zipfile.BadZipFile):
        msg = f"not a valid archive ({exc})"
    else:
        msg = str(exc) or type(exc).__name__
    return " ".join(msg.split())  # one line


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``facetwin`` command; returns the exit code: 0, 2 for bad input (one line on stderr),
    3 when the robot's hardware failed (a servo bus or a servo: ``calibrate``, ``deploy``), 1 for an internal
    error (one line; ``--debug`` or ``FACETWIN_DEBUG=1`` shows the traceback), 130 on Ctrl-C."""
    from facetwin.hardware.bus import EXIT_FAULT, BusError
    args = build_parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False) or os.environ.get("FACETWIN_DEBUG"))
    try:
        check_numbers(args)
        check_outputs(args)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"facetwin {args.command}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:  # bad input: a clear message, no traceback
        if debug:
            raise
        print(f"facetwin {args.command}: error: {error_message(exc)}", file=sys.stderr)
        return 2
    except BusError as exc:  # the hardware failed (the driver relaxed what it could)
        if debug:
            raise
        print(f"facetwin {args.command}: robot fault: {error_message(exc)}", file=sys.stderr)
        return EXIT_FAULT
    except Exception as exc:  # a bug: still one line, the traceback on request
        if debug:
            raise
        print(f"facetwin {args.command}: internal error: {type(exc).__name__}: {error_message(exc)} "
              "(run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
