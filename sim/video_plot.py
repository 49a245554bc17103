"""The plot strip of the videos (:mod:`facetwin.sim.video`): the face's lip aperture against its target, in numpy.

:class:`AperturePlot` draws the face's midline lip aperture (mm, :func:`facetwin.sim.landmarks.mouth_measures`, the
``Playback.aperture_mm`` of the same frame) against the target aperture over a scrolling window of
:data:`PLOT_WINDOW_S` seconds: a white cursor marks the current frame at 3/4 of the width, the target is drawn over
the whole window (past and the coming second), the face's curve up to the cursor. Horizontal grid lines every 5 mm
(10 mm for tall ranges, the 0 mm "sealed" line brighter), vertical ticks every second, labels in a built-in 3x5
bitmap font (:func:`draw_text`). Everything is drawn with numpy (no matplotlib).

| element         | colour (RGB)                        |
|-----------------|-------------------------------------|
| face aperture   | :data:`FACE_RGB` (60, 220, 120)     |
| target aperture | :data:`TARGET_RGB` (255, 150, 30)   |
| cursor          | :data:`CURSOR_RGB` (255, 255, 255)  |
"""

from __future__ import annotations

import math

import numpy as np

PLOT_HEIGHT = 128  # px, the plot strip under the panels
PLOT_WINDOW_S = 4.0  # seconds of time across the plot strip
PLOT_CURSOR_AT = 0.75  # the cursor's place across the plot (the rest shows the coming target)
FACE_RGB = (60, 220, 120)
TARGET_RGB = (255, 150, 30)
CURSOR_RGB = (255, 255, 255)


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


__all__ = [
    "CURSOR_RGB", "FACE_RGB", "PLOT_CURSOR_AT", "PLOT_HEIGHT", "PLOT_WINDOW_S", "TARGET_RGB", "AperturePlot",
    "draw_text", "text_size",
]
