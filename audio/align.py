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

Accuracy on espeak-ng speech (tests/test_align.py, onsets matched by phone class): median |error| ~9 ms, 90th
percentile ~35 ms. Speed ~25x real time for sentences after a one-off ~0.2 s model load, ~11x for minutes-long
recordings (one CPU core; memory ~0.4 GB at 3 minutes).

Limits: pocketsphinx's HMMs have three states with at least one 10 ms frame each, so no aligned phone is shorter
than 30 ms and boundaries are quantised to 10 ms. The pronunciation is the dictionary's (plus its listed
alternatives), not what the speaker said; ARPAbet has no stress here, so AH becomes /ʌ/ or /ə/ and ER /ɜː/ or
/ɚ/ by a word-shape rule (see :func:`arpabet_to_ipa`); flaps and glottal stops are not produced (T/D stay /t/ /d/).
The decoder is shared by the process (a lock serialises calls); words added for one call stay in its dictionary.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np

from .io import resample
from .timeline import Phone, Timeline

__all__ = [
    "ALIGN_SR",
    "ARPABET_TO_IPA",
    "MAX_CHUNK_S",
    "align",
    "align_phones",
    "align_file",
    "arpabet_to_ipa",
    "espeak_pronunciation",
    "ipa_to_arpabet",
    "letter_to_sound",
    "normalize_text",
    "number_to_words",
    "pronounce",
    "transcript_words",
]

ALIGN_SR = 16000  # the en-us acoustic model's sample rate
FRAME_S = 0.01  # pocketsphinx frame rate: 100 frames per second
WINDOW_S = 0.025625  # pocketsphinx analysis window (wlen): frame i covers [i * FRAME_S, i * FRAME_S + WINDOW_S)
FRAME_OFFSET_S = (WINDOW_S - FRAME_S) / 2  # 7.8 ms: frame start -> boundary between adjacent frame centres
_FRAME_SAMPLES = int(ALIGN_SR * FRAME_S)
MAX_CHUNK_S = 15.0  # longer audio is aligned in pieces (see _align_entries); 15 s measured fastest of 10-30 s
MIN_DURATION_S = 0.1
SILENCE_PEAK = 1e-4  # peak amplitude (full scale 1.0) under which the audio counts as silent

# ----------------------------------------------------------------------------------------- ARPAbet <-> IPA
#: CMU ARPAbet (as in pocketsphinx's en-us model, no stress digits) -> IPA in espeak-ng's en-us vocabulary.
#: AH, ER and IY depend on the word (see :func:`arpabet_to_ipa`); the entries here are their stressed forms.
#: SIL (and noise fillers) are not phones: they become gaps in the timeline.
ARPABET_TO_IPA: dict[str, str] = {
    # vowels
    "AA": "ɑː", "AE": "æ", "AH": "ʌ", "AO": "ɔː", "AW": "aʊ", "AY": "aɪ", "EH": "ɛ", "ER": "ɜː", "EY": "eɪ",
    "IH": "ɪ", "IY": "iː", "OW": "oʊ", "OY": "ɔɪ", "UH": "ʊ", "UW": "uː",
    # consonants
    "B": "b", "CH": "tʃ", "D": "d", "DH": "ð", "F": "f", "G": "ɡ", "HH": "h", "JH": "dʒ", "K": "k", "L": "l",
    "M": "m", "N": "n", "NG": "ŋ", "P": "p", "R": "ɹ", "S": "s", "SH": "ʃ", "T": "t", "TH": "θ", "V": "v",
    "W": "w", "Y": "j", "Z": "z", "ZH": "ʒ",
}
VOWELS = frozenset({"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"})
PHONES = frozenset(ARPABET_TO_IPA)
# one-vowel words whose AH is reduced (schwa) in running speech; other one-vowel words keep /ʌ/ ("cup", "love")
_WEAK_AH_WORDS = frozenset(
    "a the of to from was what an and as at for can that than them us but does must just some".split()
)


