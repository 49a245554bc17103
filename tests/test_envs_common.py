"""The shared environment machinery (facetwin.envs.base, facetwin.envs.domain) and babbling, on MirrorSelfModel."""

from __future__ import annotations

import functools
import warnings

import gymnasium as gym
import numpy as np
import pytest

from facetwin.envs import domain as dom
from facetwin.envs.babble import babble
from facetwin.envs.domain import DomainParams
from facetwin.envs.mirror_self_model import MirrorSelfModelEnv

ENV_ID = "facetwin/MirrorSelfModel-v0"


def _register():
    if ENV_ID not in gym.registry:
        gym.register(ENV_ID, entry_point="facetwin.envs.mirror_self_model:MirrorSelfModelEnv",
                     max_episode_steps=60, kwargs={"max_episode_steps": None})


@pytest.fixture(scope="module")
def env():
    e = MirrorSelfModelEnv(max_episode_steps=None, target_pool_size=4)
    yield e
    e.close()


def _smile(env):
    return env.face.controls(lip_corner_pull_L=1.0, lip_corner_pull_R=1.0, jaw_open=0.5, brow_inner_L=1.0)


def _displacement_after(env, ctrl, steps, params):
    env.reset(seed=0, options={"domain": params, "target_index": 0})
    for _ in range(steps):
        env.step(ctrl)
    return np.linalg.norm(env.face.landmarks_mm() - env.face.neutral_landmarks_mm, axis=1)


# ---------------------------------------------------------------------------------------------------- domain
def test_domain_params_validation_and_nominal():
    assert dom.nominal() == DomainParams() and DomainParams().is_nominal
    assert DomainParams(actuator_gain=[1.0] * 26).is_nominal
    for bad in (dict(skin_stiffness=0), dict(skin_stiffness=float("nan")), dict(skin_damping=-1),
                dict(actuator_gain=[1.0] * 3), dict(actuator_gain=-1.0), dict(latency_steps=1.5),
                dict(latency_steps=-1), dict(obs_noise_mm=-0.1), dict(landmark_dropout=1.0)):
        with pytest.raises(ValueError):
            DomainParams(**bad)
    with pytest.raises(ValueError, match="unknown domain parameter"):
        DomainParams.from_dict({"stiffness": 2.0})
    p = DomainParams(latency_steps=2).replace(obs_noise_mm=0.5)
    assert p.latency_steps == 2 and p.obs_noise_mm == 0.5 and not p.is_nominal


def test_apply_sets_fields_from_nominal_without_compounding(env):
    m = env.face.model
    dom.apply(env.face, dom.nominal())
    k0, b0, d0 = m.flex_stiffness.copy(), m.flex_bending.copy(), m.flex_damping.copy()
    g0, bias0 = m.actuator_gainprm[:, 0].copy(), m.actuator_biasprm[:, :3].copy()
    gains = np.linspace(0.5, 1.5, 26)
    p = DomainParams(skin_stiffness=2.0, skin_damping=3.0, actuator_gain=gains)
    for _ in range(2):  # twice: no compounding
        dom.apply(env.face, p)
        np.testing.assert_allclose(m.flex_stiffness, 2.0 * k0)
        np.testing.assert_allclose(m.flex_bending, 2.0 * b0)
        np.testing.assert_allclose(m.flex_damping, 3.0 * d0)
        np.testing.assert_allclose(m.actuator_gainprm[:, 0], gains * g0)
        np.testing.assert_allclose(m.actuator_biasprm[:, 1], gains * bias0[:, 1])
        np.testing.assert_allclose(m.actuator_biasprm[:, 2], np.sqrt(gains) * bias0[:, 2])
    assert dom.current(env.face) == p
    # the ctrl -> target mapping (hence motor_positions) is unchanged by a gain scale
    np.testing.assert_allclose(m.actuator_biasprm[:, 0] / m.actuator_gainprm[:, 0], bias0[:, 0] / g0)
    dom.apply(env.face, dom.nominal())
    assert np.array_equal(m.flex_stiffness, k0) and np.array_equal(m.actuator_biasprm[:, :3], bias0)


def test_domain_changes_dynamics_measurably(env):
    u = _smile(env)
    nominal = _displacement_after(env, u, 20, dom.nominal())
    weak = _displacement_after(env, u, 20, DomainParams(actuator_gain=0.25))
    stiff = _displacement_after(env, u, 20, DomainParams(skin_stiffness=3.0))
    assert nominal.max() > 5.0
    assert weak.mean() < 0.9 * nominal.mean()  # lower servo gain: the skin gives less
    assert stiff.mean() < 0.9 * nominal.mean()  # stiffer skin: smaller displacement
    # damping changes the transient, not (much) the steady shape
    fast = _displacement_after(env, u, 3, dom.nominal())
    damped = _displacement_after(env, u, 3, DomainParams(skin_damping=10.0))
    assert np.abs(fast - damped).max() > 0.2
    # and the next nominal episode is nominal again
    np.testing.assert_array_equal(_displacement_after(env, u, 20, dom.nominal()), nominal)


