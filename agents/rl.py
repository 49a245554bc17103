"""Reinforcement learning on the face twin with Stable-Baselines3 (SAC or PPO), with resumable checkpoints.

>>> from facetwin.agents.rl import train
>>> result = train("facetwin.envs.mirror_self_model:MirrorSelfModelEnv", "sac", 15_000, "runs/mirror", n_envs=2)
>>> print(result.table)  # trained policy vs random policy vs neutral face, on the same held-out targets

Its parts: the envs (:mod:`~facetwin.agents.rl_envs`), the checkpoints (:mod:`~facetwin.agents.rl_checkpoint`),
the SB3 callbacks (:mod:`~facetwin.agents.rl_callbacks`), the evaluation (:mod:`~facetwin.agents.rl_eval`); this
module holds the hyper-parameters and :func:`train`.

Command line (:mod:`facetwin.cli.learning`)::

    facetwin train --algo sac --steps 15000 --n-envs 2 --out runs/mirror
    facetwin train --algo sac --steps 15000 --n-envs 2 --out runs/mirror --resume   # after a kill
    facetwin train --algo ppo --hp n_steps=512 --env-arg max_episode_steps=20 --out runs/ppo
    facetwin train --steps 8000 --randomize --eval-randomize --out runs/mirror-dr   # domain randomization

``n_envs > 1`` runs the envs in ``SubprocVecEnv`` worker processes (forkserver start method): a script that calls
:func:`train` must guard its entry point with ``if __name__ == "__main__":``.

What a run writes into ``out_dir``:

* ``checkpoint.zip``: the latest periodic checkpoint (every ``checkpoint_every`` steps, and at the end), one file,
  written atomically (a temporary file in the same folder, flushed and fsync'ed, then ``os.replace``). It bundles
  the SB3 model (``model.zip``, with the optimizer state), the VecNormalize statistics (``vecnormalize.pkl``), the
  SAC replay buffer (``replay_buffer.pkl``) and ``meta.json`` (``num_timesteps``, algorithm, env id and kwargs, seed,
  step target, hyper-parameter overrides). A run killed while writing leaves a stray ``.checkpoint.*.part.zip`` file
  (deleted by the next run) and the previous ``checkpoint.zip`` intact. Checkpoints are taken at the start of a
  rollout, after the previous update, so the saved step count is exactly the data the saved policy learned from.
* ``model.zip`` and ``vecnormalize.pkl``: the final policy (``SAC.load`` / ``PPO.load``; ``VecNormalize.load``).
* ``tb/``: TensorBoard logs (``tensorboard --logdir out_dir/tb``), with ``rollout/ep_final_error_mm`` (mean
  end-of-episode landmark error of recent training episodes, exploration noise included). A resumed run goes on
  in the same TensorBoard run.
* ``eval.json``: the final evaluation, per episode.

Resuming (``resume=True``): the model, its optimizer, the VecNormalize statistics, the replay buffer and the step
count come from ``checkpoint.zip``; training continues (``reset_num_timesteps=False``) until the same total
``steps``; the envs restart with fresh episodes (seeded from the seed and the step count).

Domain randomization (``randomize=``, ``--randomize [CONFIG]``; :mod:`facetwin.envs.randomization`): every
training env is wrapped in ``DomainRandomization`` with the ranges of CONFIG (``--randomize`` alone: the default
``assets/data/randomization.toml``): each training episode gets fresh ``DomainParams`` drawn from the env's own
seeded stream. The ranges are recorded in ``meta.json`` and ``eval.json`` (``"randomize"``); a resumed run must use
the same ones. ``eval_randomize=`` (``--eval-randomize [CONFIG]``; alone: the training ranges, or the default file)
adds an evaluation on a *held-out randomized twin*: the same held-out episodes, each with domain parameters drawn
from a stream of its own, ``default_rng([eval_domain_seed, reset seed])`` (``--eval-domain-seed``, default
2,000,000), so every policy (and every run) evaluated with the same settings meets the same twins, none of them a
training draw. Its table is printed and saved as ``"results_randomized"`` in ``eval.json``.

Evaluation (:func:`evaluate`, :func:`compare_policies`): the trained policy (deterministic), a uniformly random policy
and the neutral face (the action that commands the rest controls) run on the same held-out episodes. Episode ``i``
is reset with ``seed=eval_seed + i`` and, for the mirror self-model env, a held-out target: the control vector
``sample_expression(default_rng([eval_seed, i]))`` from the env's own target distribution, settled like the
training targets, whereas training targets come from the env's pool, entry ``k`` drawn from
``default_rng([target_seed, k])`` (``eval_seed`` 1,000,000 vs ``target_seed`` 0; equal seeds are refused). The
figure of merit is the landmark error (``info["error_mm"]``, mm, lip landmarks weighted 2) at the last step of the
episode; the table also gives the error averaged over the episode.

Defaults (held-out targets, error at the end of the episode; the speed figures are in the README's "Training"):

* env: ``DEFAULT_ENV_KWARGS``: the "fast" model variant, absolute actions, landmark observations, 10-step episodes
  (1/3 s; commanding the target controls themselves gets within 0.05 mm in 10 steps), the env's pool of 256
  targets (each settled once per process: the first minute of a run is slower);
* SAC (the default algorithm), ``ALGO_DEFAULTS["sac"]``: ``facetwin train --algo sac --steps 15000 --n-envs 2``
  reached 2.26 mm vs 3.19 mm for the neutral face (0.71x) and 7.00 mm for random actions (50 episodes; the run is
  deterministic for a seed). The tiny run of the tests (:data:`TINY`, 4000 steps, one env) reached 0.71x-0.78x
  over seeds 0-3; other SAC runs of 6000-15000 steps gave 0.68x-0.77x: it plateaus there;
* PPO, ``ALGO_DEFAULTS["ppo"]``: 40,000 steps with 2 envs reached 3.32 mm vs 3.11 mm neutral (1.07x, 30 episodes):
  on-policy learning of this 26-D regression-like task is too slow for a minutes-long budget.

The CPU's two cores are shared by three processes with ``n_envs=2`` (two env workers and the learner), and torch
is limited to one thread (``torch_threads=1``): torch's default two threads spin against the env workers.
"""

