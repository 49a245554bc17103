"""``facetwin calibrate``: sweep each motor while the camera watches, and fit its calibration against the twin.

For every motor the routine asks one question: *which normalized command of the twin moves the face the way this
servo position does?* The twin answers with its own landmark response to normalized commands of the same motor
(precomputed on a reference :class:`~facetwin.hardware.sim_bus.SimBus` with the identity mapping and no latency);
the robot answers through its camera. One motor moves at a time, the others are relaxed (rest face).

| stage | robot (servo units, camera) | twin reference (normalized command) |
|---|---|---|
| 1. settle time | - | steps from rest to the far end of the sweep and across the whole sweep both ways; ``hold`` = the longest time until every landmark stays within 0.02 mm of its end pose, + 0.1 s, in [0.3, 1.5] s |
| 2. static sweep | staircase of ``levels`` goals ``start.neutral + start.direction * start.scale * c``, ``c`` in [-``sweep``, ``sweep``], clamped to the safe [min, max]; each held ``hold + max_latency``, then ``frames`` camera frames averaged | static response on a ``grid`` of commands in [-1, 1], each held ``hold`` from rest |
| 3. fit | displacement from the relaxed face of the landmarks the motor moves most (those >= 30 % of its largest, at most 12) | ``u = alpha + beta * c`` by least squares on the landmark displacements (coarse grid over alpha, beta, both signs, then ``scipy.optimize.least_squares``) |
| 4. latency | ``phases`` up and down steps between ``c = -sweep/2`` and ``+sweep/2``, camera frames every 1/30 s from an offset of ``k/phases`` of a period after the write | the same steps (the fitted commands), landmarks every physics substep, simulated with delays of 0, 1/4, 1/2, 3/4 substep |
| 5. delay | - | latency = the delay of the reference step response (and a free amplitude) that best fits all step samples (:func:`fit_delay`), searched in [0, ``max_latency_ms``] at 0.5 ms then refined by a parabola; minus the camera's own ``latency_s`` if it declares one |

From ``u = alpha + beta * c`` with ``c = (x - n0) / (d0 * s0)`` (``n0, d0, s0``: the start calibration):
``neutral = n0 - d0 * s0 * alpha / beta``, ``scale = s0 / |beta|``, ``direction = d0 * sign(beta)``. The safe
``min``/``max`` (and bus, channel) are kept from ``start``; nothing outside them is ever written. A motor that does not
move the landmarks (largest displacement below 0.3 mm), whose fit leaves its neutral outside the safe range, or that
yields fewer than 3 usable levels keeps its start values and is marked failed in the report.

Why not ``mujoco.sysid``: MuJoCo 4.0's ``mujoco.sysid`` identifies *model* parameters (``MjSpec`` modifiers, gains,
inertias) from sensor time series by rollouts, and needs the ``mujoco[sysid]`` extra (absl, colorama; not installed
here). The unknowns here live outside the model: a 2-parameter affine map per motor (linear least squares in
disguise) and a pure delay (a 1-D search), which the table above solves in milliseconds per motor.

Recovery on the twin with a hidden truth (:func:`~facetwin.hardware.sim_bus.random_true_calibration`: neutral offset
+-0.15 of a command = +-77 units, gain +-20 %, 20 % direction flips, latency 20-120 ms; camera noise 0.1 mm per
coordinate), defaults, all 26 motors, seeds 1-5 (``facetwin calibrate --backend sim --seed N``), recovered - true:

| | neutral (units; nominal scale 512/command) | scale | direction | latency |
|---|---|---|---|---|
| median abs error | 1.4 | 0.30 % | - | 0.21 ms |
| 95th percentile | 7.0 | 1.40 % | - | 0.85 ms |
| worst of 130 motors | 9.3 (an eye_pitch; brows, eyes, eyelids: 2-9; lips and jaw <= 5.9; neck <= 0.2) | 1.71 % | 130/130 right (15 flipped) | 1.24 ms |

One 26-motor run: 381 s of robot time (what it takes on the real robot), 70-75 s wall on one core for the twin.
The errors come from the camera noise on small landmark motions (brows, eyes, eyelids: about 3 mm at the sweep's
ends); the sub-millisecond latency errors from interpolating between the simulated delay phases.

>>> from facetwin.hardware.sim_bus import SimBus, SimCamera, random_true_calibration
>>> with SimBus(random_true_calibration(seed=1)) as bus:
...     cal, report = calibrate(bus, SimCamera(bus, seed=1), start=nominal_calibration("sim"), motors=["jaw_open"])
>>> print(report.markdown(bus.true))

CLI: ``facetwin calibrate --backend sim|pca9685|serial [--port PORT] --out calib.json [--motors a,b] [--seed N]``
(:mod:`facetwin.cli.robot`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from facetwin.hardware.bus import ServoBus
from facetwin.hardware.calibration import Calibration, CalibrationError, MotorCalibration, nominal_calibration

SWEEP = 0.6  # staircase half-width, in start-calibration commands (conservative: +-0.6 of the nominal stroke)
LEVELS = 9
FRAMES = 4  # camera frames averaged per level
PHASES = 4  # latency steps per direction, frame sampling offset by 1/PHASES of a period each
GRID = 21  # reference commands in [-1, 1]
REF_PHASES = 4  # reference step responses simulated at delays of 0, 1/4, 1/2, 3/4 of a physics substep
MAX_LATENCY_MS = 200.0
MIN_MOTION_MM = 0.3
SETTLE_MM = 0.02  # "settled": every landmark within this of its end pose (below the averaged camera noise)
TOP_LANDMARKS = 12
PERIOD = 1.0 / 30.0


# ---------------------------------------------------------------------------------------------------- report
@dataclass(frozen=True)
class MotorResult:
    """What the routine found for one motor (servo units of the start calibration)."""

    name: str
    ok: bool
    message: str  # why the start values were kept ("" when ok)
    neutral: float
    scale: float
    direction: int
    latency_ms: float
    fit_rms_mm: float  # static fit residual, RMS per landmark coordinate
    step_rms_mm: float  # latency fit residual, RMS per landmark coordinate
    amplitude_mm: float  # largest landmark displacement seen in the sweep
    hold_s: float
    landmarks: tuple[int, ...]  # MediaPipe ids of the landmarks used


@dataclass
class CalibrationReport:
    """Per-motor results, simulated/robot seconds spent and wall seconds."""

    motors: list[MotorResult]
    robot_seconds: float
    wall_seconds: float

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.motors if not r.ok]

    def errors(self, true: Calibration) -> list[dict]:
        """Recovered minus true, per motor: neutral (servo units), scale (%), direction right, latency (ms)."""
        truth = {m.name: m for m in true.motors}
        out = []
        for r in self.motors:
            t = truth[r.name]
            out.append({"name": r.name, "ok": r.ok, "neutral": r.neutral - t.neutral,
                        "scale_pct": 100.0 * (r.scale / t.scale - 1.0), "direction": r.direction == t.direction,
                        "latency_ms": r.latency_ms - t.latency_ms})
        return out

    def markdown(self, true: Calibration | None = None) -> str:
        """One table row per motor; with ``true``, also the true values and the errors."""
        head = "| motor | neutral | scale | dir | latency ms | fit rms mm | step rms mm | moved mm | note |"
        if true is not None:
            head = ("| motor | neutral (true) | scale (true) | dir (true) | latency ms (true) | d neutral | d scale % "
                    "| d latency ms | fit rms mm | note |")
        lines = [head, "|" + "---|" * (head.count("|") - 1)]
        truth = {m.name: m for m in true.motors} if true is not None else {}
        for r in self.motors:
            note = "" if r.ok else f"FAILED: {r.message}"
            if true is None:
                lines.append(f"| {r.name} | {r.neutral:.1f} | {r.scale:.1f} | {r.direction:+d} | {r.latency_ms:.1f} | "
                             f"{r.fit_rms_mm:.3f} | {r.step_rms_mm:.3f} | {r.amplitude_mm:.1f} | {note} |")
            else:
                t = truth[r.name]
                lines.append(
                    f"| {r.name} | {r.neutral:.1f} ({t.neutral:.1f}) | {r.scale:.1f} ({t.scale:.1f}) | "
                    f"{r.direction:+d} ({t.direction:+d}) | {r.latency_ms:.1f} ({t.latency_ms:.1f}) | "
                    f"{r.neutral - t.neutral:+.2f} | {100 * (r.scale / t.scale - 1):+.2f} | "
                    f"{r.latency_ms - t.latency_ms:+.2f} | {r.fit_rms_mm:.3f} | {note} |")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"robot_seconds": self.robot_seconds, "wall_seconds": self.wall_seconds,
                "motors": [dataclasses.asdict(r) for r in self.motors]}


# ---------------------------------------------------------------------------------------------------- the twin
def identity_calibration() -> Calibration:
    """The "sim" layout with servo units = normalized commands (neutral 0, scale 1, range [-1, 1], no latency)."""
    nom = nominal_calibration("sim", robot="identity")
    motors = tuple(dataclasses.replace(m, neutral=0.0, scale=1.0, min=-1.0, max=1.0, direction=1, latency_ms=0.0)
                   for m in nom.motors)
    return dataclasses.replace(nom, motors=motors)


class TwinReference:
    """The nominal twin's landmark responses to normalized commands of one motor at a time (no noise, no delay)."""

    def __init__(self, variant: str = "fast", frame: str = "room"):
        from facetwin.hardware.sim_bus import SimBus

        self.bus = SimBus(identity_calibration(), variant=variant)
        self.bus.open()
        self.frame = frame
        self.rest = self._landmarks()

    def _landmarks(self) -> np.ndarray:
        return self.bus.face.landmarks_mm(self.frame).copy()

    def _trace(self, seconds: float) -> np.ndarray:
        """Landmarks at every physics substep for ``seconds`` (the first one now)."""
        out = [self._landmarks()]
        for _ in range(round(seconds / self.bus.dt)):
            self.bus.advance(self.bus.dt)
            out.append(self._landmarks())
        return np.array(out)

    def settle_time(self, motor: int, u: float, u_from: float | None = None, horizon: float = 1.5) -> float:
        """Seconds after a step to ``u`` (from rest, or from ``u_from`` held ``horizon`` s) until every landmark
        stays within ``SETTLE_MM`` of its end pose."""
        self.bus.reset()
        if u_from is not None:
            self.bus.write([motor + 1], [u_from])
            self.bus.advance(horizon)
        self.bus.write([motor + 1], [u])
        tr = self._trace(horizon)
        off = np.linalg.norm(tr - tr[-1], axis=2).max(axis=1) > SETTLE_MM
        return float(np.flatnonzero(off)[-1] + 1) * self.bus.dt if off.any() else 0.0

    def static(self, motor: int, grid: np.ndarray, hold: float) -> np.ndarray:
        """(len(grid), N, 3) displacement from the rest face after holding each command ``hold`` s from rest."""
        out = []
        for u in grid:
            self.bus.reset()
            self.bus.write([motor + 1], [float(u)])
            self.bus.advance(hold)
            out.append(self._landmarks() - self.rest)
        return np.array(out)

    def steps(self, motor: int, u_a: float, u_b: float, hold: float, window: float,
              phases: int = REF_PHASES) -> tuple[np.ndarray, float]:
        """Step responses a -> b and b -> a (each settled ``hold`` first), simulated with a delay of ``p / phases``
        of a physics substep for p = 0 .. phases - 1 (the twin's sub-substep delay is not an exact time shift of its
        response, see :mod:`facetwin.hardware.sim_bus`); a last phase = phase 0 one substep later.

        Returns ``(r, dt)``: ``r`` (phases + 1, 2, n, N, 3) displacement from the pre-step pose, sample k at ``k * dt``
        after the write, for ``window`` s."""
        ch, dt, out = motor + 1, self.bus.dt, []
        for p in range(phases):
            self.bus.reset()
            self.bus.set_latency([ch], 1000.0 * dt * p / phases)
            self.bus.write([ch], [u_a])
            self.bus.advance(hold)
            pair = []
            for u in (u_b, u_a):
                self.bus.write([ch], [u])
                tr = self._trace(window)
                pair.append(tr - tr[0])
                self.bus.advance(max(0.0, hold - window))
            out.append(pair)
        self.bus.set_latency([ch], 0.0)
        r = np.array(out)
        late = np.concatenate([np.zeros_like(r[:1, :, :1]), r[:1, :, :-1]], axis=2)
        return np.concatenate([r, late]), dt


