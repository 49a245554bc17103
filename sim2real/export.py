"""Export a trained Stable-Baselines3 policy to TorchScript, with the config needed to run it without SB3.

``facetwin train`` writes ``model.zip`` (SAC or PPO, ``MultiInputPolicy`` on a ``Dict`` observation), usually
``vecnormalize.pkl`` (observation normalization statistics) and ``checkpoint.zip`` (whose ``meta.json`` names the
env and its keyword arguments). :func:`export_policy` turns them into a folder that the robot side loads with
:func:`load_exported` (torch only: no SB3, no gymnasium, no pickles):

| file | content |
|---|---|
| ``policy.pt`` | TorchScript module, ``forward(*obs) -> action``: one float32 tensor per observation key (in ``obs_keys`` order, batched: ``(B, *shape)``), returns ``(B, A)`` actions in the env's action space |
| ``policy.json`` | the config (table below) |

The module is SB3's deterministic actor with everything around it folded in, so that it equals
``model.predict(vecnormalize.normalize_obs(obs), deterministic=True)``:

| step | what |
|---|---|
| normalize | per key ``clip((obs - mean) / sqrt(var + eps), -clip_obs, clip_obs)`` with the VecNormalize statistics (skipped when the run had none, ``--no-normalize``) |
| features | SB3's ``CombinedExtractor`` (each key flattened, concatenated) |
| actor | SAC: the actor's mean through ``tanh``, rescaled to ``[low, high]``; PPO: the action net's mean clipped to ``[low, high]`` |

``policy.json`` (:data:`EXPORT_FORMAT` 1):

| key | content |
|---|---|
| ``format`` | :data:`EXPORT_FORMAT` |
| ``facetwin_version``, ``torch_version``, ``sb3_version`` | versions at export time |
| ``algo`` | ``"sac"`` or ``"ppo"`` |
| ``env_id``, ``env_kwargs`` | the training env (from ``checkpoint.zip``'s ``meta.json``, or given) |
| ``action_mode`` | ``"absolute"`` or ``"delta"`` (``env_kwargs``, default absolute) |
| ``obs_keys`` | observation keys in the module's argument order |
| ``observation`` | per key ``{"shape": [...], "dtype": "float32"}`` |
| ``action`` | ``{"shape": [A], "low": [...], "high": [...]}`` |
| ``normalized`` | whether observation normalization is inside the module |
| ``fps`` | control rate, 30 |

>>> export_policy("runs/lipsync", "exported/lipsync")              # model.zip (+ vecnormalize.pkl, checkpoint.zip)
>>> policy = load_exported("exported/lipsync")
>>> action = policy(obs)                                            # obs: dict of arrays -> (26,) float32
>>> policy.config["env_id"]

CLI: ``facetwin export-policy RUN_DIR --out DIR [--env ID] [--env-arg KEY=VALUE]`` (:mod:`facetwin.cli.robot`).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from facetwin.files import load_json
from facetwin.sim.rates import CONTROL_HZ

EXPORT_FORMAT = 1
POLICY_FILE = "policy.pt"
CONFIG_FILE = "policy.json"
FPS = CONTROL_HZ


class ExportError(ValueError):
    """A run folder that cannot be exported, or an export folder that cannot be loaded; the message names why."""


def _actor_module(model, vecnormalize, keys: list[str]):
    """The torch module of the deterministic actor with normalization and action scaling folded in."""
    import torch
    from torch import nn

    policy = model.policy
    space = model.action_space
    low = torch.as_tensor(np.asarray(space.low, dtype=np.float32))
    high = torch.as_tensor(np.asarray(space.high, dtype=np.float32))
    algo = type(model).__name__.lower()

    class Actor(nn.Module):
        def __init__(self):
            super().__init__()
            self.keys = list(keys)
            self.register_buffer("low", low)
            self.register_buffer("high", high)
            stats = getattr(vecnormalize, "obs_rms", None) if vecnormalize is not None and vecnormalize.norm_obs else None
            norm_keys = (getattr(vecnormalize, "norm_obs_keys", None) or keys) if stats is not None else []
            self.norm = [k in norm_keys for k in keys]
            for i, k in enumerate(keys):
                if self.norm[i]:
                    self.register_buffer(f"mean{i}", torch.as_tensor(np.asarray(stats[k].mean, np.float32)))
                    self.register_buffer(f"std{i}", torch.as_tensor(
                        np.sqrt(np.asarray(stats[k].var, np.float64) + vecnormalize.epsilon).astype(np.float32)))
            self.clip_obs = float(vecnormalize.clip_obs) if vecnormalize is not None else 0.0
            if algo == "sac":
                self.extractor = policy.actor.features_extractor
                self.latent = policy.actor.latent_pi
                self.head = policy.actor.mu
            elif algo == "ppo":
                if not policy.share_features_extractor:
                    self.extractor = policy.pi_features_extractor
                else:
                    self.extractor = policy.features_extractor
                self.latent = policy.mlp_extractor.policy_net
                self.head = policy.action_net
            else:
                raise ExportError(f"cannot export a {type(model).__name__} policy; facetwin trains sac or ppo")
            self.squash = algo == "sac"

        def forward(self, *obs):
            d = {}
            for i, k in enumerate(self.keys):
                x = obs[i].float()
                if self.norm[i]:
                    x = torch.clamp((x - getattr(self, f"mean{i}")) / getattr(self, f"std{i}"),
                                    -self.clip_obs, self.clip_obs)
                d[k] = x
            a = self.head(self.latent(self.extractor(d)))
            if self.squash:
                return self.low + 0.5 * (torch.tanh(a) + 1.0) * (self.high - self.low)
            return torch.maximum(torch.minimum(a, self.high), self.low)

    return Actor().eval()


def _load_run(run: Path, device: str = "cpu"):
    """(model, vecnormalize or None, meta) from a run folder, a model.zip or a checkpoint.zip; a file that is not
    what ``facetwin train`` writes (truncated, corrupt, another program's) is an :class:`ExportError` naming it."""
    try:
        return _read_run(run, device)
    except (ExportError, FileNotFoundError):
        raise
    except Exception as e:  # BadZipFile, a JSON or pickle error, SB3's own complaints: all mean a damaged run
        msg = " ".join(str(e).split())[:200]
        from facetwin.agents.rl_checkpoint import MODEL_NAME

        what = run / MODEL_NAME if run.is_dir() else run
        raise ExportError(f"{what}: not a policy that `facetwin train` wrote, or a damaged one "
                          f"({type(e).__name__}: {msg})") from None


def _read_run(run: Path, device: str):
    from facetwin.agents.rl_checkpoint import (
        CHECKPOINT_NAME,
        MODEL_NAME,
        VECNORM_NAME,
        algo_class,
        load_checkpoint,
        read_checkpoint_meta,
    )

    if not run.exists():
        raise FileNotFoundError(f"{run}: no such run folder or model file")
    if run.is_file() and run.name != MODEL_NAME:
        model, vecnorm, meta = load_checkpoint(run, device=device)
        return model, vecnorm, meta
    folder = run if run.is_dir() else run.parent
    model_path = folder / MODEL_NAME
    if not model_path.exists():
        raise ExportError(f"{folder}: no {MODEL_NAME} (the final policy that `facetwin train` writes)")
    ckpt = folder / CHECKPOINT_NAME
    meta = read_checkpoint_meta(ckpt) if ckpt.exists() else {}
    algo = meta.get("algo")
    if algo is None:  # no checkpoint: the saved attributes say (SAC has an entropy target, PPO epochs)
        import zipfile

        with zipfile.ZipFile(model_path) as zf:
            data = json.loads(zf.read("data"))
        algo = "sac" if "target_entropy" in data else "ppo" if "n_epochs" in data else None
        if algo is None:
            raise ExportError(f"{model_path}: not a SAC or PPO model")
    model = algo_class(algo).load(model_path, device=device)
    vecnorm = None
    if (folder / VECNORM_NAME).exists():
        with open(folder / VECNORM_NAME, "rb") as f:
            vecnorm = pickle.load(f)
    return model, vecnorm, {**meta, "algo": algo}


def export_policy(
    run: str | Path,
    out_dir: str | Path,
    *,
    env_id: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    model=None,
    vecnormalize=None,
) -> Path:
    """Export the policy of ``run`` (a ``facetwin train`` folder, its ``model.zip`` or a ``checkpoint.zip``) into
    ``out_dir`` (``policy.pt`` + ``policy.json``, both written atomically). Returns ``out_dir``.

    ``env_id`` / ``env_kwargs`` override (or, without a checkpoint, supply) the training env named in the config.
    ``model`` (+ ``vecnormalize``) exports an SB3 model object directly instead of reading ``run`` (``run`` is
    then ignored and may be None).
    """
    import torch
    from gymnasium import spaces

    from facetwin import __version__
    from facetwin.files import atomic_write

    meta: dict[str, Any] = {}
    if model is None:
        model, vecnormalize, meta = _load_run(Path(run))
    algo = type(model).__name__.lower()
    obs_space = model.observation_space
    if not isinstance(obs_space, spaces.Dict):
        raise ExportError(f"observation space must be a Dict (MultiInputPolicy), got {type(obs_space).__name__}")
    keys = list(obs_space.spaces)
    env_id = env_id or meta.get("env_id")
    if not env_id:
        raise ExportError("the env id is unknown (no checkpoint.zip next to model.zip): pass env_id=")
    kwargs = dict(env_kwargs if env_kwargs is not None else meta.get("env_kwargs") or {})
    module = _actor_module(model, vecnormalize, keys)
    examples = tuple(torch.as_tensor(np.asarray(obs_space[k].sample(), np.float32)[None]) for k in keys)
    with torch.no_grad():
        traced = torch.jit.trace(module, examples, check_trace=False)
    import stable_baselines3

    config = {
        "format": EXPORT_FORMAT,
        "facetwin_version": __version__,
        "torch_version": torch.__version__,
        "sb3_version": stable_baselines3.__version__,
        "algo": algo,
        "env_id": env_id,
        "env_kwargs": kwargs,
        "action_mode": kwargs.get("action_mode", "absolute"),
        "obs_keys": keys,
        "observation": {k: {"shape": list(obs_space[k].shape), "dtype": "float32"} for k in keys},
        "action": {"shape": list(model.action_space.shape), "low": np.asarray(model.action_space.low).tolist(),
                   "high": np.asarray(model.action_space.high).tolist()},
        "normalized": bool(vecnormalize is not None and vecnormalize.norm_obs),
        "fps": FPS,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / POLICY_FILE, lambda tmp: torch.jit.save(traced, tmp))
    text = json.dumps(config, indent=1) + "\n"
    atomic_write(out / CONFIG_FILE, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return out


class ExportedPolicy:
    """A loaded export: ``policy(obs) -> action``; ``obs`` a dict of arrays (one observation, or batched with a
    leading dimension: then the actions are batched too). ``config`` is ``policy.json``."""

    def __init__(self, module, config: dict):
        self.module = module
        self.config = config
        self.keys: list[str] = list(config["obs_keys"])
        self.shapes = {k: tuple(config["observation"][k]["shape"]) for k in self.keys}

    def __call__(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        import torch

        missing = [k for k in self.keys if k not in obs]
        if missing:
            raise ValueError(f"observation lacks the key(s) {', '.join(missing)}; the policy needs {self.keys}")
        arrays = [np.asarray(obs[k], dtype=np.float32) for k in self.keys]
        single = arrays[0].shape == self.shapes[self.keys[0]]
        for k, a in zip(self.keys, arrays):
            want = self.shapes[k] if single else (a.shape[0], *self.shapes[k])
            if a.shape != want:
                raise ValueError(f"observation[{k!r}] has shape {a.shape}, the policy needs {self.shapes[k]}")
        with torch.no_grad():
            out = self.module(*(torch.from_numpy(a[None] if single else a) for a in arrays)).numpy()
        return out[0] if single else out


def load_exported(path: str | Path) -> ExportedPolicy:
    """The policy in an :func:`export_policy` folder (torch only); :class:`ExportError` names what is wrong."""
    import torch

    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such exported policy folder")
    for name in (POLICY_FILE, CONFIG_FILE):
        if not (folder / name).exists():
            raise ExportError(f"{folder}: missing {name} (write it with facetwin.sim2real.export.export_policy)")
    config = load_json(folder / CONFIG_FILE, "policy config", error=ExportError)
    if not isinstance(config, dict) or config.get("format") != EXPORT_FORMAT:
        got = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise ExportError(f"{folder / CONFIG_FILE}: format {got!r}, this facetwin reads {EXPORT_FORMAT}")
    for key in ("env_id", "obs_keys", "observation", "action", "action_mode"):
        if key not in config:
            raise ExportError(f"{folder / CONFIG_FILE}: missing field {key!r}")
    try:
        module = torch.jit.load(str(folder / POLICY_FILE), map_location="cpu").eval()
    except Exception as e:  # a truncated or foreign file
        raise ExportError(f"{folder / POLICY_FILE}: not a TorchScript policy, or a damaged one "
                          f"({type(e).__name__})") from None
    return ExportedPolicy(module, config)


__all__ = ["CONFIG_FILE", "EXPORT_FORMAT", "POLICY_FILE", "ExportError", "ExportedPolicy",
           "export_policy", "load_exported"]
