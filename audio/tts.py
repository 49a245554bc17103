"""Offline text to speech with phoneme timing: espeak-ng through its C API (:mod:`facetwin.audio.espeak`), no
network, no models.

>>> utt = synthesize("Hello world.", "en")
>>> utt.audio.shape, utt.sr          # float32 mono in [-1, 1] at espeak's rate (22050 Hz)
>>> [(p.phoneme, p.word) for p in utt.timeline][:3]
[('h', 'Hello'), ('ə', 'Hello'), ('l', 'Hello')]

The library and its voice data come from the ``espeakng-loader`` wheel; espeak-ng is GPL-3.0 and is loaded at run
time, never linked or vendored. This module turns espeak's samples and events into an :class:`Utterance` (the
phoneme timeline below) and maps ISO 639-1 codes to espeak voices (:func:`languages`).

Timeline (see :mod:`facetwin.audio.timeline`)
    espeak reports a *phoneme event* at the first sample of every phoneme it synthesizes (IPA name, sample
    position) and a *word event* at the start of every word (character position and length in the input text).
    Each phone lasts from its event to the next phoneme event (the last one to the end of the audio). Pauses
    (espeak's ``_`` phonemes, empty IPA names) and language-switch markers (``(en)``) are left as gaps; events at
    the same sample (zero-length) are dropped, except that a phone espeak renders inside the previous phone's
    transition (post-vocalic /l/ in "bells": ``ɛ`` and ``l`` events at the same sample) takes the last 35 %
    (at most 80 ms) of that phone when both are in the same word and it lasts >= 60 ms; a bare modifier event
    (e.g. Russian palatalization ``ʲ``, which espeak reports on its own) is merged into the phone before it
    (``r`` + ``ʲ`` -> ``rʲ``). Labels are IPA with
    stress marks (``ˈ ˌ``) removed; length marks and diacritics are kept (``iː``, ``ɔ̃``); diphthongs are one
    phone (``aɪ``). A few espeak mnemonics that have no IPA in its tables are rewritten (Mandarin ``s.`` -> ``ʂ``,
    ``i.`` -> ``ʅ``; aspirated ``kh`` -> ``kʰ``; geminate ``ss`` -> ``sː``; a trailing ``-``, ``#`` or ``.`` is
    dropped). Otherwise labels are espeak's own (e.g. Korean ``q``, Mandarin ``onɡ`` as one phone).

    ``Phone.word`` is the word of the *input text* the phone was spoken for: the text is cut into words at
    whitespace and punctuation (an apostrophe, hyphen, period or comma between two letters or digits stays inside
    the word: ``isn't``, ``ninety-nine``, ``3.50``), and each phone gets the word containing the character
    position espeak reports for it (a word espeak merges into the one before, "the" in "on the", gets a share of
    that group's phones in proportion to its letters). So ``"42"`` spoken as "forty two" gives phones whose word
    is ``"42"``. Runs of Chinese characters or kana (written without spaces) are cut where espeak starts a word
    (its dictionary words, e.g. ``你好``, else single characters).

Silence
    The audio is kept exactly as espeak produced it (nothing trimmed): espeak starts a sentence with at most
    ~40 ms of silence and, without its end-of-text pause (we do not request one), ends ~10 ms after the last
    phone; clause pauses (commas, full stops) stay in the audio as timeline gaps. Timeline times are therefore
    seconds from sample 0 of ``Utterance.audio``.

Thread and process safety, determinism
    espeak-ng is one global C state. Every call loads a private copy of the library (copied once per process
    to a temporary directory), initializes it (synchronous mode, phoneme events with IPA names), synthesizes,
    terminates and unloads it, all under :data:`facetwin.audio.espeak.ESPEAK_LOCK`: :func:`synthesize` may be
    called from several threads (calls are serialized), after ``fork`` (the child re-creates the lock), and next
    to other code that loads espeak-ng itself (a separate copy shares no state). The reload is what makes the
    output deterministic: espeak-ng keeps function-level statics (pitch-flutter phase, harmonic-table switch) that
    survive ``espeak_Terminate``/``espeak_Initialize``, so without it the same text spoken twice in one process
    differs by a few samples. With it, the same text, language, rate and pitch give bit-identical audio and
    timeline, in any process, whatever was spoken before (tested). Text analysis without audio
    (:func:`text_to_phonemes`, :func:`languages`) uses one persistent instance of a second library copy
    (:func:`facetwin.audio.espeak.analysis_engine`, also under the lock).
"""

