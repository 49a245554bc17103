"""The audio front end of the audio -> lips model (:mod:`facetwin.agents.audio_to_lips`): feature rows, normalised.

40 log-mel bands and the RMS level at 90 rows/s (25 ms windows, :data:`ROWS_PER_FRAME` rows per 30 fps frame, row
``3k`` centred on ``t_k``; :mod:`facetwin.audio.features`), **normalised per recording** so that the voice, the
microphone and the level matter less: the log-mel mean over the recording's speech frames is subtracted per band,
everything more than ``FLOOR`` below it is clipped (quiet noise and digital silence look alike) and each band is
divided by its spread over the speech frames (at least ``SD_FLOOR``, over ``SD_SCALE``); the level is measured from
the recording's speech level, and a silence flag marks frames ``SILENCE_DB`` below it (or below ``ABS_FLOOR_DB``).
Offline (:func:`normalise_offline`) the statistics are those of the whole recording; streaming
(:class:`StreamNormaliser`), running ones over the speech heard so far (time constant ``STREAM_TAU_S``, starting
from the training corpus's average, which weighs as much as ``STREAM_PRIOR_FRAMES`` rows), so the stream needs no
future. A normalised row has :data:`N_FEATURES` values: the 40 bands, the level, the silence flag.

>>> logmel, rms_db = raw_features(audio16)                 # (rows, 40), (rows,)
>>> rows, pad = normalise_offline(logmel, rms_db, prior)   # (rows, 42) and the row of digital silence
"""

from __future__ import annotations

import numpy as np

from facetwin.audio.features import get_extractor
from facetwin.sim.rates import AUDIO_SR, CONTROL_HZ

FPS = CONTROL_HZ  # output frames per second (the control rate)
SR = AUDIO_SR
ROWS_PER_FRAME = 3
ROW_FPS = FPS * ROWS_PER_FRAME  # 90 feature rows per second
N_MELS = 40
WIN_S = 0.025
N_FEATURES = N_MELS + 2  # normalised log-mel, level, silence flag
MEL_GAIN = 100.0  # the log-mel is computed on the audio x this (40 dB): quiet recordings stay above its floor
FLOOR = 10.0  # log-mel values more than this (natural log of power: ~43 dB) below the speech mean are clipped
SPEECH_RANGE_DB = 45.0  # frames within this of the loudest are speech (offline) / of the running peak (stream)
SILENCE_DB = 35.0  # the silence flag: this far below the speech level
ABS_FLOOR_DB = -90.0  # frames below this (dBFS) are never speech
STREAM_TAU_S = 2.0  # time constant of the running means of the stream
PEAK_DECAY_DB_S = 3.0  # the stream's running peak falls this fast
STREAM_PRIOR_FRAMES = 20  # the stream's prior weighs as much as this many speech rows (~0.2 s)
LEVEL_SCALE_DB = 10.0


def extractor():
    """The feature extractor of the row grid (40 log-mel bands, RMS; 25 ms windows at 90 rows/s)."""
    return get_extractor(SR, ROW_FPS, n_mels=N_MELS, win_s=WIN_S)


def raw_features(audio16: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, 40) log-mel and (rows,) RMS dB of 16 kHz mono audio at 90 rows/s (row ``3k`` at ``t_k``). The log-mel
    is that of the audio x :data:`MEL_GAIN` (its floor, ``log(mel + 1e-6)``, would otherwise squash the bands of
    quiet recordings; the normalisation removes the gain)."""
    f = extractor()(np.asarray(audio16, dtype=np.float64) * MEL_GAIN, what=("logmel", "rms"))
    return f.logmel, unscaled_rms(f.rms_db)


def unscaled_rms(rms_db_scaled: np.ndarray) -> np.ndarray:
    """RMS dB of the audio from that of the audio x :data:`MEL_GAIN` (floor -100 dB, as facetwin.audio.features)."""
    return np.maximum(np.asarray(rms_db_scaled, dtype=np.float64) - 20.0 * np.log10(MEL_GAIN), -100.0)


SD_FLOOR = 0.15  # the per-band spread (natural log) is at least this, so a flat band is not blown up
SD_SCALE = 2.0  # the spread is divided by this (typical speech spreads ~2): values stay near the mean-only scale


def _speech_mask(rms_db: np.ndarray) -> np.ndarray:
    return (rms_db >= rms_db.max() - SPEECH_RANGE_DB) & (rms_db > ABS_FLOOR_DB) if len(rms_db) else np.zeros(0, bool)


def speech_stats(logmel: np.ndarray, rms_db: np.ndarray, prior: tuple) -> tuple[np.ndarray, float, np.ndarray]:
    """(log-mel mean, level dB, log-mel spread) over a recording's speech frames (``prior`` when too few)."""
    speech = _speech_mask(rms_db)
    if speech.sum() < 3:
        mu, level, sd = prior
        return np.asarray(mu, float).copy(), float(rms_db.max()) if len(rms_db) else float(level), np.asarray(sd, float)
    x = logmel[speech]
    return x.mean(axis=0), float(np.median(rms_db[speech])), np.maximum(x.std(axis=0), SD_FLOOR) / SD_SCALE


