"""The neural training voice (facetwin.audio.kokoro): speech with phone times that an independent aligner agrees
with, voice blends, and clear errors."""

import numpy as np
import pytest

from facetwin.audio import kokoro

TEXT = "Bob put the blue book back on the bench, and we moved to Boston in May."


@pytest.fixture(scope="module")
def english():
    return kokoro.synthesize_kokoro(TEXT, "en", "jm_kumo")


def test_phonemes_keep_clause_pauses_and_kokoro_symbols():
    ph = kokoro.kokoro_phonemes("Hello there, my friend.", "en")
    assert "," in ph and ph.endswith(".")
    assert "O" in kokoro.kokoro_phonemes("go home", "en")  # oʊ as Kokoro's single letter
    assert "ä" not in kokoro.kokoro_phonemes("おはよう", "ja")  # diacritics it has no token for are dropped


def test_speech_and_its_phone_times_agree_with_pocketsphinx(english):
    from facetwin.audio.align import align
    from facetwin.audio.io import resample

    u = english
    assert u.sr == kokoro.SR and 3.0 < u.duration < 8.0 and np.abs(u.audio).max() > 0.1
    phones = [p.phoneme for p in u.timeline]
    assert phones.count("b") >= 5 and "m" in phones
    # an aligner trained on real speakers places the bilabials where Kokoro's durations say (within a frame or so)
    tl = align(resample(u.audio, u.sr, 16000), 16000, TEXT)
    ref = np.array([p.start for p in tl if p.phoneme in ("p", "b", "m")])
    got = np.array([p.start for p in u.timeline if p.phoneme in ("p", "b", "m")])
    err = np.array([np.abs(ref - g).min() for g in got])
    assert len(got) >= 8 and np.median(err) <= 0.03, np.round(err, 3)


def test_blends_languages_and_errors(english):
    a = kokoro.synthesize_kokoro("Buenos días.", "es", {"jf_alpha": 0.5, "jm_kumo": 0.5}, speed=1.2)
    assert a.duration > 0.4 and len(a.timeline) >= 6
    assert kokoro.voice_style("jm_kumo").shape == (510, 1, 256)
    with pytest.raises(ValueError, match="unknown Kokoro voice"):
        kokoro.synthesize_kokoro("hello", "en", "nobody")
    with pytest.raises(ValueError, match="speaks"):
        kokoro.synthesize_kokoro("hello", "xx")
    with pytest.raises(ValueError, match="speed"):
        kokoro.synthesize_kokoro("hello", "en", speed=5)
    assert kokoro.HELDOUT_VOICE in kokoro.VOICES
