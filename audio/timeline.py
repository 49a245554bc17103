"""The phoneme timeline contract: what every audio source in facetwin (TTS, singing, forced alignment, corpus)
produces and every consumer (visemes, environments, evaluation) reads.

A timeline is a time-ordered list of :class:`Phone` segments in seconds from the start of the audio:
``start < end``, segments do not overlap, gaps are allowed (silence). ``phoneme`` is an IPA string (one phoneme,
possibly with diacritics or length marks, e.g. ``"aː"``, ``"tʃ"``); pauses are the empty phoneme ``""`` or are left
as gaps. ``word`` is the orthographic word the phone belongs to ("" when unknown or silent).

Serialized as JSON (``{"version": 1, "phones": [[start, end, phoneme, word], ...]}``) or inside corpus npz files
as three arrays (``phone_start``, ``phone_end`` float64 seconds, ``phone_label`` str) plus ``phone_word``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

TIMELINE_VERSION = 1


@dataclass(frozen=True)
class Phone:
    start: float  # seconds
    end: float  # seconds
    phoneme: str  # IPA
    word: str = ""

    @property
    def duration(self) -> float:
        return self.end - self.start


class Timeline:
    """An ordered, non-overlapping sequence of :class:`Phone` segments."""

    def __init__(self, phones: Iterable[Phone]):
        self.phones: list[Phone] = sorted(phones, key=lambda p: (p.start, p.end))
        for p in self.phones:
            if not (np.isfinite(p.start) and np.isfinite(p.end)) or p.end <= p.start:
                raise ValueError(f"invalid phone segment {p}: needs finite start < end")
        for a, b in zip(self.phones, self.phones[1:]):
            if b.start < a.end - 1e-6:
                raise ValueError(f"overlapping phone segments {a} and {b}")

    def __len__(self) -> int:
        return len(self.phones)

    def __iter__(self) -> Iterator[Phone]:
        return iter(self.phones)

    def __getitem__(self, i: int) -> Phone:
        return self.phones[i]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timeline) and self.phones == other.phones

    def __repr__(self) -> str:
        return f"Timeline({len(self)} phones, {self.end:.2f} s)"

    @property
    def end(self) -> float:
        return self.phones[-1].end if self.phones else 0.0

    def shifted(self, dt: float) -> "Timeline":
        return Timeline(Phone(p.start + dt, p.end + dt, p.phoneme, p.word) for p in self.phones)

    def at(self, t: float) -> Phone | None:
        """The phone sounding at time ``t`` (None in a gap)."""
        for p in self.phones:
            if p.start <= t < p.end:
                return p
        return None

    def labels_at(self, times: np.ndarray) -> list[str]:
        """Phoneme sounding at each time ("" in gaps), vectorised over sorted or unsorted times."""
        starts = np.array([p.start for p in self.phones])
        ends = np.array([p.end for p in self.phones])
        idx = np.searchsorted(starts, np.asarray(times, dtype=float), side="right") - 1
        out = []
        for t, i in zip(np.asarray(times, dtype=float), idx):
            out.append(self.phones[i].phoneme if i >= 0 and t < ends[i] else "")
        return out

    # -------------------------------------------------------------- serialization
    def to_json(self) -> str:
        rows = [[round(p.start, 6), round(p.end, 6), p.phoneme, p.word] for p in self.phones]
        return json.dumps({"version": TIMELINE_VERSION, "phones": rows}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Timeline":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise ValueError(f"not a valid timeline JSON ({e})") from None
        if not isinstance(data, dict) or not isinstance(data.get("phones"), list):
            raise ValueError("not a timeline JSON (no list of phones)")
        if data.get("version") != TIMELINE_VERSION:
            raise ValueError(f"unsupported timeline version {data.get('version')!r} (expected {TIMELINE_VERSION})")
        return cls(Phone(float(a), float(b), str(ph), str(w)) for a, b, ph, w in data["phones"])

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Timeline":
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The npz form: phone_start, phone_end (float64 s), phone_label, phone_word (unicode arrays)."""
        return {
            "phone_start": np.array([p.start for p in self.phones], dtype=np.float64),
            "phone_end": np.array([p.end for p in self.phones], dtype=np.float64),
            "phone_label": np.array([p.phoneme for p in self.phones], dtype=str),
            "phone_word": np.array([p.word for p in self.phones], dtype=str),
        }

    @classmethod
    def from_arrays(cls, arrays) -> "Timeline":
        return cls(
            Phone(float(a), float(b), str(ph), str(w))
            for a, b, ph, w in zip(arrays["phone_start"], arrays["phone_end"], arrays["phone_label"], arrays["phone_word"])
        )
