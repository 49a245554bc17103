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

Parameters (defaults = nominal; "per motor" fields take a scalar for every motor or a (26,) vector in actuator order):

| field | unit | range | applied by | what it changes |
|---|---|---|---|---|
| ``skin_stiffness`` | scale | > 0 | model | the skin's Young's modulus: membrane ``flex_stiffness`` and bending ``flex_bending``, both linear in it |
| ``skin_damping`` | scale | >= 0 | model | the skin's Rayleigh damping (``flex_damping``, nominal 4 ms) |
| ``skin_thickness`` | scale | > 0 | model | skin thickness (nominal 2.5 mm): membrane stiffness x t, bending stiffness x t^3, skin vertex masses x t (see below) |
| ``actuator_gain`` | scale, per motor | > 0 | model | servo stiffness kp; kv scales by sqrt so the servos stay critically damped (bandwidth x sqrt(scale)); the ctrl -> target mapping is unchanged |
| ``actuator_force_limit`` | scale, per motor | > 0 | model | the servos' force limit (``actuator_forcerange``, nominal +-``force_max`` of the actuator table): a weak supply or worn gears |
| ``motor_offset`` | normalized, per motor | [-1, 1] | actuation | the servo's neutral is off: the motor goes to ``command + offset`` (clipped to [-1, 1]); ``motor_positions()`` shows it |
| ``deadband`` | normalized, per motor | [0, 1] | actuation | the servo ignores a command that differs from the target it holds by less than the band (deadband; to first order also gear backlash) |
| ``latency_steps`` | control steps (1/30 s) | int >= 0 | actuation | the command of step t reaches the motors at step t + k |
| ``control_noise`` | normalized | >= 0 | actuation | std of Gaussian noise added to every motor command at every step (PWM jitter, supply ripple) |
| ``obs_noise_mm`` | mm | >= 0 | sensing | std of Gaussian noise added to every observed landmark coordinate |
| ``landmark_dropout`` | probability | [0, 1) | sensing | per landmark and step, the tracker loses the point; it then reads as its neutral position |
| ``camera_shift_mm`` | mm, (3,) | finite | model | every camera moved along its own axes (x right, y up, z backward: +z moves it away from the face) |
| ``camera_tilt_deg`` | degrees, (3,) | (-90, 90) | model | every camera turned about its own x, y, z axes (in that order) |
| ``camera_fov_scale`` | scale | > 0 | model | every camera's vertical field of view (``cam_fovy``; the result must stay < 180 deg) |
| ``light_scale`` | scale | >= 0 | model | brightness: every light's ambient, diffuse and specular colour and the model's headlight (the ``"video"`` render preset sets its own headlight; only the lights scale there) |

**Model fields** are written by :func:`apply`: it records the model's nominal values the first time it sees a face
and always sets ``nominal * scale`` (or ``nominal + shift``), so applying twice (or applying new parameters after old
ones) never compounds. **Actuation** (offset, deadband, latency, control noise) happens between the policy's command
and ``data.ctrl`` in :class:`Actuation`, which the environment runs every step: latency FIFO, + noise, deadband,
+ offset, clip to [-1, 1]. **Sensing** (landmark noise, dropout) is applied by the environment to its observations.
Every random draw (control noise, landmark noise, dropout) comes from the environment's seeded ``np_random``;
rewards always use the true landmarks. Nominal parameters draw nothing and leave every value bit-identical.

**Skin thickness.** MuJoCo 4 uses ``<elasticity thickness=...>`` only while compiling the flex: the compiled model
has no ``flex_thickness`` field, only the per-element ``flex_stiffness`` (membrane, linear in Young's modulus x
thickness) and ``flex_bending`` (plate bending, Young's modulus x thickness^3; both checked by compiling the face with
twice the thickness: x2.00 and x8.00 for every element). So ``skin_thickness = t`` scales them by t and t^3 (with
``skin_stiffness = s``: ``s * t`` and ``s * t^3``), and the masses of the free skin vertex bodies (areal density x
thickness) by t. The vertex inertias are tiny placeholders and stay.

**Latency.** MuJoCo 4 has a native actuator delay (``<general delay=... nsample=...>``, a per-actuator ctrl
history buffer read at ``time - delay``), but its buffer size is fixed when the model is compiled, so it cannot be
switched per episode on a compiled model. facetwin implements latency as a command FIFO in the environment
(:class:`CommandFIFO`): exact in units of control steps, which is the granularity of the physical robot's 30 Hz
command link. With ``latency_steps = k`` the first k steps of an episode hold the rest controls.

Without an environment (e.g. the twin standing in for a robot)::

    dom.apply(face, params)                          # model fields
    act = dom.Actuation(params, face.rest_ctrl, rng) # per episode
    face.step(act(command))                          # every control step

