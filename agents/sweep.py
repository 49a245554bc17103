"""Studies of ``facetwin train`` on Ray Tune (``facetwin sweep``, the ``[scale]`` extra): seeds x hyper-parameters
x env arguments x randomization ranges, on this machine or a Ray cluster, early stopping on the held-out metric,
resumable after a kill.

>>> from facetwin.agents.sweep import run_sweep
>>> result = run_sweep("assets/data/sweep_example.toml", "runs/sweep")  # a local Ray runtime on this machine
>>> print(result.table)

Its parts: the search space file (:mod:`~facetwin.agents.sweep_space`), one trial as it runs inside Ray
(:mod:`~facetwin.agents.sweep_trial`: :func:`~facetwin.agents.rl.train` in segments, each reported with its
checkpoint), the results (:mod:`~facetwin.agents.sweep_report`); this module starts or joins Ray, runs or restores
the Tune experiment and writes the outputs. Ray is imported inside the functions: facetwin works without it.

Where it runs: ``address=None`` starts a private Ray runtime on this machine (``num_cpus``: default every core);
``address="HOST:6379"`` (or ``"auto"`` on a cluster node) joins a cluster made with ``ray start --head`` and
``ray start --address HOST:6379``, with no other change. Each trial asks for ``[resources] cpus_per_trial`` (and
``gpus_per_trial``); Tune runs as many at once as the cluster's CPUs hold (``max_concurrent_trials`` caps it).
Tune keeps the experiment (its state, every trial's checkpoints and results) under ``storage`` (default
``out_dir``), which every node must reach: a shared folder (NFS) or a URI that Tune's ``storage_path`` accepts
(``s3://...``, ``gs://...``).

What ``out_dir`` holds:

| path | what |
|---|---|
| ``sweep.json`` | the validated search space (resuming checks that the file still says the same) |
| ``NAME/`` | Tune's experiment (``storage`` = ``out_dir``): ``trial_<id>/checkpoint_*/``, ``result.json`` ... |
| ``results.md``, ``results.csv`` | every trial, best first: searched settings, metric, steps, time, starts, status |
| ``results.png`` | the metric over the training steps, one line per trial |
| ``best_run/`` | the best trial's run files: a ``facetwin train`` folder (``model.zip``, ``checkpoint.zip``, ...) |
| ``best_policy/`` | the best policy exported (``policy.pt`` + ``policy.json``) with ``export`` (the CLI's) |
| ``best.json`` | the best trial: id, settings, metric, steps |

Resuming (``resume=True``): ``tune.Tuner.restore`` on the experiment: finished trials stay finished (not rerun),
unfinished and errored ones go on from their latest checkpoint, trials not yet started start.

Layers: :mod:`facetwin.agents` does not import :mod:`facetwin.sim2real`, so the export of the best policy is passed
in (``export=facetwin.sim2real.export.export_policy``, as ``facetwin sweep`` does).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facetwin.agents.sweep_report import (
    RESULTS_PNG,
    TrialRow,
    best_row,
    plot_history,
    sort_rows,
    trial_status,
    write_results,
)
from facetwin.agents.sweep_space import SweepSpec, load_sweep, spec_difference
from facetwin.files import atomic_write_bytes

SCALE_HINT = 'facetwin sweep needs Ray Tune, the [scale] extra: pip install -e ".[scale]"'
SPEC_NAME, BEST_NAME, BEST_RUN, BEST_POLICY = "sweep.json", "best.json", "best_run", "best_policy"


def require_ray() -> None:
    """``ImportError`` with the one line that says how to install the ``[scale]`` extra when Ray Tune is missing."""
    try:
        import ray  # noqa: F401
        from ray import tune  # noqa: F401
    except ImportError as e:
        raise ImportError(f"{SCALE_HINT} ({e})") from None


@dataclass
class SweepResult:
    """What :func:`run_sweep` did: the experiment, every trial (best first), the best one and its exports."""

    out_dir: Path
    experiment: str  # the Tune experiment's folder or URI
    rows: list[TrialRow]
    table: str
    best: TrialRow | None
    best_run: Path | None
    best_policy: Path | None
    resumed: bool


def trial_dirname(trial) -> str:
    """Tune's folder name of a trial: ``trial_<id>`` (Tune's default spells every parameter, paths included)."""
    return f"trial_{trial.trial_id}"


def storage_location(storage: str | Path) -> str:
    """Tune's ``storage_path``: a URI as it is, a folder made absolute."""
    text = str(storage)
    return text.rstrip("/") if "://" in text else str(Path(text).expanduser().resolve())


def experiment_path(storage: str | Path, name: str) -> str:
    """The Tune experiment ``name`` under ``storage`` (a folder or a URI)."""
    return f"{storage_location(storage)}/{name}"


