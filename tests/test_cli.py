"""The ``facetwin`` command line: export-xml, demo, info, view, --version and the console script."""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import imageio.v2 as imageio
import mujoco
import numpy as np
import pytest

import facetwin
from facetwin.cli import main
from facetwin.sim import actuator_names, load_actuators
from facetwin.sim.demo import VIDEO_FPS
from facetwin.sim.expressions import EXPRESSIONS

DEMO_SECONDS = 1.0
LANDMARK_DOT = (40, 255, 90)  # draw_points' default colour


# ---------------------------------------------------------------------------------------------------- export-xml
def _export(path: Path, *extra: str) -> mujoco.MjModel:
    assert main(["export-xml", "--out", str(path), *extra]) == 0
    assert path.is_file()
    return mujoco.MjModel.from_xml_path(str(path))


def test_export_xml_writes_a_loadable_model(tmp_path, capsys):
    path = tmp_path / "nested" / "dir" / "face.xml"  # missing folders are created
    m = _export(path)
    assert capsys.readouterr().out.strip() == str(path.resolve())
    assert m.nu == 26 and m.nflex == 1
    assert [m.actuator(i).name for i in range(m.nu)] == actuator_names()
    assert {m.cam(i).name for i in range(m.ncam)} >= {"mirror", "mouth", "three_quarter"}
    assert m.opt.timestep == pytest.approx(1.0 / 300.0)
    assert int(m.numeric("substeps").data[0]) == 10
    d = mujoco.MjData(m)
    mujoco.mj_step(m, d, nstep=10)
    assert np.isfinite(d.qpos).all()


def test_export_xml_fast_variant_has_fewer_substeps_and_a_larger_timestep(tmp_path):
    full = _export(tmp_path / "full.xml")
    fast = _export(tmp_path / "fast.xml", "--variant", "fast")
    n_full, n_fast = int(full.numeric("substeps").data[0]), int(fast.numeric("substeps").data[0])
    assert n_fast < n_full and (n_full, n_fast) == (10, 3)
    assert fast.opt.timestep > full.opt.timestep
    assert fast.opt.timestep == pytest.approx(1.0 / 90.0)
    # one control step (1/30 s) is the same time in both
    assert n_fast * fast.opt.timestep == pytest.approx(n_full * full.opt.timestep) == pytest.approx(1.0 / 30.0)
    # same face: same sizes, same actuators
    for attr in ("nq", "nv", "nu", "nbody", "ntendon", "nflexvert", "nsite", "ncam"):
        assert getattr(full, attr) == getattr(fast, attr), attr


