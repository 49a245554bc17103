"""Labelled recordings: a folder of audio files with phone times (festival ``.segs``), read as timelines.

The format of a development set of real speech (one clip = ``NAME.wav`` + ``NAME.segs``; optional
``manifest.json``)::

    folder/
      00_en.wav  00_en.segs          # any audio format facetwin.audio.io reads
      ...
      manifest.json                  # optional: [{"name": "00_en", "lang": "en", "speaker": "...", "phone_set":
                                     #   "sppas-eng", "text": "...", "license": "..."}, ...]

``.segs`` (festival segment format): a first line ``#``, then one line per segment, ``END_TIME 100 LABEL``: the
segment ends at ``END_TIME`` seconds and starts where the previous one ended (the first at 0); the middle field is
festival's unused colour field. ``pau`` (and ``#``, ``sil``) is silence. Labels are in the clip's phone set
(:mod:`facetwin.audio.phone_sets`: mapped to IPA for the lip targets, and each phone's lip class for scoring).

Without a manifest, every ``*.wav`` with a sibling ``.segs`` is a clip in the phone set ``default_phone_set``
(IPA), its language the last ``_xx`` part of its name when that is a language code (``07_en`` -> ``en``), its
speaker unknown.

>>> clips = read_labelled_folder("human_dev")
>>> tl, classes = read_segs(clips[0].segs_path, clips[0].phone_set)    # IPA timeline, lip class per phone
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .phone_sets import IPA_SET, SILENCE_LABELS, check_phone_set, lip_class, to_ipa
from .timeline import Phone, Timeline

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a")
_LANG_SUFFIX = re.compile(r"_([a-z]{2,3})$")


class LabelledDataError(ValueError):
    """A labelled folder or ``.segs`` file that cannot be read; the message names the file (and line)."""


@dataclass(frozen=True)
class LabelledClip:
    """One recording with phone times."""

    name: str
    audio_path: Path
    segs_path: Path
    lang: str
    speaker: str
    phone_set: str
    text: str = ""
    license: str = ""


def read_segs_rows(path: str | Path) -> list[tuple[float, float, str]]:
    """The ``(start, end, label)`` segments of a ``.segs`` file, in order (silence included)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise LabelledDataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise LabelledDataError(f"{path}: cannot read it as UTF-8 text ({e.__class__.__name__})") from None
    body = [(i, ln) for i, ln in enumerate(lines, start=1) if ln.strip()]
    if not body or body[0][1].strip() != "#":
        raise LabelledDataError(f"{path}: not a festival .segs file (the first line must be '#')")
    rows: list[tuple[float, float, str]] = []
    start = 0.0
    for i, ln in body[1:]:
        parts = ln.split()
        if len(parts) != 3:
            raise LabelledDataError(f"{path} line {i}: expected 'END_TIME 100 LABEL', got {ln.strip()!r}")
        try:
            end = float(parts[0])
        except ValueError:
            raise LabelledDataError(f"{path} line {i}: end time {parts[0]!r} is not a number") from None
        if not end == end or end in (float("inf"), float("-inf")) or end < start:
            raise LabelledDataError(f"{path} line {i}: end time {parts[0]} is before the segment's start {start:g}")
        rows.append((start, end, parts[2]))
        start = end
    if not rows:
        raise LabelledDataError(f"{path}: no segments")
    return rows


def read_segs(path: str | Path, phone_set: str = IPA_SET) -> tuple[Timeline, tuple[str, ...]]:
    """A ``.segs`` file as an IPA :class:`Timeline` (silence left as gaps, zero-length segments dropped) and the lip
    class of each of its phones (:func:`facetwin.audio.phone_sets.lip_class` of the original label)."""
    check_phone_set(phone_set)
    phones, classes = [], []
    for start, end, label in read_segs_rows(path):
        if end <= start or label in SILENCE_LABELS:
            continue
        ipa = to_ipa(label, phone_set)
        if not ipa:
            continue
        phones.append(Phone(start, end, ipa, ""))
        classes.append(lip_class(label, phone_set))
    return Timeline(phones), tuple(classes)


def _audio_for(segs: Path) -> Path | None:
    for suf in AUDIO_SUFFIXES:
        p = segs.with_suffix(suf)
        if p.exists():
            return p
    return None


def is_labelled_folder(path: str | Path) -> bool:
    """True when ``path`` is a folder with at least one ``.segs`` file."""
    p = Path(path)
    return p.is_dir() and any(p.glob("*.segs"))


def read_labelled_folder(path: str | Path, default_phone_set: str = IPA_SET) -> list[LabelledClip]:
    """The clips of a labelled folder (see the module docstring), in name order."""
    folder = Path(path)
    if not folder.is_dir():
        raise LabelledDataError(f"{folder}: no such folder")
    mpath = folder / "manifest.json"
    entries: dict[str, dict] = {}
    if mpath.exists():
        try:
            data = json.loads(mpath.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as e:
            raise LabelledDataError(f"{mpath}: not valid JSON ({e})") from None
        if isinstance(data, dict) and "clips" in data:
            data = data["clips"]
        if not isinstance(data, list) or not all(isinstance(e, dict) and isinstance(e.get("name"), str) for e in data):
            raise LabelledDataError(f"{mpath}: expected a list of clip entries with a 'name' each")
        entries = {e["name"]: e for e in data}
    clips = []
    names = sorted(entries) if entries else sorted(p.stem for p in folder.glob("*.segs"))
    for name in names:
        e = entries.get(name, {})
        segs = folder / f"{name}.segs"
        if not segs.exists():
            raise LabelledDataError(f"{segs}: listed in {mpath.name} but missing")
        audio = _audio_for(segs)
        if audio is None:
            raise LabelledDataError(f"{segs}: no audio file beside it ({', '.join(AUDIO_SUFFIXES)})")
        m = _LANG_SUFFIX.search(name)
        lang = str(e.get("lang") or (m.group(1) if m else ""))
        phone_set = str(e.get("phone_set") or default_phone_set)
        try:
            check_phone_set(phone_set)
        except ValueError as err:
            raise LabelledDataError(f"{mpath if e else segs}: clip {name}: {err}") from None
        clips.append(LabelledClip(name=name, audio_path=audio, segs_path=segs, lang=lang,
                                  speaker=str(e.get("speaker") or "unknown"), phone_set=phone_set,
                                  text=str(e.get("text") or ""), license=str(e.get("license") or "")))
    if not clips:
        raise LabelledDataError(f"{folder}: no clips (NAME.segs beside NAME.wav)")
    return clips


__all__ = ["AUDIO_SUFFIXES", "LabelledClip", "LabelledDataError", "is_labelled_folder", "read_labelled_folder",
           "read_segs", "read_segs_rows"]
