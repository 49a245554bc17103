"""The learned lip-sync pipeline with the shipped weights: npz contract, streaming, quality on held-out clips,
the evaluation table, and the singing video."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facetwin.agents.lipsync import LIPSYNC_NPZ_KEYS, LipSyncer
from facetwin.audio.tts import synthesize
from facetwin.cli import main

SENTENCE = "Bob bought a blue umbrella, and my mom paid for it."


@pytest.fixture(scope="module")
def utterance():
    return synthesize(SENTENCE, "en")


@pytest.fixture(scope="module")
def offline():
    return LipSyncer("offline")


@pytest.fixture(scope="module")
def stream():
    return LipSyncer("stream")


def test_lipsync_command_writes_the_npz_contract(tmp_path, utterance, capsys):
    from facetwin.audio.io import save_wav
    from facetwin.sim.actuators import actuator_names
    from facetwin.sim.landmarks import landmark_ids, mouth_measures

    wav = save_wav(tmp_path / "speech.wav", utterance.audio, utterance.sr)
    out = tmp_path / "speech.npz"
    assert main(["lipsync", str(wav), "--out", str(out), "--quiet"]) == 0
    assert "real time" in capsys.readouterr().out
    d = np.load(out)
    assert set(d.files) == set(LIPSYNC_NPZ_KEYS)
    T = math.ceil(len(utterance.audio) / utterance.sr * 30 - 1e-9)
    assert float(d["fps"]) == 30.0
    assert d["t"].shape == (T,) and np.allclose(np.diff(d["t"]), 1 / 30)
    assert d["ctrl"].shape == (T, 26) and d["ctrl"].dtype == np.float32
    assert np.abs(d["ctrl"]).max() <= 1.0
    assert list(d["actuators"]) == list(actuator_names())
    n = len(landmark_ids())
    assert d["landmarks_mm"].shape == (T, n, 3) and list(d["landmark_ids"]) == list(landmark_ids())
    for k in ("aperture_mm", "width_mm", "protrusion_mm", "closure_p", "rounded_p", "open_p"):
        assert d[k].shape == (T,) and np.isfinite(d[k]).all(), k
    # the measures are those of the stored landmarks
    mm = mouth_measures(d["landmarks_mm"].astype(float))
    np.testing.assert_allclose(d["aperture_mm"], mm["aperture_mm"], atol=1e-3)
    assert str(d["mode"]) == "offline" and str(d["variant"]) == "fast"
    # the mouth moves with speech: opens on vowels, seals on the B/P/M of this sentence
    assert d["aperture_mm"].max() > 6.0
    assert d["aperture_mm"].min() < 1.5


def test_lipsync_command_rejects_bad_input(tmp_path, capsys):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    assert main(["lipsync", str(bad), "--out", str(tmp_path / "x.npz")]) == 2
    assert "error" in capsys.readouterr().err
    assert main(["lipsync", str(bad), "--out", str(tmp_path / "x.txt")]) == 2
    with pytest.raises(ValueError, match="mode"):
        LipSyncer("telepathy")


def test_stream_mode_looks_at_most_100_ms_ahead(stream, offline):
    assert stream.lookahead_s <= 0.1 + 1e-9
    assert offline.audio_model.lookahead_s > stream.audio_model.lookahead_s
    with pytest.raises(ValueError, match="100 ms"):
        LipSyncer("stream", seal_window=(1, 3), shape_lead=3)


@pytest.mark.parametrize("seal_early", [0, 2])
def test_controller_commands_equal_the_frame_by_frame_commands(offline, utterance, seal_early):
    from facetwin.agents.lipsync import MouthController

    c = MouthController(offline.self_model, mode="offline", seal_early=seal_early)
    plan = offline.plan(_audio16(utterance))
    batch = c.commands(plan)
    prev, one = c.rest, []
    for k in range(len(plan)):
        prev = c.command(plan, k, prev)
        one.append(prev)
    np.testing.assert_array_equal(batch, np.array(one))
    sealed = np.all(batch == c.seal_ctrl, axis=1)
    assert 3 <= sealed.sum() < len(batch) // 2  # "Bob ... my mom paid": seals, not everywhere


def _audio16(u):
    from facetwin.audio.io import resample

    return resample(u.audio, u.sr, 16000)


def test_live_stream_emits_exactly_the_stream_mode_commands_in_time(stream, utterance):
    from facetwin.audio.io import resample

    audio = resample(utterance.audio, utterance.sr, 16000)
    ref = stream.controls(audio, 16000).ctrl
    live = stream.stream()
    got: dict[int, np.ndarray] = {}
    rng = np.random.default_rng(0)
    i = 0
    while i < len(audio):
        n = int(rng.integers(1, 2000))
        for k, u in live.push(audio[i:i + n]):
            got[k] = u
            # command k needs audio up to t_k + lookahead and no more
            heard_s = (i + n) / 16000
            assert heard_s >= k / 30 + stream.lookahead_s - 1e-9
        i += n
    for k, u in live.flush():
        got[k] = u
    assert sorted(got) == list(range(len(ref)))
    np.testing.assert_allclose(np.stack([got[k] for k in range(len(ref))]), ref, atol=1e-6)


def test_offline_and_stream_modes_agree(offline, stream, utterance):
    """Stated tolerance: the measured aperture tracks of the two modes correlate >= 0.65 and differ by <= 2.5 mm
    on average (the stream model hears 100 ms ahead, the offline one 267 ms). The canonical-mesh face follows its
    commands closer than the old face did (faster servos, a one-frame lead), so the modes' different plans show
    more: 0.71 and 2.3 mm on this sentence (0.8 and 2.1 mm with the old face)."""
    from facetwin.sim.model import FaceModel

    face = FaceModel.load("fast")
    a = offline.run_audio(utterance.audio, utterance.sr, face=face).playback.aperture_mm
    b = stream.run_audio(utterance.audio, utterance.sr, face=face).playback.aperture_mm
    assert np.corrcoef(a, b)[0, 1] >= 0.65
    assert np.mean(np.abs(a - b)) <= 2.5


@pytest.fixture(scope="module")
def heldout_corpus(heldout_voice_corpus):
    """Items by voices (and of sentences) the shipped weights never heard."""
    return heldout_voice_corpus[0]


def test_learned_pipeline_beats_the_baselines_on_heldout_voices(heldout_corpus):
    from facetwin.agents.evaluate import evaluate, format_table

    report = evaluate(heldout_corpus, splits=("heldout_voice",), methods=("learned", "amplitude", "rest"),
                      progress=False)
    r = {m: report.results[m]["all"] for m in report.results}
    print(format_table(report))
    learned, amp, rest = r["learned"], r["amplitude"], r["rest"]
    assert learned["lip_error_mm"] < rest["lip_error_mm"] - 0.2
    assert learned["lip_error_mm"] < amp["lip_error_mm"] - 0.2
    assert learned["aperture_corr"] >= 0.6 and amp["aperture_corr"] < 0.4
    assert learned["closure_rate"] >= 0.6 > amp["closure_rate"]  # shipped weights: 70 % (21/30)
    assert learned["rounding_rate"] >= 0.4 > amp["rounding_rate"]
    assert learned["open_rate"] >= 0.75
    assert abs(learned["offset_median_ms"]) <= 30


def test_evaluate_command_prints_one_table_for_all_methods(heldout_corpus, capsys, tmp_path):
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--corpus", str(heldout_corpus), "--splits", "heldout_voice", "--max-clips", "1",
                 "--json", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    from facetwin.agents.evaluate import METHODS

    for m in METHODS:
        assert f"| {m} |" in text
    assert "B/P/M closure" in text and "real-time factor" in text
    import json

    j = json.loads(out.read_text())
    assert set(j["results"]) == set(METHODS)
    assert main(["evaluate", "--corpus", str(heldout_corpus), "--methods", "magic"]) == 2


def test_sing_renders_an_mp4_in_sync_with_the_audio(tmp_path):
    from facetwin.agents.perform import sing_file
    from facetwin.audio.sing import is_vowel
    from facetwin.sim.video import probe_video

    out = tmp_path / "song.mp4"
    perf = sing_file("happy_birthday", out, tempo_bpm=240, plot=True, layout="side_by_side", progress=False)
    info = probe_video(out)
    assert info["video_codec"] == "h264" and info["audio_codec"] == "aac"
    dur = len(perf.audio) / perf.sr
    assert abs(info["duration_s"] - dur) <= 1 / 30 + 0.03
    assert info["n_frames"] == perf.video.n_frames == math.ceil(dur * 30 - 1e-9)
    assert (info["width"], info["height"]) == (1120, 480 + 128)  # mirror + close-up, plot strip below
    # the first mouth opening comes within one frame of the first voiced phoneme (a vowel)
    first_vowel = next(p.start for p in perf.timeline if is_vowel(p.phoneme))
    ap = perf.result.playback.aperture_mm
    neutral = ap[0]
    k_open = int(np.flatnonzero(ap > neutral + 2.0)[0])
    assert abs(k_open / 30 - first_vowel) <= 1 / 30 + 1e-9, (k_open, first_vowel)


def test_lipsync_benchmark_prints_its_table(tmp_path, capsys):
    import json

    from facetwin.benchmarks import bench_lipsync

    out = tmp_path / "b.json"
    assert bench_lipsync.main(["--quick", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    for row in ("offline: features", "offline: audio -> lips", "offline: lips -> motors", "offline: total",
                "stream: total"):
        assert row in text
    data = json.loads(out.read_text())
    assert all(r["rtf"] > 0 and np.isfinite(r["rtf"]) for r in data["rows"])
    stream_row = data["rows"][-1]
    assert stream_row["lookahead_ms"] <= 100 + 1e-6 and stream_row["frame_ms_mean"] > 0