@pytest.mark.parametrize("k", [1, 3])
def test_latency_delays_the_response_by_exactly_k_steps(env, k):
    rng = np.random.default_rng(1)
    actions = np.clip(env.rest_ctrl + 0.5 * rng.standard_normal((12, 26)), -1, 1)
    rest = np.tile(env.rest_ctrl, (k, 1))

    def run(params, acts):
        env.reset(seed=0, options={"domain": params, "target_index": 0})
        return np.array([env.step(a)[0]["landmarks"] for a in acts])

    delayed = run(DomainParams(latency_steps=k), actions)
    shifted = run(dom.nominal(), np.concatenate([rest, actions]))[: len(actions)]
    np.testing.assert_array_equal(delayed, shifted)
    held = run(dom.nominal(), rest)
    np.testing.assert_array_equal(delayed[:k], held)
    assert np.abs(delayed[k] - delayed[k - 1]).max() > 0.01  # it does move once the first command arrives


def test_observation_noise_and_dropout(env):
    env.reset(seed=3, options={"target_index": 0})
    clean = env.step(env.rest_ctrl)[0]["landmarks"]
    env.reset(seed=3, options={"target_index": 0, "domain": DomainParams(obs_noise_mm=2.0)})
    noisy = env.step(env.rest_ctrl)[0]["landmarks"]
    std_mm = float(np.std(noisy - clean)) * 10.0  # observation unit = 10 mm
    assert 1.8 < std_mm < 2.2
    env.reset(seed=3, options={"target_index": 0, "domain": DomainParams(landmark_dropout=0.5)})
    u = _smile(env)
    frac = []
    for _ in range(10):
        obs = env.step(u)[0]["landmarks"].reshape(-1, 3)
        frac.append(np.mean(np.all(obs == 0.0, axis=1)))  # a dropped landmark reads as neutral = 0
    assert 0.35 < np.mean(frac) < 0.65
    # rewards use the true landmarks: same error with or without sensing noise
    env.reset(seed=5, options={"target_index": 1})
    e0 = env.step(u)[4]["error_mm"]
    env.reset(seed=5, options={"target_index": 1, "domain": DomainParams(obs_noise_mm=5.0)})
    assert env.step(u)[4]["error_mm"] == e0


def test_domain_callable_is_called_at_every_reset_with_the_env_rng():
    calls = []

    def randomize(rng):
        calls.append(rng)
        return DomainParams(skin_stiffness=float(rng.uniform(0.5, 2.0)), obs_noise_mm=0.3)

    e = MirrorSelfModelEnv(domain=randomize, target_pool_size=2)
    try:
        e.reset(seed=0)
        s0 = e.domain_params.skin_stiffness
        e.reset()
        assert len(calls) == 2 and calls[0] is e.np_random
        e.reset(seed=0)
        assert e.domain_params.skin_stiffness == s0
        e.reset(options={"domain": DomainParams(latency_steps=1)})  # per-episode override
        assert len(calls) == 3 and e.domain_params.latency_steps == 1
        with pytest.raises(TypeError):
            MirrorSelfModelEnv(domain=3)
    finally:
        e.close()


# ---------------------------------------------------------------------------------------------------- base
def test_seeding_reproduces_episodes():
    def episode(seed):
        e = MirrorSelfModelEnv(domain=DomainParams(obs_noise_mm=0.5, landmark_dropout=0.1), target_pool_size=8)
        e.action_space.seed(seed)
        obs, _ = e.reset(seed=seed)
        out = [obs["landmarks"], obs["target"]]
        for _ in range(5):
            obs, r, *_ = e.step(e.action_space.sample())
            out += [obs["landmarks"], np.array([r])]
        e.close()
        return np.concatenate(out)

    a, b, c = episode(7), episode(7), episode(8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_bad_actions_raise(env):
    env.reset(seed=0)
    a = env.rest_ctrl.astype(np.float32)
    a[3] = np.nan
    with pytest.raises(ValueError, match="NaN or inf.*lip_lower_depress_L"):
        env.step(a)
    a[3] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        env.step(a)
    with pytest.raises(ValueError, match=r"shape \(26,\)"):
        env.step(np.zeros(25))
    with pytest.raises(ValueError, match=r"shape \(26,\)"):
        env.step(np.zeros((2, 26)))
    obs, *_ = env.step(np.full(26, 5.0))  # out of range: clipped like FaceModel controls
    assert np.array_equal(env.command, np.ones(26))
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"targte_ctrl": env.rest_ctrl})
    with pytest.raises(ValueError, match="options must be a dict"):
        env.reset(options=[1, 2])
    with pytest.raises(ValueError, match="real numbers"):  # not silently dropping the imaginary part
        env.step(np.zeros(26) + 0.5j)
    with pytest.raises(ValueError, match="real numbers"):
        env.step(["0.1"] * 26)
    for bad in (dict(action_mode="velocity"), dict(render_mode="human"), dict(max_delta=0.0)):
        with pytest.raises(ValueError):
            MirrorSelfModelEnv(**bad)


