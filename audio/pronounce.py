"""English pronunciations in ARPAbet for forced alignment, and the mapping between ARPAbet and IPA.

| name | what |
|---|---|
| :data:`ARPABET_TO_IPA`, :func:`arpabet_to_ipa`, :func:`ipa_to_arpabet` | the two phone alphabets, in espeak-ng's en-us vocabulary |
| :func:`pronounce` | a word missing from the CMU dictionary: a possessive of a known word, espeak-ng's pronunciation, a compound of known words, spelled letters, or :func:`letter_to_sound` |
| :func:`to_english_phones` | any language's IPA phone -> the nearest English phone(s) (cross-lingual alignment) |
"""

from __future__ import annotations

import re
import unicodedata

from .text_norm import LETTER_NAMES

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
# the longest IPA key at each position, left to right (an alternation tries the longer keys first); anything no
# key starts with (syllable breaks, spaces, length marks, lone diacritics, unknown symbols) is skipped
_IPA_KEY_RE = re.compile("|".join(re.escape(k) for k in sorted(_IPA_TO_ARPABET, key=len, reverse=True)))


def ipa_to_arpabet(ipa: str) -> list[str]:
    """ARPAbet phones for an IPA string (espeak-ng en-us style); unknown symbols and stress marks are skipped."""
    text = unicodedata.normalize("NFC", ipa)
    text = "".join(c for c in text if c not in "ˈˌ͡‿")  # stress marks and tie bars: "t͡ʃˈɜː" -> "tʃɜː"
    return [phone for m in _IPA_KEY_RE.finditer(text) for phone in _IPA_TO_ARPABET[m.group()]]


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
        from .align import dictionary_lookup  # the shared decoder's dictionary (align imports this module)

        lookup = dictionary_lookup
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
        return " ".join(LETTER_NAMES[c] for c in plain).split(), "letters"
    phones = letter_to_sound(plain)
    if not any(p in VOWELS for p in phones):
        phones = " ".join(LETTER_NAMES[c] for c in plain).split()
        return phones, "letters"
    return phones, "rules"


# IPA of other languages (espeak-ng) -> the nearest English phone, for cross-lingual alignment (align_phones): by
# place and manner for consonants, by height, backness and rounding for vowels
IPA_TO_ENGLISH: dict[str, tuple[str, ...]] = {
    "y": ("UW",), "ʏ": ("UH",), "ø": ("ER",), "œ": ("ER",), "ɵ": ("UH",), "ɯ": ("UW",), "ɨ": ("IH",), "ɤ": ("AH",),
    "ɥ": ("W",), "ʁ": ("R",), "ʀ": ("R",), "ɻ": ("R",), "χ": ("HH",), "ħ": ("HH",), "ɦ": ("HH",), "ʕ": ("HH",),
    "ɲ": ("N", "Y"), "ɳ": ("N",), "ʎ": ("L", "Y"), "ɭ": ("L",), "ɬ": ("SH",), "β": ("B",), "ɣ": ("G",),
    "ɸ": ("F",), "ʝ": ("Y",), "c": ("K",), "ɟ": ("G",), "q": ("K",), "ɕ": ("SH",), "ʑ": ("ZH",), "ʂ": ("SH",),
    "ʐ": ("ZH",), "ʈ": ("T",), "ɖ": ("D",), "ts": ("T", "S"), "dz": ("D", "Z"), "tɕ": ("CH",), "dʑ": ("JH",),
    "tʂ": ("CH",), "dʐ": ("JH",), "ʋ": ("V",), "ɰ": ("W",), "ɺ": ("L",), "ɽ": ("D",), "ʅ": ("ER",), "ɿ": ("IH",),
}


def to_english_phones(phone: str) -> list[str]:
    """ARPAbet for one IPA phone of any language: the English table, else the nearest English phone(s)."""
    out = [p for p in ipa_to_arpabet(phone) if p in PHONES]
    if out:
        return out
    base = "".join(c for c in unicodedata.normalize("NFD", phone) if not unicodedata.combining(c))
    base = "".join(c for c in base if c not in "ˈˌːˑ͡‿ʰʲʷ")
    for key in sorted(IPA_TO_ENGLISH, key=len, reverse=True):
        if base.startswith(key):
            return list(IPA_TO_ENGLISH[key]) + to_english_phones(base[len(key):]) if base[len(key):] else list(IPA_TO_ENGLISH[key])
    return [p for p in ipa_to_arpabet(base) if p in PHONES]


__all__ = ["ARPABET_TO_IPA", "IPA_TO_ENGLISH", "PHONES", "VOWELS", "arpabet_to_ipa", "espeak_pronunciation", "ipa_to_arpabet", "letter_to_sound", "pronounce", "to_english_phones"]
