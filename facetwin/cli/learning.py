"""The learning commands: ``facetwin babble``, ``train``, ``sweep``, ``train-residual``, ``ingest-video`` (each an
``add_*_arguments`` + ``main_*`` pair over the library functions of :mod:`facetwin.envs` and :mod:`facetwin.agents`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from facetwin.agents.rl import train
from facetwin.agents.rl_checkpoint import ALGOS
from facetwin.agents.rl_envs import DEFAULT_ENV_ID, DEFAULT_ENV_KWARGS, MIRROR_ENV_IDS
from facetwin.agents.rl_eval import DEFAULT_EVAL_DOMAIN_SEED, DEFAULT_EVAL_SEED
from facetwin.envs.babble import DEFAULT_CHUNK, DEFAULT_SETTLE_S, DEFAULT_SIGMA, TARGET_DISTRIBUTIONS, babble
from facetwin.envs.babble_executors import DEFAULT_EXECUTOR, EXECUTORS

from .table import Command, add_quiet, command, parse_key_values

COMMANDS: list[Command] = []  # filled by @command, in the order of the definitions below


# ---------------------------------------------------------------------------------------------------- babble
def add_babble_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``facetwin babble``."""
    parser.add_argument("-n", "--n", type=int, default=2000, help="number of expressions (default 2000)")
    parser.add_argument("--out", default="babble.npz", help="output .npz (default babble.npz)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--asymmetric", action="store_true", help="independent left/right actuators")
    parser.add_argument("--images", action="store_true", help="also store 128x128 mouth-camera images")
    parser.add_argument("--variant", default="fast", choices=("fast", "full"))
    parser.add_argument("--sigma", type=float, default=DEFAULT_SIGMA, help="std around the rest controls")
    parser.add_argument("--settle", type=float, default=DEFAULT_SETTLE_S, help="seconds each expression is held")
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="samples per resumable chunk")
    parser.add_argument("--no-resume", action="store_true", help="start over instead of continuing a partial run")
    parser.add_argument("--distribution", default="gaussian", choices=TARGET_DISTRIBUTIONS,
                        help="gaussian around rest (default), uniform, or speech (mouth poses of speech)")
    parser.add_argument("--workers", type=int, default=1, help="chunks simulated in parallel (default 1)")
    parser.add_argument("--executor", default=None, choices=EXECUTORS,
                        help=f"how --workers > 1 run: threads, processes or Ray tasks (default {DEFAULT_EXECUTOR}; "
                        "the same data with any)")
    parser.add_argument("--address", help="with --executor ray: the Ray cluster, e.g. HEAD:6379 (default: local)")
    add_quiet(parser)
    return parser


@command(COMMANDS, "babble", add_babble_arguments,
         "collect random expressions and their landmarks (mirror self-modeling data)")
def main_babble(args: argparse.Namespace) -> int:
    """``facetwin babble``: run :func:`babble` from parsed arguments (see :func:`add_babble_arguments`); 2 with one
    line on stderr when ``--executor ray`` lacks the [scale] extra."""
    try:
        path = babble(
            args.n, args.out, seed=args.seed, symmetric=not args.asymmetric, images=args.images, variant=args.variant,
            sigma=args.sigma, settle_s=args.settle, chunk=args.chunk, progress=not args.quiet,
            resume=not args.no_resume, distribution=args.distribution, workers=args.workers,
            executor=getattr(args, "executor", None), address=getattr(args, "address", None),
        )
    except ImportError as e:
        print(f"facetwin babble: error: {e}", file=sys.stderr)
        return 2
    with np.load(path) as d:
        print(f"wrote {path}: {len(d['ctrl'])} expressions, keys {', '.join(d.files)}")
    return 0


