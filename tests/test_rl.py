"""SB3 training on the mirror self-model env: a tiny run beats the neutral face on held-out targets, checkpoints are
atomic and complete, and a killed run resumes where its last checkpoint left off."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from facetwin.agents import rl, rl_checkpoint, rl_envs, rl_eval
from facetwin.files import atomic_write, stray_temporaries

ENV_ID = rl_envs.DEFAULT_ENV_ID
# cheap episodes for the mechanics tests: a 4-target pool settled for 0.5 s
MECHANICS_ENV = {**rl_envs.DEFAULT_ENV_KWARGS, "target_pool_size": 4, "target_settle_s": 0.5}
PPO_SMALL = {"n_steps": 64, "batch_size": 32, "n_epochs": 2, "policy_kwargs": {"net_arch": [32, 32]}}
SAC_SMALL = {"buffer_size": 2_000, "learning_starts": 50, "batch_size": 32, "policy_kwargs": {"net_arch": [32, 32]}}


def _stray_temporaries(out: Path) -> list[Path]:
    return stray_temporaries(out)


def _train(out: Path, steps: int, algo: str = "ppo", hp=None, **kw) -> rl.TrainResult:
    kw.setdefault("n_envs", 1)
    kw.setdefault("checkpoint_every", 64)
    kw.setdefault("eval_episodes", 0)
    hp = hp or (PPO_SMALL if algo == "ppo" else SAC_SMALL)
    return rl.train(ENV_ID, algo, steps, out, env_kwargs=MECHANICS_ENV, hyperparams=hp, progress=False, log=None, **kw)


# ---------------------------------------------------------------------------------------------------- learning
def test_tiny_training_beats_the_neutral_face_on_held_out_targets(tmp_path):
    """A ~2-minute run with the tiny settings (rl.TINY) ends below the neutral face's error on held-out targets."""
    result = rl.train(
        ENV_ID, rl.TINY["algo"], rl.TINY["steps"], tmp_path, env_kwargs=rl.TINY["env_kwargs"],
        hyperparams=rl.TINY["hyperparams"], n_envs=1, seed=0, eval_episodes=20, progress=False, log=None,
        checkpoint_every=0,
    )
    ev = result.evaluation
    trained = ev[f"trained {rl.TINY['algo'].upper()}"]
    neutral, rand = ev["neutral face"], ev["random"]
    # every policy saw the same held-out episodes
    assert trained.episodes == neutral.episodes == rand.episodes == 20
    assert trained.seed == neutral.seed == rl_eval.DEFAULT_EVAL_SEED
    assert np.isfinite(trained.final_error_mm).all()
    assert trained.mean_final_error_mm < neutral.mean_final_error_mm, result.table
    assert neutral.mean_final_error_mm < rand.mean_final_error_mm, result.table
    assert (tmp_path / rl_checkpoint.EVAL_NAME).exists() and "neutral face" in result.table


def test_evaluation_is_reproducible_and_held_out():
    env = rl_envs.make_env(ENV_ID, MECHANICS_ENV)
    try:
        opts = rl_eval.heldout_reset_options(env, 3, seed=123)
        assert opts is not None and len(opts) == 3
        base = env.unwrapped
        pool = np.stack([base.pool_landmarks_mm(k) for k in range(base.target_pool_size)])
        for o in opts:  # no held-out target is a training target
            assert np.abs(pool - o["target_landmarks_mm"]).max(axis=(1, 2)).min() > 1e-3
        a = rl_eval.evaluate(rl_eval.neutral_policy(env), env, 3, seed=123, name="neutral")
        b = rl_eval.evaluate(rl_eval.neutral_policy(env), env, 3, seed=123, name="neutral")
        assert a.final_error_mm == b.final_error_mm and len(a.final_error_mm) == 3
        assert a.episode_length == [MECHANICS_ENV["max_episode_steps"]] * 3
        r = rl_eval.evaluate(rl_eval.random_policy(env.action_space, 0), env, 3, seed=123)
        assert np.mean(r.final_error_mm) > np.mean(a.final_error_mm)
        with pytest.raises(ValueError, match="target_seed"):
            rl_eval.heldout_reset_options(env, 1, seed=base.target_seed)
    finally:
        env.close()