def arpabet_to_ipa(phones: list[str], word: str = "") -> list[str]:
    """IPA for the ARPAbet phones of one word (stress digits ignored; SIL/fillers give ``""``).

    Context rules (ARPAbet here carries no stress): AH is /ʌ/ when it is the only vowel of a word that is not a
    usually-reduced function word ("cup", "love"; not "the", "of", "but") and /ə/ otherwise ("about", "sofa"); ER
    is /ɚ/ when it ends a word of several vowels ("better", "water") and /ɜː/ otherwise ("bird", "person"); a
    word-final IY after another vowel is /i/ ("city", "coffee"), else /iː/.
    """
    base = [re.sub(r"\d", "", p).upper() for p in phones]
    vowel_idx = [i for i, p in enumerate(base) if p in VOWELS]
    out = []
    for i, p in enumerate(base):
        if p not in ARPABET_TO_IPA:
            out.append("")
            continue
        ipa = ARPABET_TO_IPA[p]
        if p == "AH":
            strong = len(vowel_idx) == 1 and word.lower() not in _WEAK_AH_WORDS
            ipa = "ʌ" if strong else "ə"
        elif p == "ER" and len(vowel_idx) > 1 and i == vowel_idx[-1]:
            ipa = "ɚ"
        elif p == "IY" and len(vowel_idx) > 1 and i == len(base) - 1:
            ipa = "i"
        out.append(ipa)
    return out


# espeak-ng en-us IPA symbols -> ARPAbet, longest match first (stress and syllable marks are skipped)
_IPA_TO_ARPABET: dict[str, tuple[str, ...]] = {
    "aɪə": ("AY", "ER"), "aɪɚ": ("AY", "ER"), "aʊɚ": ("AW", "ER"), "ɑːɹ": ("AA", "R"), "ɔːɹ": ("AO", "R"),
    "oːɹ": ("AO", "R"), "ɪɹ": ("IH", "R"), "ɛɹ": ("EH", "R"), "ʊɹ": ("UH", "R"), "eə": ("EH", "R"),
    "əl": ("AH", "L"), "n̩": ("AH", "N"), "l̩": ("AH", "L"), "m̩": ("AH", "M"),
    "aɪ": ("AY",), "aʊ": ("AW",), "eɪ": ("EY",), "oʊ": ("OW",), "əʊ": ("OW",), "ɔɪ": ("OY",),
    "tʃ": ("CH",), "dʒ": ("JH",), "ɑː": ("AA",), "ɔː": ("AO",), "ɜː": ("ER",), "iː": ("IY",), "uː": ("UW",),
    "ɑ": ("AA",), "ɒ": ("AA",), "æ": ("AE",), "ʌ": ("AH",), "ə": ("AH",), "ɐ": ("AH",), "ɔ": ("AO",),
    "ɛ": ("EH",), "e": ("EH",), "ɜ": ("ER",), "ɚ": ("ER",), "ɝ": ("ER",), "ɪ": ("IH",), "ᵻ": ("IH",),
    "i": ("IY",), "o": ("OW",), "ʊ": ("UH",), "u": ("UW",), "a": ("AA",),
    "b": ("B",), "d": ("D",), "ð": ("DH",), "f": ("F",), "ɡ": ("G",), "g": ("G",), "h": ("HH",), "k": ("K",),
    "l": ("L",), "ɫ": ("L",), "m": ("M",), "n": ("N",), "ŋ": ("NG",), "p": ("P",), "ɹ": ("R",), "r": ("R",),
    "ɾ": ("T",), "ʔ": ("T",), "s": ("S",), "ʃ": ("SH",), "t": ("T",), "θ": ("TH",), "v": ("V",), "w": ("W",),
    "j": ("Y",), "z": ("Z",), "ʒ": ("ZH",), "x": ("K",), "ç": ("HH",),
}
_IPA_KEYS = sorted(_IPA_TO_ARPABET, key=len, reverse=True)
_IPA_SKIP = set(".ˑ_- |'")