# ---------------------------------------------------------------------------------------------------- clock
class _Clock:
    """Simulated time when the bus is the twin (``advance``/``time``), wall time otherwise."""

    def __init__(self, buses: Sequence[ServoBus]):
        self.sim = next((b for b in buses if hasattr(b, "advance")), None)
        self._t0 = time.perf_counter()

    def now(self) -> float:
        return self.sim.time if self.sim is not None else time.perf_counter() - self._t0

    def wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self.sim is not None:
            self.sim.advance(seconds)
        else:
            time.sleep(seconds)

    def wait_until(self, t: float) -> None:
        self.wait(t - self.now())


# ---------------------------------------------------------------------------------------------------- fitting
def fit_static(c: np.ndarray, D: np.ndarray, grid: np.ndarray, R: np.ndarray) -> tuple[float, float, float]:
    """Least-squares ``u = alpha + beta * c`` so that the reference response ``R(u)`` (``grid`` -> (G, F),
    shape-preserving cubic interpolation, commands clipped to [-1, 1] like the twin) matches the measured ``D``
    (K, F) at nominal commands ``c`` (K,). Returns ``(alpha, beta, rms)``."""
    from scipy.interpolate import PchipInterpolator
    from scipy.optimize import least_squares

    ref = PchipInterpolator(grid, R, axis=0)
    fine = np.linspace(-1.0, 1.0, 801)
    rf = ref(fine)
    alphas = np.linspace(-0.6, 0.6, 49)
    mags = np.geomspace(0.4, 2.5, 40)
    betas = np.concatenate([-mags[::-1], mags])
    u = np.clip(alphas[:, None, None] + betas[None, :, None] * c[None, None, :], -1.0, 1.0)
    idx = np.rint((u + 1.0) * 400.0).astype(int)
    cost = ((rf[idx] - D) ** 2).sum(axis=(2, 3))
    ia, ib = np.unravel_index(np.argmin(cost), cost.shape)

    def resid(p: np.ndarray) -> np.ndarray:
        return (ref(np.clip(p[0] + p[1] * c, -1.0, 1.0)) - D).ravel()

    sol = least_squares(resid, [alphas[ia], betas[ib]], x_scale=[0.05, 0.05], method="lm")
    rms = float(np.sqrt(np.mean(sol.fun ** 2)))
    return float(sol.x[0]), float(sol.x[1]), rms


