"""Forced alignment of English speech to its transcript with pocketsphinx 5 (CMU Sphinx, offline).

:func:`align` turns ``(audio, sr, transcript)`` into a :class:`~facetwin.audio.timeline.Timeline` of IPA phones with
their words, the same contract the TTS produces, so a recording of a real speaker can drive the face exactly like
synthesized speech. :func:`align_file` does the same for an audio file (:func:`facetwin.audio.io.load_audio`).

>>> tl = align(audio, 16000, "Hello world.")
>>> [(round(p.start, 2), p.phoneme, p.word) for p in tl][:3]
[(0.0, 'h', 'Hello'), (0.07, 'ə', 'Hello'), (0.1, 'l', 'Hello')]

How it works (see REFERENCE.md section 6):

1. the transcript is cut into written words like the TTS cuts them (:func:`transcript_words`: "isn't",
   "well-known", "3.5" stay whole) and each is normalised to lowercase spoken words (:func:`normalize_text`):
   Unicode folded to ASCII, numbers spelled out ("42" -> "forty two", "3.5" -> "three point five", "7th" ->
   "seventh", "$5" -> "five dollars", 4-digit years 1100-1999 and 2010-2099 as read aloud: "1999" -> "nineteen
   ninety nine", "2005" -> "two thousand five"), "& % + @ =" and a few abbreviations ("Dr." -> "doctor") spoken,
   hyphens and other punctuation split or dropped (apostrophes inside words stay: "don't", "o'brien");
2. every spoken word missing from pocketsphinx's CMU dictionary gets a pronunciation (:func:`pronounce`): a
   possessive of a known word ("robot's"), else espeak-ng's own pronunciation (what the TTS says; a good guess
   for names), else (no espeak-ng) a compound of known words ("facetwin" = "face" + "twin"), spelled letters for
   vowel-less tokens ("ngt") or a small documented letter-to-sound rule set (:func:`letter_to_sound`);
3. the audio is mixed to mono, resampled to 16 kHz (:func:`facetwin.audio.io.resample`), peak-normalised (the
   decoder's cepstral mean normalisation makes the level irrelevant; this keeps int16 resolution for quiet input)
   and converted to int16 PCM;
4. a pocketsphinx ``Decoder(samprate=16000, bestpath=False)`` with the widest beams it takes (an almost exhaustive
   search: narrower ones make the alignment fail outright on mismatched pronunciations) aligns the word sequence
   (``set_align_text``, one full-utterance pass), then ``set_alignment()`` and a second pass give the phone
   segmentation (``get_alignment()``: words -> phones, start and duration in frames at 100 frames/s); audio longer
   than :data:`MAX_CHUNK_S` is cut at the silences a first word pass found and aligned piece by piece;
5. a boundary at frame ``i`` is placed at ``i * 10 ms + 7.8 ms``, midway between the centres of the 25.6 ms
   analysis windows of frames ``i - 1`` and ``i`` (:data:`FRAME_OFFSET_S`); the first phone of the audio starts at 0;
6. ARPAbet phones are mapped to IPA (:data:`ARPABET_TO_IPA`, :func:`arpabet_to_ipa`) in espeak-ng's en-us
   vocabulary; silences (``SIL``, ``<sil>``) and noise fillers are left as gaps.

Accuracy on espeak-ng speech is asserted in tests/test_align.py (onsets matched by phone class); the README has the
measured accuracy and speed.

Limits: pocketsphinx's HMMs have three states with at least one 10 ms frame each, so no aligned phone is shorter
than 30 ms and boundaries are quantised to 10 ms. The pronunciation is the dictionary's (plus its listed
alternatives), not what the speaker said; ARPAbet has no stress here, so AH becomes /ʌ/ or /ə/ and ER /ɜː/ or
/ɚ/ by a word-shape rule (see :func:`arpabet_to_ipa`); flaps and glottal stops are not produced (T/D stay /t/ /d/).
The decoder is shared by the process (a lock serialises calls); words added for one call stay in its dictionary.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from .io import resample
from .pronounce import PHONES, arpabet_to_ipa, pronounce, to_english_phones
from .text_norm import spoken_words
from .timeline import Phone, Timeline

__all__ = ["ALIGN_SR", "MAX_CHUNK_S", "align", "align_file", "align_phones", "dictionary_lookup"]

ALIGN_SR = 16000  # the en-us acoustic model's sample rate
FRAME_S = 0.01  # pocketsphinx frame rate: 100 frames per second
WINDOW_S = 0.025625  # pocketsphinx analysis window (wlen): frame i covers [i * FRAME_S, i * FRAME_S + WINDOW_S)
FRAME_OFFSET_S = (WINDOW_S - FRAME_S) / 2  # 7.8 ms: frame start -> boundary between adjacent frame centres
_FRAME_SAMPLES = int(ALIGN_SR * FRAME_S)
MAX_CHUNK_S = 15.0  # longer audio is aligned in pieces (see _align_entries); 15 s measured fastest of 10-30 s
MIN_DURATION_S = 0.1
SILENCE_PEAK = 1e-4  # peak amplitude (full scale 1.0) under which the audio counts as silent

# ----------------------------------------------------------------------------------------- decoder
_LOCK = threading.Lock()
# The widest search beams pocketsphinx can express (0 becomes its log-zero, a finite beam ~100x wider than 1e-200;
# defaults: beam 1e-48, wbeam 7e-29, pbeam 1e-48). With narrower beams the alignment search often prunes every
# path through the grammar ("final result does not match the grammar"): on espeak-ng speech with 1e-100, on a
# speaker whose pronunciation differs from the dictionary's even with 1e-200. The alignment grammar is a single
# word chain, so searching it almost exhaustively costs little (~35 ms per second of audio for short utterances).
# Its cost grows with (frames x words), so for audio longer than MAX_CHUNK_S the first, word-level pass over the
# whole recording uses 1e-200 beams (falling back to exhaustive if that fails) and only the pieces it is cut into
# are searched exhaustively.
EXHAUSTIVE = 0.0
WIDE = 1e-200


@lru_cache(maxsize=2)
def _decoder(beam: float):
    """Shared pocketsphinx decoders (one per beam width, model load ~0.2 s each); words added stay added."""
    from pocketsphinx import Decoder

    return Decoder(samprate=ALIGN_SR, bestpath=False, loglevel="FATAL", beam=beam, wbeam=beam, pbeam=beam)


def _ensure_words(dec, words: list[str]) -> None:
    """Add the words missing from ``dec``'s dictionary, with :func:`pronounce`'s pronunciation."""
    for w in dict.fromkeys(words):
        if dec.lookup_word(w) is not None:
            continue
        if w not in _ADDED:
            phones, source = pronounce(w, dictionary_lookup)
            phones = [p for p in phones if p in PHONES]
            if not phones:
                raise ValueError(f"no pronunciation for the word {w!r} of the transcript")
            _ADDED[w] = (phones, source)
        dec.add_word(w, " ".join(_ADDED[w][0]), True)


_ADDED: dict[str, tuple[list[str], str]] = {}  # words align() added to the shared decoder: (phones, source)


def dictionary_lookup(word: str) -> str | None:
    """Phones of ``word`` in pocketsphinx's own CMU dictionary (not counting words :func:`align` added)."""
    return None if word in _ADDED else _decoder(EXHAUSTIVE).lookup_word(word)


