"""The safety layer's settings: :class:`SafetyConfig`, the limits and timings of
:class:`facetwin.hardware.safety.SafeBus`, validated on construction and loaded from JSON, and the per-motor slew
limits they give a calibration (:meth:`SafetyConfig.speeds`).

:class:`SafetyConfig` (also a JSON object for :meth:`SafetyConfig.load`, unknown fields refused):

| field | default | meaning |
|---|---|---|
| ``max_speed`` | ``None``: ``DEFAULT_SPEED * scale`` per motor | servo units per second: one number, 26 numbers in actuator order, or ``{motor: number}`` (others default) |
| ``rate_hz`` | 30 | the control rate: the slew step per period, and the pace of the neutral moves |
| ``watchdog_ms`` | 100 | hold after this long without a fresh command; ``None``: no watchdog |
| ``relax_after_s`` | 1.0 | then neutral and relax after this long more |
| ``exit_timeout_s`` | 2.0 | longest neutral move on exit before relaxing anyway |
| ``handle_signals`` | ``False`` | install SIGINT / SIGTERM handlers in ``open`` (main thread only) |
| ``health_hz`` | 10 | health polls per second while streaming; ``None``: no polling (faults show only when a write fails) |
| ``health_budget`` | 0.25 | the share of a control period one poll may take on each bus (motors per poll = the most that fit) |
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from facetwin.hardware.calibration import Calibration

DEFAULT_SPEED = 30.0  # x scale per second: the whole [-1, 1] range in 67 ms (2 frames), what lip sync needs; faster jumps are cut
"""Default slew limit in normalized command units per second (times each motor's ``scale``)."""


@dataclass(frozen=True)
class SafetyConfig:
    """Limits and timings of :class:`~facetwin.hardware.safety.SafeBus` (see the module docstring table)."""

    max_speed: float | tuple[float, ...] | Mapping[str, float] | None = None
    rate_hz: float = 30.0
    watchdog_ms: float | None = 100.0
    relax_after_s: float = 1.0
    exit_timeout_s: float = 2.0
    handle_signals: bool = False
    health_hz: float | None = 10.0
    health_budget: float = 0.25

    def __post_init__(self) -> None:
        for name in ("rate_hz", "exit_timeout_s"):
            v = getattr(self, name)
            if not finite_number(v) or v <= 0:
                raise ValueError(f"{name}: must be a finite number > 0, got {v!r}")
        if self.watchdog_ms is not None and (not finite_number(self.watchdog_ms) or self.watchdog_ms <= 0):
            raise ValueError(f"watchdog_ms: must be a finite number > 0 or None, got {self.watchdog_ms!r}")
        if not finite_number(self.relax_after_s) or self.relax_after_s < 0:
            raise ValueError(f"relax_after_s: must be a finite number >= 0, got {self.relax_after_s!r}")
        if self.health_hz is not None and (not finite_number(self.health_hz) or not 0 < self.health_hz <= self.rate_hz):
            raise ValueError(f"health_hz: must be a number in (0, rate_hz={self.rate_hz}] or None, "
                             f"got {self.health_hz!r}")
        if not finite_number(self.health_budget) or not 0 < self.health_budget <= 1:
            raise ValueError(f"health_budget: must be a number in (0, 1], got {self.health_budget!r}")
        if not isinstance(self.handle_signals, bool):
            raise ValueError(f"handle_signals: must be true or false, got {self.handle_signals!r}")
        if isinstance(self.max_speed, Sequence) and not isinstance(self.max_speed, str):
            object.__setattr__(self, "max_speed", tuple(self.max_speed))

    def speeds(self, cal: Calibration) -> np.ndarray:
        """(26,) slew limits in servo units per second, validated against the calibration."""
        default = DEFAULT_SPEED * np.array([m.scale for m in cal.motors])
        ms = self.max_speed
        if ms is None:
            out = default
        elif isinstance(ms, Mapping):
            unknown = sorted(set(ms) - set(cal.names))
            if unknown:
                raise ValueError(f"max_speed: unknown motor(s) {', '.join(map(str, unknown))}")
            out = np.array([ms.get(n, d) for n, d in zip(cal.names, default)], dtype=object)
        elif isinstance(ms, tuple):
            if len(ms) != len(cal.motors):
                raise ValueError(f"max_speed: {len(ms)} values, the calibration has {len(cal.motors)} motors")
            out = np.array(ms, dtype=object)
        else:
            out = np.full(len(cal.motors), ms, dtype=object)
        for name, v in zip(cal.names, out):
            if not finite_number(v) or v <= 0:
                raise ValueError(f"max_speed[{name}]: must be a finite number > 0 (units/s), got {v!r}")
        out = out.astype(float)
        if cal.units == "position":
            slow = [n for n, v in zip(cal.names, out) if v / self.rate_hz < 1]
            if slow:
                raise ValueError(f"max_speed[{slow[0]}]: below 1 tick per period at rate_hz={self.rate_hz}; "
                                 "position servos move in whole ticks")
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> SafetyConfig:
        """Build from a JSON object; unknown fields are refused by name."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a safety config is a JSON object, got {type(data).__name__}")
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> SafetyConfig:
        from facetwin.files import load_json

        return load_json(path, "safety config", cls.from_dict)


def finite_number(v) -> bool:
    """A real number (not a bool) that is finite."""
    return not isinstance(v, bool) and isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(v)


__all__ = ["DEFAULT_SPEED", "SafetyConfig", "finite_number"]