def test_export_xml_default_path_and_bad_variant(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["export-xml", "--variant", "fast"]) == 0
    assert (tmp_path / "facetwin_face.xml").is_file()
    assert mujoco.MjModel.from_xml_path(str(tmp_path / "facetwin_face.xml")).nu == 26
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["export-xml", "--variant", "slow"])
    assert exc.value.code == 2
    assert "invalid choice: 'slow'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------- demo
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Run ``facetwin demo`` once (fast variant, 1 s of video, the song): (output folder, stdout, exit code)."""
    out = tmp_path_factory.mktemp("demo") / "out"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["demo", "--out", str(out), "--seconds", str(DEMO_SECONDS), "--variant", "fast"])
    return out, buf.getvalue(), rc


def _png(path: Path) -> np.ndarray:
    img = imageio.imread(path)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, f"{path.name}: {img.shape} {img.dtype}"
    return img


def test_demo_writes_the_expected_files(demo):
    out, stdout, rc = demo
    assert rc == 0
    expected = {f"{name}.png" for name in EXPRESSIONS} | {
        "neutral_landmarks.png",
        "contact_sheet.png",
        "random_expressions.mp4",
        "song.mp4",
    }
    assert {p.name for p in out.iterdir()} == expected
    assert f"wrote {len(expected)} files to {out.resolve()}" in stdout
    for name in expected:
        assert str(out / name) in stdout


def test_demo_song_is_the_twin_singing_with_its_audio(demo):
    """The README's first command also shows the twin singing (issue 14): an mp4 with an audio stream of the song's
    length, the mirror and the mouth side by side, the eyes blinking and the head moving with the song."""
    from facetwin.audio.songs import load_song
    from facetwin.cli.face import DEMO_SONG
    from facetwin.sim.video import probe_video

    out, stdout, _rc = demo
    info = probe_video(out / "song.mp4")
    length = load_song(DEMO_SONG).duration()
    assert info["audio_codec"] is not None and abs(info["audio_duration_s"] - length) < 0.1, info
    assert abs(info["n_frames"] / info["fps"] - length) < 0.1 and info["width"] > info["height"], info
    assert f"the twin sings {DEMO_SONG}" in stdout


def test_demo_expression_pictures(demo):
    out = demo[0]
    neutral = _png(out / "neutral.png").astype(float)
    assert neutral.shape == (480, 640, 3)
    assert neutral.std() > 20
    for name in EXPRESSIONS:
        img = _png(out / f"{name}.png")
        assert img.shape == (480, 640, 3), name
        spread = img.max(axis=(0, 1)).astype(int) - img.min(axis=(0, 1))
        assert img.std() > 20 and (spread > 100).all(), f"{name}.png is uniform"
        if name != "neutral":  # every expression shows in its picture
            diff = np.abs(img.astype(float) - neutral).mean()
            assert diff > 0.2, f"{name}.png is the neutral face (mean difference {diff:.2f})"
    assert np.abs(_png(out / "ah.png").astype(float) - neutral).mean() > 2.0
    assert np.abs(_png(out / "look_left.png").astype(float) - neutral).mean() > 5.0


def test_demo_landmark_overlay_is_the_neutral_picture_with_dots(demo):
    out = demo[0]
    neutral, overlay = _png(out / "neutral.png"), _png(out / "neutral_landmarks.png")
    assert overlay.shape == neutral.shape
    changed = (overlay != neutral).any(axis=2)
    dots = (overlay == LANDMARK_DOT).all(axis=2)
    assert not (neutral == LANDMARK_DOT).all(axis=2).any()
    assert dots.sum() > 300  # ~ 67 landmarks, dots of radius 2
    assert 0 < changed.mean() < 0.05  # nothing but the dots and their outlines changed


def test_demo_contact_sheet(demo):
    out = demo[0]
    sheet = _png(out / "contact_sheet.png")
    n, cols, gap = len(EXPRESSIONS), 3, 4
    rows = -(-n // cols)
    tile_h, tile_w = 480 // 2, 640 // 2  # pictures downscaled by 2
    assert sheet.shape == (rows * tile_h + (rows + 1) * gap, cols * tile_w + (cols + 1) * gap, 3)
    assert sheet.std() > 20
    # the first tile is the (labelled) neutral picture, downscaled
    first = sheet[gap + 40 : gap + tile_h, gap : gap + tile_w].astype(float)
    small = _png(out / "neutral.png").astype(float).reshape(tile_h, 2, tile_w, 2, 3).mean(axis=(1, 3))
    assert np.abs(first - small[40:]).max() <= 1.0
    # white gaps between the tiles
    assert (sheet[:gap] == 255).all() and (sheet[:, :gap] == 255).all()


def test_demo_video_has_30_frames_per_second_and_motion(demo):
    out = demo[0]
    reader = imageio.get_reader(out / "random_expressions.mp4")
    try:
        meta = reader.get_meta_data()
        frames = np.array([f for f in reader], dtype=np.int16)
    finally:
        reader.close()
    assert meta["fps"] == pytest.approx(VIDEO_FPS) == pytest.approx(30)
    assert tuple(meta["size"]) == (640, 480)
    assert abs(len(frames) - round(DEMO_SECONDS * 30)) <= 2, f"{len(frames)} frames for {DEMO_SECONDS} s"
    assert frames.shape[1:] == (480, 640, 3)
    # the video starts from the rest face (the neutral picture, up to compression) ...
    neutral = _png(out / "neutral.png").astype(np.int16)
    assert np.abs(frames[0] - neutral).mean() < 4.0
    # ... and moves: frames differ from the next ones, the last frame is far from the first
    step = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    assert (step[len(step) // 4 :] > 0.2).all(), f"frame-to-frame differences: {np.round(step, 2)}"
    assert np.abs(frames[-1] - frames[0]).mean() > 8.0
    assert np.abs(frames[10] - frames[0]).mean() > 1.0


def test_demo_prints_the_mouth_measures(demo):
    stdout = demo[1]
    rows = {}
    for line in stdout.splitlines():
        m = re.fullmatch(r"\s+(\w+)\s+(-?\d+\.\d\d)\s+(-?\d+\.\d\d)\s+(-?\d+\.\d\d)", line)
        if m:
            rows[m.group(1)] = tuple(float(x) for x in m.groups()[1:])
    assert list(rows) == list(EXPRESSIONS)
    aperture = {k: v[0] for k, v in rows.items()}
    width = {k: v[1] for k, v in rows.items()}
    protrusion = {k: v[2] for k, v in rows.items()}
    assert protrusion["neutral"] == 0.0
    assert 40.0 < width["neutral"] < 60.0
    assert aperture["ah"] >= 15.0  # the model's mouth targets (see sim/expressions.py)
    assert aperture["mm"] <= 1.0
    assert width["ee"] >= 1.15 * width["neutral"]
    assert width["oo"] <= 0.85 * width["neutral"] and protrusion["oo"] >= 1.5


def test_demo_refuses_non_positive_seconds(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["demo", "--out", str(out), "--seconds", "0"]) == 2
    assert "--seconds must be positive" in capsys.readouterr().err
    assert not out.exists()


# ---------------------------------------------------------------------------------------------------- info
_ROW = re.compile(r"^\s+(\d+)\s+(\S+)\s+(\S+)\s+(-?[\d.]+)\s+(.*)$")


@pytest.mark.parametrize("variant, substeps", [("full", 10), ("fast", 3)])
def test_info_lists_the_26_actuators(capsys, variant, substeps):
    assert main(["info", "--variant", variant]) == 0
    out = capsys.readouterr().out
    assert f"facetwin {facetwin.__version__}" in out and f"model variant {variant!r}" in out
    assert "nu=26" in out and f"substeps={substeps}" in out and "control=30 Hz" in out
    rows = [m.groups() for m in map(_ROW.match, out.splitlines()) if m]
    assert len(rows) == 26
    acts = load_actuators()
    assert [int(r[0]) for r in rows] == list(range(26))
    assert [r[1] for r in rows] == actuator_names()
    assert [r[2] for r in rows] == [a.region for a in acts]
    assert [float(r[3]) for r in rows] == [a.rest for a in acts]
    assert all(r[4].strip() for r in rows)  # every actuator is described


# ---------------------------------------------------------------------------------------------------- view
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="display detection is Linux-specific")
def test_view_without_display_exits_2_and_points_to_demo(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["view"]) == 2
    captured = capsys.readouterr()
    assert "no display" in captured.err and "facetwin demo" in captured.err
    assert captured.out == ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="display detection is Linux-specific")
def test_view_with_an_offscreen_gl_backend_exits_2(monkeypatch, capsys):
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setenv("MUJOCO_GL", "egl")
    assert main(["view", "--variant", "fast"]) == 2
    assert "facetwin demo" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------- version
def test_version_in_process(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"facetwin {facetwin.__version__}"
    assert facetwin.__version__ == importlib.metadata.version("facetwin")


def test_python_m_facetwin_prints_the_version(tmp_path):
    # run outside the checkout: there, ./facetwin (the bare package root) would shadow an installed facetwin
    res = subprocess.run(
        [sys.executable, "-m", "facetwin", "--version"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"facetwin {facetwin.__version__}"


def test_console_script_entry_point():
    (ep,) = importlib.metadata.entry_points(group="console_scripts", name="facetwin")
    assert ep.value == "facetwin.cli:main"
    assert ep.load() is main
    script = Path(sysconfig.get_path("scripts")) / ("facetwin.exe" if sys.platform == "win32" else "facetwin")
    assert script.is_file(), f"console script missing: {script}"
    res = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"facetwin {facetwin.__version__}"
    # no subcommand: usage error
    res = subprocess.run([str(script)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "COMMAND" in res.stderr
