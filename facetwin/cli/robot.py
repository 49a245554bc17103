"""``facetwin calibrate``, ``facetwin deploy``, ``facetwin export-policy``: the robot's commands (each an
``add_*_arguments`` + ``main_*`` pair over the library functions of :mod:`facetwin.sim2real`)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from facetwin.hardware.bus import EXIT_FAULT, BusError, ServoBus
from facetwin.hardware.calibration import Calibration, nominal_calibration
from facetwin.hardware.safety import SafetyError
from facetwin.sim2real.calibrate import SWEEP, calibrate
from facetwin.sim2real.deploy import BACKENDS, FPS, PLAYERS, deploy
from facetwin.sim2real.export import CONFIG_FILE, POLICY_FILE, export_policy

from .table import Command, add_behaviour, add_quiet, behaviour_config, command, parse_key_values

COMMANDS: list[Command] = []  # filled by @command, in the order of the definitions below


# ---------------------------------------------------------------------------------------------------- calibrate
def add_calibrate_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--backend", choices=("sim", "pca9685", "serial"), default="sim",
                        help="sim: the twin with a random hidden truth (default); pca9685 / serial: the robot")
    parser.add_argument("--out", required=True, help="calibration JSON to write")
    parser.add_argument("--start", default=None,
                        help="starting calibration JSON (its safe ranges bound every command; default: nominal)")
    parser.add_argument("--motors", default=None, help="comma-separated motor names (default all 26)")
    parser.add_argument("--port", default=None,
                        help="serial: the port (default /dev/ttyUSB0); pca9685: the I2C bus number (default 1)")
    parser.add_argument("--baudrate", type=int, default=None,
                        help="serial: the servos' baud rate (default 57600, their factory setting)")
    parser.add_argument("--camera", default="0", help="hardware backends: camera index or video path (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="sim: seed of the hidden truth and camera noise")
    parser.add_argument("--noise-mm", type=float, default=0.1, help="sim: camera noise per coordinate (mm)")
    parser.add_argument("--sweep", type=float, default=SWEEP, help=f"staircase half-width in commands ({SWEEP})")
    parser.add_argument("--variant", choices=("fast", "full"), default="fast", help="twin variant (default fast)")
    parser.add_argument("--report", default=None, help="also write the report as JSON")
    add_quiet(parser)
    return parser


def _lazy(module: str, attr: str):
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise RuntimeError(f"{module}.{attr} is not available ({e}); this backend needs it") from None


def _hardware(args: argparse.Namespace, start: Calibration) -> tuple[dict[str, ServoBus], object]:
    from facetwin.sim2real.deploy import open_buses  # the one factory of buses from a calibration

    if args.backend == "pca9685":
        if args.port is not None and not args.port.isdigit():
            raise ValueError(f"--port: the I2C bus number for pca9685 (e.g. 1), got {args.port!r}")
        buses = open_buses(start, "pca9685", i2c_bus=int(args.port) if args.port else 1)
    else:
        buses = open_buses(start, "serial", port=args.port or "/dev/ttyUSB0", baudrate=args.baudrate)
    cam_cls = _lazy("facetwin.hardware.camera", "FaceMeshCamera")
    camera = cam_cls(int(args.camera) if args.camera.isdigit() else args.camera)
    return buses, camera


@command(COMMANDS, "calibrate", add_calibrate_arguments,
         "fit a robot's calibration file by sweeping each motor in front of a camera")
def main_calibrate(args: argparse.Namespace) -> int:
    """``facetwin calibrate``: run :func:`calibrate` and write the calibration (exit 1 if any motor failed)."""
    from contextlib import ExitStack

    from facetwin.files import atomic_write

    motors = [s.strip() for s in args.motors.split(",") if s.strip()] if args.motors else None
    if args.start:
        start = Calibration.load(args.start)
    else:
        start = nominal_calibration(args.backend)
    truth = None
    with ExitStack() as stack:
        if args.backend == "sim":
            from facetwin.hardware.sim_bus import SimBus, SimCamera, random_true_calibration

            truth = random_true_calibration(args.seed, base=start)
            sim = stack.enter_context(SimBus(truth, variant=args.variant))
            buses, camera = {sim.name: sim}, SimCamera(sim, noise_mm=args.noise_mm, seed=args.seed)
        else:
            buses, camera = _hardware(args, start)
            for b in buses.values():
                stack.enter_context(b)
            if hasattr(camera, "close"):
                stack.callback(camera.close)
        cal, report = calibrate(buses, camera, start=start, motors=motors, progress=not args.quiet,
                                sweep=args.sweep, variant=args.variant)
    print(report.markdown(truth))
    if truth is not None:
        errs = [e for e in report.errors(truth) if e["ok"]]
        if errs:
            print(f"\nrecovered vs hidden truth over {len(errs)} motors: max |d neutral| "
                  f"{max(abs(e['neutral']) for e in errs):.2f} units, max |d scale| "
                  f"{max(abs(e['scale_pct']) for e in errs):.2f} %, directions right "
                  f"{sum(e['direction'] for e in errs)}/{len(errs)}, max |d latency| "
                  f"{max(abs(e['latency_ms']) for e in errs):.2f} ms")
    print(f"\n{len(report.motors)} motors in {report.robot_seconds:.1f} s of robot time, {report.wall_seconds:.1f} s "
          f"wall; wrote {cal.save(args.out)}")
    if args.report:
        text = json.dumps(report.to_json(), indent=1)
        atomic_write(args.report, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    if report.failed:
        print(f"FAILED (start values kept): {', '.join(report.failed)}")
        return 1
    return 0


# ---------------------------------------------------------------------------------------------------- deploy
def add_deploy_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``facetwin deploy``."""
    parser.add_argument("audio", type=Path, help="audio file to play (wav, mp3, ...)")
    parser.add_argument("--calibration", type=Path, required=True, help="the robot's calibration JSON")
    parser.add_argument("--backend", required=True, choices=BACKENDS, help="sim (the twin), pca9685 or serial")
    parser.add_argument("--policy", default="lipsync",
                        help="'lipsync' (the shipped pipeline, default) or an exported LipSync-v0 policy folder")
    parser.add_argument("--port", default=None, help="serial port of the serial backend (e.g. /dev/ttyUSB0)")
    parser.add_argument("--i2c-bus", type=int, default=1, help="I2C adapter of the pca9685 backend (default 1)")
    parser.add_argument("--baudrate", type=int, default=None,
                        help="serial backend: the servos' baud rate (default 57600, their factory setting; 1000000 "
                             "lets the safety layer check every servo's health 10 times a second)")
    parser.add_argument("--player", choices=PLAYERS, default="auto",
                        help="audio output: auto (sounddevice if installed), clock (time only), sounddevice")
    parser.add_argument("--safety", type=Path, default=None,
                        help="safety layer limits (SafetyConfig JSON: max_speed, watchdog_ms, ...; default built in)")
    parser.add_argument("--realtime", action="store_true",
                        help="run the 30 Hz loop under SCHED_FIFO (needs root or CAP_SYS_NICE; p99 jitter 5 -> 0 ms)")
    parser.add_argument("--interpolate", action="store_true", help="lead by the exact latency (sub-period)")
    parser.add_argument("--log", type=Path, default=None, help="write the per-tick log (.npz)")
    add_behaviour(parser)
    add_quiet(parser)
    return parser