from __future__ import annotations

import bisect
import unicodedata
from dataclasses import dataclass

import numpy as np

from . import espeak
from .espeak import EV_PHONEME, EV_WORD, Espeak, analysis_engine
from .timeline import Phone, Timeline
from .words import word_spans

__all__ = [
    "Utterance",
    "synthesize",
    "LANGUAGES",
    "languages",
    "text_words",
    "text_to_phonemes",
    "MAX_TEXT_CHARS",
    "DEFAULT_RATE_WPM",
    "DEFAULT_PITCH",
]

MAX_TEXT_CHARS = 5000  # longer input raises ValueError: split it into sentences
DEFAULT_RATE_WPM = 175  # espeakRATE_NORMAL
RATE_RANGE = (80, 450)  # espeakRATE_MINIMUM .. espeakRATE_MAXIMUM
DEFAULT_PITCH = 50  # espeak's pitch parameter, 0..100 (voice's base pitch at 50)

# ISO 639-1 code -> espeak-ng voice name (what espeak_SetVoiceByName takes). Checked against the data shipped in
# espeakng-loader 0.2.4: every voice exists and reports phoneme events (tests/test_tts.py).
LANGUAGES: dict[str, str] = {
    "en": "en-us",  # English (America)
    "fr": "fr",  # French (France)
    "es": "es",  # Spanish (Spain)
    "de": "de",  # German
    "it": "it",  # Italian
    "ru": "ru",  # Russian
    "ja": "ja",  # Japanese: kana only; espeak reads kanji as "chinese letter" in English
    "ko": "ko",  # Korean (Hangul)
    "zh": "cmn",  # Chinese, Mandarin (hanzi or pinyin)
    "ar": "ar",  # Arabic: short vowels are not restored in unvocalized text (مرحبا -> m r ħ b a); add harakat
    "he": "he",  # Hebrew
}

def text_to_phonemes(text: str, lang: str = "en") -> str:
    """espeak-ng's IPA transcription of ``text`` (``espeak_TextToPhonemes``; words separated by spaces, stress
    marks kept, clauses joined by spaces): what :func:`synthesize` would say, without synthesizing."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text is empty or only whitespace: nothing to transcribe")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"text is too long ({len(text)} characters, at most {MAX_TEXT_CHARS}): split it")
    voice = _voice_for(lang)
    clean = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    with espeak.ESPEAK_LOCK:
        eng = analysis_engine()
        eng.set_voice(voice)
        parts = eng.text_to_phonemes(clean)
    return " ".join(p for p in parts if p)


# -------------------------------------------------------------------------------------------- languages
_LANGUAGES_CACHE: dict[str, str] | None = None


def languages() -> dict[str, str]:
    """Every ISO 639-1 code the shipped espeak-ng data has a voice for -> the voice name :func:`synthesize` uses.

    :data:`LANGUAGES` entries take precedence; for other codes the voice that lists the bare code as one of its
    languages with the best (lowest) priority is chosen, and named by its file name (``gmw/en-US`` -> ``en-US``),
    which is what ``espeak_SetVoiceByName`` matches.
    """
    global _LANGUAGES_CACHE
    if _LANGUAGES_CACHE is None:
        with espeak.ESPEAK_LOCK:
            voices = analysis_engine().list_voices()
        best: dict[str, tuple[int, int, str]] = {}
        for order, (_name, ident, langs) in enumerate(voices):
            if not langs or not ident:
                continue
            own = ident.rsplit("/", 1)[-1]
            for prio, tag in langs:
                code = tag.lower()
                if len(code) == 2 and code.isalpha() and (code not in best or (prio, order) < best[code][:2]):
                    best[code] = (prio, order, own)
        found = {code: v[2] for code, v in best.items()}
        found.update(LANGUAGES)
        _LANGUAGES_CACHE = dict(sorted(found.items()))
    return dict(_LANGUAGES_CACHE)


def _voice_for(lang: str) -> str:
    if not isinstance(lang, str):
        raise ValueError(f"language must be an ISO 639-1 code string, got {lang!r}")
    code = lang.strip().lower()
    supported = languages()
    if code not in supported:
        raise ValueError(
            f"unknown language code {lang!r}: supported ISO 639-1 codes are {', '.join(supported)}"
        )
    return supported[code]


# ----------------------------------------------------------------------------------------------- words
def text_words(text: str) -> list[str]:
    """The words of ``text`` as the timeline names them (split at whitespace and punctuation, see module doc)."""
    return [text[a:b] for a, b in word_spans(text)]


def _is_cjk(c: str) -> bool:
    o = ord(c)
    return 0x3040 <= o <= 0x30FF or 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF


def _split_cjk(text: str, spans: list[tuple[int, int]], starts: list[int]) -> list[tuple[int, int]]:
    """Cut runs of Chinese/Japanese characters (written without spaces) at espeak's word starts (0-based)."""
    out = []
    for a, b in spans:
        cuts = [s for s in starts if a < s < b] if all(_is_cjk(c) for c in text[a:b]) else []
        edges = [a, *sorted(set(cuts)), b]
        out.extend(zip(edges[:-1], edges[1:]))
    return out


