"""The mirror self-model: what the mouth motors do to the lips, and which motors make a given lip shape.

The physical robot learned its self-model by babbling random expressions in front of a mirror. This module does the
same on babble data of the twin (:func:`facetwin.envs.babble.babble`, ``distribution="speech"``) with two small torch
MLPs over the 11 mouth actuators (:data:`MOUTH_ACTUATORS`: the 10 ``lips`` actuators and ``jaw_open``):

| model | input | output |
|---|---|---|
| forward ``f`` | mouth controls (11) | the 40 lip landmarks: displacement from the neutral lips (40, 3), mm |
| inverse ``g`` | target lip SHAPE (40, 3) + previous mouth controls (11) | mouth controls (11), through ``tanh`` |

The lip SHAPE is the displacement minus its mean over the 40 points. Lip targets at lip-sync time come from a viseme
model that opens the lips symmetrically while the twin's jaw moves the whole mouth down and back, so their absolute
position is not the twin's; the inverse model sees only the shape (any absolute offset of a target is ignored).
The previous command is context that keeps a sequence smooth (:meth:`SelfModel.inverse_sequence` feeds each frame's
output to the next), as the physical robot did. Non-mouth actuators are always returned at their rest values.

Training (:func:`train_self_model`), after a deterministic hold-out of the last ``heldout_fraction`` of the babble
samples ("held-out expressions"):

1. the forward model regresses the lips on the commanded mouth controls (squared error in mm);
2. the inverse model, with the forward model frozen, minimizes
   ``|g(x, p) - u|^2 + W_ROUND_TRIP * |shape(f(g(x, p))) - x|^2 / mm^2 + W_PREV * |g(x, p) - p|^2`` on babble pairs
   ``(x, u)``: the supervised term anchors it to commands the face really made, the round trip through ``f``
   resolves the redundancy of the motors (several commands, one shape), and the small pull toward the previous
   command ``p`` favours smooth motion. ``p`` is augmented: the sample's own command plus noise, another sample's
   command, or the rest command (what :meth:`SelfModel.inverse` assumes without one).

Metrics (all errors are the mean Euclidean distance over the 40 lip landmarks, mm, averaged over samples):

| key (report / ``meta``) | meaning |
|---|---|
| ``forward_train_mm``, ``forward_heldout_mm`` | forward model vs the measured lips |
| ``inverse_model_heldout_shape_mm`` | shape of ``f(g(x))`` vs the target shape ``x`` (through the forward model) |
| ``round_trip_abs_mm``, ``round_trip_shape_mm`` | :func:`evaluate_round_trip`: ``g``'s command settled in the sim |

Measured (shipped weights ``assets/weights/self_model.pt``, made by ``python -m facetwin.agents.self_model --babble
babble_speech.npz``: 6000 speech babble samples, seed 0, ``settle_s=1``; 5400 train, 600 held out; 1 torch thread on a
shared 2-core VM; ``SelfModel.load_shipped().meta`` holds these numbers and all settings):

| measure | value |
|---|---|
| training wall time (400 + 400 epochs, 1 thread) | 83 s (150 s with the cores busier) |
| forward error, train / held-out expressions | 0.15 / 0.20 mm |
| inverse through the forward model, held-out shape error | 0.17 mm |
| round trip in the simulator, 100 held-out expressions: absolute / shape | 0.26 / 0.13 mm (90 %: 0.46 mm abs) |
| one :meth:`SelfModel.inverse` call (one frame) / per frame of :meth:`SelfModel.inverse_sequence` | 0.07 / 0.04 ms |

Feeding the mean displacement of the target as an extra input was tried: round trip 0.31 mm absolute (vs 0.34 mm
without, same short schedule) but 0.25 mm shape (vs 0.16 mm); not kept. The lip targets of speech (viseme model) are
not all reachable by this face: settled, the shipped inverse reproduces corpus target shapes to 1.4 mm mean (their
shape is 2.3 mm from neutral), better than optimizing the commands through the forward model (4.7 mm). Played as
sequences (:func:`facetwin.sim.playback.play`, 6 ``heldout_sentence`` clips, lip-shape error per frame):
``inverse_sequence`` 1.90 mm, with the targets read 2 frames ahead (servo and skin lag) 1.63 mm; the scripted
baseline of :class:`~facetwin.envs.lip_sync.LipSyncEnv` 1.94 mm; the rest face 2.41 mm.

Checkpoint (``torch.load(path, weights_only=True)``): a dict of plain values and tensors,

| key | content |
|---|---|
| ``version`` | :data:`CHECKPOINT_VERSION` |
| ``config`` | ``{"hidden": [...], "mouth_actuators": [...], "rest_ctrl": [...]}`` |
| ``forward``, ``inverse`` | ``state_dict`` of the two networks (normalization statistics included as buffers) |
| ``meta`` | training settings, babble settings and measured errors |

>>> model, report = train_self_model("babble_speech.npz", max_minutes=10)   # ~6000 samples
>>> evaluate_round_trip(model, "babble_speech.npz")      # settles 100 held-out expressions, fills model.meta
>>> model.save("self_model.pt")
>>> model = SelfModel.load_shipped()
>>> model.forward_lips(ctrl).shape                   # ctrl (B, 26) -> (B, 40, 3) mm
>>> u = model.inverse_sequence(target_lips)          # (T, 40, 3) -> (T, 26), smooth
>>> round_trip_errors(model, target_lips_abs)["abs_mm"].mean()
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from facetwin.sim.actuators import actuator_names, indices, rest_controls
from facetwin.sim.playback import lip_columns

from .weights import SELF_MODEL_FILE, save_torch_atomic, shipped_path

CHECKPOINT_VERSION = 1
N_LIPS = 40
#: mouth actuator columns of the 26-vector (``lips`` region, then ``jaw_open``), actuator-table order
MOUTH_INDEX: np.ndarray = np.sort(np.concatenate([indices("lips"), indices("jaw")]))
#: the 11 mouth actuator names, actuator-table order
MOUTH_ACTUATORS: tuple[str, ...] = tuple(actuator_names()[i] for i in MOUTH_INDEX)
N_MOUTH = len(MOUTH_ACTUATORS)
N_ACTUATORS = len(actuator_names())

DEFAULT_HIDDEN = (192, 192, 192)  # 0.8 MB of weights for both models (256: 1.3 MB, 0.03 mm better)
DEFAULT_EPOCHS = (400, 400)  # forward, inverse
BATCH = 256
LR = 2e-3
W_ROUND_TRIP = 1.0  # per mm^2 of shape error through the forward model
W_PREV = 0.02  # pull toward the previous command (ctrl units^2)
PREV_NOISE = 0.15  # std of the noise on the sample's own command used as "previous"
PREV_MIX = (0.5, 0.3, 0.2)  # own command + noise, another sample's command, rest


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


def _shape_of(lips: torch.Tensor) -> torch.Tensor:
    """(B, 40, 3) -> (B, 40, 3) minus the mean over the 40 points."""
    return lips - lips.mean(dim=-2, keepdim=True)


def _mean_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample mean Euclidean distance over the 40 points of (..., 40, 3) arrays."""
    return np.linalg.norm(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), axis=-1).mean(-1)


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
    @staticmethod
    def _array(x, name: str, tail: tuple[int, ...]) -> np.ndarray:
        a = np.asarray(x, dtype=float)
        if a.ndim < len(tail) or a.shape[a.ndim - len(tail):] != tail:
            want = ", ".join(str(t) for t in tail)
            raise ValueError(f"{name} must have shape (..., {want}) (batch dimensions allowed), got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or inf")
        return a

    def _prev_array(self, prev_ctrl, batch: tuple[int, ...]) -> np.ndarray:
        if prev_ctrl is None:
            return np.broadcast_to(self.rest_ctrl[MOUTH_INDEX], batch + (N_MOUTH,)).copy()
        p = self._array(prev_ctrl, "prev_ctrl", (N_ACTUATORS,))
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
        u = np.clip(self._array(ctrl, "ctrl", (N_ACTUATORS,)), -1.0, 1.0)
        batch = u.shape[:-1]
        with torch.inference_mode():
            y = self.forward_net(torch.as_tensor(u[..., MOUTH_INDEX].reshape(-1, N_MOUTH), dtype=torch.float32))
        return y.numpy().astype(float).reshape(batch + (N_LIPS, 3))

    def inverse(self, target_lips, prev_ctrl=None) -> np.ndarray:
        """Controls (..., 26) that make the lip shape of ``target_lips`` (..., 40, 3) (mm; any absolute offset: only
        the shape counts), given the previous command ``prev_ctrl`` (..., 26) (broadcast; default: rest).
        Mouth actuators in (-1, 1), the others at rest."""
        x = self._array(target_lips, "target_lips", (N_LIPS, 3))
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
        x = self._array(target_lips, "target_lips", (N_LIPS, 3))
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

    def save(self, path: str | os.PathLike) -> Path:
        """Write the checkpoint atomically; returns its path."""
        return save_torch_atomic(self.state(), path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SelfModel:
        """Load a checkpoint written by :meth:`save` (``weights_only``: no code is unpickled)."""
        from facetwin.agents.weights import load_checkpoint, load_state

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


# ---------------------------------------------------------------------------------------------------- training
def _babble_arrays(babble) -> tuple[np.ndarray, np.ndarray, dict]:
    """(ctrl (n, 26), lips (n, 40, 3) displacement mm, babble settings) of a babble npz path or dict of arrays."""
    if isinstance(babble, (str, os.PathLike)):
        with np.load(babble) as d:
            data = {k: d[k] for k in d.files}
    elif isinstance(babble, dict):
        data = babble
    else:
        raise TypeError(f"babble must be an .npz path or a dict of arrays, got {type(babble).__name__}")
    missing = [k for k in ("ctrl", "landmarks_mm", "neutral_landmarks_mm") if k not in data]
    if missing:
        raise ValueError(f"babble data lacks the keys {missing} (see facetwin.envs.babble)")
    if "actuator_names" in data and tuple(np.asarray(data["actuator_names"]).tolist()) != tuple(actuator_names()):
        raise ValueError("babble data was recorded with another actuator order")
    ctrl = np.asarray(data["ctrl"], dtype=float)
    lm = np.asarray(data["landmarks_mm"], dtype=float)
    if ctrl.ndim != 2 or ctrl.shape[1] != N_ACTUATORS or lm.ndim != 3 or len(lm) != len(ctrl):
        raise ValueError(
            f"babble ctrl must be (n, {N_ACTUATORS}) and landmarks_mm (n, N, 3), got {ctrl.shape}, {lm.shape}"
        )
    cols = lip_columns()
    lips = lm[:, cols] - np.asarray(data["neutral_landmarks_mm"], dtype=float)[cols]
    settings = {}
    for k in ("seed", "sigma", "settle_s", "symmetric", "variant", "distribution", "version"):
        if k in data:
            v = np.asarray(data[k]).item()
            settings[k] = v if isinstance(v, (str, bool, int)) else float(v)
    settings["n"] = len(ctrl)
    return ctrl, lips, settings


def heldout_split(n: int, heldout_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices: the held-out expressions are the last ``ceil(heldout_fraction * n)`` samples
    (babble samples are independent draws, so this is a deterministic random split)."""
    if not 0.0 <= heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}")
    k = math.ceil(heldout_fraction * n)
    if n - k < 2:
        raise ValueError(f"{n} samples leave fewer than 2 for training with heldout_fraction={heldout_fraction}")
    return np.arange(n - k), np.arange(n - k, n)


def _cosine_lr(opt: torch.optim.Optimizer, epoch: int, epochs: int) -> None:
    lr = LR * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * epoch / max(1, epochs))))
    for g in opt.param_groups:
        g["lr"] = lr


def train_self_model(
    babble,
    *,
    seed: int = 0,
    max_minutes: float = 10.0,
    epochs: int | tuple[int, int] | None = None,
    heldout_fraction: float = 0.1,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> tuple[SelfModel, dict]:
    """Train the forward, then the inverse model on babble data (an ``.npz`` of :func:`facetwin.envs.babble.babble`
    or a dict of its arrays; see the module docstring).

    ``epochs``: per phase (an int for both, or ``(forward, inverse)``; default :data:`DEFAULT_EPOCHS`); the learning
    rate follows a cosine schedule over them. ``max_minutes`` caps the wall time of the whole run (each phase gets
    its share; a phase that reaches it stops early and the report says so). ``log`` receives progress lines.
    Deterministic for a seed (on one thread). Returns the model (``meta`` filled) and the report:

    | key | content |
    |---|---|
    | ``forward_train_mm``, ``forward_heldout_mm`` | forward model error (mean over 40 lips, mm) |
    | ``inverse_model_heldout_shape_mm`` | held-out shape error of ``f(g(x))`` vs ``x`` (prev = rest) |
    | ``forward_loss``, ``inverse_loss`` | per-epoch mean training losses |
    | ``inverse_terms`` | last epoch's mean of each inverse loss term |
    | ``epochs_run``, ``stopped_early``, ``wall_s``, ``threads``, ``n_train``, ``n_heldout``, ``babble`` | run facts |
    """
    ctrl, lips, settings = _babble_arrays(babble)
    if epochs is None:
        epochs = DEFAULT_EPOCHS
    ep = (int(epochs), int(epochs)) if isinstance(epochs, (int, np.integer)) else tuple(int(e) for e in epochs)
    if len(ep) != 2 or min(ep) < 1:
        raise ValueError(f"epochs must be a positive int or a pair of them, got {epochs}")
    if not max_minutes > 0:
        raise ValueError(f"max_minutes must be > 0, got {max_minutes}")
    tr, ho = heldout_split(len(ctrl), heldout_fraction)
    say = log or (lambda _msg: None)
    t_start = time.perf_counter()
    budget_s = 60.0 * float(max_minutes)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)

    model = SelfModel(DEFAULT_HIDDEN)
    f, g = model.forward_net, model.inverse_net
    u_all = torch.as_tensor(ctrl[:, MOUTH_INDEX], dtype=torch.float32).clamp(-1, 1)
    y_all = torch.as_tensor(lips.reshape(len(lips), -1), dtype=torch.float32)
    s_all = _shape_of(y_all.view(-1, N_LIPS, 3)).reshape(len(lips), -1)
    u_tr, y_tr, s_tr = u_all[tr], y_all[tr], s_all[tr]
    rest = torch.as_tensor(model.rest_ctrl[MOUTH_INDEX], dtype=torch.float32)
    f.set_stats(u_tr, y_tr)
    g.mlp.set_stats(torch.cat([s_tr, u_tr], dim=1))
    n = len(tr)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(ep), desc="self-model", unit="epoch")
    hist: dict[str, list[float]] = {"forward_loss": [], "inverse_loss": []}
    stopped = [False, False]
    run = [0, 0]
    terms: dict[str, float] = {}
    try:
        # ---- phase 1: forward model
        f.train()
        opt = torch.optim.Adam(f.parameters(), lr=LR)
        phase_end = t_start + budget_s * ep[0] / (ep[0] + 2.5 * ep[1])  # an inverse epoch costs ~2.5 forward ones
        for e in range(ep[0]):
            _cosine_lr(opt, e, ep[0])
            perm = torch.randperm(n, generator=gen)
            tot = 0.0
            for i in range(0, n, BATCH):
                b = perm[i:i + BATCH]
                loss = ((f(u_tr[b]) - y_tr[b]) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                tot += loss.item() * len(b)
            hist["forward_loss"].append(tot / n)
            run[0] = e + 1
            if bar is not None:
                bar.update(1)
            if e % 50 == 0 or e == ep[0] - 1:
                say(f"forward epoch {e + 1}/{ep[0]}: loss {tot / n:.4f} mm^2")
            if time.perf_counter() > phase_end and e < ep[0] - 1:
                stopped[0] = True
                say(f"forward phase stopped at epoch {e + 1}: time budget")
                break
        f.eval()
        for p in f.parameters():
            p.requires_grad_(False)

        # ---- phase 2: inverse model through the frozen forward model
        g.train()
        opt = torch.optim.Adam(g.parameters(), lr=LR)
        for e in range(ep[1]):
            _cosine_lr(opt, e, ep[1])
            perm = torch.randperm(n, generator=gen)
            sums = {"supervised": 0.0, "round_trip_mm2": 0.0, "prev": 0.0, "loss": 0.0}
            for i in range(0, n, BATCH):
                b = perm[i:i + BATCH]
                u, s = u_tr[b], s_tr[b]
                kind = torch.as_tensor(rng.choice(3, size=len(b), p=PREV_MIX))[:, None]
                own = (u + PREV_NOISE * torch.randn(u.shape, generator=gen)).clamp(-1, 1)
                other = u_tr[torch.randint(0, n, (len(b),), generator=gen)]
                prev = torch.where(kind == 0, own, torch.where(kind == 1, other, rest.expand_as(u)))
                out = g(s, prev)
                sup = ((out - u) ** 2).mean()
                rt = ((_shape_of(f(out).view(-1, N_LIPS, 3)).reshape(len(b), -1) - s) ** 2).mean()
                pull = ((out - prev) ** 2).mean()
                loss = sup + W_ROUND_TRIP * rt + W_PREV * pull
                opt.zero_grad()
                loss.backward()
                opt.step()
                for k, v in (("supervised", sup), ("round_trip_mm2", rt), ("prev", pull), ("loss", loss)):
                    sums[k] += v.item() * len(b)
            terms = {k: v / n for k, v in sums.items()}
            hist["inverse_loss"].append(terms["loss"])
            run[1] = e + 1
            if bar is not None:
                bar.update(1)
            if e % 50 == 0 or e == ep[1] - 1:
                say(f"inverse epoch {e + 1}/{ep[1]}: " + ", ".join(f"{k} {v:.4f}" for k, v in terms.items()))
            if time.perf_counter() - t_start > budget_s and e < ep[1] - 1:
                stopped[1] = True
                say(f"inverse phase stopped at epoch {e + 1}: time budget")
                break
        g.eval()
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - t_start

    report: dict = {
        "forward_train_mm": float(_mean_dist(model.forward_lips(ctrl[tr]), lips[tr]).mean()),
        "forward_heldout_mm": float(_mean_dist(model.forward_lips(ctrl[ho]), lips[ho]).mean()) if len(ho) else math.nan,
    }
    if len(ho):
        pred = model.forward_lips(model.inverse(lips[ho]))
        shape_t = lips[ho] - lips[ho].mean(1, keepdims=True)
        report["inverse_model_heldout_shape_mm"] = float(_mean_dist(pred - pred.mean(1, keepdims=True), shape_t).mean())
    else:
        report["inverse_model_heldout_shape_mm"] = math.nan
    report.update(
        forward_loss=hist["forward_loss"], inverse_loss=hist["inverse_loss"], inverse_terms=terms,
        epochs_run=list(run), stopped_early=bool(stopped[0] or stopped[1]), wall_s=float(wall),
        threads=int(torch.get_num_threads()), n_train=len(tr), n_heldout=len(ho), babble=settings,
    )
    model.meta = {
        "training": {"seed": int(seed), "epochs": list(ep), "epochs_run": list(run), "max_minutes": float(max_minutes),
                     "heldout_fraction": float(heldout_fraction), "batch": BATCH, "lr": LR,
                     "hidden": list(model.hidden),
                     "w_round_trip": W_ROUND_TRIP, "w_prev": W_PREV, "prev_noise": PREV_NOISE,
                     "prev_mix": list(PREV_MIX), "wall_s": float(wall), "threads": int(torch.get_num_threads()),
                     "n_train": len(tr), "n_heldout": len(ho)},
        "babble": settings,
        "errors": {k: report[k] for k in ("forward_train_mm", "forward_heldout_mm", "inverse_model_heldout_shape_mm")},
    }
    say(f"done in {wall:.1f} s: forward train {report['forward_train_mm']:.3f} mm, held-out "
        f"{report['forward_heldout_mm']:.3f} mm; inverse (model) held-out shape "
        f"{report['inverse_model_heldout_shape_mm']:.3f} mm")
    return model, report


# ---------------------------------------------------------------------------------------------------- evaluation
def round_trip_errors(
    model: SelfModel,
    target_lips_abs,
    *,
    variant: str = "fast",
    settle_s: float = 1.0,
    prev_ctrl=None,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Execute ``model.inverse(targets, prev_ctrl)`` in the simulator and compare the lips with the targets.

    ``target_lips_abs`` (B, 40, 3) or (40, 3): lip displacement from the neutral lips (mm), e.g. babbled expressions.
    Each command is held for ``settle_s`` from the neutral face (``FaceModel.reset(u); settle(u, settle_s)``, as the
    babble data). Returns per-sample arrays ``"abs_mm"`` (mean Euclidean distance over the 40 lips), ``"shape_mm"``
    (the same after removing each set's mean), ``"lips_mm"`` (B, 40, 3) measured and ``"ctrl"`` (B, 26).
    """
    from facetwin.sim import FaceModel

    x = SelfModel._array(target_lips_abs, "target_lips_abs", (N_LIPS, 3))
    single = x.ndim == 2
    if x.ndim not in (2, 3):
        raise ValueError(f"target_lips_abs must have shape (B, 40, 3) or (40, 3), got {x.shape}")
    if not settle_s > 0:
        raise ValueError(f"settle_s must be > 0, got {settle_s}")
    x = x.reshape(-1, N_LIPS, 3)
    u = model.inverse(x, prev_ctrl)
    face = FaceModel.load(variant)
    cols = lip_columns()
    neutral = np.asarray(face.neutral_landmarks_mm, dtype=float)[cols]
    measured = np.empty_like(x)
    it = range(len(x))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="round trip", unit="expr")
    for i in it:
        face.reset(u[i])
        face.settle(u[i], settle_s)
        if face.is_diverged():
            raise RuntimeError(f"the face diverged under the controls {np.round(u[i], 3).tolist()}")
        measured[i] = face.landmarks_mm()[cols] - neutral
    out = {
        "abs_mm": _mean_dist(measured, x),
        "shape_mm": _mean_dist(measured - measured.mean(1, keepdims=True), x - x.mean(1, keepdims=True)),
        "lips_mm": measured,
        "ctrl": u,
    }
    return {k: v[0] for k, v in out.items()} if single else out


def evaluate_round_trip(
    model: SelfModel,
    babble,
    *,
    n: int = 100,
    heldout_fraction: float = 0.1,
    variant: str | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """:func:`round_trip_errors` on the first ``n`` held-out expressions of babble data (the split of
    :func:`train_self_model`), settled as the babble was (its ``settle_s`` and ``variant`` unless ``variant`` is
    given). The summary (mean, 90th percentile and max, mm) is also stored in ``model.meta["errors"]``."""
    ctrl, lips, settings = _babble_arrays(babble)
    _, ho = heldout_split(len(ctrl), heldout_fraction)
    if not 1 <= n <= len(ho):
        raise ValueError(f"n must be in [1, {len(ho)}] (the held-out expressions), got {n}")
    variant = variant or str(settings.get("variant", "fast"))
    settle_s = float(settings.get("settle_s", 1.0))
    rt = round_trip_errors(model, lips[ho[:n]], variant=variant, settle_s=settle_s, progress=progress)
    out = {
        "round_trip_abs_mm": float(rt["abs_mm"].mean()),
        "round_trip_shape_mm": float(rt["shape_mm"].mean()),
        "round_trip_abs_p90_mm": float(np.percentile(rt["abs_mm"], 90)),
        "round_trip_abs_max_mm": float(rt["abs_mm"].max()),
        "round_trip_n": int(n),
        "round_trip_settle_s": settle_s,
        "round_trip_variant": variant,
    }
    model.meta.setdefault("errors", {}).update(out)
    return out


__all__ = ["MOUTH_ACTUATORS", "MOUTH_INDEX", "SelfModel", "evaluate_round_trip",
           "heldout_split", "round_trip_errors", "train_self_model"]

