"""The twin as the robot (``hardware/sim_bus.py``) and ``facetwin calibrate`` (``sim2real/calibrate.py``).

End to end: a SimBus with a hidden random truth (seed 4: jaw_open and lip_corner_pull_R mounted reversed, gains
+-20 %, latencies 28-81 ms), camera noise 0.1 mm, four motors (lips and the jaw). Tolerances come from 26-motor runs
on seeds 1-5 (130 motors, ``facetwin calibrate --backend sim --seed N``; worst: neutral 9.3 units, scale 1.7 %,
latency 1.24 ms) with a margin.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import pytest

from facetwin.cli.robot import add_calibrate_arguments, main_calibrate
from facetwin.hardware.bus import BusError
from facetwin.hardware.calibration import Calibration, CalibrationError, nominal_calibration
from facetwin.hardware.sim_bus import SimBus, SimCamera, random_true_calibration
from facetwin.sim2real.calibrate import (
    LEVELS,
    PHASES,
    TwinReference,
    calibrate,
    fit_delay,
    fit_static,
    identity_calibration,
)

NEUTRAL_TOL = 12.0  # servo units (nominal scale 512 per command: 2.3 % of a command)
SCALE_TOL_PCT = 3.0
LATENCY_TOL_MS = 2.5
E2E_MOTORS = ["lip_upper_raise_R", "lip_lower_depress_L", "lip_corner_pull_R", "jaw_open"]
TIGHT = "lip_upper_raise_R"  # its safe max is tightened below the sweep: the staircase must clamp, never exceed


class RecordingBus(SimBus):
    """A SimBus that records every goal that reaches it."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.sent: list[tuple[int, float]] = []

    def write(self, channels, values):
        self.sent.extend(zip(channels, (float(v) for v in values)))
        super().write(channels, values)


@pytest.fixture(scope="module")
def face():
    from facetwin.sim.model import FaceModel

    return FaceModel.load("fast")


@pytest.fixture(scope="module")
def reference():
    return TwinReference("fast", "room")


@pytest.fixture(scope="module")
def e2e(face, reference):
    truth = random_true_calibration(4)
    start = nominal_calibration("sim")
    start = start.replace_motor(TIGHT, max=start.motors[0].neutral + 0.35 * start.motors[0].scale)
    bus = RecordingBus(truth, face=face)
    with bus:
        cal, report = calibrate(bus, SimCamera(bus, noise_mm=0.1, seed=4), start=start, motors=E2E_MOTORS,
                                progress=False, reference=reference)
    return truth, start, bus, cal, report


# ------------------------------------------------------------------------------------------------ SimBus
def _truth(latency_ms: float) -> Calibration:
    nom = nominal_calibration("sim")
    motors = tuple(dataclasses.replace(m, direction=-1, neutral=2000.0, scale=400.0, latency_ms=latency_ms)
                   for m in nom.motors)
    return dataclasses.replace(nom, motors=motors)


def test_sim_bus_maps_units_through_the_truth_after_the_latency(face):
    with SimBus(_truth(50.0), face=face) as bus:
        bus.write([1], [1800.0])  # direction -1: u = (1800 - 2000) / -400 = +0.5
        bus.advance(0.040)
        assert face.data.ctrl[0] == 0.0  # still in flight
        bus.advance(0.020)
        assert face.data.ctrl[0] == pytest.approx(0.5)
        bus.advance(0.5)
        assert bus.read([1])[0] == pytest.approx(1800.0, abs=10.0)  # present position (the skin loads the servo)
        bus.write([1], [0.0])  # far beyond the end stop: the servo stops at u = +1
        bus.advance(0.1)
        assert face.data.ctrl[0] == 1.0
        assert bus.time == pytest.approx(0.66, abs=bus.dt)


def test_sim_bus_latency_is_not_rounded_to_substeps(face):
    with SimBus(_truth(0.25 * 1000 * face.sim_dt), face=face) as bus:  # a quarter of a physics substep
        bus.advance(bus.dt)
        bus.write([1], [1920.0])  # u = +0.2: the force stays in range
        bus.advance(bus.dt)
        assert face.data.ctrl[0] == pytest.approx(0.75 * 0.2)  # the substep saw +0.2 for 3/4 of its length
        bus.advance(0.5)
        f_old = face.data.actuator_force[0]
        bus.write([1], [1600.0])  # u = +1: the servo pulls with its full -15 N (force range [-15, 15])
        bus.advance(bus.dt)
        assert face.data.actuator_force[0] == pytest.approx(0.25 * f_old + 0.75 * -15.0, abs=0.05)


