"""The ``facetwin`` command line.

Face: ``demo``, ``export-xml``, ``view``, ``info``. Audio: ``say``, ``sing-audio``, ``align``, ``corpus build``.
Learning: ``babble`` (mirror self-modeling data), ``train`` (SB3 on the Gymnasium environments), ``sweep`` (studies
of ``train`` trials on Ray Tune, locally or on a cluster), ``train-lipsync``
(the self-model and audio-to-lips weights), ``evaluate`` (all lip-sync methods, one table), ``ingest-video``.
Performing: ``lipsync`` (any audio file -> motor commands + simulated face), ``sing`` (an mp4 of the twin singing).
Sim-to-real: ``calibrate`` (a robot's calibration file), ``deploy`` (audio + motor commands on the robot or the twin),
``live`` (a live voice: microphone, file or stdin, lip-synced on the twin or the robot), ``export-policy`` (TorchScript).

``facetwin demo`` is the first thing to run: it renders the neutral face and a set of named expressions through
the mirror camera, a landmark overlay, a contact sheet and a short video of random expressions.

Layout: this module holds the entry point (:func:`main`: one place for errors and exit codes, output paths and
numbers checked before any work) and the parser; the commands live in modules of this package as a table
(:class:`facetwin.cli.table.Command`: name, help, ``add_arguments``, ``run``) calling plain library functions:
:mod:`facetwin.cli.face` (demo, export-xml, view, info), :mod:`facetwin.cli.speech` (say, sing-audio, align,
corpus build), :mod:`facetwin.cli.learning` (babble, train, sweep, train-residual, ingest-video),
:mod:`facetwin.cli.lipsync` (lipsync, sing, evaluate, train-lipsync), :mod:`facetwin.cli.robot` (calibrate,
deploy, export-policy, live), :mod:`facetwin.cli.tools` (emulate, train-self-model, build-lip-shapes).
"""

from __future__ import annotations

import argparse
import os
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

from facetwin import __version__


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

    from . import face, learning, lipsync, robot, speech, tools  # imported here: `import facetwin.cli` stays light

    for group in (face, speech, learning, lipsync, robot, tools):
        for c in group.COMMANDS:
            c.add_arguments(sp := sub.add_parser(c.name, help=c.help))
            sp.set_defaults(func=c.run)
    return p


#: every file (suffix or None) or folder each command writes: checked before any work starts (``check_outputs``)
OUTPUTS: dict[str, dict[str, tuple[str, str | None]]] = {
    "demo": {"out": ("folder", None)},
    "export-xml": {"out": ("file", None)},
    "build-face": {"out": ("folder", None)},
    "say": {"out": ("file", None)},
    "sing-audio": {"out": ("file", None)},
    "align": {"out": ("file", ".json")},
    "corpus build": {"out": ("folder", None)},
    "babble": {"out": ("file", ".npz")},
    "train": {"out": ("folder", None)},
    "sweep": {"out": ("folder", None)},
    "lipsync": {"out": ("file", ".npz"), "video": ("file", ".mp4")},
    "sing": {"out": ("file", ".mp4")},
    "evaluate": {"json": ("file", None)},
    "train-lipsync": {"out": ("folder", None)},
    "train-residual": {"out": ("folder", None)},
    "ingest-video": {"corpus": ("folder", None)},
    "calibrate": {"out": ("file", ".json")},
    "deploy": {"log": ("file", ".npz")},
    "live": {"log": ("file", ".npz")},
    "export-policy": {"out": ("folder", None)},
    "train-self-model": {"out": ("file", ".pt")},
    "build-lip-shapes": {"out": ("file", ".npz")},
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
    3 when the robot's hardware failed (a servo bus or a servo: ``calibrate``, ``deploy``, ``live``; also
    ``live``'s audio device), 1 for an internal error (one line; ``--debug`` or ``FACETWIN_DEBUG=1`` shows the
    traceback), 130 on Ctrl-C."""
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
