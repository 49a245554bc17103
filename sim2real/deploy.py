"""Deployment: play an audio file on the robot (or the twin) with the lips in sync, at 30 Hz, through the safety layer.

``facetwin deploy --calibration FILE --backend pca9685|serial|sim --policy lipsync|EXPORTED_DIR AUDIO`` does:

1. **Commands for the whole file** (the audio is known in advance): ``(T, 26)`` normalized motor commands, row
   ``k`` for the control period ``[k / 30, (k + 1) / 30)`` s of the audio, from the shipped lip-sync pipeline
   (:class:`facetwin.agents.lipsync.LipSyncer` ``"offline"``, the default ``policy="lipsync"``) or from an exported
   ``LipSync-v0`` policy (:mod:`facetwin.sim2real.export`), rolled out closed loop on the twin (:func:`policy_controls`).
2. **Lead** (:func:`schedule_commands`): every motor is commanded ahead of the sound by its calibrated
   ``latency_ms``, so that the mouth does not trail the audio (people notice beyond ~45 ms). With
   ``lead_i = round(latency_i / period)`` rows, tick ``n`` sends motor ``i`` the row ``n - pre + lead_i`` (clamped to
   the clip; rows before the clip are the rest command), where ``pre = max_i lead_i`` pre-roll ticks run before the
   audio starts: nothing of the clip is cut. ``interpolate=True`` leads by the exact latency instead (linear
   interpolation between rows).
3. **Real-time loop** (:func:`facetwin.sim2real.realtime_loop.run_loop`): tick ``n`` is due at ``t0 + n / 30``; the
   loop sleeps coarsely until ``SPIN_S`` before the deadline, then spins on ``time.perf_counter`` (garbage collection
   off during the loop). The audio player starts at the deadline of tick ``pre``. Every command goes through the
   safety layer (:class:`facetwin.hardware.safety.SafeBus`: clamp to the calibrated range, slew limit, watchdog,
   neutral and torque off on exit); the sim backend advances the twin one period per tick.
4. **Log and jitter**: per tick the target time, actual time, lateness, the commands; p50 / p99 / max lateness.

While it plays, the safety layer polls the servos' health (:class:`facetwin.hardware.safety_config.SafetyConfig`
``health_hz``): a servo that stops answering, a corrupted reply, a servo's error status or hardware alert, a
PCA9685 that vanishes or resets ends the run within ``SafeBus.health_detect_s`` (printed at the start): the robot is
brought to rest and relaxed, the ``--log`` keeps the ticks that played and names the fault, and the command exits
with code 3 (:data:`facetwin.hardware.bus.EXIT_FAULT`) and one line naming the bus and the servo. Ctrl-C /
SIGTERM end the same way with code 130.

Backends (imported lazily; a missing one is a clear error):

| backend | bus | notes |
|---|---|---|
| ``sim`` | :class:`facetwin.hardware.sim_bus.SimBus` | the twin as the robot (``variant`` "fast"); the log gets the twin's mouth aperture per tick |
| ``pca9685`` | :class:`facetwin.hardware.pca9685.PCA9685Bus` | one per board address of the calibration (``pca9685@0x41``, ``pca9685@0x42``), I2C bus ``--i2c-bus`` |
| ``serial`` | :class:`facetwin.hardware.serial_bus.DynamixelBus` | on ``--port`` |

Audio players (:func:`make_player`): ``"clock"`` only keeps time (tests, the sim backend, a robot that plays its
audio elsewhere); ``"sounddevice"`` plays through the default output (needs the ``sounddevice`` package and an audio
device); ``"auto"`` = sounddevice when importable, else the clock.

Log (``--log out.npz``; ``N = T + pre`` ticks, :data:`LOG_KEYS`):

| key | shape, dtype | content |
|---|---|---|
| ``fps`` | () float | 30 |
| ``tick`` | (N,) int64 | tick index ``n``; the audio starts at tick ``pre`` |
| ``target_s`` | (N,) float64 | deadline of the tick, seconds from the audio start (``(n - pre) / fps``) |
| ``actual_s`` | (N,) float64 | when the tick's commands were sent, same clock |
| ``lateness_ms`` | (N,) float64 | ``actual - target``, ms (the jitter) |
| ``send_ms`` | (N,) float64 | time spent sending the tick's commands (and stepping the twin on ``sim``) |
| ``ctrl`` | (N, 26) float32 | normalized commands sent at the tick (after the lead) |
| ``units`` | (N, 26) float32 | servo units that reached the bus (after the safety layer) |
| ``source_ctrl`` | (T, 26) float32 | the commands of the clip before the lead |
| ``lead_rows`` | (26,) float64 | per motor lead, in rows (periods) |
| ``aperture_mm`` | (N,) float32 | sim backend: the twin's mouth aperture at the end of the tick's period; else NaN |
| ``actuators`` | (26,) str | actuator names |
| ``backend``, ``policy``, ``audio`` | () str | what ran |
| ``fault`` | () str | what ended the run early (a bus fault, ``"interrupted"``), else empty |

Loop jitter: ``python -m facetwin.benchmarks.bench_deploy`` measures it (the README has the figures); on the robot
use ``realtime=True`` (``--realtime``: SCHED_FIFO, needs root or ``CAP_SYS_NICE``).

>>> from facetwin.hardware.calibration import nominal_calibration
>>> res = deploy("hello.wav", nominal_calibration("sim"), "sim", log_path="hello_deploy.npz")
>>> res.jitter                   # {"p50_ms": ..., "p99_ms": ..., "max_ms": ...}
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facetwin.hardware.bus import BusError, ServoBus
from facetwin.hardware.calibration import Calibration
from facetwin.hardware.safety import SafeBus, SafetyError
from facetwin.hardware.safety_config import SafetyConfig
from facetwin.sim.rates import CONTROL_HZ
from facetwin.sim2real.realtime_loop import SPIN_S, LoopTimes, Player, run_loop

FPS = CONTROL_HZ
BACKENDS = ("sim", "pca9685", "serial")
PLAYERS = ("auto", "clock", "sounddevice")
#: the audible limit of a mouth trailing the sound
TRAIL_LIMIT_MS = 45.0
LOG_KEYS = ("fps", "tick", "target_s", "actual_s", "lateness_ms", "send_ms", "ctrl", "units", "source_ctrl",
            "lead_rows", "aperture_mm", "actuators", "backend", "policy", "audio", "fault")


class DeployError(ValueError):
    """Deployment cannot start: a bad argument, backend or policy (the message names it)."""


# ---------------------------------------------------------------------------------------------------- players
class ClockPlayer:
    """Keeps the audio's time on ``time.perf_counter`` without playing anything."""

    def __init__(self) -> None:
        self._t0: float | None = None

    def start(self) -> None:
        self._t0 = time.perf_counter()

    def time(self) -> float:
        return 0.0 if self._t0 is None else time.perf_counter() - self._t0

    def stop(self) -> None:
        pass


