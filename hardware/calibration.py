"""The calibration file of one physical robot: how each of the 26 normalized motor commands becomes servo units.

One JSON file per robot (written by ``facetwin calibrate``, read by the safety layer and ``facetwin deploy``),
versioned and validated on load: a missing or extra motor, an unknown field, a neutral outside the safe range,
``min >= max``, a bad direction or the wrong version are refused with the field named.

```json
{"version": 1, "robot": "face-01", "units": "us",
 "motors": [{"name": "lip_upper_raise_R", "bus": "pca9685@0x41", "channel": 0, "direction": 1,
             "neutral": 1500.0, "scale": 400.0, "min": 1000.0, "max": 2000.0, "latency_ms": 45.0}, ...]}
```

| field | meaning |
|---|---|
| ``version`` | :data:`CALIBRATION_VERSION` |
| ``robot`` | a name for the robot |
| ``units`` | ``"us"``: PCA9685 pulse width in microseconds; ``"position"``: serial bus servo position ticks |
| ``motors`` | exactly the 26 actuators of ``assets/data/actuators.csv``, in that order |
| ``name`` | the actuator name |
| ``bus`` | which bus the motor is on: ``"pca9685@0x41"`` (board address 0x40-0x7f, any spelling of the number: it is parsed once, :class:`BusAddress`, and written back as ``pca9685@0x41``), ``"serial"`` or ``"sim"`` |
| ``channel`` | PCA9685 channel 0-15, or the serial servo id 0-252; one motor per physical channel |
| ``direction`` | +1 or -1: the sign of the servo's motion for a positive command |
| ``neutral`` | servo units at normalized command 0 |
| ``scale`` | servo units per unit of normalized command (> 0): ``units = neutral + direction * scale * u`` |
| ``min``, ``max`` | the safe range in servo units (``min < neutral < max``), inside what the bus can take (:data:`BUS_LIMITS`: 500-2500 us on a PCA9685, 0-4095 ticks on a serial bus); nothing outside ever reaches the bus |
| ``latency_ms`` | measured command-to-motion delay, 0 to :data:`MAX_LATENCY_MS`; ``facetwin deploy`` commands the motor this much ahead |

``units`` must be the bus's: ``"us"`` on PCA9685 boards, ``"position"`` on ``serial`` and ``sim``. ``scale`` is at
most half the bus's range (a full command cannot ask for more than the servo can do).

>>> cal = Calibration.load("face-01.json")
>>> units = cal.to_units(ctrl)          # (26,) servo units, not clamped
>>> cal.clamp(units)                    # (26,) inside [min, max]
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CALIBRATION_VERSION = 1
UNITS = ("us", "position")
#: what each kind of bus can take, in its units: PCA9685 pulse widths (us), serial servo positions (ticks); the
#: twin (``sim``) takes any finite range
BUS_LIMITS = {"pca9685": (500.0, 2500.0), "serial": (0.0, 4095.0), "sim": (-math.inf, math.inf)}
#: the units of each kind of bus
BUS_UNITS = {"pca9685": "us", "serial": "position", "sim": "position"}
#: PCA9685 I2C addresses (7-bit; the six address pins select 0x40-0x7f)
PCA9685_ADDRESSES = range(0x40, 0x80)
#: the largest command-to-motion delay a calibration may claim (deploy buffers this much ahead)
MAX_LATENCY_MS = 500.0
_MOTOR_FIELDS = ("name", "bus", "channel", "direction", "neutral", "scale", "min", "max", "latency_ms")
_TOP_FIELDS = ("version", "robot", "units", "motors")


class CalibrationError(ValueError):
    """A calibration file or dict that cannot be used; the message names the field."""


@dataclass(frozen=True)
class BusAddress:
    """A parsed bus name: ``kind`` (``"pca9685"``, ``"serial"``, ``"sim"``) and, for a PCA9685 board, its I2C
    ``address``. Two spellings of one board (``pca9685@0x41``, ``PCA9685@0X41``, ``pca9685@65``) are one address;
    :attr:`name` is the one canonical spelling."""

    kind: str
    address: int | None = None

    @classmethod
    def parse(cls, text, where: str = "bus") -> BusAddress:
        if not isinstance(text, str):
            raise CalibrationError(f"{where}: must be a bus name such as 'pca9685@0x41', 'serial' or 'sim', got {text!r}")
        t = text.strip().lower()
        if t in ("serial", "sim"):
            return cls(t)
        kind, sep, addr = t.partition("@")
        if kind == "pca9685" and sep:
            try:
                a = int(addr, 0)
            except ValueError:
                raise CalibrationError(f"{where}: {text!r} has no valid I2C address (e.g. pca9685@0x41)") from None
            if a not in PCA9685_ADDRESSES:
                raise CalibrationError(f"{where}: PCA9685 address {text!r} is outside 0x40-0x7f")
            return cls("pca9685", a)
        raise CalibrationError(f"{where}: unknown bus {text!r}; use 'pca9685@0x41' (a board's I2C address), "
                               "'serial' or 'sim'")

    @property
    def name(self) -> str:
        return f"pca9685@0x{self.address:02x}" if self.kind == "pca9685" else self.kind

    @property
    def units(self) -> str:
        return BUS_UNITS[self.kind]


@dataclass(frozen=True)
class MotorCalibration:
    """One motor's mapping (see the module docstring table)."""

    name: str
    bus: str
    channel: int
    direction: int
    neutral: float
    scale: float
    min: float
    max: float
    latency_ms: float = 0.0

    def __post_init__(self) -> None:  # one spelling per bus (BusAddress.name), however it was written
        object.__setattr__(self, "bus", BusAddress.parse(self.bus, f"motors[{self.name}].bus").name)

    def to_units(self, u):
        """Normalized command(s) -> servo units (not clamped)."""
        return self.neutral + self.direction * self.scale * np.asarray(u, dtype=float)

    def to_command(self, units):
        """Servo units -> normalized command(s)."""
        return (np.asarray(units, dtype=float) - self.neutral) / (self.direction * self.scale)


