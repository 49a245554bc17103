"""Lip-sync baselines (facetwin.agents.baselines): shapes, behaviour, the shipped bank and scores on played clips."""

import numpy as np
import pytest
import torch

from facetwin.agents.baselines import (
    VISEME_POSES,
    BabbleBank,
    amplitude_controls,
    nearest_neighbour_controls,
    viseme_rule_controls,
)
from facetwin.agents.metrics import aggregate, clip_metrics
from facetwin.audio.timeline import Phone, Timeline
from facetwin.audio.visemes import VISEMES
from facetwin.sim.actuators import actuator_names, indices, rest_controls
from facetwin.sim.expressions import mix_ctrl

MOUTH = np.concatenate([indices("lips"), indices("jaw")])
OTHER = np.setdiff1d(np.arange(26), MOUTH)
JAW = int(indices("jaw")[0])


def _check(u: np.ndarray, T: int) -> None:
    assert u.shape == (T, 26)
    assert np.all(np.abs(u) <= 1.0)
    assert np.array_equal(u[:, OTHER], np.tile(rest_controls()[OTHER], (T, 1)))


def test_amplitude_opens_for_loud_frames_and_seals_in_silence():
    rms = np.full(60, -100.0)
    rms[10:30] = -15.0  # loud speech
    rms[40:45] = -60.0  # below the gate
    u = amplitude_controls(rms)
    _check(u, 60)
    assert np.all(u[:10, JAW] == -1.0) and np.all(u[50:, JAW] == -1.0)  # jaw shut in silence
    assert u[15:30, JAW].min() > 0.0  # the jaw opens past half way for loud frames
    assert np.allclose(u[:10], mix_ctrl(actuator_names(), {"mm": 1.0}))  # silence seals the lips
    assert np.all(u[40:45, JAW] <= u[39, JAW] + 1e-12)  # causal: gated frames only relax
    assert np.array_equal(amplitude_controls(rms[:20]), u[:20])  # causal: the future does not matter
    with pytest.raises(ValueError, match="1-D"):
        amplitude_controls(np.zeros((3, 2)))


def test_viseme_rule_commands_mm_around_a_b():
    assert set(VISEME_POSES) == set(VISEMES)
    tl = Timeline([Phone(0.0, 0.2, "a"), Phone(0.2, 0.28, "b"), Phone(0.28, 0.6, "a")])
    u = viseme_rule_controls(tl, 24, lead_frames=2)
    _check(u, 24)
    mm = mix_ctrl(actuator_names(), {"mm": 1.0})
    sealed = np.flatnonzero(np.all(np.isclose(u, mm), axis=1))
    # /b/ spans frames 6..8 (t = 0.2 .. 0.28 s); commanded 2 frames early, the seal 1 more: rows 3..6
    assert sealed.tolist() == [3, 4, 5, 6]
    assert u[12, JAW] > 0.5  # the open vowel
    assert np.allclose(viseme_rule_controls(Timeline([]), 5), rest_controls())  # silence = rest
    with pytest.raises(ValueError, match="n_frames"):
        viseme_rule_controls(tl, 0)


def _tiny_babble(tmp_path):
    from facetwin.envs.babble import babble

    return babble(6, tmp_path / "b.npz", distribution="speech", settle_s=0.2, progress=False)


def test_bank_from_babble_and_exact_nearest(tmp_path):
    path = _tiny_babble(tmp_path)
    bank = BabbleBank.from_babble(path, max_samples=4)
    assert len(bank) == 4 and bank.n_source == 6
    with np.load(path) as d:
        assert np.array_equal(bank.ctrl[:, MOUTH], d["ctrl"][[0, 2, 3, 5]][:, MOUTH])
    bank.save(tmp_path / "bank.npz")
    back = BabbleBank.load(tmp_path / "bank.npz")
    assert np.array_equal(back.shapes_mm, bank.shapes_mm) and np.array_equal(back.ctrl, bank.ctrl)
    assert len(BabbleBank.from_babble(path, fraction=0.5)) == 3

    shipped = BabbleBank.load_shipped()
    assert len(shipped) == 3000 and shipped.n_source == 5400
    j = [17, 17, 17, 2500, 2500]
    lips = shipped.shapes_mm[j].astype(float) + np.array([0.0, -3.0, -4.0])  # a whole-mouth shift: same shapes
    u = nearest_neighbour_controls(lips, shipped, lead_frames=0)
    _check(u, 5)
    assert np.array_equal(u, shipped.ctrl[j].astype(float))
    # led by one frame (the default): row k is the pick for target k + 1
    assert np.array_equal(nearest_neighbour_controls(lips, shipped)[:3], shipped.ctrl[[17, 17, 2500]].astype(float))
    assert np.array_equal(nearest_neighbour_controls(lips, shipped, lead_frames=2)[:3],
                          shipped.ctrl[[17, 2500, 2500]].astype(float))


def test_played_baselines_on_heldout_clips():
    torch.set_num_threads(1)
    from facetwin.envs.lip_sync import LipSyncEnv
    from facetwin.sim import FaceModel
    from facetwin.sim.playback import play

    face = FaceModel.load("fast")
    env = LipSyncEnv(split="heldout_sentence")
    bank = BabbleBank.load_shipped()
    clips = [env.unwrapped.load_clip(i) for i in range(3)]
    res = {}
    for name in ("amplitude", "viseme", "nn", "rest"):
        per = []
        for c in clips:
            if name == "amplitude":
                u = amplitude_controls(c.audio_obs[:, 80].astype(float) * 50.0 - 100.0)
            elif name == "viseme":
                u = viseme_rule_controls(c.timeline, c.n_frames)
            elif name == "nn":
                u = nearest_neighbour_controls(c.target_lips_mm, bank)
            else:
                u = np.tile(rest_controls(), (c.n_frames, 1))
            per.append(clip_metrics(play(face, u), c))
        res[name] = aggregate(per)
    env.close()
    # measured on these 3 clips (ar_001_v0, de_007_v0, en_003_v0; 199 frames, 14 bilabials): closure 12/14,
    # r 0.83 for the viseme rule; error 1.59 mm, r 0.83 for the nearest neighbour; offset +76 ms for amplitude
    assert res["rest"]["closure_rate"] == 0.0 and np.isnan(res["rest"]["aperture_corr"])
    assert res["viseme"]["closure_rate"] >= 0.75
    assert res["viseme"]["aperture_corr"] > 0.75
    assert abs(res["viseme"]["offset_ms"]) < 25.0
    assert res["nn"]["lip_error_mm"] < 1.75 and res["nn"]["lip_error_mm"] < res["rest"]["lip_error_mm"] - 0.5
    assert res["nn"]["aperture_corr"] > 0.75
    assert res["amplitude"]["open_rate"] >= 0.7
    assert res["amplitude"]["offset_ms"] > 30.0  # an amplitude follower is late
