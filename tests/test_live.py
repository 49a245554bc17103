"""``facetwin live`` (issue 14, item 2): audio sources (files, arrays, pipes, an ffmpeg capture, the microphone's
error), the live session on the twin end to end (loopback latency, the commands sent equal the streams'), and every
way it ends: the source's end, ``--duration``, Ctrl-C, a device error, a stall that overruns the audio queue; after
each, the face at rest, the log written and nothing left running.

The sessions run in real time (3-5 s of audio each), their loops under SCHED_FIFO where permitted (root or
CAP_SYS_NICE): the other processes of a busy machine then cannot delay their ticks (checked with three busy loops on
the two cores). Without the privilege a loaded machine can drop ticks: the assertions that need every tick on time
apply only when the log says the loop ran under SCHED_FIFO.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import threading
import time

import numpy as np
import pytest
import torch

from facetwin.agents.lipsync import FPS, SR, LipSyncer
from facetwin.audio.input import (
    AudioDeviceError,
    FfmpegSource,
    FileSource,
    PipeSource,
    SignalSource,
    open_source,
)
from facetwin.hardware.calibration import nominal_calibration
from facetwin.hardware.sim_bus import SimBus
from facetwin.sim.actuators import indices, rest_controls
from facetwin.sim2real import live as live_module
from facetwin.sim2real.live import LIVE_LOG_KEYS, dropped_ticks, reaction_latency, run_live

torch.set_num_threads(1)
WAV = os.path.join(os.path.dirname(__file__), "data", "human_subset", "06_en.wav")
PERIOD_MS = 1000.0 / FPS
MOUTH = np.concatenate([indices("lips"), indices("jaw")])


def _children() -> set[int]:
    """Live child processes of this process (from /proc)."""
    me, out = str(os.getpid()), set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me:
                out.add(int(d))
    return out


@pytest.fixture(scope="module")
def vowel() -> np.ndarray:
    """0.6 s of a loud "ah" (espeak-ng), 16 kHz."""
    from facetwin.audio.io import resample
    from facetwin.audio.tts import synthesize

    u = synthesize("ah", "en", rate_wpm=80)
    return resample(u.audio, u.sr, SR)[: int(0.6 * SR)].astype(np.float32)


def _bursts(vowel: np.ndarray, n: int, silence_s: float = 1.0) -> tuple[np.ndarray, list[int]]:
    """``n`` times silence then the vowel, then 0.4 s of silence; the onset sample of each vowel."""
    parts, onsets, pos = [], [], 0
    for _ in range(n):
        parts += [np.zeros(int(silence_s * SR), np.float32), vowel]
        onsets.append(pos + int(silence_s * SR))
        pos += int(silence_s * SR) + len(vowel)
    return np.concatenate(parts + [np.zeros(int(0.4 * SR), np.float32)]), onsets


@pytest.fixture(scope="module")
def syncer() -> LipSyncer:
    return LipSyncer("stream")


@pytest.fixture(scope="module")
def twin() -> SimBus:
    return SimBus(nominal_calibration("sim"))


def _run(src, twin, syncer, **kw):
    twin.reset()
    return run_live(src, backend="sim", buses={"sim": twin}, syncer=syncer, window=False, realtime=True, **kw)


# ---------------------------------------------------------------------------------------------------- sources
def test_sources_deliver_every_sample_with_its_time_and_count_overruns(tmp_path):
    from facetwin.audio.io import load_audio

    x = np.sin(np.arange(8000) * 0.05).astype(np.float32)
    with SignalSource(x, block_s=0.01) as src:  # paced: exact sample times, every sample once, in order
        src.start()
        got = []
        while not src.finished:
            src.wait(0.2)
            got += src.read()
    assert [c.start for c in got] == list(range(0, 8000, 160)) and got[-1].stop == 8000
    np.testing.assert_array_equal(np.concatenate([c.audio for c in got]), x)
    assert max(abs(c.t_end - src.sample_time(c.stop)) for c in got) == 0.0
    assert src.stats()["overruns"] == 0 and src.error is None
    # a consumer that does not read: the queue (5 chunks) keeps the newest audio, the rest is counted as dropped
    with SignalSource(x[:4800], block_s=0.01, queue_s=0.05) as src:
        src.start()
        src._thread.join(5.0)  # the whole signal produced, nothing read
        got = src.read()
    assert src.overruns == 25 and src.dropped_samples == 25 * 160
    assert [c.start for c in got] == [4000, 4160, 4320, 4480, 4640]  # the gap is visible to the consumer
    # a file as fast as it is read (no drops: the reader waits for room), = load_audio
    with FileSource(WAV, realtime=False, queue_s=0.05) as src:
        src.start()
        got = []
        while not src.finished:
            src.wait(0.2)
            got += src.read()
    np.testing.assert_array_equal(np.concatenate([c.audio for c in got]), load_audio(WAV, SR, allow_silent=True))
    assert src.overruns == 0 and not src._thread.is_alive()
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        open_source(str(tmp_path / "nope.wav"))
    with pytest.raises(ValueError, match="block_s"):
        SignalSource(x, block_s=0.5)


def _read_all(src, timeout=10.0) -> np.ndarray:
    got, end = [], time.monotonic() + timeout
    while not src.finished and time.monotonic() < end:
        src.wait(0.2)
        got += src.read()
    return np.concatenate([c.audio for c in got]) if got else np.zeros(0, np.float32)


def test_pipes_take_raw_pcm_and_wav_and_refuse_other_rates():
    import soundfile

    x = (0.5 * np.sin(np.arange(4000) * 0.1)).astype(np.float32)
    pcm = np.round(x * 32767).astype("<i2")
    r, w = os.pipe()
    with PipeSource(r, "pipe") as src:
        src.start()
        os.write(w, pcm.tobytes()[:3001])  # an odd byte count: the half sample waits for the rest
        time.sleep(0.05)
        os.write(w, pcm.tobytes()[3001:])
        os.close(w)
        y = _read_all(src)
    os.close(r)
    np.testing.assert_allclose(y, pcm / 32768.0, atol=1e-7)
    for rate, ok in ((SR, True), (44100, False)):
        buf = io.BytesIO()
        soundfile.write(buf, x, rate, subtype="PCM_16", format="WAV")
        r, w = os.pipe()
        with PipeSource(r, "pipe") as src:
            src.start()
            os.write(w, buf.getvalue())
            os.close(w)
            y = _read_all(src)
        os.close(r)
        if ok:
            assert src.error is None and len(y) == len(x) and np.abs(y - x).max() < 1e-4
        else:
            assert isinstance(src.error, ValueError) and "16000 Hz" in str(src.error) and "44100" in str(src.error)


def test_ffmpeg_capture_is_ended_by_close_and_its_failure_is_a_device_error():
    before = _children()
    src = FfmpegSource(["-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration=20"], "lavfi")
    src.start()
    got, end = [], time.monotonic() + 10
    while sum(len(c.audio) for c in got) < 4000 and time.monotonic() < end:
        src.wait(0.2)
        got += src.read()
    proc = src.proc
    assert proc.poll() is None and _children() - before == {proc.pid}
    y = np.concatenate([c.audio for c in got])
    f = np.abs(np.fft.rfft(y[:4000])).argmax() * SR / 4000  # the sine came through at 16 kHz
    assert abs(f - 440) < 8
    src.close()
    assert proc.poll() is not None and _children() == before and not src._thread.is_alive()
    bad = FfmpegSource(["-f", "lavfi", "-i", "no_such_filter"], "lavfi:bad").start()
    _read_all(bad)
    bad.close()
    assert isinstance(bad.error, AudioDeviceError) and "lavfi:bad" in str(bad.error) and "ffmpeg" in str(bad.error)


def test_no_microphone_says_what_was_tried(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "sounddevice", None)  # not installed (here: no PortAudio either)
    monkeypatch.delenv("PULSE_SERVER", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # no PulseAudio socket there
    if os.path.exists("/var/run/pulse/native"):
        pytest.skip("a system-wide PulseAudio server is running")
    with pytest.raises(OSError) as e:
        open_source("mic")
    msg = str(e.value)
    assert "sounddevice" in msg and "PulseAudio" in msg and "'-'" in msg and "\n" not in msg


# ---------------------------------------------------------------------------------------------------- sessions
def test_loopback_latency_and_the_commands_are_the_streams(vowel, syncer, twin, tmp_path):
    """Three vowels after silence, in real time through the session on the twin: the mouth moves for each, the
    first command that moves it is sent 50-200 ms after the onset (the benchmark holds the 150 ms bar; the lookahead
    is no lower bound: command k already hears audio up to k / 30 + 90 ms, so an onset inside that span moves a
    command whose own frame starts before it), every command sent is the stream's, and nothing is left running."""
    sig, onsets = _bursts(vowel, 3)
    threads, children = set(threading.enumerate()), _children()
    src = SignalSource(sig, name="loopback")
    res = _run(src, twin, syncer, behaviour=False, log_path=tmp_path / "live.npz")
    assert set(threading.enumerate()) == threads and _children() == children and not src._thread.is_alive()
    a = dict(np.load(tmp_path / "live.npz"))
    assert set(a) == set(LIVE_LOG_KEYS) and str(a["fault"]) == "" and not bool(a["behaviour"])
    # the whole signal played, and its lip frames flushed at the end
    n_frames = int(np.ceil(len(sig) * FPS / SR))
    assert a["lip_k"].max() == n_frames - 1 and a["audio_samples"][-1] == len(sig)
    assert res.stats["overruns"] == 0 and res.stats["gap_samples"] == 0
    # every command sent is the stream's command of the frame it names (= LipSyncer("stream").controls)
    ref = syncer.controls(sig, SR).ctrl
    sent = a["lip_k"] >= 0
    np.testing.assert_allclose(a["ctrl"][sent], ref[a["lip_k"][sent]], atol=1e-6)
    assert (np.diff(a["lip_k"]) >= 0).all()
    # the twin's mouth opens for every vowel and shuts between them
    for t in live_module.sample_wall_s(a, onsets):
        during = (a["actual_s"] > t + 0.2) & (a["actual_s"] < t + 0.6)
        before = (a["actual_s"] > t - 0.5) & (a["actual_s"] < t)
        assert a["aperture_mm"][during].max() > a["aperture_mm"][before].max() + 4.0
    lat = reaction_latency(a, onsets)
    assert np.isfinite(lat).all(), lat
    # measured 76 ms on each onset; 150 ms is the benchmark's bar, 200 leaves room for a loaded machine (500 without
    # SCHED_FIFO, whose ticks other processes can delay)
    assert 0.05 < np.median(lat) <= (0.2 if a["realtime"] else 0.5), lat
    # before moving, the commands were the silence's (within the threshold): the movement is the onset's
    assert (np.abs(a["ctrl"][:5, MOUTH] - a["ctrl"][0, MOUTH]).max() < live_module.MOVE_THRESHOLD)
    # the safety layer left the twin at rest and relaxed
    twin.advance(0.5)
    np.testing.assert_allclose(twin._cur, twin.face.rest_ctrl, atol=1e-9)


