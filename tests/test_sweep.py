"""``facetwin sweep`` on Ray Tune: the search-space file refuses every bad key and range with its name, the variants
are seeds x samples x grid values, and a sweep killed after its first trial finished resumes without rerunning that
trial (issue 15's bar: a local Ray runtime, 2 trials, kill, resume, both results, the best policy exported)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from facetwin.agents.sweep_space import load_sweep

VALID = """
[sweep]
name = "t"
steps = 300
steps_per_report = 150
seeds = [0, 1]
"""


def _spec(tmp_path: Path, text: str):
    path = tmp_path / "sweep.toml"
    path.write_text(text, encoding="utf-8")
    return load_sweep(path)


# ---------------------------------------------------------------------------------------------------- the file
BAD = [
    ("[sweeep]\nsteps = 1", "[sweeep]"),
    ("[sweep]\nstepz = 100", "[sweep] stepz"),
    ("[sweep]\nsteps = 0", "[sweep] steps"),
    ("[sweep]\nsteps = 10.5", "[sweep] steps"),
    ("[sweep]\nsteps = 100\nseeds = []", "[sweep] seeds"),
    ("[sweep]\nsteps = 100\nseeds = [1, 1]", "[sweep] seeds"),
    ("[sweep]\nsteps = 100\nmetric = \"accuracy\"", "[sweep] metric"),
    ("[sweep]\nsteps = 100\nmode = \"best\"", "[sweep] mode"),
    ("[sweep]\nsteps = 100\nalgo = \"dqn\"", "[sweep] algo"),
    ("[sweep]\nsteps = 100\nalgo = { choice = [\"sac\", \"a2c\"] }", "[sweep] algo"),
    ("[sweep]\nsteps = 100\nenv = \"facetwin/Nope-v0\"", "[sweep] env"),
    ("[sweep]\nsteps = 100\nmetric = \"randomized_vs_neutral\"", "[sweep] metric"),
    ("[sweep]\nsteps = 100\n[hyperparameters]\nlearning_rate = { loguniform = [0, 1e-3] }",
     "[hyperparameters] learning_rate"),
    ("[sweep]\nsteps = 100\n[hyperparameters]\nlearning_rate = { uniform = [1e-3, 1e-4] }",
     "[hyperparameters] learning_rate"),
    ("[sweep]\nsteps = 100\n[hyperparameters]\nlearning_rate = { choice = [] }", "[hyperparameters] learning_rate"),
    ("[sweep]\nsteps = 100\n[hyperparameters]\nlearning_rate = { choice = [1e-3], grid = [1e-4] }",
     "[hyperparameters] learning_rate"),
    ("[sweep]\nsteps = 100\n[hyperparameters]\nlearning_rate = { choice = [1e-3, \"fast\"] }",
     "[hyperparameters] learning_rate"),
    ("[sweep]\nsteps = 100\n[hyperparameters]\nbatch_size = { uniform = [32, 256] }", "[hyperparameters] batch_size"),
    ("[sweep]\nsteps = 100\n[hyperparameters]\nbatch_size = { randint = [64.5, 128] }", "[hyperparameters] batch_size"),
    ("[sweep]\nsteps = 100\n[hyperparameters]\nnot_a_knob = 3", "[hyperparameters] not_a_knob"),
    ("[sweep]\nsteps = 100\n[env_args]\nbogus = 1", "[env_args] bogus"),
    ("[sweep]\nsteps = 100\n[randomize]\nconfig = \"missing.toml\"", "[randomize] config"),
    ("[sweep]\nsteps = 100\n[randomize]\nconfig = { uniform = [0, 1] }", "[randomize] config"),
    ("[sweep]\nsteps = 100\n[randomize]\nscale = 2", "[randomize] scale"),
    ("[sweep]\nsteps = 100\n[resources]\ncpus_per_trial = 0", "[resources] cpus_per_trial"),
    ("[sweep]\nsteps = 100\n[resources]\ngpus_per_trial = -1", "[resources] gpus_per_trial"),
    ("[sweep]\nsteps = 100\n[scheduler]\ntype = \"hyperband\"", "[scheduler] type"),
    ("[sweep]\nsteps = 100\n[scheduler]\ngrace_steps = 200", "[scheduler] grace_steps"),
    ("[sweep]\nsteps = 100\n[scheduler]\nreduction_factor = 1", "[scheduler] reduction_factor"),
    ("[hyperparameters]\nlearning_rate = 1e-3", "[sweep]"),
    ("[sweep\nsteps = 1", "not valid TOML"),
]


@pytest.mark.parametrize("text, named", BAD, ids=[b[1] + f"-{i}" for i, b in enumerate(BAD)])
def test_a_bad_sweep_file_is_refused_naming_the_key(tmp_path, text, named):
    with pytest.raises(ValueError) as e:
        _spec(tmp_path, text)
    message = str(e.value)
    assert named in message and str(tmp_path / "sweep.toml") in message
    assert "\n" not in message


def test_a_missing_sweep_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        load_sweep(tmp_path / "nope.toml")


def test_variants_are_samples_times_grid_values_and_every_variant_runs_with_every_seed(tmp_path):
    spec = _spec(tmp_path, VALID + """num_samples = 3
