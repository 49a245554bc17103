"""Audio (and optionally its transcript) to motor commands: the lip-sync pipeline, offline and streaming.

1. **What the mouth must do**, per 30 fps frame (a :class:`~facetwin.agents.mouth_plan.MouthPlan`,
   :mod:`facetwin.agents.mouth_plan`): the 40 lip landmarks, and the probabilities that the lips must seal (B/P/M),
   round (W/OO/O) or open (open vowels). From the audio (:class:`facetwin.agents.audio_to_lips.AudioToLips`) or from
   a phone timeline (a transcript aligned to the recording, a song's or TTS's own phones: certain events and the
   exact lip track).
2. **How the face does it** (:class:`MouthController`, settings :data:`CONTROLLER_DEFAULTS`): the command of
   control period ``k`` aims at plan frame ``k + shape_lead`` (the servos and the skin need ~1 frame to get
   there); an event of plan frames ``k + a .. k + b`` (``*_window = (a, b)``) is served by command ``k``:

   | plan | command ``k`` |
   |---|---|
   | a seal is likely in ``seal_window`` (``closure_p > seal_threshold``) | :data:`SEAL_POSE`: the lower lip pressed up, the upper down, the jaw shut (a /b/ lasts ~1 frame; the face needs ~2 to shut from a wide vowel) |
   | rounding likely in ``round_window`` (``rounded_p > round_threshold``) | the face's own lip shape (:mod:`facetwin.sim.lip_shapes`) nearest to a rounded mouth: at most ``ROUND_WIDTH`` x the neutral width, ``ROUND_APERTURE_MM`` apart, ``ROUND_PROTRUSION_MM`` forward, through the inverse self-model |
   | an open vowel likely in ``open_window`` (``open_p > open_threshold``) | the same with the aperture at least ``OPEN_APERTURE_MM`` |
   | otherwise | the face's own lip shape nearest to the plan's lips at ``k + shape_lead``, through the inverse self-model |

3. The commands drive the face (or the robot: ``facetwin deploy``).

| mode | audio model | lookahead of a command | use |
|---|---|---|---|
| ``"offline"`` | offline weights (267 ms ahead, whole-recording normalisation) | the whole file | files, videos, evaluation |
| ``"stream"`` | streaming weights (24 ms ahead, running normalisation) | ``lead_frames`` frames + 24 ms <= 100 ms | live audio: :class:`LipSyncStream` |

The stream emits exactly the commands of :meth:`LipSyncer.controls` in stream mode, each as soon as its lookahead
has arrived (tested). A transcript (``timeline=``) decides the events and the lip shapes; the audio fills frames
the transcript does not cover.

Output of ``facetwin lipsync`` (``.npz``, keys :data:`LIPSYNC_NPZ_KEYS`; ``T`` frames at 30 fps):

| key | shape, dtype | content |
|---|---|---|
| ``fps`` | () float | 30 |
| ``t`` | (T,) float64 | frame times, ``k / fps`` s |
| ``ctrl`` | (T, 26) float32 | normalized motor commands in actuator order (command of period ``k``) |
| ``actuators`` | (26,) str | actuator names (``assets/data/actuators.csv`` order) |
| ``aperture_mm``, ``width_mm``, ``protrusion_mm`` | (T,) float32 | measured on the simulated face driven by ``ctrl`` (end of period ``k``) |
| ``landmarks_mm`` | (T, N, 3) float32 | all schema landmarks of the simulated face, head frame, mm |
| ``landmark_ids`` | (N,) int64 | MediaPipe FaceMesh ids of the landmark rows |
| ``target_lips_mm`` | (T, 40, 3) float32 | the plan's lip targets (displacement from neutral, ids ``lip_landmark_ids``) |
| ``closure_p``, ``rounded_p``, ``open_p`` | (T,) float32 | the plan's seal / rounding / opening probabilities |
| ``mode``, ``variant``, ``audio``, ``text``, ``lang`` | () str | how it was made |

>>> syncer = LipSyncer("offline")                          # shipped weights
>>> result = syncer.run_audio(audio, sr)                    # commands + the face they produce
>>> save_lipsync_npz("out.npz", result)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facetwin.audio.timeline import Timeline
from facetwin.sim.model import FaceModel
from facetwin.sim.playback import Playback, play
from facetwin.sim.rates import AUDIO_SR, CONTROL_HZ

from .mouth_plan import MouthPlan, merge_plans, plan_from_prediction, plan_from_timeline

MODES = ("offline", "stream")
FPS = CONTROL_HZ
SR = AUDIO_SR
MAX_STREAM_LOOKAHEAD_S = 0.1

LIPSYNC_NPZ_KEYS = {
    "fps": "() frames per second (30)",
    "t": "(T,) frame times in seconds, k / fps",
    "ctrl": "(T, 26) float32 normalized motor commands, actuator order",
    "actuators": "(26,) str actuator names",
    "aperture_mm": "(T,) float32 measured midline lip aperture of the simulated face",
    "width_mm": "(T,) float32 measured mouth width",
    "protrusion_mm": "(T,) float32 measured lip protrusion vs neutral",
    "landmarks_mm": "(T, N, 3) float32 simulated landmarks, head frame",
    "landmark_ids": "(N,) int64 MediaPipe ids of the landmark rows",
    "target_lips_mm": "(T, 40, 3) float32 lip targets of the plan (displacement from neutral)",
    "closure_p": "(T,) float32 seal probability",
    "rounded_p": "(T,) float32 rounding probability",
    "open_p": "(T,) float32 opening probability",
    "mode": "() str offline | stream",
    "variant": "() str face variant",
    "audio": "() str the input audio file ('' when not from a file)",
    "text": "() str the transcript ('' when none)",
    "lang": "() str language code ('' when unknown)",
}

#: the seal (B/P/M): lower lip pressed up against the upper, upper pressed down, jaw shut (rest). From a 13 mm
#: opening the lips meet within ~3 frames; settled they press to -1.5 mm.
SEAL_POSE = {"lip_lower_depress_R": -1.0, "lip_lower_depress_L": -1.0,
             "lip_upper_raise_R": -0.5, "lip_upper_raise_L": -0.5}
#: an open vowel asks for at least this aperture (mm); a rounded frame for at most ROUND_WIDTH x the neutral
#: width, an aperture in ROUND_APERTURE_MM and at least ROUND_PROTRUSION_MM of protrusion (the face's own shapes
#: with those measures are the targets: facetwin.sim.lip_shapes)
OPEN_APERTURE_MM = 12.0
ROUND_WIDTH = 0.82
ROUND_APERTURE_MM = (3.0, 7.0)
ROUND_PROTRUSION_MM = 2.0
#: controller defaults per mode, chosen on the held-out sentences and held-out language of the training corpus
#: (training voices; never on real recordings nor on the held-out voices). Offline, thresholds of 0.4 rather than
#: 0.5 gained 3 points of closure and 7 of rounding for 0.05 mm of lip error; streaming, they gained nothing. With
#: the canonical-mesh face (faster servos) a lead of 1 frame and seals served from the command's own frame brought
#: the median offset from -32 ms to ~0 and closure +3 points (offline) / +2.5 (stream) on that tuning set.
#: ``*_window``: command k serves an event of plan frames k + a .. k + b; ``shape_lead``: command k aims at the
#: lip shape of frame k + shape_lead; ``seal_early``: a wide-open mouth (the previous command settles above
#: SEAL_EARLY_MM) starts sealing this many frames sooner (it needs ~3 frames to shut, a half-open one ~2).
SEAL_EARLY_MM = 8.0
CONTROLLER_DEFAULTS: dict[str, dict] = {
    "offline": {"shape_lead": 1, "seal_window": (0, 1), "seal_early": 0, "round_window": (0, 2),
                "open_window": (1, 1), "seal_threshold": 0.4, "round_threshold": 0.4, "open_threshold": 0.5},
    "stream": {"shape_lead": 1, "seal_window": (0, 1), "seal_early": 0, "round_window": (0, 2),
               "open_window": (1, 1), "seal_threshold": 0.5, "round_threshold": 0.5, "open_threshold": 0.5},
}


def _pose_controls(rest: np.ndarray, names: list[str], pose: dict[str, float]) -> np.ndarray:
    u = np.array(rest, dtype=float)
    for name, value in pose.items():
        u[names.index(name)] = value
    return u


def seal_controls(rest: np.ndarray, names: list[str]) -> np.ndarray:
    """The commands of :data:`SEAL_POSE` (lips pressed together) on top of ``rest``."""
    return _pose_controls(rest, names, SEAL_POSE)


# ---------------------------------------------------------------------------------------------------- controller
class MouthController:
    """Plan -> (T, 26) commands (the table of the module docstring)."""

    def __init__(self, self_model, *, mode: str = "offline", **overrides):
        from facetwin.audio.lip_track import neutral_measures
        from facetwin.sim.actuators import actuator_names, rest_controls

        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        cfg = dict(CONTROLLER_DEFAULTS[mode])
        unknown = set(overrides) - set(cfg)
        if unknown:
            raise ValueError(f"unknown controller setting(s) {', '.join(sorted(unknown))}; known: {', '.join(cfg)}")
        cfg.update({k: v for k, v in overrides.items() if v is not None})
        for k in ("seal_window", "round_window", "open_window"):
            a, b = (int(x) for x in cfg[k])
            if a > b:
                raise ValueError(f"{k} must be (a, b) with a <= b, got {cfg[k]!r}")
            cfg[k] = (a, b)
        for k in ("shape_lead", "seal_early"):
            if int(cfg[k]) != cfg[k] or cfg[k] < 0:
                raise ValueError(f"{k} must be an integer >= 0, got {cfg[k]!r}")
            cfg[k] = int(cfg[k])
        self.cfg = cfg
        self.mode = mode
        self.self_model = self_model
        self.names = list(actuator_names())
        self.rest = rest_controls().astype(float)
        self.seal_ctrl = seal_controls(self.rest, self.names)
        nm = neutral_measures()
        self.neutral = (nm["aperture_mm"], nm["width_mm"])
        self.neutral_width = nm["width_mm"]

    @property
    def lead_frames(self) -> int:
        return self.cfg["shape_lead"]

    @property
    def ahead_frames(self) -> int:
        """Plan frames beyond ``k`` that command ``k`` reads."""
        c = self.cfg
        return max(c["shape_lead"], c["seal_window"][1] + c["seal_early"], c["round_window"][1], c["open_window"][1])

    @property
    def back_frames(self) -> int:
        """Plan frames before ``k`` that command ``k`` reads."""
        c = self.cfg
        return max(0, -min(c["shape_lead"], c["seal_window"][0], c["round_window"][0], c["open_window"][0]))

    @staticmethod
    def _window_any(p: np.ndarray, window: tuple[int, int], threshold: float, k=None) -> np.ndarray:
        """Whether ``p`` exceeds ``threshold`` on any frame ``k + a .. k + b`` (clamped to the plan), for the frames
        ``k`` (default: all)."""
        p = np.asarray(p)
        T = len(p)
        k = np.arange(T) if k is None else np.atleast_1d(k)
        out = np.zeros(len(k), bool)
        for d in range(window[0], window[1] + 1):
            out |= p[np.clip(k + d, 0, T - 1)] > threshold
        return out

    def target_measures(self, plan: MouthPlan, k=None) -> np.ndarray:
        """(aperture, width, protrusion) that command ``k`` aims at (``k``: a frame or frames, default all; returns
        (..., 3)): the plan's lips at ``k + shape_lead``, narrowed and protruded when rounding is due, opened when an
        open vowel is."""
        from facetwin.audio.lip_track import measures_from_landmarks

        c = self.cfg
        T = len(plan)
        ks = np.arange(T) if k is None else np.atleast_1d(k)
        j = np.minimum(ks + c["shape_lead"], T - 1)
        m = measures_from_landmarks(plan.lips_mm[j])
        ap, w, pr = (np.array(m[n], dtype=float) for n in ("aperture_mm", "width_mm", "protrusion_mm"))
        rnd = self._window_any(plan.rounded_p, c["round_window"], c["round_threshold"], ks)
        opn = self._window_any(plan.open_p, c["open_window"], c["open_threshold"], ks) & ~rnd
        ap = np.where(rnd, np.clip(ap, *ROUND_APERTURE_MM), np.where(opn, np.maximum(ap, OPEN_APERTURE_MM), ap))
        w = np.where(rnd, np.minimum(w, ROUND_WIDTH * self.neutral_width), w)
        pr = np.where(rnd, np.maximum(pr, ROUND_PROTRUSION_MM), pr)
        out = np.stack([ap, w, pr], axis=-1)
        return out if k is None or np.ndim(k) else out[0]

    def targets(self, plan: MouthPlan, k=None) -> np.ndarray:
        """The face's lip shapes (..., 40, 3) that command(s) ``k`` aim at (:meth:`target_measures`)."""
        from facetwin.sim.lip_shapes import face_lip_shapes

        m = self.target_measures(plan, k)
        return face_lip_shapes(m[..., 0], m[..., 1], m[..., 2], neutral=self.neutral)

    def _aperture(self, ctrl: np.ndarray) -> float:
        """Settled aperture (mm) of a command, by the forward self-model."""
        from facetwin.audio.lip_track import measures_from_landmarks

        return float(measures_from_landmarks(self.self_model.forward_lips(ctrl[None])[0])["aperture_mm"])

    def _seal(self, plan: MouthPlan, k, prev: np.ndarray, sure=None) -> bool:
        c = self.cfg
        a, b = c["seal_window"]
        if (self._window_any(plan.closure_p, (a, b), c["seal_threshold"], k)[0] if sure is None else sure):
            return True
        return bool(c["seal_early"] and self._aperture(prev) > SEAL_EARLY_MM
                    and self._window_any(plan.closure_p, (a, b + c["seal_early"]), c["seal_threshold"], k)[0])

    def command(self, plan: MouthPlan, k: int, prev: np.ndarray) -> np.ndarray:
        """The command of control period ``k`` (plan frames clamped to the plan), given the previous command."""
        if self._seal(plan, k, prev):
            return self.seal_ctrl.copy()
        return self._inverse(self.targets(plan, k), prev)

    @property
    def _inverse(self):
        if getattr(self, "_inverse_fn", None) is None:
            self._inverse_fn = self.self_model.inverse_step_fn()
        return self._inverse_fn

    def commands(self, plan: MouthPlan) -> np.ndarray:
        """(T, 26), sequential (the previous command is the inverse model's context); the same numbers as
        :meth:`command` frame by frame, with the targets and seal decisions computed for all frames at once."""
        T = len(plan)
        out = np.empty((T, len(self.rest)))
        if T == 0:
            return out
        targets = self.targets(plan)
        sure = self._window_any(plan.closure_p, self.cfg["seal_window"], self.cfg["seal_threshold"])
        inverse = self._inverse
        prev = self.rest
        for k in range(T):
            if self._seal(plan, k, prev, sure=sure[k]) if self.cfg["seal_early"] else sure[k]:
                prev = out[k] = self.seal_ctrl
            else:
                prev = out[k] = inverse(targets[k], prev)
        return out


