"""The behaviour layer: blinks, gaze, brows, head and emotion around a lip-synced mouth.

Lip sync (:mod:`facetwin.agents.lipsync`, a baseline, an RL policy) commands the 11 mouth actuators (lips and jaw).
The behaviour layer drives the other 15 (brows, eyelids, eyes, neck) from the voice's prosody
(:mod:`facetwin.audio.prosody`, causal, 30 Hz) and adds an emotion preset (:data:`facetwin.sim.expressions.EMOTIONS`)
on top of both, without breaking the lips' seals. It is causal frame by frame, so the same object serves a file
(:meth:`Behaviour.apply`) and a live voice (:meth:`Behaviour.stream`), with identical commands, deterministic for a
seed. Each part can be turned off in :class:`BehaviourConfig`.

| part | actuators | what drives it |
|---|---|---|
| blinks | eyelid_upper/lower_R/L | a renewal process (gamma intervals) at ``blink_rate_rest`` per minute when silent, ``blink_rate_speaking`` while speaking; a blink at a phrase end with probability ``phrase_end_blink_p``; never closer than ``blink_min_gap_s`` |
| gaze | eye_yaw/pitch_R/L | fixations on ``gaze_target`` (room frame; default the mirror camera, i.e. the listener) with small saccades (``gaze_jitter_deg``), glances away (``glance_p`` of the fixations, ``glance_deg``); the eyes keep the point while the head moves (:class:`facetwin.sim.gaze.Gaze`) |
| prosody | brow_inner/outer_R/L, neck_pitch | a brow raise and a small nod on each stressed syllable (strength from the prosody), a nod at a phrase end |
| beat | neck_pitch, neck_roll | in song: a nod on every beat and a sway that alternates side each beat (tracked or given tempo) |
| idle | neck, brows | slow smoothed noise (Ornstein-Uhlenbeck), as a living face never holds perfectly still |
| emotion | all 26 | the preset's offsets at ``emotion_intensity``; on the mouth they yield to the lip sync: the lips' vertical offsets vanish while the lips press (B/P/M) and the corners' while they round (W/OO) |

>>> beh = Behaviour(BehaviourConfig(seed=1, emotion="happy"))
>>> ctrl = beh.apply(lipsync_ctrl, audio, 16000)       # (T, 26): mouth from the lip sync, the rest alive
>>> live = beh.stream(); live.push_audio(chunk); u = live.command(k, mouth_ctrl_k)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np

from facetwin.audio.prosody import ProsodyConfig, ProsodyFrame, ProsodyStream
from facetwin.sim.actuators import actuator_names, indices, rest_controls
from facetwin.sim.rates import CONTROL_HZ

DT = 1.0 / CONTROL_HZ
#: the upper eyelid's command through a blink, frame by frame, as a fraction of the way from open to shut: fast
#: down (~70 ms), shut for a frame, slower up (~130 ms), as people blink
BLINK_PROFILE = (0.55, 1.0, 1.0, 0.65, 0.35, 0.12)
BLINK_LONG_P = 0.35  # a blink stays shut one frame longer this often (people's blinks vary in length)
BLINK_LOWER = 0.35  # the lower lid rises this fraction of the way during a blink
BLINK_SHAPE = 3.0  # gamma shape of the intervals between blinks (1 would be Poisson; people's are more regular)


@dataclass(frozen=True)
class BehaviourConfig:
    """Every parameter of the behaviour layer (units in the names); a part's flag turns it off."""

    seed: int = 0
    blink: bool = True
    gaze: bool = True
    prosody: bool = True  # brow raises and nods on stressed syllables and phrase ends
    beat: bool = True  # head motion on the beats of a song
    idle: bool = True
    emotion: str = "neutral"
    emotion_intensity: float = 0.6
    blink_rate_rest: float = 17.0  # per minute, silent (people: ~15-20)
    blink_rate_speaking: float = 10.0  # per minute, while speaking (fewer)
    phrase_end_blink_p: float = 0.6  # chance of a blink when a phrase ends
    blink_min_gap_s: float = 0.8
    gaze_target: tuple[float, float, float] | None = None  # room frame, metres; None: the mirror camera
    gaze_jitter_deg: float = 0.8  # small saccades around the target
    fixation_s: float = 1.4  # mean fixation length
    glance_p: float = 0.15  # fraction of fixations that look away
    glance_deg: float = 10.0  # how far a glance goes
    brow_raise: float = 0.55  # brow command of a full-strength stress (normalized control)
    brow_decay_s: float = 0.35
    nod: float = 0.10  # neck_pitch kick of a full-strength stress (normalized control, down)
    phrase_nod: float = 0.12
    beat_nod: float = 0.07
    beat_sway: float = 0.10  # neck_roll amplitude of the beat sway
    idle_neck: float = 0.03  # stationary std of the idle motion (normalized control)
    idle_brow: float = 0.03
    idle_tau_s: float = 1.5
    tempo_bpm: float | None = None  # a song's known tempo: beats on its grid (else tracked from the audio)
    beat_offset_s: float = 0.0  # the first beat's time when the tempo is given

    def __post_init__(self):
        from facetwin.sim.expressions import EMOTIONS

        if self.emotion not in EMOTIONS:
            raise KeyError(f"unknown emotion {self.emotion!r}; known: {', '.join(EMOTIONS)}")
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"behaviour {f.name} must be a finite number, got {v}")
        if not 0.0 <= self.emotion_intensity <= 1.0:
            raise ValueError(f"behaviour emotion_intensity must be in [0, 1], got {self.emotion_intensity}")
        for name in ("phrase_end_blink_p", "glance_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"behaviour {name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("blink_rate_rest", "blink_rate_speaking", "blink_min_gap_s", "gaze_jitter_deg", "glance_deg",
                     "brow_decay_s", "idle_tau_s", "idle_neck", "idle_brow"):
            if getattr(self, name) < 0:
                raise ValueError(f"behaviour {name} must be >= 0, got {getattr(self, name)}")
        if self.fixation_s <= 0:
            raise ValueError(f"behaviour fixation_s must be > 0, got {self.fixation_s}")
        if self.gaze_target is not None and (len(self.gaze_target) != 3
                                             or not all(math.isfinite(float(x)) for x in self.gaze_target)):
            raise ValueError(f"behaviour gaze_target must be 3 finite numbers (metres), got {self.gaze_target}")

    def mouth_only(self) -> "BehaviourConfig":
        """The same config with every part off and a neutral face: the commands pass through unchanged."""
        return replace(self, blink=False, gaze=False, prosody=False, beat=False, idle=False, emotion="neutral")


def _idx(*names: str) -> np.ndarray:
    order = {n: i for i, n in enumerate(actuator_names())}
    return np.array([order[n] for n in names], dtype=int)


@dataclass(frozen=True)
class BlinkStats:
    """Blinks found in an eye's aperture track (:func:`blink_events`)."""

    starts_s: np.ndarray  # when each blink's lid passed ``threshold`` of the way shut
    durations_s: np.ndarray  # how long it stayed past it
    seconds: float  # length of the track

    @property
    def per_minute(self) -> float:
        return 60.0 * len(self.starts_s) / self.seconds if self.seconds > 0 else float("nan")


def blink_events(aperture_mm: np.ndarray, fps: float = CONTROL_HZ, threshold: float = 0.2) -> BlinkStats:
    """The blinks in an eye's aperture track (upper to lower lid, mm, e.g. landmarks 159 - 145 of the twin): runs
    where the lids are at least ``threshold`` of the way from the open level (the track's median) to shut (0 mm).
    With 0.2 a blink's duration is the time its lid is visibly down, as blink durations are usually measured
    (people: about 100-400 ms)."""
    a = np.asarray(aperture_mm, dtype=float)
    if a.ndim != 1 or a.size == 0 or not np.isfinite(a).all():
        raise ValueError("aperture_mm must be a non-empty 1-D track of finite numbers")
    open_mm = float(np.median(a))
    down = a <= (1.0 - threshold) * open_mm
    edges = np.diff(np.r_[0, down.astype(int), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return BlinkStats(starts / fps, (ends - starts) / fps, len(a) / fps)


class _Parts:
    """Actuator indices of each part (from the actuator table)."""

    def __init__(self):
        self.mouth = np.sort(np.r_[indices("lips"), indices("jaw")])
        self.lids_upper = _idx("eyelid_upper_R", "eyelid_upper_L")
        self.lids_lower = _idx("eyelid_lower_R", "eyelid_lower_L")
        self.brows = indices("brows")
        self.neck_yaw, self.neck_pitch, self.neck_roll = (_idx(n)[0] for n in ("neck_yaw", "neck_pitch", "neck_roll"))
        self.eyes = _idx("eye_yaw_R", "eye_yaw_L", "eye_pitch_R", "eye_pitch_L")
        self.lip_vertical = _idx("lip_upper_raise_R", "lip_upper_raise_L", "lip_lower_depress_R",
                                 "lip_lower_depress_L", "lip_pucker_upper", "lip_pucker_lower", "jaw_open")
        self.press = _idx("lip_upper_raise_R", "lip_upper_raise_L", "lip_lower_depress_R", "lip_lower_depress_L")
        self.corners = _idx("lip_corner_pull_R", "lip_corner_pull_L", "lip_corner_depress_R", "lip_corner_depress_L")
        self.puckers = _idx("lip_pucker_upper", "lip_pucker_lower")


class Behaviour:
    """The behaviour layer of one performance (see the module doc): :meth:`apply` for a file, :meth:`stream` live.

    ``model``: the face's MjModel for the gaze geometry (default: the built-in face, fast variant)."""

    def __init__(self, config: BehaviourConfig | None = None, *, model=None):
        from facetwin.sim.expressions import emotion_ctrl

        self.config = config if config is not None else BehaviourConfig()
        self.names = actuator_names()
        self.rest = rest_controls().astype(float)
        self.parts = _Parts()
        c = self.config
        self.emotion_offset = emotion_ctrl(self.names, c.emotion, c.emotion_intensity) - self.rest
        self.model = model
        self._gaze = None

    @property
    def gaze(self):
        """The eyes' geometry (:class:`facetwin.sim.gaze.Gaze`), built on first use."""
        if self._gaze is None:
            from facetwin.sim.gaze import Gaze

            if self.model is None:
                from facetwin.sim.model import FaceModel

                self.model = FaceModel.load("fast").model
            self._gaze = Gaze(self.model)
            self.eyes_mid = 0.5 * (self.model.body("eye_R").pos + self.model.body("eye_L").pos)
        return self._gaze

    def prosody_config(self) -> ProsodyConfig:
        c = self.config
        return ProsodyConfig(beats=c.beat, tempo_bpm=c.tempo_bpm, beat_offset_s=c.beat_offset_s)

    def stream(self) -> "BehaviourStream":
        """A live performance: ``push_audio(chunk16k)`` as the voice comes, ``command(k, mouth_ctrl)`` per frame."""
        return BehaviourStream(self)

    def apply(self, ctrl: np.ndarray, audio: np.ndarray, sr: int) -> np.ndarray:
        """(T, 26) commands of a performance with the behaviour layer on: the mouth of ``ctrl`` (any lip-sync
        method), the other actuators alive with the voice ``audio`` (mono, ``sr`` Hz). Identical to streaming it."""
        from facetwin.audio.io import resample

        u = np.asarray(ctrl, dtype=float)
        if u.ndim != 2 or u.shape[1] != len(self.names):
            raise ValueError(f"commands must be (T, {len(self.names)}), got shape {u.shape}")
        a = np.asarray(audio, dtype=np.float64)
        if a.ndim != 1:
            raise ValueError(f"audio must be mono (1-D), got shape {a.shape}")
        if int(sr) != 16000:
            a = resample(a, int(sr), 16000)
        s = self.stream()
        s.push_audio(a)
        s.end_audio()
        return np.stack([s.command(k, u[k]) for k in range(len(u))]) if len(u) else u.copy()


class BehaviourStream:
    """One performance, frame by frame (causal): frame ``k``'s command uses the prosody of frames ``<= k`` only."""

    def __init__(self, behaviour: Behaviour):
        self.b = behaviour
        c = behaviour.config
        self._prosody = ProsodyStream(behaviour.prosody_config())
        self._frames: dict[int, ProsodyFrame] = {}
        self._ended = False
        rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(c.seed).spawn(4)]
        self._blink = BlinkTimer(c, rngs[0])
        self._gaze = GazeWander(c, rngs[1])
        self._head = HeadMotion(c)
        self._idle = IdleMotion(c, rngs[2])
        self._k = -1
        self._last: np.ndarray | None = None

    def push_audio(self, chunk: np.ndarray) -> None:
        """The next samples of the voice (16 kHz mono)."""
        for f in self._prosody.push(np.asarray(chunk, dtype=np.float64)):
            self._frames[f.k] = f

    def end_audio(self) -> None:
        """No more audio: the last partial frame is analysed (padded with silence)."""
        if not self._ended:
            for f in self._prosody.flush():
                self._frames[f.k] = f
            self._ended = True

    def _frame(self, k: int) -> ProsodyFrame | None:
        f = self._frames.pop(k, None)
        for old in [j for j in self._frames if j < k]:
            del self._frames[old]
        return f

    def _advance(self, f: ProsodyFrame | None) -> None:
        """One frame of every part's state."""
        c, k = self.b.config, self._k
        speaking = bool(f.speaking) if f is not None else False
        stress = float(f.stress) if (f is not None and c.prosody) else 0.0
        phrase_end = bool(f.phrase_end) if (f is not None and c.prosody) else False
        beat = bool(f.beat) if (f is not None and c.beat) else False
        if c.blink:
            self._blink.step(k, speaking, bool(f.phrase_end) if f is not None else False)
        if c.gaze:
            self._gaze.step(k, phrase_end)
        self._head.step(stress, phrase_end, beat)
        if c.idle:
            self._idle.step()

    def command(self, k: int, mouth_ctrl: np.ndarray) -> np.ndarray:
        """The full (26,) command of frame ``k``: the mouth of ``mouth_ctrl``, the rest from the behaviour. Frames
        go forward (skipped ones are advanced through; the same ``k`` again gives the same pose)."""
        u_in = np.asarray(mouth_ctrl, dtype=float)
        if u_in.shape != (len(self.b.names),):
            raise ValueError(f"mouth_ctrl must have shape ({len(self.b.names)},), got {u_in.shape}")
        if k < self._k:
            raise ValueError(f"frame {k} is before frame {self._k}: a stream goes forward")
        while self._k < k:
            self._k += 1
            self._advance(self._frame(self._k))
        return self._compose(u_in)

    def _compose(self, u_in: np.ndarray) -> np.ndarray:
        b, c, p = self.b, self.b.config, self.b.parts
        u = u_in.copy()
        nm = np.setdiff1d(np.arange(len(u)), p.mouth)
        u[nm] = b.rest[nm] + b.emotion_offset[nm]  # the non-mouth actuators belong to the behaviour
        u[p.mouth] += self._mouth_emotion(u_in)
        if c.idle:
            u[p.brows] += self._idle.brow
            u[[p.neck_yaw, p.neck_pitch, p.neck_roll]] += self._idle.neck
        u[p.brows] += self._head.brow
        u[p.neck_pitch] += self._head.pitch
        u[p.neck_roll] += self._head.roll
        if c.blink:
            shut = self._blink.closure
            u[p.lids_upper] += shut * (1.0 - u[p.lids_upper])
            u[p.lids_lower] += BLINK_LOWER * shut * (1.0 - u[p.lids_lower])
        if c.gaze:
            eyes = self._gaze.eye_controls(b.gaze, b.eyes_mid, b.model, u)
            u[p.eyes] = [eyes[n] for n in ("eye_yaw_R", "eye_yaw_L", "eye_pitch_R", "eye_pitch_L")]
        return np.clip(u, -1.0, 1.0)

    def _mouth_emotion(self, u_in: np.ndarray) -> np.ndarray:
        """The emotion's offsets on the mouth actuators, yielding to the lip sync: the vertical ones vanish as the
        lips press (a seal), the corners' as they round."""
        b, p = self.b, self.b.parts
        off = np.zeros(len(u_in))
        off[p.mouth] = b.emotion_offset[p.mouth]
        if not off.any():
            return off[p.mouth]
        press = float(np.clip(-np.mean(u_in[p.press] - b.rest[p.press]) / 0.3, 0.0, 1.0))
        rounding = float(np.clip(np.max(u_in[p.puckers] - b.rest[p.puckers]) / 0.5, 0.0, 1.0))
        off[p.lip_vertical] *= 1.0 - press
        off[p.corners] *= 1.0 - max(press, rounding)
        return off[p.mouth]


class BlinkTimer:
    """When the eyes blink, and how far shut they are now (0 open .. 1 shut)."""

    def __init__(self, c: BehaviourConfig, rng: np.random.Generator):
        self.c, self.rng = c, rng
        self.progress = 0.0
        self.due = self._draw()
        self.start = -10**9  # frame the current (or last) blink began
        self.profile = BLINK_PROFILE
        self.closure = 0.0

    def _draw(self) -> float:
        return float(self.rng.gamma(BLINK_SHAPE, 1.0 / BLINK_SHAPE))  # in units of the mean interval

    def step(self, k: int, speaking: bool, phrase_end: bool) -> None:
        c = self.c
        rate = c.blink_rate_speaking if speaking else c.blink_rate_rest
        self.progress += rate / 60.0 * DT
        free = (k - self.start) * DT >= c.blink_min_gap_s
        fire = free and (self.progress >= self.due or (phrase_end and self.rng.random() < c.phrase_end_blink_p))
        if fire:
            self.start, self.progress, self.due = k, 0.0, self._draw()
            long = self.rng.random() < BLINK_LONG_P
            self.profile = BLINK_PROFILE[:2] + (1.0,) + BLINK_PROFILE[2:] if long else BLINK_PROFILE
        j = k - self.start
        self.closure = self.profile[j] if 0 <= j < len(self.profile) else 0.0


class GazeWander:
    """Where the eyes look: fixations near the target, small saccades, glances away."""

    def __init__(self, c: BehaviourConfig, rng: np.random.Generator):
        self.c, self.rng = c, rng
        self.offset = np.zeros(2)  # (yaw, pitch) degrees from the target direction
        self.next_k = 0

    def step(self, k: int, phrase_end: bool) -> None:
        c = self.c
        if k < self.next_k and not (phrase_end and self.rng.random() < 0.5):
            return
        if self.rng.random() < c.glance_p and not np.any(self.offset):
            ang = self.rng.uniform(0, 2 * np.pi)
            self.offset = c.glance_deg * self.rng.uniform(0.7, 1.2) * np.array([np.cos(ang), 0.5 * np.sin(ang)])
            length = self.rng.uniform(0.4, 1.0)
        else:
            self.offset = self.rng.uniform(-1.0, 1.0, 2) * c.gaze_jitter_deg
            length = self.rng.gamma(2.0, c.fixation_s / 2.0)
        self.next_k = k + max(int(round(length / DT)), 3)

    def eye_controls(self, gaze, eyes_mid: np.ndarray, model, u: np.ndarray) -> dict[str, float]:
        """The eye commands that look at the target (room frame) displaced by the current offset, with the head
        where ``u`` commands it."""
        from facetwin.sim.gaze import camera_position

        target_room = self.c.gaze_target
        if target_room is None:
            target_head = camera_position(model, u)
        else:
            target_head = gaze.target_in_head(np.asarray(target_room, dtype=float), u)
        return gaze.eye_controls(_displace(target_head, eyes_mid, self.offset))


def _displace(target: np.ndarray, origin: np.ndarray, offset_deg: np.ndarray) -> np.ndarray:
    """``target`` turned about ``origin`` by (yaw, pitch) degrees (head frame: z up)."""
    d = np.asarray(target, dtype=float) - origin
    r = float(np.linalg.norm(d))
    if r < 1e-9 or not np.any(offset_deg):
        return np.asarray(target, dtype=float)
    yaw = math.atan2(d[1], d[0]) + math.radians(offset_deg[0])
    pitch = math.atan2(d[2], math.hypot(d[0], d[1])) + math.radians(offset_deg[1])
    return origin + r * np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), math.sin(pitch)])


