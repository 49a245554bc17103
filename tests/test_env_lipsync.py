"""LipSyncEnv: Gymnasium API, episode = clip, the audio window (content, padding, no peeking), reward ordering,
info, seeding, bad input, user audio, the built-in corpus cache, domain hook and vector envs."""

from __future__ import annotations

import json
import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.registration import EnvSpec

from facetwin.audio.corpus import build_corpus, load_item
from facetwin.audio.features import LOG_FLOOR
from facetwin.audio.io import resample, save_wav
from facetwin.audio.lip_track import lip_track
from facetwin.audio.timeline import Timeline
from facetwin.audio.tts import synthesize
from facetwin.envs import clips
from facetwin.envs.domain import DomainParams
from facetwin.envs.lip_sync import BUILTIN_CORPUS_NAME, LipSyncEnv, audio_obs_features

ENTRY = "facetwin.envs.lip_sync:LipSyncEnv"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("lipsync_corpus")
    manifest = build_corpus(out, 4, langs=("en", "fr"), heldout_langs=(), include_songs=False, seed=3, progress=False)
    return out, manifest


@pytest.fixture(scope="module")
def env(corpus):
    e = LipSyncEnv(corpus_dir=corpus[0], split="all")
    yield e
    e.close()


def _spec(**kwargs) -> EnvSpec:
    return EnvSpec("facetwin/LipSyncTest-v0", entry_point=ENTRY, kwargs=kwargs)


def _run(env, actions=None, clip=None, seed=None):
    """Play one episode (rest controls, or actions[k] at step k); returns (rewards, infos, observations, truncated)."""
    obs, info = env.reset(seed=seed, options=None if clip is None else {"clip": clip})
    rewards, infos, observations, truncs = [], [], [obs], []
    k = 0
    while True:
        a = env.unwrapped.rest_ctrl if actions is None else actions[k]
        obs, r, terminated, truncated, info = env.step(a)
        assert terminated is False
        rewards.append(r), infos.append(info), observations.append(obs), truncs.append(truncated)
        k += 1
        if truncated:
            return np.array(rewards), infos, observations, truncs