def _prepare_audio(audio, sr: int) -> tuple[bytes, float]:
    """Validate and convert to 16 kHz mono int16 PCM bytes; also the input's duration in seconds."""
    x = np.asarray(audio)
    if x.dtype.kind in "iu":
        scale = float(np.iinfo(x.dtype).max) + 1.0
        x = x.astype(np.float64) / scale
    else:
        x = x.astype(np.float64)
    if x.ndim == 2:  # (samples, channels) as soundfile gives, or (channels, samples)
        x = x.mean(axis=1) if x.shape[1] <= x.shape[0] else x.mean(axis=0)
    if x.ndim != 1:
        raise ValueError(f"audio must be 1-D (mono) or 2-D (multichannel), got shape {np.shape(audio)}")
    if isinstance(sr, bool) or not isinstance(sr, (int, float, np.integer, np.floating)) or not (0 < sr < np.inf):
        raise ValueError(f"invalid sample rate {sr!r}: must be a positive number of Hz")
    duration_s = x.size / float(sr)
    if x.size < MIN_DURATION_S * sr:
        raise ValueError(f"audio too short to align: {x.size / sr:.3f} s (need at least {MIN_DURATION_S} s)")
    if not np.all(np.isfinite(x)):
        raise ValueError("audio contains NaN or infinite samples")
    peak = float(np.max(np.abs(x)))
    if peak < SILENCE_PEAK:
        raise ValueError(f"audio is silent (peak {peak:.2e}); nothing to align")
    if sr != ALIGN_SR:
        x = resample(x, sr, ALIGN_SR).astype(np.float64)
    x = x * (0.9 / max(float(np.max(np.abs(x))), 1e-12))
    return np.round(x * 32767.0).astype("<i2").tobytes(), duration_s