def ipa_to_arpabet(ipa: str) -> list[str]:
    """ARPAbet phones for an IPA string (espeak-ng en-us style); unknown symbols and stress marks are skipped."""
    text = unicodedata.normalize("NFC", ipa)
    text = "".join(c for c in text if c not in "ˈˌ͡‿")  # stress marks and tie bars: "t͡ʃˈɜː" -> "tʃɜː"
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] in _IPA_SKIP:
            i += 1
            continue
        for key in _IPA_KEYS:
            if text.startswith(key, i):
                out.extend(_IPA_TO_ARPABET[key])
                i += len(key)
                break
        else:
            i += 1  # unknown symbol or a lone diacritic / length mark
    return out


# ----------------------------------------------------------------------------------------- text normalisation
_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
        "seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]
_ORDINAL_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                      "nine": "ninth", "twelve": "twelfth"}
_ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "ms": "miss", "dr": "doctor", "prof": "professor",
                  "vs": "versus", "etc": "et cetera", "approx": "approximately"}
_SYMBOLS = {"&": " and ", "%": " percent ", "+": " plus ", "@": " at ", "=": " equals "}
_LETTER_NAMES = {
    "a": "EY", "b": "B IY", "c": "S IY", "d": "D IY", "e": "IY", "f": "EH F", "g": "JH IY", "h": "EY CH",
    "i": "AY", "j": "JH EY", "k": "K EY", "l": "EH L", "m": "EH M", "n": "EH N", "o": "OW", "p": "P IY",
    "q": "K Y UW", "r": "AA R", "s": "EH S", "t": "T IY", "u": "Y UW", "v": "V IY", "w": "D AH B AH L Y UW",
    "x": "EH K S", "y": "W AY", "z": "Z IY",
}


def number_to_words(n: int) -> str:
    """Cardinal English words for a non-negative integer, American style without "and" (105 -> "one hundred five")."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_to_words(rest))
    for scale, name in _SCALES:
        if n >= scale:
            rest = n % scale
            return number_to_words(n // scale) + " " + name + ("" if rest == 0 else " " + number_to_words(rest))
    raise AssertionError("unreachable")


def _is_year(n: int) -> bool:
    return 1100 <= n <= 1999 or 2010 <= n <= 2099


def _year_to_words(n: int) -> str:
    hi, lo = divmod(n, 100)
    if lo == 0:
        return number_to_words(hi) + " hundred"
    return number_to_words(hi) + " " + (("oh " + _ONES[lo]) if lo < 10 else number_to_words(lo))


def _ordinal(words: str) -> str:
    head, _, last = words.rpartition(" ")
    if last in _ORDINAL_IRREGULAR:
        last = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last = last + "th"
    return (head + " " + last).strip()


def _number_token(match: re.Match) -> str:
    token = match.group(0)
    dollar = token.startswith("$")
    token = token.lstrip("$")
    m = re.fullmatch(r"(\d+(?:,\d{3})*)(?:\.(\d+))?(st|nd|rd|th)?", token)
    if m is None:  # pragma: no cover - the regex below only yields well-formed tokens
        return " " + token + " "
    integer, decimals, ordinal = m.groups()
    digits = integer.replace(",", "")
    value = int(digits)
    if ordinal:
        words = _ordinal(number_to_words(value))
    elif decimals is None and "," not in integer and len(digits) == 4 and _is_year(value):
        words = _year_to_words(value)  # years as read aloud: 1999 -> nineteen ninety nine
    else:
        words = number_to_words(value)
        if decimals:
            words += " point " + " ".join(_ONES[int(c)] for c in decimals)
    if dollar:
        words += " dollar" if value == 1 and not decimals else " dollars"
    return " " + words + " "


_INNER = set("'’-‐.,·")  # kept inside a word when between two letters/digits (as facetwin.audio.tts does)
_SPOKEN_SYMBOLS = set(_SYMBOLS) | {"$"}


def _is_word_char(text: str, i: int) -> bool:
    c = text[i]
    if c.isspace():
        return False
    if c in _SPOKEN_SYMBOLS:
        return True
    cat = unicodedata.category(c)
    if cat[0] == "P":
        return c in _INNER and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
    return cat[0] != "C"


def transcript_words(transcript: str) -> list[str]:
    """The written words of a transcript, as :mod:`facetwin.audio.tts` names them in ``Phone.word``: cut at
    whitespace and punctuation, an apostrophe, hyphen, period or comma between two letters or digits staying inside
    the word (``isn't``, ``ninety-nine``, ``3.50``); spoken symbols (``& % + @ = $``) are words too."""
    text = str(transcript)
    words, start = [], None
    for i in range(len(text)):
        if _is_word_char(text, i):
            if start is None:
                start = i
        elif start is not None:
            words.append(text[start:i])
            start = None
    if start is not None:
        words.append(text[start:])
    return words


def _spoken(token: str) -> list[str]:
    """The lowercase spoken words of one written word."""
    text = unicodedata.normalize("NFKC", token)
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    text = unicodedata.normalize("NFKD", text)  # fold accents (café -> cafe); what has no ASCII form is dropped
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"\$?\d+(?:,\d{3})*(?:\.\d+)?(?:st|nd|rd|th)?", _number_token, text, flags=re.IGNORECASE)
    for sym, spoken in _SYMBOLS.items():
        text = text.replace(sym, spoken)
    text = re.sub(r"[^a-z']+", " ", text.lower())  # hyphens, periods, other marks separate spoken words
    words = []
    for w in text.split():
        w = w.strip("'")
        if w:
            words.extend(_ABBREVIATIONS[w].split() if w in _ABBREVIATIONS else [w])
    return words