def test_the_behaviour_layer_moves_the_rest_of_the_face_as_offline(vowel, syncer, twin):
    from facetwin.agents.behaviour import Behaviour, BehaviourConfig

    sig, _ = _bursts(vowel, 2, silence_s=0.7)
    config = BehaviourConfig(seed=3, emotion="happy")
    res = _run(SignalSource(sig), twin, syncer, behaviour=config)
    a = res.arrays
    assert bool(a["behaviour"]) and str(a["emotion"]) == "happy"
    offline = Behaviour(config).apply(syncer.controls(sig, SR).ctrl, sig, SR)
    sent = a["lip_k"] >= 0
    np.testing.assert_allclose(a["ctrl"][sent], offline[a["lip_k"][sent]], atol=1e-6)
    others = np.setdiff1d(np.arange(26), MOUTH)
    assert np.abs(a["ctrl"][:, others] - rest_controls()[others]).max() > 0.1  # brows, lids, eyes, neck alive


def test_ctrl_c_rests_the_face_writes_the_log_and_exits_130(monkeypatch, tmp_path, capsys):
    from facetwin.cli import main
    from facetwin.hardware import sim_bus

    buses, real_init, real_advance = [], sim_bus.SimBus.__init__, sim_bus.SimBus.advance

    def spy(self, *a, **k):
        real_init(self, *a, **k)
        buses.append(self)

    def advance(self, seconds):  # Ctrl-C during the 15th tick
        real_advance(self, seconds)
        self._ticks = getattr(self, "_ticks", 0) + 1
        if self._ticks == 15:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(sim_bus.SimBus, "__init__", spy)
    monkeypatch.setattr(sim_bus.SimBus, "advance", advance)
    threads, children = set(threading.enumerate()), _children()
    handler = signal.getsignal(signal.SIGINT)  # SIG_IGN where the tests run in a background job
    code = main(["live", WAV, "--backend", "sim", "--no-behaviour", "--log", str(tmp_path / "cut.npz"), "--quiet",
                 "--realtime"])
    assert code == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("facetwin live: interrupted") and "cut.npz" in err[0], err
    a = np.load(tmp_path / "cut.npz")
    assert str(a["fault"]) == "interrupted" and 10 <= len(a["tick"]) <= 15
    assert set(threading.enumerate()) == threads and _children() == children
    bus = buses[-1]
    assert not bus._open
    real_advance(bus, 0.5)
    np.testing.assert_allclose(bus._cur, bus.face.rest_ctrl, atol=1e-9)
    assert signal.getsignal(signal.SIGINT) is handler  # the handlers restored


