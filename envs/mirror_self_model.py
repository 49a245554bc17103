"""``MirrorSelfModelEnv`` (``facetwin/MirrorSelfModel-v0``): make the expression you see in the mirror."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from facetwin.sim.landmarks import region_mask
from facetwin.sim.lip_shapes import speech_mix

from .base import FaceEnv

LANDMARK_SCALE_MM = 10.0  # observation units: (landmark - neutral landmark) / 10 mm
LANDMARK_OBS_BOUND = 20.0  # landmark observations are clipped to +-20 (+-200 mm from neutral: never reached)
MOTOR_OBS_BOUND = 3.0  # motor position observations are clipped to +-3 (the command range is +-1)
TARGET_SETTLE_S = 2.0  # a target's controls are held this long (most expressions settle to < 0.01 mm in 1 s, all in 2 s)
LIP_WEIGHT = 2.0  # weight of a lip landmark (40 of the 69) in the tracking error; every other landmark weighs 1
OBS_MODES = ("landmarks", "pixels", "both")
TARGET_DISTRIBUTIONS = ("gaussian", "uniform", "speech")

# targets are a function of (variant, sampling parameters, index) only: shared by every env of a process
_TARGET_CACHE: dict[tuple, np.ndarray] = {}
_TARGET_LOCK = threading.Lock()


def mirror_pairs(names: list[str]) -> list[tuple[int, int]]:
    """(right, left) actuator index pairs ``*_R`` / ``*_L``."""
    out = []
    for i, n in enumerate(names):
        if n.endswith("_R") and n[:-2] + "_L" in names:
            out.append((i, names.index(n[:-2] + "_L")))
    return out


def sample_expression(
    rng: np.random.Generator,
    rest: np.ndarray,
    names: list[str],
    *,
    distribution: str = "gaussian",
    sigma: float = 0.35,
    symmetric: bool = False,
) -> np.ndarray:
    """A random normalized control vector (26,), clipped to [-1, 1]:

    - ``"gaussian"``: Gaussian around ``rest`` (std ``sigma``) on every actuator;
    - ``"uniform"``: uniform on [-1, 1] on every actuator;
    - ``"speech"``: the mouth poses of speech. A random mix of the ``"ah"``, ``"ee"``, ``"oo"`` and ``"mm"``
      expressions (:func:`facetwin.sim.lip_shapes.speech_mix`: ``"ah"`` = the jaw's whole range, each weight uniform
      on [0, 1], each present with probability 1/2) plus Gaussian noise (std ``sigma``) on the lip and jaw actuators;
      every other actuator stays at rest. A Gaussian around rest with a moderate ``sigma`` barely opens the jaw
      (rest -1, fully open +1), so a self-model trained on it has never seen an open vowel.

    ``symmetric=True`` copies every right actuator's value to its left twin (``*_R`` -> ``*_L``: mirrored lips, brows
    and eyelids; for the eyes that means conjugate gaze, both turning the same way)."""
    if distribution == "gaussian":
        u = rest + sigma * rng.standard_normal(len(rest))
    elif distribution == "uniform":
        u = rng.uniform(-1.0, 1.0, len(rest))
    elif distribution == "speech":
        u = speech_mix(rng, rest, names)
        mouth = np.array([n.startswith(("lip_", "jaw_")) for n in names])
        u[mouth] += sigma * rng.standard_normal(int(mouth.sum()))
    else:
        raise ValueError(f"unknown target distribution {distribution!r}; choose one of {', '.join(TARGET_DISTRIBUTIONS)}")
    if symmetric:
        for r, l in mirror_pairs(names):
            u[l] = u[r]
    return np.clip(u, -1.0, 1.0)


class MirrorSelfModelEnv(FaceEnv):
    """Mirror self-modeling: drive the 26 motors so that the face in the mirror matches a target expression.

    The robot watches itself in a mirror (landmarks tracked in the mirror image, or the image itself) and is shown a
    target expression taken from its own reachable set: a random motor vector settled on the nominal face. The
    observed landmarks are in the head frame (``frame="head"``, default: what a face tracker reports after head-pose
    normalization; the neck then changes nothing) or the room/mirror frame (``frame="room"``: the neck's motion shows).

    ## Action space

    ``Box(-1, 1, (26,), float32)``, one value per actuator in ``actuator_names`` order (lips 10, jaw 1, brows 4,
    eyelids 4, eyes 4, neck 3):

    | action_mode | meaning |
    |---|---|
    | ``"absolute"`` (default) | normalized motor targets (the units of ``FaceModel`` controls; rest: 0, ``jaw_open`` -1) |
    | ``"delta"`` | command increment: ``u_t = clip(u_{t-1} + max_delta * a_t, -1, 1)`` |

    ## Observation space

    ``Dict``; landmark vectors are the 69 schema landmarks (``env.unwrapped.face.landmark_ids``, MediaPipe ids) as
    ``((x, y, z) - neutral) / 10 mm``, flattened row-major to 207 values (landmark k at ``[3k:3k+3]``), clipped to
    +-20 (+-200 mm, never reached by the face); motor positions are clipped to +-3:

    | key | shape, dtype | obs_mode | content |
    |---|---|---|---|
    | ``"landmarks"`` | (207,) float32 | landmarks, both | current landmarks (with the domain's noise and dropout) |
    | ``"motors"`` | (26,) float32 | all | motor positions, normalized (``FaceModel.motor_positions()``: the ctrl that would hold the pose) |
    | ``"target"`` | (207,) float32 | all | target landmarks, same normalization (noise-free) |
    | ``"pixels"`` | (128, 128, 3) uint8 | pixels, both | the mouth camera, ``"obs"`` render preset, mirrored |

    ## Rewards

    | term (``info["reward_<term>"]``) | value |
    |---|---|
    | ``tracking`` | ``-error_mm``: weighted mean over landmarks of the Euclidean distance (mm) between the true (noise-free) landmarks and the target; lip landmarks (40) weigh ``LIP_WEIGHT`` = 2, the others 1 |
    | ``effort`` | ``-effort_coef * mean_i (u_i - rest_i)^2`` over the 26 motor commands |
    | ``jerk`` | ``-jerk_coef * mean_i (u_i - u_prev_i)^2`` |

    ``info``: ``error_mm``, ``lip_error_mm`` (unweighted mean over the 40 lip landmarks), ``max_error_mm``,
    ``is_success`` (``error_mm < success_mm``), ``diverged``, ``step``, and the reward terms.

    ## Starting state

    The settled neutral face (rest controls), motor command = rest. A target is drawn at every reset (below).

    ## Episode end

    | condition | result |
    |---|---|
    | ``max_episode_steps`` steps (default 60 = 2 s at 30 Hz) | ``truncated=True`` |
    | the physics diverges | ``truncated=True``, ``info["diverged"]=True``, last finite observation |

    The task never terminates (``terminated`` is always False): holding the target is part of the task.

    ## Targets

    By default an episode's target is entry ``np_random.integers(target_pool_size)`` of a pool of expressions: entry
    ``k`` is the control vector ``sample_expression(default_rng([target_seed, k]), ...)`` (``target_distribution``
    ``"gaussian"`` around rest with std ``target_sigma`` like the physical robot's babbling, or ``"uniform"``; clipped;
    ``symmetric`` mirrors left/right) held ``target_settle_s`` seconds from neutral on the *nominal* face. Entries are
    computed the first time they are drawn and cached per process (shared by every env with the same settings).
    ``reset(options=...)`` overrides it for one episode: ``{"target_ctrl": (26,)}`` (settled likewise),
    ``{"target_landmarks_mm": (69, 3)}`` (head or room frame, as ``frame``), or ``{"target_index": k}``; also
    ``{"domain": DomainParams}``.

    ## Arguments

    | argument | default | meaning |
    |---|---|---|
    | ``obs_mode`` | ``"landmarks"`` | ``"landmarks"``, ``"pixels"`` or ``"both"`` (see the observation table) |
    | ``frame`` | ``"head"`` | landmark frame: ``"head"`` or ``"room"`` (mirror) |
    | ``max_episode_steps`` | 60 | episode length (2 s); ``None``: no limit inside the env |
    | ``target_distribution`` | ``"gaussian"`` | ``"gaussian"`` (around rest) or ``"uniform"`` (on [-1, 1]) |
    | ``target_sigma`` | 0.35 | std of the Gaussian targets (normalized units) |
    | ``symmetric`` | False | left/right mirrored targets |
    | ``target_pool_size`` | 256 | number of distinct targets |
    | ``target_seed`` | 0 | seed of the pool (the choice among it follows the env's seed) |
    | ``target_settle_s`` | 2.0 | how long a target's controls are held before its landmarks are taken (the slowest expressions need ~2 s to settle within 0.01 mm) |
    | ``success_mm`` | 1.0 | ``info["is_success"]`` threshold on ``error_mm`` |
    | shared | | ``variant``, ``face``, ``action_mode``, ``max_delta``, ``domain``, ``reset_settle_steps``, ``effort_coef`` (0.05), ``jerk_coef`` (0.2), ``render_mode``, ``render_camera``: see :class:`facetwin.envs.base.FaceEnv` |

    >>> env = MirrorSelfModelEnv()
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> info["error_mm"], info["reward_tracking"]
    """

    reset_option_keys: ClassVar[tuple[str, ...]] = ("domain", "target_ctrl", "target_landmarks_mm", "target_index")

    def __init__(
        self,
        *,
        obs_mode: str = "landmarks",
        frame: str = "head",
        max_episode_steps: int | None = 60,
        target_distribution: str = "gaussian",
        target_sigma: float = 0.35,
        symmetric: bool = False,
        target_pool_size: int = 256,
        target_seed: int = 0,
        target_settle_s: float = TARGET_SETTLE_S,
        success_mm: float = 1.0,
        **kwargs: Any,
    ):
        if obs_mode not in OBS_MODES:
            raise ValueError(f"unknown obs_mode {obs_mode!r}; choose one of {', '.join(OBS_MODES)}")
        if frame not in ("head", "room"):
            raise ValueError(f"unknown frame {frame!r}; use 'head' or 'room'")
        if target_distribution not in TARGET_DISTRIBUTIONS:
            raise ValueError(
                f"unknown target_distribution {target_distribution!r}; choose one of {', '.join(TARGET_DISTRIBUTIONS)}"
            )
        if not (np.isfinite(target_sigma) and target_sigma >= 0):
            raise ValueError(f"target_sigma must be >= 0, got {target_sigma}")
        if int(target_pool_size) < 1:
            raise ValueError(f"target_pool_size must be >= 1, got {target_pool_size}")
        if not (target_settle_s > 0):
            raise ValueError(f"target_settle_s must be > 0, got {target_settle_s}")
        super().__init__(max_episode_steps=max_episode_steps, **kwargs)
        self.obs_mode = obs_mode
        self.frame = frame
        self.target_distribution = target_distribution
        self.target_sigma = float(target_sigma)
        self.symmetric = bool(symmetric)
        self.target_pool_size = int(target_pool_size)
        self.target_seed = int(target_seed)
        self.target_settle_s = float(target_settle_s)
        self.success_mm = float(success_mm)

        n = self.face.n_landmarks
        self.n_landmarks = n
        lips = region_mask("lips_outer", "lips_inner")
        self._lips = lips
        w = np.where(lips, LIP_WEIGHT, 1.0)
        self._weights = w / w.sum()
        self._neutral_frame = self.face.neutral_landmarks_mm.copy()  # room == head frame at neutral (neck at 0)
        vec = spaces.Box(-LANDMARK_OBS_BOUND, LANDMARK_OBS_BOUND, (n * 3,), np.float32)
        sp: dict[str, spaces.Space] = {}
        if obs_mode in ("landmarks", "both"):
            sp["landmarks"] = vec
        sp["motors"] = spaces.Box(-MOTOR_OBS_BOUND, MOTOR_OBS_BOUND, (self.n_actuators,), np.float32)
        sp["target"] = vec
        if obs_mode in ("pixels", "both"):
            from facetwin.sim.render import PRESETS

            p = PRESETS["obs"]
            sp["pixels"] = spaces.Box(0, 255, (p.height, p.width, 3), np.uint8)
        self.observation_space = spaces.Dict(sp)
        self.target_ctrl: np.ndarray | None = None
        self.target_landmarks_mm = self._neutral_frame.copy()
        self._target_obs = np.zeros(n * 3, np.float32)
        self._true_lm = self._neutral_frame.copy()

    # ------------------------------------------------------------------------------------------ targets
    def _pool_key(self, k: int) -> tuple:
        return (self.variant, self.frame, self.target_distribution, self.target_sigma, self.symmetric,
                self.target_seed, self.target_settle_s, int(k))

    def pool_ctrl(self, k: int) -> np.ndarray:
        """Control vector of pool entry ``k``."""
        rng = np.random.default_rng([self.target_seed, int(k)])
        return sample_expression(rng, self.rest_ctrl, self.actuator_names, distribution=self.target_distribution,
                                 sigma=self.target_sigma, symmetric=self.symmetric)

    def pool_landmarks_mm(self, k: int) -> np.ndarray:
        """Settled landmarks (69, 3) mm of pool entry ``k`` (computed once per process)."""
        key = self._pool_key(k)
        with _TARGET_LOCK:
            lm = _TARGET_CACHE.get(key)
        if lm is None:
            lm = self.settled_landmarks_mm(self.pool_ctrl(k), self.target_settle_s, self.frame)
            lm.setflags(write=False)
            with _TARGET_LOCK:
                _TARGET_CACHE[key] = lm
        return lm

    def _sample_task(self, options: dict) -> None:
        if "target_landmarks_mm" in options:
            lm = np.asarray(options.pop("target_landmarks_mm"), dtype=float)
            if lm.shape != (self.n_landmarks, 3) or not np.isfinite(lm).all():
                raise ValueError(
                    f"target_landmarks_mm must be a finite ({self.n_landmarks}, 3) array in mm, got shape {lm.shape}"
                )
            self.target_ctrl = None
        elif "target_ctrl" in options:
            u = self.face.validate_controls(options.pop("target_ctrl"))
            lm = self.settled_landmarks_mm(u, self.target_settle_s, self.frame)
            self.target_ctrl = u
        else:
            if "target_index" in options:
                k = int(options.pop("target_index"))
                if not 0 <= k < self.target_pool_size:
                    raise ValueError(f"target_index must be in [0, {self.target_pool_size}), got {k}")
            else:
                k = int(self.np_random.integers(self.target_pool_size))
            lm = self.pool_landmarks_mm(k)
            self.target_ctrl = self.pool_ctrl(k)
        self.target_landmarks_mm = np.array(lm, dtype=float)
        self._target_obs = self._normalize(self.target_landmarks_mm)

    # ------------------------------------------------------------------------------------------ observation
    def _normalize(self, lm_mm: np.ndarray) -> np.ndarray:
        x = (lm_mm - self._neutral_frame) * (1.0 / LANDMARK_SCALE_MM)
        return np.clip(x, -LANDMARK_OBS_BOUND, LANDMARK_OBS_BOUND).astype(np.float32).ravel()

    def _get_obs(self) -> dict[str, np.ndarray]:
        self._true_lm = lm = self.face.landmarks_mm(self.frame)
        obs: dict[str, np.ndarray] = {}
        if self.obs_mode != "pixels":
            p = self.domain_params
            sensed = self.sense_landmarks_mm(lm) if (p.obs_noise_mm or p.landmark_dropout) else lm
            obs["landmarks"] = self._normalize(sensed)
        obs["motors"] = np.clip(self.face.motor_positions(), -MOTOR_OBS_BOUND, MOTOR_OBS_BOUND).astype(np.float32)
        obs["target"] = self._target_obs.copy()
        if self.obs_mode != "landmarks":
            obs["pixels"] = self.obs_renderer("mouth").render()
        return obs

    # ------------------------------------------------------------------------------------------ reward
    def landmark_errors_mm(self, landmarks_mm: np.ndarray | None = None) -> np.ndarray:
        """(69,) Euclidean distances (mm) of the true landmarks (or ``landmarks_mm``) to the target."""
        lm = self._true_lm if landmarks_mm is None else landmarks_mm
        return np.linalg.norm(lm - self.target_landmarks_mm, axis=1)

    def _reward_terms(self):
        e = self.landmark_errors_mm()
        err = float(e @ self._weights)
        info = {
            "error_mm": err,
            "lip_error_mm": float(e[self._lips].mean()),
            "max_error_mm": float(e.max()),
            "is_success": err < self.success_mm,
        }
        return {"tracking": -err}, info


__all__ = ["LANDMARK_OBS_BOUND", "LANDMARK_SCALE_MM", "MOTOR_OBS_BOUND", "TARGET_SETTLE_S", "LIP_WEIGHT", "MirrorSelfModelEnv", "mirror_pairs", "sample_expression"]
