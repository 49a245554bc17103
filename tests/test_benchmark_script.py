"""The simulation benchmark script runs end to end on tiny sizes and reports sane numbers (no timing thresholds)."""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import pytest

from facetwin.benchmarks import bench_sim

REPO_ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def _gl_available() -> bool:
    """Whether this process can render offscreen (without poking a display-less GLFW, which can abort)."""
    from facetwin.sim.render import ensure_offscreen_gl

    ensure_offscreen_gl()
    from mujoco.rendering.classic import gl_context

    context = getattr(gl_context, "GLContext", None)
    if context is None or (context.__module__.startswith("mujoco.glfw") and not os.environ.get("DISPLAY")):
        return False
    try:
        renderer = mujoco.Renderer(mujoco.MjModel.from_xml_string("<mujoco/>"), 8, 8)
    except Exception:
        return False
    renderer.close()
    return True


def _tiny_config(render: bool) -> bench_sim.BenchConfig:
    return bench_sim.BenchConfig.quick(
        seconds=0.2,
        warmup_seconds=0.05,
        repeats=1,
        render=render,
        render_frames={"obs": 2, "video": 1},
        render_sizes={"obs": (32, 32), "video": (64, 48)},
    )


def _numbers(tree: Any) -> list[float]:
    """Every int/float leaf of a JSON-like tree (booleans excluded)."""
    if isinstance(tree, dict):
        return [x for v in tree.values() for x in _numbers(v)]
    if isinstance(tree, list | tuple):
        return [x for v in tree for x in _numbers(v)]
    if isinstance(tree, (int, float)) and not isinstance(tree, bool):
        return [float(tree)]
    return []


@pytest.fixture(scope="module")
def result() -> bench_sim.BenchResult:
    return bench_sim.run_benchmark(_tiny_config(render=_gl_available()))


def test_smooth_controls_are_bounded_and_start_at_rest():
    rest = np.linspace(-0.5, 0.5, 26)
    u = bench_sim.smooth_controls(100, rest, seed=3)
    assert u.shape == (100, 26)
    assert np.all(np.abs(u) <= 1.0)
    np.testing.assert_allclose(u[0], rest)
    assert np.abs(np.diff(u, axis=0)).max() < 0.5  # smooth: no jumps between 30 Hz steps


def test_numbers_are_positive_and_finite(result: bench_sim.BenchResult):
    assert [v.variant for v in result.variants] == list(bench_sim.VARIANT_NAMES)
    for v in result.variants:
        assert v.nv > 0 and v.substeps > 0 and v.timestep > 0
        for t in (v.physics, v.control):
            assert t.physics_steps == t.control_steps * v.substeps
            assert not t.diverged
        figures = [
            v.physics.physics_steps_per_s,
            v.physics.real_time_factor,
            v.control.control_steps_per_s,
            v.control.real_time_factor,
            v.control_overhead,
            *(r.fps for r in v.render.values()),
        ]
        assert all(math.isfinite(x) and x > 0 for x in figures), figures
        assert v.meets_target == (v.physics.real_time_factor >= bench_sim.TARGET_RTF[v.variant])
    numbers = _numbers(bench_sim.to_json(result)["variants"])
    assert numbers and all(math.isfinite(x) and x > 0 for x in numbers)


def test_table_has_expected_rows(result: bench_sim.BenchResult):
    table = bench_sim.format_table(result)
    lines = table.splitlines()
    assert lines[0] == "| metric | full | fast |"
    labels = [line.split("|")[1].strip() for line in lines[2:]]
    expected = [
        "nv (dofs)",
        "timestep (ms) / substeps per 30 Hz step",
        "raw physics steps/s (1 core)",
        "raw physics real-time factor (1 core)",
        "control steps/s (step + landmarks_mm, 30 Hz)",
        "control loop real-time factor (1 core)",
        "control loop overhead vs raw physics",
    ]
    if result.variants[0].render:
        expected += ["mirror render fps, obs 32x32", "mirror render fps, video 64x48"]
    expected.append("target: physics real-time factor on one core (full >= 10x, fast >= 25x)")
    assert labels == expected
    assert all(line.count("|") == 4 for line in lines)
    assert lines[-1].split("|")[2].strip() in {"PASS", "FAIL"}
    report = bench_sim.format_report(result)
    assert table in report and "Targets, physics real time on one core: full >= 10x: " in report


def test_render_rows_present_when_gl_works(result: bench_sim.BenchResult):
    if not _gl_available():
        pytest.skip("no offscreen OpenGL context in this process (MUJOCO_GL)")
    for v in result.variants:
        assert set(v.render) == {"obs", "video"}
        assert (v.render["obs"].width, v.render["obs"].height) == (32, 32)


def test_main_quick_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "bench.json"
    bench_sim.main(["--quick", "--seconds", "0.1", "--repeats", "1", "--variants", "fast", "--no-render", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "| metric | fast |" in printed
    data = json.loads(out.read_text())
    assert data["target_rtf"] == bench_sim.TARGET_RTF
    assert [v["variant"] for v in data["variants"]] == ["fast"]
    assert data["variants"][0]["physics"]["real_time_factor"] > 0


def test_runs_as_a_script():
    script = REPO_ROOT / "benchmarks" / "bench_sim.py"
    if not script.exists():
        pytest.skip("not a source checkout")
    proc = subprocess.run([sys.executable, str(script), "--help"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "--seconds" in proc.stdout and "--quick" in proc.stdout and "--json" in proc.stdout


@pytest.mark.parametrize("project_renderer", [True, False], ids=["facetwin.sim.render", "mujoco.Renderer"])
def test_render_backends(project_renderer: bool, monkeypatch: pytest.MonkeyPatch):
    if not _gl_available():
        pytest.skip("no offscreen OpenGL context in this process (MUJOCO_GL)")
    if not project_renderer:
        monkeypatch.setitem(sys.modules, "facetwin.sim.render", None)  # import fails: the fallback renders
    face = bench_sim.FaceModel.load("fast")
    samples = int(face.model.vis.quality.offsamples)
    for preset in bench_sim.RENDER_PRESETS:
        tiny = bench_sim.RenderPreset(preset.name, 40, 30, preset.shadows, preset.multisampling)
        timing = bench_sim.bench_render(face, tiny, frames=2, repeats=1)
        assert math.isfinite(timing.fps) and timing.fps > 0
        assert (timing.width, timing.height) == (40, 30)
        if not project_renderer:
            assert timing.backend == "mujoco.Renderer"
    assert face.model.vis.quality.offsamples == samples  # the model's own multisampling is left as it was