def test_delta_action_mode():
    e = MirrorSelfModelEnv(action_mode="delta", max_delta=0.1, target_pool_size=2)
    try:
        e.reset(seed=0)
        a = np.zeros(26, np.float32)
        a[0] = 1.0
        for _ in range(3):
            e.step(a)
        assert e.command[0] == pytest.approx(0.3) and np.array_equal(e.command[1:], e.rest_ctrl[1:])
        a[10] = -1.0  # jaw_open is at rest -1: clipped
        e.step(a)
        assert e.command[10] == -1.0
        np.testing.assert_allclose(e.action_to_ctrl(e.ctrl_to_action(e.command + 0.05)), e.command + 0.05)
    finally:
        e.close()


def test_divergence_truncates_with_finite_observation(env):
    obs0, _ = env.reset(seed=0, options={"target_index": 0})
    dt = env.face.model.opt.timestep
    try:
        env.face.model.opt.timestep = 1.0  # absurd: the skin blows up
        for _ in range(10):
            obs, reward, terminated, truncated, info = env.step(np.ones(26, np.float32))
            assert np.isfinite(reward) and all(np.isfinite(v).all() for v in obs.values())
            if info["diverged"]:
                break
        assert info["diverged"] and truncated and not terminated
    finally:
        env.face.model.opt.timestep = dt
    assert not env.face.is_diverged()
    obs, _ = env.reset(seed=0, options={"target_index": 0})
    np.testing.assert_array_equal(obs["landmarks"], obs0["landmarks"])


def test_render_rgb_array_and_close():
    e = MirrorSelfModelEnv(render_mode="rgb_array", target_pool_size=2)
    e.reset(seed=0)
    img = e.render()
    assert img.shape == (480, 640, 3) and img.dtype == np.uint8 and img.std() > 10
    assert e.metadata["render_fps"] == 30
    e.close()
    e.close()
    e2 = MirrorSelfModelEnv(target_pool_size=2)
    e2.reset(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert e2.render() is None
    e2.close()


# ---------------------------------------------------------------------------------------------------- vectorized
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_make_vec(mode):
    _register()
    venv = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode=mode, target_pool_size=4)
    try:
        obs, info = venv.reset(seed=[0, 1])
        assert obs["landmarks"].shape == (2, 207) and obs["target"].shape == (2, 207)
        for _ in range(3):
            obs, rew, term, trunc, info = venv.step(venv.action_space.sample())
        assert rew.shape == (2,) and np.isfinite(rew).all() and info["error_mm"].shape == (2,)
    finally:
        venv.close()


def test_sb3_subproc_vec_env():
    from stable_baselines3.common.vec_env import SubprocVecEnv

    # the factory must be importable in the worker processes: a partial of the env class, not a test function
    make = functools.partial(MirrorSelfModelEnv, target_pool_size=4, max_episode_steps=4)
    venv = SubprocVecEnv([make, make])
    try:
        venv.seed(0)
        obs = venv.reset()
        assert obs["landmarks"].shape == (2, 207)
        for _ in range(5):  # crosses an episode end (4 steps): autoreset
            obs, rew, done, infos = venv.step(np.stack([venv.action_space.sample() for _ in range(2)]))
        assert np.isfinite(rew).all() and done.shape == (2,)
    finally:
        venv.close()


def test_record_video_writes_mp4(tmp_path):
    _register()
    env = gym.make(ENV_ID, render_mode="rgb_array", max_episode_steps=6, target_pool_size=2)
    env = gym.wrappers.RecordVideo(env, str(tmp_path / "videos"), episode_trigger=lambda ep: True, disable_logger=True)
    env.reset(seed=0)
    done = False
    while not done:
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        done = term or trunc
    env.close()
    mp4 = list((tmp_path / "videos").glob("*.mp4"))
    assert len(mp4) == 1 and mp4[0].stat().st_size > 1000


