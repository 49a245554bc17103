"""The lip-sync metrics: how well a face's lips followed a clip (the one definition every method is scored with).

A method turns a clip into a (T, 26) motor command sequence, :func:`facetwin.sim.playback.play` plays it on the
simulated face (frame ``k`` = the face at the end of control period ``k``, compared with target frame ``k`` at
``t_k = k / fps``), :func:`clip_metrics` scores the :class:`~facetwin.sim.playback.Playback` against the clip's
targets (:class:`facetwin.envs.lip_sync.ClipData`) and :func:`aggregate` pools the clips of a split.

| metric | unit | definition | goal |
|---|---|---|---|
| ``lip_error_mm`` | mm | mean over frames and the 40 lip landmarks of the Euclidean distance between the face's lip displacement and the target's, after removing the per-frame mean difference over the 40 points (lip SHAPE; :func:`lip_error_mm`, the ``"centroid"`` error of ``LipSyncEnv``) | lower |
| ``aperture_corr`` | r | Pearson correlation of the face's midline aperture with the target aperture over the frames (NaN when either hardly moves: std < ``MOTIONLESS_MM``) | higher, 1 |
| ``closure_rate`` | share | of the timeline's bilabial phones (lip class ``"bilabial"``: p b m), those within 20 ms of which (``PHONE_WINDOW_S``) the face's aperture falls to <= ``CLOSED_MM`` (2 mm) | higher, 1 |
| ``rounding_rate`` | share | of the rounded phones (lip class ``"rounded"``: w u o y ... per phone set), those within 20 ms of which the mouth width falls to <= ``ROUNDED_WIDTH`` (0.9) x the face's neutral width | higher, 1 |
| ``open_rate`` | share | of the open vowels (lip class ``"open"``), those within 20 ms of which the face's aperture reaches >= ``OPEN_MM`` (5 mm) | higher, 1 |
| ``offset_ms`` | ms | the lag (``-MAX_LAG_FRAMES .. MAX_LAG_FRAMES`` frames) maximising the normalized cross-correlation of the face aperture with the target aperture (each minus its clip mean), refined to sub-frame by a parabola through the peak and its neighbours; positive = the mouth is LATE (NaN when either aperture hardly moves) | 0 |

"Within 20 ms of a phone" = the frames whose time ``t_k`` lies in ``[start - 20 ms, end + 20 ms]``
(:func:`frames_near`; at least the frame nearest the phone's centre). A phone's lip class comes from the clip
(:attr:`facetwin.envs.lip_sync.ClipData.phone_classes`: the phone set of a labelled recording, or the viseme table
for facetwin's own IPA timelines; :mod:`facetwin.audio.phone_sets`). The offset compares the face's aperture with
the target aperture of the phone timeline (its lip track): the openness the phones call for. The inference
real-time factor (seconds of audio per second of compute) is measured by the caller.

Pooling (:func:`aggregate`): the lip error is frame-weighted; the rates pool the phonemes of all clips (hits and
counts summed); the correlation pools the within-clip sums (each clip about its own means, so the clips' levels
do not inflate it); the offset is the peak of the summed per-lag cross-correlation sums. A rate with no phonemes
(``*_n`` = 0) is NaN.

Per-clip dict of :func:`clip_metrics` (also the keys of :func:`aggregate`, which adds ``n_clips`` and leaves out
the raw sums, and adds the per-clip offset statistics ``offset_median_ms`` (median of the clips' offsets) and
``offset_within_60`` (share of clips whose offset is within +-60 ms)):

| key | content |
|---|---|
| ``lip_error_mm``, ``aperture_corr``, ``closure_rate``, ``rounding_rate``, ``open_rate``, ``offset_ms`` | the metrics |
| ``closure_n``, ``rounding_n``, ``open_n`` / ``closure_hits``, ``rounding_hits``, ``open_hits`` | phonemes scored / met |
| ``n_frames`` | frames of the clip |
| ``xcorr_xy``, ``xcorr_xx``, ``xcorr_yy`` | (2 * MAX_LAG_FRAMES + 1,) raw per-lag sums (lag ``-15 .. 15``) for pooling |
| ``ap_sxy``, ``ap_sxx``, ``ap_syy`` | within-clip aperture sums (face x, target y, about the clip means) for pooling |
| ``fps`` | the clip's frame rate |

>>> from facetwin.agents.metrics import METRICS, aggregate, clip_metrics
>>> pb = play(FaceModel.load("fast"), ctrl)                  # ctrl: (clip.n_frames, 26)
>>> m = clip_metrics(pb, clip); m["lip_error_mm"], m["offset_ms"]
>>> pooled = aggregate([clip_metrics(pb_i, clip_i) for ...])
>>> for spec in METRICS: print(spec.name, spec.unit, pooled[spec.name])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LIP_ERROR_MODES = ("centroid", "absolute")
CLOSED_MM = 2.0  # aperture at or below which a bilabial counts as closed
ROUNDED_WIDTH = 0.9  # mouth width (x the face's neutral width) at or below which a rounded phone counts as rounded
OPEN_MM = 5.0  # aperture an open vowel must reach
PHONE_WINDOW_S = 0.020  # a phone is met when the face meets its condition within this time of the phone
OFFSET_OK_MS = 60.0  # a clip's A/V offset within this is in sync (offset_within_60)
MAX_LAG_FRAMES = 15
MOTIONLESS_MM = 1e-3  # an aperture whose std is below this does not move: its correlation is undefined (NaN)


@dataclass(frozen=True)
class MetricSpec:
    """One column of the evaluation table."""

    name: str
    unit: str
    description: str
    goal: str


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("lip_error_mm", "mm", "lip shape error (40 lip landmarks, mean displacement removed)", "lower is better"),
    MetricSpec("aperture_corr", "r", "Pearson r of the face's aperture with the target's", "higher is better (1)"),
    MetricSpec("closure_rate", "share", "B/P/M phones with the lips closed (aperture <= 2 mm) within 20 ms",
               "higher is better (1)"),
    MetricSpec("rounding_rate", "share", "rounded phones with the mouth width <= 0.9 x neutral within 20 ms",
               "higher is better (1)"),
    MetricSpec("open_rate", "share", "open vowels with the aperture >= 5 mm within 20 ms", "higher is better (1)"),
    MetricSpec("offset_ms", "ms", "audio-visual offset of the aperture (positive: the mouth is late)", "0 is best"),
)

_RATES = ("closure", "rounding", "open")
_CLASS_RATE = {"bilabial": "closure", "rounded": "rounding", "open": "open"}


def frames_near(t: np.ndarray, start: float, end: float, window_s: float = PHONE_WINDOW_S) -> np.ndarray:
    """Indices of the frame times ``t`` (sorted) within ``window_s`` of the phone ``[start, end]``; at least the
    frame nearest the phone's centre."""
    t = np.asarray(t, dtype=float)
    lo = int(np.searchsorted(t, start - window_s - 1e-9, side="left"))
    hi = int(np.searchsorted(t, end + window_s + 1e-9, side="right"))
    if hi > lo:
        return np.arange(lo, hi)
    return np.array([int(np.clip(np.argmin(np.abs(t - 0.5 * (start + end))), 0, len(t) - 1))])