# ---------------------------------------------------------------------------------------------------- train
def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``facetwin train`` arguments."""
    parser.add_argument(
        "--env", default=DEFAULT_ENV_ID, help=f"registered env id or module:Class (default {DEFAULT_ENV_ID})"
    )
    parser.add_argument("--algo", choices=ALGOS, default="sac", help="algorithm (default sac)")
    parser.add_argument("--steps", type=int, default=15_000, help="total environment steps (default 15000)")
    parser.add_argument("--out", type=Path, default=Path("runs/mirror"), help="output folder (default runs/mirror)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parser.add_argument("--n-envs", type=int, default=2, help="parallel envs; >1 uses subprocesses (default 2)")
    parser.add_argument(
        "--env-arg",
        action="append",
        metavar="KEY=VALUE",
        help="env constructor keyword (JSON value), repeatable; default for the mirror env: "
        + " ".join(f"{k}={v}" for k, v in DEFAULT_ENV_KWARGS.items()),
    )
    parser.add_argument(
        "--hp", action="append", metavar="KEY=VALUE", help="SB3 hyper-parameter override (JSON value), repeatable"
    )
    parser.add_argument("--checkpoint-every", type=int, default=10_000, help="steps between checkpoints (0: end only)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.zip towards --steps")
    parser.add_argument("--eval-episodes", type=int, default=50, help="held-out evaluation episodes (0: skip)")
    parser.add_argument("--eval-seed", type=int, default=DEFAULT_EVAL_SEED, help="first reset seed of the evaluation")
    parser.add_argument(
        "--randomize",
        nargs="?",
        const=True,
        default=None,
        metavar="CONFIG",
        help="train with domain randomization: the ranges of the TOML file CONFIG (alone: the default "
        "assets/data/randomization.toml)",
    )
    parser.add_argument(
        "--eval-randomize",
        nargs="?",
        const=True,
        default=None,
        metavar="CONFIG",
        help="also evaluate on held-out randomized twins (alone: the --randomize ranges, or the default file)",
    )
    parser.add_argument(
        "--eval-domain-seed",
        type=int,
        default=DEFAULT_EVAL_DOMAIN_SEED,
        help=f"seed of the held-out randomized twins (default {DEFAULT_EVAL_DOMAIN_SEED})",
    )
    parser.add_argument("--no-normalize", action="store_true", help="do not normalize observations (VecNormalize)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--verbose", type=int, default=0, help="SB3 verbosity (0, 1, 2)")
    return parser


@command(COMMANDS, "train", add_train_arguments, "train a policy with Stable-Baselines3 (SAC or PPO) and evaluate it")
def train_main(args: argparse.Namespace) -> int:
    """Run :func:`train` from parsed :func:`add_train_arguments` arguments; returns an exit code."""
    for opt, value, lo in (("--steps", args.steps, 1), ("--n-envs", args.n_envs, 1),
                           ("--checkpoint-every", args.checkpoint_every, 0),
                           ("--eval-episodes", args.eval_episodes, 0), ("--verbose", args.verbose, 0)):
        if value < lo:
            raise ValueError(f"{opt} must be >= {lo}, got {value}")
    env_kwargs = parse_key_values(args.env_arg, "--env-arg")
    if args.env in MIRROR_ENV_IDS:
        env_kwargs = {**DEFAULT_ENV_KWARGS, **env_kwargs}
    train(
        args.env,
        args.algo,
        args.steps,
        args.out,
        seed=args.seed,
        n_envs=args.n_envs,
        env_kwargs=env_kwargs,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        progress=not args.no_progress,
        eval_episodes=args.eval_episodes,
        eval_seed=args.eval_seed,
        normalize=not args.no_normalize,
        hyperparams=parse_key_values(args.hp, "--hp") or None,
        randomize=getattr(args, "randomize", None),
        eval_randomize=getattr(args, "eval_randomize", None),
        eval_domain_seed=getattr(args, "eval_domain_seed", DEFAULT_EVAL_DOMAIN_SEED),
        verbose=args.verbose,
    )
    return 0


# ---------------------------------------------------------------------------------------------------- sweep
def add_sweep_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``facetwin sweep``."""
    parser.add_argument("config", help="the search space, a TOML file (format: facetwin.agents.sweep_space; "
                        "example: assets/data/sweep_example.toml)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder: results table, plot, best policy (and Tune's experiment unless --storage)")
    parser.add_argument("--address", default=None,
                        help="join the Ray cluster at HOST:PORT ('auto': the one on this node); "
                        "default: a local Ray runtime on this machine")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local runtime (default: every core)")
    parser.add_argument("--storage", default=None,
                        help="where Tune keeps the checkpoints and state, reachable from every node: a shared "
                        "folder or a URI such as s3://bucket/sweeps (default: --out)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the killed sweep in --out: finished trials are not rerun")
    add_quiet(parser, "no Ray progress tables and no trial output")
    return parser


@command(COMMANDS, "sweep", add_sweep_arguments,
         "run a study of `facetwin train` trials on Ray Tune, locally or on a cluster ([scale] extra)")