class SoundDevicePlayer(ClockPlayer):
    """Plays ``audio`` on the default output with ``sounddevice`` (non-blocking); time as :class:`ClockPlayer`."""

    def __init__(self, audio: np.ndarray, sr: int) -> None:
        super().__init__()
        import sounddevice

        self._sd = sounddevice
        self.audio, self.sr = np.asarray(audio, dtype=np.float32), int(sr)

    def start(self) -> None:
        self._sd.play(self.audio, self.sr, blocking=False)
        super().start()

    def stop(self) -> None:
        self._sd.stop()


def make_player(kind: str, audio: np.ndarray, sr: int) -> Player:
    """``"clock"``, ``"sounddevice"`` (ImportError naming the package when missing) or ``"auto"``."""
    if kind not in PLAYERS:
        raise DeployError(f"unknown player {kind!r}; choose one of {', '.join(PLAYERS)}")
    if kind == "clock":
        return ClockPlayer()
    try:
        return SoundDevicePlayer(audio, sr)
    except (ImportError, OSError) as e:  # OSError: PortAudio library missing
        if kind == "sounddevice":
            raise ImportError(f"player 'sounddevice' needs the sounddevice package and PortAudio ({e})") from e
        return ClockPlayer()


# ---------------------------------------------------------------------------------------------------- commands
def lead_rows(latency_ms: Sequence[float] | np.ndarray, fps: float = FPS, interpolate: bool = False) -> np.ndarray:
    """(26,) lead of each motor in rows: ``round(latency / period)``, or the exact fraction with ``interpolate``."""
    from facetwin.hardware.calibration import MAX_LATENCY_MS

    lat = np.asarray(latency_ms, dtype=float)
    if not np.isfinite(lat).all() or (lat < 0).any() or (lat > MAX_LATENCY_MS).any():
        raise DeployError(f"latency_ms must be in [0, {MAX_LATENCY_MS:g}] ms, got {lat}")
    rows = lat * fps / 1000.0
    return rows if interpolate else np.rint(rows)


