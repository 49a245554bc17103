"""What the training voices say: the built-in sentences and seeded word salads in every corpus language.

The built-in sentences (``assets/data/sentences/<lang>.txt``, 15 per language) are natural but few: a model that
hears only them hears the same few hundred words. A *word salad* is a random sequence of real words of the
language (commas and full stops sprinkled in for pauses), which espeak-ng reads with the language's own rules:
nonsense, but every phone of the language in many contexts. Word lists:

| language | words |
|---|---|
| en fr es de it ru zh ar nl pl pt... | the ``lorem`` word lists of ``faker`` (MIT): 350-2000 common words per language |
| ja | katakana words of faker's Japanese list + generated hiragana words (espeak-ng reads kana only) |
| ko | generated Hangul words (random initial + vowel + optional final jamo) |

>>> word_salad("fr", np.random.default_rng(0), 8)
'abri accent, absolument ...'
"""

from __future__ import annotations

import importlib
import unicodedata
from functools import lru_cache

import numpy as np

#: language -> faker lorem locale
FAKER_LOCALES = {
    "en": "en_US", "fr": "fr_FR", "es": "es_ES", "de": "de_DE", "it": "it_IT", "ru": "ru_RU", "zh": "zh_CN",
    "ar": "ar_AA", "he": "he_IL", "ja": "ja_JP", "nl": "nl_NL", "pl": "pl_PL", "cs": "cs_CZ", "el": "el_GR",
    "uk": "uk_UA", "vi": "vi_VN", "fa": "fa_IR", "da": "da_DK", "hy": "hy_AM", "bn": "bn_BD", "az": "az_AZ",
}
_HIRAGANA = ("あいうえお かきくけこ さしすせそ たちつてと なにぬねの はひふへほ まみむめも やゆよ らりるれろ わ ん "
             "がぎぐげご ざじずぜぞ だでど ばびぶべぼ ぱぴぷぺぽ").replace(" ", "")
# Hangul jamo indices: 19 initials, 21 vowels, 28 finals (0 = none)
_HANGUL_BASE = 0xAC00


def _is_kana(word: str) -> bool:
    return all("\u3040" <= c <= "\u30ff" for c in word)


@lru_cache(maxsize=None)
def salad_words(lang: str) -> tuple[str, ...]:
    """The word list of ``lang`` (see the module docstring); ``ValueError`` for a language without one."""
    if lang == "ko":
        return ()
    loc = FAKER_LOCALES.get(lang)
    if loc is None:
        raise ValueError(f"no word list for language {lang!r}; word salads exist for "
                         f"{', '.join(sorted([*FAKER_LOCALES, 'ko']))}")
    try:
        words = tuple(importlib.import_module(f"faker.providers.lorem.{loc}").Provider.word_list)
    except (ImportError, AttributeError) as e:  # pragma: no cover - faker is a dependency
        raise ValueError(f"the word list of {lang!r} (faker's lorem {loc}) is not available: {e}") from None
    words = tuple(unicodedata.normalize("NFC", w) for w in words if w.strip())
    if lang == "ja":
        words = tuple(w for w in words if _is_kana(w))
    return words


def _kana_word(rng: np.random.Generator) -> str:
    return "".join(_HIRAGANA[int(i)] for i in rng.integers(0, len(_HIRAGANA), int(rng.integers(2, 5))))


def _hangul_word(rng: np.random.Generator) -> str:
    out = []
    for _ in range(int(rng.integers(1, 4))):
        lead, vowel = int(rng.integers(19)), int(rng.integers(21))
        tail = int(rng.integers(28)) if rng.random() < 0.4 else 0
        out.append(chr(_HANGUL_BASE + (lead * 21 + vowel) * 28 + tail))
    return "".join(out)


def word_salad(lang: str, rng: np.random.Generator, n_words: int) -> str:
    """``n_words`` random words of ``lang`` with a comma or full stop after ~1 in 6 (pauses)."""
    words = salad_words(lang)
    out = []
    for i in range(int(n_words)):
        if lang == "ko":
            w = _hangul_word(rng)
        elif lang == "ja" and (not words or rng.random() < 0.5):
            w = _kana_word(rng)
        else:
            w = words[int(rng.integers(len(words)))]
        out.append(w)
        if i < n_words - 1 and rng.random() < 1 / 6:
            out[-1] += "、" if lang in ("ja", "zh") else ","
    joiner = "" if lang in ("ja", "zh") else " "
    end = "。" if lang in ("ja", "zh") else "."
    return joiner.join(out) + end


__all__ = ["FAKER_LOCALES", "salad_words", "word_salad"]
