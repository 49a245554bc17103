"""Text to speech through espeak-ng: audio, phoneme timeline, languages, errors, determinism."""

import threading
import unicodedata

import numpy as np
import pytest

from facetwin.audio.timeline import Timeline
from facetwin.audio.tts import (
    LANGUAGES,
    MAX_TEXT_CHARS,
    Utterance,
    languages,
    synthesize,
    text_to_phonemes,
    text_words,
)

SENTENCE = "The quick brown fox jumps over the lazy dog, and then it sleeps in the warm sun."

SHORT = {
    "en": "Hello, how are you today?",
    "fr": "Bonjour, comment allez-vous aujourd'hui ?",
    "es": "Hola, ¿cómo estás hoy?",
    "de": "Guten Morgen, wie geht es dir?",
    "it": "Buongiorno, come stai oggi?",
    "ru": "Здравствуйте, как у вас дела?",
    "ja": "こんにちは、おげんきですか。",  # kana: espeak's Japanese voice does not read kanji
    "ko": "안녕하세요, 잘 지내세요?",
    "zh": "你好，今天天气很好。",
    "ar": "مرحبا، كيف حالك؟",
    "he": "שלום, מה שלומך?",
}


def _non_silent(audio: np.ndarray, sr: int) -> tuple[float, float]:
    """First and last time (s) where the 10 ms RMS is within 40 dB of the loudest frame."""
    hop = sr // 100
    n = len(audio) // hop
    rms = np.sqrt(np.mean(audio[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))
    on = np.flatnonzero(rms > 0.01 * rms.max())
    return on[0] * hop / sr, (on[-1] + 1) * hop / sr


def _collapse(words):
    out = []
    for w in words:
        if not out or out[-1] != w:
            out.append(w)
    return out


@pytest.fixture(scope="module")
def english():
    return synthesize(SENTENCE, "en")


def test_english_audio_and_timeline_cover_each_other(english):
    u = english
    assert isinstance(u, Utterance) and isinstance(u.timeline, Timeline)
    assert u.sr == 22050 and u.lang == "en" and u.text == SENTENCE
    assert u.audio.dtype == np.float32 and u.audio.ndim == 1
    assert np.all(np.abs(u.audio) <= 1.0) and np.abs(u.audio).max() > 0.1
    assert 3.0 < u.duration < 8.0
    t0, t1 = _non_silent(u.audio, u.sr)
    first, last = u.timeline[0], u.timeline[-1]
    assert abs(first.start - t0) < 0.3 and first.start < 0.3
    assert abs(last.end - t1) < 0.3
    assert last.end <= u.duration + 1e-9
    # a clause pause (the comma) is a gap in the timeline, with the speech around it
    gaps = [b.start - a.end for a, b in zip(u.timeline, u.timeline.phones[1:])]
    assert max(gaps) > 0.05


def test_english_phone_durations(english):
    d = np.array([p.duration for p in english.timeline])
    assert len(d) > 40
    assert d.min() >= 0.010 and d.max() <= 0.400, (d.min(), d.max())
    assert 0.040 <= np.median(d) <= 0.150
    for a, b in zip(english.timeline, english.timeline.phones[1:]):
        assert a.start < a.end <= b.start + 1e-9


def test_english_words_in_order(english):
    expected = ["The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "and", "then", "it",
                "sleeps", "in", "the", "warm", "sun"]
    assert text_words(SENTENCE) == expected
    assert _collapse(p.word for p in english.timeline) == expected


def test_merged_function_words_get_their_own_phones():
    # espeak speaks "on the" / "of the" as one word and reports no position for "the"
    text = "The birch canoe slid on the smooth planks of the house."
    u = synthesize(text)
    assert _collapse(p.word for p in u.timeline) == text_words(text)
    the = [p.phoneme for p in u.timeline if p.word == "the"]
    assert "ð" in the


def test_event_struct_layout():
    import ctypes

    from facetwin.audio.espeak import Event

    if ctypes.sizeof(ctypes.c_void_p) == 8:
        assert ctypes.sizeof(Event) == 40
        assert (Event.audio_position.offset, Event.sample.offset, Event.user_data.offset, Event.id.offset) == (
            16, 20, 24, 32)


def test_hello_world_ipa():
    u = synthesize("hello world", "en")
    labels = [p.phoneme for p in u.timeline]
    assert labels[0] == "h"
    assert labels.count("l") >= 2  # hello, world (the /l/ of "world")
    assert "w" in labels
    assert any(lab.startswith("o") for lab in labels)  # the diphthong of "hello": oʊ
    assert any(ch in "ɜɝɚɹr" for lab in labels for ch in lab)  # r-ish vowel of "world"
    assert not any("ˈ" in lab or "ˌ" in lab for lab in labels)  # stress marks stripped
    assert [p.word for p in u.timeline] == ["hello"] * 4 + ["world"] * (len(labels) - 4)


def test_post_vocalic_l_is_kept():
    # espeak renders this /l/ inside the vowel (both events at one sample): it takes the vowel's tail
    labels = [p.phoneme for p in synthesize("bells", "en").timeline]
    assert labels == ["b", "ɛ", "l", "z"]


# The characters an IPA label may use: lower-case Latin, IPA extensions, modifier letters, combining
# diacritics, phonetic extensions.
def _ipa_char(c: str) -> bool:
    o = ord(c)
    return ("a" <= c <= "z" or 0xE0 <= o <= 0xFF or 0x250 <= o <= 0x2FF or 0x300 <= o <= 0x36F
            or 0x1D00 <= o <= 0x1DBF or c in "ŋœøæðθɡçβχħʕʔ")


@pytest.mark.parametrize("lang", sorted(SHORT))
def test_languages_speak(lang):
    text = SHORT[lang]
    u = synthesize(text, lang)
    assert u.lang == lang and u.sr == 22050
    assert len(u.timeline) > 5
    rms = float(np.sqrt(np.mean(u.audio.astype(np.float64) ** 2)))
    assert rms > 0.01, rms
    assert 0.5 < u.duration < 6.0
    assert u.timeline.end <= u.duration + 1e-9 and u.timeline[0].start < 0.3
    t0, t1 = _non_silent(u.audio, u.sr)
    assert abs(u.timeline.end - t1) < 0.3
    # every phone's word is a word of the text, in reading order (CJK runs are cut where espeak starts a word)
    pos = 0
    for w in _collapse(p.word for p in u.timeline):
        assert w and text.find(w, pos) >= 0, (w, text[pos:])
        pos = text.find(w, pos) + len(w)
    assert len({p.word for p in u.timeline}) >= 2
    for p in u.timeline:
        assert p.phoneme and all(_ipa_char(c) for c in p.phoneme), (lang, p.phoneme)
        assert unicodedata.category(p.phoneme[0]) in ("Ll", "Lm", "Lo"), (lang, p.phoneme)
        assert 0.005 <= p.duration <= 0.5, (lang, p)


def test_language_table():
    table = languages()
    assert set(LANGUAGES) >= {"en", "fr", "es", "de", "it", "ru", "ja", "ko", "zh", "ar", "he"}
    for code, voice in LANGUAGES.items():
        assert table[code] == voice
    assert len(table) >= 60  # the shipped data has ~100 languages with a 2-letter code
    assert all(len(code) == 2 and code.isalpha() and code.islower() for code in table)
    assert table["zh"] == "cmn"
    # a code only known through languages() works too, and case/whitespace do not matter
    assert len(synthesize("Goedemorgen", "nl").timeline) > 5
    assert synthesize("Hello", " EN ").lang == "en"


@pytest.mark.parametrize("bad", ["", "   ", "\n\t "])
def test_empty_text_raises(bad):
    with pytest.raises(ValueError, match="empty"):
        synthesize(bad)


def test_other_bad_inputs_raise():
    with pytest.raises(ValueError, match="too long"):
        synthesize("a " * (MAX_TEXT_CHARS // 2 + 1))
    with pytest.raises(ValueError, match="unknown language") as e:
        synthesize("hello", "xx")
    assert "en" in str(e.value) and "zh" in str(e.value)
    with pytest.raises(ValueError, match="rate_wpm"):
        synthesize("hello", rate_wpm=20)
    with pytest.raises(ValueError, match="pitch"):
        synthesize("hello", pitch=150)
    with pytest.raises(ValueError):
        synthesize(None)  # type: ignore[arg-type]
    # the longest allowed text is accepted
    assert synthesize("a" * 10 + " " * (MAX_TEXT_CHARS - 10)).timeline


def test_text_to_phonemes():
    assert text_to_phonemes("hello world") == "həlˈoʊ wˈɜːld"
    assert text_to_phonemes("Bonjour", "fr").startswith("bɔ̃ʒ")
    # the same phones synthesize() times (stress marks aside)
    u = synthesize("Strengths and rhythms")
    ipa = text_to_phonemes("Strengths and rhythms").replace("ˈ", "").replace("ˌ", "").replace(" ", "")
    assert "".join(p.phoneme for p in u.timeline) == ipa
    with pytest.raises(ValueError):
        text_to_phonemes("  ")


def test_deterministic():
    a = synthesize("Determinism matters for tests.", "en")
    synthesize("Something else in between.", "fr")
    text_to_phonemes("and some analysis", "de")
    b = synthesize("Determinism matters for tests.", "en")
    assert np.array_equal(a.audio, b.audio)
    assert a.timeline == b.timeline


def test_rate_and_pitch():
    import pyworld

    slow = synthesize("One two three four five six.", rate_wpm=120)
    fast = synthesize("One two three four five six.", rate_wpm=300)
    assert fast.duration < 0.6 * slow.duration
    assert [p.phoneme for p in fast.timeline] == [p.phoneme for p in slow.timeline]

    def median_f0(u):
        x = u.audio.astype(np.float64)
        f0, _ = pyworld.dio(x, u.sr, f0_floor=50, f0_ceil=600)
        return np.median(f0[f0 > 0])

    low = synthesize("Aaah, this is pitch.", pitch=10)
    high = synthesize("Aaah, this is pitch.", pitch=90)
    assert median_f0(high) > 1.3 * median_f0(low)


def test_threads_are_serialized_and_consistent():
    texts = [("Thread one speaking.", "en"), ("Deuxième fil.", "fr"), ("Dritter Faden.", "de"), ("Cuarto hilo.", "es")]
    expected = [synthesize(t, lang) for t, lang in texts]
    results: list = [None] * len(texts)

    def run(i):
        results[i] = synthesize(*texts[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, exp in zip(results, expected):
        assert np.array_equal(got.audio, exp.audio) and got.timeline == exp.timeline


@pytest.mark.parametrize("bad", ["...!!!", "?", " , ; "])
def test_punctuation_only_text_raises_like_empty_text(bad):
    with pytest.raises(ValueError, match="nothing to say"):
        synthesize(bad)
