"""Rendering the mirror: images of the face as the robot sees itself, and landmark pixels that match them.

Two presets:

* ``"obs"``   - observations for learning: 128x128, no shadows, no multisampling, no reflections, the face's coarse
  drawing (the simulated skin itself, not subdivided: :data:`~facetwin.sim.render_surface.DRAWINGS`) and no small
  details (lashes, gums ...: :data:`~facetwin.sim.visuals.DETAIL_GROUP`) (fast).
* ``"video"`` - pictures and videos for people: 640x480, shadows (the key light's, 1024-pixel map), 4x
  multisampling, the face's finest drawing, and a dimmer headlight so the key light models the face (the model's own
  headlight flattens it and saturates the skin).

Images are **mirrored** by default: :meth:`MirrorRenderer.render` flips the camera image left-right, as a mirror
shows it, so the face's own left (+y of the head frame) appears on the image's left, as when you look at yourself in
a mirror. Pass ``mirror=False`` for the raw camera view. :func:`project_landmarks` uses the same convention, so its
pixel coordinates land on the features of the image returned with the same ``mirror`` flag.

Pixel coordinates are ``(u, v)``: ``u`` to the right, ``v`` down, with pixel centres at integers (OpenCV
convention): the pixel ``image[i, j]`` covers ``u in [j - 0.5, j + 0.5]``, ``v in [i - 0.5, i + 0.5]``.

Headless machines render through EGL: when ``mujoco`` picked GLFW on a machine without a display,
:class:`MirrorRenderer` switches MuJoCo's offscreen context to EGL itself (:func:`ensure_offscreen_gl`), whatever was
imported first; ``MUJOCO_GL`` set by the user is respected.

>>> face = FaceModel.load()
>>> with MirrorRenderer(face, "obs") as r:
...     img = r.render()                        # (128, 128, 3) uint8, mirrored
...     uv = project_landmarks(face, "mirror", r.width, r.height)   # (N, 2) pixels in img
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from .model import FaceModel
from .render_surface import DRAWINGS, OBS_GROUP
from .visuals import DETAIL_GROUP


def ensure_offscreen_gl() -> None:
    """Use EGL for offscreen contexts on a Linux machine without a display, whatever was imported first.

    MuJoCo picks its GL backend when ``mujoco`` is first imported (from ``MUJOCO_GL``). Without a display GLFW cannot
    create a context, so when it was picked we swap in the EGL context class (PyOpenGL is told to use EGL first).
    """
    import os
    import sys

    if not sys.platform.startswith("linux") or os.environ.get("DISPLAY"):
        return
    from mujoco.rendering.classic import gl_context

    cls = getattr(gl_context, "GLContext", None)
    if cls is not None and cls.__module__.startswith("mujoco.glfw"):
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
        from mujoco.egl import GLContext as EGLContext

        gl_context.GLContext = EGLContext
        os.environ["MUJOCO_GL"] = "egl"


SITE_TENDON_GROUP = 4  # sites and tendons of the face model live in group 4: never drawn in images


@dataclass(frozen=True)
class RenderPreset:
    """Image size and rendering effects of a preset."""

    width: int
    height: int
    shadows: bool
    offsamples: int  # multisampling of the offscreen buffer (0 = off)
    reflections: bool
    headlight: tuple[float, float] | None = None  # (ambient, diffuse) grey levels; None: the model's headlight
    skin_group: int = 0  # the skin group that draws the face (facetwin.sim.render_surface.DRAWINGS)
    shadowsize: int = 0  # shadow map size (pixels a side) while shadows are on; 0: the model's
    hidden_geom_groups: tuple[int, ...] = ()  # geom groups left out (facetwin.sim.visuals.DETAIL_GROUP)


PRESETS: dict[str, RenderPreset] = {
    "obs": RenderPreset(width=128, height=128, shadows=False, offsamples=0, reflections=False, skin_group=OBS_GROUP,
                        hidden_geom_groups=(DETAIL_GROUP,)),
    "video": RenderPreset(
        width=640, height=480, shadows=True, offsamples=4, reflections=False, headlight=(0.28, 0.2), shadowsize=1024
    ),
}

CAMERAS = ("mirror", "mouth", "three_quarter")  # fixed cameras of the face model (all on the "room" body)


@dataclass(frozen=True)
class CameraPose:
    """A pinhole camera in the head frame: position (m), rotation (columns: camera x right, y up, z backward;
    the camera looks along -z) and vertical field of view (degrees)."""

    pos: np.ndarray  # (3,)
    xmat: np.ndarray  # (3, 3)
    fovy: float

    def intrinsics(self, width: int, height: int) -> np.ndarray:
        """3x3 intrinsic matrix K for an image of ``width`` x ``height`` (square pixels, centred principal point,
        pixel centres at integers)."""
        f = 0.5 * height / np.tan(0.5 * np.radians(self.fovy))
        return np.array([[f, 0.0, 0.5 * (width - 1)], [0.0, f, 0.5 * (height - 1)], [0.0, 0.0, 1.0]])


def camera_id(model: mujoco.MjModel, camera: str | int) -> int:
    """Id of a fixed camera given by name or id (ValueError if it does not exist)."""
    if isinstance(camera, str):
        cid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if cid < 0:
            names = [model.cam(i).name for i in range(model.ncam)]
            raise ValueError(f"unknown camera {camera!r}; the model has {', '.join(names)}")
        return cid
    cid = int(camera)
    if not 0 <= cid < model.ncam:
        raise ValueError(f"camera id {cid} out of range [0, {model.ncam})")
    return cid


def camera_pose(face: FaceModel, camera: str | int = "mirror") -> CameraPose:
    """Current pose of a fixed camera (it moves with the room when the neck turns), from ``data.cam_xpos/xmat``."""
    m, d = face.model, face.data
    cid = camera_id(m, camera)
    if m.cam_sensorsize[cid].any():
        raise ValueError(f"camera {camera!r} is defined by sensor size and focal length; only fovy is supported")
    if m.cam_projection[cid] != 0:
        raise ValueError(f"camera {camera!r} is orthographic; only perspective cameras are supported")
    return CameraPose(
        pos=d.cam_xpos[cid].copy(), xmat=d.cam_xmat[cid].reshape(3, 3).copy(), fovy=float(m.cam_fovy[cid])
    )


def project_points(
    points_m: np.ndarray, pose: CameraPose, width: int, height: int, mirror: bool = True
) -> np.ndarray:
    """(N, 2) pixel coordinates (u right, v down) of (N, 3) head-frame points (metres) seen by ``pose``.

    With ``mirror=True`` the coordinates are those of the horizontally flipped (mirror) image. Points behind the
    camera come out as NaN.
    """
    p = np.asarray(points_m, dtype=float).reshape(-1, 3)
    pc = (p - pose.pos) @ pose.xmat  # camera frame: x right, y up, z backward
    depth = -pc[:, 2]
    k = pose.intrinsics(width, height)
    f, cx, cy = k[0, 0], k[0, 2], k[1, 2]
    uv = np.full((len(p), 2), np.nan)
    ok = depth > 1e-9
    x = pc[ok, 0] / depth[ok]
    y = pc[ok, 1] / depth[ok]
    # flipping the image maps column j to (width - 1 - j); with cx = (width - 1) / 2 that negates the x offset
    uv[ok, 0] = cx - f * x if mirror else cx + f * x
    uv[ok, 1] = cy - f * y
    return uv


def project_landmarks(
    face: FaceModel, camera: str | int = "mirror", width: int = 128, height: int = 128, mirror: bool = True
) -> np.ndarray:
    """(N, 2) pixel coordinates (u right, v down) of ``face.landmarks_mm()`` in the image of ``camera``.

    They match :meth:`MirrorRenderer.render` with the same camera, image size and ``mirror`` flag.
    """
    return project_points(face.landmarks_mm() / 1000.0, camera_pose(face, camera), width, height, mirror)


class MirrorRenderer:
    """Offscreen renderer of a :class:`FaceModel` through its cameras (default: the mirror).

    Owns an OpenGL context: close it with :meth:`close` or use it as a context manager. Sites and tendons
    (group 4) are hidden. The multisampling and shadow map size of the preset are applied while the GL buffers are
    created (``model.vis.quality.offsamples``, ``shadowsize``) and the model's own values are restored right after.
    """

    def __init__(
        self,
        face: FaceModel,
        preset: str = "obs",
        *,
        width: int | None = None,
        height: int | None = None,
        camera: str | int | None = None,
    ):
        self._renderer: mujoco.Renderer | None = None  # set first: close() must work if __init__ fails below
        if preset not in PRESETS:
            raise ValueError(f"unknown render preset {preset!r}; choose one of {sorted(PRESETS)}")
        p = PRESETS[preset]
        self.face = face
        self.preset = preset
        self.width = int(p.width if width is None else width)
        self.height = int(p.height if height is None else height)
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")
        self.camera: str | int = "mirror" if camera is None else camera
        camera_id(face.model, self.camera)  # fail early on a bad name

        ensure_offscreen_gl()
        vis = face.model.vis
        saved = (vis.quality.offsamples, vis.global_.offwidth, vis.global_.offheight, vis.quality.shadowsize)
        try:
            vis.quality.offsamples = p.offsamples
            vis.global_.offwidth = max(saved[1], self.width)
            vis.global_.offheight = max(saved[2], self.height)
            vis.quality.shadowsize = p.shadowsize or saved[3]
            self._renderer = mujoco.Renderer(face.model, self.height, self.width)
        finally:
            vis.quality.offsamples, vis.global_.offwidth, vis.global_.offheight, vis.quality.shadowsize = saved

        flags = self._renderer.scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = p.shadows
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = p.reflections
        self._headlight = p.headlight
        self._option = mujoco.MjvOption()
        self._option.sitegroup[SITE_TENDON_GROUP] = 0
        self._option.tendongroup[SITE_TENDON_GROUP] = 0
        for _, group, _ in DRAWINGS:  # one drawing of the face: the preset's
            self._option.skingroup[group] = group == p.skin_group
        for group in p.hidden_geom_groups:
            self._option.geomgroup[group] = 0

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Free the GL context (idempotent)."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __enter__(self) -> "MirrorRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the GL library may already be gone
            pass

    # ------------------------------------------------------------------ rendering
    def render(self, camera: str | int | None = None, *, mirror: bool = True) -> np.ndarray:
        """(height, width, 3) uint8 image of the face's current state through ``camera`` (default: the renderer's).

        ``mirror=True`` (default) flips it left-right as a mirror shows it; ``mirror=False`` gives the raw camera
        image (the face's left on the image's right).
        """
        if self._renderer is None:
            raise RuntimeError("MirrorRenderer.render called after close()")
        cam = self.camera if camera is None else camera
        self._renderer.update_scene(self.face.data, camera_id(self.face.model, cam), scene_option=self._option)
        if self._headlight is not None:  # lights are copied into the scene: tune them there, not in the model
            scene = self._renderer.scene
            for light in scene.lights[: scene.nlight]:
                if light.headlight:
                    light.ambient[:] = self._headlight[0]
                    light.diffuse[:] = self._headlight[1]
        img = self._renderer.render()
        return np.ascontiguousarray(img[:, ::-1]) if mirror else img

    def project_landmarks(self, camera: str | int | None = None, *, mirror: bool = True) -> np.ndarray:
        """:func:`project_landmarks` for this renderer's image size and (default) camera."""
        cam = self.camera if camera is None else camera
        return project_landmarks(self.face, cam, self.width, self.height, mirror)


def draw_points(
    image: np.ndarray,
    uv: np.ndarray,
    radius: float = 2.0,
    color: tuple[int, int, int] = (40, 255, 90),
    outline: tuple[int, int, int] | None = (0, 0, 0),
) -> np.ndarray:
    """Copy of ``image`` (H, W, 3 uint8) with a filled dot at each (u, v) pixel; NaN points are skipped."""
    out = np.array(image, dtype=np.uint8, copy=True)
    h, w = out.shape[:2]
    r_out = radius + (1.0 if outline is not None else 0.0)
    span = int(np.ceil(r_out))
    dy, dx = np.mgrid[-span : span + 1, -span : span + 1]
    for u, v in np.asarray(uv, dtype=float).reshape(-1, 2):
        if not (np.isfinite(u) and np.isfinite(v)):
            continue
        cu, cv = int(round(u)), int(round(v))
        ys, xs = cv + dy, cu + dx
        dist = np.hypot(xs - u, ys - v)
        inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        if outline is not None:
            ring = inside & (dist <= r_out)
            out[ys[ring], xs[ring]] = outline
        dot = inside & (dist <= radius)
        out[ys[dot], xs[dot]] = color
    return out
