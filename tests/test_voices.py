"""Voice diversity (facetwin.audio.voices, facetwin.audio.texts) and the diverse corpus plan."""

import hashlib
import json

import numpy as np
import pytest

from facetwin.audio.texts import word_salad
from facetwin.audio.tts import synthesize
from facetwin.audio.voices import (
    HELDOUT_VARIANTS,
    Channel,
    apply_channel,
    draw_channel,
    draw_voice,
    espeak_variants,
    train_variants,
    world_perturb,
)


def test_variants_split_into_train_and_heldout():
    allv, train = set(espeak_variants()), set(train_variants())
    assert len(train) >= 60 and set(HELDOUT_VARIANTS) <= allv and not set(HELDOUT_VARIANTS) & train
    assert "robosoft" not in allv and "Demonic" not in allv
    a = synthesize("Bob bought a blue boat.", "en", variant="m3")
    b = synthesize("Bob bought a blue boat.", "en")
    assert [p.phoneme for p in a.timeline] == [p.phoneme for p in b.timeline]
    assert len(a.audio) != len(b.audio) or not np.allclose(a.audio, b.audio)
    with pytest.raises(ValueError, match="variant"):
        synthesize("hello", "en", variant="nobody")


def _centroid(x, sr):
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    band = f < 4000
    return float((spec[band] * f[band]).sum() / spec[band].sum())


def test_world_perturb_scales_time_and_moves_formants():
    u = synthesize("We were away a year ago.", "en")
    y, tl = world_perturb(u.audio, u.sr, u.timeline, tempo=1.25)
    assert len(y) == round(len(u.audio) / 1.25)
    assert [p.phoneme for p in tl] == [p.phoneme for p in u.timeline]
    assert tl[3].start == pytest.approx(u.timeline[3].start / 1.25)
    up, _ = world_perturb(u.audio, u.sr, u.timeline, vtl=1.15)
    down, _ = world_perturb(u.audio, u.sr, u.timeline, vtl=0.87)
    assert _centroid(up, u.sr) > _centroid(down, u.sr) * 1.1
    with pytest.raises(ValueError, match="tempo"):
        world_perturb(u.audio, u.sr, u.timeline, tempo=10.0)


def test_channel_noise_band_and_determinism():
    sr = 16000
    t = np.arange(sr) / sr
    x = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32)
    noisy = apply_channel(x, sr, Channel(snr_db=10.0, noise="white"), seed=3)
    snr = 10 * np.log10(np.mean(x.astype(float) ** 2) / np.mean((noisy - x) ** 2))
    assert snr == pytest.approx(10.0, abs=1.5)
    assert np.array_equal(noisy, apply_channel(x, sr, Channel(snr_db=10.0, noise="white"), seed=3))
    phone = apply_channel(x, sr, Channel(lowpass_hz=3400, highpass_hz=300), seed=0)
    spec = np.abs(np.fft.rfft(phone))
    f = np.fft.rfftfreq(len(phone), 1 / sr)
    assert spec[np.argmin(np.abs(f - 6000))] < 0.01 * spec[np.argmin(np.abs(f - 220))] * 10
    wet = apply_channel(x, sr, Channel(rt60_s=0.5), seed=0)
    assert len(wet) == len(x) and not np.allclose(wet, x)
    rng = np.random.default_rng(0)
    names = {draw_channel(rng).name() for _ in range(40)}
    assert "clean" in names and len(names) > 20
    voices = [draw_voice(np.random.default_rng(i), train_variants()) for i in range(30)]
    assert any(v.perturbed for v in voices) and any(not v.perturbed for v in voices)


def test_word_salads_are_seeded_and_in_the_language_script():
    a = word_salad("ru", np.random.default_rng(5), 10)
    assert a == word_salad("ru", np.random.default_rng(5), 10)
    assert any("\u0400" <= c <= "\u04ff" for c in a)
    ja = word_salad("ja", np.random.default_rng(1), 6)
    assert all("\u3040" <= c <= "\u30ff" or c in "、。" for c in ja)
    ko = word_salad("ko", np.random.default_rng(1), 6)
    assert all("\uac00" <= c <= "\ud7a3" or c in " ,." for c in ko)
    with pytest.raises(ValueError, match="no word list"):
        word_salad("xx", np.random.default_rng(0), 3)


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted((folder / "data").glob("*.npz")) + sorted((folder / "audio").glob("*.wav")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def test_diverse_corpus_has_heldout_voices_and_is_the_same_with_workers(tmp_path):
    from facetwin.audio.corpus import build_corpus

    args = dict(n_utterances=12, langs=("en", "es", "he"), include_songs=False, voices="diverse",
                salad_fraction=0.5, n_heldout_voice=3, progress=False)
    m1 = build_corpus(tmp_path / "a", workers=1, **args)
    m2 = build_corpus(tmp_path / "b", workers=2, **args)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert json.dumps(m1["items"]) == json.dumps(m2["items"])
    splits = m1["splits"]
    assert len(splits["heldout_voice"]) == 3 and splits["heldout_language"] and splits["train"]
    items = {it["id"]: it for it in m1["items"]}
    held = {items[i]["voice"].split()[0] for i in splits["heldout_voice"]}
    assert held <= {f"espeak+{v}" for v in HELDOUT_VARIANTS}
    train_voices = {items[i]["voice"].split()[0] for i in splits["train"]}
    assert not held & train_voices
    assert any(items[i]["sentence"].split(":")[1].startswith("salad") for i in splits["train"])
    # the held-out voices read held-out sentences: none of them is in training
    hv = {items[i]["sentence"] for i in splits["heldout_voice"]}
    assert hv and not hv & {items[i]["sentence"] for i in splits["train"]}
    with pytest.raises(ValueError, match="diverse"):
        build_corpus(tmp_path / "c", 2, salad_fraction=0.5, progress=False)
