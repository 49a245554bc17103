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

The plot strip draws the face's midline lip aperture (mm, :func:`facetwin.sim.landmarks.mouth_measures`, the
``Playback.aperture_mm`` of the same frame) against the target aperture over a scrolling window of
:data:`PLOT_WINDOW_S` seconds: a white cursor marks the current frame at 3/4 of the width, the target is drawn over
the whole window (past and the coming second), the face's curve up to the cursor. Horizontal grid lines every 5 mm
(10 mm for tall ranges, the 0 mm "sealed" line brighter), vertical ticks every second, labels in a built-in 3x5
bitmap font. Everything is drawn with numpy (no matplotlib).

| element         | colour (RGB)                        |
|-----------------|-------------------------------------|
| face aperture   | :data:`FACE_RGB` (60, 220, 120)     |
| target aperture | :data:`TARGET_RGB` (255, 150, 30)   |
| cursor          | :data:`CURSOR_RGB` (255, 255, 255)  |

Sync convention: video frame ``k`` is shown from ``k / fps`` to ``(k + 1) / fps`` and the audio starts at 0 with no
offset. Frame ``k`` is the face at the end of control period ``k`` (the :mod:`facetwin.sim.playback` convention),
i.e. what row ``k`` of ``ctrl`` has produced - the same pairing as the lip targets of ``LipSyncEnv``, whose target
``k`` belongs to the audio time ``t_k = k / fps``. With audio, ``T = len(ctrl)`` must be ``ceil(duration * fps)``
(the feature-frame count of :mod:`facetwin.audio.features`; one frame more or fewer is accepted), so the mp4 lasts
as long as the audio to within a frame (audio and video are written as they are: neither is padded or trimmed).
Audio at a rate AAC does not support is resampled to 48 kHz by ffmpeg.

A diverged simulation (``Playback.diverged``) freezes the video on its last good frame.

Speed (``python -m facetwin.benchmarks.bench_video``, pinned to one core, software GL (llvmpipe), 3 s clips,
start-up included): ``mirror`` 42 frames/s (1.4x real time), ``side_by_side`` 25 frames/s (0.83x), with the plot
strip 22 frames/s (0.75x). Per frame: physics 2.2 ms, mirror render 15 ms, close-up render 11 ms (both 4x
multisampled), plot strip 0.6 ms, the rest is H.264 encoding and copying. A GPU GL driver or spare cores (ffmpeg
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

LAYOUTS = ("mirror", "side_by_side")
CLOSEUP_CAMERA = "mouth"
CLOSEUP_FOVY = 34.0  # degrees; the model's "mouth" camera has 24, too tight for a wide-open jaw
PLOT_HEIGHT = 128  # px, the plot strip under the panels
PLOT_WINDOW_S = 4.0  # seconds of time across the plot strip
PLOT_CURSOR_AT = 0.75  # the cursor's place across the plot (the rest shows the coming target)
FACE_RGB = (60, 220, 120)
TARGET_RGB = (255, 150, 30)
CURSOR_RGB = (255, 255, 255)
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


# ---------------------------------------------------------------------------------------------------- bitmap font
_GLYPHS_3X5: dict[str, tuple[str, ...]] = {
    "0": ("111", "101", "101", "101", "111"),
    "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"),
    "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"),
    "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"),
    "7": ("111", "001", "001", "001", "001"),
    "8": ("111", "101", "111", "101", "111"),
    "9": ("111", "101", "111", "001", "111"),
    "-": ("000", "000", "111", "000", "000"),
    ".": ("000", "000", "000", "000", "010"),
    " ": ("000", "000", "000", "000", "000"),
    "A": ("010", "101", "111", "101", "101"),
    "C": ("011", "100", "100", "100", "011"),
    "E": ("111", "100", "110", "100", "111"),
    "F": ("111", "100", "110", "100", "100"),
    "G": ("011", "100", "101", "101", "011"),
    "M": ("101", "111", "111", "101", "101"),
    "P": ("110", "101", "110", "100", "100"),
    "R": ("110", "101", "110", "101", "101"),
    "S": ("011", "100", "010", "001", "110"),
    "T": ("111", "010", "010", "010", "010"),
    "U": ("101", "101", "101", "101", "111"),
}
_GLYPH_MASKS = {c: np.array([[ch == "1" for ch in row] for row in g]) for c, g in _GLYPHS_3X5.items()}
FONT_SCALE = 2  # each font pixel is 2x2 image pixels: glyphs 6x10 px, advancing 8 px