def _normalise(logmel: np.ndarray, rms_db: np.ndarray, mu: np.ndarray, level: np.ndarray | float,
               sd: np.ndarray) -> np.ndarray:
    x = np.maximum((logmel - mu) / sd, -FLOOR)
    rel = (rms_db - level) / LEVEL_SCALE_DB
    sil = (rms_db < level - SILENCE_DB) | (rms_db <= ABS_FLOOR_DB)
    return np.concatenate([x, np.maximum(rel, -FLOOR)[:, None], sil[:, None].astype(np.float64)], axis=1)


_SILENT_MEL = np.full((1, N_MELS), np.log(1e-6))


def normalise_offline(logmel: np.ndarray, rms_db: np.ndarray, prior: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(rows, 42) rows normalised with the whole recording's speech statistics (mean and spread per band, level),
    and the padding row (digital silence under the same normalisation). ``prior``: (mean, level, spread) used
    when the recording has (almost) no speech."""
    mu, level, sd = speech_stats(logmel, rms_db, prior)
    return _normalise(logmel, rms_db, mu, level, sd), _normalise(_SILENT_MEL, np.array([-100.0]), mu, level, sd)[0]


class StreamNormaliser:
    """Causal normalisation: running mean and spread per band and running level over the speech heard so far
    (see the module docstring), starting from ``prior`` = (mean, level, spread)."""

    def __init__(self, prior: tuple):
        self.prior = tuple(np.array(p, dtype=np.float64) for p in prior)
        self.reset()

    def reset(self) -> None:
        mu, level, sd = self.prior
        self.mu = mu.copy()
        self.sq = (SD_SCALE * sd) ** 2 + mu ** 2  # running mean of squares
        self.level = float(level)
        self.peak = -100.0
        self.n_speech = 0

    @property
    def sd(self) -> np.ndarray:
        return np.maximum(np.sqrt(np.maximum(self.sq - self.mu ** 2, 0.0)), SD_FLOOR) / SD_SCALE

    def __call__(self, logmel: np.ndarray, rms_db: np.ndarray) -> np.ndarray:
        out = np.empty((len(rms_db), N_FEATURES))
        a = 1.0 / (STREAM_TAU_S * ROW_FPS)
        decay = PEAK_DECAY_DB_S / ROW_FPS
        for i in range(len(rms_db)):
            r = float(rms_db[i])
            self.peak = max(r, self.peak - decay)
            if r > ABS_FLOOR_DB and r >= self.peak - SPEECH_RANGE_DB:
                self.n_speech += 1
                w = max(a, 1.0 / (self.n_speech + STREAM_PRIOR_FRAMES))  # the prior counts as a few frames
                x = np.asarray(logmel[i], dtype=np.float64)
                self.mu += w * (x - self.mu)
                self.sq += w * (x * x - self.sq)
                self.level += w * (r - self.level)
            out[i] = _normalise(logmel[i:i + 1], rms_db[i:i + 1], self.mu, self.level, self.sd)[0]
        return out

    def pad_row(self) -> np.ndarray:
        return _normalise(_SILENT_MEL, np.array([-100.0]), self.mu, self.level, self.sd)[0]


def normalise_stream(logmel: np.ndarray, rms_db: np.ndarray, prior: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(rows, 42) causally normalised rows (:class:`StreamNormaliser`) and the padding row before the first row."""
    n = StreamNormaliser(prior)
    pad = n.pad_row()
    return n(logmel, rms_db), pad


__all__ = ["FLOOR", "FPS", "MEL_GAIN", "N_FEATURES", "N_MELS", "ROWS_PER_FRAME", "ROW_FPS", "SR", "WIN_S",
           "StreamNormaliser", "extractor", "normalise_offline", "normalise_stream", "raw_features", "speech_stats",
           "unscaled_rms"]
