"""Training the mirror self-model (:mod:`facetwin.agents.self_model`) on babble data, and measuring it.

Babble data: an ``.npz`` of :func:`facetwin.envs.babble.babble` (``distribution="speech"``) or a dict of its arrays.
Training (:func:`train_self_model`), after a deterministic hold-out of the last ``heldout_fraction`` of the babble
samples ("held-out expressions", :func:`heldout_split`):

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

Measured (shipped weights ``assets/weights/self_model.pt``, made by ``facetwin train-self-model --babble
babble_speech.npz``: 6000 speech babble samples, seed 0, ``settle_s=1``; 5400 train, 600 held out, 400 + 400 epochs;
``SelfModel.load_shipped().meta`` holds these numbers and all settings):

| measure | value |
|---|---|
| forward error, train / held-out expressions | 0.15 / 0.20 mm |
| inverse through the forward model, held-out shape error | 0.17 mm |
| round trip in the simulator, 100 held-out expressions: absolute / shape | 0.26 / 0.13 mm (90 %: 0.46 mm abs) |

Feeding the mean displacement of the target as an extra input was tried: round trip 0.31 mm absolute (vs 0.34 mm
without, same short schedule) but 0.25 mm shape (vs 0.16 mm); not kept. The lip targets of speech (viseme model) are
not all reachable by this face: settled, the shipped inverse reproduces corpus target shapes to 1.4 mm mean (their
shape is 2.3 mm from neutral), better than optimizing the commands through the forward model (4.7 mm). Played as
sequences (:func:`facetwin.sim.playback.play`, 6 ``heldout_sentence`` clips, lip-shape error per frame):
``inverse_sequence`` 1.90 mm, with the targets read 2 frames ahead (servo and skin lag) 1.63 mm; the scripted
baseline of :class:`~facetwin.envs.lip_sync.LipSyncEnv` 1.94 mm; the rest face 2.41 mm.

>>> model, report = train_self_model("babble_speech.npz", max_minutes=10)   # ~6000 samples
>>> evaluate_round_trip(model, "babble_speech.npz")      # settles 100 held-out expressions, fills model.meta
>>> round_trip_errors(model, target_lips_abs)["abs_mm"].mean()
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from facetwin.sim.actuators import actuator_names
from facetwin.sim.playback import lip_columns

from .self_model import DEFAULT_HIDDEN, MOUTH_INDEX, N_ACTUATORS, N_LIPS, SelfModel, checked_array

DEFAULT_EPOCHS = (400, 400)  # forward, inverse
BATCH = 256
LR = 2e-3
W_ROUND_TRIP = 1.0  # per mm^2 of shape error through the forward model
W_PREV = 0.02  # pull toward the previous command (ctrl units^2)
PREV_NOISE = 0.15  # std of the noise on the sample's own command used as "previous"
PREV_MIX = (0.5, 0.3, 0.2)  # own command + noise, another sample's command, rest
INVERSE_EPOCH_COST = 2.5  # an inverse epoch costs about this many forward ones (the time budget's split)


def _shape_of(lips: torch.Tensor) -> torch.Tensor:
    """(B, 40, 3) -> (B, 40, 3) minus the mean over the 40 points."""
    return lips - lips.mean(dim=-2, keepdim=True)


def _mean_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample mean Euclidean distance over the 40 points of (..., 40, 3) arrays."""
    return np.linalg.norm(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), axis=-1).mean(-1)


# ---------------------------------------------------------------------------------------------------- babble data
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


# ---------------------------------------------------------------------------------------------------- training
@dataclass
class _Run:
    """What the two phases of one training run share: the training tensors, the random streams, the clock, the
    progress bar and the records of the run."""

    u_tr: torch.Tensor  # (n, 11) commanded mouth controls
    y_tr: torch.Tensor  # (n, 120) lips, mm
    s_tr: torch.Tensor  # (n, 120) lip shapes, mm
    rest: torch.Tensor  # (11,) the rest mouth controls
    gen: torch.Generator
    rng: np.random.Generator
    say: Callable[[str], None]
    t_start: float
    budget_s: float
    bar: Any = None
    hist: dict[str, list[float]] = field(default_factory=lambda: {"forward_loss": [], "inverse_loss": []})
    stopped: list[bool] = field(default_factory=lambda: [False, False])
    epochs_run: list[int] = field(default_factory=lambda: [0, 0])
    terms: dict[str, float] = field(default_factory=dict)  # last inverse epoch's mean loss terms

    @property
    def n(self) -> int:
        return len(self.u_tr)

    def end_epoch(self, phase: int, e: int, epochs: int, line: str, out_of_time: bool) -> bool:
        """Record epoch ``e`` of ``phase`` (0: forward, 1: inverse), log ``line`` every 50 epochs and at the last;
        True when the time budget stops the phase before its last epoch."""
        self.epochs_run[phase] = e + 1
        if self.bar is not None:
            self.bar.update(1)
        if e % 50 == 0 or e == epochs - 1:
            self.say(line)
        if out_of_time and e < epochs - 1:
            self.stopped[phase] = True
            self.say(f"{('forward', 'inverse')[phase]} phase stopped at epoch {e + 1}: time budget")
            return True
        return False


