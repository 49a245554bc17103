"""Environment speed benchmark: the cost of the Gymnasium layer over the raw physics, and env throughput.

Run from the repository root (either form)::

    python -m facetwin.benchmarks.bench_envs                 # ~1-2 min
    python benchmarks/bench_envs.py --quick                  # a fast smoke run
    python -m facetwin.benchmarks.bench_envs --json out/bench_envs.json --no-lipsync

It prints one markdown table, one column per environment (MirrorSelfModel, and LipSync where
``facetwin.envs.lip_sync`` exists), every figure measured in the same run on the "fast" model variant:

* raw physics: ``FaceModel.step(ctrl)`` per 30 Hz control step on the env's own face (the same compiled model),
  driven by smooth random controls (``bench_sim.smooth_controls``), pinned to one CPU core;
* ``env.step(action)`` on the same core with the same controls as absolute actions (the env from ``gym.make``,
  wrappers included; MirrorSelfModel with ``obs_mode="landmarks"``), timed inside episodes long enough that no
  reset falls in the timed section; and its overhead over the raw physics, ``wall(env) / wall(raw) - 1``, against
  the target <= 15 %;
* env throughput with random actions, episodes and resets included (the training workload): one process, and a
  ``SubprocVecEnv`` with 2 worker processes (steps of all workers per second; not pinned). MirrorSelfModel runs
  with the training settings of ``facetwin.agents.rl`` (10-step episodes) and a target pool of
  ``--target-pool`` (16) entries computed before timing: the env computes each pool target once per process (2 s
  of simulated settling) and caches it, so that cost is amortized in a long run and left out here.

Raw vs env figures are the best of ``--repeats`` (3) interleaved repetitions after a warm-up, timed with
``time.perf_counter``; throughput figures are one timed run of ``--throughput-steps`` steps after a warm-up.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from facetwin.benchmarks.bench_sim import smooth_controls
from facetwin.benchmarks.common import cpu_name, cpus_available, one_core

TARGET_OVERHEAD = 0.15  # env.step may cost at most 15 % more than the raw physics step
MIRROR_ID = "facetwin.envs.mirror_self_model:MirrorSelfModelEnv"
LIPSYNC_ID = "facetwin.envs.lip_sync:LipSyncEnv"
VARIANT = "fast"


@dataclass(frozen=True)
class BenchConfig:
    """What to measure and how long."""

    seconds: float = 10.0  # simulated seconds per raw / env.step repetition (300 control steps)
    repeats: int = 3
    warmup_seconds: float = 0.5
    throughput_steps: int = 2000  # env steps per throughput figure (all workers together for the vec env)
    n_workers: int = 2
    target_pool: int = 16
    lipsync: bool = True
    seed: int = 0

    @classmethod
    def quick(cls, **overrides: Any) -> BenchConfig:
        base: dict[str, Any] = dict(seconds=1.0, warmup_seconds=0.1, repeats=2, throughput_steps=200, target_pool=2)
        base.update(overrides)
        return cls(**base)


@dataclass
class EnvResult:
    name: str
    env_id: str
    env_kwargs: dict[str, Any]
    control_steps: int
    raw_wall_s: float
    env_wall_s: float
    raw_steps_per_s: float
    env_steps_per_s: float
    overhead: float  # env_wall / raw_wall - 1
    meets_target: bool
    steps_per_s_1proc: float
    steps_per_s_vec: float
    n_workers: int
    vec_speedup: float


@dataclass
class BenchResult:
    config: BenchConfig
    envs: list[EnvResult] = field(default_factory=list)
    env: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------- envs
def lipsync_available() -> bool:
    return importlib.util.find_spec("facetwin.envs.lip_sync") is not None


def env_settings(cfg: BenchConfig) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(name, env id, kwargs for the raw-vs-env timing, kwargs for the throughput) per benchmarked env."""
    from facetwin.agents.rl_envs import DEFAULT_ENV_KWARGS

    common = {"variant": VARIANT, "action_mode": "absolute"}
    out = [
        (
            "MirrorSelfModel",
            MIRROR_ID,
            {**common, "obs_mode": "landmarks", "max_episode_steps": None},
            {**DEFAULT_ENV_KWARGS, "variant": VARIANT, "obs_mode": "landmarks", "target_pool_size": cfg.target_pool},
        )
    ]
    if cfg.lipsync and lipsync_available():
        out.append(("LipSync", LIPSYNC_ID, dict(common), dict(common)))
    return out