def test_check_env_without_warnings(corpus):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make(_spec(corpus_dir=str(corpus[0]), split="all"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
        sb3_check_env(LipSyncEnv(corpus_dir=corpus[0], split="all", flat_obs=True))
    assert not caught, [str(w.message) for w in caught]
    sp = env.observation_space
    assert sp["audio"].shape == (12, 81) and sp["lips"].shape == (40, 3) and sp["motors"].shape == (26,)
    assert sp["prev_action"].shape == (26,) and env.action_space.shape == (26,)
    env.close()


def test_episode_is_the_clip_and_scripted_track_beats_neutral(env, corpus):
    out, manifest = corpus
    neutral_total, scripted_total, closure_ap = [], [], {"neutral": [], "scripted": []}
    for item in manifest["items"]:
        arrays = load_item(out, item["id"])
        T = item["n_frames"]
        phones = Timeline.from_arrays(arrays).labels_at(np.arange(T) / 30.0)
        for policy in ("neutral", "scripted"):
            actions = None
            if policy == "scripted":
                actions = env.scripted_controls(item["id"])
            rewards, infos, _, truncs = _run(env, actions, clip=item["id"])
            # one step per frame, truncated exactly at the last one
            assert len(rewards) == T and truncs == [False] * (T - 1) + [True]
            assert [i["frame"] for i in infos] == list(range(T)) and infos[0]["clip"] == item["id"]
            assert [i["phoneme"] for i in infos] == phones
            np.testing.assert_allclose([i["target_aperture_mm"] for i in infos], arrays["aperture_mm"], rtol=1e-6)
            assert [i["closure"] for i in infos] == arrays["closure"].tolist()
            for i, r in zip(infos, rewards):
                assert r == pytest.approx(sum(v for k, v in i.items() if k.startswith("reward_")))
                assert i["reward_lip"] == pytest.approx(-i["error_mm"])
            (neutral_total if policy == "neutral" else scripted_total).append(rewards.sum())
            closure_ap[policy] += [i["aperture_mm"] for i in infos if i["closure"]]
    assert sum(closure_ap["neutral"]) > 0 and len(closure_ap["neutral"]) > 5  # the clips have bilabials
    # the open-loop track (jaw from the target aperture, "mm" on closures) beats the neutral face, clearly
    assert sum(scripted_total) > 0.9 * sum(neutral_total)
    assert np.mean(closure_ap["scripted"]) < np.mean(closure_ap["neutral"])
    assert all(s > n for s, n in zip(scripted_total, neutral_total))


def test_scripted_jaw_table_is_the_face_s_own():
    """AH_APERTURE (the scripted baseline's jaw table) is what the built-in face settles to (within 0.1 mm)."""
    from facetwin.envs.lip_sync import AH_APERTURE, AH_LEVELS
    from facetwin.sim.expressions import mix_ctrl
    from facetwin.sim.model import FaceModel

    face = FaceModel.load("fast")
    for level, aperture in list(zip(AH_LEVELS, AH_APERTURE))[::2]:
        face.reset()
        face.settle(mix_ctrl(face, {"ah": float(level)}), 1.0)
        assert face.mouth()["aperture_mm"] == pytest.approx(aperture, abs=0.1)


def test_audio_window_is_the_corpus_features_at_the_right_frames(corpus):
    out, manifest = corpus
    env = LipSyncEnv(corpus_dir=out, split="all", context_frames=4, lookahead_frames=2)
    item = manifest["items"][0]
    arrays = load_item(out, item["id"])
    feats = audio_obs_features(arrays["logmel"], arrays["rms_db"])
    T = item["n_frames"]
    # the documented scaling: 0 is digital silence
    np.testing.assert_allclose(feats[:, :80], (arrays["logmel"] - math.log(LOG_FLOOR)) / 10.0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(feats[:, 80], (arrays["rms_db"] + 100.0) / 50.0, rtol=1e-5, atol=1e-6)
    _, _, observations, _ = _run(env, clip=item["id"])
    assert len(observations) == T + 1  # frame 0 (reset) .. frame T (after the last step)
    for k, obs in enumerate(observations):
        window = obs["audio"]
        assert window.shape == (7, 81) and window.dtype == np.float32
        for row, frame in enumerate(range(k - 4, k + 3)):
            expected = feats[frame] if 0 <= frame < T else np.zeros(81, np.float32)
            np.testing.assert_array_equal(window[row], expected, err_msg=f"step {k}, frame {frame}")
    assert not observations[0]["audio"][:4].any()  # zero-padded start
    assert not observations[T]["audio"][5:].any()  # past the end: zeros
    env.close()


def test_observation_never_hears_beyond_the_lookahead():
    utt = synthesize("Bob blew big blue bubbles by the pool.", "en")
    a16 = resample(utt.audio, utt.sr, 16000).astype(np.float32)
    t_cut = 0.9
    changed = a16.copy()
    changed[int(t_cut * 16000):] = np.random.default_rng(0).uniform(-0.5, 0.5, len(a16) - int(t_cut * 16000))
    L = 3
    envs = [LipSyncEnv(clips=[(x, 16000, utt.timeline)], lookahead_frames=L, context_frames=2) for x in (a16, changed)]
    runs = [_run(e)[2] for e in envs]
    half_window = 533 / 16000  # the 66.7 ms spectral window reaches 33.3 ms past its frame
    T = envs[0].clip.n_frames
    for k, (o1, o2) in enumerate(zip(*runs)):
        horizon = (k + L) / 30.0 + half_window  # the latest audio observation k may depend on
        if horizon < t_cut - 1e-3:
            np.testing.assert_array_equal(o1["audio"], o2["audio"], err_msg=f"step {k} heard audio after {horizon} s")
        if (k + L) / 30.0 - half_window > t_cut + 1e-3 and k + L < T:
            assert not np.array_equal(o1["audio"][-1], o2["audio"][-1])  # ...and the lookahead is really there
    for e in envs:
        e.close()


def test_seeding_is_reproducible(corpus):
    e1, e2 = (LipSyncEnv(corpus_dir=corpus[0], split="all") for _ in range(2))
    chosen = set()
    for seed in range(8):
        o1, i1 = e1.reset(seed=seed)
        o2, i2 = e2.reset(seed=seed)
        assert i1["clip"] == i2["clip"]
        chosen.add(i1["clip"])
        for key in o1:
            np.testing.assert_array_equal(o1[key], o2[key])
    assert len(chosen) > 1
    rng = np.random.default_rng(1)
    e1.reset(seed=3), e2.reset(seed=3)
    for _ in range(10):
        a = rng.uniform(-1, 1, 26).astype(np.float32)
        r1, r2 = e1.step(a), e2.step(a)
        assert r1[1] == r2[1]
        np.testing.assert_array_equal(r1[0]["lips"], r2[0]["lips"])
        np.testing.assert_array_equal(r1[0]["prev_action"], a)
    # options pick a clip by id or by index
    assert e1.reset(options={"clip": 2})[1]["clip"] == e1.unwrapped.clip_ids[2]
    assert e1.reset(options={"clip": e1.clip_ids[1]})[1]["clip"] == e1.clip_ids[1]
    e1.close(), e2.close()


def test_bad_input_raises(env, corpus):
    with pytest.raises(RuntimeError, match="reset"):
        LipSyncEnv(corpus_dir=corpus[0], split="all").step(np.zeros(26))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(25))
    bad = np.zeros(26)
    bad[10] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        env.step(bad)
    with pytest.raises(ValueError, match="unknown clip"):
        env.reset(options={"clip": "nope"})
    with pytest.raises(ValueError, match="out of range"):
        env.reset(options={"clip": 99})
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"clipp": 0})
    with pytest.raises(ValueError, match="unknown split"):
        LipSyncEnv(corpus_dir=corpus[0], split="test")
    with pytest.raises(ValueError, match="no items"):
        LipSyncEnv(corpus_dir=corpus[0], split="heldout_language")
    with pytest.raises(FileNotFoundError, match="manifest"):
        LipSyncEnv(corpus_dir=corpus[0] / "data")
    with pytest.raises(ValueError, match="lookahead_frames"):
        LipSyncEnv(corpus_dir=corpus[0], lookahead_frames=-1)
    with pytest.raises(ValueError, match="timeline"):
        LipSyncEnv(clips=[(np.zeros(16000, np.float32), 16000)])
    with pytest.raises(ValueError, match="not both"):
        LipSyncEnv(clips=[corpus[0] / "audio" / "x.wav"], corpus_dir=corpus[0])
    env.reset(seed=0)  # still usable after the errors
    assert env.step(np.zeros(26))[0]["audio"].shape == (12, 81)


