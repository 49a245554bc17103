"""MirrorSelfModel-v0: the Gymnasium contract, observations, targets, reward and episode end."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from facetwin.envs.mirror_self_model import LANDMARK_SCALE_MM, MirrorSelfModelEnv, mirror_pairs, sample_expression
from facetwin.sim.landmarks import region_mask

ENV_ID = "facetwin/MirrorSelfModel-v0"


def _register():
    if ENV_ID not in gym.registry:
        gym.register(ENV_ID, entry_point="facetwin.envs.mirror_self_model:MirrorSelfModelEnv",
                     max_episode_steps=60, kwargs={"max_episode_steps": None})


@pytest.mark.parametrize("obs_mode", ["landmarks", "both"])
def test_check_env_passes_without_warnings(obs_mode):
    _register()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gym.make(ENV_ID, obs_mode=obs_mode, render_mode="rgb_array", target_pool_size=4)
        check_env(env.unwrapped)  # from gym.make: has a spec, so the render modes are checked too
        env.close()
    assert [str(w.message) for w in caught] == []


def test_check_env_direct_instance_without_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = MirrorSelfModelEnv(obs_mode="pixels", target_pool_size=4)
        check_env(env, skip_render_check=True)
        env.close()
    assert [str(w.message) for w in caught] == []


def test_spaces_and_observations():
    env = MirrorSelfModelEnv(obs_mode="both", target_pool_size=4)
    obs, info = env.reset(seed=0)
    assert env.action_space.shape == (26,) and env.action_space.dtype == np.float32
    assert set(obs) == {"landmarks", "motors", "target", "pixels"}
    assert obs["landmarks"].shape == (69 * 3,) and obs["landmarks"].dtype == np.float32
    assert obs["pixels"].shape == (128, 128, 3) and obs["pixels"].dtype == np.uint8 and obs["pixels"].std() > 5
    np.testing.assert_allclose(obs["landmarks"], 0.0, atol=1e-4)  # neutral face: 0 in observation units
    np.testing.assert_allclose(obs["motors"], env.rest_ctrl, atol=0.05)  # the jaw sags a little
    target = (obs["target"].reshape(-1, 3) * LANDMARK_SCALE_MM) + env.face.neutral_landmarks_mm
    np.testing.assert_allclose(target, env.target_landmarks_mm, atol=1e-3)
    assert info == {"diverged": False, "step": 0}
    # the image follows the face: open the jaw and the mouth image changes
    u = env.face.controls(jaw_open=1.0)
    for _ in range(10):
        obs2 = env.step(u)[0]
    assert np.abs(obs2["pixels"].astype(int) - obs["pixels"]).mean() > 2
    assert obs2["landmarks"].reshape(-1, 3)[:, 2].min() < -1.0  # the chin/lower lip went down > 10 mm
    env.close()
    assert set(MirrorSelfModelEnv(obs_mode="pixels", target_pool_size=1).observation_space) == {"pixels", "motors", "target"}


def test_reaching_the_target_controls_solves_the_task():
    env = MirrorSelfModelEnv(target_pool_size=8)
    obs, _ = env.reset(seed=1)
    u = env.target_ctrl
    first = env.step(u)[4]
    for _ in range(59):
        obs, reward, terminated, truncated, info = env.step(u)
    assert first["error_mm"] > 0.5  # the face needs time to get there
    assert info["error_mm"] < 0.05 and info["is_success"] and info["lip_error_mm"] < 0.05
    assert truncated and not terminated and info["step"] == 60  # 60 steps = 2 s
    terms = {k: v for k, v in info.items() if k.startswith("reward_")}
    assert set(terms) == {"reward_tracking", "reward_effort", "reward_jerk"}
    assert reward == pytest.approx(sum(terms.values()))
    assert info["reward_tracking"] == -info["error_mm"] and info["reward_jerk"] == 0.0
    np.testing.assert_allclose(obs["landmarks"], obs["target"], atol=0.01)
    env.close()


def test_reward_weights_lips_and_penalizes_effort_and_jerk():
    env = MirrorSelfModelEnv(target_pool_size=2, effort_coef=1.0, jerk_coef=1.0)
    env.reset(seed=0, options={"target_ctrl": env.rest_ctrl})
    np.testing.assert_allclose(env.target_landmarks_mm, env.face.neutral_landmarks_mm, atol=0.05)
    u = env.face.controls(lip_corner_pull_L=1.0)
    _, _, _, _, info = env.step(u)
    e = env.landmark_errors_mm()
    lips = region_mask("lips_outer", "lips_inner")
    w = np.where(lips, 2.0, 1.0)
    assert info["error_mm"] == pytest.approx(float((e * w).sum() / w.sum()))
    assert info["lip_error_mm"] == pytest.approx(float(e[lips].mean()))
    assert info["reward_effort"] == pytest.approx(-1.0 / 26) and info["reward_jerk"] == pytest.approx(-1.0 / 26)
    _, _, _, _, info = env.step(u)
    assert info["reward_jerk"] == 0.0
    env.close()


def test_target_options_and_pool():
    env = MirrorSelfModelEnv(target_pool_size=3, max_episode_steps=5)
    given = env.face.neutral_landmarks_mm + 1.0
    obs, _ = env.reset(seed=0, options={"target_landmarks_mm": given})
    np.testing.assert_allclose(obs["target"], 0.1, atol=1e-6)
    assert env.target_ctrl is None
    with pytest.raises(ValueError, match="target_landmarks_mm"):
        env.reset(options={"target_landmarks_mm": np.zeros((3, 3))})
    with pytest.raises(ValueError, match="target_index"):
        env.reset(options={"target_index": 3})
    seen = set()
    for s in range(12):
        obs, _ = env.reset(seed=s)
        seen.add(obs["target"].tobytes())
    assert len(seen) == 3  # targets come from the pool
    # the pool is a function of the settings: another env draws the same target for the same index
    other = MirrorSelfModelEnv(target_pool_size=3)
    o1, _ = other.reset(options={"target_index": 2})
    o2, _ = env.reset(options={"target_index": 2})
    np.testing.assert_array_equal(o1["target"], o2["target"])
    np.testing.assert_array_equal(other.target_ctrl, env.pool_ctrl(2))
    env.close()
    other.close()


def test_sample_expression_symmetric_and_uniform():
    from facetwin.sim import actuator_names, rest_controls

    names, rest = actuator_names(), rest_controls()
    pairs = mirror_pairs(names)
    assert len(pairs) == 10  # lips 4, brows 2, eyelids 2, eyes 2
    rng = np.random.default_rng(0)
    u = sample_expression(rng, rest, names, symmetric=True, sigma=0.5)
    assert all(u[r] == u[l] for r, l in pairs) and np.abs(u).max() <= 1.0
    v = sample_expression(rng, rest, names, distribution="uniform")
    assert not all(v[r] == v[l] for r, l in pairs)
    with pytest.raises(ValueError):
        sample_expression(rng, rest, names, distribution="beta")


def test_room_frame_sees_the_neck():
    head = MirrorSelfModelEnv(frame="head", target_pool_size=1)
    room = MirrorSelfModelEnv(frame="room", target_pool_size=1)
    u = head.face.controls(neck_yaw=1.0)
    for e in (head, room):
        e.reset(seed=0, options={"target_ctrl": e.rest_ctrl})
        for _ in range(15):
            e.step(u)
        e.close()
    assert head.landmark_errors_mm().max() < 1.0 < 10.0 < room.landmark_errors_mm().max()


def test_registered_time_limit():
    _register()
    env = gym.make(ENV_ID, target_pool_size=2)
    env.reset(seed=0)
    n = 0
    while True:
        n += 1
        *_, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            break
    assert n == 60
    env.close()
