"""Videos of the twin speaking or singing: a motor command sequence in, an H.264 + AAC ``.mp4`` out.

:func:`render_video` plays a (T, 26) command sequence on the face with :func:`facetwin.sim.playback.play` (the one
definition of what the face did), renders every control period through :class:`facetwin.sim.render.MirrorRenderer`
and pipes the frames into the ffmpeg binary of ``imageio-ffmpeg`` (libx264, ``yuv420p``), muxing the audio (AAC)
when it is given. :func:`probe_video` reads the streams of an mp4 back (for tests and users).

Frame layouts (sizes for the default ``"video"`` preset, 640x480 mirror view; every size is a multiple of 16 so
ffmpeg never rescales):

| layout           | panels                                                                      | frame size |
|------------------|-----------------------------------------------------------------------------|------------|
| ``mirror``       | the mirror camera as the robot sees itself (mirrored image)                  | 640 x 480  |
| ``side_by_side`` | the mirror view, then a 480x480 mouth close-up (the ``"mouth"`` camera)      | 1120 x 480 |
| + plot strip     | ``plot_target_aperture`` given: a 128 px strip under the panels (full width) | W x 608    |

The close-up uses the model's ``"mouth"`` camera with its vertical field of view widened from 24 to
:data:`CLOSEUP_FOVY` degrees while it renders (and restored right after): the jaw moves the whole mouth down, and the
model's own framing cuts the lower lip off a wide-open mouth.

The plot strip (:class:`facetwin.sim.video_plot.AperturePlot`) draws the face's midline lip aperture against the
target aperture over a scrolling window of a few seconds, the current frame at a cursor.

Sync convention: video frame ``k`` is shown from ``k / fps`` to ``(k + 1) / fps`` and the audio starts at 0 with no
offset. Frame ``k`` is the face at the end of control period ``k`` (the :mod:`facetwin.sim.playback` convention),
i.e. what row ``k`` of ``ctrl`` has produced - the same pairing as the lip targets of ``LipSyncEnv``, whose target
``k`` belongs to the audio time ``t_k = k / fps``. With audio, ``T = len(ctrl)`` must be ``ceil(duration * fps)``
(the feature-frame count of :mod:`facetwin.audio.features`; one frame more or fewer is accepted), so the mp4 lasts
as long as the audio to within a frame (audio and video are written as they are: neither is padded or trimmed).
Audio at a rate AAC does not support is resampled to 48 kHz by ffmpeg.

A diverged simulation (``Playback.diverged``) freezes the video on its last good frame.

Speed: ``python -m facetwin.benchmarks.bench_video`` measures it (frames/s per layout, time per frame in physics,
each render, the plot strip and encoding; the README has the figures). A GPU GL driver or spare cores (ffmpeg
encodes in its own process) make it faster.

>>> face = FaceModel.load("fast")
>>> ctrl = np.stack([mix_ctrl(face, {"ah": a}) for a in np.sin(np.linspace(0, np.pi, 60))])   # 2 s at 30 fps
>>> res = render_video(ctrl, "out/ah.mp4", audio=tone, sr=16000, layout="side_by_side",
...                    plot_target_aperture=target_mm)
>>> res.width, res.height, res.n_frames, res.has_audio                  # (1120, 608, 60, True)
>>> probe_video("out/ah.mp4")["audio_codec"]                            # 'aac'
"""

from __future__ import annotations

import math
import os
import re
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .landmarks import mouth_measures
from .model import FaceModel
from .playback import Playback, play
from .rates import check_audio, num_frames
from .render import PRESETS, MirrorRenderer, camera_id
from .video_plot import PLOT_HEIGHT, AperturePlot

LAYOUTS = ("mirror", "side_by_side")
CLOSEUP_CAMERA = "mouth"
CLOSEUP_FOVY = 34.0  # degrees; the model's "mouth" camera has 24, too tight for a wide-open jaw
MACRO_BLOCK = 16  # frame sizes are kept multiples of this so ffmpeg does not rescale
AAC_RATES = frozenset({7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000})
H264_QUALITY = 6  # imageio-ffmpeg quality 1..10 (6 -> libx264 crf 20)
X264_PRESET = "veryfast"  # x264 speed preset: about 1.5x faster than "fast" at 640x480 (measured)


@dataclass(frozen=True)
class VideoResult:
    """What :func:`render_video` wrote."""

    path: Path
    n_frames: int
    fps: float
    duration_s: float  # n_frames / fps (the video stream)
    width: int
    height: int
    has_audio: bool
    render_fps: float  # frames per wall-clock second of the whole job: simulation, rendering, plot, encoding
    playback: Playback  # what the face did (sim.playback)