# ---------------------------------------------------------------------------------------------------- syncer
@dataclass
class LipSyncResult:
    """Commands for ``T`` frames and what produced them (``playback``: the simulated face, when played)."""

    ctrl: np.ndarray  # (T, 26)
    plan: MouthPlan
    mode: str
    fps: float = FPS
    inference_s: float = 0.0  # compute time of the commands (features + models), seconds
    playback: Playback | None = None
    meta: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.ctrl)

    @property
    def duration_s(self) -> float:
        return len(self.ctrl) / self.fps

    @property
    def target_lips_mm(self) -> np.ndarray:
        return self.plan.lips_mm


class LipSyncer:
    """Audio (+ optional phone timeline) -> (T, 26) motor commands with the shipped (or given) weights."""

    def __init__(self, mode: str = "offline", *, self_model=None, audio_model=None, weights_dir: str | Path | None = None,
                 **controller):
        from facetwin.agents.audio_to_lips import AudioToLips
        from facetwin.agents.self_model import SelfModel
        from facetwin.agents.weights import AUDIO_TO_LIPS_FILES, SELF_MODEL_FILE

        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        self.mode = mode
        wd = Path(weights_dir) if weights_dir is not None else None
        if self_model is None:
            self_model = SelfModel.load(wd / SELF_MODEL_FILE) if wd else SelfModel.load_shipped()
        if audio_model is None:
            audio_model = AudioToLips.load(wd / AUDIO_TO_LIPS_FILES[mode]) if wd else AudioToLips.load_shipped(mode)
        self.self_model, self.audio_model = self_model, audio_model
        self.controller = MouthController(self_model, mode=mode, **controller)
        if mode == "stream":
            total = self.controller.ahead_frames / FPS + audio_model.lookahead_s
            if total > MAX_STREAM_LOOKAHEAD_S + 1e-9:
                raise ValueError(f"stream mode would look {total * 1000:.0f} ms ahead (controller "
                                 f"{self.controller.ahead_frames} frames + audio model "
                                 f"{audio_model.lookahead_s * 1000:.0f} ms); the limit is "
                                 f"{MAX_STREAM_LOOKAHEAD_S * 1000:.0f} ms")
        self.actuator_names = self.controller.names
        self.rest = self.controller.rest

    @property
    def lead_frames(self) -> int:
        return self.controller.lead_frames

    @property
    def lookahead_s(self) -> float:
        """Audio a command needs past its control period's start."""
        return self.controller.ahead_frames / FPS + self.audio_model.lookahead_s

    def embedding(self, audio16: np.ndarray) -> np.ndarray:
        """(T, 18) what is being said, whoever says it: the square roots of the audio model's viseme, seal, rounding
        and opening probabilities (the frames the transcript aligner matches, :func:`facetwin.audio.transcript.dtw_align`)."""
        p = self.audio_model.predict_audio(audio16, SR)
        return np.sqrt(np.concatenate([p.viseme_p, np.stack([p.closure_p, p.rounded_p, p.open_p], axis=1)], axis=1))

    def align_transcript(self, audio: np.ndarray, sr: int, text: str, lang: str) -> Timeline:
        """The phone timeline of ``text`` (language ``lang``) in ``audio``: pocketsphinx for English, cross-lingual
        pocketsphinx on espeak-ng's phones for the other languages, DTW against an espeak-ng rendering with this
        model's :meth:`embedding` when the decoder fails (:func:`facetwin.audio.transcript.transcript_timeline`)."""
        from facetwin.audio.transcript import transcript_timeline

        return transcript_timeline(audio, sr, text, lang, embed=self.embedding)

    def plan(self, audio16: np.ndarray, timeline: Timeline | None = None) -> MouthPlan:
        """The plan of 16 kHz audio (and its phone timeline, when given)."""
        p = plan_from_prediction(self.audio_model.predict_audio(audio16, SR))
        if timeline is not None and len(timeline):
            p = merge_plans(p, plan_from_timeline(timeline, len(p)))
        return p

    def controls(self, audio: np.ndarray, sr: int, timeline: Timeline | None = None) -> LipSyncResult:
        """Commands for mono ``audio`` at ``sr`` Hz; ``timeline``: the phones of what is said (a transcript aligned
        to this audio, a song's phones), which then decide the mouth events and shapes."""
        from facetwin.audio.io import resample

        a = np.asarray(audio, dtype=np.float64)
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"audio must be a non-empty 1-D array, got shape {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError("audio contains NaN or inf")
        t0 = time.perf_counter()
        if int(sr) != SR:
            a = resample(a, int(sr), SR)
        plan = self.plan(a, timeline)
        ctrl = self.controller.commands(plan)
        return LipSyncResult(ctrl=ctrl, plan=plan, mode=self.mode, inference_s=time.perf_counter() - t0)

    def run_audio(self, audio: np.ndarray, sr: int, *, face: FaceModel | None = None, variant: str = "fast",
                  timeline: Timeline | None = None) -> LipSyncResult:
        """:meth:`controls`, then play them on the face (``result.playback``)."""
        res = self.controls(audio, sr, timeline)
        res.playback = play(face if face is not None else FaceModel.load(variant), res.ctrl)
        res.meta["variant"] = variant if face is None else face.variant
        return res

    def stream(self) -> "LipSyncStream":
        """A live session: push audio chunks, get commands frame by frame (stream mode only)."""
        if self.mode != "stream":
            raise ValueError("LipSyncer.stream() needs mode='stream'")
        return LipSyncStream(self)


