"""Causal audio features, chunk by chunk (:class:`StreamingFeatures`), with exactly the numbers of
:func:`facetwin.audio.features.extract_features` on the whole signal.

The frame grid, windows and per-frame computation are :class:`facetwin.audio.features.FeatureExtractor`'s (the
module docstring of :mod:`facetwin.audio.features` gives the frame convention and the lookahead); this module only
buffers the incoming audio and emits each frame once the samples its windows reach have arrived.
"""

from __future__ import annotations

import math

import numpy as np

from facetwin.sim.rates import check_audio

from .features import DEFAULT_FPS, DEFAULT_SR, FeatureExtractor, Features, get_extractor

__all__ = ["StreamingFeatures"]


class StreamingFeatures:
    """Causal feature extraction, chunk by chunk, with exactly the offline numbers.

    >>> stream = StreamingFeatures(16000, fps=30)
    >>> for chunk in chunks:                 # any sizes, 1 sample to minutes
    ...     feats = stream.push(chunk)       # the frames that became complete (often none)
    >>> tail = stream.flush()                # the last frames, zero-padded past the end

    Frame ``k`` (time ``t_k = k / fps``) is emitted by the ``push`` that brings the audio received to
    ``c_k + lookahead + 1`` samples, i.e. once audio up to ``t_k + lookahead_s`` has arrived. ``lookahead_s``
    defaults to the minimum, half the longest analysis window (:attr:`FeatureExtractor.lookahead_s`); a longer
    one only delays emission. Concatenating every ``push`` and the ``flush`` equals :func:`extract_features`
    of the whole signal.
    """

    def __init__(self, sr: int = DEFAULT_SR, fps: float = DEFAULT_FPS, lookahead_s: float | None = None,
                 what: tuple[str, ...] = ("logmel", "rms", "pitch"), **options):
        self.extractor = get_extractor(sr, fps, **options)
        ex = self.extractor
        unknown = set(what) - {"logmel", "rms", "pitch"}
        if unknown or not what:
            raise ValueError(f"what must name some of logmel, rms, pitch, got {what!r}")
        self.what = tuple(what)
        # without pitch only the spectral window must be complete
        need = ex.lookahead if "pitch" in self.what else ex.spectral_lookahead
        if lookahead_s is None:
            self.delay = need
        else:
            self.delay = int(math.ceil(float(lookahead_s) * ex.sr - 1e-9))
            if self.delay < need:
                raise ValueError(
                    f"lookahead_s={lookahead_s} is shorter than the {ex.lookahead_s * 1e3:.2f} ms the analysis windows "
                    f"reach past a frame's centre at fps={ex.fps:g}, sr={ex.sr}; use >= {ex.lookahead_s} or None"
                )
        self.sr, self.fps = ex.sr, ex.fps
        self.reset()

    @property
    def lookahead_s(self) -> float:
        return self.delay / self.sr

    def reset(self) -> None:
        """Start a new stream."""
        ex = self.extractor
        self._buf = np.zeros(max(4096, 4 * (ex.pad_left + ex.lookahead + ex.win)))
        self._start = 0  # buf index of the oldest sample still needed
        self._end = ex.pad_left  # buf index one past the newest sample; the pad_left zeros stand for t < 0
        self._b0 = -ex.pad_left  # absolute sample number of buf[0]
        self.n_received = 0
        self.n_emitted = 0
        self._flushed = False

    def _append(self, x: np.ndarray) -> None:
        n = len(x)
        if self._end + n > len(self._buf):
            keep = self._end - self._start
            if keep + n > len(self._buf) // 2:
                new = np.zeros(max(2 * (keep + n), len(self._buf)))
                new[:keep] = self._buf[self._start : self._end]
                self._buf = new
            else:
                self._buf[:keep] = self._buf[self._start : self._end]
            self._b0 += self._start
            self._start, self._end = 0, keep
        self._buf[self._end : self._end + n] = x
        self._end += n

    def _emit(self, k_end: int) -> Features:
        ex = self.extractor
        k0 = self.n_emitted
        if k_end <= k0:
            return _empty_features(ex)
        out = ex.compute(self._buf[: self._end], self._b0, k0, k_end, self.what)
        self.n_emitted = k_end
        oldest = int(ex.centres(k_end)) - ex.pad_left - self._b0  # first sample the next frame sees
        self._start = min(max(self._start, oldest), self._end)
        return out

    def push(self, chunk: np.ndarray) -> Features:
        """Add audio (1-D, at ``sr``); returns the features of the frames that became complete (maybe none)."""
        if self._flushed:
            raise RuntimeError("this stream was flushed; call reset() to start a new one")
        x = np.asarray(chunk)
        if x.ndim == 0:
            x = x.reshape(1)
        x = check_audio(x, allow_empty=True)
        self._append(x)
        self.n_received += len(x)
        return self._emit(self.extractor.frames_through(self.n_received - 1 - self.delay))

    def flush(self) -> Features:
        """End of stream: the remaining frames (``t_k < duration``), with zeros after the last sample."""
        if self._flushed:
            return _empty_features(self.extractor)
        ex = self.extractor
        self._append(np.zeros(ex.lookahead + 1))
        self._flushed = True
        return self._emit(ex.n_frames(self.n_received))


def _empty_features(ex: FeatureExtractor) -> Features:
    return Features(
        np.zeros(0), np.zeros((0, ex.n_mels), np.float32), np.zeros(0, np.float32), np.zeros(0, np.float32),
        np.zeros(0, bool), ex.fps, ex.sr,
    )  # fmt: skip