def fit_delay(t: np.ndarray, M: np.ndarray, which: np.ndarray, r: np.ndarray, dt: float,
              max_delay: float) -> tuple[float, float]:
    """Delay ``tau`` (s) so that ``M[k] ~ g * ref(which[k], t[k]; tau)`` for one free amplitude ``g``.

    ``t`` (n,) sample times after the write, ``M`` (n, F) displacement from the pre-step pose, ``which`` (n,) the
    step. ``r`` (P + 1, S, m, F): the reference responses simulated with delays ``p / P`` of ``dt`` (see
    :meth:`TwinReference.steps`), sampled every ``dt`` from the write. For ``tau = j * dt + phi * dt`` the prediction
    is phase ``phi`` (linear between the two nearest simulated phases) shifted by ``j`` samples (linear in time
    between samples). Searched on a 0.5 ms grid in [0, ``max_delay``], refined by a parabola. Returns
    ``(tau, rms)``."""
    P = r.shape[0] - 1
    taus = np.arange(0.0, max_delay + 1e-9, 0.0005)
    j = np.floor(taus / dt)
    ph = (taus / dt - j) * P
    p0 = np.minimum(np.floor(ph).astype(int), P - 1)
    w = (ph - p0)[:, None, None]
    x = (t[None, :] - j[:, None] * dt) / dt  # (T, n) fractional sample index in the phase references
    i0 = np.clip(np.floor(x).astype(int), 0, r.shape[2] - 1)
    i1 = np.clip(i0 + 1, 0, r.shape[2] - 1)
    f = np.clip(x - np.floor(x), 0.0, 1.0)[..., None]
    s = which[None, :]

    def at(p: np.ndarray) -> np.ndarray:
        pp = p[:, None]
        return r[pp, s, i0] * (1 - f) + r[pp, s, i1] * f

    pred = at(p0) * (1 - w) + at(p0 + 1) * w
    pred[x < 0] = 0.0
    mp = (pred * M[None]).sum(axis=(1, 2))
    pp = (pred ** 2).sum(axis=(1, 2))
    sse = (M ** 2).sum() - np.where(pp > 0, mp ** 2 / np.maximum(pp, 1e-12), 0.0)
    k = int(np.argmin(sse))
    tau = taus[k]
    if 0 < k < len(taus) - 1:
        a, b, c = sse[k - 1], sse[k], sse[k + 1]
        den = a - 2 * b + c
        if den > 0:
            tau += 0.5 * (a - c) / den * (taus[1] - taus[0])
    return float(tau), float(np.sqrt(max(sse[k], 0.0) / M.size))


