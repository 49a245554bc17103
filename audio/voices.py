"""Voice diversity for training data: who speaks, how, and through what channel.

A lip-sync model trained on one synthetic voice learns that voice. Every training utterance is therefore spoken
by a :class:`Voice` and heard through a :class:`Channel`, both drawn per item from seeded ranges:

| part | what varies | how |
|---|---|---|
| speaker | espeak-ng's voice variants (``m1``..``m8``, ``f1``..``f5``, ``klatt``.., named voices: :func:`espeak_variants`), speaking rate and pitch | espeak-ng (``facetwin.audio.tts.synthesize(variant=...)``) |
| vocal tract | the spectral envelope's frequency axis warped by ``vtl`` (0.85-1.18: a longer or shorter vocal tract, a different-sounding speaker) | WORLD analysis / resynthesis (``pyworld``): :func:`world_perturb` |
| prosody | f0 scaled by ``f0`` (0.7-1.4), tempo by ``tempo`` (0.8-1.25; the phone times scale with it) | WORLD |
| channel | additive noise (white, pink, brown, speech-shaped babble) at an SNR, reverberation (RT60), a band limit (telephone, 4 kHz, 8 kHz), a tilt, the level | :func:`apply_channel` |

The variants are split once and for all (:data:`HELDOUT_VARIANTS`): a model trained on the ``train`` variants is
scored on voices it never heard (the corpus split ``heldout_voice``). Every draw is a pure function of its seed.

>>> v = Voice(variant="m3", vtl=1.08, f0=0.9, tempo=1.1)
>>> audio, tl = world_perturb(audio, sr, timeline, v.vtl, v.f0, v.tempo)
>>> audio = apply_channel(audio, sr, Channel(snr_db=20, noise="pink", rt60_s=0.3), seed=1)
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from .timeline import Phone, Timeline

#: espeak-ng voice variants that are not speakers (effects, robots, broken): never used
EXCLUDED_VARIANTS = frozenset({
    "Demonic", "UniRobot", "anikaRobot", "robosoft", "robosoft2", "robosoft3", "robosoft4", "robosoft5",
    "robosoft6", "robosoft7", "robosoft8", "Tweaky", "croak", "fast", "kaukovalta", "AnxiousAndy",
})
#: variants no training corpus uses: the held-out voices (men, women, the Klatt synthesizer, whisper)
HELDOUT_VARIANTS = ("m4", "f4", "klatt4", "Alicia", "benjamin", "grandma", "steph2", "whisperf", "iven3", "Mario")
NOISES = ("white", "pink", "brown", "babble")
VTL_RANGE = (0.86, 1.16)
F0_RANGE = (0.72, 1.38)
TEMPO_RANGE = (0.82, 1.22)
WORLD_FRAME_MS = 5.0


@dataclass(frozen=True)
class Voice:
    """Who speaks: an espeak-ng variant ("" = the language's default voice) and the WORLD perturbation."""

    variant: str = ""
    rate_wpm: int | None = None
    pitch: int | None = None
    vtl: float = 1.0  # > 1: formants up (shorter vocal tract)
    f0: float = 1.0  # pitch factor
    tempo: float = 1.0  # > 1: faster (durations / tempo)
    kokoro: str = ""  # a Kokoro voice or blend ("jm_kumo", "jf_alpha:0.6+jm_kumo:0.4"): the neural voice speaks

    @property
    def perturbed(self) -> bool:
        return (self.vtl, self.f0, self.tempo) != (1.0, 1.0, 1.0)

    def kokoro_blend(self) -> dict[str, float]:
        """The Kokoro blend as ``{voice: weight}``."""
        out = {}
        for part in self.kokoro.split("+"):
            name, _, w = part.partition(":")
            out[name] = float(w) if w else 1.0
        return out

    def name(self) -> str:
        """A short description, e.g. ``"espeak+m3 vtl1.08 f0x0.90 tempo1.10"``."""
        s = f"kokoro:{self.kokoro}" if self.kokoro else "espeak" + (f"+{self.variant}" if self.variant else "")
        if self.perturbed:
            s += f" vtl{self.vtl:.2f} f0x{self.f0:.2f} tempo{self.tempo:.2f}"
        return s


@dataclass(frozen=True)
class Channel:
    """What the voice goes through before the microphone (all off by default)."""

    snr_db: float | None = None  # additive noise at this speech-to-noise ratio (None: none)
    noise: str = "pink"
    rt60_s: float = 0.0  # reverberation time (0: dry)
    lowpass_hz: float | None = None
    highpass_hz: float | None = None
    tilt_db: float = 0.0  # spectral tilt: dB per octave above 1 kHz (a darker or brighter microphone)
    gain_db: float = 0.0

    def name(self) -> str:
        parts = []
        if self.snr_db is not None:
            parts.append(f"{self.noise} {self.snr_db:.0f}dB")
        if self.rt60_s > 0:
            parts.append(f"rt60 {self.rt60_s:.2f}s")
        if self.lowpass_hz or self.highpass_hz:
            parts.append(f"band {self.highpass_hz or 0:.0f}-{self.lowpass_hz or 0:.0f}Hz")
        if self.tilt_db:
            parts.append(f"tilt {self.tilt_db:+.1f}dB/oct")
        return ", ".join(parts) or "clean"

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=1)
def espeak_variants() -> tuple[str, ...]:
    """The espeak-ng voice variants shipped with espeakng-loader that are speakers (not effects)."""
    import espeakng_loader

    d = os.path.join(espeakng_loader.get_data_path(), "voices", "!v")
    names = sorted(n for n in os.listdir(d) if " " not in n and n not in EXCLUDED_VARIANTS)
    return tuple(names)


