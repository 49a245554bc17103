"""The search space of ``facetwin sweep`` (:mod:`facetwin.agents.sweep`): its TOML file, validated into a
:class:`SweepSpec`, and the Ray Tune ``param_space`` that it becomes.

A sweep file (``assets/data/sweep_example.toml`` is one)::

    [sweep]
    name = "mirror-sac-lr"               # the experiment's folder under --out (default "sweep")
    env = "facetwin/MirrorSelfModel-v0"  # registered id or module:Class (default: the mirror self-model env)
    algo = "sac"                         # "sac", "ppo", or a distribution over them
    steps = 15000                        # environment steps per trial
    steps_per_report = 5000              # one segment: train, checkpoint, evaluate, report (default: steps)
    n_envs = 1                           # envs per trial (> 1: worker processes)
    eval_episodes = 20                   # held-out evaluation episodes after every segment
    metric = "final_error_mm"            # what the scheduler and the best trial go by (table below)
    mode = "min"                         # "min" or "max"
    seeds = [0, 1]                       # every variant runs once per seed
    num_samples = 1                      # draws of the random distributions (each x every grid value x seeds)
    sample_seed = 0                      # seed of those draws (the same file gives the same variants)
    max_concurrent_trials = 0            # 0: as many as the CPUs allow

    [hyperparameters]                    # SB3 constructor arguments (facetwin train --hp)
    learning_rate = { loguniform = [1e-4, 1e-3] }
    batch_size = { choice = [64, 128] }

    [env_args]                           # env constructor arguments (facetwin train --env-arg)
    max_episode_steps = 10

    [randomize]                          # domain randomization (facetwin train --randomize / --eval-randomize)
    config = "none"                      # "none", "default", a ranges TOML file, or a distribution over those
    eval = "none"                        # held-out randomized twins: "none", "train", "default" or a file

    [resources]
    cpus_per_trial = 1                   # default: n_envs
    gpus_per_trial = 0

    [scheduler]
    type = "asha"                        # "asha" (early stopping on the held-out metric) or "fifo" (default)
    grace_steps = 5000                   # no trial is stopped before this many steps (default: steps_per_report)
    reduction_factor = 2                 # ASHA keeps the best 1/reduction_factor at each rung

A value is fixed, or a table naming one distribution:

| table | variants get | rules |
|---|---|---|
| ``{ choice = [a, b, ...] }`` | one value drawn per sample | at least one value |
| ``{ grid = [a, b, ...] }`` | every value, each with every sample | at least one value |
| ``{ uniform = [lo, hi] }`` | uniform on [lo, hi] | finite numbers, lo < hi; not for integer arguments |
| ``{ loguniform = [lo, hi] }`` | log-uniform on [lo, hi] | 0 < lo < hi; not for integer arguments |
| ``{ randint = [lo, hi] }`` | an integer in [lo, hi], both included | integers, lo <= hi |

The variants (:meth:`SweepSpec.variants`): ``num_samples`` draws of the random distributions (from
``default_rng([sample_seed, k])``, so a resumed sweep gets the same), each with every combination of the grid
values; every variant runs once per seed, so seeds are compared on equal settings: ``n_trials = num_samples x
(grid combinations) x len(seeds)``. The Tune ``param_space`` is a grid over the seeds and the variants.

Metrics (every trial reports all of them after each segment; the held-out episodes of :mod:`facetwin.agents.rl_eval`):
``final_error_mm`` (the trained policy's landmark error at the end of the held-out episodes, mm), ``vs_neutral``
(that error over the neutral face's), ``episode_error_mm`` (averaged over the episodes), and with ``[randomize]
eval``: ``randomized_final_error_mm``, ``randomized_vs_neutral`` (on held-out randomized twins).

A file of randomization ranges is found relative to the sweep file, else among the shipped ones
(``randomization_wide.toml``); its ranges are read and checked here and travel with the trials (no worker needs the
file). Every problem is a ``ValueError`` naming the file, the section and the key.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facetwin.agents.rl import ALGO_DEFAULTS, algo_hyperparams
from facetwin.agents.rl_checkpoint import ALGOS
from facetwin.agents.rl_envs import DEFAULT_ENV_ID, check_env_id, check_env_kwargs
from facetwin.agents.rl_eval import DEFAULT_EVAL_SEED

DISTRIBUTIONS = ("choice", "grid", "uniform", "loguniform", "randint")
METRICS = ("final_error_mm", "vs_neutral", "episode_error_mm", "randomized_final_error_mm", "randomized_vs_neutral")
SCHEDULERS = ("fifo", "asha")
NO_RANDOMIZATION, DEFAULT_RANDOMIZATION, TRAIN_RANDOMIZATION = "none", "default", "train"
SECTIONS = ("sweep", "hyperparameters", "env_args", "randomize", "resources", "scheduler")
SWEEP_KEYS = ("name", "env", "algo", "steps", "steps_per_report", "n_envs", "eval_episodes", "eval_seed", "normalize",
              "metric", "mode", "seeds", "num_samples", "sample_seed", "max_concurrent_trials")


@dataclass(frozen=True)
class Dist:
    """One distribution of the search space: ``kind`` in :data:`DISTRIBUTIONS`, its list of values or bounds."""

    kind: str
    values: tuple

    def candidates(self) -> list[Any]:
        """The values to validate: every choice or grid value, both bounds of a range."""
        return list(self.values)

    def draw(self, rng: np.random.Generator) -> Any:
        """One value of a random distribution (not ``grid``) from ``rng``."""
        if self.kind == "choice":
            return self.values[int(rng.integers(len(self.values)))]
        lo, hi = self.values
        if self.kind == "randint":
            return int(rng.integers(lo, hi + 1))
        if self.kind == "uniform":
            return float(rng.uniform(lo, hi))
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))

    def as_json(self) -> dict[str, list]:
        return {self.kind: list(self.values)}


def values_of(value: Any) -> list[Any]:
    """Every value a setting may take (validated one by one)."""
    return value.candidates() if isinstance(value, Dist) else [value]


@dataclass
class SweepSpec:
    """A validated sweep file (see the module docstring for each field's meaning and default)."""

    source: str
    name: str = "sweep"
    env_id: str = DEFAULT_ENV_ID
    algo: Any = "sac"
    steps: int = 15_000
    steps_per_report: int = 15_000
    n_envs: int = 1
    eval_episodes: int = 20
    eval_seed: int = DEFAULT_EVAL_SEED
    normalize: bool = True
    metric: str = "final_error_mm"
    mode: str = "min"
    seeds: list[int] = field(default_factory=lambda: [0])
    num_samples: int = 1
    sample_seed: int = 0
    max_concurrent_trials: int = 0
    hyperparams: dict[str, Any] = field(default_factory=dict)
    env_args: dict[str, Any] = field(default_factory=dict)
    randomize: Any = NO_RANDOMIZATION
    eval_randomize: Any = NO_RANDOMIZATION
    randomize_ranges: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> the file's ranges
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    scheduler: str = "fifo"
    grace_steps: int = 15_000
    reduction_factor: float = 2.0

    def settings(self) -> dict[str, Any]:
        """Every setting of a variant by its path (``algo``, ``randomize``, ``eval_randomize``, ``hp/<name>``,
        ``env_args/<name>``): a fixed value or a :class:`Dist`."""
        out = {"algo": self.algo, "randomize": self.randomize, "eval_randomize": self.eval_randomize}
        out.update({"hp/" + k: v for k, v in self.hyperparams.items()})
        out.update({"env_args/" + k: v for k, v in self.env_args.items()})
        return out

    def searched(self) -> list[str]:
        """The paths of the settings that vary between trials (``seed`` first when there are several)."""
        return ["seed"] * (len(self.seeds) > 1) + [k for k, v in self.settings().items() if isinstance(v, Dist)]

    def variants(self) -> list[dict[str, Any]]:
        """Every variant (a trial's settings but the seed), as a nested dict: ``{"sample": k, "algo": ...,
        "randomize": ..., "eval_randomize": ..., "hp": {...}, "env_args": {...}}`` (see the module docstring)."""
        settings = self.settings()
        grid_keys = [k for k, v in settings.items() if isinstance(v, Dist) and v.kind == "grid"]
        out = []
        for k in range(self.num_samples):
            rng = np.random.default_rng([self.sample_seed, k])
            drawn = {p: v.draw(rng) if isinstance(v, Dist) and v.kind != "grid" else v for p, v in settings.items()}
            for combo in itertools.product(*(settings[g].values for g in grid_keys)):
                flat = {**drawn, **dict(zip(grid_keys, combo))}
                variant: dict[str, Any] = {"sample": k, "hp": {}, "env_args": {}}
                for path, value in flat.items():
                    table, _, name = path.rpartition("/")
                    (variant[table] if table else variant)[name or path] = value
                out.append(variant)
        return out

    def n_trials(self) -> int:
        """How many trials the sweep runs: variants x seeds."""
        return len(self.variants()) * len(self.seeds)

    def param_space(self) -> dict[str, Any]:
        """The Ray Tune ``param_space``: a grid over the seeds and over :meth:`variants`."""
        from ray import tune

        return {"seed": tune.grid_search(list(self.seeds)), "variant": tune.grid_search(self.variants())}

    def as_json(self) -> dict[str, Any]:
        """Everything the sweep depends on, JSON-compatible (a resumed sweep must have the same)."""
        def plain(v: Any) -> Any:
            if isinstance(v, Dist):
                return v.as_json()
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            return v

        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "source"}