sample_seed = 7
[hyperparameters]
learning_rate = { loguniform = [1e-4, 1e-3] }
batch_size = { grid = [64, 128] }
learning_starts = { randint = [10, 12] }
gamma = 0.6
[env_args]
max_episode_steps = { choice = [8, 10] }
""")
    variants = spec.variants()
    assert len(variants) == 3 * 2 and spec.n_trials() == 3 * 2 * 2
    assert spec.searched() == ["seed", "hp/learning_rate", "hp/batch_size", "hp/learning_starts",
                               "env_args/max_episode_steps"]
    for k in range(3):  # each sample's random draws are shared by its grid values
        same = [v for v in variants if v["sample"] == k]
        assert [v["hp"]["batch_size"] for v in same] == [64, 128]
        assert len({v["hp"]["learning_rate"] for v in same}) == 1
    lrs = np.array([v["hp"]["learning_rate"] for v in variants])
    assert np.all((lrs >= 1e-4) & (lrs <= 1e-3)) and len(set(lrs.tolist())) == 3
    assert {v["hp"]["learning_starts"] for v in variants} <= {10, 11, 12}
    assert all(v["hp"]["gamma"] == 0.6 and v["env_args"]["max_episode_steps"] in (8, 10) for v in variants)
    assert _spec(tmp_path, (tmp_path / "sweep.toml").read_text()).variants() == variants  # same file, same draws
    space = spec.param_space()
    assert space["seed"] == {"grid_search": [0, 1]} and space["variant"] == {"grid_search": variants}


def test_randomization_files_are_read_once_and_travel_with_the_trials(tmp_path):
    (tmp_path / "mine.toml").write_text("skin_stiffness = { uniform = [0.9, 1.1] }\n", encoding="utf-8")
    spec = _spec(tmp_path, VALID + """metric = "randomized_final_error_mm"
[randomize]
config = { grid = ["none", "default", "mine.toml", "randomization_wide.toml"] }
eval = "default"
""")
    assert set(spec.randomize_ranges) == {"default", "mine.toml", "randomization_wide.toml"}
    assert spec.randomize_ranges["mine.toml"] == {"skin_stiffness": {"uniform": [0.9, 1.1]}}
    assert [v["randomize"] for v in spec.variants()] == ["none", "default", "mine.toml", "randomization_wide.toml"]


def test_the_example_sweep_is_valid():
    spec = load_sweep(Path(__file__).parents[1] / "assets" / "data" / "sweep_example.toml")
    assert spec.n_trials() == 4 and spec.scheduler == "asha" and spec.cpus_per_trial == 1


# ---------------------------------------------------------------------------------------------------- the CLI
def test_without_the_scale_extra_the_command_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    from facetwin.cli import main

    (tmp_path / "s.toml").write_text(VALID, encoding="utf-8")
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if the extra were missing
    assert main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'pip install -e ".[scale]"' in err[0]


def test_bad_sweep_arguments_exit_2_with_one_line(tmp_path, capsys):
    from facetwin.cli import main

    (tmp_path / "s.toml").write_text(VALID, encoding="utf-8")
    for argv, named in (
        (["sweep", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o")], "missing.toml"),
        (["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o"), "--resume"], "--resume"),
        (["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o"), "--num-cpus", "999"], "--num-cpus"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and named in err[0], err


# ---------------------------------------------------------------------------------------------------- kill + resume
TINY = """
[sweep]
name = "kill"
steps = 450
steps_per_report = 150
eval_episodes = 4
seeds = [0, 1]
max_concurrent_trials = 1

[hyperparameters]
learning_starts = 50
buffer_size = 2000
batch_size = 32
policy_kwargs = { net_arch = [32, 32] }

[env_args]
target_pool_size = 4
target_settle_s = 0.5

[resources]
cpus_per_trial = 1
"""


def _states(experiment: Path) -> dict[str, dict]:
    """Each trial's latest reported state (``trial.json`` of its newest checkpoint), by trial folder."""
    out = {}
    for trial in sorted(experiment.glob("trial_*")):
        ckpts = sorted(trial.glob("checkpoint_*/trial.json"))
        if ckpts:
            try:
                out[trial.name] = {**json.loads(ckpts[-1].read_text()), "checkpoints": [p.parent.name for p in ckpts]}
            except json.JSONDecodeError:  # being written
                pass
    return out


