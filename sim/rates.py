"""The rates that every part of facetwin shares, each defined once here and imported everywhere else.

| name | value | what runs at it |
|---|---|---|
| :data:`CONTROL_HZ` | 30 Hz | motor commands, landmark frames, lip-sync frames, video frames, the real robot's loop |
| :data:`AUDIO_SR` | 16 kHz | speech features, corpus audio, the lip-sync models' input |

:func:`num_frames` is the frame count of a stretch of audio at a frame rate: ``ceil(n_samples * fps / sr)`` in exact
arithmetic (the features, the corpus, the videos and the lip-sync output agree on it to the frame).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

CONTROL_HZ = 30.0
AUDIO_SR = 16000


def as_fraction(x, name: str) -> Fraction:
    """A positive finite rate as an exact fraction (floats to 1/1000): ``TypeError`` / ``ValueError`` naming it."""
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating, Fraction)):
        raise TypeError(f"{name} must be a number, got {type(x).__name__}")
    if not (math.isfinite(float(x)) and float(x) > 0):
        raise ValueError(f"{name} must be a positive finite number, got {x!r}")
    return Fraction(x).limit_denominator(1000) if not isinstance(x, (int, np.integer)) else Fraction(int(x))


def num_frames(n_samples: int, sr: int = AUDIO_SR, fps: float = CONTROL_HZ) -> int:
    """``ceil(n_samples * fps / sr)``, the number of frames at ``fps`` of ``n_samples`` samples at ``sr``."""
    f = Fraction(int(sr)) / as_fraction(fps, "fps")
    return (int(n_samples) * f.denominator + f.numerator - 1) // f.numerator


def check_audio(audio, sr=None, *, what: str = "audio", channels: bool = False, allow_empty: bool = False
                ) -> np.ndarray:
    """The samples every part of facetwin takes, checked once: ``audio`` as float64, 1-D mono (or ``(samples,
    channels)`` with ``channels=True``), floating point (full scale [-1, 1]), at least one sample, all finite; ``sr``
    (when given) a positive integer rate in Hz; ``allow_empty``: no samples is fine (a stream's empty chunk).
    ``ValueError`` naming ``what`` and the problem otherwise."""
    x = np.asarray(audio)
    if not (x.ndim == 1 or channels and x.ndim == 2 and x.shape[1] > 0):
        want = "1-D mono samples or (samples, channels)" if channels else "1-D mono samples"
        raise ValueError(f"{what} must be {want}, got shape {x.shape} (mix down first; load_audio does)")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{what} must be floating point (full scale [-1, 1]), got dtype {x.dtype}")
    if x.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{what} has no samples")
    x = x.astype(np.float64, copy=False)
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise ValueError(f"{what} has {bad} non-finite samples (NaN or inf)")
    if sr is not None and (isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0):
        raise ValueError(f"sr must be a positive integer rate in Hz, got {sr!r}")
    return x


__all__ = ["AUDIO_SR", "CONTROL_HZ", "as_fraction", "check_audio", "num_frames"]