def schedule_commands(
    ctrl: np.ndarray, latency_ms: Sequence[float] | np.ndarray, fps: float = FPS, rest: np.ndarray | None = None,
    *, interpolate: bool = False,
) -> tuple[np.ndarray, int]:
    """``(schedule (T + pre, 26), pre)``: what each tick sends, motor ``i`` led by its latency (module doc, step 2).

    Tick ``n`` is due ``(n - pre) / fps`` s after the audio starts. Rows before the clip are ``rest`` (default the
    rest controls), rows past it hold the last one; with ``interpolate`` the lead is fractional (linear in time,
    from ``rest`` one period before the clip).
    """
    u = np.asarray(ctrl, dtype=float)
    if u.ndim != 2 or u.shape[0] < 1:
        raise DeployError(f"ctrl must be (T, n_motors) with T >= 1, got shape {u.shape}")
    lead = lead_rows(latency_ms, fps, interpolate)
    if lead.shape != (u.shape[1],):
        raise DeployError(f"latency_ms has {lead.size} values for {u.shape[1]} motors")
    if rest is None:
        from facetwin.sim.actuators import rest_controls

        rest = rest_controls()
    rest = np.asarray(rest, dtype=float)
    T = len(u)
    pre = int(np.ceil(lead.max() - 1e-9))
    src = np.arange(T + pre, dtype=float)[:, None] - pre + lead[None, :]  # (N, 26) source row of each tick, motor
    if not interpolate:
        idx = np.clip(src.astype(int), 0, T - 1)
        out = np.take_along_axis(u, idx, axis=0)
        return np.where(src < 0, rest[None, :], out), pre
    out = np.empty((T + pre, u.shape[1]))
    xp = np.arange(-1, T, dtype=float)
    for i in range(u.shape[1]):
        out[:, i] = np.interp(src[:, i], xp, np.concatenate([[rest[i]], u[:, i]]))
    return out, pre


def _load_audio(path: str | Path) -> tuple[np.ndarray, int]:
    from facetwin.audio.io import load_audio

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"audio file {p} not found")
    sr = 16000
    return np.asarray(load_audio(p, sr=sr), dtype=np.float64), sr


