"""What the mouth must do at every 30 fps frame (a :class:`MouthPlan`), and where plans come from.

A plan holds, per frame, the 40 lip landmarks (displacement from the neutral face, mm) and the probabilities that
the lips must seal (B/P/M), round (W/OO/O) or open (open vowels). It comes from the audio (the audio model's
:class:`~facetwin.agents.audio_to_lips.LipPrediction` is a plan with more fields; :func:`plan_from_prediction`), from a
phone timeline (a transcript aligned to the recording, a song's or TTS's own phones: :func:`plan_from_timeline`,
certain events and the exact lip track), or from both (:func:`merge_plans`: the transcript decides where it has
phones). :class:`facetwin.agents.lipsync.MouthController` turns a plan into motor commands.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facetwin.audio.timeline import Timeline
from facetwin.sim.rates import CONTROL_HZ

FPS = CONTROL_HZ


@dataclass
class MouthPlan:
    """What the mouth must do at every 30 fps frame (see the module docstring)."""

    lips_mm: np.ndarray  # (T, 40, 3)
    closure_p: np.ndarray  # (T,)
    rounded_p: np.ndarray  # (T,)
    open_p: np.ndarray  # (T,)

    def __len__(self) -> int:
        return len(self.closure_p)


def plan_from_prediction(pred) -> MouthPlan:
    """The plan of an :class:`~facetwin.agents.audio_to_lips.LipPrediction`."""
    return MouthPlan(np.asarray(pred.lips_mm, float), np.asarray(pred.closure_p, float),
                     np.asarray(pred.rounded_p, float), np.asarray(pred.open_p, float))


def plan_from_timeline(timeline: Timeline, n_frames: int, fps: float = FPS) -> MouthPlan:
    """The plan of a phone timeline: its lip track (:func:`facetwin.audio.lip_track.lip_track`), certain seals on
    its closure frames, rounding on its rounding frames, opening within 20 ms of its open vowels."""
    from facetwin.agents.metrics import frames_near
    from facetwin.audio.lip_track import lip_track
    from facetwin.audio.phone_sets import lip_class

    track = lip_track(timeline, fps=fps, duration=n_frames / fps)
    T = int(n_frames)
    t = np.arange(T) / fps
    opn = np.zeros(T)
    for p in timeline:
        if lip_class(p.phoneme) == "open":
            opn[frames_near(t, p.start, p.end)] = 1.0
    return MouthPlan(np.asarray(track.landmarks_mm[:T], float), track.closure[:T].astype(float),
                     track.rounded[:T].astype(float), opn)


def merge_plans(audio: MouthPlan, text: MouthPlan) -> MouthPlan:
    """A transcript's plan over the audio's: the transcript decides seals, rounding, opening and the lip shape
    wherever its phones are; in its silences the audio's plan stays."""
    n = min(len(audio), len(text))
    covered = (np.abs(text.lips_mm[:n]).max(axis=(1, 2)) > 1e-6) | (text.closure_p[:n] > 0) | (text.open_p[:n] > 0)
    out = MouthPlan(audio.lips_mm.copy(), audio.closure_p.copy(), audio.rounded_p.copy(), audio.open_p.copy())
    out.lips_mm[:n][covered] = text.lips_mm[:n][covered]
    for k in ("closure_p", "rounded_p", "open_p"):
        getattr(out, k)[:n][covered] = getattr(text, k)[:n][covered]
    return out


__all__ = ["MouthPlan", "merge_plans", "plan_from_prediction", "plan_from_timeline"]
