"""A smooth, coarticulated lip track from a phone timeline: aperture, width, protrusion and the 40 lip landmarks.

>>> from facetwin.audio.tts import synthesize
>>> from facetwin.audio.lip_track import lip_track
>>> track = lip_track(synthesize("Bob blew bubbles.", "en").timeline, fps=30.0)
>>> track.aperture_mm.shape, track.landmarks_mm.shape          # (T,), (T, 40, 3)

The phones become viseme segments (:func:`facetwin.audio.visemes.viseme_segments`), then:

Coarticulation (Cohen & Massaro 1993)
    Every phone becomes one segment per viseme part (sub-interval of the phone), silence (timeline gaps, ``""``
    phones, the time before the first and after the last phone up to ``duration``) becomes ``sil`` segments; any
    segment longer than ``max_segment_s`` (0.25 s; silence 0.1 s) is tiled into equal pieces so that long vowels
    hold their shape and long pauses relax fully to neutral. Segment s with centre c_s has the dominance

        D_s(t) = a_s * exp(-theta_s * |t - c_s| ** c),   theta_s = theta_before (t < c_s) or theta_after (t >= c_s)

    (c = ``exponent``, default 1, theta in 1/s^c), and each channel (aperture, width, protrusion) is
    ``sum_s D_s(t) T_s / sum_s D_s(t)``. As in Cohen & Massaro, a_s is per channel (the viseme's ``dominance``,
    ``dominance_width``, ``dominance_protrusion`` x the phone's table weight): consonants such as /b t k n/ set the
    opening but barely the width or protrusion, so a vowel's rounding or spreading carries across them. Rounded
    visemes (``oh``, ``ou``) have a small ``theta_before``: rounding is anticipated ~100 ms before a rounded vowel
    or /w/. A frame's ``viseme`` / ``phoneme`` label is the segment with the largest aperture dominance there.

Hard constraints on top of the blend (maxima / minima, never averages)
    * Closure: for every ``PP`` segment (p b m β ..., also the p of pf) every frame whose time lies in the segment,
      and at least the frame nearest its centre (so a 30 ms /b/ between two frames still gets one), is set to
      aperture 0 (exactly closed; ``closure`` flag). Neighbours are capped by a cone
      ``aperture(t) <= closure_rate_mm_s * |t - t_closed|`` (180 mm/s: 6 mm per frame at 30 fps), so the lips
      close and reopen smoothly instead of snapping.
    * Rounding: for every rounded segment (``ou``, ``oh``) the same frames get at least ``rounding_floor`` (0.8)
      of the viseme's width drop and protrusion (``ou``: width <= 0.84 x neutral, protrusion >= 3.6 mm;
      ``rounded`` flag), with cones of 120 mm/s (width) and 60 mm/s (protrusion) around them. This is what makes
      a 40 ms /w/ before a spread /i/ ("we") visibly round.

Lip landmarks of a track (``lip_model="face"``, the default)
    The shape THIS face makes with the frame's aperture, width and protrusion
    (:func:`facetwin.sim.lip_shapes.face_lip_shapes`: the nearest settled shapes of the twin in measure space), so
    every target is one the face can reach; where the face cannot make the measures (a 20 % narrower mouth only 5 mm
    open), the nearest shapes it can make. The channels (``aperture_mm``, ``width_mm``, ``protrusion_mm``) stay what
    the phones ask for; the landmarks' own measures are those of the face's shape.

Geometric lip model (:func:`lip_displacements`, ``lip_model="geometric"``)
    The 40 lip landmarks of the schema (``lips_outer`` then ``lips_inner`` rows of ``assets/data/landmarks.csv``,
    MediaPipe ids in :data:`LipTrack.landmark_ids`) start from the twin's neutral lip contour: the named ring
    vertices of :func:`facetwin.sim.geometry.build_skin` (``ring1_*`` outer, ``ring0_*`` inner), in mm. With
    s in [-1, 1] the point's lateral position (y / corner half-width of its ring: -1 right corner, 0 midline),
    dA = aperture - neutral aperture, dW = width - neutral width, P = protrusion:

    * vertical: inner upper points z += dA/2 * v(s), inner lower z -= dA/2 * v(s), v(s) = sqrt(1 - s^2) (the
      ring's own elliptic profile: full at the midline, zero at the corners); outer points follow with factor
      :data:`OUTER_VERTICAL` (0.85);
    * lateral: y += dW/2 * s for every point (the corners move by exactly +-dW/2, the rest stretch linearly);
    * forward: outer points x += P * q(s), inner points x += :data:`INNER_PROTRUSION` (0.8) * P * q(s), with the
      midline-peaked q(s) = cos(pi s / 2)^2 (1 at the midline, 0 at the corners).

    So :func:`facetwin.sim.landmarks.mouth_measures` of neutral + displacement gives back exactly the requested
    aperture (13-14), width (61-291) and protrusion (0, 17): :func:`measures_from_landmarks`. A shape no soft face
    makes for most visemes (a rounded mouth is not a scaled neutral one): tracks use the face's own shapes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from facetwin.sim.landmarks import lip_landmark_ids, lip_schema, neutral_lip_landmarks_mm

from .timeline import Timeline
from .visemes import MAX_SEGMENT_S, VisemeSegment, VisemeTarget, load_viseme_targets, viseme_segments

# coarticulation / constraint defaults (see the module doc)
HORIZON_S = 1.0  # dominance is evaluated within +-HORIZON_S of a segment centre (beyond: < 1e-4 of its peak)
CLOSURE_RATE_MM_S = 180.0
ROUNDING_FLOOR = 0.8
ROUND_WIDTH_RATE_MM_S = 120.0
ROUND_PROTRUSION_RATE_MM_S = 60.0

# lip model factors
OUTER_VERTICAL = 0.85
INNER_PROTRUSION = 0.8


# ------------------------------------------------------------------------------------------- lip model
@lru_cache(maxsize=1)
def _model_profiles() -> dict[str, np.ndarray]:
    _, refs, regions = lip_schema()
    neutral = neutral_lip_landmarks_mm()
    outer = np.array([r == "lips_outer" for r in regions])
    upper = np.array([re.match(r"ring\d_u", ref) is not None for ref in refs])
    corner = np.array([ref.endswith(("_u0", "_u10", "_l0", "_l10")) for ref in refs])
    y = neutral[:, 1]
    half_w = np.where(outer, np.abs(y[outer]).max(), np.abs(y[~outer]).max())
    s = np.clip(y / half_w, -1.0, 1.0)
    v = np.sqrt(np.clip(1.0 - s**2, 0.0, None))
    v[corner] = 0.0
    q = np.cos(0.5 * np.pi * s) ** 2
    q[corner] = 0.0
    sign = np.where(upper & ~corner, 1.0, -1.0)
    # closing: each inner lip pair closes its own neutral gap (relative to the midline's), so a seal meets everywhere
    gap = np.abs(neutral[:, 2] - _partner_z(neutral, refs))
    mid = gap[[k for k, r in enumerate(refs) if r == "ring0_u5"][0]]
    closing = np.where(outer, v, np.where(corner, 0.0, gap / mid))
    return {
        "vz": sign * v * np.where(outer, OUTER_VERTICAL, 1.0) * 0.5,  # per mm of aperture opening
        "vz_close": sign * closing * np.where(outer, OUTER_VERTICAL, 1.0) * 0.5,  # per mm of aperture closing
        "wy": 0.5 * s,  # per mm of width change
        "px": q * np.where(outer, 1.0, INNER_PROTRUSION),  # per mm of protrusion
    }


def _partner_z(neutral: np.ndarray, refs: tuple[str, ...]) -> np.ndarray:
    """z of each lip point's partner across the slit (ring0_u3 <-> ring0_l3 ...); a corner is its own partner."""
    index = {r: k for k, r in enumerate(refs)}

    def partner(ref: str) -> str:
        ring, pos = ref.split("_")
        return f"{ring}_{'l' if pos[0] == 'u' else 'u'}{pos[1:]}"

    return np.array([neutral[index.get(partner(r), k), 2] for k, r in enumerate(refs)])


