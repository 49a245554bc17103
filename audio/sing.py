"""Singing: lyrics + melody -> a sung waveform with its phoneme timeline (espeak-ng speech re-timed and re-pitched
with the WORLD vocoder, ``pyworld``).

>>> utt = sing("twinkle")                       # Utterance (tts.Utterance): audio, sr, timeline, text, lang
>>> utt = sing("frere_jacques", "de", tempo_bpm=90, transpose=2)
>>> list_songs()                                # facetwin.audio.songs
['frere_jacques', 'happy_birthday', 'ode_to_joy', 'twinkle']

Method
    The lyrics are cut into words (syllables joined by a trailing ``-``); each word is spoken by
    :func:`facetwin.audio.tts.synthesize` in the song's language and analysed with WORLD (DIO + StoneMask f0,
    CheapTrick spectral envelope, D4C aperiodicity, 5 ms frames). The word's phones are split into its sung
    syllables at the vowels (one vowel nucleus per syllable; between two nuclei a single consonant goes to the
    next syllable, of two or more the first stays with the previous one). If espeak gives a word fewer vowels
    than it has syllables, each syllable is spoken on its own instead. Each syllable is then laid on its note
    (plus any held ``-`` notes): its consonants keep their natural length (squeezed to at most half the note when
    the note is short), the vowel takes the rest of the note (its first and last 25 ms, the transitions, stay at
    natural speed; the steady middle is stretched). f0 is set to the note's pitch with a glide between notes
    (raised-cosine, 60 ms, at most a third of the shorter note) and a vibrato (5.5 Hz, +-20 cents, fading in
    from 0.15 s to 0.3 s into each note); unvoiced frames stay unvoiced. All frames are resynthesized in one
    pass, so the output lasts exactly the melody's duration (to one 5 ms frame). Onsets fall on the beat: the
    first consonant of a syllable starts at its note's start.

    The timeline (:class:`facetwin.audio.timeline.Timeline`) holds every spoken phone at its new place, with the
    lyric word it belongs to; rests are gaps.

Song files and lyric tokens: :mod:`facetwin.audio.songs`.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from .songs import HOLD, Song, load_song, parse_token
from .timeline import Phone, Timeline
from .tts import Utterance, synthesize, text_words


def load_pyworld():
    """pyworld, imported quietly (its __init__ imports setuptools' deprecated pkg_resources)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        import pyworld
    return pyworld

__all__ = ["sing", "midi_to_hz", "is_vowel", "FRAME_PERIOD_MS"]

FRAME_PERIOD_MS = 5.0
FFT_SIZE = 1024  # CheapTrick / D4C at 22050 Hz
F0_FLOOR, F0_CEIL = 60.0, 700.0  # analysis of the spoken words
GLIDE_S = 0.06
VIBRATO_HZ = 5.5
VIBRATO_CENTS = 20.0
VIBRATO_DELAY_S, VIBRATO_RAMP_S = 0.15, 0.15
EDGE_S = 0.025  # vowel transitions kept at natural speed
MAX_CONSONANT_SHARE = 0.5  # consonants take at most this share of a note

_VOWELS = set("aeiouyæɑɒɐəɘɚɛɜɝɞɤɨɪʉʊʌɯɵøœɶɔʏᵻʅɿɷ")


def midi_to_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


# ----------------------------------------------------------------------------------------------- phones
def is_vowel(label: str) -> bool:
    """Whether an IPA phone label is a vowel (or diphthong, r-coloured or syllabic consonant): a syllable nucleus."""
    d = unicodedata.normalize("NFD", label)
    return any(c in _VOWELS for c in d) or "\u0329" in d  # syllabic consonants (n̩) count as nuclei


@dataclass
class _Spoken:
    """One spoken chunk (a word, or a syllable spoken alone) and its WORLD analysis."""

    phones: list[Phone]
    sr: int
    f0: np.ndarray  # voiced where > 0 (vowel gaps filled)
    log_sp: np.ndarray
    ap: np.ndarray


@dataclass
class _Syllable:
    phones: list[Phone]  # in the source chunk's time base
    nucleus: int  # index into phones
    src: _Spoken
    words: list[str]  # written word per phone


@dataclass
class _Event:
    """A sung syllable (or a rest): its note segments [(start_s, end_s, midi)]."""

    start: float
    end: float
    segments: list[tuple[float, float, int]] = field(default_factory=list)
    syllable: int | None = None  # index into the syllables list; None for a rest


def _analyse(utt: Utterance) -> _Spoken:
    pyworld = load_pyworld()

    x = utt.audio.astype(np.float64)
    fp = FRAME_PERIOD_MS
    f0, t = pyworld.dio(x, utt.sr, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=fp)
    f0 = pyworld.stonemask(x, f0, t, utt.sr)
    voiced = f0 > 0
    # vowels are voiced: fill DIO's dropouts inside them (from neighbouring voiced frames) before CheapTrick/D4C
    vowel = np.zeros(len(f0), bool)
    for p in utt.timeline:
        if is_vowel(p.phoneme):
            vowel[int(p.start * 1000 / fp): int(math.ceil(p.end * 1000 / fp)) + 1] = True
    vowel = vowel[: len(f0)]
    fill = vowel & ~voiced
    if fill.any():
        if voiced.any():
            idx = np.flatnonzero(voiced)
            f0[fill] = np.interp(np.flatnonzero(fill), idx, f0[idx])
        else:
            f0[fill] = 120.0
    sp = pyworld.cheaptrick(x, f0, t, utt.sr, fft_size=FFT_SIZE)
    ap = pyworld.d4c(x, f0, t, utt.sr, fft_size=FFT_SIZE)
    return _Spoken(phones=list(utt.timeline), sr=utt.sr, f0=f0, log_sp=np.log(np.maximum(sp, 1e-16)), ap=ap)


def _split_syllables(phones: list[Phone], n: int) -> list[tuple[list[Phone], int]] | None:
    """Split a word's phones into ``n`` syllables around vowel nuclei: [(phones, nucleus index)], or None when
    there are fewer nuclei than syllables."""
    if not phones:
        return None
    vow = [i for i, p in enumerate(phones) if is_vowel(p.phoneme)]
    if n == 1:
        cand = vow or list(range(len(phones)))
        return [(phones, max(cand, key=lambda i: phones[i].duration))]
    if len(vow) < n:
        return None
    groups = [vow[round(k * len(vow) / n): round((k + 1) * len(vow) / n)] for k in range(n)]
    cuts = [0]
    for k in range(n - 1):
        v, w = groups[k][-1], groups[k + 1][0]
        c = w - v - 1  # consonants between the two nuclei
        cuts.append(w if c <= 1 else v + 2)
    cuts.append(len(phones))
    out = []
    for k in range(n):
        a, b = cuts[k], cuts[k + 1]
        nuc = max(groups[k], key=lambda i: phones[i].duration)
        out.append((phones[a:b], nuc - a))
    return out


# ----------------------------------------------------------------------------------------------- singing
def _plan(song: Song, lang: str, tempo: float) -> tuple[list[_Event], list[list[tuple[int, str, str]]]]:
    """Note events (syllables with their held notes, rests) and words [(syllable index, written, sung)]."""
    beat = 60.0 / tempo
    events: list[_Event] = []
    words: list[list[tuple[int, str, str]]] = []
    t = 0.0
    n_syl = 0
    open_word = False
    for tok, note in zip(song.lyrics[lang], song.notes):
        t1 = t + note.beats * beat
        if note.is_rest:
            events.append(_Event(t, t1))
        elif tok == HOLD:
            ev = events[-1]
            ev.end = t1
            ev.segments.append((t, t1, note.pitch))
        else:
            written, sung, cont = parse_token(tok)
            events.append(_Event(t, t1, [(t, t1, note.pitch)], syllable=n_syl))
            if not open_word:
                words.append([])
            words[-1].append((n_syl, written, sung))
            open_word = cont
            n_syl += 1
        t = t1
    return events, words


def _written_words(parts: list[str]) -> list[str]:
    """The lyric words of one word group (syllables concatenated; ``_`` separates words)."""
    return text_words("".join(parts).replace("_", " ")) or ["".join(parts)]


def _syllables(words, lang: str, cache: dict) -> list[_Syllable | None]:
    def spoken(text: str) -> _Spoken | None:
        if text not in cache:
            try:
                cache[text] = _analyse(synthesize(text, lang))
            except ValueError:  # nothing pronounceable
                cache[text] = None
        return cache[text]

    out: dict[int, _Syllable | None] = {}
    for word in words:
        idx = [i for i, _w, _s in word]
        written = _written_words([w for _i, w, _s in word])
        sung = "".join(s for _i, _w, s in word).replace("_", " ")
        src = spoken(sung)
        split = _split_syllables(src.phones, len(word)) if src is not None else None
        if split is not None:
            # the sung chunk's words (espeak's) map onto the written ones when they match in number
            sung_words = list(dict.fromkeys(p.word for p in src.phones))
            wmap = dict(zip(sung_words, written)) if len(sung_words) == len(written) else {}
            for i, (ph, nuc) in zip(idx, split):
                out[i] = _Syllable(ph, nuc, src, [wmap.get(p.word, " ".join(written)) for p in ph])
            continue
        for i, (_i, w, s) in zip(idx, word):  # fewer vowels than syllables: each syllable on its own
            one = spoken(s.replace("_", " "))
            sp = _split_syllables(one.phones, 1) if one is not None else None
            out[i] = _Syllable(sp[0][0], sp[0][1], one, [" ".join(written)] * len(sp[0][0])) if sp else None
    return [out[i] for i in range(len(out))]


def _time_map(syl: _Syllable, dur: float) -> tuple[np.ndarray, np.ndarray]:
    """Knots (output seconds from note start, source seconds) of the syllable's piecewise-linear time warp."""
    ph = syl.phones
    s0, s1 = ph[0].start, ph[-1].end
    n0, n1 = ph[syl.nucleus].start, ph[syl.nucleus].end
    on, co, nu = n0 - s0, s1 - n1, n1 - n0
    cons = on + co
    scale = min(1.0, MAX_CONSONANT_SHARE * dur / cons) if cons > 0 else 1.0
    on2, co2 = on * scale, co * scale
    nu2 = dur - on2 - co2
    out, src = [0.0, on2], [s0, n0]
    e = min(EDGE_S, nu / 4, nu2 / 4)
    if nu2 > nu and e > 0:
        out += [on2 + e, on2 + nu2 - e]
        src += [n0 + e, n1 - e]
    out += [on2 + nu2, dur]
    src += [n1, s1]
    out, src = np.array(out), np.array(src)
    keep = np.concatenate([[True], (np.diff(out) > 1e-9) & (np.diff(src) > 1e-9)])
    out, src = out[keep], src[keep]
    out[-1], src[-1] = dur, s1
    return out, src


def _pitch_track(events: list[_Event], n_frames: int, fp: float, transpose: float) -> np.ndarray:
    """Target f0 (Hz) per output frame: note pitches with glides and vibrato (NaN where nothing is sung)."""
    midi = np.full(n_frames, np.nan)
    vib = np.zeros(n_frames)
    t = np.arange(n_frames) * fp
    segs = [(a, b, m) for ev in events for (a, b, m) in ev.segments]
    for a, b, m in segs:
        i0, i1 = int(round(a / fp)), min(int(round(b / fp)), n_frames)
        midi[i0:i1] = m
        tt = t[i0:i1] - a
        depth = VIBRATO_CENTS / 100.0 * np.clip((tt - VIBRATO_DELAY_S) / VIBRATO_RAMP_S, 0.0, 1.0)
        vib[i0:i1] = depth * np.sin(2 * np.pi * VIBRATO_HZ * tt)
    # glides between consecutive notes with no rest between them
    for (a0, b0, m0), (a1, b1, m1) in zip(segs, segs[1:]):
        if abs(b0 - a1) > 1e-9 or m0 == m1:
            continue
        half = min(GLIDE_S / 2, (b0 - a0) / 3, (b1 - a1) / 3)
        i0, i1 = int(round((b0 - half) / fp)), min(int(round((b0 + half) / fp)), n_frames)
        if i1 <= i0:
            continue
        u = (t[i0:i1] - (b0 - half)) / (2 * half)
        midi[i0:i1] = m0 + (m1 - m0) * (0.5 - 0.5 * np.cos(np.pi * np.clip(u, 0, 1)))
    return np.where(np.isnan(midi), np.nan, 440.0 * 2.0 ** ((midi + vib + transpose - 69.0) / 12.0))


def sing(song_or_name: Song | str, lang: str | None = None, *, tempo_bpm: float | None = None,
         transpose: float = 0) -> Utterance:
    """Sing a song (a :class:`Song` or the name of a shipped one) in ``lang`` (default: the song's first lyric
    language) at ``tempo_bpm`` (default: the song's), ``transpose`` semitones up (negative: down).

    Returns a :class:`facetwin.audio.tts.Utterance` at espeak's rate whose audio lasts the melody's duration and
    whose timeline holds the sung phones (words: the lyric words; rests are gaps).
    """
    pyworld = load_pyworld()

    song = song_or_name if isinstance(song_or_name, Song) else load_song(song_or_name)
    if lang is None:
        lang = song.languages[0]
    if lang not in song.lyrics:
        raise ValueError(f"song {song.name!r} has no lyrics in {lang!r}: it has {', '.join(song.languages)}")
    tempo = float(song.tempo_bpm if tempo_bpm is None else tempo_bpm)
    if not 0 < tempo < 1000:
        raise ValueError(f"tempo_bpm must be in (0, 1000), got {tempo_bpm!r}")
    transpose = float(transpose)
    if not -36 <= transpose <= 36:
        raise ValueError(f"transpose must be within +-36 semitones, got {transpose!r}")

    events, words = _plan(song, lang, tempo)
    syllables = _syllables(words, lang, {})
    fp = FRAME_PERIOD_MS / 1000.0
    total = events[-1].end
    n_frames = int(round(total / fp))
    sr = next((s.src.sr for s in syllables if s is not None), 22050)
    n_bins = FFT_SIZE // 2 + 1
    log_sp = np.full((n_frames, n_bins), np.log(1e-16))
    ap = np.ones((n_frames, n_bins))
    voiced = np.zeros(n_frames, bool)
    phones: list[Phone] = []
    end_s = int(round(total * sr)) / sr  # the audio's length
    for ev in events:
        syl = syllables[ev.syllable] if ev.syllable is not None else None
        if syl is None:
            continue
        i0, i1 = int(round(ev.start / fp)), min(int(round(ev.end / fp)), n_frames)
        dur = (i1 - i0) * fp
        if i1 <= i0:
            continue
        out_k, src_k = _time_map(syl, dur)
        q = np.interp(np.arange(i1 - i0) * fp, out_k, src_k) / fp  # fractional source frame
        src = syl.src
        last = len(src.f0) - 1
        j = np.clip(np.floor(q).astype(int), 0, last)
        j2 = np.minimum(j + 1, last)
        w = np.clip(q - j, 0.0, 1.0)[:, None]
        log_sp[i0:i1] = (1 - w) * src.log_sp[j] + w * src.log_sp[j2]
        ap[i0:i1] = (1 - w) * src.ap[j] + w * src.ap[j2]
        voiced[i0:i1] = src.f0[np.clip(np.rint(q).astype(int), 0, last)] > 0
        base = i0 * fp
        for p, word in zip(syl.phones, syl.words):
            a = min(base + float(np.interp(p.start, src_k, out_k)), end_s)
            b = min(base + float(np.interp(p.end, src_k, out_k)), end_s)
            if b - a > 1e-6:
                phones.append(Phone(a, b, p.phoneme, word))
    f0 = _pitch_track(events, n_frames, fp, transpose)
    f0 = np.where(voiced & ~np.isnan(f0), f0, 0.0)
    audio = pyworld.synthesize(f0, np.exp(log_sp), ap, sr, FRAME_PERIOD_MS)
    n_samples = int(round(total * sr))
    audio = np.pad(audio, (0, max(0, n_samples - len(audio))))[:n_samples]
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak > 0.99:
        audio *= 0.99 / peak
    text = " ".join(" ".join(_written_words([w for _i, w, _s in word])) for word in words)
    return Utterance(audio=audio.astype(np.float32), sr=sr, timeline=Timeline(phones), text=text, lang=lang)