class HeadMotion:
    """Brow raises and nods: each stress, phrase end or beat starts a pulse ``a (t w) exp(1 - t w)`` (a critically
    damped servo's response to a kick: down to ``a`` after ``1 / w``, back within ~0.5 s); the beat sway alternates
    side each beat."""

    OMEGA = 2 * np.pi * 1.6  # a nod's peak ~0.1 s after its syllable, mostly back after 0.4 s
    PULSE_S = 1.5  # a pulse is dropped after this long (it has decayed to < 1 %)

    def __init__(self, c: BehaviourConfig):
        self.c = c
        self.brow = 0.0
        self.pitch = 0.0
        self.roll_target, self.roll = 0.0, 0.0
        self.side = 1.0
        self.pulses: list[list[float]] = []  # [age s, amplitude]

    def step(self, stress: float, phrase_end: bool, beat: bool) -> None:
        c = self.c
        self.brow *= math.exp(-DT / max(c.brow_decay_s, 1e-6))
        if stress > 0:
            self.brow = max(self.brow, c.brow_raise * stress)
            self.pulses.append([0.0, -c.nod * stress])
        if phrase_end:
            self.pulses.append([0.0, -c.phrase_nod])
        if beat:
            self.pulses.append([0.0, -c.beat_nod])
            self.side = -self.side
            self.roll_target = c.beat_sway * self.side
        self.pulses = [[age + DT, a] for age, a in self.pulses if age + DT < self.PULSE_S]
        self.pitch = sum(a * (age * self.OMEGA) * math.exp(1.0 - age * self.OMEGA) for age, a in self.pulses)
        self.roll += (self.roll_target - self.roll) * (1.0 - math.exp(-DT / 0.25))


class IdleMotion:
    """Slow Ornstein-Uhlenbeck micro-motion of the neck and brows."""

    def __init__(self, c: BehaviourConfig, rng: np.random.Generator):
        self.c, self.rng = c, rng
        self.neck = np.zeros(3)
        self.brow = 0.0

    def step(self) -> None:
        c = self.c
        a = math.exp(-DT / c.idle_tau_s) if c.idle_tau_s > 0 else 0.0
        s = math.sqrt(max(1.0 - a * a, 0.0))
        self.neck = a * self.neck + s * c.idle_neck * self.rng.standard_normal(3)
        self.brow = a * self.brow + s * c.idle_brow * float(self.rng.standard_normal())


__all__ = ["BLINK_PROFILE", "Behaviour", "BehaviourConfig", "BehaviourStream", "BlinkStats", "BlinkTimer", "blink_events", "GazeWander", "HeadMotion",
           "IdleMotion"]