def _marked_processes(marker: str) -> list[int]:
    """Processes whose environment holds ``marker`` (the sweep's and Ray's, started for this test)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if marker.encode() in (proc / "environ").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


def _end_processes(marker: str, wait_s: float = 15.0) -> list[int]:
    """Wait for the marked processes to end; SIGKILL those left (by pid); returns the ones that had to be killed."""
    deadline = time.monotonic() + wait_s
    while _marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.25)
    left = _marked_processes(marker)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return left


@pytest.fixture
def ray_env(tmp_path):
    """The environment of the sweep's process: Ray's temporary folders under this test's (a short path when the
    test's is too long for Ray's sockets), and a marker to find every process it starts."""
    short = tmp_path if len(str(tmp_path)) < 40 else Path(tempfile.mkdtemp(prefix="ftray-", dir="/tmp"))
    marker = f"FACETWIN_SWEEP_TEST={short}"
    env = {**os.environ, "TMPDIR": str(short), "RAY_TMPDIR": str(short), "FACETWIN_SWEEP_TEST": str(short),
           "TUNE_GLOBAL_CHECKPOINT_S": "1"}
    yield env, marker
    left = _end_processes(marker, wait_s=5)
    if short != tmp_path:
        import shutil

        shutil.rmtree(short, ignore_errors=True)
    assert not left, f"Ray processes left running: {left}"


def test_a_killed_sweep_resumes_without_rerunning_its_finished_trial(tmp_path, ray_env):
    env, marker = ray_env
    config, out = tmp_path / "tiny.toml", tmp_path / "out"
    config.write_text(TINY, encoding="utf-8")
    argv = [sys.executable, "-m", "facetwin", "sweep", str(config), "--out", str(out), "--num-cpus", "2"]
    experiment = out / "kill"
    with open(tmp_path / "first.log", "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                cwd=tmp_path)
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and proc.poll() is None:
            states = _states(experiment)
            finished = [t for t, s in states.items() if s["steps"] >= 450]
            if finished and len(states) == 2:  # the first trial is done, the second has reported once
                break
            time.sleep(0.2)
        time.sleep(2.0)  # Tune's state on disk takes in the second trial's checkpoint (every second here)
        assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    _end_processes(marker)
    before = _states(experiment)
    first = next(t for t, s in before.items() if s["steps"] >= 450)
    second = next(t for t in before if t != first)
    assert before[first]["segments"] == 3 and before[first]["starts"] == 1
    assert before[second]["steps"] in (150, 300) and not (out / "results.md").exists()
    first_files = {p: p.stat().st_mtime_ns for p in (experiment / first).glob("checkpoint_*/*")}

    res = subprocess.run(argv + ["--resume", "--quiet"], capture_output=True, text=True, env=env, timeout=150,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    after = _states(experiment)
    assert after[first] == before[first]  # the finished trial was not started again: no new checkpoint, same state
    assert {p: p.stat().st_mtime_ns for p in (experiment / first).glob("checkpoint_*/*")} == first_files
    assert after[second]["steps"] == 450 and after[second]["starts"] == 2  # went on from its checkpoint
    assert [h["steps"] for h in after[second]["history"]] == [150, 300, 450] and after[second]["segments"] == 3
    _check_outputs(out, first, second, after)


def _check_outputs(out: Path, first: str, second: str, states: dict[str, dict]) -> None:
    from facetwin.sim2real.export import load_exported

    table = (out / "results.md").read_text(encoding="utf-8")
    rows = [line for line in table.splitlines() if line.startswith("| ") and "trial" not in line.split("|")[1]]
    assert len(rows) == 2
    for trial, starts in ((first, 1), (second, 2)):
        row = next(r for r in rows if trial.removeprefix("trial_") in r)
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[-1] == "done" and cells[-2] == str(starts) and cells[-4] == "450"
        assert float(cells[-5]) == pytest.approx(states[trial]["metrics"]["final_error_mm"], abs=1e-3)
    assert len((out / "results.csv").read_text().strip().splitlines()) == 3
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = json.loads((out / "best.json").read_text())
    errors = {t.removeprefix("trial_"): s["metrics"]["final_error_mm"] for t, s in states.items()}
    assert best["trial"] == min(errors, key=errors.get) and best["value"] == pytest.approx(min(errors.values()))
    policy = load_exported(out / "best_policy")
    obs = {k: np.zeros(policy.shapes[k], np.float32) for k in policy.keys}
    action = policy(obs)
    assert action.shape == (26,) and np.all(np.isfinite(action))
    assert (out / "best_run" / "model.zip").exists()
