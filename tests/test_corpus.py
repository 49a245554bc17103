"""The corpus builder: layout, manifest, splits, determinism, resume, bad input, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facetwin.audio.corpus import CORPUS_NPZ_KEYS, CORPUS_VERSION, build_corpus, load_item
from facetwin.audio.corpus_plan import load_sentences
from facetwin.audio.io import load_audio
from facetwin.audio.timeline import Timeline
from facetwin.audio.visemes import is_bilabial

LANGS = ("en", "fr", "de", "ja")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    manifest = build_corpus(out, 12, langs=LANGS, heldout_langs=("ja",), include_songs=True, seed=7, progress=False)
    return out, manifest


def test_manifest_and_layout(corpus):
    out, m = corpus
    on_disk = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk == m
    assert m["version"] == CORPUS_VERSION and m["fps"] == 30.0 and m["sr"] == 16000 and m["languages"] == list(LANGS)
    speech = [it for it in m["items"] if it["kind"] == "speech"]
    songs = [it for it in m["items"] if it["kind"] == "song"]
    assert len(speech) == 12 and {it["lang"] for it in speech} == set(LANGS)
    assert {it["lang"] for it in songs} >= {"en", "fr", "de"}  # twinkle, frere_jacques (fr/en/de), ode_to_joy
    assert m["total_duration_s"] == pytest.approx(sum(it["duration_s"] for it in m["items"]), abs=0.01)
    for it in m["items"]:
        audio = load_audio(out / it["audio"], sr=16000)
        assert len(audio) / 16000 == pytest.approx(it["duration_s"], abs=1e-3)
        arrays = load_item(out, it["id"])
        assert set(arrays) == set(CORPUS_NPZ_KEYS)
        T = it["n_frames"]
        assert T == int(np.ceil(it["duration_s"] * 30 - 1e-9))
        for key in ("t", "rms_db", "f0_hz", "voiced", "aperture_mm", "width_mm", "protrusion_mm", "closure", "rounded",
                    "viseme", "phoneme"):
            assert arrays[key].shape == (T,), key
        assert arrays["logmel"].shape[0] == T and arrays["lip_landmarks_mm"].shape == (T, 40, 3)
        np.testing.assert_allclose(arrays["t"], np.arange(T) / 30.0)
        timeline = Timeline.from_arrays(arrays)
        assert len(timeline) > 3 and timeline.end <= it["duration_s"] + 0.05
        # the lip targets close the lips on every bilabial of the timeline
        for p in timeline:
            if is_bilabial(p.phoneme):
                k = min(int(round((p.start + p.end) / 2 * 30)), T - 1)
                lo, hi = max(0, int(np.floor(p.start * 30)) - 1), min(T, int(np.ceil(p.end * 30)) + 1)
                assert arrays["aperture_mm"][lo:hi].min() <= 1.0, (it["id"], p)
                assert arrays["closure"][lo:hi].any() or arrays["aperture_mm"][k] <= 1.0


def test_splits_hold_out_languages_and_sentences(corpus):
    _, m = corpus
    split_of = {it["id"]: it["split"] for it in m["items"]}
    assert sorted(sum(m["splits"].values(), [])) == sorted(split_of)
    for it in m["items"]:
        if it["lang"] == "ja":
            assert it["split"] == "heldout_language"
        else:
            assert it["split"] in ("train", "heldout_sentence")
    assert m["splits"]["heldout_sentence"], "a held-out sentence split exists"
    # no sentence is in two splits
    by_sentence: dict[str, set[str]] = {}
    for it in m["items"]:
        by_sentence.setdefault(it["sentence"], set()).add(it["split"])
    assert all(len(s) == 1 for s in by_sentence.values())
    for it in m["items"]:
        if it["kind"] == "speech":
            lang, idx = it["sentence"].split(":")
            assert load_sentences(lang)[int(idx)] == it["text"]


def test_deterministic_and_resumable(corpus, tmp_path):
    out, m = corpus
    again = build_corpus(tmp_path, 12, langs=LANGS, heldout_langs=("ja",), include_songs=True, seed=7,
                         progress=False)
    assert again == m
    a, b = load_item(out, m["items"][0]["id"]), load_item(tmp_path, m["items"][0]["id"])
    for key in CORPUS_NPZ_KEYS:
        np.testing.assert_array_equal(a[key], b[key])
    # resume: a lost item is rebuilt, the others are kept as they are
    victim = m["items"][1]
    (tmp_path / victim["data"]).unlink()
    kept = tmp_path / m["items"][2]["data"]
    stamp = kept.stat().st_mtime_ns
    assert build_corpus(tmp_path, 12, langs=LANGS, heldout_langs=("ja",), include_songs=True, seed=7,
                        progress=False) == m
    assert (tmp_path / victim["data"]).exists() and kept.stat().st_mtime_ns == stamp
    # another seed gives another corpus
    other = build_corpus(tmp_path / "other", 12, langs=LANGS, heldout_langs=("ja",), include_songs=False, seed=8,
                         progress=False)
    assert [it["id"] for it in other["items"]] != [it["id"] for it in m["items"] if it["kind"] == "speech"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"langs": ["xx"]}, "unsupported language"),
        ({"langs": ["en"], "heldout_langs": ["fr"]}, "not among the corpus languages"),
        ({"heldout_fraction": 1.5}, "heldout_fraction"),
        ({"n_utterances": -1}, "n_utterances"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_corpus(tmp_path, **{"n_utterances": 2, **kwargs}, progress=False)


def test_cli_corpus_build(tmp_path, capsys):
    from facetwin.cli import main

    assert main(["corpus", "build", "--out", str(tmp_path), "-n", "4", "--langs", "en,es", "--heldout-langs", "es",
                 "--no-songs"]) == 0
    m = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert len(m["items"]) == 4 and all(it["kind"] == "speech" for it in m["items"])
    assert {it["split"] for it in m["items"] if it["lang"] == "es"} == {"heldout_language"}
    assert "4 items" in capsys.readouterr().out
    assert main(["corpus", "build", "--out", str(tmp_path / "x"), "--langs", "en,xx"]) == 2
    assert "unsupported language" in capsys.readouterr().err
    d = tmp_path / "diverse"
    assert main(["corpus", "build", "--out", str(d), "-n", "6", "--langs", "en,es", "--heldout-langs", "es",
                 "--no-songs", "--voices", "diverse", "--heldout-voices", "2", "--salad-fraction", "0.5",
                 "--workers", "2"]) == 0
    m = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    held = [it for it in m["items"] if it["split"] == "heldout_voice"]
    assert len(held) == 2 and all(it["voice"] for it in m["items"])
    capsys.readouterr()
    for bad, field in ((["--salad-fraction", "0.5"], "diverse"), (["--voices", "diverse", "--kokoro-fraction", "2"],
                                                                    "kokoro_fraction"),
                       (["--voices", "diverse", "--song-variants", "0"], "song_variants")):
        assert main(["corpus", "build", "--out", str(tmp_path / "bad"), "-n", "2", *bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and field in err[0]
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("change", [{"heldout_langs": ("fr",)}, {"heldout_fraction": 0.5}])
def test_rebuilding_in_place_with_other_splits_gives_the_new_splits(tmp_path, change):
    """Test data never stays in train: a rebuild in place with other split options assigns every item exactly as a
    fresh build with those options does (issue 11, item 8)."""
    base = {"n_utterances": 12, "langs": ("en", "fr", "es"), "heldout_langs": ("es",), "include_songs": False,
            "seed": 0, "progress": False}
    build_corpus(tmp_path / "k", **base)
    rebuilt = build_corpus(tmp_path / "k", **{**base, **change})
    fresh = build_corpus(tmp_path / "fresh", **{**base, **change})
    assert {it["id"]: it["split"] for it in rebuilt["items"]} == {it["id"]: it["split"] for it in fresh["items"]}
    assert rebuilt["splits"] == fresh["splits"] and rebuilt["heldout_languages"] == fresh["heldout_languages"]
    if "heldout_langs" in change:
        assert {it["split"] for it in rebuilt["items"] if it["lang"] == "fr"} == {"heldout_language"}