def _epoch_pair(epochs: int | tuple[int, int] | None, max_minutes: float) -> tuple[int, int]:
    """The checked (forward, inverse) epochs of ``train_self_model``'s arguments."""
    if epochs is None:
        epochs = DEFAULT_EPOCHS
    ep = (int(epochs), int(epochs)) if isinstance(epochs, (int, np.integer)) else tuple(int(e) for e in epochs)
    if len(ep) != 2 or min(ep) < 1:
        raise ValueError(f"epochs must be a positive int or a pair of them, got {epochs}")
    if not max_minutes > 0:
        raise ValueError(f"max_minutes must be > 0, got {max_minutes}")
    return ep


def _training_tensors(model: SelfModel, ctrl: np.ndarray, lips: np.ndarray, tr: np.ndarray) -> tuple:
    """(u_tr, y_tr, s_tr, rest) as float32 tensors; sets the networks' normalization statistics from them."""
    u_all = torch.as_tensor(ctrl[:, MOUTH_INDEX], dtype=torch.float32).clamp(-1, 1)
    y_all = torch.as_tensor(lips.reshape(len(lips), -1), dtype=torch.float32)
    s_all = _shape_of(y_all.view(-1, N_LIPS, 3)).reshape(len(lips), -1)
    u_tr, y_tr, s_tr = u_all[tr], y_all[tr], s_all[tr]
    rest = torch.as_tensor(model.rest_ctrl[MOUTH_INDEX], dtype=torch.float32)
    model.forward_net.set_stats(u_tr, y_tr)
    model.inverse_net.mlp.set_stats(torch.cat([s_tr, u_tr], dim=1))
    return u_tr, y_tr, s_tr, rest


def _cosine_lr(opt: torch.optim.Optimizer, epoch: int, epochs: int) -> None:
    lr = LR * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * epoch / max(1, epochs))))
    for g in opt.param_groups:
        g["lr"] = lr


def _training_epochs(module: torch.nn.Module, run: _Run, epochs: int) -> Iterator[tuple[int, torch.optim.Optimizer, list]]:
    """Train ``module`` with Adam, epoch by epoch: yields ``(epoch, optimizer, batches)`` with the epoch's cosine
    learning rate set, the batches being the shuffled training indices in pieces of ``BATCH``."""
    module.train()
    opt = torch.optim.Adam(module.parameters(), lr=LR)
    for e in range(epochs):
        _cosine_lr(opt, e, epochs)
        perm = torch.randperm(run.n, generator=run.gen)
        yield e, opt, [perm[i:i + BATCH] for i in range(0, run.n, BATCH)]


