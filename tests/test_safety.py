"""The safety layer: clamps, slew limit, rejection, watchdog, exits, faults, and a 100k-command fuzz at the bus."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
import time

import numpy as np
import pytest

from facetwin.hardware.bus import BusError, ServoBus
from facetwin.hardware.calibration import Calibration, nominal_calibration
from facetwin.hardware.emulator import DynamixelEmulator
from facetwin.hardware.pca9685 import LED0_ON_L, FakeI2C, PCA9685Bus, frame_period_us, prescale_for
from facetwin.hardware.safety import SafeBus, SafetyError
from facetwin.hardware.safety_config import DEFAULT_SPEED, SafetyConfig
from facetwin.hardware.serial_bus import DynamixelBus
from facetwin.sim.actuators import rest_controls

RATE = 30.0
PERIOD = 1.0 / RATE
LOGGER = "facetwin.hardware.safety"


class FakeClock:
    """Monotonic seconds that move only when told (``sleep`` advances them)."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


class RecordingBus(ServoBus):
    """Records every call; ``fail_on_write=k`` raises BusError on the k-th write (1-based), then on every call."""

    def __init__(self, name: str, units: str = "us", clock=time.monotonic, present: dict | None = None,
                 fail_on_write: int | None = None) -> None:
        self.name, self.units, self.clock = name, units, clock
        self.present = dict(present or {})
        self.fail_on_write = fail_on_write
        self.writes: list[tuple[float, list[int], list[float]]] = []
        self.last: dict[int, float] = {}  # the last value written per channel (what read reports)
        self.relaxed: list[list[int]] = []
        self.opened = self.closed = 0
        self.broken = False

    def open(self) -> None:
        self.opened += 1

    def close(self) -> None:
        self.closed += 1

    def write(self, channels, values) -> None:
        if self.broken or (self.fail_on_write is not None and len(self.writes) + 1 >= self.fail_on_write):
            self.broken = True
            raise BusError(f"{self.name}: port closed")
        self.writes.append((self.clock(), list(channels), list(values)))
        self.last.update(zip(channels, values))

    def read(self, channels):
        if self.broken:
            raise BusError(f"{self.name}: no reply")
        return [self.last.get(c, self.present.get(c)) for c in channels]

    def relax(self, channels) -> None:
        if self.broken:
            raise BusError(f"{self.name}: port closed")
        self.relaxed.append(list(channels))

    def values(self) -> np.ndarray:
        return np.array([v for _, _, v in self.writes], dtype=float)

    def times(self) -> np.ndarray:
        return np.array([t for t, _, _ in self.writes], dtype=float)