def _warm_targets(env, n: int) -> None:
    """Compute the MirrorSelfModel target pool up front (it is cached per process)."""
    base = env.unwrapped
    if hasattr(base, "pool_landmarks_mm"):
        for k in range(min(n, getattr(base, "target_pool_size", n))):
            base.pool_landmarks_mm(k)


# ---------------------------------------------------------------------------------------------------- timings
def time_raw_vs_env(env, controls: np.ndarray, warmup: np.ndarray, repeats: int) -> tuple[float, float]:
    """Best wall time of ``FaceModel.step(u)`` over ``controls`` and of ``env.step(u)`` over the same controls."""
    face = env.unwrapped.face
    actions = controls.astype(np.float32)
    episode = env.unwrapped.max_episode_steps
    if episode is not None and episode < len(controls) + len(warmup):
        raise ValueError("the env's episodes are shorter than the timed control sequence")

    def raw(rows) -> float:
        face.reset(face.rest_ctrl)
        t0 = time.perf_counter()
        for u in rows:
            face.step(u)
        return time.perf_counter() - t0

    def env_steps(rows) -> float:
        env.reset(seed=0)
        t0 = time.perf_counter()
        for a in rows:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                raise RuntimeError("an episode ended inside the timed section")
        return time.perf_counter() - t0

    raw(warmup)
    env_steps(warmup.astype(np.float32))
    best_raw = best_env = math.inf
    for _ in range(max(1, repeats)):  # interleaved: both see the same machine state
        best_raw = min(best_raw, raw(controls))
        best_env = min(best_env, env_steps(actions))
    return best_raw, best_env


