"""What a command may become on one robot: the per-motor limits of the safety layer and the arithmetic of its steps.

:class:`SafetyLimits` is built once per :class:`facetwin.hardware.safety.SafeBus` from its buses, the calibration and
the :class:`~facetwin.hardware.safety_config.SafetyConfig`: which motors sit on which bus, the map from normalized
commands to servo units, each motor's safe range shrunk to whole steps of its bus, the rest pose and the slew limits.
Its methods are steps 1-4 of the layer's table (check, map, range clamp, slew limit), pure functions of their
arguments; the layer does the counting, the logging and the writes.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from facetwin.hardware.bus import ServoBus
from facetwin.hardware.calibration import Calibration
from facetwin.hardware.safety_config import SafetyConfig

_EPS = 1e-9  # servo units: float rounding, never a clamp event


class SafetyLimits:
    """The limits of one robot's motors, in actuator order and servo units.

    ``groups``: ``(bus name, motor indices, channels)`` per bus, in the calibration's order; ``bus_index``: motor ->
    index into ``groups``; ``gain``, ``neutral``: the calibration's map; ``q``: each motor's bus step (0:
    continuous); ``lo``, ``hi``: the safe range in whole bus steps; ``rest``: where every stop goes; ``speed``: slew
    limits (units/s); ``period``: the control period (s). ``ValueError`` names a bus, units or range that does not fit.
    """

    def __init__(self, buses: Mapping[str, ServoBus], cal: Calibration, config: SafetyConfig) -> None:
        groups: dict[str, list[int]] = {}
        for i, m in enumerate(cal.motors):
            if m.bus not in buses:
                raise ValueError(f"buses: no bus {m.bus!r} for motor {m.name} (have {', '.join(buses) or 'none'})")
            groups.setdefault(m.bus, []).append(i)
        for name in groups:
            units = getattr(buses[name], "units", None)
            if units != cal.units:
                raise ValueError(f"buses[{name!r}].units: {units!r}, the calibration is in {cal.units!r}")
        self.groups = [(name, np.array(idx), [cal.motors[i].channel for i in idx]) for name, idx in groups.items()]
        self.names = cal.names
        self.bus_index = np.zeros(len(cal.motors), dtype=int)
        for g, (_, idx, _) in enumerate(self.groups):
            self.bus_index[idx] = g
        self.gain = np.array([m.direction * m.scale for m in cal.motors], dtype=float)
        self.neutral = cal.neutral
        # the resolution of each motor's bus (its ``quantum`` attribute: PCA9685 pulse ticks of ~4.9 us; whole ticks
        # for position servos): values are rounded to it and the range shrunk to whole steps inside, so the bus's own
        # rounding can never carry a value past min or max
        q = np.zeros(len(cal.motors))
        for name, idx, _ in self.groups:
            q[idx] = float(getattr(buses[name], "quantum", None) or (1.0 if cal.units == "position" else 0.0))
        self.q = q
        self.quantum = bool((q > 0).any())
        lo, hi = cal.lo, cal.hi
        if self.quantum:
            qq = np.where(q > 0, q, 1.0)
            lo = np.where(q > 0, np.ceil(lo / qq - 1e-9) * qq, lo)
            hi = np.where(q > 0, np.floor(hi / qq + 1e-9) * qq, hi)
            bad = np.flatnonzero(lo > hi)
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"calibration motors[{self.names[i]}]: no whole bus step in "
                                 f"[{cal.lo[i]}, {cal.hi[i]}]")
        self.lo, self.hi = lo, hi
        # where every stop goes: the rest face (all commands 0 except the jaw closed, assets/data/actuators.csv)
        from facetwin.sim.actuators import rest_controls

        self.rest = self.round(np.clip(cal.to_units(rest_controls()), lo, hi))
        self.speed = config.speeds(cal)
        self.period = 1.0 / config.rate_hz

    @property
    def max_step(self) -> np.ndarray:
        """(26,) the slew limit per control period, servo units."""
        step = self.speed * self.period
        return self.floor(step)

    def check(self, ctrl) -> tuple[np.ndarray | None, str | None]:
        """Step 1: ``(x, None)`` with ``x`` a (26,) float array of finite values, or ``(None, why it is refused)``."""
        reason = None
        try:
            a = np.asarray(ctrl)
        except Exception as e:  # a ragged list, an object whose __array__ raises: all are bad commands
            a, reason = None, f"not an array ({type(e).__name__}: {e})"
        if a is not None:
            if a.dtype.kind not in "iuf":
                reason = f"dtype {a.dtype} (need integer or float)"
            elif a.shape != self.neutral.shape:
                reason = f"shape {a.shape} (need {self.neutral.shape})"
            else:
                with np.errstate(over="ignore"):
                    x = a.astype(float)
                finite = np.isfinite(x)
                if finite.all():
                    return x, None
                bad = [self.names[i] for i in np.flatnonzero(~finite)]
                reason = f"non-finite value(s) for {', '.join(bad)}"
        return None, reason

    def to_units(self, x: np.ndarray) -> np.ndarray:
        """Step 2: checked commands -> servo units (not clamped; an overflow is left to the clamp)."""
        with np.errstate(over="ignore"):
            return self.neutral + self.gain * x

    def clamp(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Step 3: ``(target, clamped)``: ``raw`` into the safe range, rounded to each motor's bus step; ``clamped``
        marks the motors whose ``raw`` was outside."""
        target = self.round(np.minimum(np.maximum(raw, self.lo), self.hi))
        return target, (raw < self.lo) | (raw > self.hi)

    def slew(self, target: np.ndarray, last: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """Step 4: ``(new, limited)``: each motor at most ``speed * dt`` (whole bus steps) from ``last`` toward
        ``target``; ``limited`` marks the motors held back."""
        step = self.speed * dt
        step = self.floor(step)
        delta = target - last
        slew = np.abs(delta) > step + _EPS
        if slew.any():
            new = np.where(slew, last + np.clip(delta, -step, step), target)
            new = np.minimum(np.maximum(new, self.lo), self.hi)  # guards against float rounding at the range edges
        else:
            new = target
        return new, slew

    def round(self, units, idx=None):
        """Round to each motor's bus step (all 26 motors, or motor(s) ``idx``)."""
        if not self.quantum:
            return units
        q = self.q if idx is None else self.q[idx]
        return np.where(q > 0, np.rint(units / np.where(q > 0, q, 1.0)) * q, units)

    def floor(self, step: np.ndarray) -> np.ndarray:
        """Round a step down to whole bus steps."""
        if not self.quantum:
            return step
        q = self.q
        return np.where(q > 0, np.floor(step / np.where(q > 0, q, 1.0) + 1e-9) * q, step)


__all__ = ["SafetyLimits"]
