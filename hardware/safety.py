"""The safety layer: the only way a policy's output reaches the servos.

:class:`SafeBus` wraps the robot's servo buses (:class:`facetwin.hardware.bus.ServoBus`, a dict bus name -> bus; the
``bus`` field of each motor in the :class:`facetwin.hardware.calibration.Calibration` says which) and passes every
command through the same steps:

| step | what happens | on failure |
|---|---|---|
| 1. check | ``ctrl`` must be 26 finite real numbers (any int/float dtype; bool, complex, object, str refused) | rejected: counted, logged, nothing written, the last safe command holds |
| 2. map | ``units = neutral + direction * scale * ctrl`` (the calibration's ``to_units``) | |
| 3. range clamp | into each motor's safe ``[min, max]`` (``"position"`` units: rounded to whole ticks inside it) | one log line per clamped motor, counted |
| 4. slew limit | each motor moves at most ``max_speed * min(dt, 1 / rate_hz)`` units from the last value sent (``dt``: time since the last write; the first command starts from the present position the bus reports, else neutral) | one log line per limited motor, counted |
| 5. write | one ``write`` per bus, channels in calibration order | :class:`BusError`: see "fault" below |

Every write of the layer (commands, watchdog moves, exit moves) goes through steps 3-5, so nothing outside the
calibrated range and no step above the slew limit reaches a bus (fuzz-tested with 100,000 adversarial outputs).

| event | reaction |
|---|---|
| no fresh command for ``watchdog_ms`` | hold: the last command stays (logged, ``stats.watchdog_holds``) |
| ... and ``relax_after_s`` more | move to neutral (slew-limited, aborted by a fresh command), then relax every motor (``stats.watchdog_relaxes``); a later command resumes from the present position |
| ``close()``, leaving the ``with`` block (also by an exception) | move to rest (the neutral face: every command 0 except the jaw closed; slew-limited, at most ``exit_timeout_s``), relax every motor, close the buses |
| SIGINT / SIGTERM (``handle_signals=True``; installed by ``open``, the previous handlers restored by ``close``) | raises ``KeyboardInterrupt`` / ``SystemExit(128 + signum)`` in the main thread (after the command being written reaches every bus), so the ``with`` block exits as above; further commands are refused |
| ``estop()`` (any thread) | relax every motor at once; commands raise :class:`SafetyError` until ``reset_estop()`` |
| health poll (every ``1 / health_hz`` s while commands flow, after the tick's write) | each bus's :meth:`~facetwin.hardware.bus.ServoBus.health` on its next few motors (as many as fit ``health_budget`` of a control period by the bus's ``health_cost_s``; the rest on the following polls): a dead servo, a dropped or corrupted reply, a servo's error status or hardware alert, a PCA9685 that is gone or has reset is a fault (below), found within :attr:`SafeBus.health_detect_s` |
| fault: a bus raises (:class:`BusError`, ``OSError``, ``TimeoutError``, any ``Exception`` of a driver) | the layer is faulted: the other buses move to neutral and every bus is asked to relax (a faulted serial chain's servos go limp where they are: the chain is not trusted with a move), then the error is raised as a :class:`BusError` naming the bus; further commands raise :class:`SafetyError` |

Where the pieces live: :class:`~facetwin.hardware.safety_config.SafetyConfig` sets the limits and timings (slew
limits, control rate, watchdog, exit timeout, signal handlers, health polls); the per-motor limits they give one
robot and the arithmetic of steps 1-4 are :class:`~facetwin.hardware.safety_limits.SafetyLimits`; how the health
polls are sized and how fast they find a fault (:attr:`SafeBus.health_detect_s`): :mod:`facetwin.hardware.health_poll`.

:class:`SafetyStats` counts ``commands``, ``sent``, ``rejected``, ``range_clamps``, ``slew_clamps`` (motor events,
also per motor), ``watchdog_holds``, ``watchdog_relaxes``, ``bus_errors``, ``estops``, ``signals`` and
``health_polls``.

>>> cal = Calibration.load("face-01.json")
>>> buses = {"pca9685@0x41": PCA9685Bus(0x41), "pca9685@0x42": PCA9685Bus(0x42)}
>>> with SafeBus(buses, cal, SafetyConfig(handle_signals=True)) as safe:
...     for ctrl in policy_outputs:                 # 30 Hz
...         safe.command(ctrl)                       # the units sent, or None if rejected
...         time.sleep(1 / 30)
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from facetwin.hardware.bus import BusError, ServoBus
from facetwin.hardware.calibration import Calibration
from facetwin.hardware.health_poll import HealthPolls
from facetwin.hardware.safety_config import SafetyConfig, finite_number
from facetwin.hardware.safety_limits import SafetyLimits

log = logging.getLogger(__name__)

_RUNNING = ("active", "hold", "relaxing", "relaxed")


class SafetyError(RuntimeError):
    """A command the safety layer refuses to pass: not open, emergency stop, faulted, or stopping."""


@dataclass
class SafetyStats:
    """Counters of one :class:`SafeBus` (clamps are motor events; ``*_by_motor`` in actuator order)."""

    commands: int = 0
    sent: int = 0
    rejected: int = 0
    range_clamps: int = 0
    slew_clamps: int = 0
    watchdog_holds: int = 0
    watchdog_relaxes: int = 0
    bus_errors: int = 0
    estops: int = 0
    signals: int = 0
    health_polls: int = 0
    range_clamps_by_motor: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    slew_clamps_by_motor: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def as_dict(self, names: Sequence[str] | None = None) -> dict:
        """Plain dict for logs and JSON (per-motor counts keyed by motor name when ``names`` is given)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.endswith("_by_motor")}
        for key in ("range_clamps_by_motor", "slew_clamps_by_motor"):
            counts = getattr(self, key).tolist()
            out[key] = dict(zip(names, counts)) if names is not None else counts
        return out


