"""facetwin.audio.prosody: causal per-frame level, pitch, voice activity, stress, phrase ends, onsets and beats."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facetwin.audio.io import resample
from facetwin.audio.prosody import (
    FRAME_HZ,
    ProsodyConfig,
    ProsodyFrame,
    ProsodyStream,
    prosody,
    prosody_arrays,
)
from facetwin.audio.tts import synthesize
from facetwin.sim.rates import AUDIO_SR, CONTROL_HZ, num_frames

SR = AUDIO_SR
SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "I never said she stole my money but somebody did.",
    "Would you like a cup of tea before we go?",
]
PAUSE = 0.6  # s of silence after every sentence


def _tone(f0: float, seconds: float = 2.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return 0.1 * sum(np.sin(2 * np.pi * f0 * h * t + h) / h for h in range(1, 9))


def _same(a: list[ProsodyFrame], b: list[ProsodyFrame]) -> bool:
    """Every field of every frame identical (NaN equal to NaN)."""
    x, y = prosody_arrays(a), prosody_arrays(b)
    return len(a) == len(b) and all(np.array_equal(x[k], y[k], equal_nan=True) for k in x)


def _pattern(bpm: float, drums: bool, seconds: float = 10.0, first: float = 0.1, seed: int = 0):
    """A click track (1 kHz blips) or a drum pattern (kick on beats 1 and 3, snare on 2 and 4, hi-hat on the
    eighths) with a little noise: (audio, beat times)."""
    rng = np.random.default_rng(seed)
    x = np.zeros(int(seconds * SR))
    t = np.arange(int(0.15 * SR)) / SR
    click = 0.5 * np.sin(2 * np.pi * 1000 * t) * np.exp(-t / 0.002)
    kick = 0.6 * np.sin(2 * np.pi * (50 * t + 1.8 * (1 - np.exp(-t / 0.03)))) * np.exp(-t / 0.08)
    snare = (0.25 * rng.normal(0, 1, len(t)) + 0.2 * np.sin(2 * np.pi * 190 * t)) * np.exp(-t / 0.05)
    hat = 0.08 * np.diff(rng.normal(0, 1, len(t) + 1)) * np.exp(-t / 0.01)
    period = 60.0 / bpm
    beats = np.arange(first, seconds - 0.02, period)
    hits = []
    for n, b in enumerate(beats):
        hits += [(kick if n % 2 == 0 else snare, b), (hat, b), (hat, b + period / 2)] if drums else [(click, b)]
    for sound, when in hits:
        i = int(round(when * SR))
        m = min(len(sound), len(x) - i)
        if m > 0:
            x[i: i + m] += sound[:m]
    return x + rng.normal(0, 0.003 if drums else 0.0, len(x)), beats


@pytest.fixture(scope="module")
def speech():
    """Three sentences (espeak-ng), each followed by 0.6 s of silence, after 0.3 s of silence: the audio at 16 kHz,
    the (start, end) of the speech of each sentence (its first phone's start, its last phone's end)."""
    parts, spans, pos = [np.zeros(int(0.3 * SR))], [], int(0.3 * SR)
    for text in SENTENCES:
        utt = synthesize(text, "en")
        y = resample(utt.audio, utt.sr, SR).astype(np.float64)
        phones = list(utt.timeline)
        spans.append((pos / SR + phones[0].start, pos / SR + phones[-1].end))
        parts += [y, np.zeros(int(PAUSE * SR))]
        pos += len(y) + int(PAUSE * SR)
    x = np.concatenate(parts)
    return x, spans, prosody(x, SR)


def test_frame_rate_is_the_control_rate():
    assert FRAME_HZ == CONTROL_HZ == 30


@pytest.mark.parametrize("f0,sr", [(150.0, SR), (220.0, SR), (150.0, 44100)])
def test_harmonic_tone_pitch_within_3_percent(f0, sr):
    a = prosody_arrays(prosody(_tone(f0, sr=sr), sr))
    assert len(a["k"]) == num_frames(2 * SR, SR, FRAME_HZ) == 60
    body = slice(2, -2)  # the 40 ms pitch window is full from frame 1 on
    assert a["voiced"][body].all()
    assert np.max(np.abs(a["f0_hz"][body] / f0 - 1)) < 0.03
    assert np.all(np.isnan(a["f0_hz"][~a["voiced"]]))
    assert np.all(np.abs(a["energy_db"][body] - 10 * np.log10(np.mean(_tone(f0) ** 2))) < 1.0)


def test_white_noise_is_unvoiced_and_the_noise_floor_adapts():
    x = np.random.default_rng(3).normal(0, 0.05, 8 * SR)
    a = prosody_arrays(prosody(x, SR))
    assert a["voiced"].mean() < 0.05
    # the stream starts as if after quiet, so loud noise counts as speech until the noise floor (the lowest level
    # of the last noise_window_s = 3 s) has seen only noise
    assert a["speaking"][: 2 * 30].all()
    assert not a["speaking"][4 * 30:].any()
    assert not a["phrase_end"][4 * 30:].any()
    assert not a["beat"].any() and np.all(np.isnan(a["tempo_bpm"]))


def test_silence_is_at_the_floor_and_never_speech():
    a = prosody_arrays(prosody(np.zeros(3 * SR), SR))
    assert np.all(a["energy_db"] == -100.0)
    assert not (a["speaking"].any() or a["voiced"].any() or a["phrase_end"].any() or a["beat"].any())
    assert np.all(a["stress"] == 0) and np.all(a["onset"] == 0) and np.all(np.isnan(a["tempo_bpm"]))


def test_phrase_ends_once_per_pause_soon_after_the_speech(speech):
    x, spans, frames = speech
    a = prosody_arrays(frames)
    cfg = ProsodyConfig()
    reported = (a["k"][a["phrase_end"]] + 1) / FRAME_HZ  # the end of the frame that reports it
    ends = np.array([e for _, e in spans])
    assert len(reported) == len(spans) == 3
    lag = reported - ends
    assert np.all(lag >= 0) and np.all(lag <= cfg.pause_s + 0.1), lag


def test_stress_events_per_second_of_speech(speech):
    x, spans, frames = speech
    a = prosody_arrays(frames)
    hit = a["stress"] > 0
    assert np.all(a["stress"][hit] <= 1.0)
    assert a["speaking"][hit].all()
    rate = hit.sum() / sum(e - s for s, e in spans)
    assert 1.0 <= rate <= 5.0, rate
    # at most one per stress_min_gap_s
    assert np.min(np.diff(a["k"][hit])) >= round(ProsodyConfig().stress_min_gap_s * FRAME_HZ)


def test_speaking_follows_the_speech_and_the_pauses(speech):
    x, spans, frames = speech
    a = prosody_arrays(frames)
    t0, t1 = a["k"] / FRAME_HZ, (a["k"] + 1) / FRAME_HZ
    inside = np.zeros(len(t0), bool)
    silent = np.zeros(len(t0), bool)
    hang = ProsodyConfig().hangover_s
    starts = [s for s, _ in spans[1:]] + [len(x) / SR + 1]
    for (s, e), nxt in zip(spans, starts):
        inside |= (t0 >= s) & (t1 <= e)
        silent |= (t0 >= e + hang + 1 / FRAME_HZ) & (t1 <= nxt)  # the pause after the hangover
    assert silent.sum() >= 3 * 10 and inside.sum() > 150
    assert a["speaking"][inside].mean() >= 0.9
    assert (~a["speaking"][silent]).mean() >= 0.9


@pytest.mark.parametrize("bpm,drums", [(100, False), (128, False), (100, True), (128, True)])
def test_beat_tracking_finds_the_tempo_and_the_beats(bpm, drums):
    x, beat_times = _pattern(bpm, drums)
    a = prosody_arrays(prosody(x, SR))
    known = np.flatnonzero(np.isfinite(a["tempo_bpm"]))
    assert len(known) and known[0] <= 4 * 30
    assert np.all(np.abs(a["tempo_bpm"][4 * 30:] / bpm - 1) < 0.03)
    true = np.floor(beat_times * FRAME_HZ).astype(int)
    true = true[true > known[0]]
    found = a["k"][a["beat"] & (a["k"] > known[0])]
    assert len(true) >= 12
    near_true = np.array([np.min(np.abs(found - b)) <= 2 for b in true])
    near_found = np.array([np.min(np.abs(true - b)) <= 2 for b in found])
    assert near_true.mean() >= 0.8 and near_found.mean() >= 0.8
    assert np.all((a["beat_phase"][known] >= 0) & (a["beat_phase"][known] < 1))


def test_speech_has_no_tempo(speech):
    assert not any(f.beat for f in speech[2])
    assert all(math.isnan(f.tempo_bpm) for f in speech[2])


@pytest.mark.parametrize("tempo,offset", [(128.0, 0.1), (97.0, 0.0), (60.0, -0.5)])
def test_a_given_tempo_puts_the_beats_on_its_grid(tempo, offset):
    x, _ = _pattern(100, True, seconds=6.0)  # the audio's own tempo is ignored
    cfg = ProsodyConfig(tempo_bpm=tempo, beat_offset_s=offset)
    a = prosody_arrays(prosody(x, SR, cfg))
    n = np.arange(0, 100)
    grid = np.floor(FRAME_HZ * offset + n * FRAME_HZ * 60.0 / tempo).astype(int)
    grid = grid[(grid >= 0) & (grid < len(a["k"]))]
    assert np.array_equal(a["k"][a["beat"]], grid)
    assert np.all(a["tempo_bpm"] == tempo)
    assert np.array_equal(prosody_arrays(prosody(np.zeros(6 * SR), SR, cfg))["beat"], a["beat"])


def test_beats_off():
    x, _ = _pattern(100, False, seconds=6.0)
    a = prosody_arrays(prosody(x, SR, ProsodyConfig(beats=False)))
    assert not a["beat"].any() and np.all(np.isnan(a["tempo_bpm"])) and a["onset"].max() > 1.0


def test_any_chunking_gives_the_same_frames(speech):
    drums, _ = _pattern(128, True, seconds=6.0)
    x = np.concatenate([drums, speech[0]]).astype(np.float32)  # float32 chunks or float64 ones: the same numbers
    whole = prosody(x, SR)
    assert len(whole) == num_frames(len(x), SR, FRAME_HZ)
    assert [f.k for f in whole] == list(range(len(whole)))
    rng = np.random.default_rng(7)
    for trial in range(3):
        stream, out, i = ProsodyStream(), [], 0
        while i < len(x):
            n = int(rng.choice([0, 1, 7, 533, 534, 1600, 4000, 20000])) if trial else int(rng.integers(1, 3000))
            out += stream.push(x[i: i + n].astype(np.float64 if trial == 2 else np.float32))
            i += n
        out += stream.flush()
        assert _same(out, whole)
    stream = ProsodyStream()
    assert _same(stream.push(x) + stream.flush(), whole)
    assert any(f.stress for f in whole) and any(f.phrase_end for f in whole) and any(f.beat for f in whole)


def test_frames_are_causal(speech):
    """The frames emitted for a prefix of the audio are those of the whole signal: nothing looks ahead."""
    x = speech[0]
    whole = speech[2]
    for n in (SR, 3 * SR + 123):
        part = ProsodyStream().push(x[:n])
        assert len(part) == n * 3 // 1600  # frames whose last sample has arrived
        assert _same(part, whole[: len(part)])


def test_flush_pads_the_last_frame_and_ends_the_stream():
    stream = ProsodyStream()
    assert stream.push(np.zeros(600)) != [] and stream.flush()[-1].k == 1  # 600 samples: 2 frames
    with pytest.raises(RuntimeError, match="reset"):
        stream.push(np.zeros(10))
    stream.reset()
    assert [f.k for f in stream.push(np.zeros(1067))] == [0, 1]
    assert ProsodyStream().flush() == []


def test_prosody_arrays_columns():
    frames = prosody(_tone(150.0, 0.5), SR)
    a = prosody_arrays(frames)
    assert a["k"].dtype == np.int64 and a["voiced"].dtype == bool and a["f0_hz"].dtype == np.float64
    assert set(a) >= {"k", "energy_db", "voiced", "f0_hz", "speaking", "stress", "phrase_end", "onset", "beat",
                      "tempo_bpm"}
    assert all(len(v) == 15 for v in a.values())
    assert all(len(v) == 0 for v in prosody_arrays([]).values())


@pytest.mark.parametrize("call,field", [
    (lambda: ProsodyStream().push(np.array([0.0, np.nan])), "chunk"),
    (lambda: ProsodyStream().push(np.zeros((100, 2))), "chunk"),
    (lambda: ProsodyStream().push(np.zeros(100, dtype=np.int16)), "chunk"),
    (lambda: prosody(np.zeros(0), SR), "audio"),
    (lambda: prosody(np.array([0.0, np.inf]), SR), "audio"),
    (lambda: prosody(np.zeros(100), 0), "sr"),
    (lambda: ProsodyConfig(pause_s=-0.1), "pause_s"),
    (lambda: ProsodyConfig(hangover_s=float("nan")), "hangover_s"),
    (lambda: ProsodyConfig(tempo_bpm=10.0), "tempo_bpm"),
    (lambda: ProsodyConfig(tempo_bpm=500), "tempo_bpm"),
    (lambda: ProsodyConfig(f0_min_hz=600.0), "f0_min_hz"),
    (lambda: ProsodyConfig(snr_db="12"), "snr_db"),
    (lambda: ProsodyConfig(beats="yes"), "beats"),
    (lambda: ProsodyConfig(beat_min_history_s=9.0), "beat_min_history_s"),
    (lambda: ProsodyConfig(stress_lag_frames=2.5), "stress_lag_frames"),
    (lambda: ProsodyStream(config={"pause_s": 0.3}), "config"),
])
def test_bad_input_names_the_field(call, field):
    with pytest.raises(ValueError, match=field):
        call()
