"""Songs for :func:`facetwin.audio.sing.sing`: the song files (a melody and its lyrics in one or more
languages), read and checked (:func:`load_song`, :func:`list_songs`), and the lyric tokens parsed.

Song files: ``assets/songs/<name>.json``::

    {
      "name": "twinkle",                      # str, must equal the file name
      "title": "Twinkle, Twinkle, Little Star",
      "tempo_bpm": 100,                       # beats (quarter notes) per minute, > 0
      "key": "C major",                       # optional, informational
      "lyrics": {                             # ISO 639-1 code -> one token per note (a list, or one string split
        "en": ["Twin-", "kle", ...]           # at whitespace); the first language is the default
      },
      "notes": [[48, 1], [48, 1], ...],       # [MIDI pitch 0..127 or "rest", duration in beats > 0]
      "source": "public domain ..."           # provenance / licence, required
    }

Lyric tokens, aligned 1:1 with ``notes``:
    * a syllable, e.g. ``"star"``; a trailing ``-`` means the word goes on with the next syllable token
      (``"Twin-", "kle"``);
    * ``"-"`` alone: the previous syllable is held on into this note (melisma: same vowel, new pitch);
    * ``""`` (or null) on a ``"rest"`` note, and only there;
    * ``"written|sung"``: the written form goes into the timeline's words, the respelling to the synthesizer
      (French sung mute e: ``"Jac-", "ques|queu"`` sings "Jacqueu" [ʒakø] and labels it "Jacques"); a trailing
      ``-`` goes after the respelling (``"ques|queu-"``);
    * ``_`` joins two words inside one syllable (Spanish synalepha: ``"Dón-", "de_es-", "tás"`` sings
      "dónde estás" on three notes).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["HOLD", "REST", "Note", "Song", "list_songs", "load_song", "parse_token"]

HOLD = "-"
REST = "rest"


@dataclass(frozen=True)
class Note:
    pitch: int | None  # MIDI note number; None for a rest
    beats: float

    @property
    def is_rest(self) -> bool:
        return self.pitch is None


@dataclass(frozen=True)
class Song:
    name: str
    title: str
    tempo_bpm: float
    lyrics: dict[str, list[str]]  # language -> one token per note
    notes: list[Note]
    source: str
    key: str | None = None

    @property
    def languages(self) -> list[str]:
        return list(self.lyrics)

    @property
    def beats(self) -> float:
        return float(sum(n.beats for n in self.notes))

    def duration(self, tempo_bpm: float | None = None) -> float:
        """Length of the melody in seconds at ``tempo_bpm`` (default: the song's)."""
        return self.beats * 60.0 / float(tempo_bpm or self.tempo_bpm)


def _songs_dir():
    return resources.files("facetwin.assets").joinpath("songs")


def list_songs() -> list[str]:
    """Names of the songs shipped in ``assets/songs``."""
    return sorted(p.name[:-5] for p in _songs_dir().iterdir() if p.name.endswith(".json"))


def parse_token(tok: str) -> tuple[str, str, bool]:
    """(written, sung, continues_word) of a syllable token."""
    cont = tok.endswith("-") and tok != HOLD
    body = tok[:-1] if cont else tok
    written, _, sung = body.partition("|")
    return written, (sung or written), cont


def _validate(data: object, where: str) -> Song:
    def fail(msg: str):
        raise ValueError(f"{where}: {msg}")

    if not isinstance(data, dict):
        fail("a song file holds a JSON object")
    for req in ("name", "title", "tempo_bpm", "lyrics", "notes", "source"):
        if req not in data:
            fail(f"missing required field {req!r}")
    unknown = set(data) - {"name", "title", "tempo_bpm", "key", "lyrics", "notes", "source"}
    if unknown:
        fail(f"unknown field(s) {sorted(unknown)}")
    for f in ("name", "title", "source"):
        if not isinstance(data[f], str) or not data[f].strip():
            fail(f"field {f!r} must be a non-empty string")
    if data.get("key") is not None and not isinstance(data["key"], str):
        fail("field 'key' must be a string when given")
    tempo = data["tempo_bpm"]
    if isinstance(tempo, bool) or not isinstance(tempo, (int, float)) or not 0 < tempo < 1000:
        fail(f"field 'tempo_bpm' must be a number in (0, 1000), got {tempo!r}")
    if not isinstance(data["notes"], list) or not data["notes"]:
        fail("field 'notes' must be a non-empty list of [pitch, beats]")
    notes = []
    for i, n in enumerate(data["notes"]):
        if not isinstance(n, list) or len(n) != 2:
            fail(f"notes[{i}] must be [midi_pitch or 'rest', beats], got {n!r}")
        pitch, beats = n
        if pitch == REST:
            pitch = None
        elif isinstance(pitch, bool) or not isinstance(pitch, int) or not 0 <= pitch <= 127:
            fail(f"notes[{i}]: pitch must be a MIDI note number 0..127 or 'rest', got {pitch!r}")
        if isinstance(beats, bool) or not isinstance(beats, (int, float)) or not 0 < beats <= 64:
            fail(f"notes[{i}]: beats must be a number in (0, 64], got {beats!r}")
        notes.append(Note(pitch, float(beats)))
    lyrics = data["lyrics"]
    if not isinstance(lyrics, dict) or not lyrics:
        fail("field 'lyrics' must be a non-empty object {language: [tokens]}")
    out_lyrics: dict[str, list[str]] = {}
    for lang, toks in lyrics.items():
        f = f"lyrics[{lang!r}]"
        if not re.fullmatch(r"[a-z]{2}", lang):
            fail(f"{f}: language must be an ISO 639-1 code (two lower-case letters)")
        if isinstance(toks, str):
            toks = toks.split()
        if not isinstance(toks, list):
            fail(f"{f} must be a list of tokens (or one string)")
        toks = ["" if t is None else t for t in toks]
        if len(toks) != len(notes):
            fail(f"{f} has {len(toks)} tokens but 'notes' has {len(notes)}: they align 1:1")
        open_word = False
        for i, (t, n) in enumerate(zip(toks, notes)):
            if not isinstance(t, str):
                fail(f"{f}[{i}] must be a string, got {t!r}")
            if n.is_rest:
                if t.strip():
                    fail(f"{f}[{i}] is {t!r} on a rest: rests take an empty token")
                if open_word:
                    fail(f"{f}[{i}]: a rest inside a word (the syllable before ends with '-')")
                continue
            if not t.strip():
                fail(f"{f}[{i}] is empty on a note: sing a syllable or '-' (hold)")
            if t == HOLD:
                if i == 0 or notes[i - 1].is_rest:
                    fail(f"{f}[{i}]: '-' holds the previous syllable, but there is none")
                continue
            written, sung, cont = parse_token(t)
            if not written.strip() or not sung.strip() or any(c.isspace() for c in t):
                fail(f"{f}[{i}]: malformed syllable token {t!r}")
            open_word = cont
        if open_word:
            fail(f"{f}: the last syllable ends with '-' (a word that never ends)")
        out_lyrics[lang] = list(toks)
    return Song(
        name=data["name"], title=data["title"], tempo_bpm=float(tempo), lyrics=out_lyrics, notes=notes,
        source=data["source"], key=data.get("key"),
    )


def load_song(name: str | Path) -> Song:
    """A shipped song by name (see :func:`list_songs`) or a song file by path; validated (ValueError naming the
    offending field)."""
    p = Path(name)
    if p.suffix == ".json" and p.exists():
        text, where = p.read_text(encoding="utf-8"), str(p)
    else:
        res = _songs_dir().joinpath(f"{name}.json")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_]+", name) or not res.is_file():
            raise ValueError(f"unknown song {str(name)!r}: available songs are {', '.join(list_songs())}")
        text, where = res.read_text(encoding="utf-8"), f"songs/{name}.json"
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"{where}: not valid JSON ({e})") from None
    song = _validate(data, where)
    if p.suffix != ".json" and song.name != name:
        raise ValueError(f"{where}: field 'name' is {song.name!r}, expected {name!r}")
    return song
