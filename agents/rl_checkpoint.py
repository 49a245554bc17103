"""Resumable training checkpoints of :mod:`facetwin.agents.rl`: one zip written atomically (model, VecNormalize,
replay buffer, ``meta.json``), read back whole or refused."""

from __future__ import annotations

import copy
import io
import json
import pickle
import time
import zipfile
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np

from facetwin.files import atomic_write, stray_temporaries

ALGOS = ("ppo", "sac")
CHECKPOINT_NAME = "checkpoint.zip"
MODEL_NAME = "model.zip"
VECNORM_NAME = "vecnormalize.pkl"
EVAL_NAME = "eval.json"
CHECKPOINT_FORMAT = 1


def algo_class(algo: str):
    from stable_baselines3 import PPO, SAC

    try:
        return {"ppo": PPO, "sac": SAC}[algo.lower()]
    except KeyError:
        raise ValueError(f"unknown algorithm {algo!r}; choose one of {ALGOS}") from None


def remove_stale_temporaries(out_dir: str | Path) -> list[Path]:
    """Delete the temporary files a killed run may have left in ``out_dir`` (:func:`facetwin.files.stray_temporaries`)."""
    removed = []
    for p in stray_temporaries(out_dir):
        with suppress(OSError):
            p.unlink()
            removed.append(p)
    return removed


_COMPACTED = "_facetwin_compacted"


def _compact_buffer(buffer):
    """A shallow copy of an SB3 replay buffer whose storage arrays are cut to the rows in use (SB3 allocates all
    ``buffer_size`` rows up front, 350 MB for the default SAC buffer of this env, mostly zeros)."""
    if buffer.full or buffer.pos >= buffer.buffer_size:
        return buffer
    n, cap = buffer.pos, buffer.buffer_size
    out = copy.copy(buffer)
    names = []
    for name, value in vars(buffer).items():
        if isinstance(value, np.ndarray) and value.ndim and value.shape[0] == cap:
            setattr(out, name, value[:n])
            names.append(name)
        elif isinstance(value, dict) and value and all(
            isinstance(v, np.ndarray) and v.ndim and v.shape[0] == cap for v in value.values()
        ):
            setattr(out, name, {k: v[:n] for k, v in value.items()})
            names.append(name)
    setattr(out, _COMPACTED, names)
    return out


def _expand_buffer(buffer):
    """Undo :func:`_compact_buffer`: pad the storage arrays back to ``buffer_size`` rows."""
    names = vars(buffer).pop(_COMPACTED, None)
    if not names:
        return buffer
    cap = buffer.buffer_size

    def grow(a: np.ndarray) -> np.ndarray:
        full = np.zeros((cap, *a.shape[1:]), dtype=a.dtype)
        full[: len(a)] = a
        return full

    for name in names:
        value = getattr(buffer, name)
        setattr(buffer, name, {k: grow(v) for k, v in value.items()} if isinstance(value, dict) else grow(value))
    return buffer


def save_checkpoint(path: str | Path, model, vecnormalize=None, meta: dict[str, Any] | None = None) -> Path:
    """One self-contained checkpoint file (a zip of the SB3 model, VecNormalize statistics, SAC replay buffer and
    ``meta.json`` with the step count), written atomically."""
    meta = dict(meta or {})
    meta.update(format=CHECKPOINT_FORMAT, num_timesteps=int(model.num_timesteps), saved_at=time.time())
    model_bytes = io.BytesIO()
    model.save(model_bytes)
    buffer = getattr(model, "replay_buffer", None)
    meta["has_vecnormalize"] = vecnormalize is not None
    meta["has_replay_buffer"] = buffer is not None

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            zf.writestr("model.zip", model_bytes.getvalue())
            if vecnormalize is not None:
                zf.writestr("vecnormalize.pkl", pickle.dumps(vecnormalize, protocol=pickle.HIGHEST_PROTOCOL))
            if buffer is not None:
                with zf.open("replay_buffer.pkl", "w", force_zip64=True) as bf:
                    pickle.dump(_compact_buffer(buffer), bf, protocol=pickle.HIGHEST_PROTOCOL)
            zf.writestr("meta.json", json.dumps(meta, indent=2))  # last: its presence marks a complete bundle

    return atomic_write(path, write, durable=True)


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """The ``meta.json`` of a checkpoint; raises ``ValueError`` if the file is not a complete checkpoint."""
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise ValueError(f"{path}: corrupt member {bad}")
            meta = json.loads(zf.read("meta.json"))
            if "model.zip" not in zf.namelist():
                raise ValueError(f"{path}: no model in the checkpoint")
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not a valid facetwin checkpoint: {e}") from e
    return meta


def load_checkpoint(path: str | Path, venv=None, device: str = "auto"):
    """``(model, vecnormalize or None, meta)`` from a checkpoint. With ``venv`` (the raw vec env), the model is bound
    to it, wrapped in the saved VecNormalize when there is one, and a SAC replay buffer is restored."""
    meta = read_checkpoint_meta(path)
    cls = algo_class(meta["algo"])
    with zipfile.ZipFile(path) as zf:
        vecnormalize = None
        if "vecnormalize.pkl" in zf.namelist():
            vecnormalize = pickle.loads(zf.read("vecnormalize.pkl"))
            if venv is not None:
                vecnormalize.set_venv(venv)
        env = vecnormalize if (vecnormalize is not None and venv is not None) else venv
        model = cls.load(io.BytesIO(zf.read("model.zip")), env=env, device=device)
        if "replay_buffer.pkl" in zf.namelist() and hasattr(model, "replay_buffer"):
            with zf.open("replay_buffer.pkl") as bf:
                model.replay_buffer = _expand_buffer(pickle.load(bf))
            model.replay_buffer.device = model.device
    return model, vecnormalize, meta


__all__ = ["ALGOS", "CHECKPOINT_FORMAT", "CHECKPOINT_NAME", "EVAL_NAME", "MODEL_NAME", "VECNORM_NAME", "algo_class", "load_checkpoint", "read_checkpoint_meta", "remove_stale_temporaries", "save_checkpoint"]
