"""The lip-sync commands: ``facetwin lipsync``, ``sing``, ``evaluate``, ``train-lipsync`` (each an
``add_*_arguments`` + ``main_*`` pair over the library functions of :mod:`facetwin.agents`)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from facetwin.agents.evaluate import (
    DEFAULT_SPLITS,
    GROUPINGS,
    METHODS,
    RESIDUAL_METHOD,
    evaluate,
    format_table,
    write_report,
)
from facetwin.agents.lipsync import MODES
from facetwin.agents.perform import lipsync_file, sing_file
from facetwin.agents.train_lipsync import DEFAULT_BABBLE_N, train_lipsync
from facetwin.agents.weights import AUDIO_TO_LIPS_FILES, BABBLE_BANK_FILE, SELF_MODEL_FILE, shipped_weights_dir

from .table import Command, add_behaviour, add_quiet, behaviour_config, command

COMMANDS: list[Command] = []  # filled by @command, in the order of the definitions below


# ---------------------------------------------------------------------------------------------------- lipsync, sing
def _add_common_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options ``lipsync`` and ``sing`` share."""
    parser.add_argument("--mode", choices=MODES, default="offline",
                        help="offline: whole file known (default); stream: causal, <= 100 ms lookahead")
    parser.add_argument("--variant", choices=("fast", "full"), default="fast", help="face variant (default fast)")
    parser.add_argument("--weights", default=None, help="folder of weights from `facetwin train-lipsync` (default: shipped)")
    add_quiet(parser)
    return parser


def add_lipsync_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("audio", help="an audio file (wav, flac, ogg, mp3, m4a, ...)")
    parser.add_argument("--out", required=True, help="output .npz (commands and the simulated face)")
    parser.add_argument("--text", default=None,
                        help="what is said: aligned to the audio, it decides the seals, rounding and opening")
    parser.add_argument("--lang", default=None, help="language code of the audio and --text (default en)")
    parser.add_argument("--video", default=None, help="also render an .mp4 of the face with the audio")
    add_behaviour(parser, default_on=False)
    return _add_common_arguments(parser)


@command(COMMANDS, "lipsync", add_lipsync_arguments,
         "lip-sync any audio file: motor commands and the simulated face to .npz")
def main_lipsync(args: argparse.Namespace) -> int:
    res = lipsync_file(args.audio, args.out, mode=args.mode, text=args.text, lang=args.lang, variant=args.variant,
                       video=args.video, weights_dir=args.weights, behaviour=behaviour_config(args),
                       progress=not args.quiet)
    pb = res.playback
    print(f"wrote {args.out}: {res.n_frames} frames ({res.duration_s:.2f} s) at {res.fps:g} fps, mode {res.mode}, "
          f"computed at {res.duration_s / max(res.inference_s, 1e-9):.0f}x real time; aperture "
          f"{np.nanmin(pb.aperture_mm):.1f} .. {np.nanmax(pb.aperture_mm):.1f} mm"
          + (f"; video {args.video}" if args.video else ""))
    return 0


def add_sing_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from facetwin.sim.video import LAYOUTS

    parser.add_argument("song", help="a built-in song name (facetwin sing-audio --list) or an audio file")
    parser.add_argument("--out", default="song.mp4", help="output .mp4 (default song.mp4)")
    parser.add_argument("--lang", default=None, help="lyrics language of a built-in song (default: its first)")
    parser.add_argument("--lyrics", default=None, help="lyrics of an audio file (in --lang), aligned to it")
    parser.add_argument("--tempo", type=float, default=None, help="tempo of a built-in song, beats per minute")
    parser.add_argument("--layout", choices=LAYOUTS, default="mirror",
                        help="mirror (default) or side_by_side (mirror + mouth close-up)")
    parser.add_argument("--plot", action="store_true", help="add a live plot of the aperture vs its target")
    add_behaviour(parser)
    return _add_common_arguments(parser)


@command(COMMANDS, "sing", add_sing_arguments,
         "render the twin singing a built-in song or any audio file (mp4 with audio)")
def main_sing(args: argparse.Namespace) -> int:
    perf = sing_file(args.song, args.out, lang=args.lang, lyrics=args.lyrics, tempo_bpm=args.tempo, mode=args.mode,
                     layout=args.layout, plot=args.plot, variant=args.variant, weights_dir=args.weights,
                     behaviour=behaviour_config(args), progress=not args.quiet)
    v = perf.video
    print(f"wrote {v.path}: {v.n_frames} frames, {v.duration_s:.2f} s, {v.width}x{v.height}, audio "
          f"{'muxed' if v.has_audio else 'missing'}; rendered at {v.render_fps:.0f} fps")
    return 0


