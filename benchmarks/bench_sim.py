"""Simulation speed benchmark of the face twin: physics, the 30 Hz control loop and the mirror camera.

Run from the repository root (either form)::

    python -m facetwin.benchmarks.bench_sim                  # ~1 min, 10 simulated seconds per physics figure
    python benchmarks/bench_sim.py --quick                   # a fast smoke run (2 simulated seconds, few frames)
    python benchmarks/bench_sim.py --seconds 20 --json out/bench_sim.json

It prints one markdown table with one column per model variant ("full", "fast"), all measured in the same run:

* raw physics: ``mj_step`` in a loop (``nstep = substeps`` per 30 Hz control period) driven by smooth random
  controls, with the benchmarking thread pinned to one CPU core (MuJoCo runs one ``mj_step`` on one thread; the
  benchmark also checks that no MuJoCo thread pool is attached); real-time factor = simulated s / wall s;
* the env-free control loop: ``FaceModel.step(ctrl)`` + ``FaceModel.landmarks_mm()`` per 30 Hz control step on the
  same core and the same controls, and its overhead ratio over the raw physics loop (wall time / raw wall time);
* mirror camera render fps at 128x128 ("obs" preset: no shadows, no multisampling) and 640x480 ("video" preset),
  through ``facetwin.sim.render.MirrorRenderer`` (or, where that module is absent, ``mujoco.Renderer`` directly with
  the same settings); rendering is not pinned to one core, as a software GL driver may use several threads;
* pass/fail of the targets (issue 13): physics >= 10x real time on one core for the reference variant ``full``,
  >= 25x for the training variant ``fast``.

Every figure is the best of ``--repeats`` (3) timed repetitions after a warm-up, timed with ``time.perf_counter``.
"""

from __future__ import annotations

import argparse
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from facetwin.benchmarks.common import best_wall, cpu_name, cpus_available, one_core, write_json
from facetwin.sim.builder import CONTROL_HZ, VARIANTS
from facetwin.sim.model import FaceModel
from facetwin.sim.render import ensure_offscreen_gl

TARGET_RTF = {"full": 10.0, "fast": 25.0}  # physics at least this many times faster than real time, one core
VARIANT_NAMES: tuple[str, ...] = ("full", "fast")
CAMERA = "mirror"


@dataclass(frozen=True)
class RenderPreset:
    name: str
    width: int
    height: int
    shadows: bool
    multisampling: bool


RENDER_PRESETS: tuple[RenderPreset, ...] = (
    RenderPreset("obs", 128, 128, shadows=False, multisampling=False),
    RenderPreset("video", 640, 480, shadows=True, multisampling=True),
)


@dataclass(frozen=True)
class BenchConfig:
    """What to measure and how long. ``seconds`` is simulated time per physics / control-loop repetition."""

    variants: tuple[str, ...] = VARIANT_NAMES
    seconds: float = 10.0
    repeats: int = 3
    warmup_seconds: float = 0.5
    render_frames: dict[str, int] = field(default_factory=lambda: {"obs": 300, "video": 30})
    render_sizes: dict[str, tuple[int, int]] | None = None  # preset -> (width, height) override
    render: bool = True
    seed: int = 0

    @classmethod
    def quick(cls, **overrides: Any) -> BenchConfig:
        base: dict[str, Any] = dict(seconds=2.0, warmup_seconds=0.2, render_frames={"obs": 30, "video": 5})
        base.update(overrides)
        return cls(**base)


@dataclass
class LoopTiming:
    """Best-of-N timing of a loop over ``control_steps`` 30 Hz control periods."""

    control_steps: int
    physics_steps: int
    sim_seconds: float
    wall_seconds: float  # best (smallest) of the repetitions
    physics_steps_per_s: float
    control_steps_per_s: float
    real_time_factor: float
    diverged: bool


@dataclass
class RenderTiming:
    preset: str
    width: int
    height: int
    frames: int
    wall_seconds: float
    fps: float
    backend: str