# ---------------------------------------------------------------------------------------------------- input checks
def _check_out_path(out_path: str | os.PathLike) -> Path:
    path = Path(out_path)
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"the video must be an .mp4 file, got {str(path)!r}")
    if path.is_dir():
        raise ValueError(f"{path} is a directory; give the path of the .mp4 file to write")
    return path


def _check_ctrl(ctrl, n_actuators: int) -> np.ndarray:
    u = np.asarray(ctrl, dtype=float)
    if u.ndim != 2 or u.shape[1] != n_actuators:
        raise ValueError(f"ctrl must be (T, {n_actuators}), got shape {u.shape}")
    if len(u) == 0:
        raise ValueError("ctrl has no frames")
    if not np.isfinite(u).all():
        bad = np.flatnonzero(~np.isfinite(u).all(axis=1))
        raise ValueError(f"ctrl contains NaN or inf (frames {bad[:5].tolist()}{' ...' if len(bad) > 5 else ''})")
    return u


def _check_audio(audio, sr, n_frames: int, fps: float) -> np.ndarray | None:
    if audio is None:
        if sr is not None:
            raise ValueError("sr was given without audio")
        return None
    x = check_audio(audio)
    if sr is None or isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ValueError(f"sr must be the audio's positive integer sample rate in Hz, got {sr!r}")
    duration = len(x) / int(sr)
    expected = num_frames(len(x), int(sr), fps)  # ceil(n_samples * fps / sr) in exact arithmetic
    if abs(n_frames - expected) > 1:
        raise ValueError(
            f"ctrl has {n_frames} frames but {duration:.3f} s of audio at {fps:g} fps needs ceil(duration * fps) = "
            f"{expected} (+-1)"
        )
    return x


def _check_target(target, n_frames: int) -> np.ndarray | None:
    if target is None:
        return None
    t = np.asarray(target, dtype=float)
    if t.shape != (n_frames,):
        raise ValueError(f"plot_target_aperture must have shape ({n_frames},) like ctrl's frames, got {t.shape}")
    if not np.isfinite(t).all():
        raise ValueError("plot_target_aperture contains NaN or inf")
    return t


@contextmanager
def camera_fovy(face: FaceModel, camera: str, fovy: float) -> Iterator[None]:
    """Temporarily set the vertical field of view of a fixed camera (only the renderer reads it)."""
    cid = camera_id(face.model, camera)
    saved = float(face.model.cam_fovy[cid])
    face.model.cam_fovy[cid] = fovy
    try:
        yield
    finally:
        face.model.cam_fovy[cid] = saved


def _check_options(layout: str, preset: str, fps) -> float:
    """Check the layout, render preset and frame rate; the frame rate as a float."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {LAYOUTS}")
    if preset not in PRESETS:
        raise ValueError(f"unknown render preset {preset!r}; choose one of {sorted(PRESETS)}")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    return float(fps)


def _frame_size(preset: str, layout: str, with_plot: bool) -> tuple[int, int]:
    """(width, height) of the video frames: the panels side by side, the plot strip under them."""
    pw, ph = PRESETS[preset].width, PRESETS[preset].height
    width, height = pw + (ph if layout == "side_by_side" else 0), ph + (PLOT_HEIGHT if with_plot else 0)
    if width % MACRO_BLOCK or height % MACRO_BLOCK:
        raise ValueError(f"preset {preset!r} gives {width}x{height} frames; sizes must be multiples of {MACRO_BLOCK}")
    return width, height


def _audio_params(x: np.ndarray | None, sr: int | None, tmpdir: Path) -> tuple[dict, list[str]]:
    """The encoder's audio arguments and ffmpeg output options; the audio is written to a WAV file in ``tmpdir``."""
    audio_params: dict = {}
    output_params = ["-preset", X264_PRESET, "-movflags", "+faststart"]
    if x is not None:
        import soundfile

        wav = tmpdir / "audio.wav"  # x is checked finite float above: 16-bit PCM for the muxer
        soundfile.write(str(wav), np.clip(x, -1.0, 1.0), int(sr), subtype="PCM_16", format="WAV")
        audio_params = {"audio_path": str(wav), "audio_codec": "aac"}
        if int(sr) not in AAC_RATES:
            output_params += ["-ar", "48000"]
    return audio_params, output_params


