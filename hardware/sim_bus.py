"""The twin as the robot: a :class:`~facetwin.hardware.bus.ServoBus` that drives the simulated face, for dry runs
and for testing calibration.

:class:`SimBus` holds a hidden *true* calibration (a :class:`~facetwin.hardware.calibration.Calibration`: how servo
units map to the twin's normalized commands, and each motor's true ``latency_ms``) and owns a
:class:`~facetwin.sim.model.FaceModel` ("fast" variant by default). What a caller writes in servo units reaches the
twin's controls through that truth, after that motor's latency, exactly as a miscalibrated physical robot would
behave; :class:`SimCamera` watches it like the robot's camera. :func:`random_true_calibration` draws such a truth.

| method | what it does on the twin |
|---|---|
| ``write(channels, values)`` | goals in servo units; motor ``i`` gets ``u = (value - neutral) / (direction * scale)`` (true calibration, clipped to [-1, 1] like a servo at its end stop) ``latency_ms`` after the write |
| ``relax(channels)`` | the motor goes to its rest command (``jaw_open`` -1, all others 0), through the same delay |
| ``read(channels)`` | present positions in servo units: :meth:`FaceModel.motor_positions` through the true mapping |
| ``set_latency(channels, ms)`` | change those motors' delay (the calibration's reference twin simulates fractional delays with it) |
| ``advance(seconds)`` | steps the physics; time moves in whole physics substeps (1/90 s in "fast", 1/300 s in "full") |
| ``time`` | simulated seconds since the last :meth:`reset` |

Latency resolution: continuous, to first order. A goal that arrives inside a physics substep gets the substep the
time average of the servo's force over it (old command before the arrival, new after, each clamped to the force
range), through the command that gives that force in the present state; every substep is an ordinary step of the
twin (identical to ``FaceModel.step`` when nothing arrives mid-substep). Rejected: splitting the substep at the
arrival (the "fast" twin's contacts are sensitive to the step size: halving one substep moves a lip landmark by 0.4
mm for good) and averaging the command (wrong when the force saturates: a neck step then starts a whole substep
early). A fractional delay is still not exactly a time shift of a nonlinear response (lips in contact), which is why
the calibration simulates its reference steps at fractional delays too.

Channels are the true calibration's ``channel`` numbers (``nominal_calibration("sim")``: ids 1-26); the twin is one
bus, so the channels must be unique (a two-board PCA9685 calibration is refused). Motors never written, or relaxed,
hold the rest face. Writes, reads and relax need :meth:`open` (or ``with``); :meth:`close` relaxes every motor;
:meth:`advance` works either way (watch the face relax). :class:`~facetwin.hardware.bus.BusError` for an unknown
channel, a closed bus or a non-finite value.

| ``random_true_calibration`` parameter | default | drawn per motor |
|---|---|---|
| ``offset`` | 0.15 | true neutral = base neutral + U(-offset, offset) * base scale |
| ``gain`` | 0.2 | true scale = base scale * U(1 - gain, 1 + gain) |
| ``flip`` | 0.2 | probability that the servo is mounted reversed (direction * -1) |
| ``latency_ms`` | (20, 120) | true latency U(lo, hi) |

>>> truth = random_true_calibration(seed=3)                  # hidden from the caller under test
>>> with SimBus(truth) as bus:
...     cam = SimCamera(bus, noise_mm=0.1, seed=0)
...     bus.write([11], [2300.0])                                 # jaw_open is channel 11 in the "sim" layout
...     bus.advance(0.5)
...     landmarks = cam.read()                                    # (69, 3) mm, or None
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Sequence

import mujoco
import numpy as np

from facetwin.hardware.bus import BusError, ServoBus
from facetwin.hardware.calibration import Calibration, nominal_calibration
from facetwin.sim.model import GRAVITY, FaceModel


class SimBus(ServoBus):
    """The simulated face behind a servo bus (see the module docstring)."""

    name = "sim"

    def __init__(self, true: Calibration | None = None, *, variant: str = "fast", face: FaceModel | None = None):
        self.true = true if true is not None else nominal_calibration("sim")
        if not isinstance(self.true, Calibration):
            raise TypeError(f"true must be a Calibration, got {type(self.true).__name__}")
        self.units = self.true.units
        channels = [m.channel for m in self.true.motors]
        dup = sorted({c for c in channels if channels.count(c) > 1})
        if dup:
            raise ValueError(f"true calibration: channel(s) {dup} used by several motors; the twin is one bus, give "
                             "it a calibration with unique channels (e.g. nominal_calibration('sim'))")
        self._index = {c: i for i, c in enumerate(channels)}
        self.face = face if face is not None else FaceModel.load(variant)
        self._room = self.face.model.body("room").id
        self._dir_scale = np.array([m.direction * m.scale for m in self.true.motors])
        self._neutral = self.true.neutral
        self._latency_s = self.true.latency_ms / 1000.0  # a fresh array: set_latency leaves the truth alone
        self._open = False
        self.reset()

    # ---------------------------------------------------------------------------------------- state
    def reset(self) -> None:
        """The settled rest face, time 0, nothing in flight."""
        self.face.reset(self.face.rest_ctrl)
        self._cur = self.face.rest_ctrl.astype(float).copy()  # the delayed command each motor holds now
        self._events: list[tuple[float, int, int, float]] = []  # heap of (arrival time, seq, motor, command)
        self._seq = 0
        self._n = 0  # physics substeps since reset

    @property
    def dt(self) -> float:
        """Physics substep (s): the time resolution of :meth:`advance`."""
        return self.face.sim_dt

    @property
    def period(self) -> float:
        """Control period (s), 1/30."""
        return 1.0 / self.face.control_hz

    @property
    def time(self) -> float:
        return self._n * self.dt

    # ---------------------------------------------------------------------------------------- bus
    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        if self._open:
            self.relax(list(self._index))
        self._open = False

    def _motors(self, channels: Sequence[int]) -> list[int]:
        if not self._open:
            raise BusError("sim bus is not open")
        out = []
        for c in channels:
            if c not in self._index:
                raise BusError(f"sim bus: no motor on channel {c!r} (channels: {min(self._index)}..{max(self._index)})")
            out.append(self._index[c])
        return out

    def _schedule(self, motors: list[int], commands: np.ndarray) -> None:
        now = self.time
        for i, u in zip(motors, commands):
            heapq.heappush(self._events, (now + float(self._latency_s[i]), self._seq, i, float(u)))
            self._seq += 1

    def write(self, channels: Sequence[int], values: Sequence[float]) -> None:
        motors = self._motors(channels)
        x = np.asarray(values, dtype=float)
        if x.shape != (len(motors),):
            raise BusError(f"sim bus: {len(motors)} channels but values of shape {x.shape}")
        if not np.isfinite(x).all():
            raise BusError(f"sim bus: non-finite goal(s) {x.tolist()}")
        u = (x - self._neutral[motors]) / self._dir_scale[motors]
        self._schedule(motors, np.clip(u, -1.0, 1.0))

    def set_latency(self, channels: Sequence[int], latency_ms: float) -> None:
        """Change the delay of these motors (goals already in flight keep theirs)."""
        if not latency_ms >= 0:
            raise ValueError(f"latency_ms must be >= 0, got {latency_ms}")
        for i in self._motors(channels):
            self._latency_s[i] = latency_ms / 1000.0

    def read(self, channels: Sequence[int]) -> list[float | None]:
        motors = self._motors(channels)
        units = self._neutral + self._dir_scale * self.face.motor_positions()
        return [float(units[i]) for i in motors]

    def relax(self, channels: Sequence[int]) -> None:
        motors = self._motors(channels)
        self._schedule(motors, self.face.rest_ctrl[motors])

    # ---------------------------------------------------------------------------------------- physics
    def advance(self, seconds: float) -> None:
        """Step the twin ``seconds`` (rounded to whole physics substeps), delivering delayed goals on time."""
        if not seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        m, d, dt = self.face.model, self.face.data, self.dt
        for _ in range(round(seconds / dt)):
            t0 = self._n * dt
            ctrl = self._cur.copy()
            touched: dict[int, tuple[float, float]] = {}  # motor -> (force integral so far, segment start)
            while self._events and self._events[0][0] < t0 + dt * (1.0 - 1e-9):
                t, _, i, u = heapq.heappop(self._events)
                f = min(max((t - t0) / dt, 0.0), 1.0)
                if f == 0.0 and i not in touched:  # arrived by the start of the substep: an ordinary step
                    self._cur[i] = ctrl[i] = u
                    continue
                acc, start = touched.get(i, (0.0, 0.0))
                touched[i] = (acc + self._force(i, self._cur[i]) * (f - start), f)
                self._cur[i] = u
            for i, (acc, start) in touched.items():
                ctrl[i] = self._command_for(i, acc + self._force(i, self._cur[i]) * (1.0 - start))
            d.ctrl[:] = ctrl
            if self._n % self.face.substeps == 0:  # as FaceModel.step: gravity turns with the room once a period
                m.opt.gravity[:] = d.xmat[self._room].reshape(3, 3) @ GRAVITY
            mujoco.mj_step(m, d)
            self._n += 1

    def _force(self, i: int, u: float) -> float:
        """Actuator ``i``'s force at command ``u`` in the present state (affine servo, clamped to its force range)."""
        m, d = self.face.model, self.face.data
        b = m.actuator_biasprm[i]
        f = m.actuator_gainprm[i, 0] * u + b[0] + b[1] * d.actuator_length[i] + b[2] * d.actuator_velocity[i]
        lo, hi = m.actuator_forcerange[i]
        return float(min(max(f, lo), hi))

    def _command_for(self, i: int, force: float) -> float:
        """The command whose (unclamped) force is ``force`` in the present state."""
        m, d = self.face.model, self.face.data
        b = m.actuator_biasprm[i]
        bias = b[0] + b[1] * d.actuator_length[i] + b[2] * d.actuator_velocity[i]
        return float(np.clip((force - bias) / m.actuator_gainprm[i, 0], -1.0, 1.0))


