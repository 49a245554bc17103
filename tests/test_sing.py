"""Singing: song files, timing, pitch, timeline."""

import json

import numpy as np
import pytest

from facetwin.audio.sing import is_vowel, midi_to_hz, sing
from facetwin.audio.songs import Note, Song, list_songs, load_song
from facetwin.audio.tts import Utterance

SONG_LANGS = [(name, lang) for name in list_songs() for lang in load_song(name).languages]


def _f0(u: Utterance) -> tuple[np.ndarray, np.ndarray]:
    import pyworld

    x = u.audio.astype(np.float64)
    f0, t = pyworld.dio(x, u.sr, f0_floor=60.0, f0_ceil=1000.0, frame_period=5.0)
    return pyworld.stonemask(x, f0, t, u.sr), t


def _note_times(song: Song, tempo: float | None = None):
    beat = 60.0 / (tempo or song.tempo_bpm)
    t = 0.0
    for n in song.notes:
        yield n, t, t + n.beats * beat
        t += n.beats * beat


@pytest.fixture(scope="module")
def twinkle():
    return sing("twinkle")


def test_songs_shipped_and_valid():
    assert {"twinkle", "frere_jacques", "happy_birthday", "ode_to_joy"} <= set(list_songs())
    fj = load_song("frere_jacques")
    assert set(fj.languages) >= {"fr", "en", "de", "es"} and fj.languages[0] == "fr"
    for name in list_songs():
        song = load_song(name)
        assert song.name == name and song.title and "public domain" in song.source.lower()
        for toks in song.lyrics.values():
            assert len(toks) == len(song.notes)
    assert "2016" in load_song("happy_birthday").source
    assert load_song("twinkle").beats == 48 and load_song("twinkle").duration() == pytest.approx(28.8)


def test_twinkle_duration_and_timeline(twinkle):
    song = load_song("twinkle")
    expected = song.beats * 60.0 / song.tempo_bpm
    assert abs(twinkle.duration - expected) < 0.05 * expected
    assert twinkle.sr == 22050 and twinkle.lang == "en" and twinkle.audio.dtype == np.float32
    assert np.abs(twinkle.audio).max() <= 1.0
    tl = twinkle.timeline
    # monotonic, inside the audio, covering the song (no rests in it: no gaps longer than a frame)
    for a, b in zip(tl, tl.phones[1:]):
        assert a.start < a.end <= b.start + 1e-9
    assert tl[0].start < 0.05 and tl.end > twinkle.duration - 0.05 and tl.end <= twinkle.duration + 1e-9
    covered = sum(p.duration for p in tl)
    assert covered > 0.97 * twinkle.duration
    # the lyric words, in order ("Twin-", "kle" -> "Twinkle")
    words = " ".join(song.lyrics["en"]).replace("- ", "").split()
    assert words[:4] == ["Twin" "kle", "twin" "kle", "lit" "tle", "star"]
    assert _dedupe(p.word for p in tl) == _dedupe(words)
    assert twinkle.text.startswith("Twinkle twinkle little star How I wonder")
    # every note's vowel is sung over most of the note: the phone at the middle of each note is a vowel
    mids = [(a + b) / 2 for _n, a, b in _note_times(song)]
    vowels = sum(is_vowel(lab) for lab in tl.labels_at(np.array(mids)))
    assert vowels >= 0.9 * len(mids)


def _dedupe(words):
    out = []
    for w in words:
        if not out or out[-1] != w:
            out.append(w)
    return out


def test_twinkle_pitch_follows_the_melody(twinkle):
    song = load_song("twinkle")
    f0, t = _f0(twinkle)
    cents = []
    for n, a, b in _note_times(song):
        if n.is_rest or b - a < 0.5:
            continue
        m = (t >= a + 0.1) & (t <= b - 0.05) & (f0 > 0)
        cents.append(1200 * np.log2(f0[m] / midi_to_hz(n.pitch)))
    c = np.concatenate(cents)
    assert len(c) > 2000  # sustained notes are voiced
    assert np.mean(np.abs(c) < 50) >= 0.8, np.mean(np.abs(c) < 50)
    # vibrato: the f0 moves around the note by ~+-20 cents, not flat and not wide
    assert 5 < np.median(np.abs(c)) < 30


def test_transpose_octave_doubles_f0(twinkle):
    up = sing("twinkle", transpose=12)
    assert up.duration == twinkle.duration
    assert [p.phoneme for p in up.timeline] == [p.phoneme for p in twinkle.timeline]
    f_lo, _ = _f0(twinkle)
    f_hi, _ = _f0(up)
    both = (f_lo > 0) & (f_hi > 0)
    ratio = np.median(f_hi[both] / f_lo[both])
    assert abs(ratio - 2.0) < 0.04, ratio


def test_tempo_changes_duration_not_pitch():
    song = load_song("happy_birthday")
    u = sing(song, tempo_bpm=150)
    assert u.duration == pytest.approx(song.beats * 60 / 150, abs=0.01)
    f0, t = _f0(u)
    for n, a, b in _note_times(song, 150):
        if b - a >= 0.5:
            m = (t >= a + 0.1) & (t <= b - 0.05) & (f0 > 0)
            assert np.median(np.abs(1200 * np.log2(f0[m] / midi_to_hz(n.pitch)))) < 50


