"""Domain parameters: the one documented hook for per-episode physics and sensing variations.

Every facetwin environment takes ``domain=`` and resolves it once per episode, at ``reset()``:

* ``None`` (default): the nominal twin (:func:`nominal`);
* a :class:`DomainParams`: the same parameters every episode;
* a callable ``rng -> DomainParams``: called at every reset with the environment's seeded ``np_random`` (a
  ``numpy.random.Generator``). This is how domain randomization / sim-to-real plugs in::

      def randomize(rng):
          return DomainParams(skin_stiffness=rng.uniform(0.7, 1.4), latency_steps=int(rng.integers(0, 3)),
                              obs_noise_mm=0.3)
      env = MirrorSelfModelEnv(domain=randomize)

* for one episode only: ``env.reset(options={"domain": DomainParams(...)})`` (overrides the above).

Parameters (defaults = nominal):

| field | unit | range | what it changes |
|---|---|---|---|
| ``skin_stiffness`` | scale | > 0 | flex stiffness: the skin's Young's modulus (membrane ``flex_stiffness`` and bending ``flex_bending``, both linear in it) |
| ``skin_damping`` | scale | >= 0 | the skin's Rayleigh damping (``flex_damping``, nominal 4 ms) |
| ``actuator_gain`` | scale, scalar or (26,) | > 0 | servo stiffness kp of every actuator or of each (actuator order); kv scales by sqrt so the servos stay critically damped (bandwidth scales by sqrt(scale)); the ctrl -> target mapping is unchanged |
| ``latency_steps`` | control steps (1/30 s) | int >= 0 | actuation latency: the command of step t reaches the motors at step t + k |
| ``obs_noise_mm`` | mm | >= 0 | std of Gaussian noise added to every observed landmark coordinate |
| ``landmark_dropout`` | probability | [0, 1) | per landmark and step, the tracker loses the point; it then reads as its neutral position |

The physics parameters are applied by :func:`apply` to the MuJoCo model: it records the model's nominal values
the first time it sees a face and always sets ``nominal * scale``, so applying twice (or applying new parameters
after old ones) never compounds. The sensing parameters (noise, dropout) are applied by the environment to its
observations with its seeded ``np_random``; rewards always use the true landmarks.

**Latency.** MuJoCo 4 has a native actuator delay (``<general delay=... nsample=...>``, a per-actuator ctrl
history buffer read at ``time - delay``), but its buffer size is fixed when the model is compiled, so it cannot be
switched per episode on a compiled model. facetwin implements latency as a command FIFO in the environment
(:class:`CommandFIFO`): exact in units of control steps, which is the granularity of the physical robot's 30 Hz
command link. With ``latency_steps = k`` the first k steps of an episode hold the rest controls.

After new physics parameters the episode starts from the nominal neutral state; environments can settle it first
(``reset_settle_steps``, see :class:`facetwin.envs.base.FaceEnv`).
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

import numpy as np

if TYPE_CHECKING:
    from facetwin.sim import FaceModel

__all__ = ["CommandFIFO", "DomainParams", "DomainSpec", "apply", "nominal", "resolve", "current"]


@dataclass(frozen=True)
class DomainParams:
    """Per-episode domain parameters (frozen; defaults = the nominal twin). See the module docstring for the table.

    >>> p = DomainParams(skin_stiffness=1.2, actuator_gain=0.8, latency_steps=1, obs_noise_mm=0.5)
    >>> p.replace(latency_steps=2).latency_steps
    2
    """

    skin_stiffness: float = 1.0
    skin_damping: float = 1.0
    actuator_gain: float | tuple[float, ...] = 1.0
    latency_steps: int = 0
    obs_noise_mm: float = 0.0
    landmark_dropout: float = 0.0

    def __post_init__(self):
        def _pos(name, v, allow_zero=False):
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"DomainParams.{name} must be a number, got {v!r}") from None
            if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
                cond = ">= 0" if allow_zero else "> 0"
                raise ValueError(f"DomainParams.{name} must be finite and {cond}, got {v}")
            object.__setattr__(self, name, v)

        _pos("skin_stiffness", self.skin_stiffness)
        _pos("skin_damping", self.skin_damping, allow_zero=True)
        _pos("obs_noise_mm", self.obs_noise_mm, allow_zero=True)
        g = self.actuator_gain
        if np.ndim(g) == 0:
            _pos("actuator_gain", g)
        else:
            arr = np.asarray(g, dtype=float)
            from facetwin.sim.actuators import N_ACTUATORS

            if arr.shape != (N_ACTUATORS,):
                raise ValueError(
                    f"DomainParams.actuator_gain must be a scalar or have shape ({N_ACTUATORS},) (one scale per "
                    f"actuator), got shape {arr.shape}"
                )
            if not np.isfinite(arr).all() or (arr <= 0).any():
                raise ValueError("DomainParams.actuator_gain: every scale must be finite and > 0")
            object.__setattr__(self, "actuator_gain", tuple(float(x) for x in arr))
        lat = self.latency_steps
        if isinstance(lat, bool) or not float(lat).is_integer() or lat < 0:
            raise ValueError(f"DomainParams.latency_steps must be an integer >= 0 (control steps), got {lat!r}")
        object.__setattr__(self, "latency_steps", int(lat))
        p = float(self.landmark_dropout)
        if not (0.0 <= p < 1.0):
            raise ValueError(f"DomainParams.landmark_dropout must be in [0, 1), got {p}")
        object.__setattr__(self, "landmark_dropout", p)

    def gain_vector(self, n: int) -> np.ndarray:
        """The actuator gain scales as an (n,) array."""
        g = np.asarray(self.actuator_gain, dtype=float)
        return np.full(n, float(g)) if g.ndim == 0 else g.copy()

    def replace(self, **changes) -> "DomainParams":
        """A copy with ``changes`` (validated)."""
        return dataclasses.replace(self, **changes)

    @property
    def is_nominal(self) -> bool:
        """True if these parameters are the nominal twin (a per-actuator gain of all ones counts as nominal)."""
        return (
            self.skin_stiffness == 1.0 and self.skin_damping == 1.0 and bool(np.all(np.asarray(self.actuator_gain) == 1.0))
            and self.latency_steps == 0 and self.obs_noise_mm == 0.0 and self.landmark_dropout == 0.0
        )

    def physics_key(self) -> tuple:
        """The fields that :func:`apply` writes into the model (equal keys: identical physics)."""
        return (self.skin_stiffness, self.skin_damping, self.actuator_gain)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "DomainParams":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ValueError(f"unknown domain parameter(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(fields))}")
        return cls(**dict(d))


NOMINAL = DomainParams()


def nominal() -> DomainParams:
    """The nominal domain (the twin as built)."""
    return NOMINAL


DomainSpec = Union[DomainParams, Callable[[np.random.Generator], DomainParams], Mapping, None]


def resolve(domain: DomainSpec, rng: np.random.Generator) -> DomainParams:
    """The parameters of one episode: ``domain`` itself, ``domain(rng)`` for a callable, a dict of fields, or nominal."""
    if domain is None:
        return NOMINAL
    if isinstance(domain, DomainParams):
        return domain
    if isinstance(domain, Mapping):
        return DomainParams.from_dict(domain)
    if callable(domain):
        out = domain(rng)
        if isinstance(out, Mapping):
            out = DomainParams.from_dict(out)
        if not isinstance(out, DomainParams):
            raise TypeError(f"the domain callable must return a DomainParams, got {type(out).__name__}")
        return out
    raise TypeError(f"domain must be a DomainParams, a callable rng -> DomainParams, a dict or None, got {type(domain).__name__}")


# ---------------------------------------------------------------------------------------------------- physics
@dataclass
class _Nominal:
    flex_stiffness: np.ndarray
    flex_bending: np.ndarray
    flex_damping: np.ndarray
    gain0: np.ndarray  # actuator_gainprm[:, 0]
    bias: np.ndarray  # actuator_biasprm[:, :3]
    current: DomainParams


_NOMINALS: "weakref.WeakKeyDictionary[object, _Nominal]" = weakref.WeakKeyDictionary()


def _nominal_of(face: "FaceModel") -> _Nominal:
    rec = _NOMINALS.get(face)
    if rec is None or rec.flex_stiffness.shape != face.model.flex_stiffness.shape:
        m = face.model
        rec = _Nominal(
            flex_stiffness=m.flex_stiffness.copy(),
            flex_bending=m.flex_bending.copy(),
            flex_damping=m.flex_damping.copy(),
            gain0=m.actuator_gainprm[:, 0].copy(),
            bias=m.actuator_biasprm[:, :3].copy(),
            current=NOMINAL,
        )
        _NOMINALS[face] = rec
    return rec


def apply(face: "FaceModel", params: DomainParams) -> None:
    """Set the physics fields of ``face.model`` to ``params`` (skin stiffness and damping, actuator gains).

    Values are always computed from the nominal model values recorded the first time this face is seen, so
    ``apply`` is idempotent and never compounds. Latency, noise and dropout are not model fields: the
    environment applies them. The state (``face.data``) is not touched; reset or settle the face afterwards.
    """
    if not isinstance(params, DomainParams):
        raise TypeError(f"apply() needs a DomainParams, got {type(params).__name__}")
    rec = _nominal_of(face)
    if rec.current.physics_key() == params.physics_key():
        return
    m = face.model
    s = params.skin_stiffness
    m.flex_stiffness[:] = rec.flex_stiffness * s
    m.flex_bending[:] = rec.flex_bending * s
    m.flex_damping[:] = rec.flex_damping * params.skin_damping
    g = params.gain_vector(m.nu)
    m.actuator_gainprm[:, 0] = rec.gain0 * g
    m.actuator_biasprm[:, 0] = rec.bias[:, 0] * g
    m.actuator_biasprm[:, 1] = rec.bias[:, 1] * g
    m.actuator_biasprm[:, 2] = rec.bias[:, 2] * np.sqrt(g)
    rec.current = params


def current(face: "FaceModel") -> DomainParams:
    """The physics parameters last applied to ``face`` with :func:`apply` (nominal if never)."""
    rec = _NOMINALS.get(face)
    return NOMINAL if rec is None else rec.current


# ---------------------------------------------------------------------------------------------------- latency
class CommandFIFO:
    """Actuation latency of ``k`` control steps: ``push(cmd)`` returns the command pushed ``k`` pushes earlier.

    It starts full of ``fill`` (the rest controls), so the first ``k`` steps of an episode hold them.
    """

    def __init__(self, k: int, fill: np.ndarray):
        self.k = int(k)
        self._q: deque[np.ndarray] = deque(np.array(fill, dtype=float, copy=True) for _ in range(self.k))

    def push(self, cmd: np.ndarray) -> np.ndarray:
        if self.k == 0:
            return cmd
        self._q.append(np.array(cmd, dtype=float, copy=True))
        return self._q.popleft()

    def pending(self) -> list[np.ndarray]:
        """The commands issued but not yet applied, oldest first."""
        return [c.copy() for c in self._q]