class _Interrupting(SignalSource):
    """Ctrl-C arrives while the session reads the source (after ``at`` reads)."""

    def __init__(self, *a, at: int, **k):
        super().__init__(*a, **k)
        self.at, self.reads = at, 0

    def read(self):
        self.reads += 1
        if self.reads == self.at:
            raise KeyboardInterrupt
        return super().read()


class _Unplugged(SignalSource):
    """A device that fails after ``at_s`` seconds of audio."""

    def __init__(self, *a, at_s: float, **k):
        super().__init__(*a, **k)
        self.at = int(at_s * SR)

    def _emit(self, audio, t_end=None):
        if self._next >= self.at:
            raise OSError(19, "No such device")
        return super()._emit(audio, t_end)


def test_a_device_error_or_an_interrupt_from_the_source_ends_cleanly(vowel, syncer, twin, tmp_path, monkeypatch,
                                                                      capsys):
    sig, _ = _bursts(vowel, 2)
    threads = set(threading.enumerate())
    src = _Interrupting(sig, at=20)
    with pytest.raises(KeyboardInterrupt):
        _run(src, twin, syncer, behaviour=False, log_path=tmp_path / "int.npz")
    a = np.load(tmp_path / "int.npz")
    assert str(a["fault"]) == "interrupted" and 15 <= len(a["tick"]) <= 19 and not twin._open
    assert set(threading.enumerate()) == threads
    # the CLI: a microphone unplugged 0.8 s in -> the face rests, one line naming the device, exit code 3
    from facetwin.cli import main

    monkeypatch.setattr(live_module, "open_source", lambda spec, **kw: _Unplugged(sig, at_s=0.8, name="mic:usb"))
    code = main(["live", "mic:usb", "--no-behaviour", "--log", str(tmp_path / "dev.npz"), "--quiet", "--realtime"])
    assert code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("facetwin live: audio device error: audio source mic:usb"), err
    assert "No such device" in err[0] and "dev.npz" in err[0]
    a = np.load(tmp_path / "dev.npz")
    assert "mic:usb" in str(a["fault"]) and 15 <= len(a["tick"]) <= 30
    assert set(threading.enumerate()) == threads