def _check_out_dir(spec: SweepSpec, out_dir: Path, experiment: str, resume: bool) -> None:
    """A new sweep needs a fresh experiment; a resumed one an existing experiment of the same search space."""
    from ray import tune

    saved_path = out_dir / SPEC_NAME
    exists = tune.Tuner.can_restore(experiment)
    if not resume:
        if exists or saved_path.exists():
            raise ValueError(f"--out {out_dir}: it holds the sweep {spec.name!r} already; --resume continues it, "
                             "or choose another --out")
        return
    if not exists:
        raise ValueError(f"--resume: no sweep {spec.name!r} to resume in {experiment}")
    if saved_path.exists():
        difference = spec_difference(json.loads(saved_path.read_text(encoding="utf-8")), spec.as_json())
        if difference:
            raise ValueError(f"--resume: {spec.source} no longer describes the sweep in {out_dir} ({difference})")


def _check_runtime(address: str | None, num_cpus: int | None) -> None:
    cores = os.cpu_count() or 1
    if address is not None and num_cpus is not None:
        raise ValueError("--num-cpus sizes the local runtime; a cluster (--address) brings its own CPUs")
    if num_cpus is not None and not 1 <= num_cpus <= cores:
        raise ValueError(f"--num-cpus must be in 1..{cores} (this machine's cores), got {num_cpus}")


def _start_ray(address: str | None, num_cpus: int | None, quiet: bool) -> bool:
    """Join ``address``, or start a private local runtime of ``num_cpus`` CPUs (default: every core); False when
    Ray was running already in this process (then it is left running)."""
    import ray

    from facetwin.ray_tasks import init_ray

    if ray.is_initialized():
        return False
    level = logging.WARNING if quiet else logging.INFO
    if address is None:
        init_ray(ray, address="local", num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                 log_to_driver=not quiet, logging_level=level)
    else:
        init_ray(ray, address=address, log_to_driver=not quiet, logging_level=level)
    return True


def _check_resources(spec: SweepSpec) -> None:
    import ray

    have = ray.cluster_resources()
    for key, need in (("CPU", spec.cpus_per_trial), ("GPU", spec.gpus_per_trial)):
        if need > have.get(key, 0):
            raise ValueError(f"[resources] {key.lower()}s_per_trial = {need:g}: the Ray runtime has "
                             f"{have.get(key, 0):g} {key}s, so no trial could start")


def trial_plan(spec: SweepSpec):
    """The :class:`~facetwin.agents.sweep_trial.TrialPlan` every trial of ``spec`` shares (imports Ray)."""
    from facetwin.agents.sweep_trial import TrialPlan

    return TrialPlan(env_id=spec.env_id, steps=spec.steps, steps_per_report=spec.steps_per_report,
                     n_envs=spec.n_envs, eval_episodes=spec.eval_episodes, eval_seed=spec.eval_seed,
                     normalize=spec.normalize, randomize_ranges=spec.randomize_ranges,
                     device="cuda" if spec.gpus_per_trial > 0 else "cpu")


