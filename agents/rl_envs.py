"""The environments of :mod:`facetwin.agents.rl`: ids, their checks (before any worker starts), monitored and
randomized copies, vector envs."""

from __future__ import annotations

import importlib
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import gymnasium as gym
import numpy as np

if TYPE_CHECKING:
    from facetwin.envs.randomization import RandomizationConfig

# a ranges config, a TOML path, True (the default ranges) or None/False (the nominal twin)
RandomizationSpec = Union["RandomizationConfig", str, Path, bool, None]

DEFAULT_ENV_ID = "facetwin.envs.mirror_self_model:MirrorSelfModelEnv"
# ids that name the mirror self-model env and so get DEFAULT_ENV_KWARGS unless told otherwise
MIRROR_ENV_IDS = (DEFAULT_ENV_ID, "facetwin/MirrorSelfModel-v0")
# the training setup of the mirror self-model task: the fast model variant, absolute controls, short episodes
DEFAULT_ENV_KWARGS: dict[str, Any] = {
    "variant": "fast",
    "action_mode": "absolute",
    "obs_mode": "landmarks",
    "max_episode_steps": 10,  # 1/3 s: commanding the target itself gets within 0.05 mm in 10 steps
}


def _entry_point_class(env_id: str) -> Any | None:
    """The env class named by a ``"module:Class"`` entry point, or None when ``env_id`` is not one."""
    if ":" not in env_id:
        return None
    module_name, _, attr = env_id.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    obj = getattr(module, attr, None)
    return obj if isinstance(obj, type) and issubclass(obj, gym.Env) else None


def check_env_id(env_id: str) -> None:
    """``ValueError`` unless ``env_id`` is a registered id or a ``"module:Class"`` gymnasium env."""
    if _entry_point_class(env_id) is not None:
        return
    try:
        gym.spec(env_id)
    except gym.error.Error:
        ours = sorted(k for k in gym.registry if k.startswith("facetwin/"))
        raise ValueError(f"--env: unknown environment {env_id!r}; registered: {', '.join(ours)} "
                         "(or give module:Class)") from None


def check_env_kwargs(env_id: str, env_kwargs: dict[str, Any] | None) -> None:
    """``ValueError`` naming the ``--env-arg`` that the environment's constructor does not take (checked in this
    process, before any worker starts: a bad one would otherwise kill the workers with a traceback each)."""
    import inspect

    cls = _entry_point_class(env_id)
    spec_kwargs: dict[str, Any] = {}
    if cls is None:
        spec = gym.spec(env_id)
        spec_kwargs = dict(spec.kwargs or {})
        entry = spec.entry_point
        cls = _entry_point_class(entry) if isinstance(entry, str) else entry
    if cls is None:
        return
    accepted: set[str] = {"max_episode_steps"} if cls is not _entry_point_class(env_id) else set()
    for klass in cls.__mro__:  # up the constructors until one takes no **kwargs
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        accepted |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {"self"}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    else:
        return  # **kwargs all the way up: anything goes
    unknown = sorted(set(env_kwargs or {}) - accepted - set(spec_kwargs))
    if unknown:
        raise ValueError(f"--env-arg {unknown[0]}: {env_id} takes no such argument; it takes "
                         f"{', '.join(sorted(accepted))}")


def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> gym.Env:
    """``gym.make`` for a registered id (``"facetwin/..."``) or a ``"module:Class"`` entry point."""
    kwargs = dict(env_kwargs or {})
    if _entry_point_class(env_id) is not None:
        # every kwarg goes to the constructor (gym.make(spec, max_episode_steps=...) would take that one for itself)
        spec = gym.envs.registration.EnvSpec(id=env_id.partition(":")[2], entry_point=env_id, kwargs=kwargs)
        return gym.make(spec)
    return gym.make(env_id, **kwargs)


class _KeepError(gym.Wrapper):
    """Carries the last ``info["error_mm"]`` over steps that lack it (a diverged step), so that Monitor can log the
    end-of-episode error of every episode."""

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._last_error = float(info.get("error_mm", np.nan))
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if "error_mm" in info:
            self._last_error = float(info["error_mm"])
        else:
            info["error_mm"] = self._last_error
        return obs, reward, terminated, truncated, info


def _monitored_env(
    env_id: str, env_kwargs: dict[str, Any] | None, randomize: RandomizationConfig | None = None
) -> gym.Env:
    from stable_baselines3.common.monitor import Monitor

    env = make_env(env_id, env_kwargs)
    if randomize is not None:
        from facetwin.envs.randomization import DomainRandomization

        env = DomainRandomization(env, randomize)
    return Monitor(_KeepError(env), info_keywords=("error_mm",))


def resolve_randomization(
    spec: RandomizationSpec, fallback: RandomizationConfig | None = None
) -> RandomizationConfig | None:
    """A :class:`~facetwin.envs.randomization.RandomizationConfig` from ``spec``: ``None``/``False`` -> None
    (nominal twin), ``True`` -> ``fallback`` or else the default ranges file, a path -> that file, a config -> itself."""
    if spec is None or spec is False:
        return None
    from facetwin.envs.randomization import RandomizationConfig, load_config

    if isinstance(spec, RandomizationConfig):
        return spec
    if spec is True:
        return fallback if fallback is not None else load_config(None)
    return load_config(spec)


def make_vec_env(
    env_id: str,
    n_envs: int,
    seed: int,
    env_kwargs: dict[str, Any] | None = None,
    randomize: RandomizationConfig | None = None,
):
    """``n_envs`` monitored copies: ``SubprocVecEnv`` when ``n_envs > 1``, else ``DummyVecEnv``; env ``i`` is
    reset with ``seed + i`` the first time (then its random stream goes on). ``randomize`` (a
    ``RandomizationConfig``): each env draws fresh domain parameters at every reset."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    fns = [partial(_monitored_env, env_id, env_kwargs, randomize) for _ in range(n_envs)]
    venv = SubprocVecEnv(fns) if n_envs > 1 else DummyVecEnv(fns)
    venv.seed(seed)
    venv.action_space.seed(seed)
    return venv


__all__ = ["DEFAULT_ENV_ID", "DEFAULT_ENV_KWARGS", "MIRROR_ENV_IDS", "RandomizationSpec", "check_env_id", "check_env_kwargs", "make_env", "make_vec_env", "resolve_randomization"]
