"""Video rendering benchmark: how fast :func:`facetwin.sim.video.render_video` turns commands into an mp4.

Run from the repository root (either form)::

    python -m facetwin.benchmarks.bench_video                # ~1 min: 3 s of motion per layout, best of 2
    python benchmarks/bench_video.py --quick                 # a fast smoke run (1 s of motion, 1 repeat)
    python -m facetwin.benchmarks.bench_video --seconds 5 --json out/bench_video.json --no-pin

It prints two markdown tables, everything on the "fast" face at 30 fps with the ``"video"`` render preset (640x480
mirror view, shadows, 4x multisampling), driven by smooth random mouth commands (``bench_sim.smooth_controls`` on
the lips and jaw, the other actuators at rest) with an audio track (a tone as long as the motion):

* per layout - ``mirror`` (640x480), ``side_by_side`` (1120x480) and ``side_by_side`` with the aperture plot strip
  (1120x608): the cost of a whole ``render_video`` call (renderer and ffmpeg start-up, simulation, rendering, plot,
  H.264 + AAC encoding, muxing, the atomic rename) as wall time, frames per wall second and real-time factor (video
  seconds / wall seconds), and as CPU time: the CPU seconds of this process (the software GL driver's threads
  included) and of its ffmpeg child, and the real-time factor they allow on one dedicated core (video seconds / CPU
  seconds); pass/fail of the target "at least real time on one core" is judged on that CPU figure;
* per stage, wall and CPU milliseconds per frame: the physics step, the mirror render, the close-up render, the
  plot strip.

By default the process is pinned to one CPU core before anything starts, so the ffmpeg encoder and the software GL
driver (llvmpipe on headless machines), which inherit the affinity, share that core with the simulation. On a
machine shared with other jobs the wall figures then measure the share of the core it got; the CPU figures do not
depend on that. ``--no-pin`` lets GL and ffmpeg use every core (wall time then shows the overlap of encoding and
rendering). Figures are the best of ``--repeats`` (2) timed runs after a warm-up run (wall: ``time.perf_counter``,
CPU: ``os.times``, children included).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from facetwin.benchmarks.bench_sim import smooth_controls
from facetwin.benchmarks.common import cpu_name, cpus_available, one_core, write_json
from facetwin.sim import actuators
from facetwin.sim.landmarks import mouth_measures
from facetwin.sim.model import FaceModel
from facetwin.sim.render import MirrorRenderer
from facetwin.sim.video import CLOSEUP_CAMERA, CLOSEUP_FOVY, camera_fovy, render_video
from facetwin.sim.video_plot import AperturePlot

FPS = 30.0
SR = 16000
TARGET_RTF = 1.0  # the video must render at least as fast as it plays
CASES: tuple[tuple[str, str, bool], ...] = (  # (label, layout, with plot)
    ("mirror", "mirror", False),
    ("side_by_side", "side_by_side", False),
    ("side_by_side + plot", "side_by_side", True),
)


@dataclass(frozen=True)
class BenchConfig:
    seconds: float = 3.0  # of motion per layout
    repeats: int = 2
    pin: bool = True
    seed: int = 0

    @classmethod
    def quick(cls, **overrides: Any) -> BenchConfig:
        base: dict[str, Any] = dict(seconds=1.0, repeats=1)
        base.update(overrides)
        return cls(**base)


@dataclass
class LayoutTiming:
    label: str
    layout: str
    plot: bool
    width: int
    height: int
    frames: int
    wall_seconds: float  # best of the repeats, a whole render_video call
    cpu_seconds: float  # best of the repeats: CPU time of this process and its ffmpeg child
    fps: float  # frames per wall second
    real_time_factor: float  # video seconds / wall seconds
    cpu_real_time_factor: float  # video seconds / CPU seconds: the real-time factor of one dedicated core
    meets_target: bool  # cpu_real_time_factor >= TARGET_RTF


@dataclass
class StageTiming:
    wall_ms: float  # per frame, best of the repeats
    cpu_ms: float


@dataclass
class BenchResult:
    config: BenchConfig
    layouts: list[LayoutTiming]
    stages: dict[str, StageTiming]
    env: dict[str, Any]


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def best_wall_cpu(run: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Smallest wall and smallest CPU time (s) of ``repeats`` calls of ``run`` after one untimed warm-up call."""
    run()
    walls, cpus = [], []
    for _ in range(max(1, repeats)):
        t0, c0 = time.perf_counter(), _cpu_seconds()
        run()
        walls.append(time.perf_counter() - t0)
        cpus.append(_cpu_seconds() - c0)
    return min(walls), min(cpus)


