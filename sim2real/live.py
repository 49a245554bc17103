"""``facetwin live``: a voice as it comes (a microphone, a file or stdin) -> streaming lip sync and the behaviour
layer -> the twin and/or the robot through the safety layer, at 30 Hz.

:func:`run_live` opens the source (:func:`facetwin.audio.input.open_source`), the buses of the backend (as
``facetwin deploy``: :func:`facetwin.sim2real.deploy.open_buses`, every command through
:class:`facetwin.hardware.safety.SafeBus`) and runs :class:`LiveSession` in the real-time loop
(:func:`facetwin.sim2real.realtime_loop.run_loop`, open-ended):

1. **In phase with the audio.** The loop starts once the first audio has arrived: tick ``n`` is due
   ``lookahead + block + prepare_s + MARGIN_S`` after the wall time of sample ``n / 30`` s, so that lip frame ``n``
   (:class:`facetwin.agents.lipsync.LipSyncStream`: ready once audio up to ``n / 30 + lookahead`` s is in,
   ``lookahead`` = ``LipSyncer.lookahead_s`` ~ 90 ms) is ready when tick ``n`` is prepared.
2. **Prepare** (``prepare_s`` before the deadline): drain the source, push the audio to the lip stream and to the
   behaviour stream (:class:`facetwin.agents.behaviour.BehaviourStream`; audio the source dropped on an overrun is
   pushed as silence, keeping both streams on the wall clock), take the newest lip command that became ready (older
   ones of the same tick are skipped, counted) and compose the full command (the mouth from the lip sync, the other
   15 actuators from the behaviour). No new lip command: the last command is held (counted).
3. **Send** at the deadline: the command through the safety layer; the sim backend steps the twin one period per
   tick (as ``deploy``); ``window``: the twin drawn in an on-screen MuJoCo viewer (the sim backend's twin, or a
   twin mirroring the robot's commands) when a display exists (``DISPLAY`` / ``WAYLAND_DISPLAY``), else said once
   and headless.
4. **The end**: the source ends (its last lip frames, flushed, play one per tick), ``duration_s`` passes, Ctrl-C /
   SIGTERM, a bus fault or a device error. Whatever ends it, the face goes to rest and relaxes through the safety
   layer, the buses close, the source stops (threads and capture processes ended), the viewer closes, the log is
   written, and then the cause is raised again (``KeyboardInterrupt``, :class:`~facetwin.hardware.bus.BusError`,
   :class:`~facetwin.audio.input.AudioDeviceError`: exit codes 130 and 3 in the CLI).

A tick the loop could not start within its slot (a stall of the machine) is skipped and counted as dropped, as is a
tick sent more than a period late; the loop resumes on the next deadline.

Log (``log_path``, ``.npz``; ``N`` ticks played, ``M`` audio chunks; times in seconds from the deadline of tick 0,
``time.perf_counter`` clock; :data:`LIVE_LOG_KEYS`):

| key | shape | content |
|---|---|---|
| ``fps`` | () | 30 |
| ``tick``, ``target_s``, ``actual_s``, ``lateness_ms``, ``send_ms`` | (N,) | tick index (gaps: dropped ticks), deadline, send time, lateness, time the send took (with the twin's step) |
| ``prepare_ms`` | (N,) | time the prepare step took (source, lip sync, behaviour) |
| ``lip_k``, ``held`` | (N,) | the lip frame whose command was sent (-1: none yet), whether it was held from an earlier tick |
| ``audio_samples``, ``audio_wall_s`` | (N,) | samples pushed by the tick (the audio time it reached is ``audio_samples / 16000``), wall time of the newest one |
| ``ctrl``, ``units`` | (N, 26) | the command sent, the servo units that reached the bus |
| ``aperture_mm`` | (N,) | sim backend: the twin's mouth aperture at the end of the tick's period, else NaN |
| ``chunk_stop``, ``chunk_t_s`` | (M,) | each audio chunk's end (sample index) and the wall time of that end |
| ``actuators``, ``backend``, ``source``, ``emotion``, ``fault`` | | names; ``fault``: what ended the run early, else empty |
| ``behaviour``, ``overruns``, ``underruns``, ``dropped_samples``, ``realtime`` | () | whether the behaviour layer ran; the source's counters; whether the loop ran under SCHED_FIFO |

End-to-end latency (:func:`reaction_latency`): from the wall time of a sound's onset sample to the send of the first
command that moves the mouth away from where it was; ``python -m facetwin.benchmarks.bench_live`` measures it with
the loop's jitter (the README has the figures).

>>> res = run_live("mic", backend="sim", window=True, log_path="live.npz")     # Ctrl-C to stop
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facetwin.audio.input import SR, AudioDeviceError, AudioSource, open_source
from facetwin.hardware.calibration import Calibration, nominal_calibration
from facetwin.hardware.safety import SafeBus
from facetwin.hardware.safety_config import SafetyConfig
from facetwin.sim.actuators import actuator_names, indices
from facetwin.sim.rates import CONTROL_HZ
from facetwin.sim2real.deploy import BACKENDS, DeployResult, open_buses
from facetwin.sim2real.realtime_loop import SPIN_S, LoopTimes, jitter_stats, one_blas_thread, run_loop, sleep_until

FPS = CONTROL_HZ
#: the prepare step runs this long before each deadline
PREPARE_S = 0.010
#: slack for the audio's delivery (thread wake-up) in the loop's phase
MARGIN_S = 0.004
#: the longest wait for the source's first audio
FIRST_AUDIO_S = 5.0
#: a mouth actuator's command changed by more than this (normalized units): the mouth moved (reaction_latency)
MOVE_THRESHOLD = 0.15
LIVE_LOG_KEYS = ("fps", "tick", "target_s", "actual_s", "lateness_ms", "send_ms", "prepare_ms", "lip_k", "held",
                 "audio_samples", "audio_wall_s", "ctrl", "units", "aperture_mm", "chunk_stop", "chunk_t_s",
                 "actuators", "backend", "source", "behaviour", "emotion", "fault", "overruns", "underruns",
                 "dropped_samples", "realtime")


@dataclass
class LiveResult:
    """What :func:`run_live` did: the log arrays (module doc), the loop's jitter, the session's counters."""

    arrays: dict[str, np.ndarray]
    jitter: dict[str, float]
    stats: dict[str, Any]
    safety: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def save(self, path: str | Path) -> Path:
        """The log as ``.npz`` (atomically; as ``deploy``'s)."""
        return DeployResult.save(self, path)


class LiveSession:
    """One live performance, tick by tick: :meth:`start_time`, then the loop calls :meth:`prepare` and :meth:`send`
    (module doc, steps 1-3); :meth:`result` assembles the log. ``sim``: the sim backend's bus (stepped per tick);
    ``twin``: a :class:`facetwin.sim.model.FaceModel` mirroring the commands (a window on a hardware backend);
    ``viewer``: a MuJoCo passive viewer of the twin."""

    def __init__(self, source: AudioSource, layer: SafeBus, syncer, *, behaviour=None, sim=None, twin=None,
                 viewer=None, prepare_s: float = PREPARE_S, max_ticks: int | None = None):
        self.source, self.layer, self.syncer = source, layer, syncer
        self.lips = syncer.stream()
        self.behaviour, self.sim, self.twin, self.viewer = behaviour, sim, twin, viewer
        self.prepare_s, self.max_ticks = float(prepare_s), max_ticks
        self.cmd = np.asarray(syncer.rest, dtype=float).copy()
        self.k, self.held = -1, False
        self.pushed = 0  # samples pushed to the streams (the source's indices; dropped audio pushed as silence)
        self.wall = math.nan  # wall time of the newest sample pushed
        self.gap_samples = self.holds = self.skipped_frames = 0
        self.ended = False
        self.tail: deque = deque()  # the flushed lip frames after the source ended, one per tick
        self._first: list = []
        self._prep_s = 0.0
        self._last_n = -1
        self.rows: dict[str, list] = {k: [] for k in ("tick", "prepare_ms", "lip_k", "held", "audio_samples",
                                                      "audio_wall", "ctrl", "units", "aperture_mm")}
        self.chunks: list[tuple[int, float]] = []

    # ------------------------------------------------------------------------------------------ the loop's steps
    def start_time(self, timeout: float = FIRST_AUDIO_S) -> float:
        """Wait for the first audio; the ``time.perf_counter`` deadline of tick 0 in phase with it (module doc)."""
        give_up = time.perf_counter() + timeout
        while not self.source.wait(0.05):
            if time.perf_counter() > give_up:
                raise AudioDeviceError(f"audio source {self.source.name}: no audio within {timeout:g} s")
        self._first = self.source.read()
        if not self._first:
            if self.source.error is not None:
                raise self.source.error
            raise ValueError(f"audio source {self.source.name}: no audio")
        c = self._first[0]
        a0 = c.t_end - c.stop / SR  # wall time of sample 0
        start = a0 + self.syncer.lookahead_s + self.source.block_s + self.prepare_s + MARGIN_S
        earliest = time.perf_counter() + self.prepare_s + 0.002
        if start < earliest:  # late already (a slow start): whole periods later, the phase kept
            start += math.ceil((earliest - start) * FPS) / FPS
        return start

    def _push(self) -> list:
        """Drain the source into the lip and behaviour streams; the lip commands that became ready."""
        try:
            chunks, self._first = self._first + self.source.read(), []
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:  # a source that fails on read: the device's error, named
            raise AudioDeviceError(f"audio source {self.source.name}: {type(e).__name__}: {e}") from e
        ready = []
        for c in chunks:
            audio = c.audio
            if c.start > self.pushed:  # audio dropped on an overrun: silence in its place
                self.gap_samples += c.start - self.pushed
                audio = np.concatenate([np.zeros(c.start - self.pushed, np.float32), audio])
            ready += self.lips.push(audio)
            if self.behaviour is not None:
                self.behaviour.push_audio(audio)
            self.pushed, self.wall = c.stop, c.t_end
            self.chunks.append((c.stop, c.t_end))
        if self.source.finished and not self.ended:
            if self.source.error is not None:
                raise self.source.error
            self.ended = True
            self.tail.extend(self.lips.flush())
            if self.behaviour is not None:
                self.behaviour.end_audio()
        return ready

    def prepare(self, n: int) -> bool:
        """Tick ``n``'s command from the newest audio (step 2); False ends the session."""
        t = time.perf_counter()
        if self.max_ticks is not None and n >= self.max_ticks:
            return False
        ready = self._push()
        if ready:
            self.skipped_frames += len(ready) - 1
            k, mouth = ready[-1]
        elif self.tail:
            k, mouth = self.tail.popleft()
        elif self.ended:
            return False
        else:
            self.held = True
            self.holds += self.k >= 0
            self._prep_s = time.perf_counter() - t
            return True
        self.k, self.held = k, False
        self.cmd = mouth if self.behaviour is None else self.behaviour.command(k, mouth)
        self._prep_s = time.perf_counter() - t
        return True

    def send(self, n: int) -> None:
        """Tick ``n``: the command through the safety layer, the twin stepped (step 3), the tick logged."""
        units = self.layer.command(self.cmd)
        aperture = math.nan
        periods = n - self._last_n if self._last_n >= 0 else 1  # a dropped tick's periods pass too
        with self.viewer.lock() if self.viewer is not None else contextlib.nullcontext():
            if self.sim is not None:
                self.sim.advance(periods * self.sim.period)
                aperture = self.sim.face.mouth()["aperture_mm"]
            elif self.twin is not None:
                self.twin.step(self.cmd, n_control_steps=periods)
        if self.viewer is not None:
            self.viewer.sync()
        self._last_n = n
        r = self.rows
        r["tick"].append(n)
        r["prepare_ms"].append(1000.0 * self._prep_s)
        r["lip_k"].append(self.k)
        r["held"].append(self.held)
        r["audio_samples"].append(self.pushed)
        r["audio_wall"].append(self.wall)
        r["ctrl"].append(np.asarray(self.cmd, dtype=np.float32))
        r["units"].append(np.full(len(self.cmd), np.nan, np.float32) if units is None else units.astype(np.float32))
        r["aperture_mm"].append(aperture)

    # ------------------------------------------------------------------------------------------ the log
    def result(self, times: LoopTimes, *, backend: str, emotion: str, fault: BaseException | None) -> LiveResult:
        """The log (module doc) and the counters of what played."""
        r, origin = self.rows, times.origin
        tick = np.asarray(r["tick"], dtype=np.int64)
        n_rows = len(tick)
        target, actual, spent = (_at(getattr(times, k), tick) for k in ("target_s", "actual_s", "send_s"))
        chunks = np.asarray(self.chunks, dtype=np.float64).reshape(-1, 2)
        src = self.source.stats()
        arrays = {
            "fps": np.float64(FPS), "tick": tick, "target_s": target, "actual_s": actual,
            "lateness_ms": 1000.0 * (actual - target), "send_ms": 1000.0 * spent,
            "prepare_ms": np.asarray(r["prepare_ms"], dtype=np.float64),
            "lip_k": np.asarray(r["lip_k"], dtype=np.int64), "held": np.asarray(r["held"], dtype=bool),
            "audio_samples": np.asarray(r["audio_samples"], dtype=np.int64),
            "audio_wall_s": np.asarray(r["audio_wall"], dtype=np.float64) - origin,
            "ctrl": np.asarray(r["ctrl"], dtype=np.float32).reshape(n_rows, -1),
            "units": np.asarray(r["units"], dtype=np.float32).reshape(n_rows, -1),
            "aperture_mm": np.asarray(r["aperture_mm"], dtype=np.float32),
            "chunk_stop": chunks[:, 0].astype(np.int64), "chunk_t_s": chunks[:, 1] - origin,
            "actuators": np.array(list(actuator_names())), "backend": np.array(backend),
            "source": np.array(self.source.name), "behaviour": np.bool_(self.behaviour is not None),
            "emotion": np.array(emotion), "fault": np.array(_fault_text(fault)),
            "overruns": np.int64(src["overruns"]), "underruns": np.int64(src["underruns"]),
            "dropped_samples": np.int64(src["dropped_samples"]), "realtime": np.bool_(times.realtime),
        }
        assert set(arrays) == set(LIVE_LOG_KEYS)
        stats = {"ticks": n_rows, "dropped": dropped_ticks(arrays), "holds": self.holds,
                 "skipped_frames": self.skipped_frames, "lip_frames": int(self.k + 1), **src,
                 "gap_samples": self.gap_samples, "mouth_lag_ms": mouth_lag_ms(arrays),
                 "prepare_ms_p99": float(np.percentile(arrays["prepare_ms"], 99)) if n_rows else math.nan,
                 "realtime": times.realtime}
        return LiveResult(arrays, jitter_stats(arrays["lateness_ms"]), stats)


def _at(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``a[idx]``, NaN past its end (a tick logged by the session whose time the interrupted loop never wrote)."""
    a = np.asarray(a, dtype=np.float64)
    out = np.full(len(idx), np.nan)
    ok = idx < len(a)
    out[ok] = a[idx[ok]]
    return out


def _fault_text(e: BaseException | None) -> str:
    if e is None:
        return ""
    if isinstance(e, KeyboardInterrupt):
        return "interrupted"
    return " ".join(str(e).split()) or type(e).__name__


# ---------------------------------------------------------------------------------------------------- measures
def dropped_ticks(arrays: dict) -> int:
    """Ticks skipped (gaps in ``tick``) plus ticks sent after the next deadline."""
    tick = np.asarray(arrays["tick"])
    if tick.size == 0:
        return 0
    gaps = int(tick[-1] - tick[0] + 1 - tick.size)
    return gaps + int((np.asarray(arrays["lateness_ms"]) > 1000.0 / float(arrays["fps"])).sum())


def sample_wall_s(arrays: dict, i) -> np.ndarray:
    """Wall time (the log's clock) of source sample(s) ``i``, from the chunk that carried it; NaN if none did."""
    stop, t = np.asarray(arrays["chunk_stop"]), np.asarray(arrays["chunk_t_s"])
    i = np.atleast_1d(np.asarray(i, dtype=np.int64))
    j = np.searchsorted(stop, i, side="right")
    ok = j < len(stop)
    out = np.full(len(i), np.nan)
    out[ok] = t[j[ok]] - (stop[j[ok]] - i[ok]) / SR
    return out


def mouth_lag_ms(arrays: dict) -> float:
    """Median time from the sound of a lip frame's start to the send of its command (how far the mouth trails the
    voice), ms; NaN when no lip frame was sent."""
    k = np.asarray(arrays["lip_k"])
    sent = (k >= 0) & ~np.asarray(arrays["held"])
    if not sent.any():
        return math.nan
    lag = np.asarray(arrays["actual_s"])[sent] - sample_wall_s(arrays, np.round(k[sent] * SR / FPS))
    return float(np.nanmedian(lag) * 1000.0) if np.isfinite(lag).any() else math.nan


def reaction_latency(arrays: dict, onsets, *, threshold: float = MOVE_THRESHOLD, within_s: float = 0.5) -> np.ndarray:
    """Seconds from each onset (a source sample index) to the send of the first command whose mouth (lips and jaw)
    differs by more than ``threshold`` from the command sent before the onset arrived, searched over ``within_s``
    after the onset's arrival; NaN where none (or the onset never arrived)."""
    mouth = np.concatenate([indices("lips"), indices("jaw")])
    ctrl = np.asarray(arrays["ctrl"], dtype=float)[:, mouth]
    pushed, actual = np.asarray(arrays["audio_samples"]), np.asarray(arrays["actual_s"])
    out = []
    for i in np.atleast_1d(onsets):
        t_on = sample_wall_s(arrays, i)[0]
        n0 = int(np.searchsorted(pushed, i, side="right"))  # the first tick that pushed the onset
        if n0 == 0 or n0 >= len(pushed) or not np.isfinite(t_on):
            out.append(math.nan)
            continue
        span = np.flatnonzero(actual[n0:] <= actual[n0] + within_s) + n0
        moved = span[np.abs(ctrl[span] - ctrl[n0 - 1]).max(axis=1) > threshold]
        out.append(actual[moved[0]] - t_on if moved.size else math.nan)
    return np.asarray(out, dtype=float)


# ---------------------------------------------------------------------------------------------------- run
def _behaviour_stream(behaviour, emotion: str, seed: int, model):
    """The behaviour layer's live stream (warmed up: its gaze geometry built), or None when off."""
    if behaviour is False or behaviour is None:
        if emotion != "neutral":
            raise ValueError(f"emotion {emotion!r} needs the behaviour layer (leave it on)")
        return None
    from facetwin.agents.behaviour import Behaviour, BehaviourConfig

    config = behaviour if isinstance(behaviour, BehaviourConfig) else BehaviourConfig(seed=int(seed), emotion=emotion)
    beh = Behaviour(config, model=model)
    beh.stream().command(0, beh.rest)  # builds what the first frame needs, outside the loop
    return beh.stream()


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _window(window: bool | None, face, notes: list[str]):
    """A MuJoCo passive viewer of ``face`` (a FaceModel) when asked (True) or possible (None), else None (a note
    says why)."""
    if window is False:
        return None
    if not _has_display() or face is None:
        notes.append("no display (DISPLAY and WAYLAND_DISPLAY unset): running headless")
        return None
    try:
        import mujoco.viewer

        return mujoco.viewer.launch_passive(face.model, face.data, show_left_ui=False, show_right_ui=False)
    except Exception as e:  # no GLFW, no GL context: headless
        notes.append(f"no window ({type(e).__name__}: {e}): running headless")
        return None


def _fifo(tid: int | None, priority: int) -> bool:
    """Put thread ``tid`` under SCHED_FIFO at ``priority`` where permitted (Linux, root or CAP_SYS_NICE)."""
    try:
        os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
    except (AttributeError, OSError, TypeError):
        return False
    return True


def _check_options(backend: str, duration_s, prepare_s: float, log_path) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if duration_s is not None and not (isinstance(duration_s, (int, float)) and 0 < duration_s < math.inf):
        raise ValueError(f"duration_s must be a positive number of seconds, got {duration_s!r}")
    if not 0 <= prepare_s < 1.0 / FPS:
        raise ValueError(f"prepare_s must be in [0, {1 / FPS:.4f}) s, got {prepare_s!r}")
    if log_path is not None and Path(log_path).suffix != ".npz":
        raise ValueError(f"the log must be a .npz file, got {log_path}")


def run_live(source: AudioSource | str, *, backend: str = "sim", calibration: Calibration | str | Path | None = None,
             window: bool | None = None, behaviour=True, emotion: str = "neutral", seed: int = 0,
             log_path: str | Path | None = None, duration_s: float | None = None, port: str | None = None,
             i2c_bus: int = 1, baudrate: int | None = None, variant: str = "fast",
             safety: SafetyConfig | str | Path | None = None, realtime: bool = False, buses=None, syncer=None,
             prepare_s: float = PREPARE_S, handle_signals: bool = False, progress: bool = False) -> LiveResult:
    """Run a live session (module doc) until the source ends, ``duration_s`` passes or it is stopped; the log to
    ``log_path`` on any exit. ``source``: an :class:`~facetwin.audio.input.AudioSource` or a spec for
    :func:`~facetwin.audio.input.open_source`; ``calibration``: required for hardware backends (sim: nominal);
    ``window``: True / False / None (auto: when a display exists); ``behaviour``: the behaviour layer around the
    lips (True: ``BehaviourConfig(seed=seed, emotion=emotion)``, or a
    :class:`~facetwin.agents.behaviour.BehaviourConfig`; False: the mouth only); ``buses``: replaces the backend's own; ``syncer``: a stream-mode
    :class:`~facetwin.agents.lipsync.LipSyncer` (default the shipped one); ``realtime``: the loop under SCHED_FIFO;
    ``handle_signals``: Ctrl-C / SIGTERM stop through the safety layer (the CLI sets it)."""
    _check_options(backend, duration_s, prepare_s, log_path)
    src = source if isinstance(source, AudioSource) else open_source(source)
    notes: list[str] = []
    try:
        session = _session(src, notes, backend=backend, calibration=calibration, window=window, behaviour=behaviour,
                           emotion=emotion, seed=seed, duration_s=duration_s, port=port, i2c_bus=i2c_bus,
                           baudrate=baudrate, variant=variant, safety=safety, buses=buses, syncer=syncer,
                           prepare_s=prepare_s, handle_signals=handle_signals)
    except BaseException:
        src.close()
        raise
    if progress or window:
        for note in [f"{src.name} -> {backend} (Ctrl-C to stop)"] * bool(progress) + notes:
            print(f"live: {note}", file=sys.stderr)
    times = LoopTimes(*(np.zeros(0) for _ in range(3)))
    fault: BaseException | None = None
    try:
        src.start()
        if realtime:  # the audio's reader beside the SCHED_FIFO loop, just below it: ordinary processes cannot starve it
            _fifo(src.native_id, 49)
        start = session.start_time()
        sleep_until(start - prepare_s - 0.05)  # then a command at least every tick (the safety layer's watchdog)
        session.layer.open()
        session.layer.command(session.cmd)  # rest until the first tick
        with one_blas_thread():  # no waiting on BLAS worker threads inside a tick
            run_loop(None, session.send, FPS, prepare=session.prepare, prepare_s=prepare_s, start=start,
                     skip_missed=True, realtime=realtime, spin_s=SPIN_S, out=times)
    except BaseException as e:  # Ctrl-C, a bus fault, the device: rest first, then the log, then raise it
        fault = e
    finally:
        try:
            session.layer.close()
        finally:
            src.close()
            if session.viewer is not None:
                session.viewer.close()
    emotion = session.behaviour.b.config.emotion if session.behaviour is not None else "neutral"
    res = session.result(times, backend=backend, emotion=emotion, fault=fault)
    res.safety, res.notes = session.layer.stats.as_dict(session.layer.calibration.names), notes
    if log_path is not None:
        res.save(log_path)
    if fault is not None:
        raise fault
    return res


def _session(src: AudioSource, notes: list[str], *, backend, calibration, window, behaviour, emotion, seed,
             duration_s, port, i2c_bus, baudrate, variant, safety, buses, syncer, prepare_s,
             handle_signals) -> LiveSession:
    """Everything :func:`run_live` needs before the loop (its arguments): calibration, buses, safety layer,
    models, window."""
    if calibration is None:
        if backend != "sim":
            raise ValueError(f"backend {backend} needs the robot's calibration (--calibration FILE)")
        calibration = nominal_calibration("sim")
    cal = calibration if isinstance(calibration, Calibration) else Calibration.load(calibration)
    bus_map = dict(buses) if buses is not None else open_buses(cal, backend, port=port, i2c_bus=i2c_bus,
                                                               variant=variant, baudrate=baudrate)
    sim = bus_map.get("sim") if backend == "sim" else None
    twin = None
    if sim is None and window is not False and _has_display():
        from facetwin.sim.model import FaceModel

        twin = FaceModel.load(variant)  # mirrors the robot's commands on screen
    face = sim.face if sim is not None else twin
    if syncer is None:
        from facetwin.agents.lipsync import LipSyncer

        syncer = LipSyncer("stream")
    syncer.stream().push(np.zeros(SR // 4))  # the first inference's one-off costs, outside the loop
    beh = _behaviour_stream(behaviour, emotion, seed, face.model if face is not None else None)
    config = safety if isinstance(safety, SafetyConfig) else SafetyConfig.load(safety) if safety else SafetyConfig()
    layer = SafeBus(bus_map, cal, dataclasses.replace(config, rate_hz=FPS, handle_signals=handle_signals))
    viewer = _window(window, face, notes)
    max_ticks = None if duration_s is None else int(round(duration_s * FPS))
    return LiveSession(src, layer, syncer, behaviour=beh, sim=sim, twin=twin, viewer=viewer, prepare_s=prepare_s,
                       max_ticks=max_ticks)


__all__ = ["LIVE_LOG_KEYS", "MOVE_THRESHOLD", "LiveResult", "LiveSession", "dropped_ticks", "mouth_lag_ms",
           "reaction_latency", "run_live", "sample_wall_s"]