def policy_controls(policy, audio_path: str | Path, *, variant: str | None = None) -> np.ndarray:
    """(T, 26) commands of an exported ``LipSync-v0`` policy (:class:`facetwin.sim2real.export.ExportedPolicy` or
    its folder) for an audio file: rolled out closed loop on the nominal twin (the lips and motors it observes are
    the twin's), one command per frame of the clip."""
    from facetwin.audio.timeline import Timeline
    from facetwin.envs.lip_sync import LipSyncEnv
    from facetwin.sim2real.export import ExportedPolicy, load_exported

    if not isinstance(policy, ExportedPolicy):
        policy = load_exported(policy)
    cfg = policy.config
    if "LipSync" not in cfg["env_id"]:
        raise DeployError(f"the policy was trained on {cfg['env_id']}, not a LipSync env: it does not hear audio")
    skip = {"clips", "corpus_dir", "split", "cache_dir", "domain", "max_episode_steps", "render_mode"}
    kwargs = {k: v for k, v in cfg["env_kwargs"].items() if k not in skip}
    if variant is not None:
        kwargs["variant"] = variant
    # the rollout needs no targets: an empty timeline (neutral target lips) keeps forced alignment out of it
    env = LipSyncEnv(clips=[{"audio": str(audio_path), "timeline": Timeline([])}], **kwargs)
    try:
        obs, info = env.reset(seed=0)
        out = np.empty((info["n_frames"], env.n_actuators))
        for k in range(len(out)):
            action = policy(obs)
            out[k] = env.action_to_ctrl(action)
            obs, _r, _term, trunc, _info = env.step(action)
            if trunc and k < len(out) - 1:
                raise DeployError(f"the twin diverged at frame {k} of the policy rollout")
    finally:
        env.close()
    return out


def clip_controls(audio_path: str | Path, policy: str | Path = "lipsync") -> np.ndarray:
    """(T, 26) commands for the audio file: ``"lipsync"`` (the shipped offline pipeline) or an exported policy folder."""
    audio, sr = _load_audio(audio_path)
    if str(policy) == "lipsync":
        from facetwin.agents.lipsync import LipSyncer

        return LipSyncer("offline").controls(audio, sr).ctrl
    if not Path(policy).is_dir():
        raise DeployError(f"policy must be 'lipsync' or an exported policy folder, got {str(policy)!r}")
    return policy_controls(policy, audio_path)


# ---------------------------------------------------------------------------------------------------- buses
def _require(module: str, cls: str, owner: str):
    import importlib

    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as e:
        raise DeployError(f"backend needs {module}.{cls} ({owner}), which is not available: {e}") from e


def open_buses(calibration: Calibration, backend: str, *, port: str | None = None, i2c_bus: int = 1,
               variant: str = "fast", baudrate: int | None = None) -> dict[str, ServoBus]:
    """The buses of ``backend`` keyed by their calibration name (``motor.bus``), not yet opened: the one factory
    of buses from a calibration (``deploy`` and ``calibrate`` both use it). ``baudrate``: the serial servos' (default
    their factory setting, :data:`facetwin.hardware.serial_bus.FACTORY_BAUDRATE`)."""
    _check_baudrate(baudrate)
    if backend not in BACKENDS:
        raise DeployError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    names = sorted({m.bus for m in calibration.motors})
    if backend == "sim":
        if names != ["sim"]:
            raise DeployError(f"backend sim needs a calibration whose motors are all on bus 'sim', got {names}")
        SimBus = _require("facetwin.hardware.sim_bus", "SimBus", "the twin as a servo bus")
        return {"sim": SimBus(calibration, variant=variant)}  # the twin behaves exactly as calibrated
    if backend == "pca9685":
        from facetwin.hardware.calibration import BusAddress

        addrs = {n: BusAddress.parse(n) for n in names}  # the calibration's names are canonical: one per board
        bad = [n for n, a in addrs.items() if a.kind != "pca9685"]
        if bad:
            raise DeployError(f"backend pca9685 needs motors on 'pca9685@0x..' buses, the calibration has {bad}")
        PCA9685Bus = _require("facetwin.hardware.pca9685", "PCA9685Bus", "PCA9685 boards over I2C")
        return {n: PCA9685Bus(a.address, i2c_bus=i2c_bus) for n, a in addrs.items()}
    if names != ["serial"]:
        raise DeployError(f"backend serial needs a calibration whose motors are all on bus 'serial', got {names}")
    if not port:
        raise DeployError("backend serial needs --port (e.g. /dev/ttyUSB0)")
    DynamixelBus = _require("facetwin.hardware.serial_bus", "DynamixelBus", "serial bus servos")
    kw = {} if baudrate is None else {"baudrate": baudrate}
    return {"serial": DynamixelBus(port, ids=[m.channel for m in calibration.motors], **kw)}


