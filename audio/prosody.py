"""Causal prosody of 16 kHz mono audio at the 30 Hz control rate, for a living performance (issue 14): level,
pitch, voice activity, stressed syllables, phrase ends, onsets and a musical beat, one :class:`ProsodyFrame` per
control frame, to drive blinks, brow raises, nods and beat-following head motion.

>>> stream = ProsodyStream()
>>> for chunk in chunks:                # any sizes; 16 kHz mono float samples
...     for f in stream.push(chunk):    # the frames that became complete
...         ...                         # f.speaking, f.stress, f.phrase_end, f.beat, ...
>>> tail = stream.flush()               # the last partial frame, padded with silence

Frame ``k`` covers ``[k / 30, (k + 1) / 30)`` s, the samples ``start_k = ceil(k * 1600 / 3)`` up to ``start_{k+1}``
(533 or 534). It is emitted as soon as its last sample has arrived, and every field depends only on the audio up
to the end of frame ``k`` (causal); events (stress, phrase end, beat) are reported on the frame where they become
known. :func:`prosody` is the stream fed the whole signal; results do not depend on the chunk sizes (bit for bit:
each frame is computed from the same samples by the same code, whatever the chunking). :meth:`ProsodyStream.flush`
emits ``num_frames(n)`` frames in all (:func:`facetwin.sim.rates.num_frames`).

Per frame
    * ``energy_db``: RMS of the frame's own samples, dBFS, floor -100 (a full-scale sine reads -3 dB).
    * ``f0_hz``, ``voiced``: YIN on the ``pitch_window_s`` (40 ms) ending at the frame's end: the difference
      function (mean over the window's pairs), its cumulative-mean normalisation ``d'``, the first local minimum
      below ``yin_threshold`` at lags ``sr / f0_max_hz .. sr / f0_min_hz`` (else the deepest), refined by a
      parabola; voiced when that ``d'`` is below ``voicing_threshold`` and the window's level above
      ``voiced_floor_db``. ``f0_hz`` is NaN when unvoiced.
    * ``speaking``: voice activity: the frame is *active* when ``energy_db > max(speech_floor_db, noise + snr_db)``,
      the noise floor being the lowest frame level of the last ``noise_window_s`` (minimum statistics: it follows
      a quieter background at once and a louder one after ``noise_window_s``; the stream starts as if after quiet,
      the threshold at ``speech_floor_db``); ``speaking`` is true from an active frame until ``hangover_s`` after it.
    * ``stress``: a stressed syllable, reported ``stress_lag_frames`` (2 = 67 ms) after its peak frame ``p``:
      ``p`` is active and voiced (or a neighbour is), its level is above the ``stress_lag_frames`` frames before
      it and not below the ones after; its prominence, ``energy_db[p]`` minus the mean level of the active frames of
      the last ``stress_window_s`` plus ``stress_pitch_db_per_st`` dB per semitone of ``f0`` above their median
      ``f0``, is at least ``stress_db``; at least ``stress_min_gap_s`` after the previous one. The strength is
      ``min(1, prominence / stress_full_db)``.
    * ``phrase_end``: true on the frame ``pause_s`` (rounded up to frames) after the last active frame of a phrase
      of at least ``min_phrase_s`` (first to last active frame, gaps shorter than ``pause_s`` inside it).
    * ``onset``: positive spectral flux: the mean over 24 log-spaced bands (100 Hz-8 kHz) of the rise in band
      level (dB, floor -90) since the previous frame, on a 48 ms window ending at the frame's end whose taper
      rises over 40 ms and falls over the last 8 ms (so a hit lands in its own frame).
    * ``beat``, ``tempo_bpm``, ``beat_phase``, ``beat_confidence``: with ``tempo_bpm`` given, a beat in every frame
      ``floor(30 * beat_offset_s + n * 30 * 60 / tempo_bpm)``, ``n = 0, 1, ...``. Otherwise every ``beat_refresh_s``
      (once ``beat_min_history_s`` has been heard) the period is re-estimated from the autocorrelation of the onset
      strength (smoothed by a Gaussian of 1 frame) over the last ``beat_window_s``: each period ``T`` from
      ``beat_min_bpm`` to ``beat_max_bpm`` is scored by the mean normalised autocorrelation at ``T, 2T, 3T, 4T``
      (those up to half the history; linear interpolation between lags), weighted by a prior flat over 80-140 BPM
      falling off outside (Gaussian in octaves, 0.3); the best score is ``beat_confidence``, and the tempo is known
      (else NaN, no beats) while it is at least ``beat_min_confidence`` (speech scores about 0.1-0.2, white noise
      below 0.1, click tracks and drum patterns 0.8-1). The phase is the grid offset that best matches the onsets
      of the last 4 s (Gaussian comb, 1 frame wide), plus half a frame (an onset in frame ``j`` is a beat inside
      ``[j, j + 1)``); beats are predicted on that grid (a beat is in frame ``floor(position)``), never two closer
      than half a period; right after a refit a grid beat up to 1 frame in the past is still reported, on the
      current frame. ``beat_phase`` is the fraction of the period elapsed at the frame's start since the last
      grid beat.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, fields
from fractions import Fraction

import numpy as np

from facetwin.sim.rates import AUDIO_SR, CONTROL_HZ, as_fraction, check_audio, num_frames

from .io import resample

__all__ = ["FRAME_HZ", "SR", "ProsodyConfig", "ProsodyFrame", "ProsodyStream", "prosody", "prosody_arrays"]

FRAME_HZ = CONTROL_HZ
SR = AUDIO_SR
_HOP = Fraction(SR) / as_fraction(FRAME_HZ, "FRAME_HZ")  # samples per frame, 1600/3
_NFFT = 1024
_ONSET_N, _ONSET_FALL = 768, 128  # onset window (48 ms) and its falling edge (8 ms)
_BAND_FLOOR_DB = -90.0
_PRIOR_LO, _PRIOR_HI, _PRIOR_OCT = 80.0, 140.0, 0.3
_PHASE_S, _PHASE_SIGMA = 4.0, 1.0
_SMOOTH = np.exp(-0.5 * np.arange(-3, 4) ** 2) / np.exp(-0.5 * np.arange(-3, 4) ** 2).sum()  # 1 frame
_PERIOD_STEP = 0.05  # frames: the grid of candidate beat periods (refined by a parabola)


@dataclass(frozen=True)
class ProsodyConfig:
    """Settings of :class:`ProsodyStream`; every number is checked (``ValueError`` naming the field)."""

    pause_s: float = 0.25  # silence after speech that ends a phrase
    hangover_s: float = 0.15  # speaking stays true this long after the level drops
    min_phrase_s: float = 0.3  # a phrase end is reported only after at least this much speech
    speech_floor_db: float = -50.0  # dBFS: a frame is never speech below this level
    snr_db: float = 12.0  # dB: speech is at least this far above the noise floor
    noise_window_s: float = 3.0  # the noise floor is the lowest frame level over this long
    f0_min_hz: float = 60.0  # pitch search range (up to 1000 Hz for song)
    f0_max_hz: float = 500.0
    pitch_window_s: float = 0.04  # YIN window, ending at the frame's end (>= 2 periods of f0_min_hz)
    yin_threshold: float = 0.15  # YIN: the first normalised-difference dip below this is the period
    voicing_threshold: float = 0.35  # voiced when that dip is below this (aperiodicity)
    voiced_floor_db: float = -55.0  # dBFS: and the pitch window's level above this
    stress_window_s: float = 1.5  # the running speech level and median f0 are over this long
    stress_db: float = 4.0  # dB of prominence above the running speech level for a stress event
    stress_full_db: float = 12.0  # prominence of strength 1
    stress_pitch_db_per_st: float = 0.5  # prominence added per semitone of f0 above the running median
    stress_min_gap_s: float = 0.3  # at most one stress event per this long
    stress_lag_frames: int = 2  # frames after the peak that confirm it (the detection lag)
    beats: bool = True  # track a musical beat (tempo + phase) from onset strength
    tempo_bpm: float | None = None  # a known tempo: beats on its grid instead of an estimate
    beat_offset_s: float = 0.0  # with tempo_bpm: the first beat's time
    beat_min_bpm: float = 60.0  # estimated tempo range
    beat_max_bpm: float = 180.0
    beat_window_s: float = 8.0  # onset history the tempo is estimated on
    beat_refresh_s: float = 1.0  # tempo and phase re-estimated this often
    beat_min_history_s: float = 3.0  # first estimate after this much audio
    beat_min_confidence: float = 0.3  # normalised autocorrelation needed for a tempo

    def __post_init__(self):
        for name, (lo, hi) in _RANGES.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not (
                    math.isfinite(v) and lo <= v <= hi):
                raise ValueError(f"ProsodyConfig.{name} must be a number in [{lo}, {hi}], got {v!r}")
        if not isinstance(self.stress_lag_frames, (int, np.integer)) or isinstance(self.stress_lag_frames, bool):
            raise ValueError(f"ProsodyConfig.stress_lag_frames must be an integer, got {self.stress_lag_frames!r}")
        if not isinstance(self.beats, bool):
            raise ValueError(f"ProsodyConfig.beats must be True or False, got {self.beats!r}")
        if self.tempo_bpm is not None and (isinstance(self.tempo_bpm, bool) or not isinstance(
                self.tempo_bpm, (int, float, np.integer, np.floating)) or not 20 <= self.tempo_bpm <= 400):
            raise ValueError(f"ProsodyConfig.tempo_bpm must be None or a tempo in [20, 400] BPM, got {self.tempo_bpm!r}")
        pairs = (("f0_min_hz", "f0_max_hz"), ("beat_min_bpm", "beat_max_bpm"), ("stress_db", "stress_full_db"))
        for a, b in pairs:
            if getattr(self, a) >= getattr(self, b):
                raise ValueError(f"ProsodyConfig.{a} must be below {b}, got {getattr(self, a)} >= {getattr(self, b)}")
        if self.beat_min_history_s > self.beat_window_s:
            raise ValueError(f"ProsodyConfig.beat_min_history_s must be at most beat_window_s ({self.beat_window_s})")
        if self.f0_min_hz * self.pitch_window_s < 2:
            raise ValueError(f"ProsodyConfig.pitch_window_s must hold two periods of f0_min_hz ({self.f0_min_hz} Hz),"
                             f" got {self.pitch_window_s} s")


_RANGES = {
    "pause_s": (1e-3, 10.0), "hangover_s": (0.0, 5.0), "min_phrase_s": (0.0, 10.0),
    "speech_floor_db": (-100.0, 0.0), "snr_db": (0.0, 60.0), "noise_window_s": (0.1, 60.0),
    "f0_min_hz": (40.0, 1000.0), "f0_max_hz": (40.0, 1000.0), "pitch_window_s": (0.01, 0.064),
    "yin_threshold": (0.01, 1.0), "voicing_threshold": (0.01, 1.0), "voiced_floor_db": (-100.0, 0.0),
    "stress_window_s": (0.3, 10.0), "stress_db": (0.1, 40.0), "stress_full_db": (0.1, 60.0),
    "stress_pitch_db_per_st": (0.0, 10.0), "stress_min_gap_s": (0.0, 5.0), "stress_lag_frames": (1, 15),
    "beat_offset_s": (-1e6, 1e6), "beat_min_bpm": (20.0, 400.0), "beat_max_bpm": (20.0, 400.0),
    "beat_window_s": (2.0, 30.0), "beat_refresh_s": (0.1, 10.0), "beat_min_history_s": (1.0, 30.0),
    "beat_min_confidence": (0.0, 1.0),
}


@dataclass(frozen=True)
class ProsodyFrame:
    """The prosody of control frame ``k`` (``[k / FRAME_HZ, (k + 1) / FRAME_HZ)`` s); see the module docstring."""

    k: int
    energy_db: float  # RMS level of the frame, dBFS (floor -100)
    voiced: bool
    f0_hz: float  # NaN when unvoiced
    speaking: bool  # voice activity with hangover
    stress: float  # 0, or the strength in (0, 1] of a stressed syllable found on this frame
    phrase_end: bool  # a phrase was found to have ended (pause_s after its last speech frame)
    onset: float  # onset strength (positive spectral flux, dB), >= 0
    beat: bool  # a beat falls in this frame
    tempo_bpm: float  # NaN until a tempo is known
    beat_phase: float = math.nan  # fraction of the beat period elapsed at the frame's start, NaN without a tempo
    beat_confidence: float = 0.0  # the tempo estimate's normalised autocorrelation (1 with a given tempo)

    @property
    def t(self) -> float:
        """The frame's start time, s."""
        return self.k / FRAME_HZ