class LipSyncStream:
    """Live lip sync: ``push(chunk)`` (16 kHz mono) returns the commands that became ready, as ``(k, ctrl)`` pairs.

    Command ``k`` is ready once the plan frames up to ``k + controller.ahead_frames`` are known (audio up to
    ``t_k + syncer.lookahead_s``); ``flush()`` ends the stream (silence past the end) and returns the rest.
    Identical to ``LipSyncer("stream").controls(audio, 16000).ctrl``."""

    def __init__(self, syncer: LipSyncer):
        self.syncer = syncer
        self._lips = syncer.audio_model.streamer()
        self._buf: dict[str, list] = {"lips": [], "closure": [], "rounded": [], "open": []}
        self._base = 0  # plan frame index of the first buffered frame
        self._prev = syncer.rest.copy()
        self._next = 0
        self._ended = False

    def _consume(self, frames, final: bool, total: int | None = None) -> list[tuple[int, np.ndarray]]:
        c = self.syncer.controller
        for k, f in frames:
            assert k == self._base + len(self._buf["lips"]), (k, self._base)
            self._buf["lips"].append(f.lips_mm)
            self._buf["closure"].append(f.closure_p)
            self._buf["rounded"].append(f.rounded_p)
            self._buf["open"].append(f.open_p)
        n = self._base + len(self._buf["lips"])  # plan frames known
        out = []
        while self._next < n:
            k = self._next
            if k + c.ahead_frames >= n and not final:
                break
            lo = max(k - c.back_frames, 0)
            a, b = lo - self._base, n - self._base
            plan = MouthPlan(np.stack(self._buf["lips"][a:b]), np.asarray(self._buf["closure"][a:b]),
                             np.asarray(self._buf["rounded"][a:b]), np.asarray(self._buf["open"][a:b]))
            # the view reaches k + ahead (or the true end when final): clamping in command() is the batch form's
            self._prev = u = c.command(plan, k - lo, self._prev)
            out.append((k, u))
            self._next += 1
        keep_from = max(self._next - c.back_frames, 0)
        drop = min(max(keep_from - self._base, 0), len(self._buf["lips"]))
        if drop:
            for v in self._buf.values():
                del v[:drop]
            self._base += drop
        return out

    def push(self, chunk: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Feed 16 kHz mono samples; returns the ``(k, ctrl)`` commands that became ready."""
        if self._ended:
            raise RuntimeError("the stream was flushed; start a new one")
        return self._consume(self._lips.push(np.asarray(chunk, dtype=np.float64)), final=False)

    def flush(self) -> list[tuple[int, np.ndarray]]:
        """End of audio: the remaining commands."""
        self._ended = True
        return self._consume(self._lips.flush(), final=True)


# ---------------------------------------------------------------------------------------------------- npz
def save_lipsync_npz(path: str | Path, result: LipSyncResult, *, audio: str = "", text: str = "", lang: str = "") -> Path:
    """Write ``result`` (which must have been played: ``result.playback``) as the ``facetwin lipsync`` npz."""
    from facetwin.files import atomic_write
    from facetwin.sim.actuators import actuator_names
    from facetwin.sim.landmarks import landmark_ids

    pb = result.playback
    if pb is None:
        raise ValueError("play the commands first (LipSyncer.run_audio or result.playback = play(face, ctrl))")
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"the output must be a .npz file, got {path}")
    arrays = {
        "fps": np.float64(result.fps),
        "t": np.arange(result.n_frames) / result.fps,
        "ctrl": result.ctrl.astype(np.float32),
        "actuators": np.array(list(actuator_names())),
        "aperture_mm": pb.aperture_mm.astype(np.float32),
        "width_mm": pb.width_mm.astype(np.float32),
        "protrusion_mm": pb.protrusion_mm.astype(np.float32),
        "landmarks_mm": pb.landmarks_mm.astype(np.float32),
        "landmark_ids": np.asarray(landmark_ids(), dtype=np.int64),
        "target_lips_mm": np.asarray(result.plan.lips_mm, dtype=np.float32),
        "closure_p": np.asarray(result.plan.closure_p, dtype=np.float32),
        "rounded_p": np.asarray(result.plan.rounded_p, dtype=np.float32),
        "open_p": np.asarray(result.plan.open_p, dtype=np.float32),
        "mode": np.array(result.mode),
        "variant": np.array(str(result.meta.get("variant", ""))),
        "audio": np.array(str(audio)),
        "text": np.array(str(text)),
        "lang": np.array(str(lang)),
    }
    assert set(arrays) == set(LIPSYNC_NPZ_KEYS)
    atomic_write(path, lambda p: np.savez_compressed(p, **arrays))
    return path


__all__ = ["CONTROLLER_DEFAULTS", "LIPSYNC_NPZ_KEYS", "MODES", "SEAL_POSE", "LipSyncResult", "LipSyncStream",
           "LipSyncer", "MouthController", "save_lipsync_npz", "seal_controls"]