@command(COMMANDS, "deploy", add_deploy_arguments,
         "play audio on the robot (or the twin) with lip-synced motor commands at 30 Hz")
def main_deploy(args: argparse.Namespace) -> int:
    """Run :func:`deploy` from parsed :func:`add_deploy_arguments` arguments; prints the jitter; an exit code:
    0, :data:`~facetwin.hardware.bus.EXIT_FAULT` when a bus or servo failed, 130 on Ctrl-C / SIGTERM (bad input
    raises, for the CLI's one line and code 2)."""
    log = f"; log of the ticks played -> {args.log}" if args.log is not None else ""
    try:
        res = deploy(args.audio, args.calibration, args.backend, args.policy, port=args.port, i2c_bus=args.i2c_bus,
                     baudrate=args.baudrate, player=args.player, interpolate=args.interpolate, log_path=args.log,
                     safety=args.safety, realtime=args.realtime, handle_signals=True,
                     behaviour=behaviour_config(args), progress=not args.quiet)
    except (BusError, SafetyError) as e:  # the robot faulted: the safety layer parked and relaxed it
        msg = " ".join(str(e).split())
        print(f"facetwin deploy: robot fault: {msg}; the robot was brought to rest and relaxed{log}", file=sys.stderr)
        return EXIT_FAULT
    except KeyboardInterrupt:  # Ctrl-C / SIGTERM: deploy brought the robot to rest and wrote the log
        print(f"facetwin deploy: interrupted: the robot was brought to rest and relaxed{log}", file=sys.stderr)
        return 130
    j = res.jitter
    lead = res.arrays["lead_rows"]
    print(f"played {args.audio} on {args.backend}: {j['ticks']} ticks at {FPS:g} Hz ({res.pre} pre-roll), "
          f"lead {lead.min():g}-{lead.max():g} periods")
    print("| lateness | p50 | p99 | max |\n|---|---:|---:|---:|\n"
          f"| ms | {j['p50_ms']:.3f} | {j['p99_ms']:.3f} | {j['max_ms']:.3f} |")
    st = res.safety
    print(f"safety: {st.get('sent', 0)} commands sent, {st.get('range_clamps', 0)} range clamps, "
          f"{st.get('slew_clamps', 0)} slew clamps, {st.get('rejected', 0)} rejected")
    if args.log is not None:
        print(f"log -> {args.log}")
    return 0


