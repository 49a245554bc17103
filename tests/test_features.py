"""Audio features: the frame convention, log-mel / RMS / pitch values on synthetic signals, the streaming form giving
exactly the offline numbers, and the benchmark script (run on tiny sizes; no timing thresholds)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facetwin.audio import features as ft
from facetwin.audio.features import (
    FeatureExtractor,
    Features,
    extract_features,
    mel_filterbank,
)
from facetwin.audio.streaming_features import StreamingFeatures
from facetwin.benchmarks import bench_audio
from facetwin.sim.rates import num_frames

SR = 16000
REPO_ROOT = Path(__file__).resolve().parents[1]


def tone(freq: float, seconds: float, sr: int = SR, amp: float = 0.5, harmonics: int = 1) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    x = sum(amp / h * np.sin(2 * np.pi * freq * h * t + 0.3 * h) for h in range(1, harmonics + 1) if freq * h < sr / 2)
    return np.asarray(x, dtype=np.float32)


def mixed_signal(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """Voiced, noisy and silent stretches: exercises every branch of every feature."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    f0 = 180 + 60 * np.sin(2 * np.pi * 1.3 * t)
    voiced = sum(np.sin(h * 2 * np.pi * np.cumsum(f0) / SR) / h for h in range(1, 6))
    x = 0.3 * voiced * (np.sin(2 * np.pi * 2.0 * t) > -0.3)
    x += rng.normal(0, 0.05, n) * (np.sin(2 * np.pi * 0.7 * t) > 0.6)
    x[int(0.4 * n) : int(0.5 * n)] = 0.0
    return x.astype(np.float32)


# ---------------------------------------------------------------------------------------------------- frame grid
@pytest.mark.parametrize("fps", [30, 100, 29.97])
def test_frame_count_is_ceil_of_duration_times_fps(fps: float):
    ex = FeatureExtractor(SR, fps)
    for n in [0, 1, 2, 532, 533, 534, 15999, 16000, 16001, 48000, 48001]:
        expected = math.ceil(n * ex._fps / SR)  # exact rational
        assert ex.n_frames(n) == expected == num_frames(n, SR, fps), n
        f = extract_features(np.zeros(n, np.float32), SR, fps)
        assert len(f) == expected
        np.testing.assert_allclose(f.t, np.arange(expected) / fps)
        assert np.all(f.t < n / SR)


def test_frame_centres_are_the_nearest_samples():
    ex = FeatureExtractor(SR, 30)
    k = np.arange(1000)
    np.testing.assert_array_equal(ex.centres(k), np.floor(k * SR / 30 + 0.5).astype(np.int64))
    assert ex.hop == pytest.approx(SR / 30)
    ex100 = FeatureExtractor(SR, 100)
    np.testing.assert_array_equal(ex100.centres(k), 160 * k)
    for m in [-1, 0, 1, 266, 267, 532, 533, 534, 10_000]:
        assert ex.frames_through(m) == int(np.sum(ex.centres(np.arange(2000)) <= m))


def test_documented_windows_and_lookahead():
    ex30, ex100 = FeatureExtractor(SR, 30), FeatureExtractor(SR, 100)
    assert (ex30.win, ex30.n_fft) == (1067, 2048)  # two hops, 66.7 ms
    assert (ex100.win, ex100.n_fft) == (400, 512)  # 25 ms
    assert ex30.pitch_win == ex100.pitch_win == 641  # 2 * ceil(16000 / 50) + 1: 40 ms
    assert ex30.lookahead == 533 and ex30.lookahead_s == pytest.approx(533 / SR)
    assert ex100.lookahead == 320 and ex100.lookahead_s == pytest.approx(0.02)
    assert FeatureExtractor(SR, 30, win_s=0.025).win == 400


