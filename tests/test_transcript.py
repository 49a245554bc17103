"""Transcripts aligned to recordings in any language (facetwin.audio.transcript): cross-lingual pocketsphinx
alignment and DTW against an espeak-ng rendering put every phone where the speaker said it."""

from __future__ import annotations

import numpy as np
import pytest

from facetwin.audio.io import resample
from facetwin.audio.pronounce import to_english_phones
from facetwin.audio.transcript import crosslingual_align, dtw_align, rendered_words, transcript_timeline
from facetwin.audio.tts import synthesize

SENTENCES = {"fr": "Le petit bateau bleu part pour Bordeaux demain matin.",
             "es": "Mi madre compró un vestido blanco para la boda.",
             "de": "Der Bauer baut ein neues Haus am Ufer.",
             "ru": "Мама мыла раму у большого окна."}


@pytest.fixture(scope="module")
def spoken():
    """Each sentence spoken by another espeak-ng voice than the aligners' rendering (its own phone times known)."""
    out = {}
    for lang, text in SENTENCES.items():
        u = synthesize(text, lang, variant="m3")
        out[lang] = (resample(u.audio, u.sr, 16000), u.timeline)
    return out


def _onset_errors_ms(tl, truth) -> np.ndarray:
    assert [p.phoneme for p in tl] == [p.phoneme for p in truth]  # every phone, in order
    return 1000 * np.abs(np.array([p.start for p in tl]) - np.array([p.start for p in truth]))


#: measured medians 6-9 ms (p90 26-40) cross-lingual, 1-3 ms (p90 4-5) DTW
@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_both_aligners_find_every_phone_where_it_was_said(spoken, lang):
    audio, truth = spoken[lang]
    xl = _onset_errors_ms(crosslingual_align(audio, 16000, SENTENCES[lang], lang), truth)
    assert np.median(xl) < 20 and np.percentile(xl, 90) < 60, xl
    dtw = _onset_errors_ms(dtw_align(audio, 16000, SENTENCES[lang], lang), truth)
    assert np.median(dtw) < 15 and np.percentile(dtw, 90) < 40, dtw


def test_every_phone_of_the_languages_maps_to_an_english_phone():
    from facetwin.audio.tts import languages

    more = {"it": "Il bambino mangia una mela rossa.", "ja": "パンとミルク、ありがとうございます。",
            "ko": "감사합니다. 밥을 먹어요.", "zh": "我们喝水吃面包，是十四。", "ar": "شكرا جزيلا، مرحبا", "he": "שלום, תודה רבה"}
    for lang, text in {**SENTENCES, **more}.items():
        assert lang in languages()
        words = rendered_words(text, lang)
        unmapped = {p for _, ps in words for p in ps if not to_english_phones(p)}
        assert not unmapped, (lang, unmapped)
    assert to_english_phones("y") == ["UW"] and to_english_phones("ɥ") == ["W"] and to_english_phones("ɔ̃") == ["AO"]


def test_transcript_timeline_routes_and_refuses(spoken):
    audio, truth = spoken["fr"]
    tl = transcript_timeline(audio, 16000, SENTENCES["fr"], "fr")
    assert [p.phoneme for p in tl] == [p.phoneme for p in truth]
    with pytest.raises(ValueError, match="empty"):
        transcript_timeline(audio, 16000, "  ", "fr")
    with pytest.raises(ValueError, match="no aligner for language 'tlh'"):
        transcript_timeline(audio, 16000, "Qapla'", "tlh")
