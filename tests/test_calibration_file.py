"""The calibration file: round trip, mapping, and every malformed file refused with the field named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facetwin.hardware.calibration import CALIBRATION_VERSION, Calibration, CalibrationError, nominal_calibration


def test_round_trip_and_mapping(tmp_path):
    cal = nominal_calibration("pca9685")
    path = cal.save(tmp_path / "robot.json")
    again = Calibration.load(path)
    assert again == cal and json.loads(path.read_text())["version"] == CALIBRATION_VERSION
    u = np.linspace(-1, 1, 26)
    units = cal.to_units(u)
    np.testing.assert_allclose(cal.to_command(units), u)
    assert units[0] == 1500 - 400 and units[-1] == 1500 + 400        # neutral + direction * scale * u
    flipped = cal.replace_motor(cal.names[0], direction=-1)
    assert flipped.to_units(u)[0] == 1500 + 400
    np.testing.assert_array_equal(cal.clamp([5000.0] * 26), cal.hi)
    assert [m.bus for m in cal.motors[:16]] == ["pca9685@0x41"] * 16 and cal.motors[16].bus == "pca9685@0x42"


def _bad(tmp_path, edit) -> str:
    d = nominal_calibration("pca9685").to_dict()
    edit(d)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    with pytest.raises(CalibrationError) as e:
        Calibration.load(p)
    assert str(p) in str(e.value)
    return str(e.value)


@pytest.mark.parametrize("edit, field", [
    (lambda d: d["motors"].pop(10), "missing motor(s) jaw_open"),
    (lambda d: d["motors"][3].update(neutral=2500.0), "motors[lip_lower_depress_L].neutral"),
    (lambda d: d["motors"][3].update(min=2000.0), "min (2000.0) must be < max"),
    (lambda d: d["motors"][3].update(gain=2.0), "unknown field(s) gain"),
    (lambda d: d.update(extra=1), "unknown field(s) extra"),
    (lambda d: d.update(version=99), "version"),
    (lambda d: d["motors"][0].update(direction=0), "direction: must be +1 or -1"),
    (lambda d: d["motors"][0].update(scale=-1.0), "scale: must be > 0"),
    (lambda d: d["motors"][0].update(channel=17), "a PCA9685 has channels 0-15"),
    (lambda d: d["motors"][1].update(channel=0), "channel 0 is also lip_upper_raise_R"),
    (lambda d: d["motors"][0].update(neutral=float("nan")), "neutral: must be a finite number"),
    (lambda d: d["motors"][0].pop("max"), "missing field(s) max"),
    (lambda d: d["motors"][0].update(latency_ms=-5.0), "latency_ms: must be >= 0"),
    (lambda d: d.update(units="degrees"), "units"),
    (lambda d: d["motors"].reverse(), "actuator order"),
    # one board, three spellings: one physical channel
    (lambda d: d["motors"][1].update(bus="PCA9685@0X41", channel=0), "pca9685@0x41 channel 0 is also"),
    (lambda d: d["motors"][1].update(bus="pca9685@65", channel=0), "pca9685@0x41 channel 0 is also"),
    (lambda d: d["motors"][2].update(min=400.0), "outside what pca9685@0x41 can take, [500, 2500]"),
    (lambda d: d["motors"][2].update(max=2600.0), "outside what pca9685@0x41 can take"),
    (lambda d: d["motors"][2].update(scale=1e9), "motors[lip_lower_depress_R].scale"),
    (lambda d: d.update(units="position"), "takes units 'us', the file says units 'position'"),
    (lambda d: d["motors"][0].update(bus="banana"), "motors[0] (lip_upper_raise_R).bus: unknown bus 'banana'"),
    (lambda d: d["motors"][0].update(bus="pca9685@0xZZ"), "no valid I2C address"),
    (lambda d: d["motors"][0].update(bus="pca9685@0x10"), "outside 0x40-0x7f"),
    (lambda d: d["motors"][0].update(bus=7), "motors[0] (lip_upper_raise_R).bus"),
    (lambda d: d.update(version=True), "version"),
    (lambda d: d.update(robot=None), "robot: must be a non-empty name"),
    (lambda d: d["motors"][0].update(channel=float("nan")), "motors[0] (lip_upper_raise_R).channel"),
    (lambda d: d["motors"][0].update(latency_ms=1e9), "latency_ms: 1000000000.0 is more than 500 ms"),
])
def test_malformed_files_are_refused_with_the_field_named(tmp_path, edit, field):
    assert field in _bad(tmp_path, edit)


def test_not_json_and_missing_file(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(CalibrationError, match="not valid JSON"):
        Calibration.load(p)
    with pytest.raises(FileNotFoundError, match="no such calibration"):
        Calibration.load(tmp_path / "nope.json")


def test_bus_names_are_parsed_once_into_one_spelling(tmp_path):
    from facetwin.hardware.calibration import BusAddress

    d = nominal_calibration("pca9685").to_dict()
    d["motors"][0]["bus"], d["motors"][1]["bus"] = "PCA9685@0X41", "pca9685@65"
    p = tmp_path / "spellings.json"
    p.write_text(json.dumps(d))
    cal = Calibration.load(p)
    assert {m.bus for m in cal.motors[:16]} == {"pca9685@0x41"}  # deploy opens one board, not three
    assert BusAddress.parse(" Serial ") == BusAddress("serial") and BusAddress.parse("pca9685@0x42").address == 0x42
    with pytest.raises(CalibrationError):
        nominal_calibration("pca9685").replace_motor("jaw_open", bus="pca9685@0x41", channel=0)


_NASTY = [None, True, False, "", "x", "pca9685@0x41", "PCA9685@0x42", "pca9685@66", "serial", "sim", "banana", [], {},
          float("nan"), float("inf"), -float("inf"), 1e300, -1e300, 0, -1, 1, 15, 16, 252, 253, 0.5, 499.0, 500.0,
          1000.0, 1500.0, 2000.0, 2500.0, 2501.0, 4095.0, 4096.0, 1e9, -5.0, 45.0, 500.5, 1e5]
_TOP = ["version", "robot", "units", "motors"]


@pytest.mark.parametrize("seed", range(4))
def test_fuzzed_files_are_refused_with_a_field_or_safe_for_their_buses(tmp_path, seed):
    """Random mutations of a valid file: each load either names a field or gives a calibration that every bus can
    take (one motor per physical channel, the range inside the driver's, the latency bounded)."""
    from facetwin.hardware.calibration import BUS_LIMITS, MAX_LATENCY_MS, BusAddress

    rng = np.random.default_rng(seed)
    fields = ["name", "bus", "channel", "direction", "neutral", "scale", "min", "max", "latency_ms"]
    loaded = refused = 0
    for trial in range(250):
        d = nominal_calibration(["pca9685", "serial", "sim"][trial % 3]).to_dict()
        for _ in range(int(rng.integers(1, 4))):
            v = _NASTY[int(rng.integers(len(_NASTY)))]
            if rng.random() < 0.15:
                d[_TOP[int(rng.integers(len(_TOP)))]] = v
            elif isinstance(d["motors"], list) and d["motors"]:
                m = d["motors"][int(rng.integers(len(d["motors"])))]
                if isinstance(m, dict):
                    m[fields[int(rng.integers(len(fields)))]] = v
        p = tmp_path / f"f{trial}.json"
        p.write_text(json.dumps(d))
        try:
            cal = Calibration.load(p)
        except CalibrationError as e:
            msg = str(e)
            assert "\n" not in msg and any(f in msg for f in _TOP + fields), msg
            refused += 1
            continue
        loaded += 1
        keys = [(BusAddress.parse(m.bus), m.channel) for m in cal.motors]
        assert len(set(keys)) == len(keys)
        for m in cal.motors:
            lo, hi = BUS_LIMITS[BusAddress.parse(m.bus).kind]
            assert lo <= m.min < m.max <= hi and 0 <= m.latency_ms <= MAX_LATENCY_MS
            units = cal.clamp(cal.to_units(np.full(26, 1.0)))
            assert np.isfinite(units).all() and (units >= cal.lo).all() and (units <= cal.hi).all()
    assert loaded >= 3 and refused > 100, (loaded, refused)  # both sides of the property were exercised
