"""The standalone MJCF: export, reload, identical simulation; the shipped model folder is up to date."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import mujoco
import numpy as np
import pytest

from facetwin.sim import FaceModel, build_mjcf

MODEL_DIR = Path(str(resources.files("facetwin.assets").joinpath("face")))


def _names(m: mujoco.MjModel, obj: mujoco.mjtObj, n: int) -> list[str]:
    return [mujoco.mj_id2name(m, obj, i) for i in range(n)]


@pytest.mark.parametrize("variant", ["full", "fast"])
def test_exported_xml_reloads_and_matches(tmp_path, variant):
    face = FaceModel.load(variant)
    path = face.export_xml(tmp_path / "face.xml")
    m2 = mujoco.MjModel.from_xml_path(str(path))
    m1 = face.model
    for attr in ("nq", "nv", "nu", "nbody", "ntendon", "nflex", "nflexvert", "nflexelem", "nsite", "ncam"):
        assert getattr(m1, attr) == getattr(m2, attr), attr
    assert _names(m1, mujoco.mjtObj.mjOBJ_ACTUATOR, m1.nu) == _names(m2, mujoco.mjtObj.mjOBJ_ACTUATOR, m2.nu)
    assert m1.opt.timestep == m2.opt.timestep
    np.testing.assert_array_equal(m1.actuator_gainprm, m2.actuator_gainprm)
    np.testing.assert_array_equal(m1.actuator_biasprm, m2.actuator_biasprm)
    # same controls, same trajectory
    d1, d2 = mujoco.MjData(m1), mujoco.MjData(m2)
    rng = np.random.default_rng(0)
    for _ in range(20):
        u = rng.uniform(-1, 1, m1.nu)
        d1.ctrl[:] = u
        d2.ctrl[:] = u
        mujoco.mj_step(m1, d1, nstep=5)
        mujoco.mj_step(m2, d2, nstep=5)
    np.testing.assert_allclose(d1.qpos, d2.qpos, atol=1e-9)


def test_shipped_model_folder_is_current():
    """assets/face/face.xml is what the builder makes (regenerate: facetwin export-xml --out assets/face/face.xml)."""
    shipped = (MODEL_DIR / "face.xml").read_text()
    assert shipped == build_mjcf("full"), "assets/face/face.xml is stale: regenerate it with `facetwin export-xml`"
    for name in ("README.md", "LICENSE", "CHANGELOG.md", "scene.xml"):
        assert (MODEL_DIR / name).is_file(), name


def test_scene_loads_with_the_face():
    m = mujoco.MjModel.from_xml_path(str(MODEL_DIR / "scene.xml"))
    assert m.nu == 26 and m.nflex == 1
    d = mujoco.MjData(m)
    mujoco.mj_step(m, d, nstep=30)
    assert np.isfinite(d.qpos).all()


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="unknown model variant"):
        build_mjcf("ultra")
