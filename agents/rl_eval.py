"""Evaluation of policies on held-out episodes (the trained policy, a random policy, the neutral face) for
:mod:`facetwin.agents.rl`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from facetwin.agents.rl_envs import make_env

if TYPE_CHECKING:
    from facetwin.envs.randomization import RandomizationConfig

DEFAULT_EVAL_SEED = 1_000_000
DEFAULT_EVAL_DOMAIN_SEED = 2_000_000  # stream of the held-out randomized twins (DomainRandomization seed)


PolicyFn = Callable[[Any], np.ndarray]


@dataclass
class EvalResult:
    """Landmark errors (mm) of one policy on ``episodes`` held-out episodes."""

    name: str
    episodes: int
    seed: int
    final_error_mm: list[float]  # error at the last step of each episode
    mean_error_mm: list[float]  # error averaged over the steps of each episode
    episode_length: list[int]

    @property
    def mean_final_error_mm(self) -> float:
        return float(np.mean(self.final_error_mm))

    @property
    def mean_episode_error_mm(self) -> float:
        return float(np.mean(self.mean_error_mm))

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "episodes": self.episodes,
            "seed": self.seed,
            "mean_final_error_mm": self.mean_final_error_mm,
            "std_final_error_mm": float(np.std(self.final_error_mm)),
            "mean_episode_error_mm": self.mean_episode_error_mm,
            "final_error_mm": self.final_error_mm,
            "mean_error_mm": self.mean_error_mm,
            "episode_length": self.episode_length,
        }


_HELDOUT_CACHE: dict[tuple, np.ndarray] = {}


def heldout_reset_options(env: gym.Env, episodes: int, seed: int = DEFAULT_EVAL_SEED) -> list[dict[str, Any]] | None:
    """Per-episode ``reset`` options with held-out targets, or None if ``env`` has no target options.

    For the mirror self-model env: target ``i`` is ``sample_expression(default_rng([seed, i]), ...)`` with the
    env's own target distribution (gaussian/uniform, sigma, symmetry), settled for ``target_settle_s`` on the
    nominal face, and passed as ``{"target_landmarks_mm": ...}``. The training pool's entry ``k`` is drawn from
    ``default_rng([target_seed, k])``, so a ``seed`` other than ``target_seed`` gives targets outside that pool.
    Settled targets are cached per process.
    """
    base = env.unwrapped
    keys = getattr(base, "reset_option_keys", ())
    if "target_landmarks_mm" not in keys or not hasattr(base, "settled_landmarks_mm"):
        return None
    from facetwin.envs.mirror_self_model import sample_expression

    if seed == getattr(base, "target_seed", None):
        raise ValueError(
            f"the evaluation seed {seed} equals the env's target_seed: the targets would be training targets"
        )
    options = []
    for i in range(episodes):
        key = (base.variant, base.frame, base.target_distribution, base.target_sigma, base.symmetric,
               base.target_settle_s, seed, i)
        lm = _HELDOUT_CACHE.get(key)
        if lm is None:
            u = sample_expression(np.random.default_rng([seed, i]), base.rest_ctrl, base.actuator_names,
                                  distribution=base.target_distribution, sigma=base.target_sigma,
                                  symmetric=base.symmetric)
            lm = _HELDOUT_CACHE[key] = base.settled_landmarks_mm(u, base.target_settle_s, base.frame)
        options.append({"target_landmarks_mm": lm.copy()})
    return options


def evaluate(
    policy_fn: PolicyFn,
    env: gym.Env,
    episodes: int,
    seed: int = DEFAULT_EVAL_SEED,
    *,
    name: str = "policy",
    reset_options: Sequence[dict[str, Any] | None] | None = None,
    held_out: bool = True,
    max_steps: int = 10_000,
) -> EvalResult:
    """Run ``policy_fn(obs) -> action`` for ``episodes`` episodes on ``env`` and collect the landmark errors.

    Episode ``i`` is reset with ``seed=seed + i`` and, for the mirror self-model env (``held_out=True``), the
    held-out target ``i`` of :func:`heldout_reset_options` (``reset_options`` overrides it; envs without target
    options just use the seeds). Every policy evaluated with the same env settings, ``episodes`` and ``seed`` sees
    the same episodes. The error is ``info["error_mm"]`` after each step (a step without it, e.g. a diverged one,
    repeats the previous value); the episode ends at ``terminated``/``truncated`` or ``max_steps``.
    """
    if reset_options is None and held_out:
        reset_options = heldout_reset_options(env, episodes, seed)
    finals, means, lengths = [], [], []
    for i in range(episodes):
        opts = reset_options[i] if reset_options is not None else None
        obs, info = env.reset(seed=seed + i, options=opts)
        error = float(info.get("error_mm", np.nan))
        errors = []
        for _ in range(max_steps):
            obs, _reward, terminated, truncated, info = env.step(policy_fn(obs))
            error = float(info.get("error_mm", error))
            errors.append(error)
            if terminated or truncated:
                break
        finals.append(errors[-1])
        means.append(float(np.mean(errors)))
        lengths.append(len(errors))
    return EvalResult(name, episodes, seed, finals, means, lengths)


def random_policy(action_space: gym.spaces.Space, seed: int = 0) -> PolicyFn:
    """Uniformly random actions from ``action_space`` (its own seeded random stream)."""
    space = gym.spaces.Box(action_space.low, action_space.high, action_space.shape, action_space.dtype)
    space.seed(seed)
    return lambda obs: space.sample()


def neutral_action(env: gym.Env) -> np.ndarray:
    """The action that commands the neutral face (rest controls) from ``env``'s current command."""
    base = env.unwrapped
    rest = getattr(base, "rest_ctrl", None)
    if rest is None:
        from facetwin.sim import rest_controls

        rest = rest_controls()
    if hasattr(base, "ctrl_to_action"):
        return np.asarray(base.ctrl_to_action(rest), dtype=env.action_space.dtype)
    if getattr(base, "action_mode", "absolute") == "delta":
        return np.zeros(env.action_space.shape, dtype=env.action_space.dtype)
    return np.asarray(rest, dtype=env.action_space.dtype)