def _step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One optimizer step down ``loss``."""
    opt.zero_grad()
    loss.backward()
    opt.step()


def _forward_phase(f: torch.nn.Module, run: _Run, epochs: int, phase_end: float) -> None:
    """Phase 1: the forward model regresses the lips on the commands (until ``phase_end``); frozen afterwards."""
    for e, opt, batches in _training_epochs(f, run, epochs):
        tot = 0.0
        for b in batches:
            loss = ((f(run.u_tr[b]) - run.y_tr[b]) ** 2).mean()
            _step(opt, loss)
            tot += loss.item() * len(b)
        run.hist["forward_loss"].append(tot / run.n)
        if run.end_epoch(0, e, epochs, f"forward epoch {e + 1}/{epochs}: loss {tot / run.n:.4f} mm^2",
                         time.perf_counter() > phase_end):
            break
    f.eval()
    for p in f.parameters():
        p.requires_grad_(False)


def _previous_commands(run: _Run, u: torch.Tensor) -> torch.Tensor:
    """The augmented previous command of each sample of a batch (``PREV_MIX``: own + noise, another's, rest)."""
    kind = torch.as_tensor(run.rng.choice(3, size=len(u), p=PREV_MIX))[:, None]
    own = (u + PREV_NOISE * torch.randn(u.shape, generator=run.gen)).clamp(-1, 1)
    other = run.u_tr[torch.randint(0, run.n, (len(u),), generator=run.gen)]
    return torch.where(kind == 0, own, torch.where(kind == 1, other, run.rest.expand_as(u)))


def _inverse_loss(g: torch.nn.Module, f: torch.nn.Module, run: _Run, b: torch.Tensor) -> dict[str, torch.Tensor]:
    """The inverse model's loss terms on the batch ``b`` of training indices (and their weighted sum, ``loss``)."""
    u, s = run.u_tr[b], run.s_tr[b]
    prev = _previous_commands(run, u)
    out = g(s, prev)
    sup = ((out - u) ** 2).mean()
    rt = ((_shape_of(f(out).view(-1, N_LIPS, 3)).reshape(len(b), -1) - s) ** 2).mean()
    pull = ((out - prev) ** 2).mean()
    return {"supervised": sup, "round_trip_mm2": rt, "prev": pull, "loss": sup + W_ROUND_TRIP * rt + W_PREV * pull}


def _inverse_phase(g: torch.nn.Module, f: torch.nn.Module, run: _Run, epochs: int) -> None:
    """Phase 2: the inverse model through the frozen forward model (until the run's time budget)."""
    for e, opt, batches in _training_epochs(g, run, epochs):
        sums = {"supervised": 0.0, "round_trip_mm2": 0.0, "prev": 0.0, "loss": 0.0}
        for b in batches:
            terms = _inverse_loss(g, f, run, b)
            _step(opt, terms["loss"])
            for k, v in terms.items():
                sums[k] += v.item() * len(b)
        run.terms = {k: v / run.n for k, v in sums.items()}
        run.hist["inverse_loss"].append(run.terms["loss"])
        line = f"inverse epoch {e + 1}/{epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in run.terms.items())
        if run.end_epoch(1, e, epochs, line, time.perf_counter() - run.t_start > run.budget_s):
            break
    g.eval()


def _errors(model: SelfModel, ctrl: np.ndarray, lips: np.ndarray, tr: np.ndarray, ho: np.ndarray) -> dict:
    """The forward errors on the training and held-out expressions and the inverse's held-out shape error through
    the forward model (prev = rest); NaN without held-out expressions."""
    out: dict = {
        "forward_train_mm": float(_mean_dist(model.forward_lips(ctrl[tr]), lips[tr]).mean()),
        "forward_heldout_mm": float(_mean_dist(model.forward_lips(ctrl[ho]), lips[ho]).mean()) if len(ho) else math.nan,
    }
    if len(ho):
        pred = model.forward_lips(model.inverse(lips[ho]))
        shape_t = lips[ho] - lips[ho].mean(1, keepdims=True)
        out["inverse_model_heldout_shape_mm"] = float(_mean_dist(pred - pred.mean(1, keepdims=True), shape_t).mean())
    else:
        out["inverse_model_heldout_shape_mm"] = math.nan
    return out


def _training_meta(model: SelfModel, run: _Run, ep: tuple[int, int], report: dict, *, seed: int, max_minutes: float,
                   heldout_fraction: float) -> dict:
    """``model.meta`` of a finished run: the training settings, the babble settings and the errors."""
    return {
        "training": {"seed": int(seed), "epochs": list(ep), "epochs_run": list(run.epochs_run),
                     "max_minutes": float(max_minutes), "heldout_fraction": float(heldout_fraction), "batch": BATCH,
                     "lr": LR, "hidden": list(model.hidden), "w_round_trip": W_ROUND_TRIP, "w_prev": W_PREV,
                     "prev_noise": PREV_NOISE, "prev_mix": list(PREV_MIX), "wall_s": report["wall_s"],
                     "threads": report["threads"], "n_train": report["n_train"], "n_heldout": report["n_heldout"]},
        "babble": report["babble"],
        "errors": {k: report[k] for k in ("forward_train_mm", "forward_heldout_mm", "inverse_model_heldout_shape_mm")},
    }


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
    ep = _epoch_pair(epochs, max_minutes)
    tr, ho = heldout_split(len(ctrl), heldout_fraction)
    t_start = time.perf_counter()
    budget_s = 60.0 * float(max_minutes)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = SelfModel(DEFAULT_HIDDEN)
    u_tr, y_tr, s_tr, rest = _training_tensors(model, ctrl, lips, tr)
    run = _Run(u_tr, y_tr, s_tr, rest, gen=gen, rng=rng, say=log or (lambda _msg: None), t_start=t_start,
               budget_s=budget_s)
    if progress:
        from tqdm.auto import tqdm

        run.bar = tqdm(total=sum(ep), desc="self-model", unit="epoch")
    try:
        _forward_phase(model.forward_net, run, ep[0], t_start + budget_s * ep[0] / (ep[0] + INVERSE_EPOCH_COST * ep[1]))
        _inverse_phase(model.inverse_net, model.forward_net, run, ep[1])
    finally:
        if run.bar is not None:
            run.bar.close()
    wall = time.perf_counter() - t_start
    report = _errors(model, ctrl, lips, tr, ho)
    report.update(
        forward_loss=run.hist["forward_loss"], inverse_loss=run.hist["inverse_loss"], inverse_terms=run.terms,
        epochs_run=list(run.epochs_run), stopped_early=bool(run.stopped[0] or run.stopped[1]), wall_s=float(wall),
        threads=int(torch.get_num_threads()), n_train=len(tr), n_heldout=len(ho), babble=settings,
    )
    model.meta = _training_meta(model, run, ep, report, seed=seed, max_minutes=max_minutes,
                                heldout_fraction=heldout_fraction)
    run.say(f"done in {wall:.1f} s: forward train {report['forward_train_mm']:.3f} mm, held-out "
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

    x = checked_array(target_lips_abs, "target_lips_abs", (N_LIPS, 3))
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


__all__ = ["BATCH", "DEFAULT_EPOCHS", "LR", "PREV_MIX", "PREV_NOISE", "W_PREV", "W_ROUND_TRIP", "evaluate_round_trip",
           "heldout_split", "round_trip_errors", "train_self_model"]