def _frame_time(frame: int, duration_s: float) -> float:
    """Seconds for a phone boundary at ``frame``: the boundary lies midway between the centres of frames
    ``frame - 1`` and ``frame`` (windows of WINDOW_S every FRAME_S), i.e. FRAME_OFFSET_S after the frame start;
    frame 0 is the start of the audio."""
    if frame <= 0:
        return 0.0
    return min(frame * FRAME_S + FRAME_OFFSET_S, duration_s)


def _decode(dec, pcm: bytes) -> None:
    dec.start_utt()
    dec.process_raw(pcm, full_utt=True)
    dec.end_utt()


def _is_filler(name: str) -> bool:
    return name.startswith(("<", "[", "+"))  # <sil>, <s>, </s>, [NOISE], +SPN+


def _word_pass(dec, pcm: bytes, words: list[str]) -> None:
    dec.set_align_text(" ".join(words))
    _decode(dec, pcm)
    if dec.hyp() is None:
        raise RuntimeError("no hypothesis: the transcript cannot be fitted to the audio")


def _phone_pass(dec, pcm: bytes, frame0: int) -> list[tuple[str, list[tuple[str, int, int]]]]:
    """Second pass over the audio of the last word pass: [(word, [(phone, start frame, frames), ...]), ...]."""
    dec.set_alignment()
    _decode(dec, pcm)
    alignment = dec.get_alignment()
    if alignment is None:
        raise RuntimeError("no phone alignment")
    return [(w.name, [(p.name, frame0 + p.start, p.duration) for p in w]) for w in alignment]


