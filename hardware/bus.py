"""The servo bus interface: what every backend (PCA9685, serial bus servos, the twin) implements.

A bus moves servos by *channel* (PCA9685 channel 0-15 on a board, or a serial servo id) in *servo units* (pulse
width in microseconds, or position ticks). It knows nothing about the face: the calibration
(:mod:`facetwin.hardware.calibration`) maps the 26 normalized commands to (bus, channel, units), and the safety layer
(:mod:`facetwin.hardware.safety`) is the only caller allowed to write to a bus in normal use.

| method | contract |
|---|---|
| ``open()`` / ``close()`` | connect / release the device (idempotent); also a context manager |
| ``write(channels, values)`` | set the goal of each channel, in servo units; raises :class:`BusError` on a device error |
| ``read(channels)`` | present positions in servo units where the device can report them, else the last written goal (``None`` where never written) |
| ``relax(channels)`` | torque off (serial) / PWM off (PCA9685): the servo goes limp |
| ``health(channels)`` | ask the device whether it is well (serial: each servo's present position and error status; PCA9685: the board answers and has not reset); raises :class:`BusError` naming the fault; returns what ``read`` returns. The safety layer polls it while streaming (:class:`facetwin.hardware.safety_config.SafetyConfig` ``health_hz``) |
| ``health_cost_s(n)`` | seconds one ``health`` of ``n`` channels takes on the wire (0: no round trip), what the poll budgets against a control period |
| ``units`` | ``"us"`` or ``"position"`` (:data:`facetwin.hardware.calibration.UNITS`) |
| ``name`` | the bus label used in calibration files (``"pca9685@0x41"``, ``"serial"``, ``"sim"``) |
| ``quantum`` | the smallest step the device can express, in servo units (``None``: continuous); the safety layer rounds to it inside the safe range |

>>> with SomeBus(...) as bus:
...     bus.write([0, 1], [1500.0, 1520.0])
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

#: the exit code of a command whose robot hardware failed (a bus or a servo): not bad input (2), not a bug (1)
EXIT_FAULT = 3


class BusError(RuntimeError):
    """A device or protocol error on a servo bus (port closed, no reply, corrupted reply, servo error status)."""


class ServoBus(ABC):
    """Abstract servo bus (see the module docstring)."""

    units: str = "us"
    name: str = "bus"
    quantum: float | None = None

    def __enter__(self) -> "ServoBus":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def write(self, channels: Sequence[int], values: Sequence[float]) -> None: ...

    @abstractmethod
    def read(self, channels: Sequence[int]) -> list[float | None]: ...

    @abstractmethod
    def relax(self, channels: Sequence[int]) -> None: ...

    def health(self, channels: Sequence[int]) -> list[float | None]:
        """Poll the device's health for ``channels``; :class:`BusError` on a fault (default: a plain ``read``)."""
        return self.read(channels)

    def health_cost_s(self, n: int) -> float:
        """Seconds one :meth:`health` of ``n`` channels takes on the wire (default 0: no device round trip)."""
        return 0.0


def checked_values(channels: Sequence[int], values: Sequence[float], limits: tuple[float, float],
                   refusal: str) -> list[float]:
    """The ``values`` of a ``write`` as floats, one per channel, each finite and inside ``limits``, else
    ``ValueError`` (``refusal``: what a value out of range is called, formatted with ``c``, ``v``, ``lo``, ``hi``)."""
    vals = [float(v) for v in values]
    if len(vals) != len(channels):
        raise ValueError(f"values: {len(vals)} values for {len(channels)} channels")
    lo, hi = limits
    for c, v in zip(channels, vals):
        if not (math.isfinite(v) and lo <= v <= hi):
            raise ValueError("values: " + refusal.format(c=c, v=v, lo=lo, hi=hi))
    return vals


__all__ = ["EXIT_FAULT", "BusError", "ServoBus", "checked_values"]
