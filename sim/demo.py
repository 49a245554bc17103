"""``facetwin demo``: the face's first pictures. The neutral face and every named expression through the mirror
camera (settled), a landmark overlay, a labelled contact sheet, and a short video of random expressions.

>>> run_demo(Path("facetwin_out"), variant="full", seconds=6.0)["mouth"]["ah"]["aperture_mm"]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .rates import CONTROL_HZ

VIDEO_FPS = int(CONTROL_HZ)  # the demo video shows every control step
KEYFRAME_SECONDS = 1.0  # one random expression per second in the demo video
SETTLE_SECONDS = 1.0  # how long each demo expression is held before its picture is taken


# ---------------------------------------------------------------------------------------------------- images
def _label(image: np.ndarray, text: str) -> np.ndarray:
    """``image`` with ``text`` written in its top-left corner (Pillow, which imageio depends on; unlabelled
    without it)."""
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:  # pragma: no cover - imageio requires Pillow
        return image
    im = Image.fromarray(image)
    try:
        font = ImageFont.load_default(size=max(12, image.shape[0] // 14))
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        font = ImageFont.load_default()
    ImageDraw.Draw(im).text((8, 6), text, fill=(255, 255, 255), font=font, stroke_width=2, stroke_fill=(0, 0, 0))
    return np.asarray(im)


def _downscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Box-filter ``image`` down by an integer factor (cropping any remainder)."""
    if factor <= 1:
        return image
    h, w = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    img = image[:h, :w].astype(np.float32)
    img = img.reshape(h // factor, factor, w // factor, factor, 3).mean(axis=(1, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def contact_sheet(
    images: Sequence[np.ndarray], labels: Sequence[str], cols: int = 3, downscale: int = 2, gap: int = 4
) -> np.ndarray:
    """One image tiling ``images`` (same size) in a grid of ``cols`` columns, each labelled."""
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    tiles = [_label(_downscale(im, downscale), lab) for im, lab in zip(images, labels, strict=True)]
    th, tw = tiles[0].shape[:2]
    rows = -(-len(tiles) // cols)
    sheet = np.full((rows * th + (rows + 1) * gap, cols * tw + (cols + 1) * gap, 3), 255, dtype=np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        y, x = gap + r * (th + gap), gap + c * (tw + gap)
        sheet[y : y + th, x : x + tw] = tile
    return sheet


# ---------------------------------------------------------------------------------------------------- demo
def random_keyframes(face, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` random but plausible expressions: a mix of one or two named expressions, a little noise on the
    lips and brows, a shared gaze direction for both eyes and a small head pose. The first is the rest face."""
    from facetwin.sim.expressions import EXPRESSIONS, mix_ctrl

    names = [k for k in EXPRESSIONS if k != "neutral"]
    idx = {name: i for i, name in enumerate(face.actuator_names)}
    region = np.array([a.region for a in face.actuators])
    keys = [face.rest_ctrl.copy()]
    for _ in range(n - 1):
        picks = rng.choice(names, size=int(rng.integers(1, 3)), replace=False)
        u = mix_ctrl(face, {str(p): float(rng.uniform(0.4, 1.0)) for p in picks})
        soft = np.isin(region, ("lips", "brows"))
        u[soft] += rng.normal(0.0, 0.15, soft.sum())
        if not any(p in ("eyes_closed", "look_left") for p in picks):
            yaw, pitch = rng.uniform(-0.7, 0.7), rng.uniform(-0.4, 0.4)
            for side in "RL":
                u[idx[f"eye_yaw_{side}"]] = yaw
                u[idx[f"eye_pitch_{side}"]] = pitch
        if "look_left" not in picks:
            for joint, amp in (("neck_yaw", 0.4), ("neck_pitch", 0.3), ("neck_roll", 0.25)):
                u[idx[joint]] = rng.uniform(-amp, amp)
        keys.append(np.clip(u, -1.0, 1.0))
    return keys


def smooth_controls(keys: Sequence[np.ndarray], frames_per_key: int) -> np.ndarray:
    """(n_frames, nu) controls easing from key to key (smoothstep), holding the last key at the end."""
    out = []
    s = np.arange(frames_per_key) / frames_per_key
    ease = (s * s * (3.0 - 2.0 * s))[:, None]
    for a, b in zip(keys[:-1], keys[1:]):
        out.append(a + ease * (b - a))
    out.append(np.repeat(keys[-1][None], frames_per_key, axis=0))
    return np.concatenate(out)


def run_demo(out_dir: Path, variant: str = "full", seconds: float = 6.0, seed: int = 0) -> dict:
    """Render the demo into ``out_dir``; returns ``{"files": [...], "mouth": {expression: measures}}``."""
    import imageio.v2 as imageio
    from tqdm import tqdm

    from facetwin.sim.expressions import EXPRESSIONS, expression_ctrl
    from facetwin.sim.model import FaceModel
    from facetwin.sim.render import MirrorRenderer, draw_points

    out_dir.mkdir(parents=True, exist_ok=True)
    face = FaceModel.load(variant)
    files: list[Path] = []
    mouth: dict[str, dict[str, float]] = {}
    images: list[np.ndarray] = []
    with MirrorRenderer(face, "video") as renderer:
        for name in tqdm(EXPRESSIONS, desc="expressions", unit="expr", leave=False):
            u = expression_ctrl(face, name)
            face.reset(u)
            face.settle(u, seconds=SETTLE_SECONDS)
            img = renderer.render()
            images.append(img)
            mouth[name] = face.mouth()
            path = out_dir / f"{name}.png"
            imageio.imwrite(path, img)
            files.append(path)
            if name == "neutral":
                annotated = draw_points(img, renderer.project_landmarks(), radius=2.0)
                path = out_dir / "neutral_landmarks.png"
                imageio.imwrite(path, annotated)
                files.append(path)
        path = out_dir / "contact_sheet.png"
        imageio.imwrite(path, contact_sheet(images, list(EXPRESSIONS)))
        files.append(path)

        n_frames = max(1, round(seconds * VIDEO_FPS))
        frames_per_key = round(KEYFRAME_SECONDS * VIDEO_FPS)
        rng = np.random.default_rng(seed)
        keys = random_keyframes(face, n_frames // frames_per_key + 2, rng)
        ctrl = smooth_controls(keys, frames_per_key)[:n_frames]
        face.reset()
        path = out_dir / "random_expressions.mp4"
        writer = imageio.get_writer(
            path, fps=VIDEO_FPS, codec="libx264", quality=8, macro_block_size=16, ffmpeg_log_level="error"
        )
        try:
            for u in tqdm(ctrl, desc="video", unit="frame"):
                face.step(u)
                writer.append_data(renderer.render())
        finally:
            writer.close()
        files.append(path)
    return {"files": files, "mouth": mouth}


__all__ = ["VIDEO_FPS", "contact_sheet", "random_keyframes", "run_demo", "smooth_controls"]