# ------------------------------------------------------------------------------------------------ parsing
def _fail(source: str, where: str, message: str) -> ValueError:
    return ValueError(f"{source}: {where}: {message}")


def parse_value(value: Any, source: str, where: str) -> Any:
    """A fixed value, or a :class:`Dist` for a one-key table naming a distribution (``{ grid = [...] }``)."""
    if not (isinstance(value, dict) and len(value) == 1 and next(iter(value)) in DISTRIBUTIONS):
        if isinstance(value, dict) and set(value) & set(DISTRIBUTIONS):
            raise _fail(source, where, f"a distribution is a table with one key of {', '.join(DISTRIBUTIONS)}, "
                                       f"got keys {sorted(value)}")
        return value
    kind, vals = next(iter(value.items()))
    if not isinstance(vals, list) or not vals:
        raise _fail(source, where, f"{kind} needs a non-empty list, got {vals!r}")
    if kind in ("choice", "grid"):
        return Dist(kind, tuple(vals))
    if len(vals) != 2:
        raise _fail(source, where, f"{kind} needs [lo, hi], got {len(vals)} values")
    lo, hi = vals
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise _fail(source, where, f"{kind} bounds must be finite numbers, got {v!r}")
    if kind == "randint":
        if not all(isinstance(v, int) for v in vals) or lo > hi:
            raise _fail(source, where, f"randint needs integers lo <= hi, got [{lo}, {hi}]")
    elif lo >= hi:
        raise _fail(source, where, f"{kind} needs lo < hi, got [{lo}, {hi}]")
    elif kind == "loguniform" and lo <= 0:
        raise _fail(source, where, f"loguniform needs 0 < lo, got {lo}")
    return Dist(kind, (lo, hi))