def test_sim_bus_relax_close_and_errors(face):
    bus = SimBus(_truth(0.0), face=face)
    with pytest.raises(BusError, match="not open"):
        bus.write([1], [2000.0])
    with bus:
        with pytest.raises(BusError, match="channel 99"):
            bus.write([99], [2000.0])
        with pytest.raises(BusError, match="non-finite"):
            bus.write([1], [float("nan")])
        bus.write([11, 1], [2300.0, 2100.0])
        bus.advance(0.1)
        assert face.data.ctrl[10] != -1.0
        bus.relax([11])
        bus.advance(bus.dt)
        assert face.data.ctrl[10] == -1.0 and face.data.ctrl[0] != 0.0  # jaw at rest, the lip still held
    bus.advance(bus.dt)
    np.testing.assert_array_equal(face.data.ctrl, face.rest_ctrl)  # close relaxed every motor
    with pytest.raises(ValueError, match="unique"):
        SimBus(nominal_calibration("pca9685"), face=face)


def test_sim_camera_noise_and_dropout(face):
    bus = SimBus(face=face)
    clean = face.landmarks_mm("room")
    frames = np.array([SimCamera(bus, noise_mm=0.1, seed=s).read() for s in range(20)])
    assert frames.shape == (20, 69, 3)
    assert np.std(frames - clean) == pytest.approx(0.1, rel=0.05)
    cam = SimCamera(bus, noise_mm=0.0, seed=0, dropout=0.5)
    got = [cam.read() for _ in range(200)]
    assert 70 < sum(g is None for g in got) < 130
    np.testing.assert_array_equal(next(g for g in got if g is not None), clean)


def test_random_true_calibration_ranges():
    base = nominal_calibration("sim")
    t = random_true_calibration(7)
    assert t == random_true_calibration(7) and t != random_true_calibration(8)
    lat = t.latency_ms
    assert lat.min() >= 20 and lat.max() <= 120
    for m, b in zip(t.motors, base.motors):
        assert abs(m.neutral - b.neutral) <= 0.15 * b.scale + 1e-6
        assert 0.8 * b.scale - 1e-6 <= m.scale <= 1.2 * b.scale + 1e-6
        assert (m.min, m.max, m.channel) == (b.min, b.max, b.channel)
    assert sum(m.direction < 0 for m in t.motors) == 5
    with pytest.raises(ValueError, match="latency_ms"):
        random_true_calibration(0, latency_ms=(50, 10))


# ------------------------------------------------------------------------------------------------ fits
def test_fit_static_recovers_an_affine_map():
    grid = np.linspace(-1, 1, 21)
    R = np.stack([np.tanh(1.5 * grid), grid ** 2 + 0.3 * grid, 0.5 * grid], axis=1)
    c = np.linspace(-0.6, 0.6, 9)
    alpha, beta = 0.12, -1.3
    u = alpha + beta * c
    D = np.stack([np.tanh(1.5 * u), u ** 2 + 0.3 * u, 0.5 * u], axis=1)
    a, b, rms = fit_static(c, D, grid, R)
    assert a == pytest.approx(alpha, abs=2e-3) and b == pytest.approx(beta, abs=5e-3) and rms < 0.01


def test_fit_delay_sub_period():
    dt, P, tau = 1 / 120, 4, 0.0437

    def step(t):  # a first-order step response of a 2-coordinate feature, 0 before the write
        return np.outer(1 - np.exp(-np.clip(t, 0, None) / 0.02), [1.0, -2.0])

    t_ref = np.arange(60) * dt
    r = np.array([[step(t_ref - p * dt / P), -step(t_ref - p * dt / P)] for p in range(P + 1)])  # (P+1, 2, 60, 2)
    ts, M, which = [], [], []
    for k in range(4):
        for s in (0, 1):
            t = k / 120 + np.arange(12) / 30
            ts.append(t)
            M.append(step(t - tau) * (1 if s == 0 else -1))
            which.append(np.full(len(t), s))
    got, rms = fit_delay(np.concatenate(ts), np.concatenate(M), np.concatenate(which), r, dt, 0.2)
    assert got == pytest.approx(tau, abs=0.001) and rms < 0.02