# ---------------------------------------------------------------------------------------------------- routine
def _resolve_buses(bus: ServoBus | Mapping[str, ServoBus], start: Calibration, names: list[str]) -> dict[str, ServoBus]:
    buses = dict(bus) if isinstance(bus, Mapping) else {bus.name: bus}
    for m in start.motors:
        if m.name in names and m.bus not in buses:
            raise CalibrationError(f"motors[{m.name}].bus: {m.bus!r} but the buses given are {sorted(buses)}")
        if m.name in names and buses[m.bus].units != start.units:
            raise CalibrationError(f"units: the start calibration is in {start.units!r} but bus {m.bus!r} takes "
                                   f"{buses[m.bus].units!r}")
    return buses


def calibrate(bus: ServoBus | Mapping[str, ServoBus], camera, *, start: Calibration,
              motors: Sequence[str] | None = None, progress: bool = True, sweep: float = SWEEP,
              levels: int = LEVELS, frames: int = FRAMES, phases: int = PHASES,
              max_latency_ms: float = MAX_LATENCY_MS, variant: str = "fast",
              reference: TwinReference | None = None) -> tuple[Calibration, CalibrationReport]:
    """Sweep each motor of ``motors`` (default all 26) and fit its calibration (see the module docstring).

    ``bus``: one bus, or ``{bus name: bus}`` for motors on several (two PCA9685 boards); buses must be open.
    ``camera``: anything with ``read() -> (69, 3) landmarks_mm or None``; its ``frame`` attribute (``"room"`` or
    ``"head"``, default ``"head"`` as :class:`facetwin.hardware.camera.FaceMeshCamera`) picks the twin's frame to
    compare with, and a ``latency_s`` attribute is subtracted from the measured delays. ``start``: the starting
    calibration (its safe ranges bound every command). ``reference``: a :class:`TwinReference` to reuse (default: a
    new one on the ``variant`` twin). Returns the calibration (``start`` with the fitted motors replaced) and the
    report. Each motor is relaxed when its turn ends, also when an error interrupts the routine.
    """
    from tqdm import tqdm

    names = list(start.names if motors is None else motors)
    unknown = [n for n in names if n not in start.names]
    if unknown:
        raise ValueError(f"motors: unknown motor(s) {', '.join(unknown)}; see facetwin.sim.actuator_names()")
    if not 0 < sweep <= 1:
        raise ValueError(f"sweep must be in (0, 1], got {sweep}")
    if levels < 3 or frames < 1 or phases < 1:
        raise ValueError(f"need levels >= 3, frames >= 1, phases >= 1; got {levels}, {frames}, {phases}")
    if not max_latency_ms > 0:
        raise ValueError(f"max_latency_ms must be > 0, got {max_latency_ms}")
    buses = _resolve_buses(bus, start, names)
    ref = reference if reference is not None else TwinReference(variant, getattr(camera, "frame", "head"))
    clock = _Clock(list(buses.values()))
    t_robot, t_wall = clock.now(), time.perf_counter()
    results: dict[str, MotorResult] = {}
    for name in tqdm(names, desc="calibrate", unit="motor", disable=not progress):
        m = start.motors[start.names.index(name)]
        try:
            results[name] = _calibrate_motor(m, start.names.index(name), buses[m.bus], camera, ref, clock,
                                             sweep=sweep, levels=levels, frames=frames, phases=phases,
                                             max_latency=max_latency_ms / 1000.0)
        finally:
            buses[m.bus].relax([m.channel])
    cal = start
    for r in results.values():
        if r.ok:
            cal = cal.replace_motor(r.name, neutral=round(r.neutral, 3), scale=round(r.scale, 3),
                                    direction=r.direction, latency_ms=round(r.latency_ms, 2))
    report = CalibrationReport(motors=list(results.values()), robot_seconds=clock.now() - t_robot,
                               wall_seconds=time.perf_counter() - t_wall)
    return cal, report