def main_sweep(args: argparse.Namespace) -> int:
    """``facetwin sweep``: run :func:`run_sweep` with the policy export of :mod:`facetwin.sim2real.export`; 2 with
    one line when the ``[scale]`` extra is missing, 1 when a trial failed (the table says which and why)."""
    from facetwin.agents.sweep import run_sweep
    from facetwin.sim2real.export import export_policy

    try:
        result = run_sweep(args.config, args.out, address=args.address, resume=args.resume, num_cpus=args.num_cpus,
                           storage=args.storage, quiet=args.quiet, export=export_policy)
    except ImportError as e:
        print(f"facetwin sweep: error: {e}", file=sys.stderr)
        return 2
    print(result.table)
    out = result.out_dir
    print(f"wrote {out / 'results.md'}, {out / 'results.csv'}, {out / 'results.png'}")
    if result.best is not None:
        print(f"best trial {result.best.trial} ({result.best.metric:.3f}, {result.best.steps:,} steps): "
              f"{result.best_run}, exported to {result.best_policy}")
    failed = [r for r in result.rows if r.status.startswith("error")]
    if failed:
        print(f"facetwin sweep: {len(failed)} of {len(result.rows)} trials failed (see {out / 'results.md'}; "
              "--resume runs them again)", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------------------------------- train-residual
def add_residual_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from facetwin.agents.residual import DEFAULT_SCALE  # (imports SB3: only when the parser is built)

    parser.add_argument("--out", default="runs/residual", help="output folder (default runs/residual)")
    parser.add_argument("--corpus", default=None, help="corpus folder (default: the lip-sync training corpus)")
    parser.add_argument("--steps", type=int, default=30000, help="environment steps (default 30000)")
    parser.add_argument("--scale", type=float, default=DEFAULT_SCALE, help="correction range (default 0.3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--randomize", nargs="?", const=True, default=False, metavar="CONFIG",
                        help="train on randomized twins (default ranges, or a TOML file: facetwin.envs.randomization)")
    add_quiet(parser)
    return parser


@command(COMMANDS, "train-residual", add_residual_arguments,
         "train an RL correction on top of the lip-sync pipeline in LipSync-v0 (SAC)")
def main_train_residual(args: argparse.Namespace) -> int:
    from facetwin.agents.residual import train_residual
    from facetwin.agents.train_audio_to_lips import train_corpus_dir

    if args.steps < 100:
        raise ValueError(f"--steps must be >= 100, got {args.steps}")
    if not 0 < args.scale <= 1:
        raise ValueError(f"--scale must be in (0, 1], got {args.scale}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    domain = None
    if args.randomize:
        from facetwin.envs.randomization import load_config

        domain = load_config(None if args.randomize is True else args.randomize).sample
    corpus = Path(args.corpus) if args.corpus else train_corpus_dir(progress=not args.quiet)
    report = train_residual(corpus, out, steps=args.steps, seed=args.seed, scale=args.scale, domain=domain,
                            progress=not args.quiet)
    print(f"wrote {out / 'residual.zip'} ({report['steps']} steps in {report['seconds']:.0f} s); score it with "
          f"`facetwin evaluate --residual {out / 'residual.zip'}`")
    return 0


# ---------------------------------------------------------------------------------------------------- ingest-video
def add_ingest_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``facetwin ingest-video``."""
    parser.add_argument("video", help="video file of a face talking or singing (with its audio)")
    parser.add_argument("--text", default=None, help="what is said (English: force-aligned for phoneme timing)")
    parser.add_argument("--lang", default=None, help="ISO 639-1 code of the speech (default: en with --text)")
    parser.add_argument("--corpus", default="facetwin_corpus", help="corpus folder (default: ./facetwin_corpus)")
    parser.add_argument("--id", dest="clip_id", default=None, help="item id (default: video_<file stem>)")
    parser.add_argument("--mirrored", action="store_true", help="the video is mirrored (selfie preview)")
    parser.add_argument("--scale", type=float, default=0.9, help="scale of the person's lip motion (default 0.9)")
    parser.add_argument("--overwrite", action="store_true", help="replace an item with the same id")
    add_quiet(parser)
    return parser


@command(COMMANDS, "ingest-video", add_ingest_arguments,
         "add a video of a person speaking or singing to a corpus ([vision] extra)")
def main_ingest(args: argparse.Namespace) -> int:
    """``facetwin ingest-video``: run :func:`ingest_video` from parsed arguments (see :func:`add_ingest_arguments`).

    Returns 0, or 2 with the message on stderr when mediapipe is missing (bad input raises as in every command).
    """
    from facetwin.agents.human_video import ingest_video

    try:
        item = ingest_video(
            args.video, args.corpus, text=args.text, lang=args.lang, clip_id=args.clip_id, mirrored=args.mirrored,
            scale=args.scale, overwrite=args.overwrite, progress=not args.quiet,
        )
    except ImportError as e:
        print(f"facetwin ingest-video: error: {e}", file=sys.stderr)
        return 2
    print(f"added {item['id']} to {args.corpus}: {item['duration_s']:.2f} s, {item['n_frames']} frames, "
          f"face found in {100 * item['face_found']:.1f} % of the video frames")
    return 0