def lip_error_mm(face_lips, target_lips, mode: str = "centroid") -> np.ndarray:
    """(T,) mean over the 40 lip landmarks of the Euclidean distance (mm) between ``face_lips`` and ``target_lips``
    (both (T, 40, 3) displacements from neutral; a single (40, 3) frame gives a (1,) array).

    ``mode="centroid"`` removes the per-frame mean difference over the 40 points first (compares lip shapes);
    ``"absolute"`` compares positions. The numbers of ``LipSyncEnv.lip_error_mm(...).mean()``.
    """
    if mode not in LIP_ERROR_MODES:
        raise ValueError(f"unknown lip error mode {mode!r}; choose one of {', '.join(LIP_ERROR_MODES)}")
    f = np.asarray(face_lips, dtype=float)
    g = np.asarray(target_lips, dtype=float)
    if f.ndim == 2:
        f = f[None]
    if g.ndim == 2:
        g = g[None]
    if f.shape != g.shape or f.ndim != 3 or f.shape[2] != 3:
        raise ValueError(f"face and target lips must both be (T, P, 3), got {np.shape(face_lips)} and {np.shape(target_lips)}")
    diff = f - g
    if mode == "centroid":
        diff = diff - diff.mean(axis=1, keepdims=True)
    return np.linalg.norm(diff, axis=2).mean(axis=1)