def _spoken_words(transcript: str) -> list[tuple[str, str]]:
    """(spoken word, written word it comes from) for the whole transcript."""
    return [(w, token) for token in transcript_words(transcript) for w in _spoken(token)]


def normalize_text(transcript: str) -> list[str]:
    """The transcript as the list of lowercase spoken words the aligner uses (see the module docstring)."""
    return [w for w, _ in _spoken_words(transcript)]


# ----------------------------------------------------------------------------------------- pronunciations
# Letter-to-sound fallback: greedy longest-match grapheme rules, applied left to right. Each rule is
# (graphemes, ARPAbet, where) with where one of "any", "initial", "final". Vowel letters are then handled by
# _vowel() (magic e, open syllables, final y). Good enough for made-up names; real words come from the dictionary.
_LTS_RULES: list[tuple[str, str, str]] = [
    ("tion", "SH AH N", "any"), ("sion", "ZH AH N", "any"), ("ture", "CH ER", "any"), ("cial", "SH AH L", "any"),
    ("tial", "SH AH L", "any"), ("cious", "SH AH S", "any"), ("tious", "SH AH S", "any"), ("ous", "AH S", "final"),
    ("eigh", "EY", "any"), ("augh", "AO", "any"), ("ough", "AO", "any"), ("igh", "AY", "any"),
    ("tch", "CH", "any"), ("sch", "S K", "any"), ("air", "EH R", "any"), ("ear", "IH R", "any"),
    ("are", "EH R", "final"), ("ere", "IH R", "final"), ("ire", "AY ER", "final"), ("ore", "AO R", "final"),
    ("ure", "Y UH R", "final"), ("ed", "D", "final"), ("es", "Z", "final"), ("le", "AH L", "final"),
    ("kn", "N", "initial"), ("wr", "R", "initial"), ("gn", "N", "initial"), ("ps", "S", "initial"),
    ("mb", "M", "final"), ("gh", "G", "initial"), ("gh", "", "any"), ("ph", "F", "any"), ("sh", "SH", "any"),
    ("ch", "CH", "any"), ("th", "TH", "any"), ("wh", "W", "any"), ("ck", "K", "any"), ("ng", "NG", "any"),
    ("qu", "K W", "any"), ("dg", "JH", "any"), ("x", "Z", "initial"), ("x", "K S", "any"),
    ("ee", "IY", "any"), ("ea", "IY", "any"), ("oo", "UW", "any"), ("ou", "AW", "any"), ("ow", "OW", "final"),
    ("ow", "AW", "any"), ("oi", "OY", "any"), ("oy", "OY", "any"), ("ai", "EY", "any"), ("ay", "EY", "any"),
    ("au", "AO", "any"), ("aw", "AO", "any"), ("ei", "EY", "any"), ("ey", "IY", "final"), ("ey", "EY", "any"),
    ("ie", "IY", "any"), ("ue", "UW", "any"), ("ui", "UW", "any"), ("oa", "OW", "any"), ("oe", "OW", "any"),
    ("eu", "Y UW", "any"), ("ew", "Y UW", "any"), ("ar", "AA R", "any"), ("or", "AO R", "any"),
    ("er", "ER", "any"), ("ir", "ER", "any"), ("ur", "ER", "any"), ("yr", "ER", "any"),
]
_CONSONANTS = {"b": "B", "d": "D", "f": "F", "h": "HH", "j": "JH", "k": "K", "l": "L", "m": "M", "n": "N",
               "p": "P", "q": "K", "r": "R", "s": "S", "t": "T", "v": "V", "w": "W", "z": "Z"}