def test_a_stall_overruns_the_audio_queue_and_the_loop_recovers(vowel, syncer, twin, monkeypatch):
    sig, _ = _bursts(vowel, 2, silence_s=0.5)
    real_advance, state = twin.advance, {"n": 0}

    def advance(seconds):  # the consumer stalls for 0.5 s at its 20th tick
        real_advance(seconds)
        state["n"] += 1
        if state["n"] == 20:
            time.sleep(0.5)

    monkeypatch.setattr(twin, "advance", advance)
    res = _run(SignalSource(sig, queue_s=0.2), twin, syncer, behaviour=False)
    a = res.arrays
    # 0.5 s stalled with 0.2 s of queue: ~0.3 s of audio dropped (counted), pushed as silence in its place
    assert res.stats["overruns"] >= 15 and res.stats["gap_samples"] == res.stats["dropped_samples"] > 0
    tick, late = a["tick"], a["lateness_ms"]
    stall = int(np.flatnonzero(tick == 19)[0])  # the tick that stalled: the slots of the next 0.5 s pass
    assert tick[stall + 1] - tick[stall] >= 12  # ~15 slots passed during the stall
    # the first tick after it catches up (0.5 s of audio through the lip model, the twin stepped over the skipped
    # periods: the next slot or two may pass too); from the third slot on, every tick is sent, on time
    rec = int(np.flatnonzero(tick >= tick[stall + 1] + 3)[0])
    head = {"tick": tick[:rec + 1], "lateness_ms": late[:rec + 1], "fps": a["fps"]}
    assert tick[stall + 1] - tick[stall] - 1 <= dropped_ticks(head) <= tick[rec] - tick[stall] - 1
    after = slice(rec, None)
    if a["realtime"]:
        assert (np.diff(tick[after]) == 1).all() and (late[after] < PERIOD_MS).all()
        assert dropped_ticks(a) == dropped_ticks(head)
        # the streams stayed on the wall clock: after the stall the lip frames follow the ticks again
        assert np.abs(a["lip_k"][after] - tick[after]).max() <= 1
    assert a["audio_samples"][-1] == len(sig)