# ---------------------------------------------------------------------------------------------------- babble
def test_babble_writes_resumes_and_is_deterministic(tmp_path, monkeypatch):
    from facetwin.envs import babble as bab

    kw = dict(seed=3, chunk=3, settle_s=0.2, progress=False)
    a = babble(4, tmp_path / "a.npz", images=True, **kw)
    with np.load(a) as d:
        assert d["ctrl"].shape == (4, 26) and d["landmarks_mm"].shape == (4, 69, 3)
        assert d["images"].shape == (4, 128, 128, 3) and d["images"].dtype == np.uint8
        assert d["actuator_names"][10] == "jaw_open" and len(d["landmark_ids"]) == 69
        assert d["aperture_mm"].shape == (4,) and bool(d["symmetric"])
        assert np.array_equal(d["ctrl"][:, 1], d["ctrl"][:, 0])  # symmetric: L copies R
        first = {k: d[k] for k in d.files}

    # interrupted run: the first chunk is kept, the rerun continues and matches a single run
    calls = {"n": 0}
    orig = bab._collect_one

    def flaky(*args):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return orig(*args)

    monkeypatch.setattr(bab, "_collect_one", flaky)
    with pytest.raises(KeyboardInterrupt):
        babble(6, tmp_path / "b.npz", images=True, **kw)
    assert sorted(p.name for p in (tmp_path / "b.npz.parts").iterdir()) == ["chunk_000000000_000000003.npz", "meta.json"]
    monkeypatch.setattr(bab, "_collect_one", orig)
    calls["n"] = 0
    b = babble(6, tmp_path / "b.npz", images=True, **kw)
    assert not (tmp_path / "b.npz.parts").exists()
    with np.load(b) as d:
        for k in ("ctrl", "landmarks_mm", "images", "motors", "width_mm"):
            np.testing.assert_array_equal(d[k][:4], first[k])
    # extending a finished dataset; other settings are refused unless resume=False
    babble(6, tmp_path / "a.npz", images=True, **kw)
    with np.load(a) as d, np.load(b) as e:
        np.testing.assert_array_equal(d["landmarks_mm"], e["landmarks_mm"])
    with pytest.raises(ValueError, match="other settings"):
        babble(8, tmp_path / "a.npz", images=False, **kw)
    babble(2, tmp_path / "a.npz", images=False, resume=False, **kw)
    with np.load(a) as d:
        assert len(d["ctrl"]) == 2 and "images" not in d.files


def test_speech_babbling_covers_the_jaw_and_workers_give_the_same_data(tmp_path):
    from facetwin.envs.mirror_self_model import sample_expression
    from facetwin.sim.actuators import actuator_names, rest_controls

    names, rest = list(actuator_names()), rest_controls()
    u = np.stack([sample_expression(np.random.default_rng([0, i]), rest, names, distribution="speech", sigma=0.35)
                  for i in range(400)])
    mouth = np.array([n.startswith(("lip_", "jaw_")) for n in names])
    np.testing.assert_array_equal(u[:, ~mouth], np.tile(rest[~mouth], (400, 1)))  # only the mouth moves
    jaw = u[:, names.index("jaw_open")]
    assert jaw.max() > 0.5 and (jaw > 0).mean() > 0.2  # open vowels are sampled (rest -1, "ah" +1)
    gauss = np.stack([sample_expression(np.random.default_rng([0, i]), rest, names, sigma=0.35) for i in range(400)])
    assert (gauss[:, names.index("jaw_open")] > 0).mean() < 0.01  # what the Gaussian around rest misses
    kw = dict(seed=1, chunk=2, settle_s=0.2, progress=False, distribution="speech")
    one = babble(5, tmp_path / "one.npz", workers=1, **kw)
    two = babble(5, tmp_path / "two.npz", workers=2, **kw)
    with np.load(one) as a, np.load(two) as b:
        assert str(a["distribution"]) == "speech"
        for k in ("ctrl", "landmarks_mm", "aperture_mm"):
            np.testing.assert_array_equal(a[k], b[k])
    with pytest.raises(ValueError, match="distribution"):
        babble(2, tmp_path / "x.npz", distribution="telepathy")
    with pytest.raises(ValueError, match="workers"):
        babble(2, tmp_path / "x.npz", workers=0)


def test_main_babble_cli_function(tmp_path, capsys):
    import argparse

    from facetwin.cli.learning import add_babble_arguments, main_babble

    args = add_babble_arguments(argparse.ArgumentParser()).parse_args(
        ["-n", "2", "--out", str(tmp_path / "cli.npz"), "--settle", "0.1", "--quiet", "--asymmetric"]
    )
    assert main_babble(args) == 0
    assert "2 expressions" in capsys.readouterr().out
    with np.load(tmp_path / "cli.npz") as d:
        assert d["ctrl"].shape == (2, 26) and not bool(d["symmetric"])