_SHORT = {"a": "AE", "e": "EH", "i": "IH", "o": "AA", "u": "AH", "y": "IH"}
_LONG = {"a": "EY", "e": "IY", "i": "AY", "o": "OW", "u": "UW", "y": "AY"}
_VOWEL_LETTERS = frozenset("aeiouy")
_OPEN_BLOCKERS = _VOWEL_LETTERS | set("xrw")  # a vowel before these is not in an open syllable


def letter_to_sound(word: str) -> list[str]:
    """ARPAbet guess for a word from its spelling (the fallback for words outside the dictionary).

    Rules, in order: a table of multi-letter graphemes (``_LTS_RULES``: "tion", "igh", "ch", "ee", "ar", ...,
    some only word-initially or word-finally); doubled consonants count once; c and g are soft before e/i/y;
    a final e after a consonant is silent and lengthens the vowel before it ("zane" -> Z EY N); a single vowel
    letter followed by one consonant and a vowel is long (open syllable), otherwise short; y is a consonant at the
    start of a word, /iː/ at the end of a longer word, /aɪ/ at the end of a one-vowel word; a final s after a
    voiced sound is /z/.
    """
    w = re.sub(r"[^a-z]", "", word.lower())
    out: list[str] = []
    i = 0
    n = len(w)
    while i < n:
        matched = False
        for g, ph, where in _LTS_RULES:
            if not w.startswith(g, i):
                continue
            if where == "initial" and i != 0:
                continue
            if where == "final" and i + len(g) != n:
                continue
            if where == "final" and g in ("ed", "es", "le") and i == 0:
                continue
            if g == "ed" and out and out[-1] in ("T", "D"):
                ph = "IH D"
            if g == "es" and out and out[-1] in ("S", "Z", "SH", "ZH", "CH", "JH"):
                ph = "IH Z"
            elif g == "es" and out and out[-1] not in VOWELS:
                # "es" after a plain consonant: silent e + plural s ("names"); lengthen the vowel as for magic e
                _lengthen_last_vowel(out, w[:i])
                ph = "Z" if out[-1] in ("B", "D", "G", "V", "M", "N", "NG", "L", "R", "DH") else "S"
            out.extend(ph.split())
            i += len(g)
            matched = True
            break
        if matched:
            continue
        c = w[i]
        nxt = w[i + 1] if i + 1 < n else ""
        if w.startswith("le", i) and 0 < i < n - 2 and w[i - 1] not in _VOWEL_LETTERS and w[i + 2] not in _VOWEL_LETTERS:
            out.extend(["AH", "L"])  # syllabic -le- inside a word: "kwibbleton"
            i += 2
            continue
        if c in _VOWEL_LETTERS:
            if c == "y" and i == 0 and nxt in _VOWEL_LETTERS:
                out.append("Y")
            elif c == "e" and i == n - 1 and i > 0 and any(ch in _VOWEL_LETTERS for ch in w[:i]):
                _lengthen_last_vowel(out, w[:i])  # silent final e
            elif c == "y" and i == n - 1:
                out.append("IY" if any(p in VOWELS for p in out) else "AY")
            elif c == "a" and i == n - 1 and i > 0:
                out.append("AH")
            elif c == "o" and i == n - 1:
                out.append("OW")
            elif c == "i" and i == n - 1 and i > 0:
                out.append("IY")
            elif c in "aeiou" and i + 2 < n and w[i + 1] not in _OPEN_BLOCKERS and w[i + 2] in "aeiou":
                out.append(_LONG[c] if c != "u" else "UW")  # open syllable: ba-con, po-lo
            else:
                out.append(_SHORT[c])
            i += 1
            continue
        if nxt == c:  # doubled consonant
            i += 1
            continue
        if c == "c":
            out.append("S" if nxt in ("e", "i", "y") else "K")
        elif c == "g":
            out.append("JH" if nxt in ("e", "i", "y") and i > 0 else "G")
        elif c == "s" and i == n - 1 and i > 0 and out and out[-1] not in ("P", "T", "K", "F", "TH"):
            out.append("Z")
        else:
            out.append(_CONSONANTS.get(c, ""))
        i += 1
    return [p for p in out if p]


