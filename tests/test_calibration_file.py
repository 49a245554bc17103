"""The calibration file: round trip, mapping, and every malformed file refused with the field named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facetwin.sim2real.calibration import CALIBRATION_VERSION, Calibration, CalibrationError, nominal_calibration


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