def _span_index(spans: list[tuple[int, int]], starts: list[int], pos: int) -> int:
    """Index of the word containing 0-based character ``pos`` (else the next word after it, else the last; -1
    when there are no words). ``starts``: the spans' start positions."""
    i = bisect.bisect_right(starts, pos) - 1
    if i >= 0 and pos < spans[i][1]:
        return i
    return min(i + 1, len(spans) - 1)


def _assign_words(text: str, spans: list[tuple[int, int]], keys: list[int]) -> list[str]:
    """Word of each phone from its span index; words espeak merged into the previous one (it speaks "on the",
    "of the" as one word and reports no position for "the") get a share of that group's phones in proportion to
    their letter counts."""
    words = [text[spans[k][0]:spans[k][1]] if k >= 0 else "" for k in keys]
    keyed = sorted({k for k in keys if k >= 0})
    for n, k in enumerate(keyed):
        stop = keyed[n + 1] if n + 1 < len(keyed) else len(spans)
        group = [k]
        for j in range(k + 1, stop):  # following words without phones of their own, if they are real words
            if not any(c.isalpha() for c in text[spans[j][0]:spans[j][1]]):
                break
            group.append(j)
        if len(group) == 1:
            continue
        idx = [i for i, kk in enumerate(keys) if kk == k]
        weights = np.cumsum([sum(c.isalnum() for c in text[spans[j][0]:spans[j][1]]) or 1 for j in group])
        edges = np.rint(len(idx) * weights / weights[-1]).astype(int)
        first = 0
        for j, last in zip(group, edges):
            for i in idx[first:last]:
                words[i] = text[spans[j][0]:spans[j][1]]
            first = max(first, last)
    return words


# -------------------------------------------------------------------------------------------- labels
_STRESS = str.maketrans("", "", "ˈˌ'")
# espeak mnemonics that its phoneme tables give no IPA for, per voice language
_RENAME = {"zh": {"s.": "ʂ", "z.": "ʐ", "i.": "ʅ", "ts.": "tʂ", "ts.h": "tʂʰ", "o-": "ɤ"}}
_ASPIRATED = {"ph", "th", "kh", "ch", "tsh", "tɕh", "tʂh", "tʃh", "qh"}


def _clean_label(name: bytes, lang: str = "") -> str | None:
    """IPA label for an espeak phoneme event name, or None for a pause / language-switch marker."""
    s = name.decode("utf-8", "ignore").strip()
    if not s or s.startswith("(") or set(s) <= set("_:|"):
        return None
    s = s.translate(_STRESS)
    s = _RENAME.get(lang, {}).get(s, s)
    s = s.rstrip("-#")
    if len(s) > 1 and s.endswith("."):  # other retroflex/emphatic mnemonics: drop the dot
        s = s[:-1]
    if s in _ASPIRATED:  # Korean / Mandarin aspirated stops: kh -> kʰ
        s = s[:-1] + "ʰ"
    elif len(s) == 2 and s[0] == s[1] and s[0].isalpha():  # geminate mnemonics (Italian "ss"): sː
        s = s[0] + "ː"
    return s or None


def _is_modifier(label: str) -> bool:
    """A label made only of modifier letters / combining marks (``ʲ``, ``ː``): belongs to the previous phone."""
    return all(unicodedata.category(c) in ("Lm", "Mn", "Sk") for c in label)


# ---------------------------------------------------------------------------------------------- API
@dataclass
class Utterance:
    """Synthesized (or sung) audio with its phoneme timeline."""

    audio: np.ndarray  # float32 mono in [-1, 1]
    sr: int  # sample rate, Hz (espeak-ng: 22050)
    timeline: Timeline  # seconds from audio[0]
    text: str
    lang: str  # ISO 639-1

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sr