After new physics parameters the episode starts from the nominal neutral state (with the rest controls + offset
commanded); environments can settle it first (``reset_settle_steps``, see :class:`facetwin.envs.base.FaceEnv`).
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

import mujoco
import numpy as np

if TYPE_CHECKING:
    from facetwin.sim import FaceModel

__all__ = ["Actuation", "CommandFIFO", "DomainParams", "DomainSpec", "PER_MOTOR_FIELDS", "VECTOR3_FIELDS", "apply",
           "nominal", "resolve", "current"]

#: fields that take a scalar (every motor) or one value per motor (26, actuator order)
PER_MOTOR_FIELDS = ("actuator_gain", "actuator_force_limit", "motor_offset", "deadband")
#: fields that are always 3-vectors (camera axes x, y, z)
VECTOR3_FIELDS = ("camera_shift_mm", "camera_tilt_deg")

# (lower bound, lower bound allowed, upper bound, upper bound allowed) of every float field and vector component
_BOUNDS: dict[str, tuple[float, bool, float, bool]] = {
    "skin_stiffness": (0.0, False, math.inf, False),
    "skin_damping": (0.0, True, math.inf, False),
    "skin_thickness": (0.0, False, math.inf, False),
    "actuator_gain": (0.0, False, math.inf, False),
    "actuator_force_limit": (0.0, False, math.inf, False),
    "motor_offset": (-1.0, True, 1.0, True),
    "deadband": (0.0, True, 1.0, True),
    "control_noise": (0.0, True, math.inf, False),
    "obs_noise_mm": (0.0, True, math.inf, False),
    "landmark_dropout": (0.0, True, 1.0, False),
    "camera_shift_mm": (-math.inf, False, math.inf, False),
    "camera_tilt_deg": (-90.0, False, 90.0, False),
    "camera_fov_scale": (0.0, False, math.inf, False),
    "light_scale": (0.0, True, math.inf, False),
}


def _bound_text(name: str) -> str:
    lo, lo_ok, hi, hi_ok = _BOUNDS[name]
    parts = []
    if math.isfinite(lo):
        parts.append(f"{'>=' if lo_ok else '>'} {lo:g}")
    if math.isfinite(hi):
        parts.append(f"{'<=' if hi_ok else '<'} {hi:g}")
    return "finite" + "".join(f" and {p}" for p in parts)