from __future__ import annotations

import json
import math
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facetwin.agents.rl_callbacks import training_callbacks
from facetwin.agents.rl_checkpoint import (
    ALGOS,
    CHECKPOINT_NAME,
    EVAL_NAME,
    MODEL_NAME,
    VECNORM_NAME,
    algo_class,
    load_checkpoint,
    read_checkpoint_meta,
    remove_stale_temporaries,
    save_checkpoint,
)
from facetwin.agents.rl_envs import (
    DEFAULT_ENV_ID,
    DEFAULT_ENV_KWARGS,
    MIRROR_ENV_IDS,
    RandomizationSpec,
    check_env_id,
    check_env_kwargs,
    make_vec_env,
    resolve_randomization,
)
from facetwin.agents.rl_eval import (
    DEFAULT_EVAL_DOMAIN_SEED,
    DEFAULT_EVAL_SEED,
    EvalResult,
    compare_policies,
    format_eval_table,
    model_policy,
)
from facetwin.files import atomic_write, atomic_write_bytes

if TYPE_CHECKING:
    from facetwin.envs.randomization import RandomizationConfig

# Hyper-parameters per algorithm (SB3 constructor keyword arguments), overridable with ``hyperparams=`` /
# ``--hp key=value``. Chosen for the mirror self-model task on a 2-core CPU machine (see the module docstring for the
# measurements behind them):
#
# * SAC (the default): one gradient step per environment step (``gradient_steps=-1``: as many as the vec env
#   collected, so the update-to-data ratio stays 1 with any ``n_envs``), 128x128 networks and batches of 128 (a
#   256x256 / 256 step costs ~20 ms on this CPU, 4x more, for a small gain), a short discount (gamma 0.5: a command
#   shows in the landmarks within 2-3 control steps and the task is nearly a contextual bandit; 0.5 beat 0.9 in
#   the same budget), learning rate 3e-4 (1e-3 was worse), 500 random steps before learning;
# * PPO: rollouts of 256 steps per env, minibatches of 64, 10 epochs, lr 3e-4, gamma 0.9, an initial action std of
#   0.37 (``log_std_init=-1``, about the spread of the targets around rest; std 1 mostly hits the [-1, 1] clip).
#   PPO learns this task much more slowly per sample than SAC (see the module docstring).
ALGO_DEFAULTS: dict[str, dict[str, Any]] = {
    "ppo": dict(
        learning_rate=3e-4,
        n_steps=256,  # x n_envs per rollout
        batch_size=64,
        n_epochs=10,
        gamma=0.9,  # short episodes
        gae_lambda=0.95,
        clip_range=0.2,
        ent_coef=0.0,
        policy_kwargs=dict(net_arch=dict(pi=[256, 256], vf=[256, 256]), log_std_init=-1.0),
    ),
    "sac": dict(
        learning_rate=3e-4,
        buffer_size=100_000,
        learning_starts=500,
        batch_size=128,
        gamma=0.5,
        tau=0.005,
        train_freq=1,
        gradient_steps=-1,  # one gradient step per collected env step, whatever n_envs
        policy_kwargs=dict(net_arch=[128, 128]),
    ),
}

