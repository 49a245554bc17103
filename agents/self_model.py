"""The mirror self-model: what the mouth motors do to the lips, and which motors make a given lip shape.

The physical robot learned its self-model by babbling random expressions in front of a mirror. This module holds
the model, made of two small torch MLPs over the 11 mouth actuators (:data:`MOUTH_ACTUATORS`: the 10 ``lips``
actuators and ``jaw_open``); :mod:`facetwin.agents.train_self_model` trains it on babble data of the twin
(:func:`facetwin.envs.babble.babble`, ``distribution="speech"``) and measures it.

| model | input | output |
|---|---|---|
| forward ``f`` | mouth controls (11) | the 40 lip landmarks: displacement from the neutral lips (40, 3), mm |
| inverse ``g`` | target lip SHAPE (40, 3) + previous mouth controls (11) | mouth controls (11), through ``tanh`` |

The lip SHAPE is the displacement minus its mean over the 40 points. Lip targets at lip-sync time come from a viseme
model that opens the lips symmetrically while the twin's jaw moves the whole mouth down and back, so their absolute
position is not the twin's; the inverse model sees only the shape (any absolute offset of a target is ignored).
The previous command is context that keeps a sequence smooth (:meth:`SelfModel.inverse_sequence` feeds each frame's
output to the next), as the physical robot did. Non-mouth actuators are always returned at their rest values.

Checkpoint (``torch.load(path, weights_only=True)``): a dict of plain values and tensors,

| key | content |
|---|---|
| ``version`` | :data:`CHECKPOINT_VERSION` |
| ``config`` | ``{"hidden": [...], "mouth_actuators": [...], "rest_ctrl": [...]}`` |
| ``forward``, ``inverse`` | ``state_dict`` of the two networks (normalization statistics included as buffers) |
| ``meta`` | training settings, babble settings and measured errors |

>>> model = SelfModel.load_shipped()
>>> model.forward_lips(ctrl).shape                   # ctrl (B, 26) -> (B, 40, 3) mm
>>> u = model.inverse_sequence(target_lips)          # (T, 40, 3) -> (T, 26), smooth
>>> model.save("self_model.pt")
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from facetwin.sim.actuators import actuator_names, indices, rest_controls

from .weights import SELF_MODEL_FILE, load_checkpoint, load_state, save_torch_atomic, shipped_path

CHECKPOINT_VERSION = 1
N_LIPS = 40
#: mouth actuator columns of the 26-vector (``lips`` region, then ``jaw_open``), actuator-table order
MOUTH_INDEX: np.ndarray = np.sort(np.concatenate([indices("lips"), indices("jaw")]))
#: the 11 mouth actuator names, actuator-table order
MOUTH_ACTUATORS: tuple[str, ...] = tuple(actuator_names()[i] for i in MOUTH_INDEX)
N_MOUTH = len(MOUTH_ACTUATORS)
N_ACTUATORS = len(actuator_names())

DEFAULT_HIDDEN = (192, 192, 192)  # 0.8 MB of weights for both models (256: 1.3 MB, 0.03 mm better)


# ---------------------------------------------------------------------------------------------------- networks
class _MLP(nn.Module):
    """Normalized input -> SiLU MLP -> de-normalized output (statistics are buffers: they live in the state_dict)."""

    def __init__(self, n_in: int, n_out: int, hidden: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for h in hidden:
            layers += [nn.Linear(width, h), nn.SiLU()]
            width = h
        layers.append(nn.Linear(width, n_out))
        self.net = nn.Sequential(*layers)
        self.register_buffer("in_mean", torch.zeros(n_in))
        self.register_buffer("in_std", torch.ones(n_in))
        self.register_buffer("out_mean", torch.zeros(n_out))
        self.register_buffer("out_std", torch.ones(n_out))

    def set_stats(self, x: torch.Tensor | None = None, y: torch.Tensor | None = None) -> None:
        if x is not None:
            self.in_mean.copy_(x.mean(0))
            self.in_std.copy_(x.std(0).clamp_min(1e-3))
        if y is not None:
            self.out_mean.copy_(y.mean(0))
            self.out_std.copy_(y.std(0).clamp_min(1e-3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.in_mean) / self.in_std) * self.out_std + self.out_mean


class _Inverse(nn.Module):
    """(shape (B, 120), previous mouth ctrl (B, 11)) -> mouth ctrl (B, 11) in (-1, 1)."""

    def __init__(self, hidden: tuple[int, ...]):
        super().__init__()
        self.mlp = _MLP(3 * N_LIPS + N_MOUTH, N_MOUTH, hidden)  # out stats stay (0, 1): tanh of the raw output

    def forward(self, shape: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.mlp(torch.cat([shape, prev], dim=-1)))


def checked_array(x, name: str, tail: tuple[int, ...]) -> np.ndarray:
    """``x`` as a float array of shape (..., *tail) (batch dimensions allowed), finite; ``ValueError`` otherwise."""
    a = np.asarray(x, dtype=float)
    if a.ndim < len(tail) or a.shape[a.ndim - len(tail):] != tail:
        want = ", ".join(str(t) for t in tail)
        raise ValueError(f"{name} must have shape (..., {want}) (batch dimensions allowed), got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


# ---------------------------------------------------------------------------------------------------- the model
class SelfModel:
    """Forward and inverse self-model of the mouth (see the module docstring). numpy in/out, float64 out."""

    def __init__(self, hidden: tuple[int, ...] = DEFAULT_HIDDEN, meta: dict | None = None):
        self.hidden = tuple(int(h) for h in hidden)
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must be a non-empty tuple of positive layer widths, got {hidden}")
        self.forward_net = _MLP(N_MOUTH, 3 * N_LIPS, self.hidden)
        self.inverse_net = _Inverse(self.hidden)
        self.forward_net.eval()
        self.inverse_net.eval()
        self.rest_ctrl = rest_controls()
        self.meta: dict = dict(meta or {})

    # ------------------------------------------------------------------ input checks
    def _prev_array(self, prev_ctrl, batch: tuple[int, ...]) -> np.ndarray:
        if prev_ctrl is None:
            return np.broadcast_to(self.rest_ctrl[MOUTH_INDEX], batch + (N_MOUTH,)).copy()
        p = checked_array(prev_ctrl, "prev_ctrl", (N_ACTUATORS,))
        try:
            p = np.broadcast_to(p, batch + (N_ACTUATORS,))
        except ValueError:
            raise ValueError(
                f"prev_ctrl of shape {p.shape} does not match the batch shape {batch} of target_lips"
            ) from None
        return np.clip(p[..., MOUTH_INDEX], -1.0, 1.0)

    def _full_ctrl(self, mouth: np.ndarray) -> np.ndarray:
        out = np.broadcast_to(self.rest_ctrl, mouth.shape[:-1] + (N_ACTUATORS,)).copy()
        out[..., MOUTH_INDEX] = mouth
        return out

    # ------------------------------------------------------------------ models
    def forward_lips(self, ctrl) -> np.ndarray:
        """Predicted lips of the controls ``ctrl`` (..., 26) (clipped to [-1, 1]; only the mouth actuators count):
        (..., 40, 3), displacement from the neutral lips, mm, head frame."""
        u = np.clip(checked_array(ctrl, "ctrl", (N_ACTUATORS,)), -1.0, 1.0)
        batch = u.shape[:-1]
        with torch.inference_mode():
            y = self.forward_net(torch.as_tensor(u[..., MOUTH_INDEX].reshape(-1, N_MOUTH), dtype=torch.float32))
        return y.numpy().astype(float).reshape(batch + (N_LIPS, 3))

    def inverse(self, target_lips, prev_ctrl=None) -> np.ndarray:
        """Controls (..., 26) that make the lip shape of ``target_lips`` (..., 40, 3) (mm; any absolute offset: only
        the shape counts), given the previous command ``prev_ctrl`` (..., 26) (broadcast; default: rest).
        Mouth actuators in (-1, 1), the others at rest."""
        x = checked_array(target_lips, "target_lips", (N_LIPS, 3))
        batch = x.shape[:-2]
        prev = self._prev_array(prev_ctrl, batch)
        shape = (x - x.mean(axis=-2, keepdims=True)).reshape(-1, 3 * N_LIPS)
        with torch.inference_mode():
            u = self.inverse_net(torch.as_tensor(shape, dtype=torch.float32),
                                 torch.as_tensor(prev.reshape(-1, N_MOUTH), dtype=torch.float32))
        return self._full_ctrl(u.numpy().astype(float).reshape(batch + (N_MOUTH,)))

    def inverse_step_fn(self):
        """The inverse model as a float64 numpy function for control loops, one frame per call:
        ``f(target_lips (40, 3), prev_ctrl (26,)) -> (26,)``, as :meth:`inverse` (to float32 rounding) without
        torch's per-call overhead (~10x faster for one frame). Inputs are not checked."""
        mlp = self.inverse_net.mlp
        layers = [(m.weight.detach().double().numpy().T.copy(), m.bias.detach().double().numpy().copy())
                  for m in mlp.net if isinstance(m, nn.Linear)]
        in_mean, in_std = mlp.in_mean.double().numpy().copy(), mlp.in_std.double().numpy().copy()
        out_mean, out_std = mlp.out_mean.double().numpy().copy(), mlp.out_std.double().numpy().copy()
        rest, idx = self.rest_ctrl.astype(float).copy(), np.asarray(MOUTH_INDEX)

        def f(target_lips: np.ndarray, prev_ctrl: np.ndarray) -> np.ndarray:
            x = np.asarray(target_lips, dtype=float)
            h = np.concatenate([(x - x.mean(axis=0)).ravel(), np.clip(prev_ctrl[idx], -1.0, 1.0)])
            h = (h - in_mean) / in_std
            for i, (w, b) in enumerate(layers):
                h = h @ w + b
                if i < len(layers) - 1:
                    h = h / (1.0 + np.exp(-h))  # SiLU
            out = rest.copy()
            out[idx] = np.tanh(h * out_std + out_mean)
            return out

        return f

    def inverse_sequence(self, target_lips, ctrl0=None) -> np.ndarray:
        """Controls (T, 26) for a lip sequence (T, 40, 3): frame ``k`` is :meth:`inverse` of frame ``k`` with the
        output of frame ``k - 1`` as the previous command (``ctrl0``, default rest, before the first frame)."""
        x = checked_array(target_lips, "target_lips", (N_LIPS, 3))
        if x.ndim != 3:
            raise ValueError(f"target_lips must have shape (T, 40, 3), got {x.shape}")
        prev = self._prev_array(ctrl0, ())
        shapes = torch.as_tensor((x - x.mean(axis=1, keepdims=True)).reshape(len(x), 3 * N_LIPS), dtype=torch.float32)
        out = np.empty((len(x), N_MOUTH))
        p = torch.as_tensor(np.array(prev).reshape(1, N_MOUTH), dtype=torch.float32)
        with torch.inference_mode():
            for k in range(len(x)):
                p = self.inverse_net(shapes[k:k + 1], p)
                out[k] = p[0].numpy()
        return self._full_ctrl(out)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write the checkpoint (:meth:`state`) atomically; returns its path."""
        return save_torch_atomic(self.state(), path)

    def state(self) -> dict:
        """The checkpoint dict (plain values and tensors; see the module docstring)."""
        return {
            "version": CHECKPOINT_VERSION,
            "config": {"hidden": list(self.hidden), "mouth_actuators": list(MOUTH_ACTUATORS),
                       "rest_ctrl": [float(v) for v in self.rest_ctrl]},
            "forward": {k: v.detach().clone() for k, v in self.forward_net.state_dict().items()},
            "inverse": {k: v.detach().clone() for k, v in self.inverse_net.state_dict().items()},
            "meta": self.meta,
        }

    @classmethod
    def load(cls, path: str | os.PathLike) -> SelfModel:
        """Load a checkpoint written by :meth:`save` (``weights_only``: no code is unpickled)."""
        ck = load_checkpoint(path, "self-model")
        if ck.get("version") != CHECKPOINT_VERSION or not isinstance(ck.get("config"), dict):
            raise ValueError(f"{path} is not a self-model checkpoint of version {CHECKPOINT_VERSION}")
        cfg = ck["config"]
        if tuple(cfg["mouth_actuators"]) != MOUTH_ACTUATORS:
            raise ValueError(f"{path} was trained for the mouth actuators {cfg['mouth_actuators']}, "
                             f"this face has {list(MOUTH_ACTUATORS)}")
        if not np.allclose(cfg["rest_ctrl"], rest_controls()):
            raise ValueError(f"{path} was trained with other rest controls than this face's actuator table")
        model = cls(tuple(cfg["hidden"]), meta=ck["meta"])
        load_state(model.forward_net, ck.get("forward"), path, "self-model")
        load_state(model.inverse_net, ck.get("inverse"), path, "self-model")
        return model

    @classmethod
    def load_shipped(cls) -> SelfModel:
        """The shipped weights ``assets/weights/self_model.pt``."""
        return cls.load(shipped_path(SELF_MODEL_FILE))


__all__ = ["CHECKPOINT_VERSION", "DEFAULT_HIDDEN", "MOUTH_ACTUATORS", "MOUTH_INDEX", "N_ACTUATORS", "N_LIPS", "N_MOUTH",
           "SelfModel", "checked_array"]
