"""A residual policy on top of the lip-sync pipeline, trained with RL in ``LipSync-v0`` (SAC, Stable-Baselines3).

The open-loop pipeline (:class:`facetwin.agents.lipsync.LipSyncer`) plans each clip from its audio and commands the
face without looking at it. :class:`ResidualLipSync` plays the same clips in :class:`facetwin.envs.lip_sync.LipSyncEnv`
with the pipeline's commands as the base; the agent sees what the face does and what comes next, and adds a
bounded correction to the 11 mouth motors (jaw included) every control period. Reward: the environment's (lip
shape error, unmet seals on closure frames, unmet rounding, effort, jerk). With ``domain=`` (a callable drawing
:class:`facetwin.envs.domain.DomainParams`, e.g. ``facetwin.envs.randomization``) each episode plays on a
perturbed twin, so the correction has to be robust rather than tuned to one face.

## Action space

``Box(-1, 1, (11,))``: the correction of the mouth motors (:data:`facetwin.agents.self_model.MOUTH_ACTUATORS`),
scaled by ``scale`` (default 0.3) and added to the base command; the sum is clipped to [-1, 1].

## Observation space

``Box((N,))``, flat float32:

| part | size | content |
|---|---|---|
| base commands | 33 | the pipeline's mouth commands of periods ``k, k + 1, k + 2`` |
| plan | 12 | seal, rounding and opening probabilities of frames ``k .. k + 3`` |
| lips | 120 | the face's lip landmarks now (``LipSyncEnv`` observation, 10 mm units) |
| motors | 11 | the mouth motor positions |
| previous action | 11 | the last correction |

## Episodes

One clip each, as ``LipSync-v0``; ``truncated`` at its end.

>>> env = ResidualLipSync(corpus_dir, split="train")
>>> model, report = train_residual(corpus_dir, steps=30000, out="runs/residual")
>>> ctrl = ResidualPolicy.load("runs/residual/residual.zip").controls(clip, syncer)   # (T, 26)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np

from .self_model import MOUTH_INDEX

N_MOUTH = len(MOUTH_INDEX)
DEFAULT_SCALE = 0.3
BASE_AHEAD = 3  # base commands k .. k + 2
PLAN_AHEAD = 4  # plan frames k .. k + 3
OBS_DIM = BASE_AHEAD * N_MOUTH + 3 * PLAN_AHEAD + 120 + N_MOUTH + N_MOUTH


class ResidualLipSync(gym.Env):
    """``LipSync-v0`` with the pipeline's commands as the base and a correction as the action (module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, corpus_dir: str | Path | None = None, *, split: str = "train", syncer=None,
                 scale: float = DEFAULT_SCALE, domain=None, variant: str = "fast", clips=None):
        from facetwin.envs.lip_sync import LipSyncEnv

        if not 0 < float(scale) <= 1:
            raise ValueError(f"scale must be in (0, 1], got {scale!r}")
        kw = {"clips": clips} if clips is not None else {"corpus_dir": corpus_dir, "split": split}
        self.env = LipSyncEnv(**kw, action_mode="absolute", domain=domain, variant=variant)
        if syncer is None:
            from .lipsync import LipSyncer

            syncer = LipSyncer("offline")
        self.syncer = syncer
        self.scale = float(scale)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (N_MOUTH,), np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
        self._plans: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._k = 0
        self._prev = np.zeros(N_MOUTH)

    @property
    def unwrapped_env(self):
        return self.env.unwrapped

    def base(self, clip) -> tuple[np.ndarray, np.ndarray]:
        """(T, 26) pipeline commands and (T, 3) plan probabilities of a clip (cached per clip id)."""
        if clip.id not in self._plans:
            res = self.syncer.controls(clip.load_audio16(), 16000)
            p = res.plan
            self._plans[clip.id] = (res.ctrl, np.stack([p.closure_p, p.rounded_p, p.open_p], axis=1))
        return self._plans[clip.id]

    def _obs(self, env_obs: dict) -> np.ndarray:
        ctrl, plan = self.base(self.env.unwrapped.clip)
        T = len(ctrl)
        k = self._k
        b = ctrl[np.clip(np.arange(k, k + BASE_AHEAD), 0, T - 1)][:, MOUTH_INDEX].ravel()
        p = plan[np.clip(np.arange(k, k + PLAN_AHEAD), 0, T - 1)].ravel()
        lips = np.asarray(env_obs["lips"], dtype=np.float64).ravel()
        motors = np.asarray(env_obs["motors"], dtype=np.float64)[MOUTH_INDEX]
        return np.concatenate([b, p, lips, motors, self._prev]).astype(np.float32)

    def command(self, action: np.ndarray) -> np.ndarray:
        """The (26,) command of the current period: base + scale x correction, clipped."""
        ctrl, _ = self.base(self.env.unwrapped.clip)
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(N_MOUTH), -1.0, 1.0)
        u = ctrl[min(self._k, len(ctrl) - 1)].copy()
        u[MOUTH_INDEX] = np.clip(u[MOUTH_INDEX] + self.scale * a, -1.0, 1.0)
        return u

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, info = self.env.reset(seed=seed, options=options)
        self._k = 0
        self._prev = np.zeros(N_MOUTH)
        return self._obs(obs), info

    def step(self, action):
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(N_MOUTH), -1.0, 1.0)
        if not np.isfinite(a).all():
            raise ValueError("action contains NaN or inf")
        obs, reward, terminated, truncated, info = self.env.step(self.command(a))
        self._k += 1
        self._prev = a
        return self._obs(obs), float(reward), terminated, truncated, info

    def close(self):
        self.env.close()