class SafeBus:
    """Every command to the robot passes here (see the module docstring).

    ``buses``: bus name -> :class:`ServoBus` (a single bus is keyed by its ``name``); every motor's ``bus`` must be
    there and share the calibration's units. ``clock`` / ``sleep`` (monotonic seconds) are injectable for tests.
    ``own_buses``: ``open``/``close`` open and close the buses too.
    """

    def __init__(self, buses: Mapping[str, ServoBus] | ServoBus, calibration: Calibration,
                 config: SafetyConfig | None = None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, own_buses: bool = True) -> None:
        if isinstance(buses, ServoBus):
            buses = {buses.name: buses}
        self.buses = dict(buses)
        self.calibration = calibration
        self.config = config or SafetyConfig()
        self._clock, self._sleep, self._own = clock, sleep, own_buses
        self._lim = SafetyLimits(self.buses, calibration, self.config)
        n = len(calibration.motors)
        self.stats = SafetyStats(range_clamps_by_motor=np.zeros(n, dtype=np.int64),
                                 slew_clamps_by_motor=np.zeros(n, dtype=np.int64))
        self.fault: BaseException | None = None
        self._last = self._lim.rest.copy()
        self._t_last: float | None = None
        self._fresh_t = 0.0
        self._gen = 0
        self._state = "closed"
        self._faulted: set[str] = set()
        self._current = ""  # the bus being called, named when it raises
        self._lock = threading.RLock()
        self._wd_stop = threading.Event()
        self._wd_thread: threading.Thread | None = None
        self._old_handlers: dict[int, object] = {}
        self._writing: int | None = None  # the thread inside the bus writes of _send
        self._deferred_signal: int | None = None
        self._health = HealthPolls(self.buses, self._lim.groups, self.config, self._lim.period)  # planned by open

    # ------------------------------------------------------------------------------------------ public
    @property
    def state(self) -> str:
        """``closed``, ``active``, ``hold``, ``relaxing``, ``relaxed``, ``estop``, ``faulted``, ``signalled``
        or ``stopping``."""
        return self._state

    @property
    def last_sent(self) -> np.ndarray:
        """(26,) the servo units last written (or the start position), actuator order."""
        return self._last.copy()

    @property
    def health_detect_s(self) -> float:
        """Worst-case seconds from a servo or board fault to the poll that finds it while streaming
        (:mod:`facetwin.hardware.health_poll`); ``inf`` without polling."""
        return self._health.detect_s

    @property
    def max_step(self) -> np.ndarray:
        """(26,) the slew limit per control period, servo units."""
        return self._lim.max_step

    def open(self) -> SafeBus:
        """Open the buses, read the present positions, start the watchdog and (optionally) the signal handlers."""
        with self._lock:
            if self._state != "closed":
                return self
            try:
                if self._own:
                    for bus in self.buses.values():
                        bus.open()
                self._read_present()
                self._health.plan()
            except BaseException:
                self._close_buses()
                raise
            self._state, self._faulted, self.fault = "active", set(), None
            self._health.next_t = self._clock()
            self._fresh_t = self._clock()
            self._t_last = None
        if self.config.watchdog_ms is not None:
            self._wd_stop.clear()
            self._wd_thread = threading.Thread(target=self._watchdog, name="facetwin-safety-watchdog", daemon=True)
            self._wd_thread.start()
        if self.config.handle_signals:
            self._install_signals()
        return self

    def command(self, ctrl) -> np.ndarray | None:
        """Send 26 normalized commands; returns the servo units written, or ``None`` when ``ctrl`` is rejected.

        Raises :class:`SafetyError` when the layer is not running (closed, estop, faulted, stopping) and re-raises
        a bus's :class:`BusError` after stopping cleanly.
        """
        with self._lock:
            self.stats.commands += 1
            if self._state not in _RUNNING:
                raise SafetyError(f"command refused: the safety layer is {self._state}"
                                  + (f" ({self.fault})" if self.fault is not None else ""))
            x = self._check(ctrl)
            if x is None:
                return None
            if self._state == "relaxed":
                log.info("fresh command after the watchdog relaxed the motors: resuming from the present position")
                self._guarded(self._read_present)
                self._t_last = None
            self._state = "active"
            self._gen += 1
            self._fresh_t = self._clock()
            self._guarded(self._send, self._lim.to_units(x))
            self.stats.sent += 1
            if self._health.due(self._fresh_t):
                self._guarded(self._poll_health)
            return self._last.copy()

    def estop(self) -> None:
        """Emergency stop: relax every motor now; commands are refused until :meth:`reset_estop`."""
        if self._state == "closed":
            log.warning("emergency stop on a closed safety layer: the motors are already relaxed")
            return
        prev, self._state = self._state, "estop"
        self.stats.estops += 1
        log.error("EMERGENCY STOP (was %s): relaxing every motor", prev)
        got = self._lock.acquire(timeout=0.5)
        if not got:
            log.error("emergency stop: a bus call is stuck; relaxing without the lock")
        try:
            self._relax_all()
        finally:
            if got:
                self._lock.release()

    def reset_estop(self) -> None:
        """Leave the emergency stop; the next command starts from the present position."""
        with self._lock:
            if self._state != "estop":
                raise SafetyError(f"reset_estop: not in an emergency stop (state {self._state})")
            self._guarded(self._read_present)
            self._t_last = None
            self._state = "active"
            self._fresh_t = self._clock()
            log.warning("emergency stop reset")

    def close(self) -> None:
        """Move to neutral (slew-limited, bounded time), relax every motor, close the buses; idempotent.

        Bus errors on the way are logged and counted (``self.fault``), never raised.
        """
        with self._lock:
            if self._state in ("closed", "stopping"):
                return
            prev, self._state = self._state, "stopping"
        self._wd_stop.set()
        if self._wd_thread is not None and self._wd_thread is not threading.current_thread():
            self._wd_thread.join()
        self._wd_thread = None
        with self._lock:
            try:
                if prev not in ("estop", "faulted", "relaxed"):
                    self._move_to_rest()
                if prev not in ("estop", "faulted"):
                    self._relax_all()
                self._close_buses()
            finally:
                self._restore_signals()
                self._state = "closed"
        log.info("safety layer closed: %s", self.stats.as_dict())

    def __enter__(self) -> SafeBus:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ steps
    def _check(self, ctrl) -> np.ndarray | None:
        """Step 1: a (26,) float array of finite values, or ``None`` (rejected, logged, counted)."""
        x, reason = self._lim.check(ctrl)
        if x is not None:
            return x
        self.stats.rejected += 1
        log.warning("rejected command: %s; holding the last safe command", reason)
        return None

    def _send(self, raw: np.ndarray) -> None:
        """Steps 3-5 for any target: range clamp, slew limit, one write per bus."""
        lim, last = self._lim, self._last
        target, ranged = lim.clamp(raw)
        now = self._clock()
        dt = lim.period if self._t_last is None else min(max(now - self._t_last, 0.0), lim.period)
        if dt > lim.period * (1 - 1e-9):  # a full period up to clock rounding
            dt = lim.period
        new, slew = lim.slew(target, last, dt)
        if self._faulted:  # motors of a failed bus are not written: no clamp events there
            dead = np.isin(lim.bus_index, [i for i, (name, _, _) in enumerate(lim.groups) if name in self._faulted])
            slew &= ~dead
            ranged &= ~dead
        if ranged.any():
            self._log_clamps("range", ranged, raw, new, self.stats.range_clamps_by_motor)
            self.stats.range_clamps += int(ranged.sum())
        if slew.any():
            self._log_clamps("slew", slew, target, new, self.stats.slew_clamps_by_motor)
            self.stats.slew_clamps += int(slew.sum())
        self._t_last = now
        self._writing = threading.get_ident()
        try:
            for name, idx, channels in lim.groups:
                if self._state == "estop":
                    return
                if name in self._faulted:
                    continue
                values = new[idx]
                self._current = name
                self.buses[name].write(channels, values.tolist())
                last[idx] = values
        finally:
            self._writing = None
        if self._deferred_signal is not None and threading.current_thread() is threading.main_thread():
            signum, self._deferred_signal = self._deferred_signal, None
            _raise_for(signum)

    def _log_clamps(self, kind: str, mask: np.ndarray, requested: np.ndarray, sent: np.ndarray,
                    counts: np.ndarray) -> None:
        counts += mask
        if not log.isEnabledFor(logging.WARNING):
            return
        lim = self._lim
        for i in np.flatnonzero(mask):
            if kind == "range":
                log.warning("range clamp %s: requested %.6g, sent %.6g (safe range [%g, %g])",
                            lim.names[i], requested[i], sent[i], lim.lo[i], lim.hi[i])
            else:
                log.warning("slew clamp %s: requested %.6g, sent %.6g (max %g units/s)",
                            lim.names[i], requested[i], sent[i], lim.speed[i])

    def _read_present(self) -> None:
        """Start position of the slew limit: what each bus reports (clipped into the safe range), else neutral."""
        lim = self._lim
        for name, idx, channels in lim.groups:
            self._current = name
            values = self.buses[name].read(channels)
            for i, v in zip(idx, values):
                pos = lim.rest[i] if v is None or not finite_number(v) else float(v)
                inside = float(np.clip(pos, lim.lo[i], lim.hi[i]))
                safe = float(lim.round(inside, i))
                if inside != pos:  # not the rounding to the bus step: a position really outside the range
                    log.warning("%s: present position %.6g outside the safe range [%g, %g]; starting from %g",
                                lim.names[i], pos, lim.lo[i], lim.hi[i], safe)
                self._last[i] = safe

    def _poll_health(self) -> None:
        """One health poll: each running bus's next motors (round robin); a fault raises (through ``_guarded``)."""
        self._health.advance(self._fresh_t)
        self.stats.health_polls += 1
        for name, chosen in self._health.batches(self._faulted):
            self._current = name
            bus = self.buses[name]
            getattr(bus, "health", bus.read)(chosen)

    # ------------------------------------------------------------------------------------------ stopping
    def _guarded(self, fn: Callable, *args) -> None:
        """Run a bus step; on any error a driver raises (:class:`BusError`, ``OSError``, ``TimeoutError``, a bug:
        ``TypeError`` ...) stop cleanly (neutral + relax on the other buses), fault, and raise it as a
        :class:`BusError` naming the bus (the original chained)."""
        try:
            fn(*args)
        except Exception as e:
            name = self._current
            self._on_fault(e, name)
            if isinstance(e, BusError):
                raise
            raise BusError(f"bus {name}: {type(e).__name__}: {e}") from e

    def _on_fault(self, e: BaseException, name: str) -> None:
        self.stats.bus_errors += 1
        self.fault = e
        self._state = "faulted"
        self._faulted.add(name)
        log.error("bus %s failed (%s): stopping; the other buses go to neutral and relax", name, e)
        self._move_to_rest()
        self._relax_all()

    def _move_to_rest(self, abort: Callable[[], bool] | None = None) -> bool:
        """Slew-limited moves to neutral at ``rate_hz``, at most ``exit_timeout_s``; False if aborted."""
        steps = max(1, math.ceil(self.config.exit_timeout_s * self.config.rate_hz))
        for _ in range(steps):
            wait = 0.0 if self._t_last is None else self._t_last + self._lim.period - self._clock()
            if wait > 0:
                self._sleep(wait)
            with self._lock:
                if self._state == "estop" or abort is not None and abort():
                    return False
                live = [i for name, idx, _ in self._lim.groups if name not in self._faulted for i in idx]
                if np.array_equal(self._last[live], self._lim.rest[live]):
                    return True
                try:
                    self._send(self._lim.rest)
                except Exception as e:  # whatever a driver raises, the other buses still go to neutral
                    self.stats.bus_errors += 1
                    self.fault = self.fault or e
                    self._faulted.add(self._current)
                    log.error("bus error while moving to neutral: %s", e)
        log.warning("neutral not reached within exit_timeout_s=%g s; relaxing anyway", self.config.exit_timeout_s)
        return True

    def _relax_all(self) -> None:
        for name, _, channels in self._lim.groups:
            try:
                self.buses[name].relax(channels)
            except Exception as e:  # whatever a driver raises, every other bus is still relaxed
                self.stats.bus_errors += 1
                self.fault = self.fault or e
                log.error("bus %s: relax failed: %s", name, e)

    def _close_buses(self) -> None:
        if not self._own:
            return
        for name, bus in self.buses.items():
            try:
                bus.close()
            except Exception as e:  # whatever a driver raises, every other bus is still closed
                self.fault = self.fault or e
                log.error("bus %s: close failed: %s", name, e)

    # ------------------------------------------------------------------------------------------ watchdog
    def _watchdog(self) -> None:
        hold_s = self.config.watchdog_ms / 1000.0
        relax_s = hold_s + self.config.relax_after_s
        poll = min(hold_s / 4.0, 0.01)
        while not self._wd_stop.wait(poll):
            with self._lock:
                idle = self._clock() - self._fresh_t
                if self._state == "active" and idle >= hold_s:
                    self._state = "hold"
                    self.stats.watchdog_holds += 1
                    log.warning("watchdog: no fresh command for %.0f ms: holding the last command", idle * 1000)
                if not (self._state == "hold" and idle >= relax_s):
                    continue
                self._state = "relaxing"
                gen = self._gen
                log.warning("watchdog: no fresh command for %.2f s: moving to neutral, then relaxing", idle)
            self._watchdog_relax(gen)

    def _watchdog_relax(self, gen: int) -> None:
        try:
            done = self._move_to_rest(abort=lambda: self._gen != gen or self._state != "relaxing")
            with self._lock:
                if not done or self._gen != gen or self._state != "relaxing":
                    return
                self._relax_all()
                self._state = "relaxed"
                self.stats.watchdog_relaxes += 1
        except BaseException as e:  # the watchdog thread must never die silently
            log.exception("watchdog: stop failed")
            self.fault = e

    # ------------------------------------------------------------------------------------------ signals
    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            log.warning("handle_signals: not the main thread; no SIGINT/SIGTERM handlers installed")
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)

    def _restore_signals(self) -> None:
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
        self._old_handlers = {}

    def _on_signal(self, signum: int, frame) -> None:
        self.stats.signals += 1
        name = signal.Signals(signum).name
        if self._state in ("stopping", "closed"):
            log.warning("%s while stopping: ignored", name)
            return
        log.warning("%s: stopping (neutral, then relax)", name)
        if self._state != "estop":
            self._state = "signalled"
        if self._writing == threading.get_ident():  # never between the buses of one command: raised after it
            self._deferred_signal = signum
            return
        _raise_for(signum)


def _raise_for(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


__all__ = ["SafeBus", "SafetyError", "SafetyStats"]
