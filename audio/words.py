"""Written words of a text, cut one way for the whole package: at whitespace and punctuation, an apostrophe, hyphen,
period, comma or middle dot between two letters or digits staying inside the word (``isn't``, ``ninety-nine``,
``3.50``). The TTS names its phones' words this way (:mod:`facetwin.audio.tts`), and the aligner cuts transcripts
the same way (:mod:`facetwin.audio.text_norm`, which also counts the spoken symbols ``& % @`` as words)."""

from __future__ import annotations

import unicodedata
from collections.abc import Collection

INNER = frozenset("'’-‐.,·")  # kept inside a word when between two letters/digits


def is_word_char(text: str, i: int, extra: Collection[str] = ()) -> bool:
    """Whether ``text[i]`` belongs to a word (``extra``: characters that always do)."""
    c = text[i]
    if c.isspace():
        return False
    if c in extra:
        return True
    cat = unicodedata.category(c)
    if cat[0] == "P":
        return c in INNER and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
    return cat[0] != "C"  # control / format characters are not word characters


def word_spans(text: str, extra: Collection[str] = ()) -> list[tuple[int, int]]:
    """``(start, end)`` character spans of the words of ``text``."""
    spans, start = [], None
    for i in range(len(text)):
        if is_word_char(text, i, extra):
            if start is None:
                start = i
        elif start is not None:
            spans.append((start, i))
            start = None
    if start is not None:
        spans.append((start, len(text)))
    return spans


__all__ = ["INNER", "is_word_char", "word_spans"]