@pytest.mark.parametrize("fps", [30, 100])
def test_a_click_reaches_exactly_the_frames_whose_window_covers_it(fps: int):
    """The spectral window of frame k is samples c_k - N//2 .. c_k - N//2 + N - 1 with weight cos^2(pi (j - c_k) / N);
    the pitch window c_k - L .. c_k + L. Samples outside the audio are zeros."""
    ex = FeatureExtractor(SR, fps)
    n = SR // 2
    for j in [0, 1, 777, 4321, n - 1]:
        x = np.zeros(n, np.float32)
        x[j] = 1.0
        f = extract_features(x, SR, fps)
        c = ex.centres(np.arange(len(f)))
        offset = j - c
        sees = (offset >= -(ex.win // 2)) & (offset <= ex.win - 1 - ex.win // 2)
        weight = np.where(sees, np.cos(np.pi * offset / ex.win) ** 2, 0.0)
        heard = f.rms_db > -100.0
        np.testing.assert_array_equal(heard, weight > 1e-10 / 1.0)
        expected_db = 10 * np.log10(np.maximum(weight / ex.window.sum(), 1e-10))
        np.testing.assert_allclose(f.rms_db, expected_db, atol=1e-3)
        assert np.all(f.logmel[~heard] == np.float32(np.log(1e-6)))


# ---------------------------------------------------------------------------------------------------- values
@pytest.mark.parametrize("fps", [30, 100])
@pytest.mark.parametrize("freq", [60.0, 110.0, 220.0, 440.0, 880.0])
@pytest.mark.parametrize("harmonics", [1, 6])
def test_pitch_of_tones_within_2_percent(fps: int, freq: float, harmonics: int):
    f = extract_features(tone(freq, 1.0, harmonics=harmonics), SR, fps)
    inner = slice(int(0.05 * fps) + 1, len(f) - int(0.05 * fps) - 1)  # windows fully inside the tone
    assert np.all(f.voiced[inner])
    np.testing.assert_allclose(f.f0_hz[inner], freq, rtol=0.02)
    assert np.abs(f.f0_hz[inner] / freq - 1).max() < 0.005  # in fact much better than 2 %


def test_pitch_follows_vibrato():
    t = np.arange(2 * SR) / SR
    f_inst = 300 + 25 * np.sin(2 * np.pi * 5.5 * t)
    x = sum(np.sin(h * 2 * np.pi * np.cumsum(f_inst) / SR) / h for h in range(1, 5)).astype(np.float32) * 0.3
    f = extract_features(x, SR, 100)
    expected = 300 + 25 * np.sin(2 * np.pi * 5.5 * f.t)
    inner = slice(5, len(f) - 5)
    assert np.all(f.voiced[inner])
    np.testing.assert_allclose(f.f0_hz[inner], expected[inner], rtol=0.02)


@pytest.mark.parametrize("fps", [30, 100])
def test_silence_and_noise_are_unvoiced(fps: int):
    rng = np.random.default_rng(0)
    silent = extract_features(np.zeros(SR, np.float32), SR, fps)
    assert not silent.voiced.any() and np.all(silent.f0_hz == 0)
    assert np.all(silent.rms_db == -100.0) and np.all(silent.logmel == np.float32(np.log(1e-6)))
    for noise in (rng.normal(0, 0.1, 3 * SR), np.convolve(rng.normal(0, 0.1, 3 * SR), np.ones(6) / 6, "same")):
        f = extract_features(noise.astype(np.float32), SR, fps)
        assert f.voiced.mean() < 0.01
        assert np.all(f.f0_hz[~f.voiced] == 0)
    quiet = extract_features(tone(220.0, 1.0, amp=1e-4), SR, fps)  # -83 dBFS: below the voicing floor
    assert not quiet.voiced.any()


@pytest.mark.parametrize("amp", [0.5, 0.05])
def test_rms_db_of_a_sine(amp: float):
    f = extract_features(tone(1000.0, 1.0, amp=amp), SR, 30)
    expected = 20 * np.log10(amp / np.sqrt(2))
    np.testing.assert_allclose(f.rms_db[3:-3], expected, atol=0.05)
    assert f.rms_db.dtype == np.float32


def test_logmel_shape_dtype_and_peak_band():
    ex = FeatureExtractor(SR, 30)
    f = extract_features(tone(1000.0, 1.0), SR, 30)
    assert f.logmel.shape == (30, 80) and f.logmel.dtype == np.float32 and f.n_mels == 80
    centres_hz = ft.mel_to_hz(np.linspace(ft.hz_to_mel(0), ft.hz_to_mel(SR / 2), 82)[1:-1])
    peak_band = np.argmax(f.logmel[10])
    assert abs(centres_hz[peak_band] - 1000.0) < 60.0
    x = tone(1000.0, 1.0)
    frame = np.zeros(ex.win)
    c = int(ex.centres(10))
    frame[:] = x[c - ex.win // 2 : c - ex.win // 2 + ex.win]
    power = np.abs(np.fft.rfft(frame * ex.window, n=ex.n_fft)) ** 2
    np.testing.assert_allclose(f.logmel[10], np.log(ex.filterbank @ power + 1e-6), rtol=1e-5, atol=1e-5)


def test_mel_filterbank_triangles():
    fb = mel_filterbank(SR, 512, 80)
    assert fb.shape == (80, 257)
    assert np.all(fb >= 0) and np.all(fb.max(axis=1) > 0) and np.all(fb <= 1)
    peaks = np.argmax(fb, axis=1)
    assert np.all(np.diff(peaks) >= 0)
    covered = fb.sum(axis=0)[1:-1]  # neighbouring triangles sum to 1 between the first and last centre
    inner = slice(int(peaks[0]) + 1, int(peaks[-1]))
    np.testing.assert_allclose(covered[inner], 1.0, atol=1e-9)
    with pytest.raises(ValueError, match="cover no FFT bin"):
        mel_filterbank(SR, 64, 128)
    with pytest.raises(ValueError, match="f_min"):
        mel_filterbank(SR, 512, 40, f_min=9000)


def test_higher_sample_rates_and_options():
    x = tone(440.0, 1.0, sr=44100, harmonics=4)
    f = extract_features(x, 44100, 30, n_mels=40, f_max=8000.0, f0_min=80.0, f0_max=800.0)
    assert f.logmel.shape == (30, 40) and f.sr == 44100
    np.testing.assert_allclose(f.f0_hz[3:-3], 440.0, rtol=0.005)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="1-D"):
        extract_features(np.zeros((100, 2), np.float32), SR)
    with pytest.raises(ValueError, match="non-finite"):
        extract_features(np.array([0.0, np.nan]), SR)
    with pytest.raises(ValueError, match="floating point"):
        extract_features(np.zeros(100, np.int16), SR)
    with pytest.raises(ValueError, match="sr"):
        FeatureExtractor(0, 30)
    with pytest.raises(ValueError, match="fps"):
        FeatureExtractor(SR, -1)
    with pytest.raises(ValueError, match="f0"):
        FeatureExtractor(SR, 30, f0_min=500, f0_max=100)


# ---------------------------------------------------------------------------------------------------- streaming
def stream_in_chunks(x: np.ndarray, sizes, fps: float, **kw) -> tuple[Features, StreamingFeatures]:
    stream = StreamingFeatures(SR, fps, **kw)
    parts, i = [], 0
    for n in sizes:
        if i >= len(x):
            break
        parts.append(stream.push(x[i : i + n]))
        i += n
    assert i >= len(x)
    parts.append(stream.flush())
    return Features.concatenate(parts), stream


def assert_same_features(a: Features, b: Features) -> None:
    assert len(a) == len(b)
    np.testing.assert_array_equal(a.t, b.t)
    np.testing.assert_allclose(a.logmel, b.logmel, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(a.rms_db, b.rms_db, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(a.f0_hz, b.f0_hz, rtol=1e-6, atol=0)
    np.testing.assert_array_equal(a.voiced, b.voiced)
    assert (a.fps, a.sr) == (b.fps, b.sr)


def random_sizes(rng: np.random.Generator, total: int) -> list[int]:
    """Chunk sizes mixing 1-sample chunks, odd small ones, 10 ms, and very large ones."""
    out, used = [], 0
    while used < total:
        kind = rng.integers(4)
        n = [1, int(rng.integers(2, 50)), 160, int(rng.integers(1000, 3 * SR))][kind]
        out.append(n)
        used += n
    return out


@pytest.mark.parametrize("fps", [30, 100, 29.97])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_equals_offline_for_random_chunks(fps: float, seed: int):
    x = mixed_signal(2.0, seed)
    offline = extract_features(x, SR, fps)
    assert offline.voiced.any() and not offline.voiced.all()  # the signal exercises both branches
    online, _ = stream_in_chunks(x, random_sizes(np.random.default_rng(seed), len(x)), fps)
    assert_same_features(online, offline)


@pytest.mark.parametrize("fps", [30, 100])
def test_streaming_with_one_sample_and_one_huge_chunk(fps: int):
    x = mixed_signal(0.6, seed=5)
    offline = extract_features(x, SR, fps)
    assert_same_features(stream_in_chunks(x, [1] * len(x), fps)[0], offline)
    assert_same_features(stream_in_chunks(x, [10 * len(x)], fps)[0], offline)


@pytest.mark.parametrize("fps", [30, 100])
def test_frames_are_emitted_as_soon_as_the_lookahead_has_arrived(fps: int):
    """Frame k comes out of the push that brings the audio received to c_k + lookahead + 1 samples."""
    x = mixed_signal(0.3, seed=7)
    stream = StreamingFeatures(SR, fps)
    ex = stream.extractor
    assert stream.lookahead_s == ex.lookahead_s
    emitted_at: dict[int, int] = {}
    for i in range(len(x)):
        out = stream.push(x[i : i + 1])
        for k in out.frame_index:
            emitted_at[int(k)] = i + 1
    tail = stream.flush()
    assert set(emitted_at) == set(range(len(emitted_at)))
    for k, received in emitted_at.items():
        assert received == int(ex.centres(k)) + ex.lookahead + 1
        assert received / SR >= k / fps + ex.lookahead_s - 1e-12
    assert list(tail.frame_index) == list(range(len(emitted_at), ex.n_frames(len(x))))
    assert stream.n_emitted == ex.n_frames(len(x)) and stream.n_received == len(x)


def test_a_longer_lookahead_only_delays_the_frames():
    x = mixed_signal(1.0, seed=3)
    offline = extract_features(x, SR, 30)
    stream = StreamingFeatures(SR, 30, lookahead_s=0.1)
    assert stream.lookahead_s == pytest.approx(0.1)
    first = stream.push(x[: SR // 2])
    assert len(first) == ex_frames_through(stream, SR // 2 - 1 - 1600)
    rest = stream.push(x[SR // 2 :])
    assert_same_features(Features.concatenate([first, rest, stream.flush()]), offline)
    with pytest.raises(ValueError, match="lookahead_s"):
        StreamingFeatures(SR, 30, lookahead_s=0.01)


def ex_frames_through(stream: StreamingFeatures, last_sample: int) -> int:
    return stream.extractor.frames_through(last_sample)


def test_stream_lifecycle():
    stream = StreamingFeatures(SR, 30)
    assert len(stream.push(np.zeros(0, np.float32))) == 0
    assert len(stream.flush()) == 0  # nothing in, nothing out
    with pytest.raises(RuntimeError, match="reset"):
        stream.push(np.zeros(10, np.float32))
    stream.reset()
    x = tone(200.0, 0.02)  # shorter than the lookahead: every frame comes from flush()
    assert len(stream.push(x)) == 0
    tail = stream.flush()
    assert_same_features(tail, extract_features(x, SR, 30))
    assert len(stream.flush()) == 0
    stream.reset()
    with pytest.raises(ValueError, match="1-D"):
        stream.push(np.zeros((4, 2)))


def test_features_helpers():
    f = extract_features(mixed_signal(1.0), SR, 100)
    parts = [
        Features(f.t[a:b], f.logmel[a:b], f.rms_db[a:b], f.f0_hz[a:b], f.voiced[a:b], f.fps, f.sr)
        for a, b in [(0, 30), (30, 100)]
    ]
    assert_same_features(Features.concatenate(parts), f)
    np.testing.assert_array_equal(f.frame_index, np.arange(100))
    arrays = f.to_arrays()
    assert set(arrays) == {"t", "logmel", "rms_db", "f0_hz", "voiced", "fps", "sr"}
    assert "100 frames" in repr(f)
    with pytest.raises(ValueError):
        Features.concatenate([f, extract_features(mixed_signal(0.1), SR, 30)])


# ---------------------------------------------------------------------------------------------------- benchmark
def test_benchmark_runs_on_tiny_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    result = bench_audio.run_benchmark(
        bench_audio.BenchConfig.quick(seconds=0.5, repeats=1, fps=(30.0,), corpus=False)
    )
    labels = [r.label for r in result.rows]
    assert labels == [
        "log-mel spectrogram",
        "RMS loudness",
        "pitch (f0 + voicing)",
        bench_audio.ALL_FEATURES,
        "streaming, 10 ms chunks",
        "load_audio: 44.1 kHz stereo WAV -> 16 kHz mono",
    ]
    assert all(math.isfinite(r.rtf) and r.rtf > 0 and r.audio_seconds == pytest.approx(0.5) for r in result.rows)
    assert result.meets_target == (result.all_features()[0].rtf >= bench_audio.TARGET_RTF)
    table = bench_audio.format_table(result)
    assert table.splitlines()[0].startswith("| measurement | fps |") and len(table.splitlines()) == 2 + len(labels)
    assert "Target all features >= 200x real time on one core" in bench_audio.format_report(result)

    out = tmp_path / "bench.json"
    bench_audio.main(["--quick", "--seconds", "0.3", "--repeats", "1", "--fps", "100", "--no-load", "--no-corpus",
                      "--json", str(out)])
    assert "| streaming, 10 ms chunks | 100 |" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["target_rtf"] == bench_audio.TARGET_RTF and all(row["rtf"] > 0 for row in data["rows"])


def test_benchmark_corpus_row():
    (row,) = bench_audio.bench_corpus(bench_audio.BenchConfig.quick(seconds=2.0, repeats=1))
    assert row.label.startswith("corpus build: 11 utterances, 11 languages")
    assert row.audio_seconds > 5.0 and math.isfinite(row.rtf) and row.rtf > 0


def test_benchmark_signal_is_deterministic_speech_like():
    a = bench_audio.speech_like_signal(2.0, seed=4)
    assert a.dtype == np.float32 and len(a) == 2 * SR
    np.testing.assert_array_equal(a, bench_audio.speech_like_signal(2.0, seed=4))
    f = extract_features(a, SR, 30)
    assert 0.2 < f.voiced.mean() < 0.9


def test_benchmark_runs_as_a_script():
    script = REPO_ROOT / "benchmarks" / "bench_audio.py"
    if not script.exists():
        pytest.skip("not a source checkout")
    proc = subprocess.run([sys.executable, str(script), "--help"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "--seconds" in proc.stdout and "--quick" in proc.stdout and "--fps" in proc.stdout