def _lengthen_last_vowel(out: list[str], prefix: str) -> None:
    """Magic e: turn the last short vowel (written with one letter, one consonant before the e) long."""
    m = re.search(r"([aeiouy])([^aeiouy])$", prefix)
    if not m:
        return
    for j in range(len(out) - 1, -1, -1):
        if out[j] in VOWELS:
            if out[j] == _SHORT.get(m.group(1)):
                out[j] = _LONG[m.group(1)]
                if out[j] == "UW" and j > 0 and out[j - 1] not in ("R", "L", "Y"):
                    out[j:j + 1] = ["Y", "UW"]
            return


def _compound(word: str, lookup, min_piece: int = 3, max_pieces: int = 3) -> list[str] | None:
    """Pronunciation of ``word`` as a concatenation of dictionary words ("facetwin" = "face" + "twin"), fewest
    pieces first; pieces must be >= ``min_piece`` letters and not spelled-out acronyms."""
    n = len(word)
    best: list[list[str] | None] = [None] * (n + 1)
    count = [10**9] * (n + 1)
    best[0], count[0] = [], 0
    for end in range(1, n + 1):
        for start in range(end - min_piece + 1):
            if best[start] is None or count[start] + 1 >= count[end]:
                continue
            piece = word[start:end]
            pron = lookup(piece)
            if not pron or len(pron.split()) > len(piece) + 1:  # "abc" -> EY B IY S IY: an acronym, not a word
                continue
            best[end], count[end] = best[start] + pron.split(), count[start] + 1
    if best[n] is None or count[n] < 2 or count[n] > max_pieces:
        return None
    return best[n]


def espeak_pronunciation(word: str) -> list[str] | None:
    """ARPAbet for ``word`` from espeak-ng's en-us letter-to-sound rules and dictionary
    (:func:`facetwin.audio.tts.text_to_phonemes`, mapped by :func:`ipa_to_arpabet`), or None when espeak-ng is
    unavailable."""
    try:
        from .tts import text_to_phonemes

        ipa = text_to_phonemes(word, "en")
    except Exception:  # noqa: BLE001 - any espeak problem: fall back to the rules
        return None
    phones = ipa_to_arpabet(ipa)
    return phones or None