# ---------------------------------------------------------------------------------------------------- checkpoints
def test_checkpoint_then_resume_continues_the_step_count(tmp_path):
    first = _train(tmp_path, 128, checkpoint_every=64)
    ckpt = tmp_path / rl_checkpoint.CHECKPOINT_NAME
    meta = rl_checkpoint.read_checkpoint_meta(ckpt)
    assert first.num_timesteps == meta["num_timesteps"] == 128
    assert meta["algo"] == "ppo" and meta["env_kwargs"] == MECHANICS_ENV and meta["has_vecnormalize"]
    with zipfile.ZipFile(ckpt) as zf:
        assert {"model.zip", "vecnormalize.pkl", "meta.json"} <= set(zf.namelist())
    assert not _stray_temporaries(tmp_path)

    resumed = _train(tmp_path, 256, resume=True)
    assert resumed.resumed_from == 128
    assert resumed.steps_this_run == 128 and resumed.num_timesteps == 256
    assert rl_checkpoint.read_checkpoint_meta(ckpt)["num_timesteps"] == 256
    model, vecnorm, _ = rl_checkpoint.load_checkpoint(ckpt)
    assert model.num_timesteps == 256 and vecnorm is not None
    assert vecnorm.obs_rms["target"].count > 256  # the statistics kept accumulating across the resume
    # TensorBoard goes on in the same run folder
    assert [p.name for p in (tmp_path / "tb").iterdir()] == ["ppo_1"]
    # at the target already: nothing more to train
    again = _train(tmp_path, 256, resume=True)
    assert again.steps_this_run == 0 and again.num_timesteps == 256
    assert not _stray_temporaries(tmp_path)


def test_sac_checkpoint_carries_the_replay_buffer(tmp_path):
    _train(tmp_path, 100, algo="sac", checkpoint_every=0)
    model, _, meta = rl_checkpoint.load_checkpoint(tmp_path / rl_checkpoint.CHECKPOINT_NAME)
    assert meta["has_replay_buffer"] and model.replay_buffer.size() == 100
    buf = model.replay_buffer
    assert buf.observations["target"].shape[0] == buf.buffer_size == SAC_SMALL["buffer_size"]
    assert np.abs(buf.observations["target"][:100]).sum() > 0 and not buf.observations["target"][100:].any()
    with zipfile.ZipFile(tmp_path / rl_checkpoint.CHECKPOINT_NAME) as zf:  # only the 100 rows in use are stored, not 2000
        assert zf.getinfo("replay_buffer.pkl").file_size < 1_000_000
    resumed = _train(tmp_path, 160, algo="sac", resume=True)
    assert resumed.resumed_from == 100 and resumed.num_timesteps == 160
    model, _, _ = rl_checkpoint.load_checkpoint(tmp_path / rl_checkpoint.CHECKPOINT_NAME)
    assert model.replay_buffer.size() == 160