def text_size(text: str, scale: int = FONT_SCALE) -> tuple[int, int]:
    """(width, height) in pixels of ``text`` drawn by :func:`draw_text`."""
    return max(0, 4 * len(text) - 1) * scale, 5 * scale


def draw_text(image: np.ndarray, text: str, x: int, y: int, rgb: tuple[int, int, int], scale: int = FONT_SCALE) -> None:
    """Draw ``text`` (digits, ``- .`` and the capitals of :data:`_GLYPHS_3X5`) in place, top-left corner at (x, y);
    the parts outside the image are clipped."""
    h, w = image.shape[:2]
    for i, ch in enumerate(text):
        mask = _GLYPH_MASKS.get(ch)
        if mask is None:
            raise ValueError(f"draw_text: no glyph for {ch!r}; available: {''.join(sorted(_GLYPH_MASKS))!r}")
        big = np.kron(mask, np.ones((scale, scale), dtype=bool))
        x0 = x + 4 * scale * i
        ys, xs = np.nonzero(big)
        ys, xs = ys + y, xs + x0
        ok = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        image[ys[ok], xs[ok]] = rgb


# ---------------------------------------------------------------------------------------------------- plot strip
class AperturePlot:
    """The scrolling "face aperture vs target" strip, ``width`` x :data:`PLOT_HEIGHT` px, drawn with numpy.

    ``target_mm`` (T,) is the target aperture of every frame; :meth:`draw` takes the face's apertures of frames
    ``0..k`` and returns the strip for frame ``k``.
    """

    LEFT, RIGHT, TOP, BOTTOM = 40, 10, 16, 16  # margins: y labels left, time labels at the bottom, legend on top
    BG = (22, 24, 30)
    GRID = (62, 66, 78)
    ZERO = (120, 124, 138)
    LABEL = (170, 174, 186)

    def __init__(self, target_mm: np.ndarray, fps: float, width: int, height: int = PLOT_HEIGHT):
        self.target = np.asarray(target_mm, dtype=float)
        self.fps = float(fps)
        self.width, self.height = int(width), int(height)
        self.x0, self.x1 = self.LEFT, self.width - self.RIGHT  # plot area columns [x0, x1)
        self.y0, self.y1 = self.TOP, self.height - self.BOTTOM  # plot area rows [y0, y1)
        if self.x1 - self.x0 < 40 or self.y1 - self.y0 < 20:
            raise ValueError(f"the plot strip needs at least {self.LEFT + self.RIGHT + 40} px of width, got {width}")
        self.lo = min(-2.0, math.floor(float(self.target.min())))
        self.hi = max(20.0, math.ceil(float(self.target.max())) + 2.0)
        self.px_per_frame = (self.x1 - self.x0) / (PLOT_WINDOW_S * self.fps)
        self.cursor_x = self.x0 + round(PLOT_CURSOR_AT * (self.x1 - self.x0))
        self.cols = np.arange(self.x0, self.x1)
        self.rows = np.arange(self.y0, self.y1)[:, None]
        self.background = self._background()

    def _row(self, mm: np.ndarray | float) -> np.ndarray:
        """Pixel row (float) of an aperture value, clipped into the plot area."""
        frac = (np.asarray(mm, dtype=float) - self.lo) / (self.hi - self.lo)
        return np.clip(self.y1 - 1 - frac * (self.y1 - 1 - self.y0), self.y0, self.y1 - 1)

    def _background(self) -> np.ndarray:
        img = np.empty((self.height, self.width, 3), dtype=np.uint8)
        img[:] = self.BG
        step = 5 if self.hi - self.lo <= 40 else 10
        for v in range(math.ceil(self.lo / step) * step, int(self.hi) + 1, step):
            r = round(float(self._row(v)))
            img[r, self.x0 : self.x1] = self.ZERO if v == 0 else self.GRID
            label = str(v)
            tw, th = text_size(label)
            draw_text(img, label, self.x0 - 6 - tw, r - th // 2, self.LABEL)
        draw_text(img, "APERTURE MM", self.x0, 3, self.LABEL)
        x = self.x1
        for name, rgb in (("TARGET", TARGET_RGB), ("FACE", FACE_RGB)):
            tw, _ = text_size(name)
            x -= tw
            draw_text(img, name, x, 3, rgb)
            img[7:9, x - 18 : x - 4] = rgb
            x -= 30
        return img

    def _polyline(self, img: np.ndarray, k: int, frame_idx: np.ndarray, values: np.ndarray, rgb, half=1.0) -> None:
        """Draw the curve through (frame, value) samples, the cursor at frame ``k``, over the columns they span."""
        k_of_col = k + (self.cols - self.cursor_x) / self.px_per_frame
        ok = (k_of_col >= frame_idx[0]) & (k_of_col <= frame_idx[-1])
        if not ok.any():
            return
        y = self._row(np.interp(k_of_col, frame_idx, values))
        y_next = np.append(y[1:], y[-1])
        ok_next = np.append(ok[1:], False)
        lo = np.where(ok_next, np.minimum(y, y_next), y) - half
        hi = np.where(ok_next, np.maximum(y, y_next), y) + half
        mask = ok[None, :] & (self.rows >= lo[None, :]) & (self.rows <= hi[None, :])
        rr, cc = np.nonzero(mask)
        img[rr + self.y0, cc + self.x0] = rgb

    def draw(self, face_mm: np.ndarray) -> np.ndarray:
        """The strip for frame ``k = len(face_mm) - 1``, given the face's apertures of frames ``0..k``."""
        k = len(face_mm) - 1
        img = self.background.copy()
        first = max(0.0, k - (self.cursor_x - self.x0) / self.px_per_frame)
        last = k + (self.x1 - self.cursor_x) / self.px_per_frame
        for s in range(math.ceil(first / self.fps), int(last / self.fps) + 1):  # a tick every second
            x = round(self.cursor_x + (s * self.fps - k) * self.px_per_frame)
            if self.x0 <= x < self.x1:
                img[self.y1 : self.y1 + 4, x] = self.LABEL
                label = str(s)
                tw, _ = text_size(label)
                draw_text(img, label, x - tw // 2, self.y1 + 5, self.LABEL)
        n = len(self.target)
        self._polyline(img, k, np.arange(n, dtype=float), self.target, TARGET_RGB)
        face = np.asarray(face_mm, dtype=float)
        if len(face) == 1:  # one sample: a flat stub up to the cursor
            self._polyline(img, k, np.array([k - 1.0, k]), np.repeat(face, 2), FACE_RGB)
        else:
            self._polyline(img, k, np.arange(len(face), dtype=float), face, FACE_RGB)
        img[self.y0 : self.y1, self.cursor_x] = CURSOR_RGB
        return img


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
    import imageio_ffmpeg

    path = _check_out_path(out_path)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {LAYOUTS}")
    if preset not in PRESETS:
        raise ValueError(f"unknown render preset {preset!r}; choose one of {sorted(PRESETS)}")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    fps = float(fps)
    if face is None:
        face = FaceModel.load(variant)
    u = _check_ctrl(ctrl, face.n_actuators)
    n = len(u)
    x = _check_audio(audio, sr, n, fps)
    target = _check_target(plot_target_aperture, n)

    pw, ph = PRESETS[preset].width, PRESETS[preset].height
    panels_w = pw + (ph if layout == "side_by_side" else 0)
    width, height = panels_w, ph + (PLOT_HEIGHT if target is not None else 0)
    if width % MACRO_BLOCK or height % MACRO_BLOCK:
        raise ValueError(f"preset {preset!r} gives {width}x{height} frames; sizes must be multiples of {MACRO_BLOCK}")
    plot = AperturePlot(target, fps, width) if target is not None else None

    from tqdm.auto import tqdm

    path.parent.mkdir(parents=True, exist_ok=True)
    # a fresh name beside the target, created by ffmpeg itself (so with the usual file mode, not mkstemp's 0600)
    tmp = path.parent / f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp.mp4"
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    neutral = np.asarray(face.neutral_landmarks_mm, dtype=float)
    apertures: list[float] = []
    mirror = closeup = writer = None
    bar = tqdm(total=n, desc="video", unit="frame", disable=not progress)
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="facetwin_video_") as tmpdir:
            audio_params: dict = {}
            output_params = ["-preset", X264_PRESET, "-movflags", "+faststart"]
            if x is not None:
                import soundfile

                wav = Path(tmpdir) / "audio.wav"  # x is checked finite float above: 16-bit PCM for the muxer
                soundfile.write(str(wav), np.clip(x, -1.0, 1.0), int(sr), subtype="PCM_16", format="WAV")
                audio_params = {"audio_path": str(wav), "audio_codec": "aac"}
                if int(sr) not in AAC_RATES:
                    output_params += ["-ar", "48000"]
            mirror = MirrorRenderer(face, preset, camera="mirror")
            if layout == "side_by_side":
                closeup = MirrorRenderer(face, preset, width=ph, height=ph, camera=CLOSEUP_CAMERA)
            writer = imageio_ffmpeg.write_frames(
                str(tmp),
                (width, height),
                fps=fps,
                codec="libx264",
                pix_fmt_out="yuv420p",
                quality=H264_QUALITY,
                macro_block_size=MACRO_BLOCK,
                ffmpeg_log_level="error",
                output_params=output_params,
                **audio_params,
            )
            writer.send(None)
            sent = 0

            def send() -> None:
                nonlocal sent
                writer.send(frame)
                sent += 1
                bar.update(1)

            def on_frame(k: int, f: FaceModel) -> None:
                frame[:ph, :pw] = mirror.render()
                if closeup is not None:
                    with camera_fovy(f, CLOSEUP_CAMERA, CLOSEUP_FOVY):
                        frame[:ph, pw:] = closeup.render()
                if plot is not None:
                    apertures.append(float(mouth_measures(f.landmarks_mm(), neutral)["aperture_mm"]))
                    frame[ph:] = plot.draw(np.asarray(apertures))
                send()

            pb = play(face, u, on_frame=on_frame)
            while sent < n:  # diverged: the video holds the last good frame
                send()
            writer.close()
            writer = None
        os.replace(tmp, path)
    finally:
        bar.close()
        if writer is not None:
            writer.close()
        for r in (mirror, closeup):
            if r is not None:
                r.close()
        tmp.unlink(missing_ok=True)
    wall = time.perf_counter() - t0
    return VideoResult(
        path=path,
        n_frames=n,
        fps=fps,
        duration_s=n / fps,
        width=width,
        height=height,
        has_audio=x is not None,
        render_fps=n / wall,
        playback=pb,
    )


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
    "CLOSEUP_CAMERA", "CLOSEUP_FOVY", "FACE_RGB", "LAYOUTS", "TARGET_RGB", "AperturePlot", "VideoResult", "camera_fovy",
    "draw_text", "probe_video", "read_audio", "render_video", "text_size",
]