def _integer(table: dict, key: str, default: int, lo: int, source: str, section: str = "sweep") -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise _fail(source, f"[{section}] {key}", f"must be an integer >= {lo}, got {value!r}")
    return value


def _number(table: dict, key: str, default: float, lo: float, source: str, section: str, strict: bool) -> float:
    value = table.get(key, default)
    bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
    if bad or value < lo or (strict and value == lo):
        raise _fail(source, f"[{section}] {key}", f"must be a number {'>' if strict else '>='} {lo}, got {value!r}")
    return float(value)


def _check_keys(table: Any, known: tuple[str, ...], source: str, section: str) -> dict:
    if not isinstance(table, dict):
        raise _fail(source, f"[{section}]", f"must be a table, got {type(table).__name__}")
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise _fail(source, f"[{section}] {unknown[0]}", f"unknown key; [{section}] takes {', '.join(known)}")
    return table


def _parse_sweep(table: dict, spec: SweepSpec) -> None:
    src = spec.source
    _check_keys(table, SWEEP_KEYS, src, "sweep")
    for key, attr in (("name", "name"), ("env", "env_id")):
        value = table.get(key, getattr(spec, attr))
        if not isinstance(value, str) or not value.strip() or (key == "name" and ("/" in value or value[0] == ".")):
            raise _fail(src, f"[sweep] {key}", f"must be a non-empty string (a name, no '/'), got {value!r}")
        setattr(spec, attr, value)
    try:
        check_env_id(spec.env_id)
    except ValueError as e:
        raise _fail(src, "[sweep] env", str(e).removeprefix("--env: ")) from None
    spec.algo = parse_value(table.get("algo", "sac"), src, "[sweep] algo")
    for algo in values_of(spec.algo):
        if algo not in ALGOS:
            raise _fail(src, "[sweep] algo", f"unknown algorithm {algo!r}; choose from {', '.join(ALGOS)}")
    spec.steps = _integer(table, "steps", spec.steps, 1, src)
    spec.steps_per_report = _integer(table, "steps_per_report", spec.steps, 1, src)
    spec.n_envs = _integer(table, "n_envs", spec.n_envs, 1, src)
    spec.eval_episodes = _integer(table, "eval_episodes", spec.eval_episodes, 1, src)
    spec.eval_seed = _integer(table, "eval_seed", spec.eval_seed, 0, src)
    spec.num_samples = _integer(table, "num_samples", spec.num_samples, 1, src)
    spec.sample_seed = _integer(table, "sample_seed", spec.sample_seed, 0, src)
    spec.max_concurrent_trials = _integer(table, "max_concurrent_trials", spec.max_concurrent_trials, 0, src)
    spec.normalize = table.get("normalize", True)
    if not isinstance(spec.normalize, bool):
        raise _fail(src, "[sweep] normalize", f"must be true or false, got {spec.normalize!r}")
    spec.metric, spec.mode = table.get("metric", spec.metric), table.get("mode", spec.mode)
    if spec.metric not in METRICS:
        raise _fail(src, "[sweep] metric", f"unknown metric {spec.metric!r}; choose from {', '.join(METRICS)}")
    if spec.mode not in ("min", "max"):
        raise _fail(src, "[sweep] mode", f"must be \"min\" or \"max\", got {spec.mode!r}")
    seeds = table.get("seeds", spec.seeds)
    if (not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds)
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds)):
        raise _fail(src, "[sweep] seeds", f"must be a list of distinct integers >= 0, got {seeds!r}")
    spec.seeds = seeds