def mouth_controls(face: FaceModel, n: int, seed: int) -> np.ndarray:
    """(n, 26) smooth random commands on the lips and jaw; every other actuator at rest."""
    ctrl = np.tile(face.rest_ctrl, (n, 1))
    mouth = np.concatenate([actuators.indices("lips"), actuators.indices("jaw")])
    ctrl[:, mouth] = smooth_controls(n, face.rest_ctrl[mouth], seed=seed)
    return ctrl


def bench_layouts(face: FaceModel, cfg: BenchConfig) -> list[LayoutTiming]:
    n = max(1, round(cfg.seconds * FPS))
    ctrl = mouth_controls(face, n, cfg.seed)
    t = np.arange(round(n / FPS * SR)) / SR
    audio = (0.2 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
    target = np.clip(np.sin(np.linspace(0.0, 3.0 * np.pi, n)), 0.0, None) * 15.0
    out: list[LayoutTiming] = []
    with tempfile.TemporaryDirectory(prefix="bench_video_") as tmp:
        for label, layout, plot in CASES:
            res: list = []
            kwargs = dict(audio=audio, sr=SR, fps=FPS, face=face, layout=layout,
                          plot_target_aperture=target if plot else None, progress=False)

            def run(kwargs: dict = kwargs, res: list = res) -> None:
                res.append(render_video(ctrl, Path(tmp) / "bench.mp4", **kwargs))

            wall, cpu = best_wall_cpu(run, cfg.repeats)
            r, video_s = res[-1], n / FPS
            out.append(LayoutTiming(label, layout, plot, r.width, r.height, n, wall, cpu, n / wall, video_s / wall,
                                    video_s / cpu, video_s / cpu >= TARGET_RTF))
    return out


def _per_call(fn: Callable[[], object], calls: int, repeats: int) -> StageTiming:
    wall, cpu = best_wall_cpu(lambda: [fn() for _ in range(calls)], repeats)
    return StageTiming(wall / calls * 1e3, cpu / calls * 1e3)


def bench_stages(face: FaceModel, cfg: BenchConfig) -> dict[str, StageTiming]:
    """Milliseconds per frame of each stage of a frame, measured alone on a moving face."""
    n = max(2, round(cfg.seconds * FPS))
    ctrl = mouth_controls(face, n, cfg.seed)
    face.reset()
    rows = iter(np.tile(ctrl, (2 * (cfg.repeats + 1), 1)))
    stages = {"physics step (fast variant)": _per_call(lambda: face.step(next(rows)), n, cfg.repeats)}
    face.reset()
    face.step(ctrl[-1], n_control_steps=n)
    with MirrorRenderer(face, "video") as mirror:
        stages["mirror render 640x480"] = _per_call(mirror.render, min(n, 30), cfg.repeats)
    with MirrorRenderer(face, "video", width=480, height=480, camera=CLOSEUP_CAMERA) as closeup:
        with camera_fovy(face, CLOSEUP_CAMERA, CLOSEUP_FOVY):
            stages["close-up render 480x480"] = _per_call(closeup.render, min(n, 30), cfg.repeats)
    neutral = face.neutral_landmarks_mm
    face_mm = np.full(n, float(mouth_measures(face.landmarks_mm(), neutral)["aperture_mm"]))
    plot = AperturePlot(np.linspace(0.0, 15.0, n), FPS, 1120)
    frames = iter(list(range(1, n + 1)) * 2 * (cfg.repeats + 1))
    stages["plot strip 1120x128"] = _per_call(lambda: plot.draw(face_mm[: next(frames)]), n, cfg.repeats)
    return stages


def environment(pinned: bool) -> dict[str, Any]:
    import imageio_ffmpeg

    return {
        "mujoco": mujoco.__version__,
        "python": platform.python_version(),
        "cpu": cpu_name(),
        "cpus_available": cpus_available(),
        "pinned_to_one_core": pinned,
        "mujoco_gl": os.environ.get("MUJOCO_GL", ""),
        "ffmpeg": Path(imageio_ffmpeg.get_ffmpeg_exe()).name,
    }


def run_benchmark(cfg: BenchConfig) -> BenchResult:
    if cfg.seconds <= 0 or cfg.repeats < 1:
        raise ValueError(f"seconds must be > 0 and repeats >= 1, got {cfg.seconds} and {cfg.repeats}")
    face = FaceModel.load("fast")
    with one_core() if cfg.pin else contextlib.nullcontext() as core:
        pinned = cfg.pin and core is not None
        env = environment(pinned)
        layouts = bench_layouts(face, cfg)
        stages = bench_stages(face, cfg)
    return BenchResult(cfg, layouts, stages, env)


# ---------------------------------------------------------------------------------------------------- output
def format_report(result: BenchResult) -> str:
    env, cfg = result.env, result.config
    where = "pinned to one core" if env["pinned_to_one_core"] else f"{env['cpus_available']} cpus, not pinned"
    lines = [
        f"facetwin video benchmark: MuJoCo {env['mujoco']}, {env['cpu']} ({where}), MUJOCO_GL={env['mujoco_gl']}, "
        f"\"fast\" face, {FPS:g} fps, \"video\" preset, {cfg.seconds:g} s of motion per layout, best of {cfg.repeats}",
        "",
        "| layout | frame size | frames | wall s | render fps (wall) | real-time factor (wall) | CPU s "
        "| real-time factor (1 dedicated core) | >= real time on one core |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for t in result.layouts:
        lines.append(
            f"| {t.label} | {t.width}x{t.height} | {t.frames} | {t.wall_seconds:.2f} | {t.fps:.1f} | "
            f"{t.real_time_factor:.2f}x | {t.cpu_seconds:.2f} | {t.cpu_real_time_factor:.2f}x | "
            f"{'PASS' if t.meets_target else 'FAIL'} |"
        )
    lines += ["", "| stage | wall ms per frame | CPU ms per frame |", "|---|---:|---:|"]
    lines += [f"| {name} | {s.wall_ms:.2f} | {s.cpu_ms:.2f} |" for name, s in result.stages.items()]
    return "\n".join(lines)


def to_json(result: BenchResult) -> dict[str, Any]:
    out = asdict(result)
    out["target_rtf"] = TARGET_RTF
    out["fps"] = FPS
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="short smoke run: 1 s of motion, 1 repeat")
    p.add_argument("--seconds", type=float, default=None, help="seconds of motion per layout (default 3)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per figure; the best is kept (default 2)")
    p.add_argument("--no-pin", action="store_true", help="do not pin to one core (GL and ffmpeg use every core)")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the numbers as JSON")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> BenchResult:
    args = parse_args(argv)
    overrides: dict[str, Any] = dict(pin=not args.no_pin)
    for key, value in (("seconds", args.seconds), ("repeats", args.repeats)):
        if value is not None:
            overrides[key] = value
    cfg = BenchConfig.quick(**overrides) if args.quick else BenchConfig(**overrides)
    result = run_benchmark(cfg)
    print(format_report(result))
    write_json(args.json, to_json(result))
    return result


if __name__ == "__main__":
    main()