def test_resume_refuses_a_different_setup(tmp_path):
    _train(tmp_path, 64, checkpoint_every=0)
    with pytest.raises(ValueError, match="trained with 'ppo'"):
        _train(tmp_path, 128, algo="sac", resume=True)
    with pytest.raises(ValueError, match="--n-envs 2: .* was trained with --n-envs 1; resume with --n-envs 1"):
        _train(tmp_path, 128, resume=True, n_envs=2)  # was a reshape error deep in SB3


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    """SIGKILL a training process after its first checkpoint; the checkpoint is complete and the run resumes."""
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "facetwin", "train", "--algo", "ppo", "--out", str(out), "--steps", "100000",
        "--n-envs", "1", "--checkpoint-every", "64", "--eval-episodes", "0", "--no-progress",
        *[f"--env-arg={k}={v}" for k, v in (("target_pool_size", 4), ("target_settle_s", 0.5))],
        *[f"--hp={k}={v}" for k, v in (("n_steps", 64), ("batch_size", 32), ("n_epochs", 2))],
    ]
    # run outside the checkout: there, ./facetwin (the bare package root) would shadow an installed facetwin
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
    ckpt = out / rl_checkpoint.CHECKPOINT_NAME
    try:
        deadline = time.monotonic() + 120
        while not ckpt.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint within 2 minutes"
            time.sleep(0.2)
        time.sleep(1.0)  # let it run on (and maybe be in the middle of the next checkpoint)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    meta = rl_checkpoint.read_checkpoint_meta(ckpt)  # complete despite the kill
    done = meta["num_timesteps"]
    assert done >= 64 and done % 64 == 0
    target = done + 128
    resumed = rl.train(
        ENV_ID, "ppo", target, out, env_kwargs=MECHANICS_ENV,
        hyperparams={"n_steps": 64, "batch_size": 32, "n_epochs": 2}, n_envs=1, checkpoint_every=64,
        resume=True, progress=False, eval_episodes=0, log=None,
    )
    assert resumed.resumed_from == done and resumed.num_timesteps == target
    assert not _stray_temporaries(out)  # a temporary file the kill left behind is cleaned up


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "checkpoint.zip"
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(b"old"), durable=True)

    def broken(tmp):
        Path(tmp).write_bytes(b"partial")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(path, broken, durable=True)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.zip"]


def test_failed_checkpoint_leaves_the_previous_one_valid(tmp_path):
    _train(tmp_path, 64, checkpoint_every=0)
    ckpt = tmp_path / rl_checkpoint.CHECKPOINT_NAME
    before = ckpt.read_bytes()
    model, vecnorm, meta = rl_checkpoint.load_checkpoint(ckpt)

    class Unpicklable:  # fails half-way through writing the bundle, after the model is in
        def __reduce__(self):
            raise OSError("disk full")

    with pytest.raises(OSError):
        rl_checkpoint.save_checkpoint(ckpt, model, Unpicklable(), meta)
    assert ckpt.read_bytes() == before and rl_checkpoint.read_checkpoint_meta(ckpt)["num_timesteps"] == 64
    assert not _stray_temporaries(tmp_path)
    # a truncated file is recognized as invalid
    bad = tmp_path / "bad.zip"
    bad.write_bytes(before[: len(before) // 2])
    with pytest.raises(ValueError, match="not a valid"):
        rl_checkpoint.read_checkpoint_meta(bad)


# ---------------------------------------------------------------------------------------------------- command line
def test_cli_arguments_parse_into_train_calls(monkeypatch, tmp_path):
    from facetwin.cli import learning

    parser = learning.add_train_arguments(argparse.ArgumentParser())
    args = parser.parse_args(
        ["--algo", "sac", "--steps", "500", "--out", str(tmp_path), "--n-envs", "1", "--env-arg", "max_episode_steps=5",
         "--hp", "batch_size=32", "--hp", 'policy_kwargs={"net_arch": [16]}', "--resume", "--no-progress"]
    )
    seen = {}
    monkeypatch.setattr(learning, "train", lambda *a, **k: seen.update(args=a, kwargs=k))
    assert learning.train_main(args) == 0
    assert seen["args"] == (ENV_ID, "sac", 500, tmp_path)
    kw = seen["kwargs"]
    assert kw["env_kwargs"] == {**rl_envs.DEFAULT_ENV_KWARGS, "max_episode_steps": 5}
    assert kw["hyperparams"] == {"batch_size": 32, "policy_kwargs": {"net_arch": [16]}}
    assert kw["resume"] and not kw["progress"] and kw["n_envs"] == 1
    # the registered id of the mirror env gets the same training defaults
    assert learning.train_main(parser.parse_args(["--env", "facetwin/MirrorSelfModel-v0", "--out", str(tmp_path)])) == 0
    assert seen["kwargs"]["env_kwargs"] == rl_envs.DEFAULT_ENV_KWARGS
    with pytest.raises(ValueError, match="--hp must look like key=value"):  # the CLI's one line, exit code 2
        learning.train_main(parser.parse_args(["--hp", "oops"]))