def _mean_frames(camera, clock: _Clock, n: int) -> np.ndarray | None:
    """Average of ``n`` camera frames one period apart (frames without a face are skipped)."""
    got = []
    for k in range(n):
        if k:
            clock.wait(PERIOD)
        lm = camera.read()
        if lm is not None:
            got.append(np.asarray(lm, dtype=float))
    return np.mean(got, axis=0) if got else None


def _calibrate_motor(m: MotorCalibration, i: int, bus: ServoBus, camera, ref: TwinReference, clock: _Clock, *,
                     sweep: float, levels: int, frames: int, phases: int, max_latency: float) -> MotorResult:
    lo, hi = m.min, m.max

    def goal(c: float) -> float:  # start-calibration command -> servo units, never outside the safe range
        return float(np.clip(m.neutral + m.direction * m.scale * c, lo, hi))

    def write(x: float) -> None:
        if not lo <= x <= hi:  # goal() clamps; this guards the invariant against future edits
            raise RuntimeError(f"{m.name}: goal {x} outside the safe range [{lo}, {hi}], not sent")
        bus.write([m.channel], [x])

    def failed(msg: str, **kw) -> MotorResult:
        base = dict(neutral=m.neutral, scale=m.scale, direction=m.direction, latency_ms=m.latency_ms,
                    fit_rms_mm=float("nan"), step_rms_mm=float("nan"), amplitude_mm=0.0, hold_s=hold, landmarks=())
        return MotorResult(name=m.name, ok=False, message=msg, **{**base, **kw})

    # 1. how long this motor takes to settle (on the twin), then the reference static response
    rest_u = float(ref.bus.face.rest_ctrl[i])
    settle = max(ref.settle_time(i, sweep if rest_u <= 0 else -sweep), ref.settle_time(i, sweep, -sweep),
                 ref.settle_time(i, -sweep, sweep))
    hold = float(np.clip(settle + 0.1, 0.3, 1.5))
    grid = np.linspace(-1.0, 1.0, GRID)
    R = ref.static(i, grid, hold)  # (G, N, 3)
    moved = np.linalg.norm(R, axis=2).max(axis=0)
    sel = np.argsort(moved)[::-1][:TOP_LANDMARKS]
    sel = sel[moved[sel] >= 0.3 * moved[sel[0]]]
    ids = tuple(int(ref.bus.face.landmark_ids[j]) for j in sel)
    robot_hold = hold + max_latency

    # 2. the robot: relaxed pose, then the staircase
    bus.relax([m.channel])
    clock.wait(robot_hold)
    rest = _mean_frames(camera, clock, frames)
    if rest is None:
        return failed("the camera found no face at rest")
    cs = np.linspace(-sweep, sweep, levels)
    xs, D = [], []
    for c in cs:
        x = goal(c)
        write(x)
        clock.wait(robot_hold)
        lm = _mean_frames(camera, clock, frames)
        if lm is not None:
            xs.append(x)
            D.append((lm - rest)[sel].ravel())
    if len(xs) < 3:
        return failed(f"only {len(xs)} levels with a face in view", landmarks=ids)
    D = np.array(D)
    amplitude = float(np.linalg.norm(D.reshape(len(xs), -1, 3), axis=2).max())
    if amplitude < MIN_MOTION_MM:
        hint = " (this camera removes the head pose: the neck needs one that sees it)" if ref.frame == "head" else ""
        return failed(f"the landmarks moved {amplitude:.2f} mm (< {MIN_MOTION_MM} mm): motor not responding?{hint}",
                      amplitude_mm=amplitude, landmarks=ids)

    # 3. fit u = alpha + beta * c, c = the start calibration's command of what was actually written
    c_meas = (np.array(xs) - m.neutral) / (m.direction * m.scale)
    alpha, beta, rms = fit_static(c_meas, D, grid, R[:, sel].reshape(len(grid), -1))
    neutral = m.neutral - m.direction * m.scale * alpha / beta
    scale = m.scale / abs(beta)
    direction = int(m.direction * np.sign(beta))
    common = dict(fit_rms_mm=rms, amplitude_mm=amplitude, hold_s=hold, landmarks=ids)
    if not lo <= neutral <= hi:
        return failed(f"fitted neutral {neutral:.1f} is outside the safe range [{lo}, {hi}]", **common)

    # 4. latency: steps between c = -sweep/2 and +sweep/2, frames dithered over the period
    x_a, x_b = goal(-sweep / 2), goal(sweep / 2)
    u_a, u_b = (alpha + beta * (np.array([x_a, x_b]) - m.neutral) / (m.direction * m.scale)).clip(-1, 1)
    window = robot_hold
    r, dt = ref.steps(i, float(u_a), float(u_b), hold, window)
    r = r[:, :, :, sel].reshape(*r.shape[:3], -1)
    ts, Ms, which = _film_steps(camera, clock, write, sel, x_a, x_b, phases=phases, settle=robot_hold, window=window)
    if len(ts) < 4:
        return failed(f"only {len(ts)} step frames with a face in view", **common)
    tau, step_rms = fit_delay(np.array(ts), np.array(Ms), np.array(which), r, dt, max_latency)
    latency_ms = max(0.0, 1000.0 * (tau - float(getattr(camera, "latency_s", 0.0) or 0.0)))
    return MotorResult(name=m.name, ok=True, message="", neutral=float(neutral), scale=float(scale),
                       direction=direction, latency_ms=latency_ms, step_rms_mm=step_rms, **common)