class SimCamera:
    """The robot's camera on the twin: ``read() -> (69, 3)`` landmarks in mm (schema order) or ``None``.

    ``frame="room"`` (default) sees the face from the torso, as a camera on the robot's body does (the neck's
    motion shows); ``"head"`` removes the head pose. ``noise_mm``: Gaussian noise per coordinate; ``dropout``: the
    probability that a frame finds no face (``None``). :class:`facetwin.hardware.camera.FaceMeshCamera` offers the
    same ``read()`` for a real camera.
    """

    latency_s = 0.0  # the twin's camera sees the present; a real camera's own delay is subtracted by calibration

    def __init__(self, bus: SimBus, noise_mm: float = 0.1, seed: int | None = None, *, frame: str = "room",
                 dropout: float = 0.0):
        if noise_mm < 0:
            raise ValueError(f"noise_mm must be >= 0, got {noise_mm}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if frame not in ("room", "head"):
            raise ValueError(f"unknown frame {frame!r}; use 'room' or 'head'")
        self.bus, self.noise_mm, self.frame, self.dropout = bus, float(noise_mm), frame, float(dropout)
        self._rng = np.random.default_rng(seed)

    def read(self) -> np.ndarray | None:
        if self.dropout and self._rng.random() < self.dropout:
            return None
        lm = self.bus.face.landmarks_mm(self.frame)
        return lm + self._rng.normal(0.0, self.noise_mm, lm.shape) if self.noise_mm else lm.copy()

    def close(self) -> None:
        """Nothing to release (the interface of a real camera)."""


def random_true_calibration(seed: int | None = None, *, base: Calibration | None = None, offset: float = 0.15,
                            gain: float = 0.2, flip: float = 0.2,
                            latency_ms: tuple[float, float] = (20.0, 120.0)) -> Calibration:
    """A hidden "true" calibration around ``base`` (default ``nominal_calibration("sim")``); see the module table.

    Safe ``min``/``max`` are kept from ``base``; the neutral is drawn inside them.
    """
    base = base if base is not None else nominal_calibration("sim")
    if not (0 <= offset < 1 and 0 <= gain < 1 and 0 <= flip <= 1):
        raise ValueError(f"need 0 <= offset < 1, 0 <= gain < 1, 0 <= flip <= 1; got {offset}, {gain}, {flip}")
    lo, hi = latency_ms
    if not 0 <= lo <= hi:
        raise ValueError(f"latency_ms must be (lo, hi) with 0 <= lo <= hi, got {latency_ms}")
    rng = np.random.default_rng(seed)
    motors = []
    for m in base.motors:
        neutral = float(np.clip(m.neutral + rng.uniform(-offset, offset) * m.scale, m.min, m.max))
        motors.append(dataclasses.replace(
            m, neutral=round(neutral, 3), scale=round(m.scale * rng.uniform(1 - gain, 1 + gain), 3),
            direction=-m.direction if rng.random() < flip else m.direction,
            latency_ms=round(float(rng.uniform(lo, hi)), 3)))
    return dataclasses.replace(base, robot=f"sim-truth-{seed}", motors=tuple(motors))


__all__ = ["SimBus", "SimCamera", "random_true_calibration"]