def neutral_policy(env: gym.Env) -> PolicyFn:
    """Always the neutral face (rest controls, in absolute or delta mode): the error is then the target's own
    distance from the neutral face."""
    return lambda obs: neutral_action(env)


def model_policy(model, vecnormalize=None, deterministic: bool = True) -> PolicyFn:
    """A trained SB3 model as ``policy_fn`` (observations normalized with the training statistics if given)."""

    def act(obs):
        if vecnormalize is not None:
            obs = vecnormalize.normalize_obs(obs)
        action, _ = model.predict(obs, deterministic=deterministic)
        return action

    return act


def format_eval_table(results: Sequence[EvalResult], reference: str = "neutral face") -> str:
    """One markdown table: mean final / per-episode landmark error per policy, and the ratio to ``reference``."""
    ref = next((r for r in results if r.name == reference), None)
    lines = [
        "| policy | final landmark error (mm) | error over the episode (mm) | final error vs neutral |",
        "|---|---:|---:|---:|",
    ]
    for r in results:
        ratio = f"{r.mean_final_error_mm / ref.mean_final_error_mm:.2f}x" if ref and ref.mean_final_error_mm else "-"
        lines.append(
            f"| {r.name} | {r.mean_final_error_mm:.3f} ± {np.std(r.final_error_mm):.3f} "
            f"| {r.mean_episode_error_mm:.3f} | {ratio} |"
        )
    return "\n".join(lines)


def compare_policies(
    env_id: str,
    env_kwargs: dict[str, Any] | None,
    policy_fn: PolicyFn | None,
    episodes: int,
    seed: int = DEFAULT_EVAL_SEED,
    policy_name: str = "trained",
    randomize: RandomizationConfig | None = None,
    domain_seed: int = DEFAULT_EVAL_DOMAIN_SEED,
) -> dict[str, EvalResult]:
    """``policy_fn`` (if given), a random policy and the neutral face on the same held-out episodes.

    ``randomize`` (a ``RandomizationConfig``): on held-out randomized twins, episode ``i`` with the domain drawn from
    ``default_rng([domain_seed, seed + i])``, the same for every policy."""
    env = make_env(env_id, env_kwargs)
    if randomize is not None:
        from facetwin.envs.randomization import DomainRandomization

        env = DomainRandomization(env, randomize, seed=domain_seed)
    try:
        options = heldout_reset_options(env, episodes, seed)
        run = partial(evaluate, env=env, episodes=episodes, seed=seed, reset_options=options, held_out=False)
        out: dict[str, EvalResult] = {}
        if policy_fn is not None:
            out[policy_name] = run(policy_fn, name=policy_name)
        out["random"] = run(random_policy(env.action_space, seed), name="random")
        out["neutral face"] = run(neutral_policy(env), name="neutral face")
    finally:
        env.close()
    return out


__all__ = ["DEFAULT_EVAL_DOMAIN_SEED", "compare_policies", "DEFAULT_EVAL_SEED", "EvalResult", "PolicyFn", "evaluate", "format_eval_table", "heldout_reset_options", "model_policy", "neutral_action", "neutral_policy", "random_policy"]