def _parse_hyperparams(table: dict, spec: SweepSpec) -> None:
    src = spec.source
    _check_keys(table, tuple(table), src, "hyperparameters")
    for key, raw in table.items():
        where = f"[hyperparameters] {key}"
        value = spec.hyperparams[key] = parse_value(raw, src, where)
        for algo in values_of(spec.algo):
            default = ALGO_DEFAULTS[algo].get(key)
            if (isinstance(value, Dist) and value.kind in ("uniform", "loguniform") and isinstance(default, int)
                    and not isinstance(default, bool)):
                raise _fail(src, where, f"an integer hyper-parameter of {algo.upper()}: use randint, choice or "
                                        f"grid, not {value.kind}")
            for candidate in values_of(value):
                try:
                    algo_hyperparams(algo, {key: candidate})
                except ValueError as e:
                    raise _fail(src, where, str(e).removeprefix(f"--hp {key}: ")) from None


def _parse_env_args(table: dict, spec: SweepSpec) -> None:
    src = spec.source
    _check_keys(table, tuple(table), src, "env_args")
    spec.env_args = {k: parse_value(v, src, f"[env_args] {k}") for k, v in table.items()}
    try:
        check_env_kwargs(spec.env_id, spec.env_args)
    except ValueError as e:
        raise ValueError(f"{src}: [env_args] {str(e).removeprefix('--env-arg ')}") from None


def _randomization_file(label: str, source: str) -> Path:
    """A ranges file named in the sweep file: relative to the sweep file, else a shipped one."""
    from facetwin.envs.randomization import default_config_path

    path = Path(label).expanduser()
    if not path.is_absolute():
        here = Path(source).parent / path
        path = here if here.exists() or not (default_config_path().parent / path).exists() \
            else default_config_path().parent / path
    return path


