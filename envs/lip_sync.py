"""``LipSyncEnv`` (``facetwin/LipSync-v0``): move the lips to speech and song, frame by frame, from the audio."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from facetwin.audio.corpus import (
    CORPUS_FPS,
)
from facetwin.sim.expressions import mix_ctrl
from facetwin.sim.landmarks import column, lip_landmark_ids, mouth_measures

from .base import FaceEnv
from .clips import (  # noqa: F401  (re-exported: the clip types and constants are part of the env's API)
    AUDIO_OBS_BOUND,
    BUILTIN_CORPUS_ARGS,
    BUILTIN_CORPUS_NAME,
    LOGMEL_OFFSET,
    LOGMEL_SCALE,
    N_AUDIO_FEATURES,
    N_LIPS,
    RMS_OFFSET_DB,
    RMS_SCALE_DB,
    SPLITS,
    ClipData,
    CorpusClip,
    audio_obs_features,
    builtin_corpus_dir,
    clip_from_audio,
    corpus_clips,
    load_labelled_clip,
    user_clip,
)

# ---------------------------------------------------------------------------------------------------- constants
#: audio observation units: log-mel ``(logmel - ln(1e-6)) / 10``, RMS ``(rms_db + 100) / 50``: 0 is digital silence
#: (the floors of facetwin.audio.features), so zero padding outside the clip reads exactly as silence
LANDMARK_SCALE_MM = 10.0  # lip observation units: (landmark - neutral) / 10 mm (as MirrorSelfModelEnv)
LANDMARK_OBS_BOUND = 20.0
MOTOR_OBS_BOUND = 3.0


LIP_ERRORS = ("centroid", "absolute")

# scripted baseline (:meth:`LipSyncEnv.scripted_controls`): settled aperture (mm) of the "ah" expression (the jaw)
# at these intensities on the nominal face (fast and full agree within 0.05 mm)
AH_LEVELS = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
AH_APERTURE = np.array([2.11, 5.91, 9.24, 12.1, 14.68, 17.05])


# ---------------------------------------------------------------------------------------------------- arguments
def _check_settings(*, context_frames, lookahead_frames, lip_coef, closure_coef, rounding_coef, closure_mm,
                    lip_error) -> None:
    """Raise ``ValueError`` for an audio window or reward setting :class:`LipSyncEnv` cannot use."""
    for name, v in (("context_frames", context_frames), ("lookahead_frames", lookahead_frames)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
    for name, c in (("lip_coef", lip_coef), ("closure_coef", closure_coef), ("rounding_coef", rounding_coef)):
        if not (np.isfinite(c) and c >= 0):
            raise ValueError(f"{name} must be finite and >= 0, got {c}")
    if lip_error not in LIP_ERRORS:
        raise ValueError(f"unknown lip_error {lip_error!r}; choose one of {', '.join(LIP_ERRORS)}")
    if not (np.isfinite(closure_mm) and closure_mm >= 0):
        raise ValueError(f"closure_mm must be finite and >= 0, got {closure_mm}")


def _check_source(clips, corpus_dir, split: str | None) -> str:
    """Check the choice of clips (user audio or a corpus split); the split to play (``"train"`` by default)."""
    if clips is not None and corpus_dir is not None:
        raise ValueError("give either clips= (your audio) or corpus_dir= (a corpus folder), not both")
    if clips is not None and split is not None:
        raise ValueError("split= selects corpus items; it does not apply to clips=")
    split = "train" if split is None else split
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return split


def _user_sources(clips, fps: float) -> list:
    """The clips of ``clips=`` (one clip or a sequence of them: see :class:`LipSyncEnv`), in order."""
    single_tuple = isinstance(clips, tuple) and len(clips) in (2, 3) and isinstance(clips[1], (int, np.integer))
    if isinstance(clips, (str, os.PathLike, dict)) or hasattr(clips, "timeline") or single_tuple:
        clips = [clips]
    sources: list = [user_clip(c, i, fps) for i, c in enumerate(clips)]
    if not sources:
        raise ValueError("clips= is empty: give at least one clip")
    return sources


# ---------------------------------------------------------------------------------------------------- environment
class LipSyncEnv(FaceEnv):
    """Lip sync: move the 26 motors so that the lips follow the lip targets of an utterance or a song as it plays.

    Each episode plays one clip (speech or song). At every 30 Hz step the agent hears a window of audio features
    around the current frame (a little of the future included), sees its own lips, and commands the motors; it is
    scored against the clip's target lip track (:func:`facetwin.audio.lip_track.lip_track`: coarticulated visemes,
    bilabials forced shut, rounding started early), with extra weight on the two things the physical robot found
    hardest: sealing the lips on B/P/M and rounding them on W/OO.

    ## Clips

    | source | argument | clips |
    |---|---|---|
    | built-in corpus (default) | ``cache_dir`` (default ``$FACETWIN_CACHE``, ``~/.cache/facetwin``), ``split`` | 44 utterances in 11 languages (4 each) + the shipped songs, built with ``build_corpus`` on first use (seconds) into ``<cache>/corpus-v2``; ``split="train"`` by default (Hebrew is the held-out language) |
    | a corpus folder | ``corpus_dir``, ``split`` | the items of ``split``: ``"train"`` (default), ``"heldout_sentence"``, ``"heldout_language"``, ``"heldout_voice"`` or ``"all"`` (``facetwin corpus build``) |
    | your audio | ``clips=[...]`` | each entry: a path (timeline from the sibling ``<stem>.phones.json``, as ``facetwin say/align`` write it), an ``Utterance`` (``synthesize``/``sing``), ``(audio, sr)`` + a third item transcript or timeline, or a dict ``{audio, sr, timeline, transcript, id, lang, text}`` |

    User audio needs phoneme timing: a timeline, or an English transcript (forced alignment with
    :func:`facetwin.audio.align.align`); audio without either is refused at construction. Audio is resampled to
    16 kHz and its features and lip track computed exactly as the corpus builder does. Clips are loaded lazily
    (the first episode that plays one) and kept in memory; corpus clips are shared by all envs of a process.
    ``env.unwrapped.clip_ids`` lists the clips; ``reset(options={"clip": id or index})`` picks one, else it is drawn
    uniformly with the env's seeded ``np_random``.

    ## Action space

    ``Box(-1, 1, (26,), float32)``, one value per actuator (``actuator_names``), as in every facetwin env:

    | action_mode | meaning |
    |---|---|
    | ``"absolute"`` (default) | normalized motor targets (rest: 0, ``jaw_open`` -1) |
    | ``"delta"`` | command increment: ``u_t = clip(u_{t-1} + max_delta * a_t, -1, 1)`` |

    ## Observation space

    ``Dict`` (``W = context_frames + 1 + lookahead_frames``, default 8 + 1 + 3 = 12):

    | key | shape, dtype | content |
    |---|---|---|
    | ``"audio"`` | (W, 81) float32 | feature frames ``k - context_frames .. k + lookahead_frames`` of the current frame ``k``, oldest first (row ``context_frames`` is frame ``k``); columns: 80 log-mel bands ``(logmel - ln 1e-6) / 10`` and RMS ``(rms_db + 100) / 50``; frames outside the clip are 0 (= digital silence) |
    | ``"lips"`` | (40, 3) float32 | current lip landmarks (``lips_outer`` then ``lips_inner``, MediaPipe ids ``lip_landmark_ids``), ``(x - neutral) / 10 mm``, head frame, with the domain's noise/dropout, clipped to +-20 |
    | ``"motors"`` | (26,) float32 | motor positions, normalized (``FaceModel.motor_positions()``), clipped to +-3 |
    | ``"prev_action"`` | (26,) float32 | the previous action as applied (clipped to [-1, 1]); after reset the action that holds the rest command (absolute: rest controls; delta: zeros) |

    ``flat_obs=True`` flattens ``"audio"`` to (W * 81,) and ``"lips"`` to (120,) (row-major; Stable-Baselines3's
    ``check_env`` warns about 2-D entries, its ``MultiInputPolicy`` handles both).

    **Which audio an observation sees.** Frame ``k`` is at ``t_k = k / 30`` s and its features come from audio
    centred on ``t_k`` (:mod:`facetwin.audio.features`: a 66.7 ms Hann window, so frame ``k`` hears up to
    ``t_k + 33.3 ms``). The observation the agent acts on at step ``k`` (from ``reset()`` for ``k = 0``, from step
    ``k - 1`` after) holds frames ``k - context_frames .. k + lookahead_frames``: it has heard the audio up to
    ``t_k + lookahead_frames / 30 + 33.3 ms`` (default 133 ms, of which 100 ms are the frame lookahead) and never
    more. ``lookahead_frames=0`` is causal up to the feature window itself (what :class:`StreamingFeatures` emits
    live: 33.3 ms).

    ## Rewards

    Step ``k`` (``k = 0 .. T - 1``) holds the command for one control period (1/30 s) and scores the resulting face
    against target frame ``k``; the lip targets (``lip_landmarks_mm``) are displacements from the neutral lips,
    compared with the face's true (noise-free) lip landmarks minus its own neutral ones:

    | term (``info["reward_<term>"]``) | value |
    |---|---|
    | ``lip`` | ``-lip_coef * error_mm``: mean Euclidean distance (mm) over the 40 lip landmarks between the face's displacement and the target's, after removing their mean difference (``lip_error="centroid"``, default: the lip shape, wherever the mouth as a whole sits) or as is (``"absolute"``) |
    | ``closure`` | ``-closure_coef * max(0, aperture_mm - closure_mm)`` on target closure frames (bilabials: the lips must seal, ``closure_mm`` = 1 mm), else 0 |
    | ``rounding`` | ``-rounding_coef * max(0, width_mm - target_width_mm)`` on target rounding frames (W/OO class), else 0 |
    | ``effort`` | ``-effort_coef * mean_i (u_i - rest_i)^2`` (shared, :class:`FaceEnv`) |
    | ``jerk`` | ``-jerk_coef * mean_i (u_i - u_prev_i)^2`` (shared: an action-rate penalty on the motor commands) |

    ``info`` (every step): ``clip``, ``frame`` (``k``), ``t`` (``t_k``), ``error_mm``, the face's ``aperture_mm``,
    ``width_mm``, ``protrusion_mm`` and the targets ``target_aperture_mm``, ``target_width_mm``,
    ``target_protrusion_mm``, ``closure`` and ``rounded`` (target flags), ``phoneme`` (the timeline's phone sounding
    at ``t_k``, "" in silence), ``viseme`` (the target's dominant viseme), the reward terms, ``diverged``, ``step``.
    ``reset()`` info: ``clip``, ``kind``, ``lang``, ``text``, ``n_frames``.

    Why ``"centroid"`` by default: the lip targets are the face's own shapes for the phones' aperture, width and
    protrusion (:mod:`facetwin.sim.lip_shapes`), jaw motion included, so ``"absolute"`` is meaningful too; the
    centroid error scores the lip shape wherever the mouth as a whole sits, which is what a viewer reads and what
    :mod:`facetwin.agents.metrics` reports.

    ## Starting state

    The settled neutral face, motor command = rest, at frame 0 of the clip.

    ## Episode end

    | condition | result |
    |---|---|
    | the clip's last frame was played (step ``T``, ``T = ceil(duration * 30)`` frames) | ``truncated=True`` |
    | ``max_episode_steps`` (default ``None``) | ``truncated=True`` |
    | the physics diverges | ``truncated=True``, ``info["diverged"]=True`` (see :class:`FaceEnv`) |

    ``terminated`` is always False. An episode has exactly as many steps as its clip has frames; the final
    observation (frame ``T``) is zero-padded past the end.

    ## Arguments

    | argument | default | meaning |
    |---|---|---|
    | ``clips`` | ``None`` | user audio (table above); excludes ``corpus_dir`` |
    | ``corpus_dir`` | ``None`` | a corpus folder; ``None`` (and no ``clips``): the built-in corpus |
    | ``split`` | ``"train"`` | corpus split: ``"train"``, ``"heldout_sentence"``, ``"heldout_language"``, ``"all"`` |
    | ``cache_dir`` | ``None`` | cache folder of the built-in corpus (default :func:`default_cache_dir`) |
    | ``context_frames`` | 8 | past feature frames in the audio window (267 ms) |
    | ``lookahead_frames`` | 3 | future feature frames in the audio window (100 ms) |
    | ``flat_obs`` | False | flatten ``"audio"`` and ``"lips"`` to 1-D |
    | ``lip_coef`` | 1.0 | weight of the lip landmark error (per mm) |
    | ``closure_coef`` | 2.0 | weight of the aperture above ``closure_mm`` on closure frames (per mm) |
    | ``rounding_coef`` | 0.5 | weight of the width above target on rounding frames (per mm) |
    | ``closure_mm`` | 1.0 | aperture (mm) at or below which the lips count as sealed |
    | ``lip_error`` | ``"centroid"`` | ``"centroid"`` (lip shape: mean displacement difference removed) or ``"absolute"`` |
    | shared | | ``variant`` (``"fast"``), ``face``, ``action_mode``, ``max_delta``, ``domain``, ``max_episode_steps`` (``None``), ``reset_settle_steps``, ``effort_coef`` (0.05), ``jerk_coef`` (0.2), ``render_mode``, ``render_camera``: see :class:`facetwin.envs.base.FaceEnv` |

    >>> env = LipSyncEnv()                                   # built-in corpus, train split
    >>> obs, info = env.reset(seed=0)                        # info["clip"], info["n_frames"]
    >>> obs["audio"].shape, obs["lips"].shape                # (12, 81), (40, 3)
    >>> u = env.unwrapped.scripted_controls()                # a scripted open-loop baseline for this clip
    """

    reset_option_keys: ClassVar[tuple[str, ...]] = ("domain", "clip")

    def __init__(
        self,
        *,
        clips: Sequence[Any] | None = None,
        corpus_dir: str | Path | None = None,
        split: str | None = None,
        cache_dir: str | Path | None = None,
        context_frames: int = 8,
        lookahead_frames: int = 3,
        flat_obs: bool = False,
        lip_coef: float = 1.0,
        closure_coef: float = 2.0,
        rounding_coef: float = 0.5,
        closure_mm: float = 1.0,
        lip_error: str = "centroid",
        **kwargs: Any,
    ):
        _check_settings(context_frames=context_frames, lookahead_frames=lookahead_frames, lip_coef=lip_coef,
                        closure_coef=closure_coef, rounding_coef=rounding_coef, closure_mm=closure_mm,
                        lip_error=lip_error)
        split = _check_source(clips, corpus_dir, split)

        super().__init__(**kwargs)
        fps = float(self.face.control_hz)
        if fps != CORPUS_FPS:
            raise ValueError(f"the face's control rate {fps:g} Hz differs from the corpus frame rate {CORPUS_FPS:g}")
        self.fps = fps
        if clips is not None:
            sources = _user_sources(clips, fps)
            self.corpus_dir = None
        else:
            self.corpus_dir = Path(corpus_dir) if corpus_dir is not None else builtin_corpus_dir(cache_dir)
            sources = corpus_clips(self.corpus_dir, split, fps)
        ids = [s.id for s in sources]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"clip ids must be unique; repeated: {', '.join(dup)} (give clips an 'id')")
        self._sources = sources
        self._ids = {cid: i for i, cid in enumerate(ids)}
        self.split = split if clips is None else None
        self._own_cache: dict[int, ClipData] = {}

        self.context_frames = int(context_frames)
        self.lookahead_frames = int(lookahead_frames)
        self.window = self.context_frames + 1 + self.lookahead_frames
        self.flat_obs = bool(flat_obs)
        self.lip_coef, self.closure_coef, self.rounding_coef = float(lip_coef), float(closure_coef), float(rounding_coef)
        self.closure_mm = float(closure_mm)
        self.lip_error = lip_error

        self.lip_landmark_ids = lip_landmark_ids()
        self._lip_cols = np.array([column(int(i)) for i in self.lip_landmark_ids])
        self._neutral_lips = self._neutral_lm[self._lip_cols].copy()
        a_shape = (self.window * N_AUDIO_FEATURES,) if self.flat_obs else (self.window, N_AUDIO_FEATURES)
        l_shape = (N_LIPS * 3,) if self.flat_obs else (N_LIPS, 3)
        self.observation_space = spaces.Dict({
            "audio": spaces.Box(-AUDIO_OBS_BOUND, AUDIO_OBS_BOUND, a_shape, np.float32),
            "lips": spaces.Box(-LANDMARK_OBS_BOUND, LANDMARK_OBS_BOUND, l_shape, np.float32),
            "motors": spaces.Box(-MOTOR_OBS_BOUND, MOTOR_OBS_BOUND, (self.n_actuators,), np.float32),
            "prev_action": spaces.Box(-1.0, 1.0, (self.n_actuators,), np.float32),
        })
        self._clip: ClipData | None = None
        self._padded: np.ndarray | None = None
        self._true_lm = self._neutral_lm.copy()
        self._prev_action = self.ctrl_to_action(self.rest_ctrl)

    # ------------------------------------------------------------------------------------------ clips
    @property
    def clip_ids(self) -> list[str]:
        """The ids of the clips this env plays, in index order."""
        return [s.id for s in self._sources]

    @property
    def n_clips(self) -> int:
        return len(self._sources)

    @property
    def clip(self) -> ClipData | None:
        """The clip of the current episode (None before the first reset)."""
        return self._clip

    def clip_index(self, clip: int | str) -> int:
        """Index of a clip given by id or index."""
        if isinstance(clip, (int, np.integer)) and not isinstance(clip, bool):
            if not 0 <= int(clip) < len(self._sources):
                raise ValueError(f"clip index {int(clip)} out of range: this env has {len(self._sources)} clips")
            return int(clip)
        if isinstance(clip, str):
            if clip not in self._ids:
                some = ", ".join(list(self._ids)[:8]) + (" ..." if len(self._ids) > 8 else "")
                raise ValueError(f"unknown clip {clip!r}; this env's clips: {some}")
            return self._ids[clip]
        raise TypeError(f"clip must be an id (str) or an index (int), got {type(clip).__name__}")

    def load_clip(self, clip: int | str) -> ClipData:
        """The arrays of a clip (loaded on first use, then kept in memory)."""
        i = self.clip_index(clip)
        src = self._sources[i]
        if isinstance(src, CorpusClip):
            return src.load()
        data = self._own_cache.get(i)
        if data is None:
            data = self._own_cache[i] = src.load()
        return data

    # ------------------------------------------------------------------------------------------ task hooks
    def _sample_task(self, options: dict) -> None:
        sel = options.pop("clip", None)
        i = int(self.np_random.integers(len(self._sources))) if sel is None else self.clip_index(sel)
        clip = self.load_clip(i)
        self._clip = clip
        pad_lo = np.zeros((self.context_frames, N_AUDIO_FEATURES), np.float32)
        pad_hi = np.zeros((self.lookahead_frames + 1, N_AUDIO_FEATURES), np.float32)
        self._padded = np.concatenate([pad_lo, clip.audio_obs, pad_hi])  # row r = frame r - context_frames

    def _after_reset(self) -> None:
        self._prev_action = self.ctrl_to_action(self.rest_ctrl)

    def audio_window(self, frame: int) -> np.ndarray:
        """(W, 81) audio observation rows of ``frame`` (frames ``frame - context .. frame + lookahead``)."""
        if self._padded is None:
            raise RuntimeError("call reset() first")
        k = int(frame)
        if not 0 <= k <= self._clip.n_frames:
            raise ValueError(f"frame {k} outside [0, {self._clip.n_frames}]")
        return self._padded[k:k + self.window].copy()

    def _get_obs(self) -> dict[str, np.ndarray]:
        self._true_lm = lm = self.face.landmarks_mm()
        p = self.domain_params
        sensed = self.sense_landmarks_mm(lm) if (p.obs_noise_mm or p.landmark_dropout) else lm
        lips = (sensed[self._lip_cols] - self._neutral_lips) * (1.0 / LANDMARK_SCALE_MM)
        lips = np.clip(lips, -LANDMARK_OBS_BOUND, LANDMARK_OBS_BOUND).astype(np.float32)
        audio = self.audio_window(min(self._elapsed, self._clip.n_frames))
        if self.flat_obs:
            audio, lips = audio.ravel(), lips.ravel()
        return {
            "audio": audio,
            "lips": lips,
            "motors": np.clip(self.face.motor_positions(), -MOTOR_OBS_BOUND, MOTOR_OBS_BOUND).astype(np.float32),
            "prev_action": np.asarray(self._prev_action, dtype=np.float32).copy(),
        }

    def lip_error_mm(self, landmarks_mm: np.ndarray | None = None, frame: int | None = None) -> np.ndarray:
        """(40,) distances (mm) between the lip displacement of ``landmarks_mm`` (default: the current true
        landmarks) and the target of ``frame`` (default: the frame of the last step)."""
        lm = self._true_lm if landmarks_mm is None else np.asarray(landmarks_mm, dtype=float)
        k = self._elapsed - 1 if frame is None else int(frame)
        diff = (lm[self._lip_cols] - self._neutral_lips) - self._clip.target_lips_mm[k]
        if self.lip_error == "centroid":
            diff = diff - diff.mean(axis=0)
        return np.linalg.norm(diff, axis=1)

    def _reward_terms(self):
        c = self._clip
        k = min(self._elapsed - 1, c.n_frames - 1)  # the frame this step played (clamped if max_episode_steps > T)
        lm = self._true_lm
        err = float(self.lip_error_mm(lm, k).mean())
        m = mouth_measures(lm, self._neutral_lm)
        ap, width, prot = float(m["aperture_mm"]), float(m["width_mm"]), float(m["protrusion_mm"])
        closure, rounded = bool(c.closure[k]), bool(c.rounded[k])
        tw = float(c.target_width_mm[k])
        terms = {
            "lip": -self.lip_coef * err,
            "closure": -self.closure_coef * max(0.0, ap - self.closure_mm) if closure else 0.0,
            "rounding": -self.rounding_coef * max(0.0, width - tw) if rounded else 0.0,
        }
        info = {
            "clip": c.id, "frame": k, "t": k / self.fps, "error_mm": err,
            "aperture_mm": ap, "width_mm": width, "protrusion_mm": prot,
            "target_aperture_mm": float(c.target_aperture_mm[k]), "target_width_mm": tw,
            "target_protrusion_mm": float(c.target_protrusion_mm[k]),
            "closure": closure, "rounded": rounded, "phoneme": str(c.phoneme[k]), "viseme": str(c.viseme[k]),
        }
        return terms, info

    # ------------------------------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = super().reset(seed=seed, options=options)
        c = self._clip
        info.update(clip=c.id, kind=c.kind, lang=c.lang, text=c.text, n_frames=c.n_frames)
        return obs, info

    def step(self, action):
        if self._clip is None:
            raise RuntimeError("call reset() before step()")
        a = self.validate_action(action)
        prev = self._prev_action
        self._prev_action = a.astype(np.float32)
        try:
            obs, reward, terminated, truncated, info = super().step(a)
        except Exception:
            self._prev_action = prev
            raise
        if self._elapsed >= self._clip.n_frames:
            truncated = True
        return obs, reward, terminated, truncated, info

    # ------------------------------------------------------------------------------------------ baseline
    def scripted_controls(self, clip: int | str | None = None, lead_frames: int = 1, seal_frames: int = 2) -> np.ndarray:
        """(T, 26) open-loop motor commands that play a clip's targets (default: the current clip): a scripted
        baseline, not a solution.

        Row ``k`` (the command of step ``k``) opens the jaw (``"ah"`` intensity) to the target aperture of frame
        ``k + lead_frames`` (clamped to the clip; the lead covers the servo and skin lag), through the aperture the
        nominal face settles to at each jaw opening; it commands the ``"mm"`` seal instead when any of the target
        frames ``k + lead_frames .. k + lead_frames + seal_frames - 1`` is a closure (the jaw needs a head start to
        shut from a vowel). Width, rounding and protrusion are left alone (the ``"ee"``/``"oo"`` expressions change
        the lip shape in ways that cost more landmark error than they gain). Absolute commands: in ``"delta"`` mode
        convert each row with ``env.unwrapped.ctrl_to_action`` as you step. The defaults (lead 1 frame, seal 2) follow
        the canonical-mesh face, a frame quicker than the old face for which 2 and 3 scored best on corpus clips;
        they were not searched again.
        """
        c = self._clip if clip is None else self.load_clip(clip)
        if c is None:
            raise RuntimeError("call reset() first or name a clip")
        T = c.n_frames
        lead, n_seal = int(lead_frames), max(1, int(seal_frames))
        src = np.clip(np.arange(T) + lead, 0, T - 1)
        ah = np.interp(c.target_aperture_mm[src], AH_APERTURE, AH_LEVELS)
        seal = mix_ctrl(self.face, {"mm": 1.0})
        out = np.empty((T, self.n_actuators))
        for k in range(T):
            lo, hi = min(max(k + lead, 0), T), min(max(k + lead + n_seal, 0), T)
            out[k] = seal if c.closure[lo:hi].any() else mix_ctrl(self.face, {"ah": ah[k]})
        return out


__all__ = [
    "AUDIO_OBS_BOUND",
    "BUILTIN_CORPUS_ARGS",
    "LANDMARK_SCALE_MM",
    "N_AUDIO_FEATURES",
    "SPLITS",
    "ClipData",
    "clip_from_audio",
    "load_labelled_clip",
    "LipSyncEnv",
    "audio_obs_features",
    "builtin_corpus_dir",
]
