"""Domain randomization: a TOML file of ranges -> a fresh :class:`~facetwin.envs.domain.DomainParams` per episode.

The ranges live in one config file (default: ``assets/data/randomization.toml``, shipped with the package), one entry
per :class:`~facetwin.envs.domain.DomainParams` field; a field left out stays nominal:

```toml
skin_stiffness = { uniform = [0.7, 1.4] }      # x U(0.7, 1.4)
skin_damping = { loguniform = [0.5, 2.0] }     # log-uniform between 0.5 and 2
latency_steps = { uniform = [0, 3] }           # integer field: 0, 1, 2 or 3
motor_offset = { uniform = [-0.05, 0.05] }     # per-motor field: drawn for each of the 26 motors
obs_noise_mm = { choice = [0.0, 0.3, 0.6] }
light_scale = 1.0                               # a fixed value
```

| entry | draws | rules |
|---|---|---|
| ``x = value`` | always ``value`` | a number, or a list of 26 (per-motor fields) / 3 (camera vectors) numbers |
| ``{ uniform = [lo, hi] }`` | uniform on [lo, hi]; integers in [lo, hi] for ``latency_steps`` | ``lo <= hi`` |
| ``{ loguniform = [lo, hi] }`` | ``exp(uniform(log lo, log hi))`` | ``0 < lo <= hi``; not for integer fields |
| ``{ choice = [a, b, ...] }`` | one of the values, equally likely | at least one value |

Per-motor fields (``actuator_gain``, ``actuator_force_limit``, ``motor_offset``, ``deadband``) are drawn
independently for every motor, the camera vectors (``camera_shift_mm``, ``camera_tilt_deg``) for every axis. Every
value a range can produce (both ends, every choice) is checked against the field's own limits when the file is
loaded; a problem raises ``ValueError`` naming the file and the field (unknown field, unknown distribution,
``lo > hi``, a negative value where none is allowed, a list of the wrong length, ...).

Sampling is deterministic: ``config.sample(rng)`` draws the fields in ``DomainParams`` order from ``rng``, so the same
generator state gives the same parameters.

| API | what |
|---|---|
| :func:`load_config` (``path`` or ``None``: the default file) | a validated :class:`RandomizationConfig` |
| ``RandomizationConfig.sample(rng)`` (also ``config(rng)``) | one ``DomainParams``; the config is itself a valid ``domain=`` of every facetwin env |
| :class:`DomainRandomization` (``env, config, seed=None``) | Gymnasium wrapper: a fresh sample at every ``reset`` through ``options={"domain": ...}``, reported in ``info["domain"]`` |

>>> from facetwin.envs.randomization import DomainRandomization, load_config
>>> env = DomainRandomization(MirrorSelfModelEnv(), load_config())     # the default ranges
>>> obs, info = env.reset(seed=0)
>>> info["domain"].skin_stiffness, info["domain"].latency_steps
(1.23..., 2)

``seed=None`` draws from the environment's own seeded ``np_random`` (``reset(seed=s)`` reproduces the domain, like
``FaceEnv(domain=config)``); ``seed=k`` draws from a separate stream, re-seeded to ``default_rng([k, s])`` by every
``reset(seed=s)``: a held-out randomized twin whose domains do not depend on the env's other draws, the same for
every policy evaluated with the same reset seeds.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from facetwin.envs.domain import PER_MOTOR_FIELDS, VECTOR3_FIELDS, DomainParams
from facetwin.sim.actuators import N_ACTUATORS

__all__ = ["DISTRIBUTIONS", "DomainRandomization", "Range", "RandomizationConfig", "default_config_path", "load_config"]

DISTRIBUTIONS = ("uniform", "loguniform", "choice")
_FIELDS = {f.name: f for f in dataclasses.fields(DomainParams)}
_INT_FIELDS = tuple(name for name, f in _FIELDS.items() if isinstance(f.default, int) and not isinstance(f.default, bool))


def _size(name: str) -> int | None:
    """How many values one draw of ``name`` takes: 26 (per motor), 3 (camera vector) or None (a scalar)."""
    if name in PER_MOTOR_FIELDS:
        return N_ACTUATORS
    if name in VECTOR3_FIELDS:
        return 3
    return None


@dataclass(frozen=True)
class Range:
    """How one field is drawn: ``kind`` in ``"fixed"``, ``"uniform"``, ``"loguniform"``, ``"choice"``."""

    field: str
    kind: str
    values: tuple

    def sample(self, rng: np.random.Generator) -> Any:
        n = _size(self.field)
        if self.kind == "fixed":
            return self.values[0]
        if self.kind == "choice":
            idx = rng.integers(len(self.values), size=n)
            return self.values[int(idx)] if n is None else tuple(self.values[int(i)] for i in idx)
        lo, hi = self.values
        if self.field in _INT_FIELDS:
            x = rng.integers(int(lo), int(hi) + 1, size=n)
        elif self.kind == "uniform":
            x = rng.uniform(lo, hi, size=n)
        else:
            x = np.exp(rng.uniform(math.log(lo), math.log(hi), size=n))
        return np.asarray(x).item() if n is None else tuple(x.tolist())

    def as_toml_value(self) -> Any:
        """The entry as written in the config file (JSON-compatible)."""
        if self.kind == "fixed":
            v = self.values[0]
            return list(v) if isinstance(v, tuple) else v
        return {self.kind: list(self.values)}


@dataclass(frozen=True)
class RandomizationConfig:
    """Validated ranges, one :class:`Range` per randomized field (fields not listed stay nominal)."""

    ranges: Mapping[str, Range]
    source: str = "<dict>"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "<dict>") -> "RandomizationConfig":
        """Parse and validate a dict shaped like the TOML file (see the module docstring)."""
        if not isinstance(d, Mapping):
            raise ValueError(f"{source}: a randomization config is a table of fields, got {type(d).__name__}")
        ranges = {}
        for name, entry in d.items():
            if name not in _FIELDS:
                raise ValueError(
                    f"{source}: unknown field {name!r}; the DomainParams fields are {', '.join(_FIELDS)}"
                )
            ranges[name] = _parse_entry(name, entry, source)
        order = [n for n in _FIELDS if n in ranges]  # DomainParams order: the sampling order
        return cls({n: ranges[n] for n in order}, source)

    def sample(self, rng: np.random.Generator) -> DomainParams:
        """One draw of every randomized field, in ``DomainParams`` field order."""
        return DomainParams(**{name: r.sample(rng) for name, r in self.ranges.items()})

    __call__ = sample  # a config is a ``domain=`` callable: ``FaceEnv(domain=config)``

    def as_dict(self) -> dict[str, Any]:
        """The ranges as in the file (JSON-compatible; ``from_dict(as_dict())`` gives an equal config)."""
        return {name: r.as_toml_value() for name, r in self.ranges.items()}


def _check(name: str, value: Any, source: str, what: str) -> None:
    """Refuse a value the field cannot take (validated by ``DomainParams`` itself: one definition of the limits)."""
    n = _size(name)
    full = (value,) * n if (n is not None and np.ndim(value) == 0) else value
    try:
        DomainParams(**{name: full})
    except ValueError as e:
        raise ValueError(f"{source}: field {name!r}: {what} {value!r} is not allowed ({e})") from None


def _number(name: str, v: Any, source: str, what: str) -> float | int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{source}: field {name!r}: {what} must be a finite number, got {v!r}")
    if name in _INT_FIELDS:
        if not float(v).is_integer():
            raise ValueError(f"{source}: field {name!r} is an integer field: {what} must be an integer, got {v!r}")
        return int(v)
    return float(v)


def _parse_entry(name: str, entry: Any, source: str) -> Range:
    if not isinstance(entry, Mapping):  # a fixed value
        n = _size(name)
        if isinstance(entry, (list, tuple)):
            if n is None or len(entry) != n:
                want = f"a number or a list of {n} numbers" if n else "a number"
                raise ValueError(f"{source}: field {name!r}: the fixed value must be {want}, got {len(entry)} values")
            value: Any = tuple(_number(name, x, source, "every fixed value") for x in entry)
        else:
            value = _number(name, entry, source, "the fixed value")
        _check(name, value, source, "the fixed value")
        return Range(name, "fixed", (value,))
    keys = list(entry)
    if len(keys) != 1 or keys[0] not in DISTRIBUTIONS:
        raise ValueError(
            f"{source}: field {name!r}: a range is one of {{ uniform = [lo, hi] }}, {{ loguniform = [lo, hi] }} or "
            f"{{ choice = [...] }}, got keys {keys}"
        )
    kind = keys[0]
    vals = entry[kind]
    if not isinstance(vals, (list, tuple)):
        raise ValueError(f"{source}: field {name!r}: {kind} needs a list, got {vals!r}")
    if kind == "choice":
        if not vals:
            raise ValueError(f"{source}: field {name!r}: choice needs at least one value")
        values = tuple(_number(name, x, source, "every choice") for x in vals)
        for x in values:
            _check(name, x, source, "the choice")
        return Range(name, kind, values)
    if len(vals) != 2:
        raise ValueError(f"{source}: field {name!r}: {kind} needs [lo, hi], got {len(vals)} values")
    lo, hi = (_number(name, x, source, f"{kind} bound") for x in vals)
    if lo > hi:
        raise ValueError(f"{source}: field {name!r}: {kind} lo > hi ({lo} > {hi})")
    if kind == "loguniform":
        if name in _INT_FIELDS:
            raise ValueError(f"{source}: field {name!r} is an integer field: use uniform or choice, not loguniform")
        if lo <= 0:
            raise ValueError(f"{source}: field {name!r}: loguniform needs lo > 0, got {lo}")
    _check(name, lo, source, f"the {kind} low end")
    _check(name, hi, source, f"the {kind} high end")
    return Range(name, kind, (lo, hi))


def default_config_path() -> Path:
    """The shipped default ranges, ``facetwin/assets/data/randomization.toml``."""
    return Path(str(resources.files("facetwin.assets").joinpath("data/randomization.toml")))


def load_config(path: str | Path | None = None) -> RandomizationConfig:
    """Read and validate a TOML ranges file (``None``: :func:`default_config_path`)."""
    p = default_config_path() if path is None else Path(path)
    try:
        with open(p, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"randomization config {p} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{p}: not valid TOML: {e}") from None
    return RandomizationConfig.from_dict(data, str(p))


class DomainRandomization(gym.Wrapper):
    """A facetwin env whose every episode gets fresh domain parameters from ``config``.

    ``reset(seed, options)`` passes ``options["domain"]`` (unless the caller gives one: that episode uses it) and
    adds ``info["domain"]``, the :class:`DomainParams` of the episode. ``config``: a :class:`RandomizationConfig`, a
    path or ``None`` (the default file). ``seed``: ``None`` draws from the env's ``np_random``; an int draws from
    ``default_rng([seed, s])`` at ``reset(seed=s)`` (a stream of its own, going on between seeded resets).
    """

    def __init__(self, env: gym.Env, config: RandomizationConfig | str | Path | None = None, seed: int | None = None):
        super().__init__(env)
        if "domain" not in getattr(env.unwrapped, "reset_option_keys", ()):
            raise TypeError(f"{type(env.unwrapped).__name__} takes no domain parameters (not a facetwin FaceEnv)")
        self.config = config if isinstance(config, RandomizationConfig) else load_config(config)
        self.seed = None if seed is None else int(seed)
        self._rng = None if seed is None else np.random.default_rng(self.seed)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        options = dict(options or {})
        if "domain" not in options:
            if self._rng is None:
                options["domain"] = self.config  # drawn by the env from its own np_random, after seeding
            else:
                if seed is not None:
                    self._rng = np.random.default_rng([self.seed, int(seed)])
                options["domain"] = self.config.sample(self._rng)
        obs, info = self.env.reset(seed=seed, options=options)
        info["domain"] = self.env.unwrapped.domain_params
        return obs, info