def throughput_1proc(env, steps: int, seed: int) -> float:
    """Env steps per second with random actions, resets included, in this process."""
    env.action_space.seed(seed)
    env.reset(seed=seed)
    for _ in range(min(steps // 10 + 1, 50)):  # warm-up
        _, _, te, tr, _ = env.step(env.action_space.sample())
        if te or tr:
            env.reset()
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, te, tr, _ = env.step(env.action_space.sample())
        if te or tr:
            env.reset()
    return steps / (time.perf_counter() - t0)


def _vec_worker_env(env_id: str, kwargs: dict[str, Any], pool: int):
    from facetwin.agents.rl_envs import make_env

    env = make_env(env_id, kwargs)
    _warm_targets(env, pool)
    return env


def throughput_vec(env_id: str, kwargs: dict[str, Any], n_workers: int, steps: int, seed: int, pool: int) -> float:
    """Steps per second of all workers of a ``SubprocVecEnv`` (random actions, auto-reset)."""
    from functools import partial

    from stable_baselines3.common.vec_env import SubprocVecEnv

    venv = SubprocVecEnv([partial(_vec_worker_env, env_id, kwargs, pool) for _ in range(n_workers)])
    try:
        venv.seed(seed)
        venv.reset()
        rng = np.random.default_rng(seed)
        shape = (n_workers, *venv.action_space.shape)
        for _ in range(min(steps // (10 * n_workers) + 1, 50)):
            venv.step(rng.uniform(-1, 1, shape).astype(np.float32))
        n = max(1, steps // n_workers)
        t0 = time.perf_counter()
        for _ in range(n):
            venv.step(rng.uniform(-1, 1, shape).astype(np.float32))
        wall = time.perf_counter() - t0
    finally:
        venv.close()
    return n * n_workers / wall


def bench_env(name: str, env_id: str, timing_kwargs: dict, throughput_kwargs: dict, cfg: BenchConfig) -> EnvResult:
    from facetwin.agents.rl_envs import make_env
    from facetwin.sim import CONTROL_HZ

    n_ctrl = max(1, round(cfg.seconds * CONTROL_HZ))
    n_warm = max(1, round(cfg.warmup_seconds * CONTROL_HZ))
    env = make_env(env_id, timing_kwargs)
    try:
        face = env.unwrapped.face
        controls = smooth_controls(n_ctrl, face.rest_ctrl, seed=cfg.seed)
        warmup = controls[:n_warm]
        with one_core():
            raw_wall, env_wall = time_raw_vs_env(env, controls, warmup, cfg.repeats)
    finally:
        env.close()
    env = make_env(env_id, throughput_kwargs)
    try:
        _warm_targets(env, cfg.target_pool)
        one = throughput_1proc(env, cfg.throughput_steps, cfg.seed)
    finally:
        env.close()
    vec = throughput_vec(env_id, throughput_kwargs, cfg.n_workers, cfg.throughput_steps, cfg.seed, cfg.target_pool)
    overhead = env_wall / raw_wall - 1.0
    return EnvResult(
        name=name,
        env_id=env_id,
        env_kwargs=throughput_kwargs,
        control_steps=n_ctrl,
        raw_wall_s=raw_wall,
        env_wall_s=env_wall,
        raw_steps_per_s=n_ctrl / raw_wall,
        env_steps_per_s=n_ctrl / env_wall,
        overhead=overhead,
        meets_target=overhead <= TARGET_OVERHEAD,
        steps_per_s_1proc=one,
        steps_per_s_vec=vec,
        n_workers=cfg.n_workers,
        vec_speedup=vec / one,
    )


def environment() -> dict[str, Any]:
    import gymnasium

    return {
        "mujoco": mujoco.__version__,
        "gymnasium": gymnasium.__version__,
        "python": platform.python_version(),
        "cpu": cpu_name(),
        "cpus_available": cpus_available(),
        "pinned_to_one_core": hasattr(os, "sched_setaffinity"),
    }


def run_benchmark(cfg: BenchConfig) -> BenchResult:
    result = BenchResult(cfg, env=environment())
    for name, env_id, timing_kwargs, throughput_kwargs in env_settings(cfg):
        result.envs.append(bench_env(name, env_id, timing_kwargs, throughput_kwargs, cfg))
    return result


# ---------------------------------------------------------------------------------------------------- output
def _fmt(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def table_rows(result: BenchResult) -> list[tuple[str, list[str]]]:
    es = result.envs
    w = result.config.n_workers
    return [
        ("raw physics: FaceModel.step (fast), steps/s, 1 core", [_fmt(e.raw_steps_per_s) for e in es]),
        ("env.step (same controls), steps/s, 1 core", [_fmt(e.env_steps_per_s) for e in es]),
        (f"env.step overhead vs raw physics (target <= {TARGET_OVERHEAD:.0%})", [f"{e.overhead:+.1%}" for e in es]),
        ("env steps/s, 1 process (random actions, resets included)", [_fmt(e.steps_per_s_1proc) for e in es]),
        (f"env steps/s, SubprocVecEnv {w} workers (all workers)", [_fmt(e.steps_per_s_vec) for e in es]),
        (f"speed-up of {w} workers over 1 process", [f"{e.vec_speedup:.2f}x" for e in es]),
        ("target: overhead <= 15 %", [("PASS" if e.meets_target else "FAIL") for e in es]),
    ]


def format_table(result: BenchResult) -> str:
    header = ["metric", *(e.name for e in result.envs)]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * len(result.envs)]
    lines += ["| " + " | ".join([label, *cells]) + " |" for label, cells in table_rows(result)]
    return "\n".join(lines)


def format_report(result: BenchResult) -> str:
    env, cfg = result.env, result.config
    head = (
        f"facetwin env benchmark: MuJoCo {env['mujoco']}, Gymnasium {env['gymnasium']}, {env['cpu']} "
        f"({env['cpus_available']} cpus available), variant {VARIANT!r}, {cfg.seconds:g} simulated s per raw/env "
        f"figure (best of {cfg.repeats}), {cfg.throughput_steps} steps per throughput figure"
    )
    lines = [head, "", format_table(result)]
    if not any(e.name == "LipSync" for e in result.envs):
        why = "not measured (--no-lipsync)" if not cfg.lipsync else "facetwin.envs.lip_sync not found"
        lines += ["", f"LipSync: {why}"]
    return "\n".join(lines)


def to_json(result: BenchResult) -> dict[str, Any]:
    out = asdict(result)
    out["target_overhead"] = TARGET_OVERHEAD
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="short smoke run")
    p.add_argument("--seconds", type=float, default=None, help="simulated seconds per raw/env repetition (default 10)")
    p.add_argument("--repeats", type=int, default=None, help="timed repetitions, the best is kept (default 3)")
    p.add_argument("--throughput-steps", type=int, default=None, help="env steps per throughput figure (default 2000)")
    p.add_argument("--workers", type=int, default=2, help="SubprocVecEnv workers (default 2)")
    p.add_argument("--target-pool", type=int, default=None, help="MirrorSelfModel target pool size (default 16)")
    p.add_argument("--no-lipsync", action="store_true", help="skip the LipSync env")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the numbers as JSON")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> BenchResult:
    args = parse_args(argv)
    overrides: dict[str, Any] = dict(n_workers=args.workers, lipsync=not args.no_lipsync)
    for key, value in (("seconds", args.seconds), ("repeats", args.repeats),
                       ("throughput_steps", args.throughput_steps), ("target_pool", args.target_pool)):
        if value is not None:
            overrides[key] = value
    cfg = BenchConfig.quick(**overrides) if args.quick else BenchConfig(**overrides)
    result = run_benchmark(cfg)
    print(format_report(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(to_json(result), indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