# ---------------------------------------------------------------------------------------------------- export-policy
def add_export_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``facetwin export-policy``."""
    parser.add_argument("run", type=Path, help="a `facetwin train` output folder (model.zip), or a checkpoint.zip")
    parser.add_argument("--out", type=Path, required=True, help="output folder (policy.pt + policy.json)")
    parser.add_argument("--env", default=None, help="training env id (default: from the run's checkpoint.zip)")
    parser.add_argument("--env-arg", action="append", metavar="KEY=VALUE",
                        help="training env keyword (JSON value), repeatable (default: from the checkpoint)")
    return parser


@command(COMMANDS, "export-policy", add_export_arguments, "export a trained SB3 policy to TorchScript + config JSON")
def main_export(args: argparse.Namespace) -> int:
    """Run :func:`export_policy` from parsed :func:`add_export_arguments` arguments; returns an exit code."""
    kwargs = parse_key_values(args.env_arg, "--env-arg") if args.env_arg else None
    out = export_policy(args.run, args.out, env_id=args.env, env_kwargs=kwargs)
    print(f"exported {args.run} -> {out / POLICY_FILE}, {out / CONFIG_FILE}")
    return 0


# ---------------------------------------------------------------------------------------------------- live
def add_live_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``facetwin live``."""
    parser.add_argument("source", help="'mic' (the default input device), 'mic:NAME', an audio file (played in real "
                                       "time), or '-': raw s16le 16 kHz mono (or a 16 kHz 16-bit WAV) on stdin")
    parser.add_argument("--backend", choices=BACKENDS, default="sim",
                        help="sim (the twin, default), pca9685 or serial (the robot)")
    parser.add_argument("--calibration", type=Path, default=None,
                        help="the robot's calibration JSON (required for pca9685 / serial; sim: nominal)")
    parser.add_argument("--window", action=argparse.BooleanOptionalAction, default=None,
                        help="draw the twin in a MuJoCo window (default: when a display exists)")
    add_behaviour(parser)
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--port", default=None, help="serial port of the serial backend (e.g. /dev/ttyUSB0)")
    parser.add_argument("--i2c-bus", type=int, default=1, help="I2C adapter of the pca9685 backend (default 1)")
    parser.add_argument("--baudrate", type=int, default=None, help="serial backend: the servos' baud rate")
    parser.add_argument("--safety", type=Path, default=None, help="safety layer limits (SafetyConfig JSON)")
    parser.add_argument("--realtime", action="store_true",
                        help="run the 30 Hz loop under SCHED_FIFO (needs root or CAP_SYS_NICE)")
    parser.add_argument("--log", type=Path, default=None, help="write the per-tick log (.npz), also on a fault")
    add_quiet(parser, help="no start line or notes")
    return parser


@command(COMMANDS, "live", add_live_arguments,
         "a live voice (microphone, file, stdin) lip-synced on the twin or the robot at 30 Hz")
def main_live(args: argparse.Namespace) -> int:
    """Run :func:`facetwin.sim2real.live.run_live` from parsed :func:`add_live_arguments` arguments; prints what
    played; an exit code: 0, :data:`~facetwin.hardware.bus.EXIT_FAULT` when a bus, a servo or the audio device
    failed, 130 on Ctrl-C (bad input raises, for the CLI's one line and code 2)."""
    import torch

    from facetwin.audio.input import AudioDeviceError
    from facetwin.sim2real.live import run_live

    torch.set_num_threads(1)  # the lip model shares the loop's core; more threads only add jitter
    kept = f"; log -> {args.log}" if args.log is not None else ""
    try:
        res = run_live(args.source, backend=args.backend, calibration=args.calibration, window=args.window,
                       behaviour=behaviour_config(args) or False, log_path=args.log, duration_s=args.duration,
                       port=args.port, i2c_bus=args.i2c_bus, baudrate=args.baudrate, safety=args.safety,
                       realtime=args.realtime, handle_signals=True, progress=not args.quiet)
    except AudioDeviceError as e:
        print(f"facetwin live: audio device error: {' '.join(str(e).split())}; the face was brought to rest{kept}",
              file=sys.stderr)
        return EXIT_FAULT
    except (BusError, SafetyError) as e:
        print(f"facetwin live: robot fault: {' '.join(str(e).split())}; the face was brought to rest and relaxed"
              f"{kept}", file=sys.stderr)
        return EXIT_FAULT
    except KeyboardInterrupt:
        print(f"facetwin live: interrupted: the face was brought to rest and relaxed{kept}", file=sys.stderr)
        return 130
    s, j = res.stats, res.jitter
    print(f"live {args.source} on {args.backend}: {s['ticks']} ticks at {FPS:g} Hz, {s['dropped']} dropped; "
          f"{s['lip_frames']} lip frames, {s['holds']} held, {s['skipped_frames']} skipped; audio overruns "
          f"{s['overruns']}, underruns {s['underruns']}")
    print("| lateness p50 (ms) | p99 | max | mouth lag (ms) |\n|---:|---:|---:|---:|\n"
          f"| {j['p50_ms']:.3f} | {j['p99_ms']:.3f} | {j['max_ms']:.3f} | {s['mouth_lag_ms']:.1f} |")
    if args.log is not None:
        print(f"log -> {args.log}")
    return 0