class _FrameSender:
    """Composes every video frame (mirror view, close-up, plot strip) and sends it to the H.264 encoder."""

    def __init__(self, face: FaceModel, preset: str, layout: str, plot: AperturePlot | None, size: tuple[int, int],
                 bar) -> None:
        self.face, self.preset, self.layout, self.plot, self.bar = face, preset, layout, plot, bar
        self.pw, self.ph = PRESETS[preset].width, PRESETS[preset].height
        self.frame = np.zeros((size[1], size[0], 3), dtype=np.uint8)
        self.neutral = np.asarray(face.neutral_landmarks_mm, dtype=float)
        self.apertures: list[float] = []
        self.mirror = self.closeup = self.writer = None
        self.sent = 0

    def open(self, tmp: Path, fps: float, audio_params: dict, output_params: list[str]) -> None:
        """Create the renderers and start the encoder writing ``tmp``."""
        import imageio_ffmpeg

        self.mirror = MirrorRenderer(self.face, self.preset, camera="mirror")
        if self.layout == "side_by_side":
            self.closeup = MirrorRenderer(self.face, self.preset, width=self.ph, height=self.ph, camera=CLOSEUP_CAMERA)
        h, w = self.frame.shape[:2]
        self.writer = imageio_ffmpeg.write_frames(
            str(tmp),
            (w, h),
            fps=fps,
            codec="libx264",
            pix_fmt_out="yuv420p",
            quality=H264_QUALITY,
            macro_block_size=MACRO_BLOCK,
            ffmpeg_log_level="error",
            output_params=output_params,
            **audio_params,
        )
        self.writer.send(None)

    def send(self) -> None:
        self.writer.send(self.frame)
        self.sent += 1
        self.bar.update(1)

    def on_frame(self, k: int, f: FaceModel) -> None:
        """Render and send the frame of control period ``k`` (:func:`facetwin.sim.playback.play`'s callback)."""
        ph, pw = self.ph, self.pw
        self.frame[:ph, :pw] = self.mirror.render()
        if self.closeup is not None:
            with camera_fovy(f, CLOSEUP_CAMERA, CLOSEUP_FOVY):
                self.frame[:ph, pw:] = self.closeup.render()
        if self.plot is not None:
            self.apertures.append(float(mouth_measures(f.landmarks_mm(), self.neutral)["aperture_mm"]))
            self.frame[ph:] = self.plot.draw(np.asarray(self.apertures))
        self.send()

    def finish(self, n: int) -> None:
        """Send the last frame again up to ``n`` frames (a diverged face holds it) and close the encoder."""
        while self.sent < n:
            self.send()
        self.writer.close()
        self.writer = None

    def close(self) -> None:
        """Stop the encoder (if still running) and free the renderers."""
        if self.writer is not None:
            self.writer.close()
        for r in (self.mirror, self.closeup):
            if r is not None:
                r.close()


# ---------------------------------------------------------------------------------------------------- rendering
def render_video(
    ctrl,
    out_path: str | os.PathLike,
    *,
    audio=None,
    sr: int | None = None,
    fps: float = 30.0,
    variant: str = "fast",
    face: FaceModel | None = None,
    layout: str = "mirror",
    plot_target_aperture=None,
    preset: str = "video",
    progress: bool = True,
) -> VideoResult:
    """Play ``ctrl`` (T, 26 normalized commands, one row per frame at ``fps``) on the face and write an mp4.

    ``audio``: optional mono float samples in [-1, 1] at ``sr`` Hz, muxed as AAC from time 0; then ``T`` must be
    ``ceil(len(audio) / sr * fps)`` (+-1). ``face``: the model to play (it is reset; default: a new
    ``FaceModel.load(variant)``). ``layout``: one of :data:`LAYOUTS`. ``plot_target_aperture``: (T,) target
    midline aperture in mm; adds the plot strip. ``preset``: the :data:`facetwin.sim.render.PRESETS` of the mirror
    view (the close-up is a square as tall as it). The file is written atomically (a temporary file beside it, then
    renamed); parent folders are created. Raises ``ValueError`` for bad input (checked before anything renders).
    """
    path = _check_out_path(out_path)
    fps = _check_options(layout, preset, fps)
    if face is None:
        face = FaceModel.load(variant)
    u = _check_ctrl(ctrl, face.n_actuators)
    n = len(u)
    x = _check_audio(audio, sr, n, fps)
    target = _check_target(plot_target_aperture, n)
    width, height = _frame_size(preset, layout, target is not None)
    plot = AperturePlot(target, fps, width) if target is not None else None

    from tqdm.auto import tqdm

    path.parent.mkdir(parents=True, exist_ok=True)
    # a fresh name beside the target, created by ffmpeg itself (so with the usual file mode, not mkstemp's 0600)
    tmp = path.parent / f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp.mp4"
    bar = tqdm(total=n, desc="video", unit="frame", disable=not progress)
    frames = _FrameSender(face, preset, layout, plot, (width, height), bar)
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="facetwin_video_") as tmpdir:
            frames.open(tmp, fps, *_audio_params(x, sr, Path(tmpdir)))
            pb = play(face, u, on_frame=frames.on_frame)
            frames.finish(n)
        os.replace(tmp, path)
    finally:
        bar.close()
        frames.close()
        tmp.unlink(missing_ok=True)
    wall = time.perf_counter() - t0
    return VideoResult(path=path, n_frames=n, fps=fps, duration_s=n / fps, width=width, height=height,
                       has_audio=x is not None, render_fps=n / wall, playback=pb)


