"""One trial of ``facetwin sweep``, as it runs inside Ray: :func:`sweep_trial`, the Ray Tune trainable that runs
:func:`facetwin.agents.rl.train` segment by segment, with its checkpoints as Tune's.

A trial trains in a folder of its own (its Ray working directory, on whichever node runs it) towards
``steps_per_report``, ``2 * steps_per_report``, ... ``steps``: each segment is one ``train(..., resume=True)`` call,
which continues from the folder's ``checkpoint.zip`` (model, optimizer, normalization statistics, replay buffer),
trains, writes ``model.zip`` and evaluates on the held-out episodes. After each segment the trial reports the
metrics (:data:`facetwin.agents.sweep_space.METRICS`, plus ``steps``, ``segments``, ``starts``, ``seconds``) with a
Tune checkpoint of the run files (``checkpoint.zip``, ``model.zip``, ``vecnormalize.pkl``, ``eval.json``) and
``trial.json`` (the trial's state: steps, segments trained, how often it started, its history of metrics). Tune
copies that checkpoint to the sweep's storage, so a trial restored on any node (after a kill, ``--resume``) copies
its files back and goes on from the last segment; a trial restored after its last segment reports its final
metrics again and trains nothing.

Ray is imported at the top: only :mod:`facetwin.agents.sweep` imports this module, inside its functions, so
facetwin works without the ``[scale]`` extra.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ray import tune

from facetwin.agents.rl import TrainResult, train
from facetwin.agents.rl_checkpoint import CHECKPOINT_NAME, EVAL_NAME, MODEL_NAME, VECNORM_NAME
from facetwin.agents.rl_envs import DEFAULT_ENV_KWARGS, MIRROR_ENV_IDS

RUN_FILES = (CHECKPOINT_NAME, MODEL_NAME, VECNORM_NAME, EVAL_NAME)  # a `facetwin train` folder, as export reads it
STATE_NAME = "trial.json"


def plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into Python numbers and lists (JSON and SB3 friendly)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def trial_settings(config: dict[str, Any]) -> dict[str, Any]:
    """A trial's settings from its Tune ``config`` (``{"seed": s, "variant": {...}}``: see
    :meth:`facetwin.agents.sweep_space.SweepSpec.param_space`), as plain Python values: the variant plus the seed."""
    return plain({**config.get("variant", {}), "seed": config["seed"]})


@dataclass(frozen=True)
class TrialPlan:
    """What every trial of a sweep shares (the searched settings come in the trial's Tune ``config``)."""

    env_id: str
    steps: int
    steps_per_report: int
    n_envs: int
    eval_episodes: int
    eval_seed: int
    normalize: bool
    randomize_ranges: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> ranges, as in the file
    device: str = "cpu"

    def segment_ends(self, done: int) -> list[int]:
        """The step counts that the segments still to train end at, after ``done`` steps."""
        ends = list(range(self.steps_per_report, self.steps, self.steps_per_report)) + [self.steps]
        return [e for e in ends if e > done]

    def randomization(self, label: str):
        """The ``RandomizationConfig`` of a ``[randomize]`` label (``None`` for ``"none"``)."""
        if label in (None, "none"):
            return None
        from facetwin.envs.randomization import RandomizationConfig

        return RandomizationConfig.from_dict(self.randomize_ranges[label], source=label)

    def train_arguments(self, config: dict[str, Any]) -> dict[str, Any]:
        """:func:`train`'s arguments for a trial's settings (:func:`trial_settings`), all but ``steps``,
        ``out_dir`` and ``resume``."""
        base = dict(DEFAULT_ENV_KWARGS) if self.env_id in MIRROR_ENV_IDS else {}
        randomize = self.randomization(config.get("randomize", "none"))
        eval_label = config.get("eval_randomize", "none")
        return dict(
            env_id=self.env_id, algo=config["algo"], seed=int(config["seed"]), n_envs=self.n_envs,
            env_kwargs={**base, **config.get("env_args", {})}, checkpoint_every=0, eval_episodes=self.eval_episodes,
            eval_seed=self.eval_seed, normalize=self.normalize, hyperparams=config.get("hp") or None,
            randomize=randomize, eval_randomize=randomize if eval_label == "train" else self.randomization(eval_label),
            device=self.device, progress=False, log=None,
        )


def trial_metrics(result: TrainResult) -> dict[str, float]:
    """The held-out scores of a segment: the trained policy's final and per-episode landmark error, the neutral
    face's, their ratio, and the same on held-out randomized twins when the trial evaluates on them."""
    out: dict[str, float] = {}
    for prefix, evaluation in (("", result.evaluation), ("randomized_", result.evaluation_randomized)):
        if not evaluation:
            continue
        trained = evaluation[f"trained {result.algo.upper()}"]
        neutral = evaluation["neutral face"].mean_final_error_mm
        out[prefix + "final_error_mm"] = trained.mean_final_error_mm
        out[prefix + "episode_error_mm"] = trained.mean_episode_error_mm
        out[prefix + "neutral_error_mm"] = neutral
        out[prefix + "vs_neutral"] = trained.mean_final_error_mm / neutral if neutral > 0 else float("nan")
    return out


def _trial_folder() -> Path:
    """The trial's own folder: its Ray working directory (Tune changes into one per trial), else a new temporary
    folder."""
    if os.environ.get("RAY_CHDIR_TO_TRIAL_DIR", "1") != "0":
        return Path.cwd()
    return Path(tempfile.mkdtemp(prefix="facetwin-trial-"))


def _restore(run_dir: Path) -> dict[str, Any]:
    """An empty ``run_dir`` holding the files of the trial's latest Tune checkpoint, if any; the trial's state
    (``trial.json``) with this start counted."""
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    state: dict[str, Any] = {"steps": 0, "segments": 0, "starts": 0, "seconds": 0.0, "history": [], "metrics": {}}
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            for name in RUN_FILES:
                if (Path(d) / name).exists():
                    shutil.copy2(Path(d) / name, run_dir / name)
            state = json.loads((Path(d) / STATE_NAME).read_text(encoding="utf-8"))
    state["starts"] += 1
    return state


def _report(run_dir: Path, report_dir: Path, state: dict[str, Any]) -> None:
    """Report the state's metrics with a Tune checkpoint of the run files and the state (Tune copies it to the
    sweep's storage before this returns)."""
    shutil.rmtree(report_dir, ignore_errors=True)
    report_dir.mkdir(parents=True)
    for name in RUN_FILES:
        if (run_dir / name).exists():
            shutil.copy2(run_dir / name, report_dir / name)
    (report_dir / STATE_NAME).write_text(json.dumps(state, indent=1), encoding="utf-8")
    tune.report(state["metrics"], checkpoint=tune.Checkpoint.from_directory(str(report_dir)))


def sweep_trial(config: dict[str, Any], plan: TrialPlan) -> None:
    """The Tune trainable of one trial (``tune.with_parameters(sweep_trial, plan=...)``): train segment by
    segment, report the held-out metrics and a checkpoint after each (see the module docstring)."""
    folder = _trial_folder()
    run_dir, report_dir = folder / "run", folder / "report"
    state = _restore(run_dir)
    if state["steps"] >= plan.steps:  # its last segment was reported before the sweep stopped: nothing to train
        tune.report({**state["metrics"], "starts": state["starts"]})
        return
    kwargs = plan.train_arguments(trial_settings(config))
    for end in plan.segment_ends(state["steps"]):
        t0 = time.perf_counter()
        result = train(steps=end, out_dir=run_dir, resume=True, **kwargs)
        scores = trial_metrics(result)
        state.update(steps=result.num_timesteps, segments=state["segments"] + 1,
                     seconds=state["seconds"] + time.perf_counter() - t0)
        state["history"].append({"steps": state["steps"], **scores})
        state["metrics"] = {**scores, **{k: state[k] for k in ("steps", "segments", "starts", "seconds")}}
        _report(run_dir, report_dir, state)
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.rmtree(report_dir, ignore_errors=True)


__all__ = ["RUN_FILES", "STATE_NAME", "TrialPlan", "plain", "sweep_trial", "trial_metrics", "trial_settings"]