def _chunks(segments: list[tuple[str, int, int]], n_frames: int) -> list[tuple[int, int, int, int]]:
    """Cut a word segmentation into pieces of at most MAX_CHUNK_S: (first frame, end frame, first word, end word).

    Cuts go in the middle of a silence where there is one within the allowed span, else at a word boundary."""
    max_frames = int(MAX_CHUNK_S / FRAME_S)
    cuts: list[tuple[int, int, bool]] = []  # (frame, index of the first word after it, in a silence?)
    k = 0
    for name, sf, ef in segments:
        if _is_filler(name):
            cuts.append(((sf + ef + 1) // 2, k, True))
        else:
            cuts.append((sf, k, False))
            k += 1
    out = []
    start_frame, start_word = 0, 0
    while n_frames - start_frame > max_frames:
        limit = start_frame + max_frames
        usable = [c for c in cuts if start_frame + max_frames // 4 < c[0] <= limit and c[1] > start_word]
        if not usable:
            usable = [c for c in cuts if start_frame < c[0] <= limit and c[1] > start_word]
        if not usable:
            break  # one word longer than a chunk: leave the rest in one piece
        silent = [c for c in usable if c[2]]
        frame, word, _ = (silent or usable)[-1]
        out.append((start_frame, frame, start_word, word))
        start_frame, start_word = frame, word
    out.append((start_frame, n_frames, start_word, k))
    return out


def _align_entries(pcm: bytes, words: list[str]) -> list[tuple[str, list[tuple[str, int, int]]]]:
    """Word pass then phone pass with the exhaustive decoder. Audio longer than MAX_CHUNK_S: a word pass over the
    whole with the WIDE decoder (exhaustive if that fails), then the recording is cut at the silences (else word
    boundaries) it found and each piece is aligned on its own with its words: the exhaustive search's time and the
    phone pass's memory grow with frames x words (~1.2 GB for 3 minutes in one piece)."""
    dec = _decoder(EXHAUSTIVE)
    _ensure_words(dec, words)
    n_frames = len(pcm) // 2 // _FRAME_SAMPLES
    if n_frames * FRAME_S <= MAX_CHUNK_S:
        _word_pass(dec, pcm, words)
        return _phone_pass(dec, pcm, 0)
    first = _decoder(WIDE)
    _ensure_words(first, words)
    try:
        _word_pass(first, pcm, words)
    except RuntimeError:
        first = dec
        _word_pass(first, pcm, words)
    segments = [(re.sub(r"\(\d+\)$", "", sg.word), sg.start_frame, sg.end_frame) for sg in first.seg()]
    entries = []
    for f0, f1, w0, w1 in _chunks(segments, n_frames):
        piece = pcm[f0 * _FRAME_SAMPLES * 2 : f1 * _FRAME_SAMPLES * 2]
        if w1 > w0:
            _word_pass(dec, piece, words[w0:w1])
            entries += _phone_pass(dec, piece, f0)
    return entries


def align(audio, sr: int, transcript: str) -> Timeline:
    """Forced-align English ``audio`` (float or int samples, mono or multichannel, any rate) to ``transcript``.

    Returns a :class:`Timeline` of IPA phones in seconds from the start of ``audio``; each phone's ``word`` is the
    written word of the transcript it belongs to (as :func:`transcript_words` cuts it, case kept: "42" for the
    phones of "forty two", like the TTS timeline); silences are gaps. Raises :class:`ValueError` for an empty
    transcript, audio shorter than 0.1 s, silent or non-finite audio, or when the decoder cannot fit the transcript
    to the audio (e.g. far more words than the audio can hold).
    """
    pairs = spoken_words(transcript)
    words = [w for w, _ in pairs]
    if not words:
        raise ValueError(f"empty transcript: no English words to align in {transcript!r}")
    pcm, duration_s = _prepare_audio(audio, sr)
    with _LOCK:
        try:
            entries = _align_entries(pcm, words)
        except RuntimeError as exc:
            raise ValueError(
                f"alignment failed: the decoder could not fit the transcript ({len(words)} words) to "
                f"{duration_s:.2f} s of audio ({exc}); check the transcript matches the speech"
            ) from exc
    phones: list[Phone] = []
    k = 0  # index into the transcript words
    for name, segs in entries:
        base = re.sub(r"\(\d+\)$", "", name)
        if _is_filler(base):
            continue  # silences and noise: gaps
        if k >= len(words) or base != words[k]:
            raise ValueError(f"alignment failed: decoder returned word {base!r}, expected {words[k:k + 1]}")
        written = pairs[k][1]
        k += 1
        ipa = arpabet_to_ipa([p for p, _, _ in segs], base)
        for (p, start, dur), sym in zip(segs, ipa):
            if sym and dur > 0:
                t0, t1 = _frame_time(start, duration_s), _frame_time(start + dur, duration_s)
                if t1 > t0:
                    phones.append(Phone(t0, t1, sym, written))
    if k != len(words) or not phones:
        raise ValueError(
            f"alignment failed: decoder aligned {k} of {len(words)} words; check the transcript matches the speech"
        )
    return Timeline(phones)


def align_phones(audio, sr: int, words: list[tuple[str, list[str]]]) -> Timeline:
    """Forced alignment of known phones in any language: ``words`` = [(written word, [IPA phones]), ...] in the
    order spoken (e.g. espeak-ng's rendering of a transcript). Each phone is mapped to the nearest English phone(s)
    and the sequence is aligned with pocketsphinx's English acoustic model (trained on many real speakers: a
    cross-lingual alignment); the timeline keeps the IPA phones. ``ValueError`` as :func:`align`."""
    import hashlib

    tokens: list[str] = []
    maps: list[tuple[str, list[str], list[int]]] = []
    for written, ipa in words:
        arpa: list[str] = []
        src: list[int] = []
        for k, ph in enumerate(ipa):
            a = to_english_phones(ph)
            arpa += a
            src += [k] * len(a)
        if not arpa:
            continue  # nothing pronounceable (its time goes to the neighbours)
        token = "ipa_" + hashlib.md5(" ".join(arpa).encode()).hexdigest()[:12]
        _ADDED.setdefault(token, (arpa, "ipa"))
        tokens.append(token)
        maps.append((written, list(ipa), src))
    if not tokens:
        raise ValueError("nothing to align: no phone of the transcript maps to the acoustic model's phones")
    pcm, duration_s = _prepare_audio(audio, sr)
    with _LOCK:
        try:
            entries = _align_entries(pcm, tokens)
        except RuntimeError as exc:
            raise ValueError(f"alignment failed: the decoder could not fit the transcript ({len(tokens)} words) to "
                             f"{duration_s:.2f} s of audio ({exc})") from exc
    phones: list[Phone] = []
    k = 0
    for name, segs in entries:
        base = re.sub(r"\(\d+\)$", "", name)
        if _is_filler(base):
            continue
        if k >= len(tokens) or base != tokens[k]:
            raise ValueError(f"alignment failed: decoder returned word {base!r}, expected {tokens[k:k + 1]}")
        written, ipa, src = maps[k]
        last = None
        for (_p, start, dur), j in zip(segs, src):
            t0, t1 = _frame_time(start, duration_s), _frame_time(start + dur, duration_s)
            if t1 <= t0:
                continue
            if last == (k, j) and phones:  # the second English phone of one IPA phone: extend it
                phones[-1] = Phone(phones[-1].start, t1, phones[-1].phoneme, written)
            else:
                phones.append(Phone(t0, t1, ipa[j], written))
            last = (k, j)
        k += 1
    if k != len(tokens) or not phones:
        raise ValueError(f"alignment failed: decoder aligned {k} of {len(tokens)} words")
    return Timeline(phones)


def align_file(path: str | Path, transcript: str) -> Timeline:
    """:func:`align` for an audio file (any format :func:`facetwin.audio.io.load_audio` reads)."""
    from .io import load_audio

    return align(load_audio(path, sr=ALIGN_SR), ALIGN_SR, transcript)
