"""The env benchmark runs end to end on tiny sizes and reports sane numbers (no timing thresholds)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from facetwin.benchmarks import bench_envs

REPO_ROOT = Path(__file__).resolve().parents[1]


def _tiny(**kw) -> bench_envs.BenchConfig:
    return bench_envs.BenchConfig.quick(seconds=0.3, warmup_seconds=0.05, repeats=1, throughput_steps=40, **kw)


@pytest.fixture(scope="module")
def result() -> bench_envs.BenchResult:
    return bench_envs.run_benchmark(_tiny(lipsync=False))


def test_numbers_are_positive_and_finite(result: bench_envs.BenchResult):
    assert [e.name for e in result.envs] == ["MirrorSelfModel"]
    e = result.envs[0]
    assert e.control_steps == 9 and e.n_workers == 2
    for x in (e.raw_steps_per_s, e.env_steps_per_s, e.steps_per_s_1proc, e.steps_per_s_vec, e.vec_speedup,
              e.raw_wall_s, e.env_wall_s):
        assert math.isfinite(x) and x > 0, x
    assert math.isfinite(e.overhead) and e.overhead > -1.0
    assert e.meets_target == (e.overhead <= bench_envs.TARGET_OVERHEAD)
    assert e.env_kwargs["obs_mode"] == "landmarks" and e.env_kwargs["variant"] == "fast"


def test_table_rows(result: bench_envs.BenchResult):
    table = bench_envs.format_table(result)
    lines = table.splitlines()
    assert lines[0] == "| metric | MirrorSelfModel |"
    labels = [line.split("|")[1].strip() for line in lines[2:]]
    assert labels == [label for label, _ in bench_envs.table_rows(result)]
    assert len(labels) == 7 and all(line.count("|") == 3 for line in lines)
    assert lines[-1].split("|")[2].strip() in {"PASS", "FAIL"}
    assert table in bench_envs.format_report(result)


def test_main_quick_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "bench_envs.json"
    bench_envs.main(["--quick", "--seconds", "0.2", "--repeats", "1", "--throughput-steps", "20", "--no-lipsync",
                     "--json", str(out)])
    assert "| metric | MirrorSelfModel |" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["target_overhead"] == bench_envs.TARGET_OVERHEAD
    assert data["envs"][0]["env_steps_per_s"] > 0


@pytest.mark.skipif(not bench_envs.lipsync_available(), reason="facetwin.envs.lip_sync is not there")
def test_lipsync_column():
    res = bench_envs.run_benchmark(_tiny(lipsync=True, n_workers=2))
    assert [e.name for e in res.envs] == ["MirrorSelfModel", "LipSync"]
    assert all(math.isfinite(e.env_steps_per_s) and e.env_steps_per_s > 0 for e in res.envs)
    assert "| metric | MirrorSelfModel | LipSync |" in bench_envs.format_table(res)


def test_runs_as_a_script():
    script = REPO_ROOT / "benchmarks" / "bench_envs.py"
    if not script.exists():
        pytest.skip("not a source checkout")
    proc = subprocess.run([sys.executable, str(script), "--help"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "--quick" in proc.stdout and "--json" in proc.stdout and "--no-lipsync" in proc.stdout