def build_tuner(spec: SweepSpec, storage: str, experiment: str, resume: bool, quiet: bool = False):
    """The ``tune.Tuner`` of the sweep: new, or restored from ``experiment`` (``resume``)."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from facetwin.agents.sweep_trial import sweep_trial

    trainable = tune.with_resources(tune.with_parameters(sweep_trial, plan=trial_plan(spec)),
                                    {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial})
    if resume:
        return tune.Tuner.restore(experiment, trainable, resume_errored=True, param_space=spec.param_space())
    scheduler = None
    if spec.scheduler == "asha":
        scheduler = ASHAScheduler(time_attr="steps", max_t=spec.steps, grace_period=spec.grace_steps,
                                  reduction_factor=spec.reduction_factor)
    tune_config = tune.TuneConfig(metric=spec.metric, mode=spec.mode, scheduler=scheduler,
                                  max_concurrent_trials=spec.max_concurrent_trials or None,
                                  trial_dirname_creator=trial_dirname)
    run_config = tune.RunConfig(name=spec.name, storage_path=storage, verbose=0 if quiet else 1,
                                checkpoint_config=tune.CheckpointConfig(num_to_keep=2))
    return tune.Tuner(trainable, param_space=spec.param_space(), tune_config=tune_config, run_config=run_config)


def _lookup(config: dict[str, Any], path: str) -> Any:
    for part in path.split("/"):
        config = config.get(part, {}) if isinstance(config, dict) else {}
    return config if config != {} else ""


def collect_rows(grid, spec: SweepSpec) -> list[TrialRow]:
    """One :class:`TrialRow` per trial of a Tune ``ResultGrid``, best first."""
    from facetwin.agents.sweep_trial import STATE_NAME, trial_settings

    rows = []
    for result in grid:
        metrics = result.metrics or {}
        state: dict[str, Any] = {}
        if result.checkpoint is not None:
            with result.checkpoint.as_directory() as d:
                if (Path(d) / STATE_NAME).exists():
                    state = json.loads((Path(d) / STATE_NAME).read_text(encoding="utf-8"))
        steps = int(metrics.get("steps", state.get("steps", 0)))
        value = metrics.get(spec.metric)
        rows.append(TrialRow(
            trial=str(metrics.get("trial_id") or Path(result.path).name.removeprefix("trial_")),
            params={k: _lookup(trial_settings(result.config), k) for k in spec.searched()} if result.config else {},
            metric=None if value is None else float(value), steps=steps,
            seconds=float(metrics.get("time_total_s", 0.0)),
            starts=max(int(metrics.get("starts", 0)), int(state.get("starts", 0))),
            status=trial_status(result.error, steps, spec.steps),
            history=[(int(h["steps"]), float(h[spec.metric])) for h in state.get("history", []) if spec.metric in h],
            checkpoint=result.checkpoint,
        ))
    return sort_rows(rows, spec.mode)


def write_best(best: TrialRow, spec: SweepSpec, out_dir: Path,
               export: Callable[[Path, Path], Any] | None) -> tuple[Path, Path | None]:
    """Copy the best trial's run files to ``out_dir/best_run``, export its policy to ``out_dir/best_policy`` (with
    ``export(run_dir, out)``) and describe it in ``best.json``."""
    from facetwin.agents.sweep_trial import RUN_FILES, STATE_NAME

    best_run = out_dir / BEST_RUN
    shutil.rmtree(best_run, ignore_errors=True)
    best_run.mkdir(parents=True)
    with best.checkpoint.as_directory() as d:
        for name in (*RUN_FILES, STATE_NAME):
            if (Path(d) / name).exists():
                shutil.copy2(Path(d) / name, best_run / name)
    best_policy = None
    if export is not None:
        best_policy = out_dir / BEST_POLICY
        export(best_run, best_policy)
    record = {"trial": best.trial, "params": best.params, "metric": spec.metric, "mode": spec.mode,
              "value": best.metric, "steps": best.steps, "checkpoint": str(best.checkpoint.path),
              "run": str(best_run), "policy": None if best_policy is None else str(best_policy)}
    atomic_write_bytes(out_dir / BEST_NAME, (json.dumps(record, indent=1) + "\n").encode())
    return best_run, best_policy


def _header(spec: SweepSpec, experiment: str, n_rows: int) -> str:
    return (f"# facetwin sweep `{spec.name}`\n\n{n_rows} trials of {spec.steps:,} steps on `{spec.env_id}` "
            f"(reports every {spec.steps_per_report:,} steps, {spec.eval_episodes} held-out episodes); metric "
            f"`{spec.metric}` ({spec.mode}); scheduler {spec.scheduler}; experiment `{experiment}`.")


def run_sweep(
    config_path: str | Path,
    out_dir: str | Path,
    *,
    address: str | None = None,
    resume: bool = False,
    num_cpus: int | None = None,
    storage: str | None = None,
    quiet: bool = False,
    export: Callable[[Path, Path], Any] | None = None,
    log: Callable[[str], None] | None = print,
) -> SweepResult:
    """Run the sweep of ``config_path`` (:mod:`~facetwin.agents.sweep_space`) into ``out_dir`` (see the module
    docstring): on a local Ray runtime (``num_cpus``), or on the cluster at ``address``; ``resume`` continues a
    killed sweep without rerunning its finished trials. Bad input raises ``ValueError``/``FileNotFoundError``
    before Ray starts; a missing Ray raises ``ImportError`` naming the ``[scale]`` extra."""
    say = log or (lambda s: None)
    spec = load_sweep(config_path)
    require_ray()
    out = Path(out_dir).expanduser().resolve()
    storage_root = storage_location(storage or out)
    experiment = experiment_path(storage_root, spec.name)
    _check_runtime(address, num_cpus)
    _check_out_dir(spec, out, experiment, resume)
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")  # the experiment's state on disk lags a trial by <= 2 s
    started = _start_ray(address, num_cpus, quiet)
    try:
        _check_resources(spec)
        if not resume:
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(out / SPEC_NAME, (json.dumps(spec.as_json(), indent=1) + "\n").encode(), durable=True)
        say(f"{'resuming' if resume else 'starting'} sweep {spec.name!r}: {spec.n_trials()} trials -> {experiment}")
        grid = build_tuner(spec, storage_root, experiment, resume, quiet).fit()
        rows = collect_rows(grid, spec)
    finally:
        if started:
            import ray

            ray.shutdown()
    table = write_results(rows, out, spec.metric, _header(spec, experiment, len(rows)))
    plot_history(rows, out / RESULTS_PNG, spec.metric)
    best = best_row(rows, spec.mode)
    best_run = best_policy = None
    if best is not None:
        best_run, best_policy = write_best(best, spec, out, export)
    return SweepResult(out, experiment, rows, table, best, best_run, best_policy, resume)


__all__ = ["BEST_NAME", "BEST_POLICY", "BEST_RUN", "SCALE_HINT", "SPEC_NAME", "SweepResult", "build_tuner",
           "collect_rows", "experiment_path", "require_ray", "run_sweep", "storage_location", "trial_dirname",
           "trial_plan", "write_best"]