def _check_baudrate(baudrate) -> None:
    if baudrate is not None and (isinstance(baudrate, bool) or not isinstance(baudrate, int) or baudrate <= 0):
        raise DeployError(f"--baudrate: a positive whole number of bits per second, got {baudrate!r}")


# ---------------------------------------------------------------------------------------------------- deploy
@dataclass
class DeployResult:
    """What :func:`deploy` did (the log arrays: module doc) and its jitter."""

    arrays: dict[str, np.ndarray]
    pre: int
    jitter: dict[str, float]
    safety: dict[str, Any] = field(default_factory=dict)  # the safety layer's counters (SafetyStats.as_dict)

    def save(self, path: str | Path) -> Path:
        """The log as ``.npz`` (atomically)."""
        from facetwin.files import atomic_write

        p = Path(path)
        if p.suffix != ".npz":
            raise DeployError(f"the log must be a .npz file, got {p}")
        return atomic_write(p, lambda tmp: np.savez_compressed(tmp, **self.arrays))


def deploy(
    audio_path: str | Path,
    calibration: Calibration | str | Path,
    backend: str,
    policy: str | Path = "lipsync",
    *,
    port: str | None = None,
    i2c_bus: int = 1,
    baudrate: int | None = None,
    player: str | Player = "auto",
    interpolate: bool = False,
    log_path: str | Path | None = None,
    buses: Mapping[str, ServoBus] | None = None,
    variant: str = "fast",
    safety: SafetyConfig | str | Path | None = None,
    realtime: bool = False,
    spin_s: float = SPIN_S,
    handle_signals: bool = False,
    behaviour=None,
    progress: bool = True,
) -> DeployResult:
    """Play ``audio_path`` with the lips of ``policy`` on ``backend`` at 30 Hz (module doc). ``buses`` replaces the
    backend's own (tests, dry runs: e.g. PCA9685 boards on a :class:`~facetwin.hardware.pca9685.FakeI2C`); the
    player is the clock on the sim backend unless one is given. ``safety``: the safety layer's limits (a
    :class:`~facetwin.hardware.safety_config.SafetyConfig` or its JSON file; default ``SafetyConfig()``, its rate set
    to 30 Hz). ``handle_signals``: Ctrl-C / SIGTERM stop the loop through the safety layer (neutral, then torque off;
    the CLI sets it). ``realtime``: the loop under SCHED_FIFO where permitted (see
    :func:`~facetwin.sim2real.realtime_loop.run_loop`). ``behaviour``: a
    :class:`~facetwin.agents.behaviour.BehaviourConfig`: blinks, gaze, brows, head and emotion around the lips."""
    _check_baudrate(baudrate)
    cal = calibration if isinstance(calibration, Calibration) else Calibration.load(calibration)
    if backend not in BACKENDS:
        raise DeployError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    audio, sr = _load_audio(audio_path)
    bus_map = dict(buses) if buses is not None else open_buses(cal, backend, port=port, i2c_bus=i2c_bus,
                                                               variant=variant, baudrate=baudrate)
    ctrl = clip_controls(audio_path, policy)
    if behaviour is not None:
        from facetwin.agents.behaviour import Behaviour

        ctrl = Behaviour(behaviour).apply(ctrl, audio, sr)
    sched, pre = schedule_commands(ctrl, cal.latency_ms, FPS, interpolate=interpolate)
    if isinstance(player, str):
        player = make_player("clock" if backend == "sim" and player == "auto" else player, audio, sr)
    config = safety if isinstance(safety, SafetyConfig) else SafetyConfig.load(safety) if safety else SafetyConfig()
    layer = SafeBus(bus_map, cal, dataclasses.replace(config, rate_hz=FPS, handle_signals=handle_signals))
    sim = bus_map.get("sim") if backend == "sim" else None
    played = _play(layer, sched, pre, player, sim, spin_s=spin_s, realtime=realtime, progress=progress)
    times, interrupted = played.times, played.interrupted
    from facetwin.sim.actuators import actuator_names

    arrays = {
        "fps": np.float64(FPS), "tick": np.arange(len(sched), dtype=np.int64), "target_s": times.target_s,
        "actual_s": times.actual_s, "lateness_ms": times.lateness_ms, "send_ms": 1000.0 * times.send_s,
        "ctrl": sched.astype(np.float32), "units": played.units.astype(np.float32),
        "source_ctrl": ctrl.astype(np.float32), "lead_rows": lead_rows(cal.latency_ms, FPS, interpolate),
        "aperture_mm": played.aperture.astype(np.float32), "actuators": np.array(list(actuator_names())),
        "backend": np.array(backend), "policy": np.array(str(policy)), "audio": np.array(str(audio_path)),
        "fault": np.array("" if interrupted is None else "interrupted" if isinstance(interrupted, KeyboardInterrupt)
                          else str(interrupted)),
    }
    assert set(arrays) == set(LOG_KEYS)
    res = DeployResult(arrays=arrays, pre=pre, jitter={**times.jitter, "realtime": times.realtime},
                       safety=layer.stats.as_dict(cal.names))
    if log_path is not None:
        res.save(log_path)
    if interrupted is not None:
        raise interrupted
    return res