def _film_steps(camera, clock: _Clock, write: Callable[[float], None], sel: np.ndarray, x_a: float, x_b: float, *,
                phases: int, settle: float, window: float) -> tuple[list[float], list[np.ndarray], list[int]]:
    """Stage 4 on the robot: from ``x_a`` (held ``settle`` s), ``phases`` steps to ``x_b`` and back, each filmed for
    ``window`` s from ``k / phases`` of a period after its write (``k``: the step's phase). Returns per frame: the
    time since the write, the ``sel`` landmarks' displacement from the pose before the step, and 0 (to ``x_b``) or 1
    (back to ``x_a``)."""
    ts, Ms, which = [], [], []
    write(x_a)
    clock.wait(settle)
    for k in range(phases):
        for s, x in enumerate((x_b, x_a)):
            pre = _mean_frames(camera, clock, 2)
            t_w = clock.now()
            write(x)
            clock.wait(k * PERIOD / phases)
            while clock.now() - t_w <= window:
                lm = camera.read()
                if lm is not None and pre is not None:
                    ts.append(clock.now() - t_w)
                    Ms.append((np.asarray(lm, dtype=float) - pre)[sel].ravel())
                    which.append(s)
                clock.wait(PERIOD)
    return ts, Ms, which


__all__ = ["CalibrationReport", "MotorResult", "TwinReference", "calibrate",
           "fit_delay", "fit_static", "identity_calibration"]