# ---------------------------------------------------------------------------------------------------- policy
class ResidualPolicy:
    """A trained correction: SAC actor, deterministic."""

    def __init__(self, model, scale: float = DEFAULT_SCALE):
        self.model, self.scale = model, float(scale)

    @classmethod
    def load(cls, path: str | Path) -> ResidualPolicy:
        from stable_baselines3 import SAC

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such residual policy")
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8")) if path.with_suffix(".json").exists() else {}
        return cls(SAC.load(str(path), device="cpu"), meta.get("scale", DEFAULT_SCALE))

    def controls(self, clip, syncer, *, face=None, domain=None) -> np.ndarray:
        """(T, 26) commands for a clip, rolled out closed loop on the twin (the correction needs the face's state)."""
        env = ResidualLipSync(clips=[clip_spec(clip)], syncer=syncer, scale=self.scale, domain=domain)
        try:
            obs, _ = env.reset(seed=0)
            T = env.env.unwrapped.clip.n_frames
            out = np.empty((T, 26))
            for k in range(T):
                a, _ = self.model.predict(obs, deterministic=True)
                out[k] = env.command(a)
                obs, _r, _term, trunc, info = env.step(a)
                if trunc and k < T - 1:
                    raise RuntimeError(f"the twin diverged at frame {k}")
            return out
        finally:
            env.close()


def clip_spec(clip) -> dict:
    """A :class:`facetwin.envs.lip_sync.ClipData` as a ``LipSyncEnv(clips=[...])`` entry (its audio and timeline)."""
    return {"audio": clip.load_audio16(), "sr": 16000, "timeline": clip.timeline, "id": clip.id, "lang": clip.lang,
            "text": clip.text}


# ---------------------------------------------------------------------------------------------------- training
def train_residual(corpus_dir: str | Path, out: str | Path, *, steps: int = 30000, seed: int = 0,
                   scale: float = DEFAULT_SCALE, domain: Callable | None = None, progress: bool = True,
                   weights_dir: str | Path | None = None) -> dict:
    """Train the correction with SAC on the ``train`` split of ``corpus_dir``; writes ``out/residual.zip`` and
    ``out/residual.json``; returns the report."""
    import torch
    from stable_baselines3 import SAC

    from .lipsync import LipSyncer

    if int(steps) < 100:
        raise ValueError(f"steps must be >= 100, got {steps!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    syncer = LipSyncer("offline", weights_dir=weights_dir)
    env = ResidualLipSync(corpus_dir, split="train", syncer=syncer, scale=scale, domain=domain)
    torch.manual_seed(seed)
    model = SAC("MlpPolicy", env, seed=seed, learning_starts=1000, batch_size=256, buffer_size=int(steps),
                policy_kwargs={"net_arch": [256, 256]}, verbose=0, device="cpu")
    t0 = time.perf_counter()
    model.learn(total_timesteps=int(steps), progress_bar=progress)
    seconds = time.perf_counter() - t0
    env.close()
    model.save(str(out / "residual.zip"))
    report = {"steps": int(steps), "seed": seed, "scale": scale, "seconds": round(seconds, 1),
              "corpus": str(corpus_dir), "randomized": domain is not None}
    (out / "residual.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report


__all__ = ["DEFAULT_SCALE", "OBS_DIM", "ResidualLipSync", "ResidualPolicy", "clip_spec",
           "train_residual"]
