"""Audio loading: every common format to mono float32 at the requested rate, resampling, mixdown, WAV writing, and a
clear AudioError (naming the file and the problem) for each kind of bad input. All files are made in tmp_path."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from facetwin.audio.io import SILENCE_PEAK, AudioError, ffmpeg_exe, load_audio, resample, save_wav


# ---------------------------------------------------------------------------------------------------- helpers
def tone(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(round(seconds * sr))) / sr)).astype(np.float32)


def dominant_freq(x: np.ndarray, sr: int) -> float:
    """Peak of the Hann-windowed, 8x zero-padded spectrum, refined by parabolic interpolation of log magnitude."""
    n = 8 * len(x)
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=n)) + 1e-12
    i = int(np.argmax(mag[1:-1])) + 1
    a, b, c = np.log(mag[i - 1 : i + 2])
    return (i + 0.5 * (a - c) / (a - 2 * b + c)) * sr / n


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def ffmpeg_encode(src: Path, dst: Path, *args: str) -> Path:
    proc = subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-y", "-v", "error", "-i", str(src), *args, str(dst)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return dst


def write(path: Path, audio: np.ndarray, sr: int, **kw) -> Path:
    sf.write(str(path), audio, sr, **kw)
    return path


def make_file(tmp_path: Path, fmt: str, audio: np.ndarray, sr: int, name: str = "clip") -> Path:
    """``audio`` ((n,) or (n, ch)) as a real file of format ``fmt`` (mp3/m4a encoded from a WAV by ffmpeg)."""
    if fmt in ("wav", "flac", "ogg"):
        return write(tmp_path / f"{name}.{fmt}", audio, sr)
    src = write(tmp_path / f"{name}_src.wav", audio, sr)
    codec = {"mp3": ["-c:a", "libmp3lame", "-b:a", "192k"], "m4a": ["-c:a", "aac", "-b:a", "192k"]}[fmt]
    return ffmpeg_encode(src, tmp_path / f"{name}.{fmt}", *codec)


def raises_audio_error(path: Path, *phrases: str, **kw) -> AudioError:
    with pytest.raises(AudioError) as info:
        load_audio(path, **kw)
    msg = str(info.value)
    assert path.name in msg, msg
    for phrase in phrases:
        assert phrase in msg, f"{phrase!r} not in {msg!r}"
    assert info.value.path == path
    return info.value


# ---------------------------------------------------------------------------------------------------- resample
@pytest.mark.parametrize("sr_in,sr_out", [(44100, 16000), (48000, 16000), (22050, 16000), (8000, 16000), (16000, 44100)])
def test_resample_keeps_length_and_frequency(sr_in: int, sr_out: int):
    x = tone(440.0, 1.5, sr_in)
    y = resample(x, sr_in, sr_out)
    assert y.dtype == np.float32 and y.ndim == 1
    assert len(y) == int(np.ceil(len(x) * sr_out / sr_in))
    assert dominant_freq(y[2000:-2000], sr_out) == pytest.approx(440.0, rel=1e-3)
    assert rms(y[2000:-2000]) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_resample_same_rate_is_a_float32_copy():
    x = np.linspace(-1, 1, 101)
    y = resample(x, 16000, 16000)
    assert y.dtype == np.float32 and y is not x
    np.testing.assert_allclose(y, x, atol=1e-7)
    assert len(resample(np.zeros(0), 44100, 16000)) == 0


def test_resample_odd_rate_uses_a_close_ratio():
    x = tone(300.0, 1.0, 44056)
    y = resample(x, 44056, 16000)
    assert abs(len(y) - 16000 * len(x) / 44056) <= 2
    assert dominant_freq(y[1000:-1000], 16000) == pytest.approx(300.0, rel=1e-3)


def test_resample_rejects_bad_input():
    with pytest.raises(ValueError, match="1-D"):
        resample(np.zeros((10, 2)), 16000, 8000)
    with pytest.raises(ValueError, match="sr_in"):
        resample(np.zeros(10), 0, 8000)
    with pytest.raises(ValueError, match="sr_out"):
        resample(np.zeros(10), 16000, float("nan"))


# ---------------------------------------------------------------------------------------------------- loading
def test_wav_round_trip_at_native_rate(tmp_path: Path):
    x = tone(440.0, 0.5, 16000, amp=0.7)
    path = save_wav(tmp_path / "x.wav", x, 16000)
    y = load_audio(path, sr=16000)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, x, atol=1.5 / 32768)


def test_tone_at_44k_comes_back_at_16k_with_right_length_and_frequency(tmp_path: Path):
    path = write(tmp_path / "tone44k.wav", tone(440.0, 2.0, 44100), 44100, subtype="PCM_16")
    y = load_audio(path)  # default 16 kHz
    assert y.dtype == np.float32 and y.ndim == 1
    assert len(y) == 32000
    assert dominant_freq(y, 16000) == pytest.approx(440.0, rel=1e-3)
    assert rms(y[1000:-1000]) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_stereo_is_mixed_down_to_the_channel_mean(tmp_path: Path):
    sr = 16000
    left, right = tone(300.0, 1.0, sr, amp=0.6), tone(700.0, 1.0, sr, amp=0.2)
    path = write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), sr, subtype="FLOAT")
    y = load_audio(path, sr=sr)
    np.testing.assert_allclose(y, (left + right) / 2, atol=1e-6)


def test_multichannel_mixdown_then_resample(tmp_path: Path):
    sr = 48000
    chans = np.stack([tone(440.0, 1.0, sr, amp=a) for a in (0.9, 0.3, 0.0, 0.2)], axis=1)
    y = load_audio(write(tmp_path / "quad.flac", chans, sr), sr=16000)
    assert len(y) == 16000
    assert rms(y[500:-500]) == pytest.approx(0.35 / np.sqrt(2), rel=0.01)


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3", "m4a"])
def test_every_format_decodes_to_the_tone(tmp_path: Path, fmt: str):
    sr_file, seconds = 44100, 1.5
    x = tone(440.0, seconds, sr_file)
    stereo = np.stack([x, np.zeros_like(x)], axis=1)  # right channel silent: mono is half the left channel
    y = load_audio(make_file(tmp_path, fmt, stereo, sr_file), sr=16000)
    assert y.dtype == np.float32 and y.ndim == 1
    expected = int(seconds * 16000)
    if fmt in ("wav", "flac", "ogg"):
        assert len(y) == expected
    else:  # lossy codecs may keep a few ms of encoder padding
        assert abs(len(y) - expected) <= 0.03 * expected
    mid = y[len(y) // 4 : 3 * len(y) // 4]
    assert dominant_freq(mid, 16000) == pytest.approx(440.0, rel=0.005)
    assert rms(mid) == pytest.approx(0.25 / np.sqrt(2), rel=0.1)  # channel mean, not ffmpeg's 1/sqrt(2) downmix


def test_mp3_and_m4a_by_content_not_suffix(tmp_path: Path):
    """An MP3 saved under a wrong (.wav) name still loads: soundfile refuses it, ffmpeg decodes it."""
    mp3 = make_file(tmp_path, "mp3", tone(330.0, 1.0, 16000), 16000)
    renamed = mp3.rename(tmp_path / "actually_mp3.wav")
    y = load_audio(renamed)
    assert dominant_freq(y[4000:12000], 16000) == pytest.approx(330.0, rel=0.005)


def test_allow_silent_returns_the_quiet_audio(tmp_path: Path):
    path = save_wav(tmp_path / "quiet.wav", np.zeros(8000), 16000)
    y = load_audio(path, allow_silent=True)
    assert len(y) == 8000 and not np.any(y)


# ---------------------------------------------------------------------------------------------------- errors
def test_missing_file(tmp_path: Path):
    raises_audio_error(tmp_path / "nope.wav", "file not found")


def test_directory(tmp_path: Path):
    d = tmp_path / "folder.wav"
    d.mkdir()
    raises_audio_error(d, "is a directory")


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".m4a"])
def test_empty_file(tmp_path: Path, suffix: str):
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    raises_audio_error(path, "empty file (0 bytes)")


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".m4a", ".flac", ".ogg"])
def test_text_file_renamed_as_audio(tmp_path: Path, suffix: str):
    path = tmp_path / f"notes{suffix}"
    path.write_text("these are meeting notes, not audio\n" * 20)
    raises_audio_error(path, "not an audio file", "text file")


def test_random_bytes(tmp_path: Path):
    path = tmp_path / "noise.ogg"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    raises_audio_error(path, "not an audio file")


def test_wav_without_samples(tmp_path: Path):
    path = write(tmp_path / "zero_frames.wav", np.zeros(0), 16000)
    assert path.stat().st_size > 0
    raises_audio_error(path, "no audio samples")


@pytest.mark.parametrize("level", [0.0, 3e-5])
def test_silent_audio(tmp_path: Path, level: float):
    x = level * np.sign(np.random.default_rng(1).normal(size=16000))
    path = write(tmp_path / f"silent_{level}.wav", x, 16000, subtype="FLOAT")
    err = raises_audio_error(path, "silent", f"below {SILENCE_PEAK:g}")
    assert "peak amplitude" in err.problem


def test_non_finite_samples(tmp_path: Path):
    x = tone(440.0, 0.2, 16000)
    x[100] = np.nan
    raises_audio_error(write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT"), "non-finite")


def truncate(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    out = path.with_name(f"cut_{path.name}")
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3", "m4a"])
def test_truncated_file(tmp_path: Path, fmt: str):
    audio = tone(440.0, 3.0, 16000) + 0.05 * np.random.default_rng(2).normal(size=48000).astype(np.float32)
    good = make_file(tmp_path, fmt, audio, 16000)
    assert len(load_audio(good)) > 0
    raises_audio_error(truncate(good, 0.5), "truncated")


def test_truncated_m4a_with_index_up_front(tmp_path: Path):
    """Fast-start MP4 (index before the data): ffmpeg can open the cut file but runs out of data part way."""
    src = write(tmp_path / "src.wav", tone(440.0, 3.0, 16000), 16000)
    good = ffmpeg_encode(src, tmp_path / "faststart.m4a", "-c:a", "aac", "-movflags", "+faststart")
    raises_audio_error(truncate(good, 0.6), "truncated")


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_corrupt_file(tmp_path: Path, fmt: str):
    good = make_file(tmp_path, fmt, tone(440.0, 2.0, 16000), 16000)
    data = good.read_bytes()
    mid = len(data) // 2
    junk = np.random.default_rng(3).integers(0, 256, 1500, dtype=np.uint8).tobytes()
    bad = tmp_path / f"garbled.{fmt}"
    bad.write_bytes(data[:mid] + junk + data[mid + len(junk) :])  # a damaged stretch in the middle
    raises_audio_error(bad, "corrupt")


def test_container_without_audio_stream(tmp_path: Path):
    path = tmp_path / "video_only.mp4"
    proc = subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-y", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=1:size=32x32:rate=5",
         "-c:v", "mpeg4", str(path)],
        capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.skip(f"this ffmpeg cannot make a video-only MP4: {proc.stderr[-200:]}")
    raises_audio_error(path, "no audio stream")


def test_audio_error_is_a_value_error():
    err = AudioError("something wrong", "x.wav")
    assert isinstance(err, ValueError)
    assert str(err) == "x.wav: something wrong" and err.problem == "something wrong" and err.path == Path("x.wav")
    assert str(AudioError("no path")) == "no path"


def test_load_audio_rejects_a_bad_rate(tmp_path: Path):
    path = save_wav(tmp_path / "x.wav", tone(440.0, 0.1, 16000), 16000)
    with pytest.raises(ValueError, match="sr"):
        load_audio(path, sr=0)


# ---------------------------------------------------------------------------------------------------- save_wav
def test_save_wav_writes_16_bit_pcm_in_new_folders(tmp_path: Path):
    path = save_wav(tmp_path / "a" / "b" / "out.wav", np.array([0.0, 0.5, -0.5, 2.0, -3.0]), 22050)
    assert path.exists() and path.parent.name == "b"
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.frames, info.subtype, info.format) == (22050, 1, 5, "PCM_16", "WAV")
    raw, _ = sf.read(str(path), dtype="int16")
    np.testing.assert_array_equal(raw, [0, 16384, -16384, 32767, -32768])  # clipped to full scale


def test_save_wav_stereo_and_errors(tmp_path: Path):
    path = save_wav(tmp_path / "st.wav", np.zeros((100, 2)), 16000)
    assert sf.info(str(path)).channels == 2
    with pytest.raises(ValueError, match="non-finite"):
        save_wav(tmp_path / "nan.wav", np.array([0.0, np.nan]), 16000)
    with pytest.raises(ValueError, match="1-D"):
        save_wav(tmp_path / "cube.wav", np.zeros((2, 2, 2)), 16000)
    with pytest.raises(ValueError, match="sr"):
        save_wav(tmp_path / "rate.wav", np.zeros(10), 0)
    with pytest.raises(ValueError, match="floating point"):
        save_wav(tmp_path / "int.wav", np.zeros(10, dtype=np.int16), 16000)