def pronounce(word: str, lookup=None, use_espeak: bool = True) -> tuple[list[str], str]:
    """ARPAbet pronunciation for a normalised (lowercase, spoken) word and where it came from.

    Sources, in order: ``"dictionary"`` (pocketsphinx's CMU dictionary), ``"possessive"`` (a known word plus
    's), ``"espeak"`` (espeak-ng's own pronunciation, :func:`espeak_pronunciation`: what the TTS says, and a good
    guess for names). Without espeak-ng (or with ``use_espeak=False``): ``"compound"`` (two or three known words
    of 3+ letters: "facetwin" = "face" + "twin"), ``"letters"`` (spelled out: a token without vowel letters,
    "ngt"), else ``"rules"`` (:func:`letter_to_sound`). ``lookup`` maps a word to its dictionary phones or None
    (default: the shared decoder's dictionary).
    """
    if lookup is None:
        lookup = _dictionary_lookup
    pron = lookup(word)
    if pron:
        return pron.split(), "dictionary"
    if word.endswith("'s") and lookup(word[:-2]):
        base = lookup(word[:-2]).split()
        if base[-1] in ("S", "Z", "SH", "ZH", "CH", "JH"):
            tail = ["IH", "Z"]
        elif base[-1] in ("P", "T", "K", "F", "TH"):
            tail = ["S"]
        else:
            tail = ["Z"]
        return base + tail, "possessive"
    plain = word.replace("'", "")
    if plain != word and lookup(plain):
        return lookup(plain).split(), "dictionary"
    if use_espeak:
        phones = espeak_pronunciation(word)
        if phones and any(p in VOWELS for p in phones):
            return phones, "espeak"
    comp = _compound(plain, lookup) if len(plain) >= 6 else None
    if comp:
        return comp, "compound"
    if not any(c in "aeiouy" for c in plain):
        return " ".join(_LETTER_NAMES[c] for c in plain).split(), "letters"
    phones = letter_to_sound(plain)
    if not any(p in VOWELS for p in phones):
        phones = " ".join(_LETTER_NAMES[c] for c in plain).split()
        return phones, "letters"
    return phones, "rules"


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
            phones, source = pronounce(w, _dictionary_lookup)
            phones = [p for p in phones if p in PHONES]
            if not phones:
                raise ValueError(f"no pronunciation for the word {w!r} of the transcript")
            _ADDED[w] = (phones, source)
        dec.add_word(w, " ".join(_ADDED[w][0]), True)


_ADDED: dict[str, tuple[list[str], str]] = {}  # words align() added to the shared decoder: (phones, source)


def _dictionary_lookup(word: str) -> str | None:
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
    pairs = _spoken_words(transcript)
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


# IPA of other languages (espeak-ng) -> the nearest English phone, for cross-lingual alignment (align_phones): by
# place and manner for consonants, by height, backness and rounding for vowels
_IPA_XL: dict[str, tuple[str, ...]] = {
    "y": ("UW",), "ʏ": ("UH",), "ø": ("ER",), "œ": ("ER",), "ɵ": ("UH",), "ɯ": ("UW",), "ɨ": ("IH",), "ɤ": ("AH",),
    "ɥ": ("W",), "ʁ": ("R",), "ʀ": ("R",), "ɻ": ("R",), "χ": ("HH",), "ħ": ("HH",), "ɦ": ("HH",), "ʕ": ("HH",),
    "ɲ": ("N", "Y"), "ɳ": ("N",), "ʎ": ("L", "Y"), "ɭ": ("L",), "ɬ": ("SH",), "β": ("B",), "ɣ": ("G",),
    "ɸ": ("F",), "ʝ": ("Y",), "c": ("K",), "ɟ": ("G",), "q": ("K",), "ɕ": ("SH",), "ʑ": ("ZH",), "ʂ": ("SH",),
    "ʐ": ("ZH",), "ʈ": ("T",), "ɖ": ("D",), "ts": ("T", "S"), "dz": ("D", "Z"), "tɕ": ("CH",), "dʑ": ("JH",),
    "tʂ": ("CH",), "dʐ": ("JH",), "ʋ": ("V",), "ɰ": ("W",), "ɺ": ("L",), "ɽ": ("D",), "ʅ": ("ER",), "ɿ": ("IH",),
}


def _xl_arpabet(phone: str) -> list[str]:
    """ARPAbet for one IPA phone of any language: the English table, else the nearest English phone(s)."""
    out = [p for p in ipa_to_arpabet(phone) if p in PHONES]
    if out:
        return out
    base = "".join(c for c in unicodedata.normalize("NFD", phone) if not unicodedata.combining(c))
    base = "".join(c for c in base if c not in "ˈˌːˑ͡‿ʰʲʷ")
    for key in sorted(_IPA_XL, key=len, reverse=True):
        if base.startswith(key):
            return list(_IPA_XL[key]) + _xl_arpabet(base[len(key):]) if base[len(key):] else list(_IPA_XL[key])
    return [p for p in ipa_to_arpabet(base) if p in PHONES]


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
            a = _xl_arpabet(ph)
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
