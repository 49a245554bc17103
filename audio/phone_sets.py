"""Phone sets: the label alphabets of labelled speech, mapped to IPA, and the lip class of every phone.

A facetwin timeline (:mod:`facetwin.audio.timeline`) holds IPA. Speech labelled by other tools comes in their own
alphabets: SPPAS writes a SAMPA variant per language, hand-labelled sets write IPA. ``assets/data/phone_sets.csv``
maps every label of every set to IPA and gives the **lip class** it is scored in:

| lip class | the lips must | scored as (:mod:`facetwin.agents.metrics`) |
|---|---|---|
| ``"bilabial"`` | close (p b m) | aperture <= 2 mm within 20 ms of the phone |
| ``"rounded"`` | round / protrude (w u o y ...) | mouth width <= 0.9 x neutral within 20 ms |
| ``"open"`` | open (open vowels) | aperture >= 5 mm within 20 ms |
| ``""`` | anything | not scored |

Timelines that facetwin makes itself (espeak-ng speech, singing, forced alignment) are in the phone set
:data:`IPA_SET` (``"espeak"``): their classes come from the viseme table (:mod:`facetwin.audio.visemes`): a ``PP``
part is bilabial, an ``ou`` part rounded, main viseme ``aa`` open. A labelled set keeps its own conventions (the
table of the development set's README: Spanish ``o`` is rounded, Japanese ``u`` is not).

>>> to_ipa("O:", "sppas-eng"), lip_class("O:", "sppas-eng")
('ɔː', 'open')
>>> lip_class("uː")                                  # espeak IPA: from the viseme table
'rounded'
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

#: the phone set of facetwin's own timelines (IPA as espeak-ng emits it); classes from the viseme table
IPA_SET = "espeak"
LIP_CLASSES = ("bilabial", "rounded", "open")
#: labels that are silence in every set (festival .segs and SPPAS conventions)
SILENCE_LABELS = frozenset({"", "pau", "#", "sil", "_", "+", "dummy"})


@dataclass(frozen=True)
class PhoneSet:
    """One label alphabet: ``ipa[label]`` and ``lip_class[label]`` (missing labels: see :func:`to_ipa`)."""

    name: str
    ipa: dict[str, str]
    lip_class: dict[str, str]

    def labels(self, cls: str) -> tuple[str, ...]:
        """The labels of lip class ``cls``."""
        return tuple(sorted(lab for lab, c in self.lip_class.items() if c == cls))


@lru_cache(maxsize=1)
def load_phone_sets() -> dict[str, PhoneSet]:
    """Every phone set of ``assets/data/phone_sets.csv`` by name."""
    text = resources.files("facetwin.assets").joinpath("data/phone_sets.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(io.StringIO("\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))))
    ipa: dict[str, dict[str, str]] = {}
    cls: dict[str, dict[str, str]] = {}
    for i, r in enumerate(rows, start=2):
        name, label, c = r["phone_set"].strip(), r["label"].strip(), (r["lip_class"] or "").strip()
        if c and c not in LIP_CLASSES:
            raise ValueError(f"phone_sets.csv row {i}: unknown lip_class {c!r} (one of {', '.join(LIP_CLASSES)})")
        if label in ipa.setdefault(name, {}):
            raise ValueError(f"phone_sets.csv row {i}: label {label!r} of {name} given twice")
        ipa[name][label] = (r["ipa"] or "").strip()
        cls.setdefault(name, {})[label] = c
    return {n: PhoneSet(n, ipa[n], cls[n]) for n in ipa}


def phone_set_names() -> tuple[str, ...]:
    """The known phone sets (:data:`IPA_SET` included)."""
    return (IPA_SET, *sorted(load_phone_sets()))


def check_phone_set(name: str) -> str:
    """``name`` if it is a known phone set, else ``ValueError`` listing them."""
    if name != IPA_SET and name not in load_phone_sets():
        raise ValueError(f"unknown phone set {name!r}; known: {', '.join(phone_set_names())}")
    return name


def to_ipa(label: str, phone_set: str = IPA_SET) -> str:
    """The IPA of ``label`` in ``phone_set`` ("" for silence). Labels a set does not list pass through unchanged
    (the viseme table's fallbacks then decide their shape); in :data:`IPA_SET` every label is already IPA."""
    lab = str(label).strip()
    if lab in SILENCE_LABELS:
        return ""
    if phone_set == IPA_SET:
        return lab
    ps = load_phone_sets().get(check_phone_set(phone_set))
    return ps.ipa.get(lab, lab) if ps is not None else lab


@lru_cache(maxsize=8192)
def lip_class(label: str, phone_set: str = IPA_SET) -> str:
    """The lip class of ``label`` (``"bilabial"``, ``"rounded"``, ``"open"`` or ``""``), see the module docstring."""
    lab = str(label).strip()
    if lab in SILENCE_LABELS:
        return ""
    if phone_set != IPA_SET:
        return load_phone_sets()[check_phone_set(phone_set)].lip_class.get(lab, "")
    from .visemes import resolve_phoneme

    r = resolve_phoneme(lab)
    if "PP" in r.visemes:
        return "bilabial"
    if "ou" in r.visemes:
        return "rounded"
    return "open" if r.viseme == "aa" else ""


__all__ = ["IPA_SET", "LIP_CLASSES", "SILENCE_LABELS", "PhoneSet", "check_phone_set", "lip_class", "load_phone_sets",
           "phone_set_names", "to_ipa"]