# ---------------------------------------------------------------------------------------------------- probing
_STREAM_RE = re.compile(r"Stream #\d+:\d+.*?: (Video|Audio): (\w+)(.*)")


def probe_video(path: str | os.PathLike) -> dict:
    """Streams of a video file, read back with the ffmpeg binary of ``imageio-ffmpeg``.

    | key                | meaning                                                                    |
    |--------------------|----------------------------------------------------------------------------|
    | ``video_codec``    | e.g. ``"h264"`` (None without a video stream)                             |
    | ``audio_codec``    | e.g. ``"aac"`` (None without an audio stream)                             |
    | ``width, height``  | frame size in pixels                                                       |
    | ``fps``            | the video stream's frame rate                                              |
    | ``duration_s``     | the container's duration (``Duration:`` of ``ffmpeg -i``, 10 ms steps)     |
    | ``n_frames``       | decoded video frames                                                       |
    | ``audio_sr``       | audio sample rate in Hz (None without audio)                               |
    | ``audio_duration_s`` | decoded audio samples / ``audio_sr`` (None without audio)                |
    """
    import imageio_ffmpeg

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: no such video file")
    exe = imageio_ffmpeg.get_ffmpeg_exe()
    info = subprocess.run([exe, "-hide_banner", "-i", str(p)], capture_output=True, text=True, check=False).stderr
    out: dict = {"video_codec": None, "audio_codec": None, "width": None, "height": None, "fps": None,
                 "duration_s": None, "n_frames": 0, "audio_sr": None, "audio_duration_s": None}
    m = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", info)
    if m is None:
        raise ValueError(f"{p}: ffmpeg cannot read it as a video:\n{info.strip()[-500:]}")
    out["duration_s"] = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
    for kind, codec, rest in _STREAM_RE.findall(info):
        if kind == "Video" and out["video_codec"] is None:
            out["video_codec"] = codec
            size = re.search(r", (\d+)x(\d+)", rest)
            rate = re.search(r", (\d+(?:\.\d+)?) fps", rest)
            out["width"], out["height"] = (int(size[1]), int(size[2])) if size else (None, None)
            out["fps"] = float(rate[1]) if rate else None
        elif kind == "Audio" and out["audio_codec"] is None:
            out["audio_codec"] = codec
            hz = re.search(r", (\d+) Hz", rest)
            out["audio_sr"] = int(hz[1]) if hz else None
    if out["video_codec"] is not None:
        out["n_frames"] = int(imageio_ffmpeg.count_frames_and_secs(str(p))[0])
    if out["audio_codec"] is not None and out["audio_sr"]:
        out["audio_duration_s"] = len(_decode_audio(p)) / out["audio_sr"]
    return out


def _decode_audio(path: Path) -> np.ndarray:
    """The first audio stream of ``path`` decoded by ffmpeg to mono float32 at its own rate."""
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "f32le", "-ac", "1",
           "-"]
    done = subprocess.run(cmd, capture_output=True, check=False)
    if done.returncode != 0:
        raise ValueError(f"{path}: ffmpeg cannot decode its audio: {done.stderr.decode(errors='replace').strip()}")
    return np.frombuffer(done.stdout, dtype=np.float32).copy()


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """The first audio stream of a video file as mono float32 samples and their rate (e.g. to check sync)."""
    info = probe_video(path)
    if info["audio_codec"] is None:
        raise ValueError(f"{path}: no audio stream")
    return _decode_audio(Path(path)), int(info["audio_sr"])


__all__ = [
    "CLOSEUP_CAMERA", "CLOSEUP_FOVY", "LAYOUTS", "VideoResult", "camera_fovy", "probe_video", "read_audio", "render_video",
]