@dataclass
class VariantResult:
    variant: str
    nv: int
    timestep: float
    substeps: int
    physics: LoopTiming
    control: LoopTiming
    control_overhead: float  # wall(FaceModel.step + landmarks_mm) / wall(raw mj_step loop), same controls
    render: dict[str, RenderTiming]
    meets_target: bool


@dataclass
class BenchResult:
    config: BenchConfig
    variants: list[VariantResult]
    env: dict[str, Any]


# ---------------------------------------------------------------------------------------------------- helpers
def smooth_controls(n_steps: int, rest: np.ndarray, seed: int = 0, knot_seconds: float = 0.5) -> np.ndarray:
    """(n_steps, nu) smooth random normalized controls, one row per 30 Hz control step.

    Random targets uniform in [-1, 1] every ``knot_seconds``, joined by smoothstep (C1) ramps, starting at ``rest``.
    """
    rng = np.random.default_rng(seed)
    every = max(1, round(knot_seconds * CONTROL_HZ))
    knots = rng.uniform(-1.0, 1.0, size=(n_steps // every + 2, len(rest)))
    knots[0] = rest
    t = np.arange(n_steps) / every
    i = np.floor(t).astype(int)
    s = t - i
    s = (s * s * (3.0 - 2.0 * s))[:, None]
    return knots[i] * (1.0 - s) + knots[i + 1] * s


def _timing(face: FaceModel, n_ctrl: int, wall: float, diverged: bool) -> LoopTiming:
    n_phys = n_ctrl * face.substeps
    sim = n_phys * face.sim_dt
    return LoopTiming(
        control_steps=n_ctrl,
        physics_steps=n_phys,
        sim_seconds=sim,
        wall_seconds=wall,
        physics_steps_per_s=n_phys / wall,
        control_steps_per_s=n_ctrl / wall,
        real_time_factor=sim / wall,
        diverged=diverged,
    )


# ---------------------------------------------------------------------------------------------------- physics
def bench_physics(face: FaceModel, controls: np.ndarray, repeats: int, warmup: np.ndarray) -> LoopTiming:
    """Raw physics: ``mj_step(nstep=substeps)`` per control row, controls written straight into ``data.ctrl``."""
    m, d, substeps = face.model, face.data, face.substeps
    if d.threadpool:
        raise RuntimeError("a MuJoCo thread pool is attached to the data; the one-core figure would be wrong")
    diverged = False

    def rollout(rows: np.ndarray) -> None:
        for u in rows:
            d.ctrl[:] = u
            mujoco.mj_step(m, d, nstep=substeps)

    def run() -> None:
        nonlocal diverged
        face.reset()
        rollout(controls)
        diverged |= face.is_diverged()

    face.reset()
    rollout(warmup)
    wall = best_wall(run, repeats, warmup=False)
    return _timing(face, len(controls), wall, diverged)


def bench_control_loop(face: FaceModel, controls: np.ndarray, repeats: int, warmup: np.ndarray) -> LoopTiming:
    """The env-free 30 Hz loop: ``face.step(ctrl)`` then ``face.landmarks_mm()`` per control row."""
    diverged = False

    def rollout(rows: np.ndarray) -> None:
        for u in rows:
            face.step(u)
            face.landmarks_mm()

    def run() -> None:
        nonlocal diverged
        face.reset()
        rollout(controls)
        diverged |= face.is_diverged()

    face.reset()
    rollout(warmup)
    wall = best_wall(run, repeats, warmup=False)
    return _timing(face, len(controls), wall, diverged)


# ---------------------------------------------------------------------------------------------------- render
RenderFns = tuple[Callable[[], np.ndarray], Callable[[], None], str]  # (render current state, close, backend name)


def _mujoco_renderer(face: FaceModel, preset: RenderPreset) -> RenderFns:
    """The mirror view straight through ``mujoco.Renderer`` with the preset's settings, flipped like a mirror."""
    m = face.model
    samples = int(m.vis.quality.offsamples)
    if not preset.multisampling:
        m.vis.quality.offsamples = 0  # read when the renderer's GL framebuffer is made
    ensure_offscreen_gl()
    try:
        renderer = mujoco.Renderer(m, height=preset.height, width=preset.width)
    finally:
        m.vis.quality.offsamples = samples
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = preset.shadows
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
    option = mujoco.MjvOption()
    option.sitegroup[4] = 0  # sites and tendons (group 4) are not part of the image
    option.tendongroup[4] = 0

    def render() -> np.ndarray:
        renderer.update_scene(face.data, camera=CAMERA, scene_option=option)
        return np.ascontiguousarray(renderer.render()[:, ::-1])

    return render, renderer.close, "mujoco.Renderer"


def open_renderer(face: FaceModel, preset: RenderPreset) -> RenderFns:
    """The project's ``MirrorRenderer`` for ``preset``; ``mujoco.Renderer`` with the same settings without it."""
    try:
        from facetwin.sim.render import MirrorRenderer
    except ImportError:
        return _mujoco_renderer(face, preset)
    r = MirrorRenderer(face, preset.name, width=preset.width, height=preset.height)
    return r.render, r.close, "facetwin.sim.render"


def bench_render(face: FaceModel, preset: RenderPreset, frames: int, repeats: int) -> RenderTiming:
    """Frames per second of the mirror camera on the face's current state (scene update + render + readback).

    MuJoCo rebuilds the whole scene, the skin flex included, on every frame, so a fixed state costs what a moving
    face costs.
    """
    render, close, backend = open_renderer(face, preset)
    try:
        image = render()
        for _ in range(2):
            render()
        if image.shape[:2] != (preset.height, preset.width):
            raise RuntimeError(f"{preset.name}: got a {image.shape} image, expected {preset.height}x{preset.width}")

        def run() -> None:
            for _ in range(frames):
                render()

        wall = best_wall(run, repeats, warmup=False)
    finally:
        close()
    return RenderTiming(preset.name, preset.width, preset.height, frames, wall, frames / wall, backend)


# ---------------------------------------------------------------------------------------------------- driver
def bench_variant(variant: str, cfg: BenchConfig) -> VariantResult:
    face = FaceModel.load(variant)
    n_ctrl = max(1, round(cfg.seconds * CONTROL_HZ))
    n_warm = max(1, round(cfg.warmup_seconds * CONTROL_HZ))
    controls = smooth_controls(n_ctrl, face.rest_ctrl, seed=cfg.seed)
    warmup = controls[:n_warm]
    with one_core():
        physics = bench_physics(face, controls, cfg.repeats, warmup)
        control = bench_control_loop(face, controls, cfg.repeats, warmup)
    render: dict[str, RenderTiming] = {}
    if cfg.render:
        face.reset()
        face.step(controls[-1], n_control_steps=n_warm)  # a non-neutral face
        for preset in RENDER_PRESETS:
            size = (cfg.render_sizes or {}).get(preset.name)
            p = preset if size is None else RenderPreset(preset.name, size[0], size[1], preset.shadows, preset.multisampling)
            render[p.name] = bench_render(face, p, cfg.render_frames.get(p.name, 10), cfg.repeats)
    return VariantResult(
        variant=variant,
        nv=int(face.model.nv),
        timestep=face.sim_dt,
        substeps=face.substeps,
        physics=physics,
        control=control,
        control_overhead=control.wall_seconds / physics.wall_seconds,
        render=render,
        meets_target=physics.real_time_factor >= TARGET_RTF[variant],
    )


def environment() -> dict[str, Any]:
    return {
        "mujoco": mujoco.__version__,
        "python": platform.python_version(),
        "cpu": cpu_name(),
        "cpus_available": cpus_available(),
        "physics_pinned_to_one_core": hasattr(os, "sched_setaffinity"),
        "mujoco_gl": os.environ.get("MUJOCO_GL", ""),
    }


def run_benchmark(cfg: BenchConfig) -> BenchResult:
    for v in cfg.variants:
        if v not in VARIANTS:
            raise ValueError(f"unknown variant {v!r}; choose from {sorted(VARIANTS)}")
    return BenchResult(cfg, [bench_variant(v, cfg) for v in cfg.variants], environment())


# ---------------------------------------------------------------------------------------------------- output
def _fmt(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def table_rows(result: BenchResult) -> list[tuple[str, list[str]]]:
    """(label, one cell per variant) for every row of the table."""
    vs = result.variants
    rows: list[tuple[str, list[str]]] = [
        ("nv (dofs)", [str(v.nv) for v in vs]),
        ("timestep (ms) / substeps per 30 Hz step", [f"{v.timestep * 1e3:.3f} / {v.substeps}" for v in vs]),
        ("raw physics steps/s (1 core)", [_fmt(v.physics.physics_steps_per_s) for v in vs]),
        ("raw physics real-time factor (1 core)", [f"{_fmt(v.physics.real_time_factor)}x" for v in vs]),
        ("control steps/s (step + landmarks_mm, 30 Hz)", [_fmt(v.control.control_steps_per_s) for v in vs]),
        ("control loop real-time factor (1 core)", [f"{_fmt(v.control.real_time_factor)}x" for v in vs]),
        ("control loop overhead vs raw physics", [f"{v.control_overhead:.3f}x" for v in vs]),
    ]
    if vs and vs[0].render:
        for name, r0 in vs[0].render.items():
            rows.append((f"mirror render fps, {name} {r0.width}x{r0.height}", [_fmt(v.render[name].fps) for v in vs]))
    rows.append(
        (
            "target: physics real-time factor on one core (" + ", ".join(
                f"{k} >= {x:g}x" for k, x in TARGET_RTF.items()) + ")",
            [("PASS" if v.meets_target else "FAIL") for v in vs],
        )
    )
    return rows


def format_table(result: BenchResult) -> str:
    header = ["metric", *(v.variant for v in result.variants)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" + "---:|" * len(result.variants)]
    lines += ["| " + " | ".join([label, *cells]) + " |" for label, cells in table_rows(result)]
    return "\n".join(lines)


def format_report(result: BenchResult) -> str:
    env = result.env
    cfg = result.config
    backends = sorted({r.backend for v in result.variants for r in v.render.values()})
    head = (
        f"facetwin sim benchmark: MuJoCo {env['mujoco']}, {env['cpu']} ({env['cpus_available']} cpus available), "
        f"{cfg.seconds:g} simulated s per physics figure, best of {cfg.repeats}"
        + (f", render via {', '.join(backends)} (MUJOCO_GL={env['mujoco_gl']})" if backends else "")
    )
    target = "; ".join(
        f"{v.variant} >= {TARGET_RTF[v.variant]:g}x: {'PASS' if v.meets_target else 'FAIL'} "
        f"({_fmt(v.physics.real_time_factor)}x)" for v in result.variants
    )
    lines = [head, "", format_table(result), "", f"Targets, physics real time on one core: {target}"]
    for v in result.variants:
        if v.physics.diverged or v.control.diverged:
            lines.append(f"WARNING: variant {v.variant} diverged under the random controls; its figures are suspect")
    return "\n".join(lines)


def to_json(result: BenchResult) -> dict[str, Any]:
    out = asdict(result)
    out["target_rtf"] = dict(TARGET_RTF)
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=None, help="simulated seconds per physics repetition (default 10)")
    p.add_argument("--quick", action="store_true", help="short run: 2 simulated seconds, few frames")
    p.add_argument("--repeats", type=int, default=3, help="timed repetitions per figure; the best is kept (default 3)")
    p.add_argument("--variants", nargs="+", default=list(VARIANT_NAMES), choices=sorted(VARIANTS))
    p.add_argument("--no-render", action="store_true", help="skip the mirror render measurements")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the numbers as JSON")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> BenchResult:
    args = parse_args(argv)
    overrides: dict[str, Any] = dict(variants=tuple(args.variants), repeats=args.repeats, render=not args.no_render)
    if args.seconds is not None:
        overrides["seconds"] = args.seconds
    cfg = BenchConfig.quick(**overrides) if args.quick else BenchConfig(**overrides)
    result = run_benchmark(cfg)
    print(format_report(result))
    write_json(args.json, to_json(result))
    return result


if __name__ == "__main__":
    main()