def _frame_start(k: int) -> int:
    return (k * _HOP.numerator + _HOP.denominator - 1) // _HOP.denominator


class _Analyzer:
    """The per-frame signal processing: level, YIN pitch, band levels for the onset strength."""

    def __init__(self, cfg: ProsodyConfig):
        self.cfg = cfg
        self.n_pitch = int(round(cfg.pitch_window_s * SR))
        self.lag_max = min(int(math.ceil(SR / cfg.f0_min_hz)), self.n_pitch // 2)
        self.nfft = 1 << int(math.ceil(math.log2(self.n_pitch + self.lag_max + 2)))  # no circular wrap up to lag_max
        self.lag_min = max(2, int(math.floor(SR / cfg.f0_max_hz)))
        self.taus = np.arange(self.lag_max + 2)
        rise = np.sin(0.5 * np.pi * np.arange(_ONSET_N - _ONSET_FALL) / (_ONSET_N - _ONSET_FALL)) ** 2
        fall = np.cos(0.5 * np.pi * (np.arange(_ONSET_FALL) + 1) / _ONSET_FALL) ** 2
        self.onset_win = np.concatenate([rise, fall])
        freqs = np.fft.rfftfreq(_NFFT, 1 / SR)
        edges = np.geomspace(100.0, 8000.0, 25)
        band = np.zeros((24, len(freqs)))
        for b in range(24):
            sel = (freqs >= edges[b]) & (freqs < edges[b + 1])
            sel[np.argmin(np.abs(freqs - np.sqrt(edges[b] * edges[b + 1])))] = True  # every band has a bin
            band[b, sel] = 1.0
        self.band = band / (self.onset_win.sum() ** 2)
        self.max_window = max(_ONSET_N, self.n_pitch)

    @staticmethod
    def level_db(x: np.ndarray) -> float:
        """Mean-square level of ``x`` in dBFS, floor -100."""
        return 10.0 * math.log10(max(float(np.dot(x, x)) / len(x), 1e-10))

    def pitch(self, x: np.ndarray) -> float:
        """YIN f0 (Hz) of the pitch window ``x``, NaN when unvoiced."""
        cfg, n, lmax = self.cfg, len(x), self.lag_max
        if self.level_db(x) <= cfg.voiced_floor_db:
            return math.nan
        spec = np.fft.rfft(x, self.nfft)
        r = np.fft.irfft(spec.real ** 2 + spec.imag ** 2, self.nfft)[: lmax + 2]
        sq = np.concatenate(([0.0], np.cumsum(x * x)))
        tau = self.taus
        d = (sq[n - tau] + (sq[n] - sq[tau]) - 2.0 * r) / (n - tau)
        d[0] = 0.0
        cum = np.cumsum(d)
        dn = np.ones_like(d)
        dn[1:] = d[1:] * tau[1:] / np.maximum(cum[1:], 1e-300)
        seg = dn[self.lag_min: lmax + 1]
        prev, nxt = dn[self.lag_min - 1: lmax], dn[self.lag_min + 1: lmax + 2]
        minima = np.flatnonzero((seg < prev) & (seg <= nxt))
        if len(minima) == 0:
            return math.nan
        below = minima[seg[minima] < cfg.yin_threshold]
        i = int(below[0]) if len(below) else int(minima[np.argmin(seg[minima])])
        t = i + self.lag_min
        if dn[t] >= cfg.voicing_threshold:
            return math.nan
        a, b, c = dn[t - 1], dn[t], dn[t + 1]
        den = a - 2.0 * b + c
        lag = t + (0.5 * (a - c) / den if den > 0 else 0.0)
        return SR / lag

    def band_levels(self, x: np.ndarray) -> np.ndarray:
        """Band levels (dB, floor -90) of the onset window ``x``."""
        spec = np.fft.rfft(x * self.onset_win, _NFFT)
        p = self.band @ (spec.real ** 2 + spec.imag ** 2)
        return np.maximum(10.0 * np.log10(np.maximum(p, 1e-12)), _BAND_FLOOR_DB)


class _BeatTracker:
    """Tempo (autocorrelation of the onset strength) and phase (comb fit to recent onsets); beats on the grid."""

    def __init__(self, cfg: ProsodyConfig):
        self.cfg = cfg
        self.hist: deque[float] = deque(maxlen=int(round(cfg.beat_window_s * FRAME_HZ)))
        self.refresh = max(1, int(round(cfg.beat_refresh_s * FRAME_HZ)))
        self.min_hist = int(round(cfg.beat_min_history_s * FRAME_HZ))
        self.period = math.nan  # frames
        self.confidence = 0.0
        self.grid = math.nan  # a beat position (frames, fractional) on the current grid
        self.last_beat = -(10 ** 9)
        if cfg.tempo_bpm is not None:
            self.period = FRAME_HZ * 60.0 / cfg.tempo_bpm
            self.grid = FRAME_HZ * cfg.beat_offset_s
            self.confidence = 1.0
            self.n_next = 0 if self.grid >= 0 else int(math.ceil(-self.grid / self.period))
        lo, hi = FRAME_HZ * 60.0 / cfg.beat_max_bpm, FRAME_HZ * 60.0 / cfg.beat_min_bpm
        self.periods = np.arange(lo, hi + 1e-9, _PERIOD_STEP)
        bpm = FRAME_HZ * 60.0 / self.periods
        out = np.where(bpm < _PRIOR_LO, np.log2(bpm / _PRIOR_LO), np.where(bpm > _PRIOR_HI, np.log2(bpm / _PRIOR_HI), 0))
        self.prior = np.exp(-0.5 * (out / _PRIOR_OCT) ** 2)
        self.multiples = np.arange(1, 5)[None, :] * self.periods[:, None]
        self.lag_i = np.floor(self.multiples).astype(int)
        self.lag_f = self.multiples - self.lag_i

    def update(self, k: int, onset: float) -> tuple[bool, float, float]:
        """Frame ``k``'s (beat, tempo_bpm, beat_phase) after its onset strength."""
        self.hist.append(onset)
        if self.cfg.tempo_bpm is not None:
            return self._given(k)
        if len(self.hist) >= self.min_hist and (k + 1) % self.refresh == 0:
            self._estimate(k)
        if not math.isfinite(self.period):
            return False, math.nan, math.nan
        beat = False
        while self.grid < k + 1:
            if self.grid >= k - 1 and k - self.last_beat >= 0.5 * self.period:  # late by <= 1 frame after a refit
                beat, self.last_beat = True, k
            self.grid += self.period
        phase = ((k - (self.grid - self.period)) / self.period) % 1.0
        return beat, FRAME_HZ * 60.0 / self.period, phase

    def _given(self, k: int) -> tuple[bool, float, float]:
        beat = False
        while math.floor(self.grid + self.n_next * self.period) <= k:
            beat = beat or math.floor(self.grid + self.n_next * self.period) == k
            self.n_next += 1
        phase = ((k - self.grid) / self.period) % 1.0
        return beat, float(self.cfg.tempo_bpm), phase

    def _estimate(self, k: int) -> None:
        """Re-estimate the period and the grid from the onset history ending at frame ``k``."""
        o = np.convolve(np.asarray(self.hist), _SMOOTH, mode="same")  # onsets are quantised to frames
        n = len(o)
        o = o - o.mean()
        var = float(np.dot(o, o)) / n
        if var <= 1e-12:
            self.period, self.confidence = math.nan, 0.0
            return
        nfft = 1 << int(math.ceil(math.log2(2 * n)))
        spec = np.fft.rfft(o, nfft)
        ac = np.fft.irfft(spec.real ** 2 + spec.imag ** 2, nfft)[: n // 2 + 2]
        ac = ac / (n - np.arange(len(ac))) / var  # unbiased, normalised
        ac = np.concatenate([ac, np.zeros(max(0, int(self.lag_i.max()) + 2 - len(ac)))])
        ok = self.multiples <= n // 2
        vals = np.where(ok, ac[self.lag_i] * (1 - self.lag_f) + ac[self.lag_i + 1] * self.lag_f, 0.0)
        score = vals.sum(1) / np.maximum(ok.sum(1), 1)
        best = int(np.argmax(score * self.prior))
        period = self.periods[best]
        if 0 < best < len(score) - 1:
            a, b, c = (score * self.prior)[best - 1: best + 2]
            den = a - 2 * b + c
            if den < 0:
                period += _PERIOD_STEP * 0.5 * (a - c) / den
        self.confidence = float(np.clip(score[best], 0.0, 1.0))
        if self.confidence < self.cfg.beat_min_confidence:
            self.period = math.nan
            return
        self.period = float(period)
        self._fit_phase(k)

    def _fit_phase(self, k: int) -> None:
        """The grid offset that best matches the onsets of the last few seconds; ``grid`` its first beat >= k - 1."""
        w = min(len(self.hist), int(round(_PHASE_S * FRAME_HZ)))
        o = np.asarray(self.hist)[-w:]
        o = np.maximum(o - np.median(o), 0.0)
        j = np.arange(k - w + 1, k + 1, dtype=float)
        T = self.period
        phis = np.arange(0.0, T, 0.25)
        d = (j[None, :] - phis[:, None]) % T
        d = np.minimum(d, T - d)
        score = np.exp(-0.5 * (d / _PHASE_SIGMA) ** 2) @ o
        phi = float(phis[int(np.argmax(score))])
        phi += 0.5  # an onset in frame j is a beat at j + 1/2 on average
        self.grid = phi + math.ceil((k - 1 - phi) / T) * T


class ProsodyStream:
    """Causal prosody, chunk by chunk: :meth:`push` 16 kHz mono float samples, get the frames that became complete;
    :meth:`flush` at the end of the audio (the stream is then finished: :meth:`reset` starts a new one)."""

    def __init__(self, config: ProsodyConfig | None = None):
        if config is not None and not isinstance(config, ProsodyConfig):
            raise ValueError(f"config must be a ProsodyConfig or None, got {type(config).__name__}")
        self.config = config or ProsodyConfig()
        self.reset()

    def reset(self) -> None:
        """Forget all audio: the next sample pushed is time 0."""
        cfg = self.config
        self._an = _Analyzer(cfg)
        self._beats = _BeatTracker(cfg) if cfg.beats else None
        self._buf = np.zeros(self._an.max_window)  # zeros before time 0
        self._b0 = -self._an.max_window  # absolute index of _buf[0]
        self._k = 0
        self._done = False
        self._prev_bands = np.full(24, _BAND_FLOOR_DB)
        # monotonic (frame, level) for the running minimum; the stream starts as if after quiet (threshold at the floor)
        self._noise: deque[tuple[int, float]] = deque([(-1, cfg.speech_floor_db - cfg.snr_db)])
        self._noise_n = max(1, int(round(cfg.noise_window_s * FRAME_HZ)))
        self._hang = int(math.ceil(cfg.hangover_s * FRAME_HZ - 1e-9))
        self._pause = max(1, int(math.ceil(cfg.pause_s * FRAME_HZ - 1e-9)))
        self._min_phrase = int(math.ceil(cfg.min_phrase_s * FRAME_HZ - 1e-9))
        self._last_active = -(10 ** 9)
        self._phrase_start: int | None = None
        w = max(2, int(round(cfg.stress_window_s * FRAME_HZ)))
        self._hist: deque[tuple[float, bool, float]] = deque(maxlen=w)  # (level, active, f0)
        self._stress_gap = int(round(cfg.stress_min_gap_s * FRAME_HZ))
        self._last_stress = -(10 ** 9)

    @property
    def frames_out(self) -> int:
        """Frames emitted so far."""
        return self._k

    def push(self, chunk: np.ndarray) -> list[ProsodyFrame]:
        """Append 16 kHz mono float samples; the frames completed by them (often none, or several)."""
        if self._done:
            raise RuntimeError("ProsodyStream was flushed: call reset() to start a new stream")
        x = check_audio(chunk, what="chunk", allow_empty=True)
        self._buf = np.concatenate([self._buf, x])
        out = []
        while self._b0 + len(self._buf) >= _frame_start(self._k + 1):
            out.append(self._frame())
        keep = _frame_start(self._k + 1) - self._an.max_window - self._b0
        if keep > 0:
            self._buf, self._b0 = self._buf[keep:], self._b0 + keep
        return out

    def flush(self) -> list[ProsodyFrame]:
        """The frames left at the end of the audio, the last partial one padded with silence."""
        if self._done:
            raise RuntimeError("ProsodyStream was flushed already: call reset() to start a new stream")
        n = self._b0 + len(self._buf)
        total = num_frames(n, SR, FRAME_HZ)
        out = []
        if total > self._k:
            pad = _frame_start(total) - n
            out = self.push(np.zeros(max(pad, 0)))
        self._done = True
        return out

    def _window(self, end: int, n: int) -> np.ndarray:
        return self._buf[end - n - self._b0: end - self._b0]

    def _frame(self) -> ProsodyFrame:
        k, an = self._k, self._an
        s, e = _frame_start(k), _frame_start(k + 1)
        level = an.level_db(self._window(e, e - s))
        f0 = an.pitch(self._window(e, an.n_pitch))
        bands = an.band_levels(self._window(e, _ONSET_N))
        onset = float(np.mean(np.maximum(bands - self._prev_bands, 0.0)))
        self._prev_bands = bands
        active = self._vad(k, level)
        speaking = k - self._last_active <= self._hang
        phrase_end = self._phrase(k, active)
        self._hist.append((level, active, f0))
        stress = self._stress(k)
        beat, tempo, phase, conf = False, math.nan, math.nan, 0.0
        if self._beats is not None:
            beat, tempo, phase = self._beats.update(k, onset)
            conf = self._beats.confidence
        self._k += 1
        return ProsodyFrame(k=k, energy_db=level, voiced=math.isfinite(f0), f0_hz=f0, speaking=speaking,
                            stress=stress, phrase_end=phrase_end, onset=onset, beat=beat, tempo_bpm=tempo,
                            beat_phase=phase, beat_confidence=conf)

    def _vad(self, k: int, level: float) -> bool:
        q = self._noise
        while q and q[-1][1] >= level:
            q.pop()
        q.append((k, level))
        while q[0][0] <= k - self._noise_n:
            q.popleft()
        active = level > max(self.config.speech_floor_db, q[0][1] + self.config.snr_db)
        if active:
            self._last_active = k
        return active

    def _phrase(self, k: int, active: bool) -> bool:
        if active:
            if self._phrase_start is None:
                self._phrase_start = k
            return False
        if self._phrase_start is None or k - self._last_active < self._pause:
            return False
        long_enough = self._last_active - self._phrase_start + 1 >= self._min_phrase
        self._phrase_start = None
        return long_enough

    def _stress(self, k: int) -> float:
        cfg, lag, h = self.config, self.config.stress_lag_frames, self._hist
        if len(h) < 2 * lag + 1 or k - self._last_stress < self._stress_gap:
            return 0.0
        p = len(h) - 1 - lag
        lv, act, f0 = h[p]
        if not act or not any(math.isfinite(h[i][2]) for i in range(p - 1, min(p + 2, len(h)))):
            return 0.0
        if any(h[i][0] >= lv for i in range(p - lag, p)) or any(h[i][0] > lv for i in range(p + 1, len(h))):
            return 0.0
        levels = [x[0] for x in h if x[1]]
        if len(levels) < 2 * lag + 1:
            return 0.0
        prominence = lv - sum(levels) / len(levels)
        pitches = [x[2] for x in h if x[1] and math.isfinite(x[2])]
        if math.isfinite(f0) and len(pitches) >= 3:
            prominence += cfg.stress_pitch_db_per_st * max(0.0, 12.0 * math.log2(f0 / float(np.median(pitches))))
        if prominence < cfg.stress_db:
            return 0.0
        self._last_stress = k
        return min(1.0, prominence / cfg.stress_full_db)


def prosody(audio: np.ndarray, sr: int, config: ProsodyConfig | None = None) -> list[ProsodyFrame]:
    """The prosody frames of a whole signal (``ProsodyStream`` fed it in one chunk, then flushed); ``audio`` mono
    float at ``sr`` Hz, resampled to 16 kHz (:func:`facetwin.audio.io.resample`) when ``sr`` differs."""
    x = check_audio(audio, sr, what="audio")
    if sr != SR:
        x = resample(x, sr, SR).astype(np.float64)
    stream = ProsodyStream(config)
    return stream.push(x) + stream.flush()


def prosody_arrays(frames) -> dict[str, np.ndarray]:
    """Column arrays of ``frames`` (one per :class:`ProsodyFrame` field: int64, bool or float64)."""
    frames = list(frames)
    out = {}
    for f in fields(ProsodyFrame):
        dtype = np.int64 if f.name == "k" else bool if f.name in ("voiced", "speaking", "phrase_end", "beat") \
            else np.float64
        out[f.name] = np.array([getattr(fr, f.name) for fr in frames], dtype=dtype)
    return out