def _check_values(name: str, arr: np.ndarray) -> None:
    lo, lo_ok, hi, hi_ok = _BOUNDS[name]
    ok = np.isfinite(arr) & ((arr >= lo) if lo_ok else (arr > lo)) & ((arr <= hi) if hi_ok else (arr < hi))
    if not ok.all():
        bad = arr[~ok][0]
        raise ValueError(f"DomainParams.{name} must be {_bound_text(name)}, got {bad}")


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
    skin_thickness: float = 1.0
    actuator_force_limit: float | tuple[float, ...] = 1.0
    motor_offset: float | tuple[float, ...] = 0.0
    deadband: float | tuple[float, ...] = 0.0
    control_noise: float = 0.0
    camera_shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    camera_tilt_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    camera_fov_scale: float = 1.0
    light_scale: float = 1.0

    def __post_init__(self):
        from facetwin.sim.actuators import N_ACTUATORS

        for f in dataclasses.fields(self):
            name, v = f.name, getattr(self, f.name)
            if name == "latency_steps":
                ok = not isinstance(v, bool) and np.ndim(v) == 0
                try:
                    ok = ok and float(v).is_integer() and v >= 0
                except (TypeError, ValueError):
                    ok = False
                if not ok:
                    raise ValueError(f"DomainParams.latency_steps must be an integer >= 0 (control steps), got {v!r}")
                object.__setattr__(self, name, int(v))
                continue
            try:
                arr = np.asarray(v, dtype=float)
            except (TypeError, ValueError):
                raise ValueError(f"DomainParams.{name} must be a number, got {v!r}") from None
            if name in VECTOR3_FIELDS:
                if arr.shape != (3,):
                    raise ValueError(f"DomainParams.{name} must have 3 values (camera x, y, z), got shape {arr.shape}")
            elif name in PER_MOTOR_FIELDS:
                if arr.ndim and arr.shape != (N_ACTUATORS,):
                    raise ValueError(
                        f"DomainParams.{name} must be a scalar or have shape ({N_ACTUATORS},) (one value per "
                        f"actuator), got shape {arr.shape}"
                    )
            elif arr.ndim:
                raise ValueError(f"DomainParams.{name} must be a number, got shape {arr.shape}")
            _check_values(name, arr)
            object.__setattr__(self, name, float(arr) if arr.ndim == 0 else tuple(float(x) for x in arr))

    def vector(self, name: str, n: int) -> np.ndarray:
        """A per-motor field (:data:`PER_MOTOR_FIELDS`) as an (n,) array."""
        if name not in PER_MOTOR_FIELDS:
            raise ValueError(f"{name!r} is not a per-motor field; those are {', '.join(PER_MOTOR_FIELDS)}")
        v = np.asarray(getattr(self, name), dtype=float)
        return np.full(n, float(v)) if v.ndim == 0 else v.copy()

    def gain_vector(self, n: int) -> np.ndarray:
        """The actuator gain scales as an (n,) array."""
        return self.vector("actuator_gain", n)

    def replace(self, **changes) -> "DomainParams":
        """A copy with ``changes`` (validated)."""
        return dataclasses.replace(self, **changes)

    @property
    def is_nominal(self) -> bool:
        """True if these parameters are the nominal twin (a per-actuator vector equal to the default counts)."""
        return all(
            bool(np.all(np.asarray(getattr(self, f.name)) == np.asarray(f.default))) for f in dataclasses.fields(self)
        )

    def physics_key(self) -> tuple:
        """The fields that :func:`apply` writes into the model (equal keys: identical model)."""
        return (self.skin_stiffness, self.skin_damping, self.skin_thickness, self.actuator_gain,
                self.actuator_force_limit, self.camera_shift_mm, self.camera_tilt_deg, self.camera_fov_scale,
                self.light_scale)

    @property
    def actuation_is_nominal(self) -> bool:
        """True if :class:`Actuation` passes commands through unchanged (no latency, noise, deadband or offset)."""
        return (self.latency_steps == 0 and self.control_noise == 0.0 and not np.any(self.deadband)
                and not np.any(self.motor_offset))

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "DomainParams":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ValueError(f"unknown domain parameter(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(fields))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


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
    forcerange: np.ndarray  # actuator_forcerange
    skin_bodies: np.ndarray  # ids of the free skin vertex bodies
    skin_mass: np.ndarray  # their body_mass
    cam_pos: np.ndarray
    cam_quat: np.ndarray
    cam_fovy: np.ndarray
    lights: np.ndarray  # (nlight, 3, 3): ambient, diffuse, specular
    headlight: np.ndarray  # (3, 3): ambient, diffuse, specular
    current: DomainParams


_NOMINALS: "weakref.WeakKeyDictionary[object, _Nominal]" = weakref.WeakKeyDictionary()


def _nominal_of(face: "FaceModel") -> _Nominal:
    rec = _NOMINALS.get(face)
    if rec is None or rec.flex_stiffness.shape != face.model.flex_stiffness.shape:
        m = face.model
        skin = np.array([i for i in range(m.nbody) if m.body(i).name.startswith("skin_")], dtype=int)
        hl = m.vis.headlight
        rec = _Nominal(
            flex_stiffness=m.flex_stiffness.copy(),
            flex_bending=m.flex_bending.copy(),
            flex_damping=m.flex_damping.copy(),
            gain0=m.actuator_gainprm[:, 0].copy(),
            bias=m.actuator_biasprm[:, :3].copy(),
            forcerange=m.actuator_forcerange.copy(),
            skin_bodies=skin,
            skin_mass=m.body_mass[skin].copy(),
            cam_pos=m.cam_pos.copy(),
            cam_quat=m.cam_quat.copy(),
            cam_fovy=m.cam_fovy.copy(),
            lights=np.stack([m.light_ambient, m.light_diffuse, m.light_specular], axis=1).copy(),
            headlight=np.array([hl.ambient, hl.diffuse, hl.specular], dtype=float),
            current=NOMINAL,
        )
        _NOMINALS[face] = rec
    return rec


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


def _quat_to_mat(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _tilt_quat(tilt_deg) -> np.ndarray:
    """Rotation about the camera's own x, then y, then z axis (intrinsic), as a quaternion."""
    q = np.array([1.0, 0.0, 0.0, 0.0])
    for axis, deg in enumerate(tilt_deg):
        half = math.radians(deg) / 2.0
        r = np.zeros(4)
        r[0], r[1 + axis] = math.cos(half), math.sin(half)
        q = _quat_mul(q, r)
    return q


def apply(face: "FaceModel", params: DomainParams) -> None:
    """Set the model fields of ``face.model`` to ``params``: skin stiffness, damping and thickness, actuator gains and
    force limits, camera poses and fields of view, lighting.

    Values are always computed from the nominal model values recorded the first time this face is seen, so
    ``apply`` is idempotent and never compounds. Latency, offset, deadband and the noises are not model fields: the
    environment applies them (:class:`Actuation`, observations). The state (``face.data``) is not touched (only the
    derived camera and light poses are recomputed, ``mj_camlight``); reset or settle the face afterwards.
    """
    if not isinstance(params, DomainParams):
        raise TypeError(f"apply() needs a DomainParams, got {type(params).__name__}")
    rec = _nominal_of(face)
    if rec.current.physics_key() == params.physics_key():
        return
    m = face.model
    fovy = rec.cam_fovy * params.camera_fov_scale
    if (fovy >= 180.0).any():
        raise ValueError(f"DomainParams.camera_fov_scale {params.camera_fov_scale} makes a field of view >= 180 deg")
    s, t = params.skin_stiffness, params.skin_thickness
    m.flex_stiffness[:] = rec.flex_stiffness * (s * t)
    m.flex_bending[:] = rec.flex_bending * (s * t**3)
    m.flex_damping[:] = rec.flex_damping * params.skin_damping
    m.body_mass[rec.skin_bodies] = rec.skin_mass * t
    g = params.gain_vector(m.nu)
    m.actuator_gainprm[:, 0] = rec.gain0 * g
    m.actuator_biasprm[:, 0] = rec.bias[:, 0] * g
    m.actuator_biasprm[:, 1] = rec.bias[:, 1] * g
    m.actuator_biasprm[:, 2] = rec.bias[:, 2] * np.sqrt(g)
    m.actuator_forcerange[:] = rec.forcerange * params.vector("actuator_force_limit", m.nu)[:, None]
    tilt = _tilt_quat(params.camera_tilt_deg)
    shift_m = np.asarray(params.camera_shift_mm) / 1000.0
    for c in range(m.ncam):
        m.cam_pos[c] = rec.cam_pos[c] + _quat_to_mat(rec.cam_quat[c]) @ shift_m
        m.cam_quat[c] = _quat_mul(rec.cam_quat[c], tilt)
    m.cam_fovy[:] = fovy
    light = params.light_scale
    m.light_ambient[:] = rec.lights[:, 0] * light
    m.light_diffuse[:] = rec.lights[:, 1] * light
    m.light_specular[:] = rec.lights[:, 2] * light
    hl = m.vis.headlight
    hl.ambient, hl.diffuse, hl.specular = (rec.headlight * light).tolist()
    mujoco.mj_camlight(m, face.data)  # the derived camera poses follow at once (a renderer reads data.cam_xpos)
    rec.current = params


def current(face: "FaceModel") -> DomainParams:
    """The model parameters last applied to ``face`` with :func:`apply` (nominal if never)."""
    rec = _NOMINALS.get(face)
    return NOMINAL if rec is None else rec.current


# ---------------------------------------------------------------------------------------------------- actuation
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


class Actuation:
    """The way from a motor command to ``data.ctrl`` for one episode: latency, control noise, deadband, offset.

    ``actuation(cmd)`` returns the controls the motors get this step:

    | stage | what |
    |---|---|
    | latency | ``CommandFIFO(latency_steps)``: the command of ``latency_steps`` steps ago (rest before the first) |
    | control noise | ``+ N(0, control_noise)`` per motor, drawn from ``rng`` |
    | deadband | each servo keeps the target it holds unless the new one differs by ``>= deadband`` |
    | offset | ``+ motor_offset``, then clipped to [-1, 1] (the servo's range) |

    With :attr:`DomainParams.actuation_is_nominal` parameters the command passes through unchanged and nothing is
    drawn. :attr:`rest` is what the motors get for the rest command (rest + offset), e.g. to settle a reset face.
    """

    def __init__(self, params: DomainParams, rest: np.ndarray, rng: np.random.Generator | None = None):
        rest = np.asarray(rest, dtype=float)
        n = len(rest)
        self.params = params
        self.fifo = CommandFIFO(params.latency_steps, rest)
        self._rng = rng
        self._noise = params.control_noise
        if self._noise > 0.0 and rng is None:
            raise ValueError("DomainParams.control_noise > 0 needs a random generator (rng)")
        self._band = params.vector("deadband", n)
        self._has_band = bool(self._band.any())
        self._offset = params.vector("motor_offset", n)
        self._has_offset = bool(self._offset.any())
        self._held = rest.copy()
        self.rest = np.clip(rest + self._offset, -1.0, 1.0) if self._has_offset else rest.copy()

    def __call__(self, cmd: np.ndarray) -> np.ndarray:
        u = self.fifo.push(cmd)
        if self._noise > 0.0:
            u = u + self._rng.normal(0.0, self._noise, u.shape)
        if self._has_band:
            move = np.abs(u - self._held) >= self._band
            self._held[move] = u[move]
            u = self._held.copy()
        if self._has_offset:
            u = u + self._offset
        if self._noise > 0.0 or self._has_offset:
            u = np.clip(u, -1.0, 1.0)
        return u