# The tiny run of the test suite (tests/test_rl.py): about a minute on one core, below the neutral face's error on
# held-out targets (measured 0.71x-0.78x of the neutral error over seeds 0-3, 20 held-out episodes).
TINY: dict[str, Any] = dict(
    algo="sac",
    steps=4_000,
    env_kwargs={**DEFAULT_ENV_KWARGS, "target_pool_size": 64},  # 64 training targets: the pool is computed fast
    hyperparams=None,  # the SAC defaults
)


# ------------------------------------------------------------------------------------------------ training
@dataclass
class TrainResult:
    out_dir: Path
    algo: str
    env_id: str
    num_timesteps: int
    steps_this_run: int
    train_seconds: float
    resumed_from: int | None
    model_path: Path
    checkpoint_path: Path
    evaluation: dict[str, EvalResult] = field(default_factory=dict)
    table: str = ""
    evaluation_randomized: dict[str, EvalResult] = field(default_factory=dict)  # on held-out randomized twins
    table_randomized: str = ""


def _json_default(o):
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o)}")


def _deep_update(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _deep_update(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def algo_hyperparams(algo: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The defaults of ``algo`` (:data:`ALGO_DEFAULTS`) updated with ``overrides``."""
    import inspect

    algo = algo.lower()
    if algo not in ALGO_DEFAULTS:
        raise ValueError(f"unknown algorithm {algo!r}; choose one of {ALGOS}")
    known = {k for k in inspect.signature(algo_class(algo).__init__).parameters
             if k not in ("self", "policy", "env") and not k.startswith("_")}
    for key, value in (overrides or {}).items():
        if key not in known:
            raise ValueError(f"--hp {key}: not a hyper-parameter of {algo.upper()}; known: {', '.join(sorted(known))}")
        default = ALGO_DEFAULTS[algo].get(key)
        if isinstance(default, (int, float)) and not isinstance(default, bool) and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            raise ValueError(f"--hp {key}: must be a finite number, got {value!r}")
    return _deep_update(ALGO_DEFAULTS[algo], overrides or {})


@dataclass
class _Run:
    """The settings one training run's steps share, fixed before its envs start (resuming replaces the seed, the
    normalization and the hyper-parameter overrides with the checkpoint's, ``meta_in``)."""

    env_id: str
    algo: str
    steps: int
    out_dir: Path
    seed: int
    n_envs: int
    env_kwargs: dict[str, Any]
    normalize: bool
    overrides: dict[str, Any] | None  # the hyper-parameter overrides (--hp)
    randomize: RandomizationConfig | None
    eval_randomize: RandomizationConfig | None
    say: Callable[[str], None]
    checkpoint_every: int
    progress: bool
    eval_episodes: int
    eval_seed: int
    eval_domain_seed: int
    meta_in: dict[str, Any] | None = None  # the checkpoint's meta.json when resuming from one

    @property
    def ckpt_path(self) -> Path:
        return self.out_dir / CHECKPOINT_NAME

    @property
    def env_seed(self) -> int:
        """The envs' seed: a resumed run's envs get fresh streams (the seed plus the checkpoint's step count)."""
        return self.seed if self.meta_in is None else self.seed + int(self.meta_in["num_timesteps"])

    @property
    def randomize_record(self) -> dict[str, Any] | None:
        """The domain randomization ranges as ``meta.json`` and ``eval.json`` record them."""
        return None if self.randomize is None else {"source": self.randomize.source, "ranges": self.randomize.as_dict()}

    def checkpoint_meta(self) -> dict[str, Any]:
        """What the checkpoint's ``meta.json`` records of the run (:func:`save_checkpoint` adds the step count)."""
        return dict(algo=self.algo, env_id=self.env_id, env_kwargs=self.env_kwargs, seed=self.seed, n_envs=self.n_envs,
                    total_steps=self.steps, randomize=self.randomize_record, hyperparams_overrides=self.overrides)


def _resume_from_checkpoint(run: _Run) -> None:
    """Take the checkpoint in ``run.out_dir`` (its meta, seed, normalization and overrides) after checking that it
    was trained on the same task; a folder without one starts a fresh run."""
    ckpt_path = run.ckpt_path
    if not ckpt_path.exists():
        run.say(f"no checkpoint in {run.out_dir}; starting a fresh run")
        return
    meta_in = read_checkpoint_meta(ckpt_path)
    if meta_in.get("algo") != run.algo:
        raise ValueError(f"{ckpt_path} was trained with {meta_in.get('algo')!r}, not {run.algo!r}")
    if meta_in.get("env_id") != run.env_id or meta_in.get("env_kwargs") != json.loads(json.dumps(run.env_kwargs)):
        raise ValueError(
            f"{ckpt_path} was trained on {meta_in.get('env_id')} with {meta_in.get('env_kwargs')}, "
            f"not on {run.env_id} with {run.env_kwargs}"
        )
    ranges_in = (meta_in.get("randomize") or {}).get("ranges")
    ranges_now = None if run.randomize is None else json.loads(json.dumps(run.randomize.as_dict()))
    if ranges_in != ranges_now:
        raise ValueError(f"{ckpt_path} was trained with domain randomization ranges {ranges_in}, not {ranges_now}")
    if meta_in.get("n_envs", run.n_envs) != run.n_envs:  # the replay buffer and rollouts are laid out per env
        raise ValueError(f"--n-envs {run.n_envs}: {ckpt_path} was trained with --n-envs {meta_in['n_envs']}; "
                         f"resume with --n-envs {meta_in['n_envs']}")
    run.seed = int(meta_in.get("seed", run.seed))
    run.normalize = bool(meta_in.get("has_vecnormalize", run.normalize))
    run.overrides = meta_in.get("hyperparams_overrides")
    run.meta_in = meta_in


def _build_model(run: _Run, venv, hp: dict[str, Any], device: str, verbose: int):
    """``(model, vecnormalize or None, resumed_from)``: the checkpoint's model bound to ``venv`` when resuming,
    else a new ``run.algo`` model with hyper-parameters ``hp`` on ``venv`` (in VecNormalize if ``run.normalize``)."""
    if run.meta_in is not None:
        model, vecnormalize, _ = load_checkpoint(run.ckpt_path, venv, device=device)
        model.set_random_seed(run.env_seed)  # load() re-seeded everything with the first run's seed
        model.tensorboard_log = str(run.out_dir / "tb")
        resumed_from = int(model.num_timesteps)
        run.say(f"resuming {run.algo.upper()} from {run.ckpt_path} at step {resumed_from:,} (target {run.steps:,})")
        return model, vecnormalize, resumed_from
    from stable_baselines3.common.vec_env import VecNormalize

    env, vecnormalize = venv, None
    if run.normalize:
        vecnormalize = VecNormalize(venv, norm_obs=True, norm_reward=False, gamma=hp.get("gamma", 0.99))
        env = vecnormalize
    model = algo_class(run.algo)("MultiInputPolicy", env, seed=run.seed, tensorboard_log=str(run.out_dir / "tb"),
                                 device=device, verbose=verbose, **hp)
    return model, vecnormalize, None


def _learn(run: _Run, model, vecnormalize) -> tuple[int, float]:
    """Train ``model`` on to ``run.steps`` steps in total, with periodic checkpoints and one at the end; returns the
    step count it started from and the seconds it took."""
    meta = run.checkpoint_meta()

    def checkpoint() -> None:
        save_checkpoint(run.ckpt_path, model, vecnormalize, meta)

    callbacks = training_callbacks(checkpoint, run.checkpoint_every, run.steps if run.progress else None)
    remaining = run.steps - int(model.num_timesteps)
    start_steps = int(model.num_timesteps)
    t0 = time.perf_counter()
    if remaining > 0:
        model.learn(total_timesteps=remaining, callback=callbacks, reset_num_timesteps=run.meta_in is None,
                    tb_log_name=run.algo, progress_bar=False)
    train_seconds = time.perf_counter() - t0
    if remaining > 0 or not run.ckpt_path.exists():
        checkpoint()
    return start_steps, train_seconds


def _save_policy(run: _Run, model, vecnormalize, start_steps: int, train_seconds: float,
                 resumed_from: int | None) -> TrainResult:
    """Write the final policy (``model.zip``, ``vecnormalize.pkl``) and say what was trained."""
    model_path = run.out_dir / MODEL_NAME
    atomic_write(model_path, model.save, durable=True)
    if vecnormalize is not None:
        atomic_write_bytes(run.out_dir / VECNORM_NAME, pickle.dumps(vecnormalize), durable=True)
    done = int(model.num_timesteps)
    run.say(
        f"trained {run.algo.upper()} {done - start_steps:,} steps in {train_seconds:.1f} s "
        f"({(done - start_steps) / max(train_seconds, 1e-9):.0f} steps/s), {done:,} in total -> {model_path}"
    )
    return TrainResult(
        out_dir=run.out_dir,
        algo=run.algo,
        env_id=run.env_id,
        num_timesteps=done,
        steps_this_run=done - start_steps,
        train_seconds=train_seconds,
        resumed_from=resumed_from,
        model_path=model_path,
        checkpoint_path=run.ckpt_path,
    )


def _evaluate_run(run: _Run, result: TrainResult, model, vecnormalize) -> None:
    """The trained policy vs a random policy vs the neutral face on held-out episodes (and, with
    ``run.eval_randomize``, on held-out randomized twins): into ``result`` and ``out_dir/eval.json``."""
    if vecnormalize is not None:
        vecnormalize.training = False
    episodes, eval_seed, eval_randomize = run.eval_episodes, run.eval_seed, run.eval_randomize

    def compare(**randomized) -> dict[str, EvalResult]:
        return compare_policies(run.env_id, run.env_kwargs, model_policy(model, vecnormalize), episodes, eval_seed,
                                policy_name=f"trained {run.algo.upper()}", **randomized)

    result.evaluation = compare()
    result.table = format_eval_table(list(result.evaluation.values()))
    run.say(
        f"\nheld-out evaluation: {episodes} episodes, reset seeds {eval_seed}..{eval_seed + episodes - 1}"
        f" (training seeds start at {run.seed})\n" + result.table
    )
    report = {
        "algo": run.algo,
        "env_id": run.env_id,
        "env_kwargs": run.env_kwargs,
        "randomize": run.randomize_record,
        "num_timesteps": result.num_timesteps,
        "train_seconds_this_run": result.train_seconds,
        "eval_seed": eval_seed,
        "results": {k: v.summary() for k, v in result.evaluation.items()},
    }
    if eval_randomize is not None:
        result.evaluation_randomized = compare(randomize=eval_randomize, domain_seed=run.eval_domain_seed)
        result.table_randomized = format_eval_table(list(result.evaluation_randomized.values()))
        run.say(
            f"\nheld-out randomized twin: {eval_randomize.source}, domain seed {run.eval_domain_seed}, same episodes\n"
            + result.table_randomized
        )
        report["eval_randomize"] = {"source": eval_randomize.source, "ranges": eval_randomize.as_dict(),
                                    "domain_seed": run.eval_domain_seed}
        report["results_randomized"] = {k: v.summary() for k, v in result.evaluation_randomized.items()}
    text = json.dumps(report, indent=2, default=_json_default) + "\n"
    atomic_write_bytes(run.out_dir / EVAL_NAME, text.encode(), durable=True)


def train(
    env_id: str = DEFAULT_ENV_ID,
    algo: str = "sac",
    steps: int = 15_000,
    out_dir: str | Path = "runs/mirror",
    *,
    seed: int = 0,
    n_envs: int = 2,
    env_kwargs: dict[str, Any] | None = None,
    checkpoint_every: int = 10_000,
    resume: bool = False,
    progress: bool = True,
    eval_episodes: int = 50,
    eval_seed: int = DEFAULT_EVAL_SEED,
    normalize: bool = True,
    hyperparams: dict[str, Any] | None = None,
    randomize: RandomizationSpec = None,
    eval_randomize: RandomizationSpec = None,
    eval_domain_seed: int = DEFAULT_EVAL_DOMAIN_SEED,
    device: str = "cpu",
    torch_threads: int | None = 1,
    verbose: int = 0,
    log: Callable[[str], None] | None = print,
) -> TrainResult:
    """Train ``algo`` on ``env_id`` for ``steps`` environment steps in total, then evaluate on held-out episodes.

    ``env_kwargs`` default to :data:`DEFAULT_ENV_KWARGS` (fast variant, absolute actions, 10-step episodes) for the
    mirror self-model env (:data:`MIRROR_ENV_IDS`), to ``{}`` for any other env.
    ``checkpoint_every`` (steps, 0 = only at the end) writes ``out_dir/checkpoint.zip`` atomically. With
    ``resume=True`` training continues from that checkpoint (model, optimizer, VecNormalize statistics, SAC replay
    buffer, step count) towards the same total ``steps``; the checkpoint's algorithm and env settings are used and
    must not contradict the arguments. ``eval_episodes=0`` skips the final evaluation.

    ``randomize`` (a ``RandomizationConfig``, a TOML path, ``True`` for the default ranges, or None): train on a
    randomized twin. ``eval_randomize`` (same forms; ``True``: the training ranges, or the default ones) also evaluates
    on held-out randomized twins drawn with ``eval_domain_seed`` (see the module docstring).
    """
    say = log or (lambda s: None)
    if torch_threads:
        import torch

        torch.set_num_threads(torch_threads)  # small nets: more threads only spin against the env workers
    check_env_id(env_id)
    check_env_kwargs(env_id, env_kwargs)
    algo_hyperparams(algo, hyperparams)  # bad overrides fail here, before anything is written
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_dir)
    if env_kwargs is None:
        env_kwargs = dict(DEFAULT_ENV_KWARGS) if env_id in MIRROR_ENV_IDS else {}
    randomize = resolve_randomization(randomize)
    run = _Run(
        env_id=env_id, algo=algo.lower(), steps=steps, out_dir=out_dir, seed=seed, n_envs=n_envs,
        env_kwargs=env_kwargs, normalize=normalize, overrides=hyperparams, randomize=randomize,
        eval_randomize=resolve_randomization(eval_randomize, fallback=randomize), say=say,
        checkpoint_every=checkpoint_every, progress=progress, eval_episodes=eval_episodes, eval_seed=eval_seed,
        eval_domain_seed=eval_domain_seed,
    )
    if resume:
        _resume_from_checkpoint(run)
    hp = algo_hyperparams(run.algo, run.overrides)
    venv = make_vec_env(env_id, n_envs, run.env_seed, env_kwargs, randomize)
    if randomize is not None:
        say(f"domain randomization: {randomize.source} ({', '.join(randomize.ranges)})")
    try:
        model, vecnormalize, resumed_from = _build_model(run, venv, hp, device, verbose)
        result = _save_policy(run, model, vecnormalize, *_learn(run, model, vecnormalize), resumed_from)
    finally:
        venv.close()
    if eval_episodes > 0:
        _evaluate_run(run, result, model, vecnormalize)
    return result