def train_variants() -> tuple[str, ...]:
    """The variants training corpora draw from (every speaker variant but :data:`HELDOUT_VARIANTS`)."""
    held = set(HELDOUT_VARIANTS)
    return tuple(v for v in espeak_variants() if v not in held)


# ---------------------------------------------------------------------------------------------------- WORLD
def _warp_axis(spec: np.ndarray, alpha: float) -> np.ndarray:
    """Spectral envelope (frames, bins) with the frequency axis scaled by ``alpha``: new(f) = old(f / alpha)."""
    n = spec.shape[1]
    src = np.clip(np.arange(n) / alpha, 0, n - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    w = src - i0
    return spec[:, i0] * (1 - w) + spec[:, i1] * w


def world_perturb(audio: np.ndarray, sr: int, timeline: Timeline, vtl: float = 1.0, f0: float = 1.0,
                  tempo: float = 1.0) -> tuple[np.ndarray, Timeline]:
    """Resynthesize ``audio`` with WORLD: envelope frequency axis x ``vtl``, f0 x ``f0``, ``tempo`` x faster.
    Returns the new audio (float32, same ``sr``) and the timeline with its times divided by ``tempo``."""
    from .sing import load_pyworld

    for name, v, (lo, hi) in (("vtl", vtl, (0.5, 2.0)), ("f0", f0, (0.25, 4.0)), ("tempo", tempo, (0.25, 4.0))):
        if not lo <= float(v) <= hi:
            raise ValueError(f"{name} must be in [{lo}, {hi}], got {v!r}")
    pw = load_pyworld()
    x = np.ascontiguousarray(np.asarray(audio, dtype=np.float64))
    f0_track, t = pw.dio(x, sr, frame_period=WORLD_FRAME_MS)
    f0_track = pw.stonemask(x, f0_track, t, sr)
    sp = pw.cheaptrick(x, f0_track, t, sr)
    ap = pw.d4c(x, f0_track, t, sr)
    if vtl != 1.0:
        sp = _warp_axis(sp, vtl)
        ap = _warp_axis(ap, vtl)
    f0_new = f0_track * f0
    if tempo != 1.0:
        n_out = max(2, int(round(len(f0_track) / tempo)))
        src = np.arange(n_out) * tempo
        idx = np.clip(np.rint(src).astype(int), 0, len(f0_track) - 1)
        f0_new = f0_new[idx]  # nearest frame: keeps voicing on/off sharp
        j0 = np.clip(np.floor(src).astype(int), 0, len(sp) - 1)
        j1 = np.minimum(j0 + 1, len(sp) - 1)
        w = np.clip(src - j0, 0.0, 1.0)[:, None]
        sp = np.exp((1 - w) * np.log(sp[j0] + 1e-16) + w * np.log(sp[j1] + 1e-16))
        ap = (1 - w) * ap[j0] + w * ap[j1]
    y = pw.synthesize(np.ascontiguousarray(f0_new), np.ascontiguousarray(sp), np.ascontiguousarray(ap), sr,
                      WORLD_FRAME_MS)
    n_target = int(round(len(x) / tempo))
    y = np.pad(y, (0, max(0, n_target - len(y))))[:n_target]
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    if peak > 0.99:
        y *= 0.99 / peak
    end = n_target / sr
    phones = []
    for p in timeline:
        a, b = min(p.start / tempo, end), min(p.end / tempo, end)
        if b - a > 1e-6:
            phones.append(Phone(a, b, p.phoneme, p.word))
    return y.astype(np.float32), Timeline(phones)


# ---------------------------------------------------------------------------------------------------- channel
def _noise(kind: str, n: int, sr: int, rng: np.random.Generator, babble_src: np.ndarray | None) -> np.ndarray:
    if kind == "babble" and babble_src is not None and len(babble_src) > sr // 2:
        # several time-shifted, reversed copies of speech: speech-shaped, unintelligible
        out = np.zeros(n)
        for _ in range(4):
            src = babble_src[::-1] if rng.random() < 0.5 else babble_src
            off = int(rng.integers(0, len(src)))
            out += np.resize(np.roll(src, off), n)
        return out
    white = rng.standard_normal(n)
    if kind == "white" or kind == "babble":
        return white
    spec = np.fft.rfft(white)
    f = np.fft.rfftfreq(n, 1.0 / sr)
    f[0] = f[1] if n > 1 else 1.0
    spec /= np.sqrt(f) if kind == "pink" else f  # pink 1/f power, brown 1/f^2
    return np.fft.irfft(spec, n)


def _rir(rt60_s: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room impulse response: the direct path, then exponentially decaying noise (-60 dB at rt60)."""
    n = max(2, int(rt60_s * sr))
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60_s)
    pre = int(0.003 * sr)  # first reflections arrive ~3 ms after the direct sound
    tail[:pre] = 0.0
    h = 0.5 * tail / (np.sqrt(np.sum(tail ** 2)) + 1e-12)
    h[0] = 1.0
    return h


def apply_channel(audio: np.ndarray, sr: int, channel: Channel, seed: int = 0) -> np.ndarray:
    """``audio`` through ``channel`` (reverberation, then band limit and tilt, then noise, then gain); float32,
    same length, peak-limited to 0.99."""
    from scipy.signal import butter, fftconvolve, sosfilt

    rng = np.random.default_rng(seed)
    x = np.asarray(audio, dtype=np.float64)
    n = len(x)
    if n == 0:
        return x.astype(np.float32)
    if channel.rt60_s > 0:
        x = fftconvolve(x, _rir(channel.rt60_s, sr, rng))[:n]
    if channel.highpass_hz:
        x = sosfilt(butter(4, channel.highpass_hz, "highpass", fs=sr, output="sos"), x)
    if channel.lowpass_hz and channel.lowpass_hz < sr / 2:
        x = sosfilt(butter(6, channel.lowpass_hz, "lowpass", fs=sr, output="sos"), x)
    if channel.tilt_db:
        spec = np.fft.rfft(x)
        f = np.maximum(np.fft.rfftfreq(n, 1.0 / sr), 1000.0)
        spec *= 10.0 ** (channel.tilt_db * np.log2(f / 1000.0) / 20.0)
        x = np.fft.irfft(spec, n)
    if channel.snr_db is not None:
        speech_power = float(np.mean(x[np.abs(x) > 0.05 * np.max(np.abs(x))] ** 2)) if np.any(x) else 0.0
        nz = _noise(channel.noise, n, sr, rng, np.asarray(audio, dtype=np.float64))
        nz *= np.sqrt(speech_power / (np.mean(nz ** 2) + 1e-20) / 10.0 ** (channel.snr_db / 10.0))
        x = x + nz
    x *= 10.0 ** (channel.gain_db / 20.0)
    peak = float(np.max(np.abs(x)))
    if peak > 0.99:
        x *= 0.99 / peak
    return x.astype(np.float32)


# ---------------------------------------------------------------------------------------------------- draws
def draw_voice(rng: np.random.Generator, variants: tuple[str, ...], *, perturb_p: float = 0.6) -> Voice:
    """A random :class:`Voice`: a variant from ``variants`` ("" = default voice, a share of 1 / (n + 1)), rate
    135-195 wpm, pitch 30-70, and with probability ``perturb_p`` a WORLD perturbation in the module's ranges."""
    pool = ("", *variants)
    variant = pool[int(rng.integers(len(pool)))]
    rate, pitch = int(rng.integers(135, 196)), int(rng.integers(30, 71))
    if rng.random() < perturb_p:
        vtl = float(np.exp(rng.uniform(np.log(VTL_RANGE[0]), np.log(VTL_RANGE[1]))))
        f0 = float(np.exp(rng.uniform(np.log(F0_RANGE[0]), np.log(F0_RANGE[1]))))
        tempo = float(np.exp(rng.uniform(np.log(TEMPO_RANGE[0]), np.log(TEMPO_RANGE[1]))))
        return Voice(variant, rate, pitch, round(vtl, 3), round(f0, 3), round(tempo, 3))
    return Voice(variant, rate, pitch)


def draw_kokoro_voice(rng: np.random.Generator, voices: tuple[str, ...], *, perturb_p: float = 0.5) -> Voice:
    """A random Kokoro speaker: one of ``voices`` or a blend of two or three (new speakers between them), speed
    0.8-1.1 (as ``rate_wpm`` / 175), and with probability ``perturb_p`` a WORLD perturbation."""
    k = int(rng.integers(1, min(3, len(voices)) + 1))
    names = sorted(rng.choice(len(voices), size=k, replace=False))
    w = rng.dirichlet(np.ones(k))
    spec = "+".join(f"{voices[i]}:{wi:.2f}" for i, wi in zip(names, w)) if k > 1 else voices[names[0]]
    rate = int(rng.integers(140, 195))
    base = draw_voice(rng, (), perturb_p=perturb_p)
    return Voice("", rate, None, base.vtl, base.f0, base.tempo, kokoro=spec)


def draw_channel(rng: np.random.Generator, *, clean_p: float = 0.3) -> Channel:
    """A random :class:`Channel` (clean with probability ``clean_p``; otherwise each effect independently)."""
    if rng.random() < clean_p:
        return Channel(gain_db=round(float(rng.uniform(-12, 6)), 1))
    snr = round(float(rng.uniform(5, 35)), 1) if rng.random() < 0.6 else None
    noise = NOISES[int(rng.integers(len(NOISES)))]
    rt60 = round(float(rng.uniform(0.15, 0.7)), 2) if rng.random() < 0.4 else 0.0
    band = rng.random()
    lowpass = 3400.0 if band < 0.12 else 4000.0 if band < 0.22 else 7000.0 if band < 0.35 else None
    highpass = 300.0 if lowpass == 3400.0 else (round(float(rng.uniform(60, 200))) if rng.random() < 0.3 else None)
    tilt = round(float(rng.uniform(-4, 3)), 1) if rng.random() < 0.4 else 0.0
    return Channel(snr, noise, rt60, lowpass, highpass, tilt, round(float(rng.uniform(-12, 6)), 1))


__all__ = ["EXCLUDED_VARIANTS", "HELDOUT_VARIANTS", "Channel", "Voice", "apply_channel", "draw_channel",
           "draw_kokoro_voice", "draw_voice", "espeak_variants", "train_variants", "world_perturb"]
