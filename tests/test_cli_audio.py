"""The audio commands of the CLI: say, sing-audio, align (corpus build is in test_corpus.py)."""

from __future__ import annotations

import numpy as np
import pytest

from facetwin.audio.io import load_audio
from facetwin.audio.songs import list_songs
from facetwin.audio.timeline import Timeline
from facetwin.cli import main


def test_say_writes_audio_and_timeline(tmp_path, capsys):
    out = tmp_path / "hello.wav"
    assert main(["say", "Hello world", "--lang", "en", "--out", str(out)]) == 0
    audio = load_audio(out, sr=22050)
    timeline = Timeline.load(tmp_path / "hello.phones.json")
    assert 0.4 < len(audio) / 22050 < 2.0
    assert [p.word.lower() for p in timeline if p.word][:1] == ["hello"]
    assert {"h", "l", "w"} <= {p.phoneme for p in timeline}
    assert timeline.end <= len(audio) / 22050 + 1e-3
    assert "hello.phones.json" in capsys.readouterr().out


def test_say_in_french_differs_from_english(tmp_path):
    assert main(["say", "bonjour", "--lang", "fr", "--out", str(tmp_path / "fr.wav")]) == 0
    assert main(["say", "bonjour", "--lang", "en", "--out", str(tmp_path / "en.wav")]) == 0
    fr = Timeline.load(tmp_path / "fr.phones.json")
    en = Timeline.load(tmp_path / "en.phones.json")
    assert [p.phoneme for p in fr] != [p.phoneme for p in en]


def test_sing_audio_twinkle(tmp_path, capsys):
    out = tmp_path / "twinkle.wav"
    assert main(["sing-audio", "twinkle", "--out", str(out)]) == 0
    audio = load_audio(out, sr=16000)
    timeline = Timeline.load(tmp_path / "twinkle.phones.json")
    assert 20.0 < len(audio) / 16000 < 40.0
    assert len(timeline) > 50 and timeline.end <= len(audio) / 16000 + 0.05
    assert main(["sing-audio", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in list_songs())


@pytest.mark.parametrize(
    "argv, message",
    [
        (["say", "   ", "--out", "x.wav"], "empty"),
        (["say", "hi", "--lang", "xx", "--out", "x.wav"], "unknown language"),
        (["sing-audio", "no_such_song", "--out", "x.wav"], "unknown song"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x.wav").exists()


def test_align_command(tmp_path):
    wav = tmp_path / "s.wav"
    assert main(["say", "The blue boat is big.", "--out", str(wav)]) == 0
    out = tmp_path / "aligned.json"
    assert main(["align", str(wav), "--text", "The blue boat is big.", "--out", str(out)]) == 0
    aligned = Timeline.load(out)
    spoken = Timeline.load(tmp_path / "s.phones.json")
    words = [p.word.lower() for p in aligned if p.word]
    assert list(dict.fromkeys(words)) == ["the", "blue", "boat", "is", "big"]
    # word onsets agree with the synthesizer's within 60 ms
    def onsets(tl):
        seen, out_ = set(), []
        for p in tl:
            if p.word and p.word.lower() not in seen:
                seen.add(p.word.lower())
                out_.append(p.start)
        return np.array(out_)

    assert np.abs(onsets(aligned) - onsets(spoken)).max() < 0.06
    assert main(["align", str(tmp_path / "missing.wav"), "--text", "hi"]) == 2
    # say's exact timeline is not silently replaced by an alignment
    exact = (tmp_path / "s.phones.json").read_bytes()
    assert main(["align", str(wav), "--text", "The blue boat is big."]) == 2
    assert (tmp_path / "s.phones.json").read_bytes() == exact
    assert main(["align", str(wav), "--text", "The blue boat is big.", "--overwrite"]) == 0
    assert (tmp_path / "s.phones.json").read_bytes() != exact
