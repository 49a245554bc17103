"""Videos of the twin: H.264 + AAC mp4 files whose length, frame count and size match the input, audio that starts
at 0, frames that follow the mouth, a plot strip that shows the face's aperture against the target, atomic writes
and clear errors for bad input."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from facetwin.sim import FaceModel
from facetwin.sim import video as video_mod
from facetwin.sim.expressions import mix_ctrl
from facetwin.sim.playback import lip_columns
from facetwin.sim.render import project_landmarks
from facetwin.sim.video import probe_video, read_audio, render_video
from facetwin.sim.video_plot import FACE_RGB, TARGET_RGB, AperturePlot

torch.set_num_threads(1)

FPS = 30.0
SR = 16000
T = 60  # 2 s
OPEN = range(10, 35)  # frames whose command is "ah" (jaw fully open); the rest is the neutral face
CLOSED_FRAME, OPEN_FRAME = 5, 30
TONE_AT_S = 1.0  # the audio is silent until here, then a tone
ONE_FRAME = 1.0 / FPS


@pytest.fixture(scope="module")
def face() -> FaceModel:
    return FaceModel.load("fast")


@pytest.fixture(scope="module")
def ctrl(face) -> np.ndarray:
    return np.stack([mix_ctrl(face, {"ah": 1.0 if k in OPEN else 0.0}) for k in range(T)])


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    t = np.arange(int(T / FPS * SR)) / SR
    return np.where(t >= TONE_AT_S, 0.4 * np.sin(2 * np.pi * 440.0 * t), 0.0).astype(np.float32)


@pytest.fixture(scope="module")
def target() -> np.ndarray:
    return np.array([15.0 if k in OPEN else 0.0 for k in range(T)])


@pytest.fixture(scope="module")
def mirror_video(face, ctrl, audio, tmp_path_factory):
    out = tmp_path_factory.mktemp("mirror") / "new" / "folder" / "clip.mp4"
    return render_video(ctrl, out, audio=audio, sr=SR, face=face, progress=False)


@pytest.fixture(scope="module")
def plot_video(face, ctrl, audio, target, tmp_path_factory):
    out = tmp_path_factory.mktemp("plot") / "clip.MP4"
    return render_video(ctrl, out, audio=audio, sr=SR, face=face, layout="side_by_side",
                        plot_target_aperture=target, progress=False)


def _frames(result) -> np.ndarray:
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(result.path))
    next(gen)  # metadata
    return np.stack([np.frombuffer(b, np.uint8).reshape(result.height, result.width, 3) for b in gen])


def _box(uv: np.ndarray, pad: int) -> tuple[slice, slice]:
    u0, v0 = np.floor(uv.min(axis=0)).astype(int) - pad
    u1, v1 = np.ceil(uv.max(axis=0)).astype(int) + pad
    return slice(v0, v1), slice(u0, u1)


def _near(img: np.ndarray, rgb, tol: int = 45) -> np.ndarray:
    return (np.abs(img.astype(int) - np.array(rgb)) <= tol).all(axis=-1)


# ---------------------------------------------------------------------------------------------------- the file
def test_mirror_video_streams_and_lengths(mirror_video, audio):
    res = mirror_video
    assert res.path.is_file() and res.path.parent.name == "folder"
    assert sorted(p.name for p in res.path.parent.iterdir()) == ["clip.mp4"]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert res.path.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file mode, not a temp file's 0600
    assert (res.n_frames, res.width, res.height, res.fps, res.has_audio) == (T, 640, 480, FPS, True)
    assert res.duration_s == pytest.approx(T / FPS)
    assert res.render_fps > 0 and len(res.playback) == T and not res.playback.diverged
    info = probe_video(res.path)
    assert info["video_codec"] == "h264" and info["audio_codec"] == "aac"
    assert (info["width"], info["height"], info["fps"], info["n_frames"]) == (640, 480, FPS, T)
    audio_s = len(audio) / SR
    assert abs(info["duration_s"] - audio_s) <= ONE_FRAME
    assert abs(info["audio_duration_s"] - audio_s) <= ONE_FRAME


def test_audio_starts_at_time_zero(mirror_video):
    x, sr = read_audio(mirror_video.path)
    assert sr == SR
    loud = np.flatnonzero(np.abs(x) > 0.05)
    onset_s = loud[0] / sr
    assert abs(onset_s - TONE_AT_S) < 0.005  # no offset between audio and video (AAC priming is removed)
    assert np.abs(x[: int((TONE_AT_S - 0.02) * sr)]).max() < 0.01


def test_mouth_pixels_follow_the_mouth(mirror_video, face):
    pb = mirror_video.playback
    assert pb.aperture_mm[OPEN_FRAME] > 12.0 and abs(pb.aperture_mm[CLOSED_FRAME]) < 3.0  # neutral lips: ~2 mm
    frames = _frames(mirror_video).astype(float)
    assert len(frames) == T
    # the mouth box: the lip landmarks of the open face (the jaw moves the mouth down) and of the neutral face
    face.reset()
    uv = project_landmarks(face, "mirror", 640, 480)[lip_columns()]
    face.reset(mix_ctrl(face, {"ah": 1.0}))
    face.settle(mix_ctrl(face, {"ah": 1.0}), 1.0)
    uv_open = project_landmarks(face, "mirror", 640, 480)[lip_columns()]
    mouth = _box(np.concatenate([uv, uv_open]), pad=4)
    forehead = (slice(40, 120), slice(260, 380))
    diff = np.abs(frames[OPEN_FRAME] - frames[CLOSED_FRAME]).mean(axis=-1)
    assert diff[mouth].mean() > 20.0
    assert diff[forehead].mean() < 2.0
    # frames before the mouth opens are all the same still face
    assert np.abs(frames[CLOSED_FRAME] - frames[CLOSED_FRAME + 2]).mean() < 2.0


# ---------------------------------------------------------------------------------------------------- layouts
def test_side_by_side_with_plot(plot_video, target):
    res = plot_video
    assert res.path.suffix == ".MP4"
    info = probe_video(res.path)
    assert (info["width"], info["height"], info["n_frames"]) == (1120, 480 + 128, T)
    assert (res.width, res.height) == (1120, 608)
    frames = _frames(res)
    closeup = (slice(0, 480), slice(640, 1120))
    diff = np.abs(frames[OPEN_FRAME].astype(float) - frames[CLOSED_FRAME]).mean(axis=-1)
    assert diff[closeup].mean() > 15.0  # the close-up is mostly mouth
    assert (diff[closeup] > 30).mean() > 0.15

    strip = frames[OPEN_FRAME, 480:]
    assert _near(strip, TARGET_RGB).sum() > 200
    assert _near(strip, FACE_RGB).sum() > 200
    assert not _near(frames[OPEN_FRAME, :480], FACE_RGB, tol=25).any()  # the plot colours are the strip's own
    # the face curve ends at the cursor, at the height of the face's aperture in this frame
    plot = AperturePlot(target, FPS, res.width)
    col = strip[:, plot.cursor_x - 3]
    rows = np.flatnonzero(_near(col, FACE_RGB))
    assert len(rows) > 0
    expected = float(plot._row(res.playback.aperture_mm[OPEN_FRAME]))
    assert abs(rows.mean() - expected) < 4.0
    assert _near(strip[plot.y0 : plot.y1, plot.cursor_x], (255, 255, 255), tol=40).mean() > 0.8  # the cursor
    # nothing of the face curve lies right of the cursor (the future is unknown)
    assert _near(strip[:, plot.cursor_x + 4 :], FACE_RGB, tol=30)[plot.y0 + 10 :].sum() == 0


@pytest.mark.parametrize(
    ("layout", "plot", "size"), [("side_by_side", False, (1120, 480)), ("mirror", True, (640, 608))]
)
def test_frame_size_per_layout(face, ctrl, layout, plot, size, tmp_path):
    res = render_video(ctrl[:3], tmp_path / "x.mp4", face=face, layout=layout,
                       plot_target_aperture=np.zeros(3) if plot else None, progress=False)
    info = probe_video(res.path)
    assert (res.width, res.height) == size == (info["width"], info["height"])
    assert (info["n_frames"], info["audio_codec"], res.has_audio) == (3, None, False)


def test_one_frame_more_or_less_than_the_audio_is_accepted(face, ctrl, tmp_path):
    audio = np.full(int(0.1 * SR), 0.1, dtype=np.float32)  # 0.1 s: ceil(0.1 * 30) = 3 frames
    for n in (2, 4):
        res = render_video(ctrl[:n], tmp_path / f"{n}.mp4", audio=audio, sr=SR, face=face, progress=False)
        info = probe_video(res.path)
        assert info["n_frames"] == n and info["audio_codec"] == "aac"
        assert abs(info["audio_duration_s"] - 0.1) <= ONE_FRAME
    for n in (1, 5):
        with pytest.raises(ValueError, match=r"ceil\(duration \* fps\) = 3"):
            render_video(ctrl[:n], tmp_path / "bad.mp4", audio=audio, sr=SR, face=face, progress=False)
    # a rate AAC does not support is resampled to 48 kHz
    odd = np.full(int(0.1 * 12345), 0.1, dtype=np.float32)
    res = render_video(ctrl[:3], tmp_path / "odd.mp4", audio=odd, sr=12345, face=face, progress=False)
    info = probe_video(res.path)
    assert info["audio_sr"] == 48000 and abs(info["audio_duration_s"] - len(odd) / 12345) <= ONE_FRAME


def test_diverged_simulation_holds_the_last_good_frame(face, ctrl, tmp_path, monkeypatch):
    steps = []

    def diverges_at_step_4() -> bool:
        steps.append(1)
        return len(steps) >= 4

    monkeypatch.setattr(face, "is_diverged", diverges_at_step_4)
    res = render_video(ctrl[10:16], tmp_path / "div.mp4", face=face, progress=False)
    assert res.playback.diverged and res.n_frames == 6
    frames = _frames(res).astype(float)
    assert len(frames) == 6
    assert np.abs(frames[0] - frames[2]).mean() > 0.5  # the jaw was moving
    assert all(np.abs(frames[k] - frames[2]).mean() < 0.5 for k in (3, 4, 5))


# ---------------------------------------------------------------------------------------------------- bad input
def test_bad_input_raises_and_writes_nothing(face, ctrl, audio, tmp_path):
    out = tmp_path / "out.mp4"
    nan = ctrl.copy()
    nan[7, 3] = np.nan
    cases = [
        (dict(ctrl=nan), "NaN"),
        (dict(ctrl=ctrl[:, :20]), r"\(T, 26\)"),
        (dict(ctrl=ctrl[:0]), "no frames"),
        (dict(audio=audio[: len(audio) // 2], sr=SR), "needs ceil"),
        (dict(audio=audio), "sr must be"),
        (dict(sr=SR), "sr was given without audio"),
        (dict(audio=np.stack([audio, audio], axis=1), sr=SR), "1-D mono"),
        (dict(audio=(audio * 1000).astype(np.int16), sr=SR), "floating point"),
        (dict(audio=np.where(np.arange(len(audio)) == 9, np.nan, audio).astype(np.float32), sr=SR), "NaN"),
        (dict(out_path=tmp_path / "out.avi"), r"\.mp4"),
        (dict(out_path=tmp_path / "out"), r"\.mp4"),
        (dict(layout="grid"), "unknown layout"),
        (dict(preset="poster"), "unknown render preset"),
        (dict(fps=0.0), "fps must be"),
        (dict(plot_target_aperture=np.zeros(T - 1)), r"shape \(60,\)"),
        (dict(plot_target_aperture=np.full(T, np.nan)), "NaN"),
    ]
    for overrides, match in cases:
        kwargs = dict(ctrl=ctrl, out_path=out, face=face, progress=False) | overrides
        with pytest.raises(ValueError, match=match):
            render_video(kwargs.pop("ctrl"), kwargs.pop("out_path"), **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_failure_while_rendering_keeps_the_old_file(face, ctrl, tmp_path, monkeypatch):
    out = tmp_path / "keep.mp4"
    out.write_bytes(b"old video")
    calls = []

    def broken_render(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("GL context lost")
        return np.zeros((self.height, self.width, 3), np.uint8)

    monkeypatch.setattr(video_mod.MirrorRenderer, "render", broken_render)
    with pytest.raises(RuntimeError, match="GL context lost"):
        render_video(ctrl[:10], out, face=face, progress=False)
    assert out.read_bytes() == b"old video"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.mp4"]


def test_probe_rejects_missing_and_non_video_files(tmp_path):
    with pytest.raises(ValueError, match="no such video file"):
        probe_video(tmp_path / "none.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_text("not a video")
    with pytest.raises(ValueError, match="cannot read it"):
        probe_video(junk)
