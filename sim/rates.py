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


__all__ = ["AUDIO_SR", "CONTROL_HZ", "as_fraction", "num_frames"]