def _column(field: str, doc: str) -> property:
    """A read-only (26,) float array of :class:`Calibration`: its motors' ``field`` in actuator order."""
    return property(lambda self: self._col(field), doc=doc)


@dataclass(frozen=True)
class Calibration:
    """The calibration of one robot: 26 :class:`MotorCalibration` in actuator order."""

    robot: str
    units: str
    motors: tuple[MotorCalibration, ...]
    version: int = CALIBRATION_VERSION

    def __post_init__(self) -> None:
        _validate(self)

    # ---------------------------------------------------------------------------------------- arrays
    @property
    def names(self) -> list[str]:
        return [m.name for m in self.motors]

    def _col(self, field: str) -> np.ndarray:
        return np.array([getattr(m, field) for m in self.motors], dtype=float)

    lo = _column("min", "(26,) safe minimum, servo units.")
    hi = _column("max", "(26,) safe maximum, servo units.")
    neutral = _column("neutral", "(26,) neutral, servo units.")
    latency_ms = _column("latency_ms", "(26,) latency, ms.")

    def to_units(self, ctrl) -> np.ndarray:
        """(..., 26) normalized commands -> servo units (not clamped)."""
        u = np.asarray(ctrl, dtype=float)
        if u.shape[-1:] != (len(self.motors),):
            raise ValueError(f"ctrl must end in {len(self.motors)} values, got shape {u.shape}")
        return self.neutral + self._col("direction") * self._col("scale") * u

    def to_command(self, units) -> np.ndarray:
        """(..., 26) servo units -> normalized commands."""
        x = np.asarray(units, dtype=float)
        return (x - self.neutral) / (self._col("direction") * self._col("scale"))

    def clamp(self, units) -> np.ndarray:
        """Servo units clipped to each motor's safe [min, max]."""
        return np.clip(np.asarray(units, dtype=float), self.lo, self.hi)

    # ---------------------------------------------------------------------------------------- files
    def to_dict(self) -> dict:
        return {"version": self.version, "robot": self.robot, "units": self.units,
                "motors": [dataclasses.asdict(m) for m in self.motors]}

    @classmethod
    def from_dict(cls, data: Mapping) -> Calibration:
        """Build and validate; :class:`CalibrationError` names the first bad field."""
        if not isinstance(data, Mapping):
            raise CalibrationError(f"a calibration is a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - set(_TOP_FIELDS))
        if unknown:
            raise CalibrationError(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(_TOP_FIELDS)}")
        for f in _TOP_FIELDS:
            if f not in data:
                raise CalibrationError(f"missing field {f!r}")
        if type(data["version"]) is not int or data["version"] != CALIBRATION_VERSION:
            raise CalibrationError(f"version: {data['version']!r}, this facetwin reads version {CALIBRATION_VERSION}")
        if not isinstance(data["robot"], str) or not data["robot"].strip():
            raise CalibrationError(f"robot: must be a non-empty name, got {data['robot']!r}")
        if not isinstance(data["units"], str) or data["units"] not in UNITS:
            raise CalibrationError(f"units: {data['units']!r}, choose one of {', '.join(UNITS)}")
        motors = data["motors"]
        if not isinstance(motors, Sequence) or isinstance(motors, (str, bytes)):
            raise CalibrationError("motors: must be a list of motor objects")
        out = []
        for i, m in enumerate(motors):
            where = f"motors[{i}]" + (f" ({m.get('name')})" if isinstance(m, Mapping) and "name" in m else "")
            if not isinstance(m, Mapping):
                raise CalibrationError(f"{where}: must be an object")
            unknown = sorted(set(m) - set(_MOTOR_FIELDS))
            if unknown:
                raise CalibrationError(f"{where}: unknown field(s) {', '.join(unknown)}")
            missing = [f for f in _MOTOR_FIELDS if f not in m and f != "latency_ms"]
            if missing:
                raise CalibrationError(f"{where}: missing field(s) {', '.join(missing)}")
            try:
                out.append(MotorCalibration(
                    name=str(m["name"]), bus=BusAddress.parse(m["bus"], f"{where}.bus").name,
                    channel=_int(m["channel"], f"{where}.channel"),
                    direction=_int(m["direction"], f"{where}.direction"),
                    neutral=_num(m["neutral"], f"{where}.neutral"), scale=_num(m["scale"], f"{where}.scale"),
                    min=_num(m["min"], f"{where}.min"), max=_num(m["max"], f"{where}.max"),
                    latency_ms=_num(m.get("latency_ms", 0.0), f"{where}.latency_ms"),
                ))
            except CalibrationError:
                raise
        return cls(robot=str(data["robot"]), units=str(data["units"]), motors=tuple(out), version=int(data["version"]))

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        from facetwin.files import load_json

        return load_json(path, "calibration file", cls.from_dict, error=CalibrationError)

    def save(self, path: str | Path) -> Path:
        """Write the JSON (atomically)."""
        from facetwin.files import atomic_write

        text = json.dumps(self.to_dict(), indent=1)
        return atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))

    def replace_motor(self, name: str, **changes) -> Calibration:
        """A copy with one motor's fields changed (validated)."""
        motors = tuple(dataclasses.replace(m, **changes) if m.name == name else m for m in self.motors)
        if name not in self.names:
            raise KeyError(f"unknown motor {name!r}")
        return dataclasses.replace(self, motors=motors)


