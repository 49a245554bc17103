"""The RL residual on top of the lip-sync pipeline (facetwin.agents.residual): the env replays the pipeline when
the correction is zero, corrections stay bounded, training writes a policy that evaluate can roll out."""

import json

import numpy as np
import pytest
import torch

from facetwin.agents.lipsync import LipSyncer
from facetwin.agents.residual import OBS_DIM, ResidualLipSync, ResidualPolicy, train_residual
from facetwin.agents.self_model import MOUTH_INDEX
from facetwin.audio.corpus import build_corpus
from facetwin.audio.tts import synthesize
from facetwin.cli import main

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def syncer():
    return LipSyncer("offline")


@pytest.fixture(scope="module")
def utterance():
    return synthesize("Bob made a blue moon.", "en")


def test_zero_correction_replays_the_pipeline(syncer, utterance):
    env = ResidualLipSync(clips=[(utterance.audio, utterance.sr, utterance.timeline)], syncer=syncer)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (OBS_DIM,) and env.observation_space.contains(obs)
    clip = env.env.unwrapped.clip
    base, plan = env.base(clip)
    assert base.shape == (clip.n_frames, 26) and plan.shape == (clip.n_frames, 3)
    sent = []
    for _ in range(5):
        sent.append(env.command(np.zeros(11)))
        obs, r, term, trunc, info = env.step(np.zeros(11, np.float32))
        assert np.isfinite(obs).all() and np.isfinite(r)
    np.testing.assert_allclose(np.stack(sent), base[:5])
    # a full correction moves only the mouth motors, by at most the scale, inside the command range
    u = env.command(np.ones(11))
    moved = np.abs(u - base[5]) > 1e-12
    assert set(np.flatnonzero(moved)) <= set(MOUTH_INDEX)
    assert np.abs(u - base[5]).max() <= env.scale + 1e-12 and np.abs(u).max() <= 1.0
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full(11, np.nan))
    with pytest.raises(ValueError, match="scale"):
        ResidualLipSync(clips=[(utterance.audio, utterance.sr, utterance.timeline)], syncer=syncer, scale=0.0)
    env.close()


def test_train_residual_writes_a_policy_that_rolls_out(tmp_path, syncer):
    corpus = tmp_path / "tiny"
    build_corpus(corpus, n_utterances=4, langs=("en",), heldout_langs=(), include_songs=False, seed=0, progress=False)
    report = train_residual(corpus, tmp_path / "res", steps=150, progress=False)
    assert report["steps"] == 150 and not report["randomized"]
    meta = json.loads((tmp_path / "res" / "residual.json").read_text())
    assert meta["scale"] == pytest.approx(0.3)
    policy = ResidualPolicy.load(tmp_path / "res" / "residual.zip")
    env = ResidualLipSync(corpus, split="train", syncer=syncer)
    env.reset(seed=0)
    clip = env.env.unwrapped.clip
    base, _ = env.base(clip)
    env.close()
    ctrl = policy.controls(clip, syncer)
    assert ctrl.shape == base.shape and np.isfinite(ctrl).all() and np.abs(ctrl).max() <= 1.0
    other = [i for i in range(26) if i not in set(MOUTH_INDEX)]
    np.testing.assert_allclose(ctrl[:, other], base[:, other])  # only the mouth is corrected
    assert np.abs(ctrl - base).max() <= 0.3 + 1e-9
    with pytest.raises(FileNotFoundError):
        ResidualPolicy.load(tmp_path / "missing.zip")


@pytest.mark.parametrize("args", [["--steps", "50"], ["--scale", "2"]])
def test_train_residual_command_refuses_bad_numbers(args, tmp_path, capsys):
    assert main(["train-residual", "--out", str(tmp_path / "r"), "--quiet", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("--steps" in err[0] or "--scale" in err[0])
    assert not (tmp_path / "r").exists()