@dataclass
class _Playback:
    """What :func:`_play` sent, filled tick by tick (NaN until played), and what ended it early, if anything."""

    times: LoopTimes
    units: np.ndarray  # (N, n_motors) servo units that reached the buses
    aperture: np.ndarray  # (N,) the twin's mouth aperture at the end of the tick's period (sim backend)
    interrupted: BaseException | None = None


def _play(layer: SafeBus, sched: np.ndarray, pre: int, player: Player, sim, *, spin_s: float, realtime: bool,
          progress: bool) -> _Playback:
    """Open ``layer`` and send it row ``n`` of ``sched`` at tick ``n`` (the audio from tick ``pre``; ``sim``: the
    twin's bus, advanced one period per tick), then stop the player and close the layer. A bus fault, Ctrl-C or
    SIGTERM ends the loop early: kept in ``interrupted`` (the layer has brought the robot to rest)."""
    N = len(sched)
    played = _Playback(LoopTimes(*(np.full(N, np.nan) for _ in range(3))),
                       np.full((N, len(layer.calibration.motors)), np.nan), np.full(N, np.nan))

    units, aperture = played.units, played.aperture

    def send(n: int) -> None:
        sent = layer.command(sched[n])
        if sent is not None:  # None: rejected by the safety layer (non-finite), the last command holds
            units[n] = sent
        if sim is not None:
            sim.advance(sim.period)
            aperture[n] = sim.face.mouth()["aperture_mm"]

    layer.open()
    health_hz = layer.config.health_hz
    if progress and health_hz is not None:
        print(f"health polls at {health_hz:g} Hz: a servo or board fault is found within "
              f"{layer.health_detect_s:.2f} s", file=sys.stderr)
    try:
        run_loop(N, send, FPS, audio_tick=pre, player=player, spin_s=spin_s, realtime=realtime, progress=progress,
                 out=played.times)
    except (KeyboardInterrupt, BusError, SafetyError) as e:  # the robot goes to rest (finally: the layer has
        played.interrupted = e  # parked it already on a fault), the log keeps what played
    finally:
        try:
            player.stop()
        finally:
            layer.close()
    return played


__all__ = ["BACKENDS", "LOG_KEYS", "ClockPlayer", "DeployError", "DeployResult", "SoundDevicePlayer",
           "clip_controls", "deploy", "lead_rows", "make_player", "open_buses", "policy_controls",
           "schedule_commands"]