def _num(v, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise CalibrationError(f"{where}: must be a finite number, got {v!r}")
    return float(v)


def _int(v, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)) or float(v) != int(v):
        raise CalibrationError(f"{where}: must be an integer, got {v!r}")
    return int(v)


def _validate(cal: Calibration) -> None:
    from facetwin.sim.actuators import actuator_names

    names = list(actuator_names())
    if cal.version != CALIBRATION_VERSION:
        raise CalibrationError(f"version: {cal.version!r}, this facetwin reads version {CALIBRATION_VERSION}")
    if cal.units not in UNITS:
        raise CalibrationError(f"units: {cal.units!r}, choose one of {', '.join(UNITS)}")
    got = [m.name for m in cal.motors]
    missing = [n for n in names if n not in got]
    if missing:
        raise CalibrationError(f"motors: missing motor(s) {', '.join(missing)}")
    extra = [n for n in got if n not in names]
    if extra:
        raise CalibrationError(f"motors: unknown motor(s) {', '.join(extra)}")
    if got != names:
        dup = sorted({n for n in got if got.count(n) > 1})
        if dup:
            raise CalibrationError(f"motors: repeated motor(s) {', '.join(dup)}")
        raise CalibrationError("motors: must be in actuator order (assets/data/actuators.csv)")
    if type(cal.version) is not int:
        raise CalibrationError(f"version: must be the integer {CALIBRATION_VERSION}, got {cal.version!r}")
    if not isinstance(cal.robot, str) or not cal.robot.strip():
        raise CalibrationError(f"robot: must be a non-empty name, got {cal.robot!r}")
    seen: dict[tuple[BusAddress, int], str] = {}
    for m in cal.motors:
        w = f"motors[{m.name}]"
        bus = BusAddress.parse(m.bus, f"{w}.bus")
        lo_hw, hi_hw = BUS_LIMITS[bus.kind]
        if bus.units != cal.units:
            raise CalibrationError(f"{w}.bus: {bus.name} takes units {bus.units!r}, the file says units {cal.units!r}")
        for f in ("neutral", "scale", "min", "max", "latency_ms"):
            v = getattr(m, f)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise CalibrationError(f"{w}.{f}: must be a finite number, got {v!r}")
        if not (lo_hw <= m.min and m.max <= hi_hw):
            raise CalibrationError(f"{w}: the range [{m.min}, {m.max}] {cal.units} is outside what {bus.name} can "
                                   f"take, [{lo_hw:g}, {hi_hw:g}]")
        if m.scale > (hi_hw - lo_hw) / 2:
            raise CalibrationError(f"{w}.scale: {m.scale} {cal.units} per unit command is more than {bus.name} can "
                                   f"move (at most {(hi_hw - lo_hw) / 2:g})")
        if m.latency_ms > MAX_LATENCY_MS:
            raise CalibrationError(f"{w}.latency_ms: {m.latency_ms} is more than {MAX_LATENCY_MS:g} ms; measure it "
                                   "again (`facetwin calibrate`)")
        if m.direction not in (-1, 1):
            raise CalibrationError(f"{w}.direction: must be +1 or -1, got {m.direction}")
        if not m.scale > 0:
            raise CalibrationError(f"{w}.scale: must be > 0, got {m.scale}")
        if not m.min < m.max:
            raise CalibrationError(f"{w}: min ({m.min}) must be < max ({m.max})")
        if not m.min <= m.neutral <= m.max:
            raise CalibrationError(f"{w}.neutral: {m.neutral} is outside the safe range [{m.min}, {m.max}]")
        if m.latency_ms < 0:
            raise CalibrationError(f"{w}.latency_ms: must be >= 0, got {m.latency_ms}")
        if bus.kind == "pca9685" and not 0 <= m.channel <= 15:
            raise CalibrationError(f"{w}.channel: a PCA9685 has channels 0-15, got {m.channel}")
        if not 0 <= m.channel <= 252:
            raise CalibrationError(f"{w}.channel: must be in 0..252, got {m.channel}")
        key = (bus, m.channel)
        if key in seen:
            raise CalibrationError(f"{w}.channel: {bus.name} channel {m.channel} is also {seen[key]}")
        seen[key] = m.name


