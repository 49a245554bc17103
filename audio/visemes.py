"""Phonemes -> visemes: the viseme table, the lookup of any phone label, and viseme segments of a timeline.

>>> from facetwin.audio.visemes import phoneme_to_viseme, resolve_phoneme
>>> phoneme_to_viseme("b"), resolve_phoneme("aʊ").visemes        # "PP", ("aa", "ou")

Viseme table
    ``assets/data/visemes.csv`` maps IPA phonemes (as espeak-ng and :mod:`facetwin.audio.tts` emit them for en fr es
    de it ru ja ko zh ar he) to the Oculus / MPEG-4 style set of 14 visemes + silence (:data:`VISEMES`); a
    diphthong or a two-gesture affricate maps to a sequence (``aʊ`` -> ``aa+ou``, ``pf`` -> ``PP+FF``) whose parts
    share the phone's time. ``assets/data/viseme_targets.csv`` gives each viseme's mouth shape (aperture, width
    change, protrusion) and coarticulation parameters. Both files document their columns.

Lookup (:func:`resolve_phoneme`), in order; the first that succeeds wins and is reported as ``method``:

1. ``"table"``: the label with stress marks removed (``ˈ ˌ '``) is a key (espeak mnemonics such as ``ts.h``).
2. ``"normalised"``: :func:`normalize_phoneme` of the label is a key. The rule: NFC; language-switch markers
   ``(xx)`` -> ""; remove stress marks, length marks ``ː ˑ``, tie bars, espeak suffix punctuation ``- # ^ " . %``,
   modifier letters ``ʲ ʷ ʰ ˠ ˤ ᵝ ʼ ˀ ⁿ ˡ ʱ`` and every combining diacritic (NFD; the cedilla of ``ç`` is kept).
3. ``"compound"``: the normalised label splits into keys, longest match first (a diphthong not listed).
4. ``"class"`` (fallback): symbols not in the table are mapped by a small built-in IPA class chart
   (:data:`IPA_CLASS_FALLBACK`: clicks, implosives, rare letters, ASCII letters); unknown symbols are dropped.
5. ``"unknown"`` (fallback): nothing recognisable: ``nn`` at weight 0.5 (a mid, neutral shape the neighbours
   dominate). Never raises. :func:`unknown_phonemes` lists the labels of a timeline that needed 4 or 5.

A label that normalises to "" (a pause, an orphan marker) is silence (``sil``).

The lip track made from these visemes (coarticulation, closures, rounding, landmarks): :mod:`facetwin.audio.lip_track`.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from .timeline import Phone, Timeline

__all__ = [
    "IPA_CLASS_FALLBACK",
    "VISEMES",
    "Resolution",
    "TableEntry",
    "VisemeSegment",
    "VisemeTarget",
    "is_bilabial",
    "is_rounded",
    "load_viseme_table",
    "load_viseme_targets",
    "normalize_phoneme",
    "phoneme_to_viseme",
    "phoneme_visemes",
    "resolve_phoneme",
    "unknown_phonemes",
    "viseme_segments",
]

VISEMES: tuple[str, ...] = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")
FALLBACK_METHODS = frozenset({"class", "unknown"})

# coarticulation / constraint defaults (see the module doc)
SIL_TILE_S = 0.10
MAX_SEGMENT_S = 0.25


# ------------------------------------------------------------------------------------------------ tables
@dataclass(frozen=True)
class VisemeTarget:
    name: str
    aperture_mm: float  # absolute midline inner-lip opening
    width_pct: float  # width change, percent of the neutral width
    protrusion_mm: float  # forward movement of the outer lip midline
    dominance: float  # aperture channel (and the frame label)
    dominance_width: float
    dominance_protrusion: float
    theta_before: float  # 1/s
    theta_after: float  # 1/s
    closure: bool
    rounding: bool
    description: str = ""


@dataclass(frozen=True)
class TableEntry:
    phoneme: str
    visemes: tuple[str, ...]
    fractions: tuple[float, ...]  # share of the phone's time per part, sums to 1
    weight: float
    ipa_class: str = ""
    note: str = ""


@dataclass(frozen=True)
class Resolution:
    """How a timeline label maps to visemes."""

    label: str  # the label as given
    key: str  # the table key (or normalised label) used
    visemes: tuple[str, ...]
    fractions: tuple[float, ...]
    weight: float
    method: str  # "table", "normalised", "compound", "silence", "class" or "unknown"

    @property
    def viseme(self) -> str:
        """The main viseme: the part with the largest share (the first on ties)."""
        return self.visemes[int(np.argmax(self.fractions))]

    @property
    def fallback(self) -> bool:
        return self.method in FALLBACK_METHODS


def _read_rows(name: str) -> list[dict[str, str]]:
    text = resources.files("facetwin.assets").joinpath(f"data/{name}").read_text(encoding="utf-8")
    rows = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return list(csv.DictReader(io.StringIO("\n".join(rows))))


def _parse_visemes(spec: str, where: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    names, fracs = [], []
    for part in spec.split("+"):
        name, _, frac = part.strip().partition(":")
        if name not in VISEMES:
            raise ValueError(f"{where}: unknown viseme {name!r} (known: {' '.join(VISEMES)})")
        names.append(name)
        fracs.append(float(frac) if frac else None)
    given = sum(f for f in fracs if f is not None)
    n_free = sum(f is None for f in fracs)
    if given > 1.0 + 1e-9 or (n_free == 0 and abs(given - 1.0) > 1e-6) or any(f is not None and f <= 0 for f in fracs):
        raise ValueError(f"{where}: shares in {spec!r} must be positive and add up to 1")
    rest = (1.0 - given) / n_free if n_free else 0.0
    out = tuple(f if f is not None else rest for f in fracs)
    if min(out) <= 0:
        raise ValueError(f"{where}: no time left for a part of {spec!r}")
    return tuple(names), out


@lru_cache(maxsize=1)
def load_viseme_targets() -> dict[str, VisemeTarget]:
    """``assets/data/viseme_targets.csv``: viseme name -> :class:`VisemeTarget` (all 15 visemes)."""
    out = {}
    for r in _read_rows("viseme_targets.csv"):
        name = r["viseme"].strip()
        if name not in VISEMES:
            raise ValueError(f"viseme_targets.csv: unknown viseme {name!r}")
        out[name] = VisemeTarget(
            name, float(r["aperture_mm"]), float(r["width_pct"]), float(r["protrusion_mm"]), float(r["dominance"]),
            float(r["dominance_width"]), float(r["dominance_protrusion"]), float(r["theta_before"]),
            float(r["theta_after"]), r["closure"].strip() == "1", r["rounding"].strip() == "1",
            r.get("description", ""),
        )
    missing = set(VISEMES) - set(out)
    if missing:
        raise ValueError(f"viseme_targets.csv: no targets for {sorted(missing)}")
    return out


@lru_cache(maxsize=1)
def load_viseme_table() -> dict[str, TableEntry]:
    """``assets/data/visemes.csv``: phoneme key -> :class:`TableEntry`."""
    out: dict[str, TableEntry] = {}
    for r in _read_rows("visemes.csv"):
        key = unicodedata.normalize("NFC", r["phoneme"].strip())
        if key in out:
            raise ValueError(f"visemes.csv: duplicate phoneme {key!r}")
        names, fracs = _parse_visemes(r["viseme"], f"visemes.csv row {key!r}")
        weight = float(r["weight"])
        if weight < 0:
            raise ValueError(f"visemes.csv row {key!r}: negative weight")
        out[key] = TableEntry(key, names, fracs, weight, r.get("class", ""), r.get("note", ""))
    return out


# ------------------------------------------------------------------------------------------- normaliser
_STRESS_MARKS = "ˈˌ'"
_STRIP_CHARS = set(_STRESS_MARKS + "ːˑ‿͜͡-#^\".%=_|‖" + "ʲʷʰˠˤᵝʼˀⁿˡʱ")
_KEEP_COMBINING = {"\u0327"}  # cedilla (ç)
_MARKER = re.compile(r"^\([A-Za-z-]+\)$")


def _strip_stress(label: str) -> str:
    s = unicodedata.normalize("NFC", str(label)).strip()
    return "".join(c for c in s if c not in _STRESS_MARKS)


def normalize_phoneme(label: str) -> str:
    """The normalised form of a phoneme label (see the module doc): ``"ˈaː"`` -> ``"a"``, ``"ɔ̃"`` -> ``"ɔ"``."""
    s = unicodedata.normalize("NFC", str(label)).strip()
    if _MARKER.match(s):
        return ""
    s = "".join(c for c in s if c not in _STRIP_CHARS and not c.isspace())
    s = unicodedata.normalize("NFD", s)
    s = "".join(c for c in s if unicodedata.category(c) != "Mn" or c in _KEEP_COMBINING)
    return unicodedata.normalize("NFC", s)


#: The class chart used by the fallback: IPA / ASCII symbols that are not table keys -> viseme.
IPA_CLASS_FALLBACK: dict[str, str] = {
    # clicks and rare consonants
    "ʘ": "PP", "ʙ": "PP", "ǀ": "DD", "ǃ": "DD", "ǂ": "DD", "ǁ": "nn", "ʄ": "kk", "ʛ": "kk", "ʜ": "kk", "ʢ": "kk",
    "ʡ": "kk", "ꞎ": "nn", "ʞ": "kk",
    # ASCII letters (espeak mnemonics leaking through)
    "A": "aa", "E": "E", "I": "ih", "O": "oh", "U": "ou", "Y": "ou", "V": "aa", "@": "E", "3": "E", "0": "aa",
    "B": "PP", "P": "PP", "M": "PP", "F": "FF", "D": "TH", "T": "TH", "S": "CH", "Z": "CH", "N": "kk", "R": "RR",
    "L": "nn", "C": "kk", "G": "kk", "K": "kk", "Q": "kk", "X": "kk", "H": "kk", "J": "ih", "W": "ou",
    # obsolete vowel letters
    "ɷ": "ou", "ɩ": "ih",
}


def _compound(key: str, table: dict[str, TableEntry], allow_class: bool) -> list[TableEntry] | None:
    """Split ``key`` into table keys, longest match first; with allow_class also class-chart symbols."""
    keys = sorted((k for k in table if k), key=len, reverse=True)
    parts: list[TableEntry] = []
    i = 0
    while i < len(key):
        for k in keys:
            if key.startswith(k, i):
                parts.append(table[k])
                i += len(k)
                break
        else:
            ch = key[i]
            if allow_class and ch in IPA_CLASS_FALLBACK:
                parts.append(TableEntry(ch, (IPA_CLASS_FALLBACK[ch],), (1.0,), 1.0))
            elif not allow_class:
                return None
            i += 1
    return parts


def _merge_parts(parts: list[TableEntry]) -> tuple[tuple[str, ...], tuple[float, ...], float]:
    names: list[str] = []
    fracs: list[float] = []
    share = 1.0 / len(parts)
    for p in parts:
        for v, f in zip(p.visemes, p.fractions):
            if names and names[-1] == v:
                fracs[-1] += f * share
            else:
                names.append(v)
                fracs.append(f * share)
    return tuple(names), tuple(fracs), max(p.weight for p in parts)


@lru_cache(maxsize=4096)
def resolve_phoneme(label: str) -> Resolution:
    """Map one timeline label to visemes (see the module doc for the lookup order). Never raises."""
    table = load_viseme_table()
    label = "" if label is None else str(label)
    raw = _strip_stress(label)
    if raw in table:
        e = table[raw]
        return Resolution(label, raw, e.visemes, e.fractions, e.weight, "silence" if not raw else "table")
    key = normalize_phoneme(label)
    if not key:
        return Resolution(label, "", ("sil",), (1.0,), table[""].weight if "" in table else 1.0, "silence")
    if key in table:
        e = table[key]
        return Resolution(label, key, e.visemes, e.fractions, e.weight, "normalised")
    parts = _compound(key, table, allow_class=False)
    if parts:
        names, fracs, weight = _merge_parts(parts)
        return Resolution(label, key, names, fracs, weight, "compound")
    parts = _compound(key, table, allow_class=True)
    if parts:
        names, fracs, weight = _merge_parts(parts)
        return Resolution(label, key, names, fracs, weight, "class")
    return Resolution(label, key, ("nn",), (1.0,), 0.5, "unknown")


def phoneme_visemes(label: str) -> tuple[str, ...]:
    """The viseme sequence of a phoneme label (one viseme for most phonemes)."""
    return resolve_phoneme(label).visemes


def phoneme_to_viseme(label: str) -> str:
    """The main viseme of a phoneme label (for diphthongs the part with the largest share)."""
    return resolve_phoneme(label).viseme


def is_bilabial(label: str) -> bool:
    """True for phones with a bilabial closure (a ``PP`` part): p b m β ..., also pf."""
    return "PP" in resolve_phoneme(label).visemes


def is_rounded(label: str) -> bool:
    """True for W/OO-class phones: those with an ``ou`` part (u ʊ y ʏ w ɥ, oʊ, aʊ ...)."""
    return "ou" in resolve_phoneme(label).visemes


def unknown_phonemes(timeline: Timeline | list[Phone] | list[str]) -> dict[str, Resolution]:
    """Labels of ``timeline`` (or a list of labels) that needed the fallback, in order of first appearance."""
    labels = [p.phoneme if isinstance(p, Phone) else str(p) for p in timeline]
    out: dict[str, Resolution] = {}
    for lab in labels:
        if lab not in out:
            r = resolve_phoneme(lab)
            if r.fallback:
                out[lab] = r
    return out


# -------------------------------------------------------------------------------------------- segments
@dataclass(frozen=True)
class VisemeSegment:
    start: float
    end: float
    viseme: str
    weight: float
    phone_index: int  # index in the timeline, -1 for silence added for gaps
    phoneme: str

    @property
    def centre(self) -> float:
        return 0.5 * (self.start + self.end)


def _tile(start: float, end: float, max_len: float) -> list[tuple[float, float]]:
    n = max(1, math.ceil((end - start) / max_len - 1e-9))
    edges = np.linspace(start, end, n + 1)
    return [(float(a), float(b)) for a, b in itertools.pairwise(edges)]


def viseme_segments(
    timeline: Timeline, duration: float | None = None, *, max_segment_s: float = MAX_SEGMENT_S,
    sil_tile_s: float = SIL_TILE_S,
) -> list[VisemeSegment]:
    """The timeline as viseme segments over [0, duration]: phones split into their viseme parts, gaps as ``sil``,
    long segments tiled (see the module doc)."""
    phones = list(timeline)
    end = max(timeline.end if phones else 0.0, 0.0) if duration is None else float(duration)
    segs: list[VisemeSegment] = []

    def add_sil(a: float, b: float, idx: int = -1, ph: str = "") -> None:
        if b - a > 1e-9:
            for x, y in _tile(a, b, sil_tile_s):
                segs.append(VisemeSegment(x, y, "sil", 1.0, idx, ph))

    cursor = 0.0
    for i, p in enumerate(phones):
        add_sil(cursor, p.start)
        r = resolve_phoneme(p.phoneme)
        if r.visemes == ("sil",):
            add_sil(p.start, p.end, i, p.phoneme)
        else:
            edges = p.start + (p.end - p.start) * np.concatenate([[0.0], np.cumsum(r.fractions)])
            edges[-1] = p.end
            for v, a, b in zip(r.visemes, edges[:-1], edges[1:]):
                lim = sil_tile_s if v == "sil" else max_segment_s
                for x, y in _tile(float(a), float(b), lim):
                    segs.append(VisemeSegment(x, y, v, r.weight, i, p.phoneme))
        cursor = max(cursor, p.end)
    add_sil(cursor, max(end, cursor))
    return segs