def wait_for(cond, timeout_s: float = 1.0) -> bool:
    """Poll ``cond`` until true (the emulator answers on its own thread; SYNC_WRITE has no reply to wait on)."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def pca_buses(clock=time.monotonic, **kw) -> dict[str, RecordingBus]:
    return {n: RecordingBus(n, "us", clock, **kw) for n in ("pca9685@0x41", "pca9685@0x42")}


def sent_units(buses: dict[str, RecordingBus], cal: Calibration) -> np.ndarray:
    """(n_writes, 26) units per write (same number of writes on every bus), actuator order."""
    out = None
    for name, bus in buses.items():
        idx = [i for i, m in enumerate(cal.motors) if m.bus == name]
        vals = bus.values()
        out = np.zeros((len(vals), len(cal.motors))) if out is None else out
        out[:, idx] = vals
    return out


def make(cal=None, speed=3000.0, clock=None, buses=None, **cfg) -> tuple[SafeBus, dict, FakeClock]:
    cal = cal or nominal_calibration("pca9685")
    clock = clock or FakeClock()
    buses = buses or pca_buses(clock)
    cfg.setdefault("watchdog_ms", None)
    safe = SafeBus(buses, cal, SafetyConfig(max_speed=speed, rate_hz=RATE, **cfg), clock=clock, sleep=clock.sleep)
    return safe, buses, clock


def test_range_clamp_is_logged_and_counted(caplog):
    cal = nominal_calibration("pca9685")
    safe, buses, clock = make(cal, speed=1e6)
    name = cal.names[3]
    with safe, caplog.at_level(logging.WARNING, logger=LOGGER):
        ctrl = np.zeros(26)
        ctrl[3] = 5.0                                     # 1500 + 2000 us requested, 2000 allowed
        out = safe.command(ctrl)
        assert out[3] == 2000.0 and np.all(np.delete(out, 3) == 1500.0)
        assert buses["pca9685@0x41"].writes[-1][2][3] == 2000.0
        lines = [r.getMessage() for r in caplog.records if "range clamp" in r.getMessage()]
        assert lines == [f"range clamp {name}: requested 3500, sent 2000 (safe range [1000, 2000])"]
        ctrl[3], ctrl[20] = -1e300, 1.3                 # huge negative and a little over on the second board
        clock.sleep(PERIOD)
        out = safe.command(ctrl)
        assert out[3] == 1000.0 and out[20] == 2000.0
        assert safe.stats.range_clamps == 3
        assert safe.stats.range_clamps_by_motor[3] == 2 and safe.stats.range_clamps_by_motor[20] == 1
        assert safe.stats.slew_clamps == 0 and safe.stats.sent == 2


def test_slew_limit_exact_and_first_command_from_present_position(caplog):
    cal = nominal_calibration("pca9685")
    present = {0: 1200.0, 5: 1900.0}                    # where board 0x41 says channels 0 and 5 are
    clock = FakeClock()
    buses = {"pca9685@0x41": RecordingBus("pca9685@0x41", clock=clock, present=present),
             "pca9685@0x42": RecordingBus("pca9685@0x42", clock=clock)}
    safe, buses, clock = make(cal, speed=3000.0, clock=clock, buses=buses)   # 100 us per 1/30 s
    assert np.allclose(safe.max_step, 100.0)
    with safe, caplog.at_level(logging.WARNING, logger=LOGGER):
        sent = []
        for k in range(7):
            clock.sleep(PERIOD if k else 0.0)
            sent.append(safe.command(np.ones(26)))     # 1900 us everywhere
        sent = np.array(sent)
        assert safe.stats.slew_clamps_by_motor[5] == 0 and safe.stats.slew_clamps_by_motor[0] == 6
        # motor 5 is there, motor 0 starts at 1200, the jaw (10) starts at rest: closed, command -1 = 1100 us
        assert safe.stats.slew_clamps == 6 + 23 * 3 + 7
        assert np.allclose(sent[:, 1], [1600, 1700, 1800, 1900, 1900, 1900, 1900])
        assert np.allclose(sent[:, 0], [1300, 1400, 1500, 1600, 1700, 1800, 1900])   # from 1200
        assert np.allclose(sent[:, 5], 1900)                                          # already there
        clock.sleep(PERIOD / 4)                         # a command 1/4 period after the last: 25 us
        assert safe.command(-np.ones(26))[1] == pytest.approx(1875.0)
        safe.command(-np.ones(26))                      # no time at all: no motion
        assert safe.last_sent[1] == pytest.approx(1875.0)
        clock.sleep(10.0)                               # a long pause still allows one period's step
        assert safe.command(-np.ones(26))[1] == pytest.approx(1775.0)
    msg = [r.getMessage() for r in caplog.records if "slew clamp" in r.getMessage()]
    assert f"slew clamp {cal.names[1]}: requested 1900, sent 1600 (max 3000 units/s)" == msg[1]


@pytest.mark.parametrize("bad", [
    np.full(26, np.nan), np.r_[np.zeros(25), np.inf], np.r_[np.zeros(25), -np.inf], np.zeros(25), np.zeros(27),
    np.zeros((1, 26)), np.zeros((26, 1)), np.float64(0.5), [0.0] * 25 + ["x"], np.zeros(26, dtype=bool),
    np.zeros(26, dtype=complex), np.array([None] * 26), [[0.0] * 26, [0.0] * 3], None, "0" * 26,
    np.full(26, 1e4000, dtype=np.longdouble) if np.finfo(np.longdouble).max > 1e308 else np.full(26, np.inf),
])
def test_bad_commands_are_rejected_and_the_last_holds(bad, caplog):
    safe, buses, clock = make()
    with safe, caplog.at_level(logging.WARNING, logger=LOGGER):
        first = safe.command(np.full(26, 0.1))
        n = len(buses["pca9685@0x41"].writes)
        clock.sleep(PERIOD)
        assert safe.command(bad) is None
        assert len(buses["pca9685@0x41"].writes) == n and len(buses["pca9685@0x42"].writes) == n
        assert np.array_equal(safe.last_sent, first)
        assert safe.stats.rejected == 1 and safe.stats.sent == 1 and safe.stats.commands == 2
        assert any("rejected command" in r.getMessage() for r in caplog.records)


def test_integer_and_float32_commands_are_accepted():
    safe, buses, clock = make(speed=1e6)
    with safe:
        assert np.allclose(safe.command(np.ones(26, dtype=np.int64)), 1900.0)
        clock.sleep(PERIOD)
        assert np.allclose(safe.command(np.full(26, 0.5, dtype=np.float32)), 1700.0)
        clock.sleep(PERIOD)
        assert safe.command(np.full(26, 5e-324))[0] == 1500.0          # a denormal is a number
        assert safe.stats.rejected == 0


def test_watchdog_holds_then_moves_to_rest_and_relaxes():
    cal = nominal_calibration("pca9685")
    buses = pca_buses()
    cfg = SafetyConfig(max_speed=24000.0, rate_hz=100.0, watchdog_ms=150.0, relax_after_s=0.3)  # 240 us / 10 ms
    safe = SafeBus(buses, cal, cfg)
    with safe:
        for _ in range(4):
            safe.command(np.ones(26))                   # 1740, 1900, 1900, 1900
            time.sleep(0.01)
        n = len(buses["pca9685@0x41"].writes)
        t0 = time.monotonic()
        assert wait_for(lambda: safe.state == "hold", 2.0) and safe.stats.watchdog_holds == 1
        assert time.monotonic() - t0 >= 0.15 - 0.05     # not before watchdog_ms (less the last sleep)
        assert len(buses["pca9685@0x41"].writes) == n and not buses["pca9685@0x41"].relaxed   # holding
        assert wait_for(lambda: safe.state == "relaxed", 3.0) and safe.stats.watchdog_relaxes == 1
        assert time.monotonic() - t0 >= 0.45 - 0.05
        moves = buses["pca9685@0x41"].values()[n:]
        assert np.allclose(moves[:, 0], [1660, 1500, 1500, 1500])    # slew-limited back to rest (command 0)
        assert np.allclose(moves[:, 10], [1660, 1420, 1180, 1100])   # the jaw to rest: closed (command -1)
        assert buses["pca9685@0x41"].relaxed == [list(range(16))] and buses["pca9685@0x42"].relaxed == [
            list(range(10))]
        assert safe.command(np.full(26, 0.25)) is not None and safe.state == "active"   # resumes
        assert np.allclose(np.delete(safe.last_sent, 10), 1600.0)
        assert safe.last_sent[10] == 1100.0 + 240.0     # the jaw, from rest, at the slew limit


def test_exception_in_with_block_parks_and_relaxes():
    safe, buses, clock = make(speed=3000.0)
    with pytest.raises(RuntimeError, match="policy crashed"):
        with safe:
            for _ in range(3):
                safe.command(np.ones(26))                # 1600, 1700, 1800
                clock.sleep(PERIOD)
            raise RuntimeError("policy crashed")
    u = buses["pca9685@0x41"].values()[:, 0]
    assert np.allclose(u, [1600, 1700, 1800, 1700, 1600, 1500])   # back to neutral at the slew limit
    for bus in buses.values():
        assert len(bus.relaxed) == 1 and bus.closed == 1
    assert safe.state == "closed"
    with pytest.raises(SafetyError, match="closed"):
        safe.command(np.zeros(26))


def test_exit_move_is_bounded_in_time():
    safe, buses, clock = make(speed=30.0, exit_timeout_s=0.2)     # 1 us per period: 6 steps at most
    with safe:
        safe.command(np.ones(26))
        clock.sleep(PERIOD)
        t0 = clock()
    assert clock() - t0 <= 0.2 + 1e-9
    u = buses["pca9685@0x41"].values()[:, 0]
    assert np.allclose(u, [1501, 1500])                  # the first write moved 1 us, the exit moved back
    assert buses["pca9685@0x41"].relaxed


def test_estop_relaxes_at_once_and_refuses_until_reset():
    safe, buses, clock = make(speed=3000.0)
    with safe:
        safe.command(np.ones(26))
        clock.sleep(PERIOD)
        n = len(buses["pca9685@0x41"].writes)
        safe.estop()
        assert safe.state == "estop" and safe.stats.estops == 1
        assert buses["pca9685@0x41"].relaxed == [list(range(16))] and len(buses["pca9685@0x41"].writes) == n
        with pytest.raises(SafetyError, match="estop"):
            safe.command(np.zeros(26))
        safe.reset_estop()
        clock.sleep(PERIOD)
        assert safe.command(np.ones(26))[0] == pytest.approx(1700.0)   # from the present position 1600
    assert len(buses["pca9685@0x41"].relaxed) == 2                 # and relaxed again on exit
    with pytest.raises(SafetyError, match="not in an emergency stop"):
        safe.reset_estop()


def test_estop_from_another_thread_stops_the_writes():
    safe, buses, clock = make(speed=3000.0)
    with safe:
        t = threading.Thread(target=safe.estop)
        safe.command(np.ones(26))
        t.start()
        t.join()
        with pytest.raises(SafetyError):
            safe.command(np.ones(26))
    assert all(len(b.writes) == 1 for b in buses.values())        # nothing after the stop, not even neutral


@pytest.mark.parametrize("sig,exc", [(signal.SIGTERM, SystemExit), (signal.SIGINT, KeyboardInterrupt)])
def test_signal_parks_relaxes_and_restores_the_handler(sig, exc):
    before = signal.getsignal(sig)
    safe, buses, clock = make(speed=3000.0, handle_signals=True)
    with pytest.raises(exc):
        with safe:
            assert signal.getsignal(sig) == safe._on_signal
            safe.command(np.ones(26))
            clock.sleep(PERIOD)
            os.kill(os.getpid(), sig)
            time.sleep(1.0)                               # the handler raises before this ends
    assert signal.getsignal(sig) is before
    assert np.allclose(buses["pca9685@0x41"].values()[:, 0], [1600, 1500])
    assert all(len(b.relaxed) == 1 and b.closed == 1 for b in buses.values())
    assert safe.stats.signals == 1


def test_signal_during_a_write_waits_for_the_whole_command():
    class KillingBus(RecordingBus):
        def write(self, channels, values) -> None:
            super().write(channels, values)
            if len(self.writes) == 3:
                os.kill(os.getpid(), signal.SIGTERM)     # lands between the two boards' writes
                time.sleep(0.01)

    clock = FakeClock()
    buses = {"pca9685@0x41": KillingBus("pca9685@0x41", clock=clock),
             "pca9685@0x42": RecordingBus("pca9685@0x42", clock=clock)}
    safe, buses, clock = make(speed=3000.0, clock=clock, buses=buses, handle_signals=True)
    with pytest.raises(SystemExit):
        with safe:
            for _ in range(5):
                safe.command(np.ones(26))
                clock.sleep(PERIOD)
    a, b = (buses[n].values() for n in ("pca9685@0x41", "pca9685@0x42"))
    assert len(a) == len(b)                                # the third command reached both boards
    assert np.allclose(a[:, 0], [1600, 1700, 1800, 1700, 1600, 1500]) and np.allclose(b[:, 0], a[:, 0])


def test_bus_error_mid_run_stops_cleanly():
    cal = nominal_calibration("pca9685")
    clock = FakeClock()
    buses = {"pca9685@0x41": RecordingBus("pca9685@0x41", clock=clock),
             "pca9685@0x42": RecordingBus("pca9685@0x42", clock=clock, fail_on_write=4)}
    safe, buses, clock = make(cal, speed=3000.0, clock=clock, buses=buses)
    with safe:
        for _ in range(3):
            safe.command(np.ones(26))
            clock.sleep(PERIOD)
        with pytest.raises(BusError, match="port closed"):
            safe.command(np.ones(26))
        assert safe.state == "faulted" and safe.stats.bus_errors >= 1
        with pytest.raises(SafetyError, match="faulted"):
            safe.command(np.ones(26))
    good = buses["pca9685@0x41"].values()[:, 0]
    assert np.allclose(good, [1600, 1700, 1800, 1900, 1800, 1700, 1600, 1500])   # the healthy board parks
    assert buses["pca9685@0x41"].relaxed == [list(range(16))]
    assert len(buses["pca9685@0x42"].writes) == 3 and not buses["pca9685@0x42"].relaxed


def test_position_units_are_whole_ticks_inside_the_range():
    cal = nominal_calibration("serial")
    cal = cal.replace_motor(cal.names[0], min=1400.6, max=2699.5, neutral=2048.3)
    clock = FakeClock()
    bus = RecordingBus("serial", "position", clock)
    safe = SafeBus({"serial": bus}, cal, SafetyConfig(max_speed=1000.0, watchdog_ms=None), clock=clock,
                   sleep=clock.sleep)
    assert safe.max_step[0] == 33.0                       # floor(1000 / 30)
    with safe:
        for u in (1.0, 1.0, -3.0, 0.3):
            safe.command(np.full(26, u))
            clock.sleep(PERIOD)
    v = bus.values()
    assert np.array_equal(v, np.rint(v))
    assert v[:, 0].min() >= 1401 and v[:, 0].max() <= 2699
    assert np.abs(np.diff(v, axis=0)).max() <= 33
    assert v[0, 0] == 2048 + 33 and v[-1, 0] == 2048            # neutral rounded


def test_config_and_construction_errors_name_the_field(tmp_path):
    cal = nominal_calibration("pca9685")
    with pytest.raises(ValueError, match="rate_hz"):
        SafetyConfig(rate_hz=0)
    with pytest.raises(ValueError, match="watchdog_ms"):
        SafetyConfig(watchdog_ms=float("nan"))
    with pytest.raises(ValueError, match=r"max_speed\[jaw_open\]"):
        SafetyConfig(max_speed={"jaw_open": -1.0}).speeds(cal)
    with pytest.raises(ValueError, match="max_speed: unknown motor"):
        SafetyConfig(max_speed={"nose": 1.0}).speeds(cal)
    with pytest.raises(ValueError, match="max_speed: 3 values"):
        SafetyConfig(max_speed=[1.0, 2.0, 3.0]).speeds(cal)
    with pytest.raises(ValueError, match="unknown field.*max_sped"):
        SafetyConfig.from_dict({"max_sped": 3})
    with pytest.raises(ValueError, match="below 1 tick"):
        SafetyConfig(max_speed=10.0).speeds(nominal_calibration("serial"))
    with pytest.raises(ValueError, match="no bus 'pca9685@0x42'"):
        SafeBus({"pca9685@0x41": RecordingBus("pca9685@0x41")}, cal)
    with pytest.raises(ValueError, match=r"buses\['pca9685@0x41'\].units"):
        SafeBus({"pca9685@0x41": RecordingBus("pca9685@0x41", "position"),
                 "pca9685@0x42": RecordingBus("pca9685@0x42")}, cal)
    p = tmp_path / "safety.json"
    p.write_text('{"max_speed": {"jaw_open": 5000}, "watchdog_ms": 80}')
    cfg = SafetyConfig.load(p)
    speeds = cfg.speeds(cal)
    assert speeds[cal.names.index("jaw_open")] == 5000 and speeds[0] == DEFAULT_SPEED * 400
    assert cfg.watchdog_ms == 80


# ------------------------------------------------------------------------------------------------ fuzz
def fuzz_calibration(rng: np.random.Generator) -> Calibration:
    """The nominal two-board calibration with random directions, neutrals, scales and asymmetric ranges."""
    cal = nominal_calibration("pca9685")
    motors = []
    for m in cal.motors:
        lo = rng.uniform(900, 1400)
        hi = rng.uniform(1600, 2100)
        motors.append(dataclasses.replace(m, direction=int(rng.choice([-1, 1])), neutral=rng.uniform(lo, hi),
                                          scale=rng.uniform(50, 800), min=lo, max=hi))
    return dataclasses.replace(cal, motors=tuple(motors))


def adversarial_outputs(rng: np.random.Generator, n: int) -> list:
    """``n`` policy outputs: numbers of every kind, plus bad dtypes and shapes mixed in."""
    kinds = rng.integers(0, 12, size=n)
    x = rng.uniform(-1, 1, size=(n, 26))
    huge = 10.0 ** rng.uniform(0, 308, size=(n, 26)) * rng.choice([-1, 1], size=(n, 26))
    sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)[:, None]
    out: list = []
    for k, kind in enumerate(kinds):
        if kind == 0:
            out.append(huge[k])                                            # uniform huge values
        elif kind == 1:
            v = huge[k].copy()
            v[rng.random(26) < 0.3] = rng.choice([np.nan, np.inf, -np.inf])
            out.append(v)                                                  # NaN / inf mixed in
        elif kind == 2:
            out.append(sign[k] * np.full(26, rng.choice([1.0, 1e3, 1e308])))   # alternating extremes
        elif kind == 3:
            out.append(rng.choice([5e-324, -5e-324, 2.2e-308, 0.0], size=26))  # denormals
        elif kind == 4:
            out.append(x[k].astype(rng.choice([np.float16, np.float32, np.int8, np.int64, np.uint64])))
        elif kind == 5:
            out.append([x[k].astype(complex), x[k] > 0, x[k].astype(object), x[k].astype(str)][k % 4])
        elif kind == 6:
            out.append([x[k][:25], np.r_[x[k], 0.0], x[k][None], x[k].reshape(2, 13), x[k][0], list(x[k])[:-1]
                        + [[1.0]]][k % 6])
        elif kind == 7:
            out.append(np.cumsum(rng.choice([-3.0, 3.0], size=26)) * (k % 7))   # ramps past the slew limit
        elif kind == 8:
            out.append(np.full(26, rng.choice([np.finfo(np.float64).max, -np.finfo(np.float64).max])))
        else:
            out.append(x[k] * rng.choice([1.0, 2.0, 50.0]))                 # ordinary and saturated outputs
    return out


def test_fuzz_100k_adversarial_outputs_never_leave_the_limits():
    rng = np.random.default_rng(6)
    cal = fuzz_calibration(rng)
    clock = FakeClock()
    buses = pca_buses(clock)
    speed = rng.uniform(500, 20000, size=26)
    safe = SafeBus(buses, cal, SafetyConfig(max_speed=tuple(speed), watchdog_ms=None), clock=clock,
                   sleep=clock.sleep)
    outputs = adversarial_outputs(rng, 100_000)
    gaps = rng.choice([0.0, 1e-4, PERIOD / 3, PERIOD, PERIOD, PERIOD, 2.5 * PERIOD], size=len(outputs))
    logging.getLogger(LOGGER).setLevel(logging.ERROR)   # millions of clamp lines: counted, not printed here
    try:
        t0 = time.perf_counter()
        with safe:
            for ctrl, gap in zip(outputs, gaps):
                clock.sleep(gap)
                safe.command(ctrl)
        wall = time.perf_counter() - t0
    finally:
        logging.getLogger(LOGGER).setLevel(logging.NOTSET)
    units = sent_units(buses, cal)                        # every write that reached a bus, exit moves included
    t = buses["pca9685@0x41"].times()
    assert np.array_equal(t, buses["pca9685@0x42"].times())
    assert safe.stats.commands == 100_000 and safe.stats.rejected > 10_000 and safe.stats.sent > 60_000
    assert len(units) > safe.stats.sent                   # the exit move wrote too
    assert np.isfinite(units).all()
    assert (units >= cal.lo).all() and (units <= cal.hi).all()
    rest = np.clip(cal.to_units(rest_controls()), cal.lo, cal.hi)   # where a SafeBus starts and stops
    start = rest
    steps = np.abs(np.diff(np.vstack([start, units]), axis=0))
    dt = np.minimum(np.diff(np.r_[t[0] - PERIOD, t]), PERIOD)      # the first write may move one period's worth
    assert (steps <= speed * dt[:, None] * (1 + 1e-9) + 1e-9).all()
    assert safe.stats.range_clamps > 100_000 and safe.stats.slew_clamps > 100_000
    assert np.allclose(units[-1], rest)                   # parked at rest before relaxing
    print(f"fuzz: 100k commands in {wall:.2f} s, {len(units)} writes per bus")


# ------------------------------------------------------------------------------------------------ real backends
def register_pulses(i2c: FakeI2C, addr: int, n: int) -> np.ndarray:
    """(block writes, n) pulse widths (us) of board ``addr`` after each LEDn block write in the I2C log (channels
    not in a write keep their value; the rows before the first full set are dropped)."""
    period = frame_period_us(prescale_for(50.0))
    now = np.full(n, np.nan)
    rows = []
    for kind, a, reg, data in i2c.log:
        if kind == "w" and a == addr and LED0_ON_L <= reg < LED0_ON_L + 4 * n and len(data) >= 4:
            ch0 = (reg - LED0_ON_L) // 4
            for k in range(len(data) // 4):
                now[ch0 + k] = (data[4 * k + 2] | (data[4 * k + 3] & 0x0F) << 8) * period / 4096
            if not np.isnan(now).any():
                rows.append(now.copy())
    return np.array(rows)


def test_pca9685_registers_stay_in_range_under_fuzz_and_a_failing_board():
    rng = np.random.default_rng(1)
    cal = fuzz_calibration(rng)
    clock = FakeClock()
    i2c = FakeI2C(addresses=(0x41, 0x42))
    buses = {"pca9685@0x41": PCA9685Bus(0x41, i2c=i2c), "pca9685@0x42": PCA9685Bus(0x42, i2c=i2c)}
    safe = SafeBus(buses, cal, SafetyConfig(max_speed=4000.0, watchdog_ms=None), clock=clock, sleep=clock.sleep)
    outputs = adversarial_outputs(rng, 2000)
    logging.getLogger(LOGGER).setLevel(logging.ERROR)
    try:
        with safe:
            for k, ctrl in enumerate(outputs):
                clock.sleep(PERIOD)
                if k == 1500:
                    i2c.fail(count=1, after=1)           # board 0x41 fails between its two block writes
                    with pytest.raises(BusError, match="I2C block write"):
                        safe.command(np.ones(26))
                    break
                safe.command(ctrl)
            assert safe.state == "faulted"
    finally:
        logging.getLogger(LOGGER).setLevel(logging.NOTSET)
    half_tick = frame_period_us(prescale_for(50.0)) / 4096 / 2
    for addr, motors in ((0x41, slice(0, 16)), (0x42, slice(16, 26))):
        pulses = register_pulses(i2c, addr, len(cal.lo[motors]))
        assert len(pulses) > 1000
        # the layer rounds to the board's 4.88 us tick (bus.quantum) inside the range: the calibrated range holds
        # exactly at the register level, and so does the slew limit
        assert (pulses >= cal.lo[motors] - 1e-6).all() and (pulses <= cal.hi[motors] + 1e-6).all()
        assert (np.abs(np.diff(pulses, axis=0)) <= 4000.0 * PERIOD + 1e-6).all()
        assert all(i2c.channel(addr, c)[3] for c in range(len(pulses[0])))    # every channel full off at the end
    assert np.allclose(pulses[-1], cal.neutral[16:], atol=half_tick)       # the healthy board parked at neutral


def serial_safe(emu: DynamixelEmulator, clock: FakeClock, speed: float = 3000.0) -> tuple[SafeBus, Calibration]:
    cal = nominal_calibration("serial")                  # ids 1-26, safe range 1400-2700 ticks
    bus = DynamixelBus(emu.port, ids=range(1, 27), baudrate=1_000_000, timeout_s=0.05)
    return SafeBus({"serial": bus}, cal, SafetyConfig(max_speed=speed, watchdog_ms=None), clock=clock,
                   sleep=clock.sleep), cal


def check_goal_log(emu: DynamixelEmulator, cal: Calibration, max_step: float) -> int:
    """Every goal the servos received: inside [min, max] and within ``max_step`` of the one before."""
    goals: dict[int, list[int]] = {}
    for servo_id, pos in emu.goal_log:
        goals.setdefault(servo_id, []).append(pos)
    for servo_id, seq in goals.items():
        m = cal.motors[servo_id - 1]
        assert m.min <= min(seq) and max(seq) <= m.max, (servo_id, min(seq), max(seq))
        assert np.abs(np.diff(seq)).max(initial=0) <= max_step, servo_id
    return sum(len(s) for s in goals.values())


def test_serial_port_closed_mid_run_stops_cleanly():
    clock = FakeClock()
    with DynamixelEmulator(ids=range(1, 27), speed=float("inf")) as emu:
        safe, cal = serial_safe(emu, clock)
        logging.getLogger(LOGGER).setLevel(logging.ERROR)
        try:
            with safe:
                for k in range(12):
                    clock.sleep(PERIOD)
                    safe.command(np.full(26, 50.0 if k % 2 else -50.0) if k > 4 else np.ones(26))
                assert wait_for(lambda: len(emu.goal_log) == 26 * 13)   # the open's goals + 12 commands arrived
                emu.close_port()                          # the cable is pulled
                time.sleep(0.05)                          # the pty is gone once the emulator's select() returns
                clock.sleep(PERIOD)
                with pytest.raises(BusError):
                    safe.command(np.ones(26))
                assert safe.state == "faulted"
                with pytest.raises(SafetyError, match="faulted"):
                    safe.command(np.ones(26))
        finally:
            logging.getLogger(LOGGER).setLevel(logging.NOTSET)
        n = check_goal_log(emu, cal, max_step=100)
        assert n == 26 * 13 and safe.stats.bus_errors >= 1 and safe.state == "closed"


@pytest.mark.parametrize("fault", ["crc", "drop", "truncate", "wrong_id", "error"])
def test_serial_bad_reply_on_resume_stops_cleanly(fault):
    clock = FakeClock()
    with DynamixelEmulator(ids=range(1, 27), speed=float("inf")) as emu:
        safe, cal = serial_safe(emu, clock)
        with safe:
            for _ in range(3):
                clock.sleep(PERIOD)
                safe.command(np.ones(26))                 # 2148, 2248, 2348 ticks
            safe.estop()
            assert wait_for(lambda: not any(emu.torque(i) for i in range(1, 27)))
            n_goals = len(emu.goal_log)
            emu.inject(fault)
            with pytest.raises(BusError):
                safe.reset_estop()                         # reads the present positions: the reply is bad
            assert safe.state == "faulted"
            time.sleep(0.06)                               # let a late reply arrive and be flushed
        assert len(emu.goal_log) == n_goals               # nothing written after the fault
        assert wait_for(lambda: not any(emu.torque(i) for i in range(1, 27)))
        assert [emu.goal(i) for i in (1, 26)] == [2348, 2348]
        check_goal_log(emu, cal, max_step=100)


def test_serial_first_command_starts_from_the_present_position():
    clock = FakeClock()
    with DynamixelEmulator(ids=range(1, 27), speed=float("inf"), position=2600) as emu:
        emu.set_position(3, 1000)                        # left outside the safe range before power-up
        safe, cal = serial_safe(emu, clock)
        with safe:
            clock.sleep(PERIOD)
            out = safe.command(np.zeros(26))              # neutral 2048 asked
            assert out[0] == 2500 and out[2] == 1500       # from 2600 and from 1400 (the range edge), 100 per period
        assert all(cal.motors[i - 1].min <= p <= cal.motors[i - 1].max for i, p in emu.goal_log[26:])


class FlakyBus(RecordingBus):
    """Raises ``exc`` (any exception type a driver might raise) on its ``on``-th write, or on relax / close."""

    def __init__(self, name, clock, exc: Exception, where: str, on: int = 4):
        super().__init__(name, "us", clock)
        self.exc, self.where, self.on = exc, where, on

    def write(self, channels, values) -> None:
        if self.where == "write" and (self.broken or len(self.writes) + 1 >= self.on):
            self.broken = True
            raise self.exc
        super().write(channels, values)

    def relax(self, channels) -> None:
        if self.where in ("write", "relax"):
            raise self.exc
        super().relax(channels)

    def close(self) -> None:
        super().close()
        if self.where == "close":
            raise self.exc


_BOARDS = ("pca9685@0x41", "pca9685@0x42", "pca9685@0x43")


@pytest.mark.parametrize("where", ["write", "relax", "close"])
@pytest.mark.parametrize("failing", range(3))
@pytest.mark.parametrize("exc", [BusError("nack"), OSError(5, "Input/output error"), TimeoutError("no reply"),
                                 TypeError("write() got a list"), RuntimeError("driver bug")],
                         ids=lambda e: type(e).__name__)
def test_whatever_a_bus_raises_every_other_bus_is_parked_and_relaxed(exc, failing, where):
    nom = nominal_calibration("pca9685")
    motors = tuple(dataclasses.replace(m, bus=_BOARDS[i // 9], channel=i % 9) for i, m in enumerate(nom.motors))
    cal = dataclasses.replace(nom, motors=motors)
    clock = FakeClock()
    buses = {n: (FlakyBus(n, clock, exc, where) if k == failing else RecordingBus(n, clock=clock))
             for k, n in enumerate(_BOARDS)}
    safe, buses, clock = make(cal, speed=3000.0, clock=clock, buses=buses)
    rest = cal.to_units(rest_controls())
    with safe:
        for _ in range(3):
            safe.command(np.ones(26))
            clock.sleep(PERIOD)
        if where == "write":  # mid-stream: the command fails loudly, as a BusError naming the bus
            with pytest.raises(BusError) as e:
                safe.command(np.ones(26))
            assert e.value is exc or (e.value.__cause__ is exc and _BOARDS[failing] in str(e.value))
            assert safe.state == "faulted" and safe.fault is exc
            with pytest.raises(SafetyError, match="faulted"):
                safe.command(np.ones(26))
    assert safe.state == "closed"
    assert safe.fault is exc and (safe.stats.bus_errors >= 1 or where == "close")  # the state is honest
    for k, name in enumerate(_BOARDS):
        bus, idx = buses[name], [i for i, m in enumerate(cal.motors) if m.bus == name]
        assert bus.closed == 1  # every bus closed, the failing one too (its close was tried)
        if k == failing and where == "write":
            continue
        np.testing.assert_allclose(bus.writes[-1][2], rest[idx])  # parked at rest
        if k != failing or where == "close":
            assert bus.relaxed == [list(range(len(idx)))]  # and relaxed


# ---------------------------------------------------------------------------------------------- health polls
def _stream_until_fault(safe: SafeBus, clock: FakeClock, max_ticks: int) -> tuple[int, BusError | None]:
    """Commands at 30 Hz (on the fake clock) until one raises: (ticks sent before it, the error)."""
    for k in range(max_ticks):
        clock.sleep(PERIOD)
        try:
            safe.command(np.full(26, 0.3 * np.sin(k / 5)))
        except BusError as e:
            return k, e
    return max_ticks, None


#: fault -> (how the emulator makes it, what the error must name). A SYNC_WRITE has no reply: all of these are
#: invisible to the writes and found only by the health polls.
SERVO_FAULTS = {
    "hardware alert": (lambda emu: emu.fail(7), "servo 7 hardware alert: Overheating Error"),
    "dead servo": (lambda emu: emu.disconnect(12), "servo 12 did not answer"),
    "corrupted reply": (lambda emu: emu.inject("crc"), "CRC mismatch"),
    "dropped replies": (lambda emu: emu.inject("drop", count=4), "no reply"),
    "error status": (lambda emu: emu.inject("error", error=0x07), "Access Error"),
}


@pytest.mark.parametrize("fault", sorted(SERVO_FAULTS))
def test_health_polls_find_a_servo_fault_mid_stream_and_bring_the_robot_to_rest(fault, caplog):
    make_fault, named = SERVO_FAULTS[fault]
    clock = FakeClock()
    with DynamixelEmulator(ids=range(1, 27), speed=float("inf")) as emu:
        safe, cal = serial_safe(emu, clock)
        with safe:
            # 1 Mbaud, Return Delay Time 0: a poll of all 26 servos takes 4.3 ms, under a quarter of the period
            assert safe.health_detect_s == pytest.approx(1 / 10 + 0.05 + PERIOD)
            k, e = _stream_until_fault(safe, clock, 12)
            assert e is None and safe.stats.health_polls == 5  # 100 ms apart from the open: ticks 1, 3, 6, 9, 12
            make_fault(emu)
            with caplog.at_level(logging.CRITICAL, LOGGER):
                k, e = _stream_until_fault(safe, clock, 60)
            assert e is not None and named in str(e), e
            assert (k + 1) * PERIOD <= safe.health_detect_s  # found within the stated time
            assert safe.state == "faulted"
            with pytest.raises(SafetyError, match="faulted"):
                safe.command(np.zeros(26))
        live = [i for i in range(1, 27) if i not in emu.disconnected]
        assert wait_for(lambda: not any(emu.torque(i) for i in live))  # every servo that hears is limp
        check_goal_log(emu, cal, max_step=100 * (5 if fault == "dropped replies" else 1))


def test_health_polls_at_the_factory_baud_rate_cover_every_servo_in_the_stated_time():
    clock = FakeClock()
    with DynamixelEmulator(ids=range(1, 27), speed=float("inf"), reply_delay_s=500e-6) as emu:
        cal = nominal_calibration("serial")
        bus = DynamixelBus(emu.port, ids=range(1, 27), baudrate=57600, timeout_s=0.05)
        safe = SafeBus({"serial": bus}, cal, SafetyConfig(max_speed=3000.0, watchdog_ms=None), clock=clock,
                       sleep=clock.sleep)
        with safe:
            assert bus.return_delay_s == pytest.approx(500e-6)  # read from the servos on open
            assert bus.health_cost_s(1) == pytest.approx(5.71e-3, abs=0.01e-3)  # 30 bytes + the delay
            assert bus.health_cost_s(2) > 0.25 * PERIOD  # so one servo per poll, 26 polls for the chain
            assert safe.health_detect_s == pytest.approx(26 / 10 + 0.05 + PERIOD)
            _stream_until_fault(safe, clock, 9)
            polled = [p[2][4:] for p in emu.received if p[1] == 0x82]  # SYNC_READ: the ids asked
            assert [len(p) for p in polled[1:]] == [1, 1, 1, 1] and polled[-1] == bytes([4])  # round robin
            emu.fail(4)  # the servo that was just checked: the worst case
            with logging_disabled():
                k, e = _stream_until_fault(safe, clock, 200)
            assert e is not None and "servo 4 hardware alert" in str(e)
            assert 2.0 < (k + 1) * PERIOD <= safe.health_detect_s


class logging_disabled:
    def __enter__(self):
        logging.disable(logging.CRITICAL)

    def __exit__(self, *exc):
        logging.disable(logging.NOTSET)


def test_a_pca9685_board_that_resets_is_found_and_the_other_board_parked_and_relaxed():
    clock = FakeClock()
    i2c = FakeI2C((0x41, 0x42))
    cal = nominal_calibration("pca9685")
    buses = {f"pca9685@0x{a:02x}": PCA9685Bus(a, i2c=i2c) for a in (0x41, 0x42)}
    safe = SafeBus(buses, cal, SafetyConfig(max_speed=3000.0, watchdog_ms=None), clock=clock, sleep=clock.sleep)
    with safe:
        assert safe.health_detect_s == pytest.approx(1 / 10 + PERIOD)  # one register read per board and poll
        k, e = _stream_until_fault(safe, clock, 6)
        assert e is None
        i2c.power_cycle(0x42)  # a brown-out: the board is back, asleep, every output off; writes still succeed
        with logging_disabled():
            k, e = _stream_until_fault(safe, clock, 30)
        assert e is not None and "pca9685@0x42: the board has reset" in str(e)
        assert (k + 1) * PERIOD <= safe.health_detect_s
    rest = cal.to_units(rest_controls())
    on41 = [i for i, m in enumerate(cal.motors) if m.bus == "pca9685@0x41"]
    last = {}
    for kind, addr, reg, data in i2c.log:  # the last pulse each channel of 0x41 was given: the rest face
        if kind == "w" and addr == 0x41 and LED0_ON_L <= reg < LED0_ON_L + 64 and len(data) % 4 == 0:
            for j in range(0, len(data), 4):
                ch = (reg - LED0_ON_L) // 4 + j // 4
                if data[j + 3] & 0x10 == 0:
                    last[ch] = (data[j + 2] | data[j + 3] << 8) * buses["pca9685@0x41"].period_us / 4096
    for i in on41:
        assert last[cal.motors[i].channel] == pytest.approx(rest[i], abs=buses["pca9685@0x41"].quantum)
    assert all(i2c.pulse_us(a, c) == 0 for a in (0x41, 0x42) for c in range(16))  # both boards off


def test_health_config_is_checked():
    with pytest.raises(ValueError, match="health_hz"):
        SafetyConfig(health_hz=0)
    with pytest.raises(ValueError, match="health_hz"):
        SafetyConfig(health_hz=60.0)  # faster than the control rate
    with pytest.raises(ValueError, match="health_budget"):
        SafetyConfig(health_budget=1.5)
    assert SafetyConfig.from_dict({"health_hz": None}).health_hz is None
    safe, buses, clock = make(health_hz=None)
    assert safe.health_detect_s == float("inf")