def test_user_audio_clips(tmp_path):
    utt = synthesize("We hope you bring more paper.", "en")
    wav = save_wav(tmp_path / "hello.wav", utt.audio, utt.sr)
    utt.timeline.save(tmp_path / "hello.phones.json")  # what `facetwin say` writes next to the wav
    a16 = resample(utt.audio, utt.sr, 16000)
    env = LipSyncEnv(clips=[wav, utt, {"audio": a16, "sr": 16000, "transcript": utt.text, "id": "aligned"}],
                     action_mode="delta")
    assert env.clip_ids == ["hello", "clip1", "aligned"]
    for cid in ("hello", "clip1"):
        clip = env.load_clip(cid)
        track = lip_track(utt.timeline, fps=30.0, duration=clip.n_frames / 30.0)
        np.testing.assert_allclose(clip.target_lips_mm, track.landmarks_mm, atol=1e-3)  # json keeps 1 us
        assert clip.closure.any() and clip.rounded.any()  # "we", "bring", "more", "paper"
    obs, info = env.reset(options={"clip": "aligned"})
    assert info["lang"] == "en" and info["n_frames"] == env.load_clip("hello").n_frames
    assert not obs["prev_action"].any()  # delta mode: the action that holds the rest command is 0
    rewards, infos, _, _ = _run(env, clip="aligned")
    assert len(rewards) == info["n_frames"] and {i["phoneme"] for i in infos} - {""}
    env.close()


def test_builtin_corpus_is_built_once_in_the_cache(tmp_path, monkeypatch):
    tiny = {"n_utterances": 2, "langs": ("en",), "heldout_langs": (), "heldout_fraction": 0.0,
            "include_songs": False, "seed": 0}
    monkeypatch.setattr(clips, "BUILTIN_CORPUS_ARGS", tiny)
    monkeypatch.setenv("FACETWIN_CACHE", str(tmp_path / "env_cache"))
    env = LipSyncEnv()
    manifest = tmp_path / "env_cache" / BUILTIN_CORPUS_NAME / "manifest.json"
    assert manifest.exists() and len(env.clip_ids) == 2
    stamp = manifest.stat().st_mtime_ns
    assert LipSyncEnv().clip_ids == env.clip_ids and manifest.stat().st_mtime_ns == stamp  # not rebuilt
    other = LipSyncEnv(cache_dir=tmp_path / "kwarg_cache")  # the kwarg wins over $FACETWIN_CACHE
    assert (tmp_path / "kwarg_cache" / BUILTIN_CORPUS_NAME / "manifest.json").exists()
    assert json.loads(manifest.read_text())["items"][0]["id"] == other.clip_ids[0]
    env.close(), other.close()


def test_domain_noise_reaches_observations_not_rewards(corpus):
    clean, noisy = (LipSyncEnv(corpus_dir=corpus[0], split="all") for _ in range(2))
    o1, _ = clean.reset(seed=0, options={"clip": 0})
    o2, _ = noisy.reset(seed=0, options={"clip": 0, "domain": DomainParams(obs_noise_mm=0.5, latency_steps=1)})
    assert np.abs(o1["lips"]).max() < 1e-3 and o2["lips"].std() > 0.02  # the neutral face reads ~0 without noise
    assert noisy.domain_params.latency_steps == 1
    a = clean.scripted_controls()
    _, r1, *_ = clean.step(clean.rest_ctrl)
    _, r2, *_ = noisy.step(a[0])  # one step of latency: the rest command is what moved the face
    assert r1 == pytest.approx(r2 - noisy.jerk_term(a[0], noisy.rest_ctrl) - noisy.effort_term(a[0]))
    clean.close(), noisy.close()


def test_sync_vector_env(corpus):
    envs = gym.make_vec(_spec(corpus_dir=str(corpus[0]), split="all"), num_envs=2, vectorization_mode="sync")
    obs, infos = envs.reset(seed=0)
    assert obs["audio"].shape == (2, 12, 81) and obs["lips"].shape == (2, 40, 3)
    lengths = list(infos["n_frames"])
    done_at = [None, None]
    for t in range(max(lengths) + 2):
        obs, rewards, terminated, truncated, infos = envs.step(np.zeros((2, 26), np.float32))
        assert np.isfinite(rewards).all() and not terminated.any()
        for i in range(2):
            if truncated[i] and done_at[i] is None:
                done_at[i] = t + 1
    assert done_at == lengths
    envs.close()