def test_cli_plays_a_file_for_a_duration_and_refuses_bad_input(tmp_path, capsys):
    from facetwin.cli import main
    from facetwin.cli.robot import add_live_arguments

    assert main(["live", str(tmp_path / "nope.wav"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.wav" in err[0] and err[0].startswith("facetwin live: error:"), err
    assert main(["live", WAV, "--backend", "serial", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--calibration" in err[0], err
    assert main(["live", WAV, "--duration", "-1", "--quiet"]) == 2
    assert "duration" in capsys.readouterr().err
    args = add_live_arguments(argparse.ArgumentParser()).parse_args([WAV])
    assert args.backend == "sim" and args.window is None and args.behaviour and args.duration is None
    assert main(["live", WAV, "--backend", "sim", "--duration", "3", "--log", str(tmp_path / "x.npz"), "--quiet",
                 "--realtime"]) == 0
    out = capsys.readouterr().out
    assert "| lateness p50 (ms) |" in out
    a = np.load(tmp_path / "x.npz")
    assert set(a["tick"]) <= set(range(90)) and a["tick"][-1] == 89 and np.isfinite(a["aperture_mm"]).all()
    assert dropped_ticks(a) >= 90 - len(a["tick"]) and bool(a["behaviour"]) and a["lip_k"].max() >= 80
    if a["realtime"]:  # every tick played, none late by a period
        assert len(a["tick"]) == 90 and dropped_ticks(a) == 0 and " 0 dropped" in out


def test_a_window_is_drawn_each_tick_when_a_display_exists(vowel, syncer, twin, monkeypatch):
    """The viewer itself is MuJoCo's: a stand-in records what the session asks of it."""
    import contextlib

    import mujoco.viewer

    calls = {"launch": 0, "sync": 0, "close": 0, "locked": 0}

    class Viewer:
        def lock(self):
            calls["locked"] += 1
            return contextlib.nullcontext()

        def sync(self):
            calls["sync"] += 1

        def close(self):
            calls["close"] += 1

    def launch(model, data, **kw):
        calls["launch"] += 1
        assert model is twin.face.model and data is twin.face.data
        return Viewer()

    monkeypatch.setattr(mujoco.viewer, "launch_passive", launch)
    monkeypatch.setenv("DISPLAY", ":99")
    twin.reset()
    res = run_live(SignalSource(vowel), backend="sim", buses={"sim": twin}, syncer=syncer, window=True,
                   behaviour=False)
    n = res.stats["ticks"]
    assert calls == {"launch": 1, "sync": n, "close": 1, "locked": n} and res.notes == []
    monkeypatch.delenv("DISPLAY")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    res = run_live(SignalSource(vowel[:1600]), backend="sim", buses={"sim": twin}, syncer=syncer, window=True,
                   behaviour=False)
    assert calls["launch"] == 1 and len(res.notes) == 1 and "headless" in res.notes[0]


def test_the_benchmark_runs_and_reports_the_bars():
    from facetwin.benchmarks import bench_live

    result = bench_live.run(minutes=0.06, modes=("fifo",))
    (row,) = result["rows"]
    assert 108 - row["dropped"] <= row["ticks"] <= 108 and row["onsets_found"] >= 1
    assert 0 < row["latency_median_ms"] < 1000 and row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert set(row["pass"]) == {"latency", "jitter", "dropped"}
    text = bench_live.table(result)
    assert text.count("\n| SCHED_FIFO |" if row["realtime"] else "\n| normal |") == 1 and "latency <= 150 ms" in text


def test_one_blas_thread_during_the_loop_and_restored_after():
    import ctypes

    import scipy.linalg  # noqa: F401  (its OpenBLAS loaded too)

    from facetwin.sim2real.realtime_loop import one_blas_thread

    with open("/proc/self/maps") as f:
        path = next(line.split()[-1] for line in f if "libopenblas64_p" in line)
    get = ctypes.CDLL(path).openblas_get_num_threads64_
    before = get()
    with one_blas_thread() as n:
        assert n >= 2 and get() == 1  # numpy's and scipy's
    assert get() == before