@pytest.mark.parametrize("name,lang", SONG_LANGS)
def test_every_song_and_language_sings(name, lang):
    song = load_song(name)
    u = sing(name, lang)
    assert u.lang == lang
    assert abs(u.duration - song.duration()) < 0.01
    assert np.isfinite(u.audio).all() and np.abs(u.audio).max() <= 1.0
    assert np.sqrt(np.mean(u.audio.astype(np.float64) ** 2)) > 0.02
    tl = u.timeline
    assert len(tl) >= len(song.notes)  # at least one phone per sung syllable
    assert tl[0].start < 0.1 and song.duration() - 0.1 < tl.end <= u.duration + 1e-9
    for a, b in zip(tl, tl.phones[1:]):
        assert a.start < a.end <= b.start + 1e-9
    # phone words are the lyric words (syllables joined, '_' between words of one syllable)
    lyric_words = set(u.text.split())
    assert {p.word for p in tl} <= lyric_words, {p.word for p in tl} - lyric_words
    assert len({p.word for p in tl}) >= 5


def test_hold_and_rest():
    song = Song(
        name="test", title="test", tempo_bpm=60, source="public domain (test)",
        lyrics={"en": ["la", "-", "", "la"]},
        notes=[Note(57, 1), Note(60, 1), Note(None, 1), Note(57, 1)],
    )
    u = sing(song)
    assert u.duration == pytest.approx(4.0, abs=0.01)
    tl = u.timeline
    # the held vowel is one phone across both notes, the rest is a silent gap
    vowel = [p for p in tl if p.start < 1.5 < p.end]
    assert len(vowel) == 1 and is_vowel(vowel[0].phoneme) and vowel[0].end > 1.9
    assert tl.at(2.5) is None
    rest = u.audio[int(2.1 * u.sr): int(2.9 * u.sr)]
    assert np.abs(rest).max() < 1e-3
    f0, t = _f0(u)
    for a, b, midi in [(0.2, 0.9, 57), (1.2, 1.9, 60), (3.2, 3.8, 57)]:
        m = (t >= a) & (t <= b) & (f0 > 0)
        assert m.sum() > 50
        assert abs(np.median(1200 * np.log2(f0[m] / midi_to_hz(midi)))) < 30


def test_deterministic():
    a = sing("happy_birthday", tempo_bpm=200)
    b = sing("happy_birthday", tempo_bpm=200)
    assert np.array_equal(a.audio, b.audio) and a.timeline == b.timeline


def test_sing_errors():
    with pytest.raises(ValueError, match="unknown song") as e:
        sing("no_such_song")
    assert "twinkle" in str(e.value)
    with pytest.raises(ValueError, match="no lyrics in 'ja'"):
        sing("twinkle", "ja")
    with pytest.raises(ValueError, match="tempo_bpm"):
        sing("twinkle", tempo_bpm=0)


def _write(tmp_path, **changes):
    data = json.loads(json.dumps({
        "name": "mini", "title": "Mini", "tempo_bpm": 120, "source": "public domain (test)",
        "lyrics": {"en": ["la", "-", "", "la"]},
        "notes": [[60, 1], [62, 1], ["rest", 1], [60, 2]],
    }))
    data.update(changes)
    p = tmp_path / "mini.json"
    p.write_text(json.dumps(data))
    return p


def test_song_file_validation(tmp_path):
    assert load_song(_write(tmp_path)).notes[2].is_rest
    cases = [
        ({"tempo_bpm": -1}, "tempo_bpm"),
        ({"notes": [[60, 1], [200, 1], ["rest", 1], [60, 2]]}, r"notes\[1\]"),
        ({"notes": [[60, 1], [62, 0], ["rest", 1], [60, 2]]}, r"notes\[1\].*beats"),
        ({"lyrics": {"en": ["la", "-", ""]}}, r"lyrics\['en'\] has 3 tokens"),
        ({"lyrics": {"en": ["-", "la", "", "la"]}}, r"lyrics\['en'\]\[0\].*hold"),
        ({"lyrics": {"en": ["la", "la", "oops", "la"]}}, r"lyrics\['en'\]\[2\].*rest"),
        ({"lyrics": {"en": ["la", "", "", "la"]}}, r"lyrics\['en'\]\[1\] is empty"),
        ({"lyrics": {"en": ["la", "la-", "", "la"]}}, r"rest inside a word"),
        ({"lyrics": {"english": ["la", "-", "", "la"]}}, "ISO 639-1"),
        ({"source": ""}, "source"),
        ({"colour": "red"}, "unknown field"),
    ]
    for change, msg in cases:
        with pytest.raises(ValueError, match=msg):
            load_song(_write(tmp_path, **change))
    p = _write(tmp_path)
    data = json.loads(p.read_text())
    del data["notes"]
    p.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="missing required field 'notes'"):
        load_song(p)