_STEAL_MIN = 0.06  # s: a zero-length phone takes the tail of the phone before it only if that one is this long
_STEAL_FRACTION = 0.35
_STEAL_MAX = 0.08  # s


def _build_timeline(text: str, events: list, n_samples: int, sr: int, lang: str = "") -> Timeline:
    word_starts = [pos - 1 for typ, pos, _len, _s, _n in events if typ == EV_WORD]
    spans = _split_cjk(text, word_spans(text), word_starts)
    span_starts = [a for a, _b in spans]
    ph = [(pos, sample, name) for typ, pos, _len, sample, name in events if typ == EV_PHONEME]
    bounds = [min(max(s, 0), n_samples) for _p, s, _n in ph] + [n_samples]
    segs: list[list] = []  # [start_sample, end_sample, label, word index]
    for i, (pos, _s, name) in enumerate(ph):
        a, b = bounds[i], max(bounds[i + 1], bounds[i])
        label = _clean_label(name, lang)
        if label is None:
            continue
        key = _span_index(spans, span_starts, pos - 1)
        if b <= a:
            # no samples of its own: espeak renders e.g. a post-vocalic /l/ ("bells") inside the vowel's transition;
            # give it the tail of that phone (same word, long enough), else drop it
            if segs and segs[-1][1] == a and segs[-1][3] == key and not _is_modifier(label):
                d = segs[-1][1] - segs[-1][0]
                if d >= _STEAL_MIN * sr:
                    cut = int(round(min(_STEAL_FRACTION * d, _STEAL_MAX * sr)))
                    segs[-1][1] = a - cut
                    segs.append([a - cut, a, label, key])
            continue
        if _is_modifier(label) and segs and segs[-1][1] == a:
            segs[-1][1] = b
            segs[-1][2] += label
            continue
        segs.append([a, b, label, key])
    words = _assign_words(text, spans, [seg[3] for seg in segs])
    return Timeline(Phone(a / sr, b / sr, lab, w) for (a, b, lab, _k), w in zip(segs, words))


def _check_int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return int(value)


def synthesize(text: str, lang: str = "en", *, rate_wpm: int | None = None, pitch: int | None = None,
               variant: str | None = None) -> Utterance:
    """Speak ``text`` in language ``lang`` (an ISO 639-1 code, see :func:`languages`).

    ``rate_wpm``: speaking rate in words per minute (80..450, default 175). ``pitch``: espeak's pitch parameter
    (0..100, default 50 = the voice's own). ``variant``: one of espeak-ng's voice variants (``"m3"``, ``"f2"``,
    ``"klatt"``, ...: the files of ``espeak-ng-data/voices/!v``; :func:`facetwin.audio.voices.espeak_variants`),
    a different speaker of the same language. Raises ValueError for empty/whitespace-only text, text longer than
    :data:`MAX_TEXT_CHARS` characters, an unknown language code or out-of-range rate/pitch.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"text is too long ({len(text)} characters, at most {MAX_TEXT_CHARS}): split it")
    # control characters (NUL would end the C string) become spaces; positions stay the same
    clean = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    if not clean.strip():
        raise ValueError("text is empty or only whitespace: nothing to say")
    voice = _voice_for(lang)
    if variant:
        from .voices import espeak_variants

        if variant not in espeak_variants():
            raise ValueError(f"unknown espeak-ng voice variant {variant!r}; known: {', '.join(espeak_variants())}")
        voice = f"{voice}+{variant}"
    rate = DEFAULT_RATE_WPM if rate_wpm is None else _check_int("rate_wpm", rate_wpm, *RATE_RANGE)
    pit = DEFAULT_PITCH if pitch is None else _check_int("pitch", pitch, 0, 100)
    with espeak.ESPEAK_LOCK, Espeak() as es:
        es.set_voice(voice)
        pcm, events = es.synth(clean, rate, pit)
        sr = es.sr
    audio = (pcm.astype(np.float32) / 32768.0).clip(-1.0, 1.0)
    code = lang.strip().lower()
    timeline = _build_timeline(text, events, len(pcm), sr, code)
    if not len(timeline):  # "!!!", "...": punctuation only, as empty as an empty text
        raise ValueError(f"text {text[:40]!r} has nothing to say (no phonemes in language {code!r})")
    return Utterance(audio=audio, sr=sr, timeline=timeline, text=text, lang=code)
