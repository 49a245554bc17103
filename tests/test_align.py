"""Forced alignment (facetwin.audio.align): pocketsphinx phone times against espeak-ng's own, words, OOV, errors.

Agreement is measured on synthesized speech, whose true phone times the synthesizer reports. The two phone
sequences differ in detail (espeak's /ɾ/ for T, its r-coloured vowels /ɑːɹ/ against ARPAbet AA + R, dropped or
merged phones), so phones are matched by order after mapping both to a coarse class (vowel, bilabial,
labiodental, dental, alveolar, sibilant, postalveolar, velar, rhotic, glide, h): a Needleman-Wunsch alignment of
the two class sequences (match +1, mismatch or gap -1), then the onset difference of every matched pair with the
same class. We report the median and 90th percentile of |onset difference| over all matched pairs.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile as sf

from facetwin.audio import align as A
from facetwin.audio import pronounce as P
from facetwin.audio.align import align, align_file
from facetwin.audio.io import resample
from facetwin.audio.pronounce import ARPABET_TO_IPA, arpabet_to_ipa, ipa_to_arpabet, letter_to_sound, pronounce
from facetwin.audio.text_norm import normalize_text, number_to_words, transcript_words
from facetwin.audio.timeline import Timeline
from facetwin.audio.tts import synthesize, text_words

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "A robot face can smile, frown, and speak with moving lips.",
    "We measured the timing of every phoneme in this sentence.",
    "The weather today is bright and sunny, with a gentle breeze.",
    "Could you pass me the butter and the bread, please?",
    "My favourite number is 42, and the well-known engineer isn't here.",
    "Vivid violet flowers grew beside the old stone wall.",
]

_CLASSES = {
    "bilabial": "p b m", "labiodental": "f v", "dental": "θ ð", "alveolar": "t d n l ɾ ʔ n̩ l̩ ɫ",
    "sibilant": "s z", "postalveolar": "ʃ ʒ tʃ dʒ", "velar": "k ɡ g ŋ x", "rhotic": "ɹ r", "glide": "w j", "h": "h",
}  # fmt: skip
_CLASS_OF = {p: c for c, ps in _CLASSES.items() for p in ps.split()}
_VOWEL_CHARS = set("ɑæʌəɐɔaɛeɜɚɝɪᵻiʊuoɒ")


def coarse(phoneme: str) -> str:
    ph = re.sub("[ˈˌ]", "", phoneme)
    if ph in _CLASS_OF:
        return _CLASS_OF[ph]
    return "vowel" if any(c in _VOWEL_CHARS for c in ph) else "other"


def match_phones(ref: Timeline, hyp: Timeline) -> list[tuple]:
    """Pairs (ref phone, hyp phone) of the same coarse class, matched by order (Needleman-Wunsch)."""
    a, b = [coarse(p.phoneme) for p in ref], [coarse(p.phoneme) for p in hyp]
    n, m = len(a), len(b)
    score = np.zeros((n + 1, m + 1))
    score[:, 0] = -np.arange(n + 1)
    score[0, :] = -np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            diag = score[i - 1, j - 1] + (1 if a[i - 1] == b[j - 1] else -1)
            score[i, j] = max(diag, score[i - 1, j] - 1, score[i, j - 1] - 1)
    pairs, i, j = [], n, m
    while i > 0 and j > 0:
        if score[i, j] == score[i - 1, j - 1] + (1 if a[i - 1] == b[j - 1] else -1):
            if a[i - 1] == b[j - 1]:
                pairs.append((ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif score[i, j] == score[i - 1, j] - 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def word_sequence(tl: Timeline) -> list[str]:
    """Words in order of their phones (consecutive phones of one word collapsed)."""
    out = []
    for p in tl:
        if not out or out[-1] != p.word:
            out.append(p.word)
    return out


@pytest.fixture(scope="module")
def utterances():
    return [synthesize(s, "en") for s in SENTENCES]


@pytest.fixture(scope="module")
def aligned(utterances):
    return [align(u.audio, u.sr, s) for u, s in zip(utterances, SENTENCES)]


# ------------------------------------------------------------------------------------------------ agreement
def test_phone_onsets_agree_with_synthesizer(utterances, aligned):
    errors, n_ref = [], 0
    for u, tl in zip(utterances, aligned):
        pairs = match_phones(u.timeline, tl)
        assert len(pairs) >= 0.9 * len(u.timeline), (u.text, len(pairs), len(u.timeline))
        errors += [abs(h.start - r.start) * 1000 for r, h in pairs]
        n_ref += len(u.timeline)
    errors = np.array(errors)
    median, p90 = float(np.median(errors)), float(np.percentile(errors, 90))
    print(f"\nalignment vs espeak-ng onsets: {len(errors)} phones of {n_ref}, {len(SENTENCES)} sentences: "
          f"median {median:.1f} ms, p90 {p90:.1f} ms")  # fmt: skip
    assert median < 30.0
    assert p90 < 80.0


def test_words_in_order_and_equal_transcript_words(utterances, aligned):
    for u, tl, s in zip(utterances, aligned, SENTENCES):
        assert word_sequence(tl) == transcript_words(s) == text_words(s), s
        assert word_sequence(u.timeline) == word_sequence(tl)  # the same word names as the TTS timeline
    # the written word is kept: "42" spoken as "forty two", "well-known" as two dictionary words
    tl = aligned[6]
    assert [p.phoneme for p in tl if p.word == "42"][:2] == ["f", "ɔː"]
    assert "well-known" in {p.word for p in tl}


def test_timeline_is_valid_and_uses_tts_ipa(utterances, aligned):
    vocabulary = set(ARPABET_TO_IPA.values()) | {"ə", "ɚ", "i"}
    tts_labels = {p.phoneme for u in utterances for p in u.timeline}
    for u, tl in zip(utterances, aligned):
        assert isinstance(tl, Timeline) and len(tl) > 10
        assert tl[0].start >= 0.0 and tl.end <= u.duration + 1e-9
        assert all(p.phoneme in vocabulary for p in tl)
        assert all(p.word for p in tl)
        assert all(p.duration >= 0.02 for p in tl)  # pocketsphinx: >= 3 frames of 10 ms per phone
        assert Timeline.from_json(tl.to_json()) == Timeline.from_json(tl.to_json())
    used = {p.phoneme for tl in aligned for p in tl}
    assert len(used & tts_labels) >= 0.8 * len(used)  # mostly the very symbols the TTS emits


def test_deterministic_and_input_forms(utterances):
    u = utterances[0]
    a = align(u.audio, u.sr, SENTENCES[0])
    assert align(u.audio, u.sr, SENTENCES[0]) == a
    x16 = resample(u.audio, u.sr, 16000)
    pcm = np.round(x16 * 20000).astype(np.int16)  # int16 samples, another level
    b = align(pcm, 16000, SENTENCES[0])
    assert word_sequence(b) == word_sequence(a)
    diffs = [abs(p.start - q.start) for p, q in zip(a, b)]
    assert len(a) == len(b) and max(diffs) <= 0.021


# ------------------------------------------------------------------------------------- file, resampling
def test_align_file_44k_stereo(tmp_path, utterances):
    u = utterances[2]
    x = resample(u.audio, u.sr, 44100)
    stereo = np.stack([0.8 * x, 0.5 * x], axis=1)
    path = tmp_path / "speech_44k_stereo.wav"
    sf.write(str(path), stereo, 44100, subtype="PCM_16")
    tl = align_file(path, SENTENCES[2])
    assert word_sequence(tl) == text_words(SENTENCES[2])
    errors = [abs(h.start - r.start) * 1000 for r, h in match_phones(u.timeline, tl)]
    assert len(errors) >= 0.9 * len(u.timeline)
    assert np.median(errors) < 30.0
    # a 2-D array at 44.1 kHz given directly takes the same path
    direct = align(stereo, 44100, SENTENCES[2])
    assert word_sequence(direct) == word_sequence(tl)
    assert max(abs(p.start - q.start) for p, q in zip(direct, tl)) <= 0.021


# ------------------------------------------------------------------------------------- out of vocabulary
def test_out_of_vocabulary_names_align():
    text = "Zorblax met Kwibbleton at the facetwin lab."
    assert A.dictionary_lookup("zorblax") is None  # not in the CMU dictionary
    u = synthesize(text, "en")
    tl = align(u.audio, u.sr, text)
    assert word_sequence(tl) == ["Zorblax", "met", "Kwibbleton", "at", "the", "facetwin", "lab"]
    errors = [abs(h.start - r.start) * 1000 for r, h in match_phones(u.timeline, tl)]
    assert np.median(errors) < 30.0
    z = [p.phoneme for p in tl if p.word == "Zorblax"]
    assert z[0] == "z" and "b" in z and z[-1] == "s"


def test_pronunciation_sources():
    assert pronounce("face") == (["F", "EY", "S"], "dictionary")
    phones, source = pronounce("zorblax")
    assert source == "espeak" and phones[:2] == ["Z", "AO"]
    assert pronounce("facetwin", use_espeak=False) == (["F", "EY", "S", "T", "W", "IH", "N"], "compound")
    assert pronounce("ngt", use_espeak=False)[1] == "letters"
    phones, source = pronounce("kwibbleton", use_espeak=False)
    assert source == "rules" and phones[:5] == ["K", "W", "IH", "B", "AH"]
    assert letter_to_sound("zane") == ["Z", "EY", "N"]
    assert letter_to_sound("shmorgle") == ["SH", "M", "AO", "R", "G", "AH", "L"]
    for word in ["blorptastic", "xanthrop", "quizzle", "mcgillicuddy"]:
        phones = letter_to_sound(word)
        assert phones and set(phones) <= P.PHONES and any(p in P.VOWELS for p in phones)


def test_rules_fallback_when_espeak_is_unavailable(monkeypatch, utterances):
    monkeypatch.setattr(P, "espeak_pronunciation", lambda word: None)
    text = "Please call Stellabrix and ask her to bring these things with her from the store."
    u = synthesize(text, "en")
    tl = align(u.audio, u.sr, text)
    added = A._decoder(A.EXHAUSTIVE).lookup_word("stellabrix")
    assert added == " ".join(pronounce("stellabrix", use_espeak=False)[0])
    assert word_sequence(tl) == text_words(text)


def test_transcript_that_differs_from_the_speech_still_aligns():
    """Exhaustive search: a transcript that does not match the speech (a word changed) is still forced through."""
    u = synthesize("The weather is nice today.", "en")
    tl = align(u.audio, u.sr, "The weather is lovely today.")
    assert word_sequence(tl) == ["The", "weather", "is", "lovely", "today"]


# ------------------------------------------------------------------------------------- text and phones
def test_normalize_text():
    assert normalize_text("Hello, World!") == ["hello", "world"]
    assert normalize_text("It's 42 o'clock; don't") == ["it's", "forty", "two", "o'clock", "don't"]
    assert normalize_text("3.5% of $5 & 7th 21st") == (
        "three point five percent of five dollars and seventh twenty first".split()
    )
    assert normalize_text("In 1999 and 2005 and 2024, 105 and 1,000") == (
        "in nineteen ninety nine and two thousand five and twenty twenty four one hundred five and one thousand".split()
    )
    assert normalize_text("Dr. Smith's well-known café — “naïve” O’Brien") == (
        ["doctor", "smith's", "well", "known", "cafe", "naive", "o'brien"]
    )
    assert normalize_text("  ?! ... ") == []
    assert transcript_words("Dr. Smith's well-known café, 3.5 & 42.") == (
        ["Dr", "Smith's", "well-known", "café", "3.5", "&", "42"]
    )


def test_numbers_0_to_99_are_dictionary_words():
    lookup = A.dictionary_lookup
    assert number_to_words(0) == "zero" and number_to_words(13) == "thirteen" and number_to_words(99) == "ninety nine"
    assert number_to_words(1_234_567) == "one million two hundred thirty four thousand five hundred sixty seven"
    for n in range(100):
        for w in number_to_words(n).split():
            assert lookup(w), (n, w)


def test_arpabet_to_ipa_table():
    model_phones = set(
        "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH".split()
    )
    assert set(ARPABET_TO_IPA) == model_phones
    assert arpabet_to_ipa(["K", "AH", "P"], "cup") == ["k", "ʌ", "p"]
    assert arpabet_to_ipa(["DH", "AH"], "the") == ["ð", "ə"]
    assert arpabet_to_ipa(["AH", "B", "AW", "T"], "about") == ["ə", "b", "aʊ", "t"]
    assert arpabet_to_ipa(["B", "EH", "T", "ER"], "better") == ["b", "ɛ", "t", "ɚ"]
    assert arpabet_to_ipa(["B", "ER", "D"], "bird") == ["b", "ɜː", "d"]
    assert arpabet_to_ipa(["S", "IH", "T", "IY"], "city") == ["s", "ɪ", "t", "i"]
    assert arpabet_to_ipa(["SIL"]) == [""]
    assert ipa_to_arpabet("kwˈɪbəltən") == ["K", "W", "IH", "B", "AH", "L", "T", "AH", "N"]
    assert ipa_to_arpabet("ðə kˈɑːɹ t͡ʃˈɜːtʃ bˈʌʔn̩") == "DH AH K AA R CH ER CH B AH T AH N".split()


# ------------------------------------------------------------------------------------------------ errors
def test_bad_inputs_raise_clear_errors(utterances):
    u = utterances[0]
    with pytest.raises(ValueError, match="empty transcript"):
        align(u.audio, u.sr, "")
    with pytest.raises(ValueError, match="empty transcript"):
        align(u.audio, u.sr, " ... !? ")
    with pytest.raises(ValueError, match="too short"):
        align(u.audio[: int(0.05 * u.sr)], u.sr, "the")
    with pytest.raises(ValueError, match="silent"):
        align(np.zeros(16000, np.float32), 16000, "hello world")
    with pytest.raises(ValueError, match="NaN"):
        align(np.full(16000, np.nan, np.float32), 16000, "hello world")
    with pytest.raises(ValueError, match="sample rate"):
        align(u.audio, 0, "hello world")
    with pytest.raises(ValueError, match="alignment failed"):  # 40 words cannot fit in 0.3 s
        align(u.audio[: int(0.3 * u.sr)], u.sr, " ".join(SENTENCES[:4]))
    # the shared decoder still works afterwards
    assert word_sequence(align(u.audio, u.sr, SENTENCES[0])) == text_words(SENTENCES[0])


def test_align_file_errors(tmp_path):
    from facetwin.audio.io import AudioError

    with pytest.raises(AudioError, match="file not found"):
        align_file(tmp_path / "missing.wav", "hello")
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(8000), 16000)
    with pytest.raises(ValueError, match="silent"):
        align_file(silent, "hello")


def test_long_audio_phone_pass_in_pieces(monkeypatch, utterances):
    """Audio longer than MAX_CHUNK_S is phone-aligned piece by piece (here pieces of <= 3 s of ~9 s)."""
    text = " ".join(SENTENCES[:3])
    u = synthesize(text, "en")
    whole = align(u.audio, u.sr, text)
    monkeypatch.setattr(A, "MAX_CHUNK_S", 3.0)
    pieces = align(u.audio, u.sr, text)
    assert word_sequence(pieces) == text_words(text)
    errors = [abs(h.start - r.start) * 1000 for r, h in match_phones(u.timeline, pieces)]
    assert len(errors) >= 0.9 * len(u.timeline) and np.median(errors) < 30.0
    assert abs(len(pieces) - len(whole)) <= 3
