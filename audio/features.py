"""Audio features on a fixed frame grid (the 30 Hz control rate by default): log-mel spectrogram, RMS loudness and
pitch (f0 + voiced flag): the frame grid, the per-frame computation (:class:`FeatureExtractor`) and the offline
form (:func:`extract_features`). The causal form, chunk by chunk, with identical numbers, is
:class:`facetwin.audio.streaming_features.StreamingFeatures`.

Frame convention
----------------
Audio ``x`` has ``n`` samples at ``sr`` Hz (sample ``j`` at time ``j / sr``). Frame ``k`` belongs to time
``t_k = k / fps`` and there are ``T = ceil(n * fps / sr)`` frames: every ``t_k`` with ``t_k < n / sr``
(``T = ceil(duration * fps)``; 0 frames for empty audio). Its centre sample is the sample nearest ``t_k``::

    c_k = floor(k * sr / fps + 1/2)          (exact rational arithmetic; hop = sr / fps samples, e.g. 533 1/3)

Each feature looks at a window centred on ``c_k``; samples before 0 and from ``n`` on are zeros.

* spectral window, shared by the log-mel spectrogram and the RMS loudness: ``N = round(win_s * sr)`` samples with
  ``win_s = max(25 ms, 2 / fps)`` by default (30 fps: 66.7 ms = 1067 samples at 16 kHz, two hops, so that the
  windows of neighbouring frames overlap by half and every sample is seen with Hann weights summing to ~1;
  100 fps: the usual 25 ms = 400 samples). Frame ``k`` sees samples ``c_k - N//2 ... c_k - N//2 + N - 1``
  weighted by the Hann window ``w[j] = cos^2(pi * (j - N//2) / N)``, which peaks at ``c_k``.
* pitch window: ``2 * L + 1`` samples ``c_k - L ... c_k + L`` with ``L = ceil(sr / f0_min)`` (the longest period
  searched; 20 ms at 16 kHz for ``f0_min = 50`` Hz, a 40 ms window).

The lookahead is the longest right half-window: ``max(N - 1 - N//2, L)`` samples (30 fps at 16 kHz: 533 samples
= 33.3 ms; 100 fps: 320 samples = 20 ms). A frame is complete, and ``StreamingFeatures`` emits it, once
the audio up to sample ``c_k + lookahead`` (time ``t_k + lookahead_s``) has arrived; the frames whose window
runs past the end of the stream are emitted by ``flush()`` with the same zero padding as the offline form.

Features
--------
* ``logmel`` (T, n_mels) float32: ``log(mel + 1e-6)`` (natural log) of the power spectrum ``|rfft(w * frame)|^2``
  (FFT size: the next power of two >= N, no normalisation) through ``n_mels`` (80) triangular filters of peak 1
  equally spaced on the HTK mel scale ``2595 * log10(1 + f / 700)`` from ``f_min`` (0) to ``f_max`` (sr / 2).
* ``rms_db`` (T,) float32: ``10 * log10(max(sum(w * frame^2) / sum(w), 1e-10))``, dB re full scale (a full-scale
  sine reads -3.01 dB; floor -100 dB).
* ``f0_hz`` (T,) float32 and ``voiced`` (T,) bool: YIN per frame on its own pitch window: the difference function
  ``d(tau)``, the mean of ``(x_j - x_{j+tau})^2`` over all pairs inside the window (so every lag is measured
  symmetrically about ``c_k``), for lags up to ``L``; its cumulative-mean normalisation ``d'``; among the local
  minima of ``d'`` at lags ``sr / f0_max .. L``, the first one that is below ``yin_threshold`` (0.15) or within
  0.05 of the deepest one; the lag refined by parabolic interpolation of ``d``; ``f0 = sr / lag``. A frame is
  voiced when that minimum's ``d'`` (its aperiodicity) is below ``voicing_threshold`` (0.35) and the mean square
  over the pitch window is above ``voicing_floor_db`` (-60 dBFS); ``f0_hz`` is 0 in unvoiced frames. Each frame's
  pitch depends on its own window only (no tracking across frames), which is what makes the streaming form exact.

All arithmetic is float64 and the per-frame code path is shared: streaming and offline features agree to rounding
(in practice bit for bit; the tests allow 1e-6 on log-mel and RMS and demand identical voicing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from fractions import Fraction
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from facetwin.sim.rates import AUDIO_SR, CONTROL_HZ, as_fraction, check_audio

DEFAULT_SR = AUDIO_SR
DEFAULT_FPS = CONTROL_HZ
N_MELS = 80
LOG_FLOOR = 1e-6  # logmel = log(mel + LOG_FLOOR)
RMS_FLOOR = 1e-10  # mean-square floor: rms_db >= -100 dB
F0_MIN, F0_MAX = 50.0, 1000.0
YIN_THRESHOLD = 0.15  # a dip of the normalised difference d' below this is taken even if a later one is deeper
DIP_TOLERANCE = 0.05  # ... as is the first dip within this of the deepest one
VOICING_THRESHOLD = 0.35  # voiced if d' at the chosen lag (the aperiodicity) is below this
VOICING_FLOOR_DB = -60.0
BLOCK_FRAMES = 256  # frames computed per vectorised block (bounds memory on long audio)


# ---------------------------------------------------------------------------------------------------- features
@dataclass(eq=False)
class Features:
    """Per-frame audio features; frame ``i`` is at time ``t[i]`` seconds (``t = k / fps`` for frame numbers k)."""

    t: np.ndarray  # (T,) float64 seconds
    logmel: np.ndarray  # (T, n_mels) float32, natural log of mel power + 1e-6
    rms_db: np.ndarray  # (T,) float32, dB re full scale
    f0_hz: np.ndarray  # (T,) float32, 0 where unvoiced
    voiced: np.ndarray  # (T,) bool
    fps: float
    sr: int

    def __len__(self) -> int:
        return len(self.t)

    def __repr__(self) -> str:
        span = f"{self.t[0]:.3f}..{self.t[-1]:.3f} s" if len(self) else "empty"
        return f"Features({len(self)} frames at {self.fps:g} fps, {span}, {self.logmel.shape[1]} mels, sr {self.sr})"

    @property
    def frame_index(self) -> np.ndarray:
        """The frame numbers k (t = k / fps)."""
        return np.rint(self.t * self.fps).astype(np.int64)

    @property
    def n_mels(self) -> int:
        return int(self.logmel.shape[1])

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The array fields by name (for ``np.savez``), plus ``fps`` and ``sr`` as 0-d arrays."""
        return {f.name: np.asarray(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def concatenate(cls, parts: list[Features]) -> Features:
        """Consecutive pieces (e.g. what :class:`StreamingFeatures` returned) as one ``Features``."""
        if not parts:
            raise ValueError("Features.concatenate needs at least one piece")
        fps, sr = parts[0].fps, parts[0].sr
        if any(p.fps != fps or p.sr != sr for p in parts):
            raise ValueError("Features.concatenate: pieces differ in fps or sample rate")
        return cls(
            t=np.concatenate([p.t for p in parts]),
            logmel=np.concatenate([p.logmel for p in parts]),
            rms_db=np.concatenate([p.rms_db for p in parts]),
            f0_hz=np.concatenate([p.f0_hz for p in parts]),
            voiced=np.concatenate([p.voiced for p in parts]),
            fps=fps,
            sr=sr,
        )


# ---------------------------------------------------------------------------------------------------- helpers
def _good_fft_size(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (fast sizes for pocketfft)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """HTK mel scale."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(
    sr: int, n_fft: int, n_mels: int = N_MELS, f_min: float = 0.0, f_max: float | None = None
) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters of peak 1, equally spaced on the HTK mel scale."""
    f_max = sr / 2 if f_max is None else float(f_max)
    if not (0.0 <= f_min < f_max <= sr / 2):
        raise ValueError(f"mel filterbank needs 0 <= f_min < f_max <= sr/2, got f_min={f_min}, f_max={f_max}, sr={sr}")
    if n_mels < 1:
        raise ValueError(f"n_mels must be >= 1, got {n_mels}")
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    fb = np.maximum(0.0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))
    empty = np.flatnonzero(fb.max(axis=1) <= 0)
    if len(empty):
        raise ValueError(
            f"{len(empty)} of {n_mels} mel filters cover no FFT bin (n_fft={n_fft} at {sr} Hz is too coarse); "
            "use fewer mels, a higher f_min or a longer window"
        )
    return fb


# ---------------------------------------------------------------------------------------------------- extractor
class FeatureExtractor:
    """The frame grid, windows and filterbank for one (sr, fps, options) setting; computes frames from a buffer.

    Use :func:`extract_features` / :class:`StreamingFeatures` unless you need the pieces (``centres``,
    ``n_frames``, ``lookahead``) or one feature alone (:meth:`logmel`, :meth:`rms_db`, :meth:`pitch`).
    """

    def __init__(
        self,
        sr: int = DEFAULT_SR,
        fps: float = DEFAULT_FPS,
        *,
        n_mels: int = N_MELS,
        win_s: float | None = None,
        f_min: float = 0.0,
        f_max: float | None = None,
        f0_min: float = F0_MIN,
        f0_max: float = F0_MAX,
        yin_threshold: float = YIN_THRESHOLD,
        voicing_threshold: float = VOICING_THRESHOLD,
        voicing_floor_db: float = VOICING_FLOOR_DB,
    ):
        if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
            raise ValueError(f"sr must be a positive integer sample rate in Hz, got {sr!r}")
        self.sr = int(sr)
        self._fps = as_fraction(fps, "fps")
        if self._fps > self.sr:
            raise ValueError(f"fps={fps} is above the sample rate {sr}")
        self.fps = float(fps)
        hop = Fraction(self.sr) / self._fps  # samples per frame, p / q
        self._p, self._q = hop.numerator, hop.denominator

        # spectral window (log-mel, RMS)
        self.win_s = max(0.025, 2.0 / self.fps) if win_s is None else float(win_s)
        self.win = int(round(self.win_s * self.sr))
        if self.win < 2:
            raise ValueError(f"win_s={self.win_s} gives a window of {self.win} samples at {self.sr} Hz; need >= 2")
        self.win_left = self.win // 2
        m = np.arange(self.win) - self.win_left
        self.window = np.cos(np.pi * m / self.win) ** 2
        self._window_sum = float(self.window.sum())
        self.n_fft = 1 << (self.win - 1).bit_length()
        self.n_mels = int(n_mels)
        self.filterbank = mel_filterbank(self.sr, self.n_fft, self.n_mels, f_min, f_max)
        self._fb_t = np.ascontiguousarray(self.filterbank.T)  # (bins, mels)

        # pitch window (YIN)
        if not (0 < f0_min < f0_max):
            raise ValueError(f"need 0 < f0_min < f0_max, got {f0_min}, {f0_max}")
        self.f0_min, self.f0_max = float(f0_min), float(f0_max)
        self.tau_max = int(math.ceil(self.sr / self.f0_min))
        self.tau_min = max(2, int(math.floor(self.sr / self.f0_max)))
        if self.tau_min >= self.tau_max:
            raise ValueError(f"f0 range {f0_min}..{f0_max} Hz is too narrow or too high for {self.sr} Hz audio")
        self.pitch_win = 2 * self.tau_max + 1  # c_k - L .. c_k + L: lags up to L keep >= L + 1 pairs
        self.pitch_left = self.tau_max
        self._n_fft_pitch = _good_fft_size(self.pitch_win + self.tau_max + 2)  # no circular wrap up to lag L + 1
        if not (0 < yin_threshold < 1):
            raise ValueError(f"yin_threshold must be in (0, 1), got {yin_threshold}")
        self.yin_threshold = float(yin_threshold)
        if not (0 < voicing_threshold <= 1):
            raise ValueError(f"voicing_threshold must be in (0, 1], got {voicing_threshold}")
        self.voicing_threshold = float(voicing_threshold)
        self.voicing_floor_db = float(voicing_floor_db)
        self._voicing_ms = 10.0 ** (self.voicing_floor_db / 10.0)

        self.pad_left = max(self.win_left, self.pitch_left)  # zeros needed before sample 0
        self.lookahead = max(self.win - 1 - self.win_left, self.pitch_win - 1 - self.pitch_left)  # samples

    # ------------------------------------------------------------------ grid
    @property
    def lookahead_s(self) -> float:
        """Seconds of audio needed after a frame's time before the frame can be computed."""
        return self.lookahead / self.sr

    @property
    def spectral_lookahead(self) -> int:
        """Samples past a frame's centre that the log-mel / RMS window reaches (the pitch window may reach further)."""
        return self.win - 1 - self.win_left

    @property
    def hop(self) -> float:
        """Samples per frame (sr / fps, possibly fractional)."""
        return self._p / self._q

    def centres(self, k: np.ndarray) -> np.ndarray:
        """Centre sample ``c_k = floor(k * sr / fps + 1/2)`` of frames ``k`` (int64)."""
        k = np.asarray(k, dtype=np.int64)
        return (2 * k * self._p + self._q) // (2 * self._q)

    def n_frames(self, n_samples: int) -> int:
        """``T = ceil(n_samples * fps / sr)``: the frames with ``t_k < duration``."""
        return (int(n_samples) * self._q + self._p - 1) // self._p

    def frames_through(self, last_sample: int) -> int:
        """How many frames have their centre at or before sample ``last_sample`` (``c_k <= last_sample``)."""
        if last_sample < 0:
            return 0
        return ((2 * last_sample + 1) * self._q + 2 * self._p - 1) // (2 * self._p)

    def times(self, k0: int, k1: int) -> np.ndarray:
        return np.arange(k0, k1, dtype=np.float64) / self.fps

    # ------------------------------------------------------------------ per-frame computation
    @staticmethod
    def _gather(buf: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
        """(len(starts), width) copy of ``buf[s : s + width]`` for each start (a plain slice for one frame)."""
        if len(starts) == 1:
            s = int(starts[0])
            return buf[s : s + width][None, :].copy()
        return sliding_window_view(buf, width)[starts]

    def _spectral_frames(self, buf: np.ndarray, b0: int, c: np.ndarray) -> np.ndarray:
        return self._gather(buf, c - (self.win_left + b0), self.win)

    def _pitch_frames(self, buf: np.ndarray, b0: int, c: np.ndarray) -> np.ndarray:
        return self._gather(buf, c - (self.pitch_left + b0), self.pitch_win)

    def _logmel_block(self, frames: np.ndarray) -> np.ndarray:
        spec = np.fft.rfft(frames * self.window, n=self.n_fft)
        power = spec.real**2 + spec.imag**2
        return np.log(power @ self._fb_t + LOG_FLOOR).astype(np.float32)

    def _rms_block(self, frames: np.ndarray) -> np.ndarray:
        ms = (frames * frames) @ self.window / self._window_sum
        return (10.0 * np.log10(np.maximum(ms, RMS_FLOOR))).astype(np.float32)

    def _pitch_block(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """YIN on (B, pitch_win) frames -> f0 (B,) float32 (0 = unvoiced), voiced (B,) bool."""
        n_rows, n = frames.shape
        lag_max, lag_min = self.tau_max, self.tau_min
        lags = np.arange(lag_max + 2)
        # d(tau) = mean over the overlap j = 0 .. n-1-tau of (x_j - x_{j+tau})^2
        #        = (E_head(tau) + E_tail(tau) - 2 r(tau)) / (n - tau), r the autocorrelation of the whole window:
        # every lag compares pairs whose midpoints are spread symmetrically about the window centre c_k
        spec = np.fft.rfft(frames, n=self._n_fft_pitch)
        r = np.fft.irfft(spec.real**2 + spec.imag**2, n=self._n_fft_pitch)[:, : lag_max + 2]
        csum = np.zeros((n_rows, n + 1))
        np.cumsum(frames * frames, axis=1, out=csum[:, 1:])
        e_head = csum[:, n - lags]
        e_tail = csum[:, n : n + 1] - csum[:, lags]
        d = np.maximum(e_head + e_tail - 2.0 * r, 0.0) / (n - lags)
        d[:, 0] = 0.0
        mean_square = csum[:, -1] / n
        # cumulative mean normalised difference d'(tau) = d(tau) * tau / sum_{1..tau} d
        running = np.cumsum(d[:, 1:], axis=1)
        lags = np.arange(1, lag_max + 2, dtype=np.float64)
        dn = np.ones_like(d)
        ok = running > 1e-12 * (mean_square[:, None] + 1e-30)
        np.divide(d[:, 1:] * lags, running, out=dn[:, 1:], where=ok)
        # the lag: the first local minimum of d' in [lag_min, lag_max] that is below yin_threshold or within
        # DIP_TOLERANCE of the deepest local minimum (the shortest good period: no octave-down errors)
        seg = dn[:, lag_min : lag_max + 1]
        is_min = (seg < dn[:, lag_min - 1 : lag_max]) & (seg <= dn[:, lag_min + 1 : lag_max + 2])
        deepest = np.where(is_min, seg, np.inf).min(axis=1)
        good = is_min & ((seg < self.yin_threshold) | (seg <= deepest[:, None] + DIP_TOLERANCE))
        has_dip = good.any(axis=1)
        tau = lag_min + np.argmax(good, axis=1)
        rows = np.arange(n_rows)
        a, b, c = d[rows, tau - 1], d[rows, tau], d[rows, tau + 1]
        curv = a - 2.0 * b + c
        shift = np.zeros(n_rows)
        np.divide(0.5 * (a - c), curv, out=shift, where=curv > 0)
        period = tau + np.clip(shift, -1.0, 1.0)
        voiced = has_dip & (dn[rows, tau] < self.voicing_threshold) & (mean_square > self._voicing_ms)
        f0 = np.where(voiced, self.sr / period, 0.0)
        return np.where(voiced, f0, 0.0).astype(np.float32), voiced

    def compute(
        self, buf: np.ndarray, b0: int, k0: int, k1: int, what: tuple[str, ...] = ("logmel", "rms", "pitch")
    ) -> Features:
        """Frames ``k0 .. k1-1`` from ``buf`` (float64) holding absolute samples ``b0 .. b0 + len(buf) - 1``.

        ``buf`` must cover every sample the frames see (``c_k - pad_left .. c_k + lookahead``), zeros included.
        Features not in ``what`` come back as zeros.
        """
        n = max(0, k1 - k0)
        if 0 < n <= BLOCK_FRAMES:  # one block (always so when streaming): no assembling
            return Features(self.times(k0, k1), *self._block(buf, b0, k0, k1, what), self.fps, self.sr)
        logmel = np.empty((n, self.n_mels), np.float32)
        rms = np.empty(n, np.float32)
        f0 = np.empty(n, np.float32)
        voiced = np.empty(n, bool)
        for s in range(0, n, BLOCK_FRAMES):
            e = min(n, s + BLOCK_FRAMES)
            logmel[s:e], rms[s:e], f0[s:e], voiced[s:e] = self._block(buf, b0, k0 + s, k0 + e, what)
        return Features(self.times(k0, k0 + n), logmel, rms, f0, voiced, self.fps, self.sr)

    def _block(
        self, buf: np.ndarray, b0: int, k0: int, k1: int, what: tuple[str, ...]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n = k1 - k0
        c = self.centres(np.arange(k0, k1))
        logmel = rms = None
        if "logmel" in what or "rms" in what:
            frames = self._spectral_frames(buf, b0, c)
            logmel = self._logmel_block(frames) if "logmel" in what else None
            rms = self._rms_block(frames) if "rms" in what else None
        if "pitch" in what:
            f0, voiced = self._pitch_block(self._pitch_frames(buf, b0, c))
        else:
            f0, voiced = np.zeros(n, np.float32), np.zeros(n, bool)
        return (
            np.zeros((n, self.n_mels), np.float32) if logmel is None else logmel,
            np.zeros(n, np.float32) if rms is None else rms,
            f0,
            voiced,
        )

    # ------------------------------------------------------------------ offline
    def __call__(self, audio: np.ndarray, what: tuple[str, ...] = ("logmel", "rms", "pitch")) -> Features:
        """All features of a whole signal (1-D, at this extractor's ``sr``)."""
        x = check_audio(audio, allow_empty=True)
        buf = np.zeros(self.pad_left + len(x) + self.lookahead + 1)
        buf[self.pad_left : self.pad_left + len(x)] = x
        return self.compute(buf, -self.pad_left, 0, self.n_frames(len(x)), what)

    def logmel(self, audio: np.ndarray) -> np.ndarray:
        return self(audio, ("logmel",)).logmel

    def rms_db(self, audio: np.ndarray) -> np.ndarray:
        return self(audio, ("rms",)).rms_db

    def pitch(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f = self(audio, ("pitch",))
        return f.f0_hz, f.voiced


@lru_cache(maxsize=16)
def get_extractor(sr: int = DEFAULT_SR, fps: float = DEFAULT_FPS, **options) -> FeatureExtractor:
    """A cached :class:`FeatureExtractor` for these settings."""
    return FeatureExtractor(sr, fps, **options)


def extract_features(audio: np.ndarray, sr: int = DEFAULT_SR, fps: float = DEFAULT_FPS, **options) -> Features:
    """Log-mel, RMS dB, f0 and voicing of 1-D ``audio`` at ``sr`` Hz on the frame grid ``t_k = k / fps``.

    ``options``: ``n_mels`` (80), ``win_s`` (max(25 ms, 2/fps)), ``f_min`` (0), ``f_max`` (sr/2), ``f0_min`` (50),
    ``f0_max`` (1000), ``yin_threshold`` (0.15), ``voicing_threshold`` (0.35), ``voicing_floor_db`` (-60).
    See the module docstring for the exact frame convention.
    """
    return get_extractor(sr, fps, **options)(audio)