def neutral_measures() -> dict[str, float]:
    """Aperture, width (mm) of the neutral lips (protrusion is 0 by definition)."""
    return dict(_neutral_measures())


@lru_cache(maxsize=1)
def _neutral_measures() -> dict[str, float]:
    m = measures_from_landmarks(np.zeros((40, 3)))
    return {k: float(v) for k, v in m.items()}


def lip_displacements(aperture_mm, width_mm, protrusion_mm) -> np.ndarray:
    """(..., 40, 3) lip landmark displacements (mm) from the neutral face for absolute aperture and width and the
    protrusion (see the module doc for the parametric model)."""
    nm = neutral_measures()
    prof = _model_profiles()
    da = np.asarray(aperture_mm, dtype=float) - nm["aperture_mm"]
    dw = np.asarray(width_mm, dtype=float) - nm["width_mm"]
    pr = np.asarray(protrusion_mm, dtype=float)
    shape = np.broadcast(da, dw, pr).shape
    out = np.zeros(shape + (40, 3))
    out[..., 0] = pr[..., None] * prof["px"]
    out[..., 1] = dw[..., None] * prof["wy"]
    out[..., 2] = np.where(da[..., None] >= 0, da[..., None] * prof["vz"], da[..., None] * prof["vz_close"])
    return out


