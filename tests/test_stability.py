"""Menagerie-style stress test: long runs of random and saturated controls, no NaN, no MuJoCo warning."""

from __future__ import annotations

import numpy as np
import pytest

from facetwin.sim import FaceModel

MINUTES = 5.0  # per control pattern; two patterns = 10 simulated minutes per variant


def _run(face: FaceModel, pattern: str, minutes: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    face.reset()
    n = int(minutes * 60 * face.control_hz)
    hold = 1
    u = face.rest_ctrl.copy()
    for k in range(n):
        if k % hold == 0:
            if pattern == "random":
                u = rng.uniform(-1.0, 1.0, face.n_actuators)
            else:  # bang-bang: every actuator saturated, switching at random intervals of 1-10 control steps
                u = rng.choice([-1.0, 1.0], size=face.n_actuators)
            hold = int(rng.integers(1, 11))
        face.step(u)
        if k % 300 == 0:
            assert not face.is_diverged(), f"{pattern}: diverged at t={face.time:.1f}s"
    d = face.data
    assert np.isfinite(d.qpos).all() and np.isfinite(d.qvel).all() and np.isfinite(d.qacc).all()
    assert face.warnings() == {}, f"{pattern}: MuJoCo warnings {face.warnings()}"
    lm = face.landmarks_mm()
    assert np.isfinite(lm).all()
    # the skin stays on the face: no landmark wanders further than 40 mm from its neutral place
    assert np.linalg.norm(lm - face.neutral_landmarks_mm, axis=1).max() < 40.0


@pytest.mark.parametrize("variant", ["full", "fast"])
@pytest.mark.parametrize("pattern", ["random", "bang-bang"])
def test_long_random_and_saturated_controls(variant, pattern):
    face = FaceModel.load(variant)
    _run(face, pattern, MINUTES, seed=hash((variant, pattern)) % 1000)
    # and the face comes back to neutral afterwards
    face.step(face.rest_ctrl, n_control_steps=60)
    err = np.linalg.norm(face.landmarks_mm() - face.neutral_landmarks_mm, axis=1)
    assert err.max() < 1.0, f"face did not return to neutral: {err.max():.2f} mm"