def _corr(sxy: float, sxx: float, syy: float, n: int) -> float:
    """Pearson r from sums about the means; NaN when either signal is (nearly) constant."""
    if n < 2 or sxx < n * MOTIONLESS_MM**2 or syy < n * MOTIONLESS_MM**2:
        return float("nan")
    return float(np.clip(sxy / np.sqrt(sxx * syy), -1.0, 1.0))


def _lag_sums(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per lag L in -MAX_LAG..MAX_LAG: sum_k x[k] y[k-L], sum x[k]^2, sum y[k-L]^2 over the overlapping frames."""
    n = len(x)
    lags = np.arange(-MAX_LAG_FRAMES, MAX_LAG_FRAMES + 1)
    xy, xx, yy = (np.zeros(len(lags)) for _ in range(3))
    for i, lag in enumerate(lags):
        lo, hi = max(0, lag), min(n, n + lag)
        if hi <= lo:
            continue
        a, b = x[lo:hi], y[lo - lag:hi - lag]
        xy[i], xx[i], yy[i] = a @ b, a @ a, b @ b
    return xy, xx, yy


def _offset_ms(xy: np.ndarray, xx: np.ndarray, yy: np.ndarray, fps: float, n: int) -> float:
    """Sub-frame peak of the normalized cross-correlation curve, in ms (NaN when it is undefined: either aperture
    of the ``n`` frames hardly moves)."""
    mid = MAX_LAG_FRAMES
    if xx[mid] < n * MOTIONLESS_MM**2 or yy[mid] < n * MOTIONLESS_MM**2:
        return float("nan")
    den = xx * yy
    ok = den > 0
    if not ok.any() or not np.any(xy[ok] > 0):
        return float("nan")
    c = np.full(len(xy), -np.inf)
    c[ok] = xy[ok] / np.sqrt(den[ok])
    i = int(np.argmax(c))
    shift = 0.0
    if 0 < i < len(c) - 1 and np.isfinite(c[i - 1]) and np.isfinite(c[i + 1]):
        curv = c[i - 1] - 2.0 * c[i] + c[i + 1]
        if curv < 0:
            shift = float(np.clip(0.5 * (c[i - 1] - c[i + 1]) / curv, -0.5, 0.5))
    return (i - MAX_LAG_FRAMES + shift) * 1000.0 / fps


def clip_metrics(pb, clip) -> dict:
    """The metrics of one played clip (``pb``: a :class:`facetwin.sim.playback.Playback` of ``clip.n_frames``
    frames; ``clip``: a :class:`facetwin.envs.lip_sync.ClipData`); the keys are in the module docstring.

    Raises ``ValueError`` when the lengths differ or the simulation diverged (its metrics are undefined).
    """
    T = clip.n_frames
    if len(pb) != T:
        raise ValueError(f"the playback has {len(pb)} frames, the clip {clip.id!r} {T}: play one command per clip frame")
    if pb.diverged or not np.isfinite(pb.lips_mm).all():
        raise ValueError(f"the simulation diverged while playing clip {clip.id!r}: its metrics are undefined")
    fps = float(clip.fps)
    face_ap = np.asarray(pb.aperture_mm, dtype=float)
    face_w = np.asarray(pb.width_mm, dtype=float)
    tgt_ap = np.asarray(clip.target_aperture_mm, dtype=float)

    err = lip_error_mm(pb.lips_mm, clip.target_lips_mm)
    x, y = face_ap - face_ap.mean(), tgt_ap - tgt_ap.mean()
    sxy, sxx, syy = float(x @ y), float(x @ x), float(y @ y)
    xy, xx, yy = _lag_sums(x, y)

    t = np.arange(T) / fps
    hits = dict.fromkeys(_RATES, 0)
    counts = dict.fromkeys(_RATES, 0)
    width_cap = ROUNDED_WIDTH * float(pb.neutral_width_mm)
    classes = clip.phone_classes
    if len(classes) != len(clip.timeline):
        raise ValueError(f"clip {clip.id!r}: {len(classes)} phone classes for {len(clip.timeline)} phones")
    for p, cls in zip(clip.timeline, classes):
        rate = _CLASS_RATE.get(cls)
        if rate is None:
            continue
        k = frames_near(t, p.start, p.end)
        counts[rate] += 1
        if rate == "closure":
            hits[rate] += int(face_ap[k].min() <= CLOSED_MM)
        elif rate == "rounding":
            hits[rate] += int(face_w[k].min() <= width_cap)
        else:
            hits[rate] += int(face_ap[k].max() >= OPEN_MM)

    out: dict = {"lip_error_mm": float(err.mean()), "aperture_corr": _corr(sxy, sxx, syy, T)}
    for r in _RATES:
        out[f"{r}_rate"] = hits[r] / counts[r] if counts[r] else float("nan")
    out["offset_ms"] = _offset_ms(xy, xx, yy, fps, T)
    for r in _RATES:
        out[f"{r}_n"], out[f"{r}_hits"] = counts[r], hits[r]
    out.update(n_frames=T, fps=fps, xcorr_xy=xy, xcorr_xx=xx, xcorr_yy=yy, ap_sxy=sxy, ap_sxx=sxx, ap_syy=syy)
    return out


def aggregate(per_clip: list[dict]) -> dict:
    """Pool the :func:`clip_metrics` of several clips (see the module docstring): the metrics, the phoneme counts
    and hits, ``n_frames`` (total) and ``n_clips``."""
    if not per_clip:
        raise ValueError("aggregate needs the metrics of at least one clip")
    fps = {float(m["fps"]) for m in per_clip}
    if len(fps) != 1:
        raise ValueError(f"the clips have different frame rates ({sorted(fps)}): their offsets cannot be pooled")
    n = np.array([m["n_frames"] for m in per_clip], dtype=float)
    total = int(n.sum())
    out: dict = {
        "lip_error_mm": float(np.dot(n, [m["lip_error_mm"] for m in per_clip]) / n.sum()),
        "aperture_corr": _corr(*(sum(float(m[k]) for m in per_clip) for k in ("ap_sxy", "ap_sxx", "ap_syy")), total),
    }
    for r in _RATES:
        cnt = sum(int(m[f"{r}_n"]) for m in per_clip)
        hit = sum(int(m[f"{r}_hits"]) for m in per_clip)
        out[f"{r}_rate"] = hit / cnt if cnt else float("nan")
        out[f"{r}_n"], out[f"{r}_hits"] = cnt, hit
    xy, xx, yy = (np.sum([m[k] for m in per_clip], axis=0) for k in ("xcorr_xy", "xcorr_xx", "xcorr_yy"))
    out["offset_ms"] = _offset_ms(xy, xx, yy, fps.pop(), total)
    out = {k: out[k] for k in [s.name for s in METRICS] + [f"{r}_{s}" for r in _RATES for s in ("n", "hits")]}
    offs = np.array([m["offset_ms"] for m in per_clip], dtype=float)
    offs = offs[np.isfinite(offs)]
    out["offset_median_ms"] = float(np.median(offs)) if len(offs) else float("nan")
    out["offset_within_60"] = float(np.mean(np.abs(offs) <= OFFSET_OK_MS)) if len(offs) else float("nan")
    out.update(n_frames=total, n_clips=len(per_clip))
    return out


__all__ = [
    "CLOSED_MM",
    "LIP_ERROR_MODES",
    "MAX_LAG_FRAMES",
    "METRICS",
    "OFFSET_OK_MS",
    "OPEN_MM",
    "PHONE_WINDOW_S",
    "ROUNDED_WIDTH",
    "MetricSpec",
    "aggregate",
    "clip_metrics",
    "frames_near",
    "lip_error_mm",
]