# ------------------------------------------------------------------------------------------------ end to end
def test_calibration_recovers_the_hidden_truth(e2e):
    truth, _start, _bus, cal, report = e2e
    assert report.failed == []
    assert {truth.motors[truth.names.index(n)].direction for n in E2E_MOTORS} == {-1, 1}  # flips are exercised
    for e in report.errors(truth):
        assert e["direction"], e
        assert abs(e["neutral"]) < NEUTRAL_TOL, e
        assert abs(e["scale_pct"]) < SCALE_TOL_PCT, e
        assert abs(e["latency_ms"]) < LATENCY_TOL_MS, e
    for n in E2E_MOTORS:  # the returned calibration carries the fit; min/max stay those of the start
        got, true = cal.motors[cal.names.index(n)], truth.motors[truth.names.index(n)]
        assert got.direction == true.direction and abs(got.neutral - true.neutral) < NEUTRAL_TOL
    assert cal.motors[0].max == _start.motors[0].max
    untouched = cal.names.index("brow_inner_R")
    assert cal.motors[untouched] == nominal_calibration("sim").motors[untouched]
    assert 10 < report.robot_seconds < 120
    md = report.markdown(truth)
    assert md.count("\n") == len(E2E_MOTORS) + 1 and "\n| jaw_open | " in md


def test_calibration_never_commands_outside_the_safe_range(e2e):
    _truth_, start, bus, _cal, _report = e2e
    by_channel = {m.channel: m for m in start.motors}
    assert len(bus.sent) == len(E2E_MOTORS) * (LEVELS + 1 + 2 * PHASES)  # staircase, step start, up/down steps
    for ch, x in bus.sent:
        m = by_channel[ch]
        assert m.name in E2E_MOTORS
        assert m.min <= x <= m.max, (m.name, x)
    tight = by_channel[start.motors[0].channel]
    assert max(x for ch, x in bus.sent if ch == tight.channel) == tight.max  # the clamp was reached, not passed
    bus.advance(0.2)  # the relax commands (sent at the end of each motor and on close) arrive
    np.testing.assert_array_equal(bus.face.data.ctrl, bus.face.rest_ctrl)


def test_a_motor_that_does_not_move_keeps_its_start_values(face, reference):
    class FrozenCamera:
        def __init__(self):
            self.frame = face.landmarks_mm("room").copy()

        def read(self):
            return self.frame

    with SimBus(random_true_calibration(1), face=face) as bus:
        cal, report = calibrate(bus, FrozenCamera(), start=nominal_calibration("sim"), motors=["eye_yaw_R"],
                                progress=False, reference=reference)
    assert report.failed == ["eye_yaw_R"] and "not responding" in report.motors[0].message
    assert cal == nominal_calibration("sim")


def test_bad_inputs(face, reference):
    with SimBus(face=face) as bus:
        cam = SimCamera(bus)
        start = nominal_calibration("sim")
        with pytest.raises(ValueError, match="unknown motor.*lip_nope"):
            calibrate(bus, cam, start=start, motors=["lip_nope"], reference=reference)
        with pytest.raises(ValueError, match="sweep"):
            calibrate(bus, cam, start=start, sweep=1.5, reference=reference)
        with pytest.raises(CalibrationError, match=r"motors\[lip_upper_raise_R\].bus"):
            calibrate(bus, cam, start=nominal_calibration("serial"), motors=[TIGHT], reference=reference)
        with pytest.raises(CalibrationError, match="units"):
            calibrate({"pca9685@0x41": bus}, cam, start=nominal_calibration("pca9685"), motors=[TIGHT],
                      reference=reference)
    with pytest.raises(CalibrationError, match="neutral"):
        identity_calibration().replace_motor("jaw_open", neutral=3.0)


def test_cli_sim_writes_a_valid_calibration(tmp_path, capsys):
    out = tmp_path / "calib.json"
    args = add_calibrate_arguments(argparse.ArgumentParser()).parse_args(
        ["--backend", "sim", "--out", str(out), "--motors", "eye_yaw_R", "--seed", "3", "--quiet",
         "--report", str(tmp_path / "report.json")])
    assert main_calibrate(args) == 0
    cal = Calibration.load(out)
    truth = random_true_calibration(3)
    i = cal.names.index("eye_yaw_R")
    assert abs(cal.motors[i].neutral - truth.motors[i].neutral) < NEUTRAL_TOL
    assert abs(cal.motors[i].latency_ms - truth.motors[i].latency_ms) < LATENCY_TOL_MS
    text = capsys.readouterr().out
    assert "recovered vs hidden truth over 1 motors" in text and (tmp_path / "report.json").exists()


def test_cli_hardware_backend_missing_module_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "facetwin.hardware.serial_bus", None)
    args = add_calibrate_arguments(argparse.ArgumentParser()).parse_args(
        ["--backend", "serial", "--out", str(tmp_path / "c.json")])
    with pytest.raises(ValueError, match="facetwin.hardware.serial_bus.DynamixelBus .* not available"):
        main_calibrate(args)
