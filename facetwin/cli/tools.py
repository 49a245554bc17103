"""Tools for whoever builds the robot or the shipped data: ``facetwin emulate`` (a Dynamixel chain on a
pseudo-terminal, to dry-run ``deploy --backend serial`` without servos), ``facetwin train-self-model`` (the
self-model alone, as ``train-lipsync`` trains it), ``facetwin build-lip-shapes`` (the face's lip shape table)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from pathlib import Path

import numpy as np

from .table import Command, add_quiet, command

COMMANDS: list[Command] = []  # filled by @command, in the order of the definitions below


# ---------------------------------------------------------------------------------------------------- emulate
def add_emulate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ids", default="1-26", help="servo ids: 1-26 or 1,2,5 (default 1-26)")
    parser.add_argument("--speed", type=float, default=3000.0, help="ticks per second toward the goal")


@command(COMMANDS, "emulate", add_emulate_arguments,
         "serve emulated Dynamixel servos on a pseudo-terminal (dry-run deploy --backend serial)")
def main_emulate(args: argparse.Namespace) -> int:
    """Serve an emulated chain until Ctrl-C or SIGTERM; prints the port to give ``deploy --port``."""
    from facetwin.hardware.emulator import DynamixelEmulator

    ids: list[int] = []
    for part in args.ids.split(","):
        lo, _, hi = part.partition("-")
        try:
            ids += range(int(lo), int(hi or lo) + 1)
        except ValueError:
            raise ValueError(f"--ids: servo ids like 1-26 or 1,2,5, got {args.ids!r}") from None
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with DynamixelEmulator(ids=ids, speed=args.speed) as emu:
        print(f"{len(ids)} servos on {emu.port} (Ctrl-C or SIGTERM to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while not done.wait(0.5):
                pass
    return 0


# ---------------------------------------------------------------------------------------------------- train-self-model
def add_self_model_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``facetwin train-self-model``."""
    from facetwin.agents.train_self_model import DEFAULT_EPOCHS

    parser.add_argument("--babble", required=True, help="babble .npz (distribution speech, settle 1 s)")
    parser.add_argument("--out", default=None, help="checkpoint (default: the shipped one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-minutes", type=float, default=10.0, help="wall-time cap of the training")
    parser.add_argument("--epochs", type=int, nargs=2, default=list(DEFAULT_EPOCHS), metavar=("FORWARD", "INVERSE"))
    parser.add_argument("--heldout-fraction", type=float, default=0.1)
    parser.add_argument("--round-trip-n", type=int, default=100, help="held-out expressions run in the simulator")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    add_quiet(parser, "no progress bar or log")
    return parser


@command(COMMANDS, "train-self-model", add_self_model_arguments,
         "train the self-model (motors -> lips) from a babble file")
def main_self_model(args: argparse.Namespace) -> int:
    """Train, measure the round trip on held-out expressions, save (see :func:`add_self_model_arguments`)."""
    import torch

    from facetwin.agents.train_self_model import evaluate_round_trip, train_self_model
    from facetwin.agents.weights import SELF_MODEL_FILE, shipped_weights_dir

    torch.set_num_threads(int(args.threads))
    model, report = train_self_model(args.babble, seed=args.seed, max_minutes=args.max_minutes,
                                     epochs=tuple(args.epochs), heldout_fraction=args.heldout_fraction,
                                     progress=not args.quiet, log=None if args.quiet else print)
    rt = evaluate_round_trip(model, args.babble, n=args.round_trip_n, heldout_fraction=args.heldout_fraction,
                             progress=not args.quiet)
    out = Path(args.out) if args.out else shipped_weights_dir() / SELF_MODEL_FILE
    model.save(out)
    print(f"wrote {out}: trained in {report['wall_s']:.0f} s on {report['threads']} thread(s); forward held-out "
          f"{report['forward_heldout_mm']:.3f} mm; round trip (sim, {rt['round_trip_n']} held-out expressions) "
          f"{rt['round_trip_abs_mm']:.3f} mm absolute, {rt['round_trip_shape_mm']:.3f} mm shape")
    return 0



# ---------------------------------------------------------------------------------------------------- build-lip-shapes
def add_lip_shapes_arguments(parser: argparse.ArgumentParser) -> None:
    from facetwin.sim.lip_shapes import N_SHAPES, SEED

    parser.add_argument("--out", required=True, help="output .npz (assets/data/lip_shapes.npz)")
    parser.add_argument("-n", type=int, default=N_SHAPES)
    parser.add_argument("--seed", type=int, default=SEED)


@command(COMMANDS, "build-lip-shapes", add_lip_shapes_arguments,
         "rebuild the face's lip shape table (assets/data/lip_shapes.npz)")
def main_lip_shapes(args: argparse.Namespace) -> int:
    from facetwin.files import atomic_write
    from facetwin.sim.lip_shapes import build_lip_shapes

    arrays = build_lip_shapes(args.n, seed=args.seed)
    atomic_write(args.out, lambda tmp: np.savez_compressed(tmp, **arrays))
    print(f"wrote {args.out}: {len(arrays['lips_mm'])} shapes")
    return 0