# ---------------------------------------------------------------------------------------------------- evaluate
def add_evaluate_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--data", "--corpus", dest="data", default=None,
                        help="a labelled folder (NAME.wav + NAME.segs [+ manifest.json]) or a corpus folder "
                             "(default: the held-out splits of the lip-sync training corpus, built on first use)")
    parser.add_argument("--splits", default=",".join(DEFAULT_SPLITS),
                        help=f"corpus splits, comma-separated (default {','.join(DEFAULT_SPLITS)}; 'all': every item)")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated (default all: {','.join(METHODS)})")
    parser.add_argument("--by", default="lang,voice",
                        help="also print tables per these groupings, comma-separated (split, lang, voice; default "
                             "lang,voice)")
    parser.add_argument("--max-clips", type=int, default=None, help="at most this many clips per split (evenly spread)")
    parser.add_argument("--variant", choices=("fast", "full"), default="fast", help="face variant (default fast)")
    parser.add_argument("--weights", default=None, help="folder of weights from `facetwin train-lipsync` (default: shipped)")
    parser.add_argument("--residual", default=None,
                        help=f"a residual policy from `facetwin train-residual` (adds the method {RESIDUAL_METHOD})")
    parser.add_argument("--json", default=None, help="also write the results (pooled and per clip) as JSON")
    add_behaviour(parser, default_on=False)
    add_quiet(parser)
    return parser


@command(COMMANDS, "evaluate", add_evaluate_arguments,
         "every lip-sync method and baseline on the held-out clips, one table")
def main_evaluate(args: argparse.Namespace) -> int:
    if args.max_clips is not None and args.max_clips < 1:
        raise ValueError(f"--max-clips must be >= 1, got {args.max_clips}")
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        if m not in METHODS and m != RESIDUAL_METHOD:
            raise ValueError(f"--methods: unknown method {m!r}; choose from {', '.join(METHODS)}, {RESIDUAL_METHOD}")
    if args.residual is not None:
        if not Path(args.residual).exists():
            raise FileNotFoundError(f"--residual: {args.residual}: no such policy")
        if RESIDUAL_METHOD not in methods:
            methods.append(RESIDUAL_METHOD)
    by = [b for b in args.by.split(",") if b]
    for b in by:
        if b not in GROUPINGS:
            raise ValueError(f"--by: unknown grouping {b!r}; choose from {', '.join(GROUPINGS)}")
    if args.json:
        from facetwin.files import check_writable

        check_writable(args.json)
    if args.data is not None and not Path(args.data).exists():
        raise FileNotFoundError(f"--data: {args.data}: no such folder")
    report = evaluate(args.data, splits=[s for s in args.splits.split(",") if s], methods=methods,
                      max_clips=args.max_clips, variant=args.variant, weights_dir=args.weights,
                      residual=args.residual, behaviour=behaviour_config(args), progress=not args.quiet)
    print(f"\n### all clips\n\n{format_table(report)}")
    for b in by:
        print(f"\n### by {b}\n\n{format_table(report, b)}")
    if args.json:
        print(f"\nwrote {write_report(report, args.json)}")
    return 0


# ---------------------------------------------------------------------------------------------------- train-lipsync
def add_train_lipsync_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--out", default="lipsync-weights", help="output folder (default ./lipsync-weights)")
    parser.add_argument("--install", action="store_true",
                        help="write the weight files into the package's assets/weights/ (replaces the shipped ones)")
    parser.add_argument("--babble", type=int, default=DEFAULT_BABBLE_N,
                        help=f"babbled expressions (default {DEFAULT_BABBLE_N})")
    parser.add_argument("--self-model-minutes", type=float, default=10.0, help="self-model time cap (default 10)")
    parser.add_argument("--audio-epochs", type=int, default=None, help="passes over the corpus per audio model "
                        "(default: those of the shipped weights)")
    parser.add_argument("--workers", type=int, default=2, help="babbling and corpus processes (default 2)")
    parser.add_argument("--corpus", default=None, help="train the audio models on this corpus folder instead")
    parser.add_argument("--seed", type=int, default=0)
    add_quiet(parser, "no progress bars")
    return parser


@command(COMMANDS, "train-lipsync", add_train_lipsync_arguments, "reproduce the shipped lip-sync weights from scratch")
def main_train_lipsync(args: argparse.Namespace) -> int:
    report = train_lipsync(args.out, babble_n=args.babble, self_model_minutes=args.self_model_minutes,
                           audio_epochs=args.audio_epochs, workers=args.workers, seed=args.seed,
                           corpus_dir=args.corpus, progress=not args.quiet)
    out = Path(args.out)
    if args.install:
        import shutil

        dest = shipped_weights_dir()
        for name in (SELF_MODEL_FILE, BABBLE_BANK_FILE, *AUDIO_TO_LIPS_FILES.values()):
            shutil.copyfile(out / name, dest / name)
        print(f"installed the weights into {dest}")
    print(f"done in {report['seconds'] / 60:.1f} min; weights and train_report.json in {out}")
    return 0