def nominal_calibration(backend: str = "pca9685", robot: str = "facetwin-nominal") -> Calibration:
    """A nominal calibration (a starting point for ``facetwin calibrate`` and for dry runs).

    ``"pca9685"``: hobby servos, 1500 us at command 0, +-400 us over [-1, 1], safe range 1000-2000 us, the first 16
    motors on board 0x41 and the rest on 0x42 (as the physical robot). ``"serial"``: bus servos with 4096 ticks per
    turn, 2048 at command 0, +-512 ticks, safe range 1400-2700, ids 1-26. ``"sim"``: the ``"serial"`` numbers on
    the twin.
    """
    from facetwin.sim.actuators import actuator_names

    motors = []
    for i, name in enumerate(actuator_names()):
        if backend == "pca9685":
            motors.append(MotorCalibration(name=name, bus="pca9685@0x41" if i < 16 else "pca9685@0x42",
                                           channel=i % 16, direction=1, neutral=1500.0, scale=400.0, min=1000.0,
                                           max=2000.0, latency_ms=0.0))
        elif backend in ("serial", "sim"):
            motors.append(MotorCalibration(name=name, bus=backend, channel=i + 1, direction=1, neutral=2048.0,
                                           scale=512.0, min=1400.0, max=2700.0, latency_ms=0.0))
        else:
            raise ValueError(f"unknown backend {backend!r}; choose pca9685, serial or sim")
    return Calibration(robot=robot, units="us" if backend == "pca9685" else "position", motors=tuple(motors))


__all__ = ["BUS_LIMITS", "BUS_UNITS", "CALIBRATION_VERSION", "MAX_LATENCY_MS", "PCA9685_ADDRESSES", "UNITS",
           "BusAddress", "Calibration", "CalibrationError", "MotorCalibration", "nominal_calibration"]
