"""A transcript as spoken English words, for forced alignment (:mod:`facetwin.audio.align`).

:func:`transcript_words` cuts a transcript into written words as the TTS cuts them ("isn't", "well-known", "3.5"
stay whole); :func:`normalize_text` turns them into lowercase spoken words: Unicode folded to ASCII, numbers spelled
out ("42" -> "forty two", "3.5" -> "three point five", "7th" -> "seventh", "$5" -> "five dollars", years as read
aloud), "& % + @ =" and a few abbreviations spoken, hyphens and other punctuation split or dropped (apostrophes
inside words stay).
"""

from __future__ import annotations

import re
import unicodedata

from .words import word_spans

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
LETTER_NAMES = {
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


_SPOKEN_SYMBOLS = set(_SYMBOLS) | {"$"}


def transcript_words(transcript: str) -> list[str]:
    """The written words of a transcript, as :mod:`facetwin.audio.tts` names them in ``Phone.word``: cut at
    whitespace and punctuation, an apostrophe, hyphen, period or comma between two letters or digits staying inside
    the word (``isn't``, ``ninety-nine``, ``3.50``); spoken symbols (``& % + @ = $``) are words too."""
    text = str(transcript)
    return [text[a:b] for a, b in word_spans(text, _SPOKEN_SYMBOLS)]


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


def spoken_words(transcript: str) -> list[tuple[str, str]]:
    """(spoken word, written word it comes from) for the whole transcript."""
    return [(w, token) for token in transcript_words(transcript) for w in _spoken(token)]


def normalize_text(transcript: str) -> list[str]:
    """The transcript as the list of lowercase spoken words the aligner uses (see the module docstring)."""
    return [w for w, _ in spoken_words(transcript)]


__all__ = ["LETTER_NAMES", "normalize_text", "number_to_words", "spoken_words", "transcript_words"]
