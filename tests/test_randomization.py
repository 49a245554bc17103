"""Domain randomization: the extended DomainParams (envs/domain.py), the ranges config and wrapper
(envs/randomization.py) and ``facetwin train --randomize`` (agents/rl.py)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from facetwin.envs import domain as dom
from facetwin.envs.domain import DomainParams
from facetwin.envs.mirror_self_model import MirrorSelfModelEnv
from facetwin.envs.randomization import (
    DomainRandomization,
    RandomizationConfig,
    default_config_path,
    load_config,
)
from facetwin.sim.builder import SKIN_THICKNESS


@pytest.fixture(scope="module")
def env():
    e = MirrorSelfModelEnv(max_episode_steps=None, target_pool_size=2)
    yield e
    e.close()


def _episode(env, params, ctrl, steps):
    env.reset(seed=0, options={"domain": params, "target_index": 0})
    for _ in range(steps):
        env.step(ctrl)


# ---------------------------------------------------------------------------------------------------- config
def _write(tmp_path, text):
    p = tmp_path / "r.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text, field, words",
    [
        ("skin_stifness = 1.2", "skin_stifness", "unknown field"),
        ("skin_stiffness = { uniform = [1.4, 0.7] }", "skin_stiffness", "lo > hi"),
        ("skin_damping = { uniform = [-0.1, 1.0] }", "skin_damping", ">= 0"),
        ("obs_noise_mm = -0.5", "obs_noise_mm", ">= 0"),
        ("actuator_gain = { loguniform = [0.0, 1.0] }", "actuator_gain", "lo > 0"),
        ("latency_steps = { loguniform = [1, 3] }", "latency_steps", "integer field"),
        ("latency_steps = { uniform = [0, 2.5] }", "latency_steps", "integer"),
        ("motor_offset = [0.1, 0.2]", "motor_offset", "26"),
        ("deadband = { gaussian = [0, 1] }", "deadband", "uniform"),
        ("landmark_dropout = { choice = [0.1, 1.0] }", "landmark_dropout", "< 1"),
        ("camera_tilt_deg = { choice = [] }", "camera_tilt_deg", "at least one"),
        ("light_scale = { uniform = [0.5] }", "light_scale", "[lo, hi]"),
        ("control_noise = 'loud'", "control_noise", "finite number"),
    ],
)
def test_config_errors_name_the_field(tmp_path, text, field, words):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError) as e:
        load_config(path)
    msg = str(e.value)
    assert f"'{field}'" in msg and words in msg and str(path) in msg


def test_config_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(_write(tmp_path, "skin_stiffness = = 1"))


def test_default_config_covers_every_field_and_round_trips():
    cfg = load_config()
    assert cfg.source == str(default_config_path())
    assert set(cfg.ranges) == {f for f in DomainParams().as_dict()}  # every field is randomized by default
    assert cfg.ranges["skin_stiffness"].values == (0.85, 1.2) and cfg.ranges["actuator_gain"].values == (0.9, 1.1)
    wide = load_config(default_config_path().with_name("randomization_wide.toml"))
    assert set(wide.ranges) == set(cfg.ranges) and wide.ranges["latency_steps"].values == (0, 3)
    assert RandomizationConfig.from_dict(json.loads(json.dumps(cfg.as_dict()))).ranges == cfg.ranges
    assert load_config(None) == cfg


def test_sampling_is_deterministic_per_seed_and_within_the_ranges():
    cfg = load_config()
    a = cfg.sample(np.random.default_rng(7))
    assert a == cfg.sample(np.random.default_rng(7)) and a != cfg.sample(np.random.default_rng(8))
    draws = [cfg.sample(np.random.default_rng(s)) for s in range(300)]
    for name, r in cfg.ranges.items():
        v = np.array([np.asarray(getattr(d, name), dtype=float) for d in draws])
        lo, hi = r.values
        assert lo <= v.min() and v.max() <= hi, name
        assert v.max() - v.min() > 0.8 * (hi - lo), name  # the whole range is used
    lat = np.array([d.latency_steps for d in draws])
    assert set(lat.tolist()) == {0, 1}
    offsets = np.array([d.motor_offset for d in draws])
    assert offsets.shape == (300, 26) and len(np.unique(offsets[0])) == 26  # drawn per motor
    assert np.array([d.camera_shift_mm for d in draws]).shape == (300, 3)
    damping = np.log([d.skin_damping for d in draws])  # log-uniform: uniform in log space
    assert abs(np.median(damping)) < 0.15
    # fixed values and choices
    cfg2 = RandomizationConfig.from_dict({"light_scale": 0.9, "obs_noise_mm": {"choice": [0.0, 0.5]},
                                          "deadband": [0.01] * 26})
    d = [cfg2.sample(np.random.default_rng(s)) for s in range(50)]
    assert {x.light_scale for x in d} == {0.9} and {x.obs_noise_mm for x in d} == {0.0, 0.5}
    assert all(x.deadband == (0.01,) * 26 and x.skin_stiffness == 1.0 for x in d)


# ---------------------------------------------------------------------------------------------------- params
def test_new_domain_params_validation():
    for bad in (dict(skin_thickness=0), dict(actuator_force_limit=[1.0] * 25), dict(motor_offset=1.5),
                dict(deadband=-0.01), dict(control_noise=-1), dict(camera_shift_mm=(1.0, 2.0)),
                dict(camera_tilt_deg=(0, 95, 0)), dict(camera_fov_scale=0), dict(light_scale=-0.1)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            DomainParams(**bad)
    p = DomainParams(motor_offset=[0.0] * 26, camera_shift_mm=[0, 0, 0])
    assert p.is_nominal and p == DomainParams(motor_offset=(0.0,) * 26) and hash(p)
    assert not DomainParams(light_scale=1.1).is_nominal
    assert DomainParams.from_dict(DomainParams(deadband=[0.01] * 26).as_dict()).deadband == (0.01,) * 26


def test_apply_writes_every_model_field_without_compounding_and_nominal_restores(env):
    m, face = env.face.model, env.face
    dom.apply(face, dom.nominal())
    snap = {k: np.array(getattr(m, k)) for k in ("flex_stiffness", "flex_bending", "flex_damping", "body_mass",
                                                 "actuator_forcerange", "cam_pos", "cam_quat", "cam_fovy",
                                                 "light_diffuse", "actuator_gainprm", "actuator_biasprm")}
    head0 = np.array(m.vis.headlight.diffuse)
    skin = np.array([m.body(i).name.startswith("skin_") for i in range(m.nbody)])
    lim = np.linspace(0.5, 1.0, 26)
    p = DomainParams(skin_stiffness=1.5, skin_thickness=1.2, actuator_force_limit=lim, camera_shift_mm=(0, 0, 10),
                     camera_tilt_deg=(1, 2, 3), camera_fov_scale=1.1, light_scale=0.5)
    for _ in range(2):
        dom.apply(face, p)
        np.testing.assert_allclose(m.flex_stiffness, snap["flex_stiffness"] * 1.5 * 1.2)
        np.testing.assert_allclose(m.flex_bending, snap["flex_bending"] * 1.5 * 1.2**3)
        np.testing.assert_allclose(m.body_mass[skin], snap["body_mass"][skin] * 1.2)
        np.testing.assert_array_equal(m.body_mass[~skin], snap["body_mass"][~skin])
        np.testing.assert_allclose(m.actuator_forcerange, snap["actuator_forcerange"] * lim[:, None])
        np.testing.assert_allclose(m.cam_fovy, snap["cam_fovy"] * 1.1)
        np.testing.assert_allclose(m.light_diffuse, snap["light_diffuse"] * 0.5)
        np.testing.assert_allclose(m.vis.headlight.diffuse, head0 * 0.5)
        # 10 mm backwards along each camera's own z axis, whatever its orientation
        np.testing.assert_allclose(np.linalg.norm(m.cam_pos - snap["cam_pos"], axis=1), 0.010)
        np.testing.assert_allclose(np.linalg.norm(m.cam_quat, axis=1), 1.0)
    assert dom.current(face) == p
    assert SKIN_THICKNESS == 0.0025  # the nominal thickness the scale refers to (docstring)
    dom.apply(face, dom.nominal())
    for k, v in snap.items():
        np.testing.assert_array_equal(getattr(m, k), v, err_msg=k)
    np.testing.assert_array_equal(m.vis.headlight.diffuse, head0)


# ---------------------------------------------------------------------------------------------------- effects
def test_thickness_stiffens_the_skin(env):
    u = env.face.controls(lip_corner_pull_L=1.0, lip_corner_pull_R=1.0, jaw_open=0.5)

    def disp(p):
        _episode(env, p, u, 20)
        return np.linalg.norm(env.face.landmarks_mm() - env.face.neutral_landmarks_mm, axis=1).mean()

    assert disp(DomainParams(skin_thickness=1.4)) < 0.95 * disp(DomainParams())


def test_offset_moves_the_motors_by_the_offset(env):
    u = env.face.controls(lip_corner_pull_L=0.3, lip_corner_pull_R=0.3, jaw_open=0.0, neck_yaw=0.2, eye_yaw_L=0.2)
    off = np.linspace(-0.05, 0.05, 26)
    _episode(env, DomainParams(), u, 30)
    pos0 = env.face.motor_positions()
    _episode(env, DomainParams(motor_offset=off), u, 30)
    np.testing.assert_allclose(env.applied_controls, np.clip(u + off, -1, 1))
    np.testing.assert_allclose(env.face.motor_positions() - pos0, off, atol=0.01)  # skin load: within 0.01


def test_deadband_ignores_small_command_changes(env):
    band = 0.02
    env.reset(seed=0, options={"domain": DomainParams(deadband=band), "target_index": 0})
    rest = env.rest_ctrl
    env.step(rest)
    env.step(np.clip(rest + 0.015, -1, 1))  # smaller than the band: ignored
    np.testing.assert_array_equal(env.applied_controls, rest)
    big = np.clip(rest + 0.025, -1, 1)
    env.step(big)  # larger: the servos take it
    np.testing.assert_allclose(env.applied_controls, big)
    env.step(big - 0.01)  # a small step back: held
    np.testing.assert_allclose(env.applied_controls, big)


def test_force_limit_caps_the_actuator_force(env):
    extreme = np.clip(env.rest_ctrl + np.where(np.arange(26) % 2, 1.0, -1.0), -1, 1)

    def peak(p):
        env.reset(seed=0, options={"domain": p, "target_index": 0})
        out = 0.0
        for _ in range(5):
            env.step(extreme)
            out = max(out, float(np.abs(env.face.data.actuator_force).max()))
        return out

    cap = 0.2 * env.face.model.actuator_forcerange[:, 1].max()  # nominal +-15 N
    assert peak(DomainParams()) > 2 * cap
    assert peak(DomainParams(actuator_force_limit=0.2)) <= cap + 1e-9


def test_control_noise_varies_the_commands(env):
    u = env.face.controls(jaw_open=0.0)
    env.reset(seed=1, options={"domain": DomainParams(control_noise=0.05), "target_index": 0})
    applied = []
    for _ in range(20):
        env.step(u)
        applied.append(env.applied_controls)
    diff = np.array(applied) - u
    inside = np.abs(u) < 0.8  # away from the clip at +-1
    assert 0.04 < diff[:, inside].std() < 0.06
    assert np.abs(diff[1] - diff[0]).min() > 0  # fresh noise every step
    # reproducible for a seed
    env.reset(seed=1, options={"domain": DomainParams(control_noise=0.05), "target_index": 0})
    env.step(u)
    np.testing.assert_array_equal(env.applied_controls, applied[0])


def test_nominal_actuation_passes_commands_through_and_draws_nothing():
    rest = np.zeros(26)
    rng = np.random.default_rng(0)
    act = dom.Actuation(DomainParams(), rest, rng)
    cmd = np.linspace(-1, 1, 26)
    assert act(cmd) is cmd and np.array_equal(act.rest, rest)
    assert rng.random() == np.random.default_rng(0).random()


def test_camera_and_light_change_the_pixels_and_nominal_restores_them(env):
    from facetwin.sim.render import MirrorRenderer

    env.reset(seed=0, options={"domain": DomainParams(), "target_index": 0})
    with MirrorRenderer(env.face, "obs", camera="mouth") as r:
        base = r.render().astype(int)
        changed = {}
        for name, p in {"shift": DomainParams(camera_shift_mm=(3, 0, 0)), "tilt": DomainParams(camera_tilt_deg=(0, 2, 0)),
                        "fov": DomainParams(camera_fov_scale=1.1), "light": DomainParams(light_scale=0.6)}.items():
            dom.apply(env.face, p)
            changed[name] = float(np.abs(r.render().astype(int) - base).mean())
        dom.apply(env.face, DomainParams(light_scale=0.6))
        darker = r.render().astype(int).mean()
        dom.apply(env.face, dom.nominal())
        again = r.render().astype(int)
    assert all(v > 1.0 for v in changed.values()), changed
    assert darker < base.mean() - 5
    np.testing.assert_array_equal(again, base)


def test_pixel_observations_follow_the_episode_domain():
    e = MirrorSelfModelEnv(obs_mode="pixels", target_pool_size=1)
    try:
        a = e.reset(seed=0, options={"target_index": 0})[0]["pixels"].astype(int)
        b = e.reset(seed=0, options={"target_index": 0, "domain": DomainParams(camera_shift_mm=(4, 0, 0))})[0]["pixels"]
        c = e.reset(seed=0, options={"target_index": 0})[0]["pixels"]
    finally:
        e.close()
    assert np.abs(b.astype(int) - a).mean() > 1.0
    np.testing.assert_array_equal(c, a)


def test_randomized_episode_then_nominal_episode_is_the_nominal_twin(env):
    u = env.face.controls(lip_corner_pull_L=1.0, jaw_open=0.3)

    def lm():
        _episode(env, DomainParams(), u, 10)
        return env.face.landmarks_mm()

    first = lm()
    _episode(env, load_config().sample(np.random.default_rng(3)), u, 10)
    np.testing.assert_array_equal(lm(), first)


# ---------------------------------------------------------------------------------------------------- wrapper
def test_wrapper_passes_fresh_params_per_reset_and_reports_them(env):
    cfg = load_config()
    w = DomainRandomization(env, cfg)
    seen = []
    for s in range(4):
        _, info = w.reset(seed=s)
        assert info["domain"] == env.domain_params and not info["domain"].is_nominal
        seen.append(info["domain"])
    assert len(set(seen)) == 4
    assert w.reset(seed=2)[1]["domain"] == seen[2]  # seed=None: drawn from the env's seeded np_random
    assert w.reset()[1]["domain"] not in seen
    own = DomainRandomization(env, cfg, seed=5)
    d1 = own.reset(seed=0)[1]["domain"]
    assert d1 != seen[0] and own.reset(seed=0)[1]["domain"] == d1  # its own stream, re-seeded per reset seed
    assert own.reset(seed=0, options={"domain": DomainParams()})[1]["domain"] == DomainParams()  # caller's wins
    with pytest.raises(TypeError, match="domain"):
        import gymnasium as gym

        DomainRandomization(gym.make("CartPole-v1"), cfg)


def test_config_is_a_domain_callable():
    e = MirrorSelfModelEnv(target_pool_size=1, domain=load_config())
    try:
        e.reset(seed=4)
        p = e.domain_params
        e.reset(seed=4)
        assert e.domain_params == p and not p.is_nominal
    finally:
        e.close()


# ---------------------------------------------------------------------------------------------------- training
def test_train_randomize_smoke_records_the_config(tmp_path):
    from facetwin.cli import main

    out = tmp_path / "run"
    rc = main(["train", "--steps", "200", "--n-envs", "1", "--randomize", "--eval-randomize", "--eval-episodes", "2",
               "--env-arg", "target_pool_size=2", "--no-progress", "--out", str(out)])
    assert rc == 0
    ranges = load_config().as_dict()
    with zipfile.ZipFile(out / "checkpoint.zip") as zf:
        meta = json.loads(zf.read("meta.json"))
    assert meta["randomize"]["ranges"] == json.loads(json.dumps(ranges))
    report = json.loads((out / "eval.json").read_text())
    assert report["randomize"] == meta["randomize"] and report["eval_randomize"]["domain_seed"] == 2_000_000
    nominal = report["results"]["neutral face"]["final_error_mm"]
    randomized = report["results_randomized"]["neutral face"]["final_error_mm"]
    assert len(randomized) == 2 and randomized != nominal  # the same episodes on other twins
    # a resumed run must use the same ranges
    rc = main(["train", "--steps", "300", "--n-envs", "1", "--resume", "--eval-episodes", "0",
               "--env-arg", "target_pool_size=2", "--no-progress", "--out", str(out)])
    assert rc == 2