def measures_from_landmarks(displacement_mm: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`facetwin.sim.landmarks.mouth_measures` of the neutral lips + ``displacement_mm`` (..., 40, 3)."""
    from facetwin.sim.landmarks import load_schema, mouth_measures

    n = len(load_schema())
    ids = lip_schema()[0]
    order = {lm.mp_id: k for k, lm in enumerate(load_schema())}
    cols = np.array([order[i] for i in ids])
    disp = np.asarray(displacement_mm, dtype=float)
    neutral_full = np.zeros((n, 3))
    neutral_full[cols] = neutral_lip_landmarks_mm()
    full = np.broadcast_to(neutral_full, disp.shape[:-2] + (n, 3)).copy()
    full[..., cols, :] += disp
    return mouth_measures(full, neutral_full)


# ---------------------------------------------------------------------------------------------- track
@dataclass
class LipTrack:
    """Target lip motion sampled at ``fps`` over [0, duration]."""

    fps: float
    t: np.ndarray  # (T,) seconds
    aperture_mm: np.ndarray  # (T,) midline inner-lip opening (13-14), absolute
    width_mm: np.ndarray  # (T,) outer corner distance (61-291), absolute
    protrusion_mm: np.ndarray  # (T,) forward movement of the outer lip midline vs neutral
    viseme: np.ndarray  # (T,) str: viseme of the dominant segment (PP on forced closures)
    phoneme: np.ndarray  # (T,) str: phoneme of the dominant segment ("" for silence)
    closure: np.ndarray  # (T,) bool: frames forced closed (bilabials)
    rounded: np.ndarray  # (T,) bool: frames given the rounding floor
    landmarks_mm: np.ndarray  # (T, 40, 3) lip landmark displacement from the neutral face, mm
    landmark_ids: np.ndarray = field(default_factory=lip_landmark_ids)  # (40,) MediaPipe ids
    neutral_landmarks_mm: np.ndarray = field(default_factory=neutral_lip_landmarks_mm)  # (40, 3)

    def __len__(self) -> int:
        return len(self.t)

    @property
    def neutral_width_mm(self) -> float:
        return neutral_measures()["width_mm"]

    @property
    def neutral_aperture_mm(self) -> float:
        return neutral_measures()["aperture_mm"]

    def measures(self) -> dict[str, np.ndarray]:
        """Mouth measures recomputed from the landmarks (equal to the channels, see the lip model)."""
        return measures_from_landmarks(self.landmarks_mm)

    def frames_overlapping(self, start: float, end: float) -> np.ndarray:
        """Indices of frames whose interval [t - 1/2fps, t + 1/2fps) meets [start, end) (at least the nearest)."""
        return frames_overlapping(self.t, self.fps, start, end)


def frames_overlapping(t: np.ndarray, fps: float, start: float, end: float) -> np.ndarray:
    """Indices of the frames at times ``t`` (s) whose interval [t - 1/2fps, t + 1/2fps) meets [start, end) (at
    least the frame nearest the interval's centre): the frames "during" a phone (:meth:`LipTrack.frames_overlapping`,
    the rule of the phoneme-level metrics of :mod:`facetwin.agents.metrics`)."""
    t = np.asarray(t, dtype=float)
    h = 0.5 / fps
    idx = np.flatnonzero((t + h > start) & (t - h < end))
    if idx.size == 0 and len(t):
        idx = np.array([int(np.argmin(np.abs(t - 0.5 * (start + end))))])
    return idx


def _cone_min(values: np.ndarray, t: np.ndarray, anchors: np.ndarray, anchor_vals: np.ndarray, rate: float) -> None:
    """values[k] = min(values[k], min_j anchor_vals[j] + rate * |t_k - t_anchor_j|), in place (two sweeps)."""
    cap = np.full(len(t), np.inf)
    np.minimum.at(cap, anchors, anchor_vals)
    for k in range(1, len(t)):
        cap[k] = min(cap[k], cap[k - 1] + rate * (t[k] - t[k - 1]))
    for k in range(len(t) - 2, -1, -1):
        cap[k] = min(cap[k], cap[k + 1] + rate * (t[k + 1] - t[k]))
    np.minimum(values, cap, out=values)


def _blend(segs: list[VisemeSegment], tg: dict[str, VisemeTarget], t: np.ndarray, w0: float,
           exponent: float) -> tuple[np.ndarray, np.ndarray]:
    """The Cohen-Massaro blend at frame times ``t``: (3, T) aperture, width, protrusion (each channel the
    dominance-weighted mean of the segments' targets, the ``sil`` shape where no segment reaches), and the index of
    the segment with the largest aperture dominance per frame (-1: none)."""
    n = len(t)
    num = np.zeros((3, n))
    den = np.zeros((3, n))
    best = np.full(n, -1.0)
    best_idx = np.full(n, -1, dtype=int)
    for si, s in enumerate(segs):
        tv = tg[s.viseme]
        a = np.array([tv.dominance, tv.dominance_width, tv.dominance_protrusion])[:, None] * s.weight
        if not (a > 0).any():
            continue
        c = s.centre
        lo = int(np.searchsorted(t, c - HORIZON_S, side="left"))
        hi = int(np.searchsorted(t, c + HORIZON_S, side="right"))
        if hi <= lo:
            continue
        dt = t[lo:hi] - c
        theta = np.where(dt < 0, tv.theta_before, tv.theta_after)
        d = a * np.exp(-theta * np.abs(dt) ** exponent)  # (3, frames): per-channel dominance
        den[:, lo:hi] += d
        num[0, lo:hi] += d[0] * tv.aperture_mm
        num[1, lo:hi] += d[1] * w0 * (1.0 + tv.width_pct / 100.0)
        num[2, lo:hi] += d[2] * tv.protrusion_mm
        better = d[0] > best[lo:hi]
        best[lo:hi][better] = d[0][better]
        best_idx[lo:hi][better] = si

    sil = tg["sil"]
    rest = np.array([sil.aperture_mm, w0 * (1.0 + sil.width_pct / 100.0), sil.protrusion_mm])
    ok = den > 1e-12
    return np.where(ok, num / np.where(ok, den, 1.0), rest[:, None]), best_idx


@dataclass
class _Constraints:
    """The hard constraints of a track, per frame: held shut (``closure``), given the rounding floor (``rounded``)
    with its width cap and protrusion floor."""

    closure: np.ndarray
    rounded: np.ndarray
    width_cap: np.ndarray
    prot_floor: np.ndarray

    @classmethod
    def mark(cls, segs: list[VisemeSegment], tg: dict[str, VisemeTarget], t: np.ndarray, fps: float, dur: float,
             w0: float, rounding_floor: float, viseme: np.ndarray, phoneme: np.ndarray) -> _Constraints:
        """The frames each closure (``PP``) and rounded segment constrains: those sampling it, plus the frame
        nearest its centre. Closure frames take the segment's ``viseme`` and ``phoneme`` labels (in place)."""
        n = len(t)

        def frames_of(s: VisemeSegment) -> np.ndarray:
            idx = np.flatnonzero((t >= s.start - 1e-9) & (t <= s.end + 1e-9))
            near = int(np.clip(np.rint(s.centre * fps), 0, n - 1))
            return np.union1d(idx, [near]).astype(int)

        c = cls(np.zeros(n, dtype=bool), np.zeros(n, dtype=bool), np.full(n, np.inf), np.full(n, -np.inf))
        h = 0.5 / fps
        for s in segs:
            tv = tg[s.viseme]
            if s.end < -h or s.start > dur + h:  # outside the track
                continue
            if tv.closure:
                k = frames_of(s)
                c.closure[k] = True
                viseme[k] = s.viseme
                phoneme[k] = s.phoneme
            elif tv.rounding and rounding_floor > 0:
                k = frames_of(s)
                c.rounded[k] = True
                c.width_cap[k] = np.minimum(c.width_cap[k], w0 * (1.0 + rounding_floor * tv.width_pct / 100.0))
                c.prot_floor[k] = np.maximum(c.prot_floor[k], rounding_floor * tv.protrusion_mm)
        return c

    def apply(self, aperture: np.ndarray, width: np.ndarray, protrusion: np.ndarray, t: np.ndarray,
              closure_rate_mm_s: float) -> np.ndarray:
        """Close the closure frames (aperture 0, neighbours capped by a cone) and hold the rounding floor (width
        and protrusion cones), ``aperture`` and ``width`` in place; returns the protrusion."""
        if self.closure.any():
            k = np.flatnonzero(self.closure)
            aperture[k] = 0.0
            _cone_min(aperture, t, k, np.zeros(len(k)), closure_rate_mm_s)
        if self.rounded.any():
            k = np.flatnonzero(self.rounded)
            _cone_min(width, t, k, self.width_cap[k], ROUND_WIDTH_RATE_MM_S)
            neg = -protrusion
            _cone_min(neg, t, k, -self.prot_floor[k], ROUND_PROTRUSION_RATE_MM_S)
            protrusion = -neg
        return protrusion


def _track_landmarks(lip_model: str, aperture: np.ndarray, width: np.ndarray, protrusion: np.ndarray,
                     nm: dict[str, float]) -> np.ndarray:
    """(T, 40, 3) lip landmarks of the channels: the face's own shapes, or the geometric model."""
    if lip_model == "face":
        from facetwin.sim.lip_shapes import face_lip_shapes

        return face_lip_shapes(aperture, width, protrusion, neutral=(nm["aperture_mm"], nm["width_mm"]))
    if lip_model == "geometric":
        return lip_displacements(aperture, width, protrusion)
    raise ValueError(f"unknown lip_model {lip_model!r}; choose face or geometric")


def lip_track(
    timeline: Timeline,
    fps: float = 30.0,
    duration: float | None = None,
    *,
    exponent: float = 1.0,
    max_segment_s: float = MAX_SEGMENT_S,
    closure_rate_mm_s: float = CLOSURE_RATE_MM_S,
    rounding_floor: float = ROUNDING_FLOOR,
    targets: dict[str, VisemeTarget] | None = None,
    lip_model: str = "face",
) -> LipTrack:
    """Coarticulated lip targets for ``timeline`` at ``fps`` over [0, duration) (default: the timeline's end).

    Frames are at ``t = k / fps`` for every ``t < duration`` (at least one frame): ``ceil(duration * fps)`` frames,
    the frame convention of :mod:`facetwin.audio.features`, so a track and the features of the same audio align
    frame for frame. See the module doc for the model.
    """
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    tg = load_viseme_targets() if targets is None else targets
    nm = neutral_measures()
    w0 = nm["width_mm"]
    dur = timeline.end if duration is None else float(duration)
    if not np.isfinite(dur) or dur < 0:
        raise ValueError(f"duration must be finite and >= 0, got {duration}")
    n = max(1, math.ceil(dur * fps - 1e-9))
    t = np.arange(n) / fps
    segs = viseme_segments(timeline, dur, max_segment_s=max_segment_s)

    chan, best_idx = _blend(segs, tg, t, w0, exponent)
    aperture, width, protrusion = chan[0].copy(), chan[1].copy(), chan[2].copy()
    viseme = np.array([segs[i].viseme if i >= 0 else "sil" for i in best_idx], dtype=object)
    phoneme = np.array([segs[i].phoneme if i >= 0 else "" for i in best_idx], dtype=object)

    cons = _Constraints.mark(segs, tg, t, fps, dur, w0, rounding_floor, viseme, phoneme)
    protrusion = cons.apply(aperture, width, protrusion, t, closure_rate_mm_s)
    landmarks = _track_landmarks(lip_model, aperture, width, protrusion, nm)
    return LipTrack(
        fps=float(fps), t=t, aperture_mm=aperture, width_mm=width, protrusion_mm=protrusion,
        viseme=viseme.astype(str), phoneme=phoneme.astype(str), closure=cons.closure, rounded=cons.rounded,
        landmarks_mm=landmarks,
    )


__all__ = ["LipTrack", "frames_overlapping", "lip_displacements", "lip_track", "measures_from_landmarks",
           "neutral_measures"]