def _parse_randomize(table: dict, spec: SweepSpec) -> None:
    from facetwin.envs.randomization import load_config

    src = spec.source
    _check_keys(table, ("config", "eval"), src, "randomize")
    for key, attr in (("config", "randomize"), ("eval", "eval_randomize")):
        where = f"[randomize] {key}"
        value = parse_value(table.get(key, NO_RANDOMIZATION), src, where)
        if isinstance(value, Dist) and value.kind not in ("choice", "grid"):
            raise _fail(src, where, f"ranges files are chosen with choice or grid, not {value.kind}")
        for label in values_of(value):
            if not isinstance(label, str) or not label:
                raise _fail(src, where, f"must be \"none\", \"default\", a TOML file or a choice of them, "
                                        f"got {label!r}")
            if label == TRAIN_RANDOMIZATION and key == "eval":
                continue
            if label in (NO_RANDOMIZATION,) or label in spec.randomize_ranges:
                continue
            path = None if label == DEFAULT_RANDOMIZATION else _randomization_file(label, src)
            try:
                spec.randomize_ranges[label] = load_config(path).as_dict()
            except (ValueError, FileNotFoundError) as e:
                raise _fail(src, where, str(e)) from None
        setattr(spec, attr, value)
    if spec.metric.startswith("randomized_") and NO_RANDOMIZATION in values_of(spec.eval_randomize):
        raise _fail(src, "[sweep] metric", f"{spec.metric} needs a held-out randomized evaluation in every trial: "
                                           "set [randomize] eval")


def _parse_resources_and_scheduler(resources: dict, scheduler: dict, spec: SweepSpec) -> None:
    src = spec.source
    _check_keys(resources, ("cpus_per_trial", "gpus_per_trial"), src, "resources")
    spec.cpus_per_trial = _number(resources, "cpus_per_trial", spec.n_envs, 0, src, "resources", strict=True)
    spec.gpus_per_trial = _number(resources, "gpus_per_trial", 0, 0, src, "resources", strict=False)
    _check_keys(scheduler, ("type", "grace_steps", "reduction_factor"), src, "scheduler")
    spec.scheduler = scheduler.get("type", "asha" if scheduler else "fifo")
    if spec.scheduler not in SCHEDULERS:
        raise _fail(src, "[scheduler] type",
                    f"unknown scheduler {spec.scheduler!r}; choose from {', '.join(SCHEDULERS)}")
    spec.grace_steps = _integer(scheduler, "grace_steps", spec.steps_per_report, 1, src, "scheduler")
    if spec.grace_steps > spec.steps:
        raise _fail(src, "[scheduler] grace_steps", f"must be <= [sweep] steps ({spec.steps}), got {spec.grace_steps}")
    spec.reduction_factor = _number(scheduler, "reduction_factor", 2, 1, src, "scheduler", strict=True)


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep file (see the module docstring); ``ValueError`` names the section and key at fault,
    ``FileNotFoundError`` a missing file."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"sweep config {p} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"{p}: a folder, not a sweep TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{p}: not valid TOML: {e}") from None
    spec = SweepSpec(source=str(p))
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise _fail(str(p), f"[{unknown[0]}]", f"unknown section; a sweep file has {', '.join(SECTIONS)}")
    if "sweep" not in data:
        raise _fail(str(p), "[sweep]", "missing (it names at least the steps of each trial)")
    _parse_sweep(_check_keys(data["sweep"], SWEEP_KEYS, str(p), "sweep"), spec)
    _parse_hyperparams(data.get("hyperparameters", {}), spec)
    _parse_env_args(data.get("env_args", {}), spec)
    _parse_randomize(data.get("randomize", {}), spec)
    _parse_resources_and_scheduler(data.get("resources", {}), data.get("scheduler", {}), spec)
    return spec


def spec_difference(saved: dict[str, Any], now: dict[str, Any]) -> str | None:
    """The first setting in which two :meth:`SweepSpec.as_json` differ (``None``: the same sweep)."""
    for key in sorted(set(saved) | set(now)):
        if json.dumps(saved.get(key), sort_keys=True) != json.dumps(now.get(key), sort_keys=True):
            return f"{key}: {saved.get(key)!r} then, {now.get(key)!r} now"
    return None


__all__ = ["DISTRIBUTIONS", "Dist", "METRICS", "SCHEDULERS", "SweepSpec", "load_sweep", "parse_value",
           "spec_difference", "values_of"]
