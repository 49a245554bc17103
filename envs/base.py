"""``FaceEnv``: the machinery shared by the facetwin Gymnasium environments.

A subclass defines a task (its observation space, observation and reward terms); :class:`FaceEnv` does the rest:

* the face: a :class:`facetwin.sim.FaceModel` (``variant="fast"`` by default: physics at 90 Hz, 3 substeps per
  30 Hz control step); one ``step()`` = one control step = 1/30 s;
* the action: ``Box(-1, 1, (26,), float32)`` in actuator order (``env.unwrapped.actuator_names``), interpreted by
  ``action_mode``:

  | action_mode | motor command at step t |
  |---|---|
  | ``"absolute"`` (default) | ``u_t = a_t`` (normalized motor targets, the units of ``FaceModel`` controls; rest: all 0 but ``jaw_open`` = -1) |
  | ``"delta"`` | ``u_t = clip(u_{t-1} + max_delta * a_t, -1, 1)``, ``u_{-1}`` = rest controls |

  Values outside [-1, 1] are clipped; a NaN/inf or a wrong shape raises ``ValueError`` naming the problem (the
  actuators concerned), like ``FaceModel.validate_controls``;
* the domain (:mod:`facetwin.envs.domain`): ``domain=`` resolved at every reset (skin, actuator, camera and light
  parameters applied to the model; latency, control noise, deadband and motor offsets by a per-episode
  :class:`facetwin.envs.domain.Actuation` between the command and ``data.ctrl``; landmark noise and dropout on the
  observations; every draw from the env's seeded ``np_random``);
* divergence: if the physics blows up (``FaceModel.is_diverged()``, a MuJoCo bad-acceleration warning, or a
  non-finite observation) the step returns the last finite observation and the last finite reward with
  ``terminated=False, truncated=True, info["diverged"]=True``; the face is put back to neutral so nothing NaN
  leaks. Never NaN in an observation or a reward;
* time limit: ``max_episode_steps`` (``None``: none) truncates inside the env; registered ids use Gymnasium's
  ``TimeLimit`` instead;
* rendering: ``render_mode="rgb_array"``: ``render()`` returns the video-quality mirror image (640x480x3 uint8,
  ``MirrorRenderer`` preset ``"video"``, camera ``render_camera``, mirrored); created on first use, freed by
  ``close()``. Nothing is rendered during ``step()`` unless the task's observation needs pixels;
* regularization terms shared by the tasks: ``effort = -effort_coef * mean_i (u_i - rest_i)^2`` and
  ``jerk = -jerk_coef * mean_i (u_i - u_prev_i)^2`` (an action-rate penalty on the motor commands);
* info: ``reward_<term>`` for every reward term (they sum to the reward), ``diverged``, ``step``.

Same seed -> same episode (``reset(seed=s)``): every random draw (domain callable, task sampling, noise, dropout)
comes from ``self.np_random``.

Subclass contract (see :class:`facetwin.envs.mirror_self_model.MirrorSelfModelEnv`):

* set ``self.observation_space`` in ``__init__`` after ``super().__init__(...)``;
* ``_sample_task(options)``: called at reset *before* the physics reset, with nominal physics applied (the face may
  be used as a scratch model, e.g. with :meth:`settled_landmarks_mm`); pop the option keys you use (listed in
  ``reset_option_keys``);
* ``_get_obs()``: the observation of the current state (use :meth:`sense_landmarks_mm` for noisy landmarks);
* ``_reward_terms()``: ``(terms, info)``: signed reward terms (``{name: float}``, without effort/jerk, which the
  base adds) and extra info entries;
* optional: ``_terminated()`` (default False), ``_after_reset()`` (after the physics reset, before the first
  observation), ``_reset_info()`` (extra entries of the reset info).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from facetwin.sim import FaceModel

from . import domain as dom

ACTION_MODES = ("absolute", "delta")
_BADQACC = int(mujoco.mjtWarning.mjWARN_BADQACC)


class FaceEnv(gym.Env):
    """Base class of the facetwin environments (not an environment by itself). See the module docstring.

    ## Arguments (shared by every facetwin environment)

    | argument | default | meaning |
    |---|---|---|
    | ``variant`` | ``"fast"`` | ``FaceModel`` variant: ``"fast"`` (90 Hz physics, training) or ``"full"`` (300 Hz reference) |
    | ``face`` | ``None`` | an existing ``FaceModel`` to use instead of loading one (the env then owns its state) |
    | ``action_mode`` | ``"absolute"`` | ``"absolute"`` motor targets or ``"delta"`` increments of ``max_delta`` |
    | ``max_delta`` | 0.2 | largest command change per step in ``"delta"`` mode (normalized units) |
    | ``domain`` | ``None`` | ``DomainParams``, callable ``rng -> DomainParams`` (called every reset) or ``None`` (nominal) |
    | ``max_episode_steps`` | ``None`` | truncate after this many steps (``None``: never; registered ids use ``TimeLimit``) |
    | ``reset_settle_steps`` | 0 | control steps holding the rest controls after each reset, before the first observation |
    | ``effort_coef`` | 0.05 | weight of the effort term |
    | ``jerk_coef`` | 0.2 | weight of the jerk (action rate) term |
    | ``render_mode`` | ``None`` | ``"rgb_array"``: ``render()`` returns the 640x480 mirror image |
    | ``render_camera`` | ``"mirror"`` | camera of ``render()``: ``"mirror"``, ``"mouth"`` or ``"three_quarter"`` |
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 30}
    reset_option_keys: ClassVar[tuple[str, ...]] = ("domain",)

    def __init__(
        self,
        *,
        variant: str = "fast",
        face: FaceModel | None = None,
        action_mode: str = "absolute",
        max_delta: float = 0.2,
        domain: dom.DomainSpec = None,
        max_episode_steps: int | None = None,
        reset_settle_steps: int = 0,
        effort_coef: float = 0.05,
        jerk_coef: float = 0.2,
        render_mode: str | None = None,
        render_camera: str = "mirror",
    ):
        if action_mode not in ACTION_MODES:
            raise ValueError(f"unknown action_mode {action_mode!r}; choose one of {', '.join(ACTION_MODES)}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unknown render_mode {render_mode!r}; supported: {self.metadata['render_modes']}")
        if not (np.isfinite(max_delta) and max_delta > 0):
            raise ValueError(f"max_delta must be > 0, got {max_delta}")
        if max_episode_steps is not None and int(max_episode_steps) < 1:
            raise ValueError(f"max_episode_steps must be >= 1 or None, got {max_episode_steps}")
        if int(reset_settle_steps) < 0:
            raise ValueError(f"reset_settle_steps must be >= 0, got {reset_settle_steps}")
        for name, c in (("effort_coef", effort_coef), ("jerk_coef", jerk_coef)):
            if not (np.isfinite(c) and c >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {c}")
        if domain is not None and not (isinstance(domain, dom.DomainParams) or callable(domain) or isinstance(domain, dict)):
            raise TypeError(f"domain must be a DomainParams, a callable rng -> DomainParams or None, got {type(domain).__name__}")
        if isinstance(domain, dict):
            domain = dom.DomainParams.from_dict(domain)

        self.face = face if face is not None else FaceModel.load(variant)
        self.variant = self.face.variant
        self.action_mode = action_mode
        self.max_delta = float(max_delta)
        self.domain = domain
        self.max_episode_steps = None if max_episode_steps is None else int(max_episode_steps)
        self.reset_settle_steps = int(reset_settle_steps)
        self.effort_coef = float(effort_coef)
        self.jerk_coef = float(jerk_coef)
        self.render_mode = render_mode
        self.render_camera = render_camera
        from facetwin.sim.render import camera_id

        camera_id(self.face.model, render_camera)  # fail early on a bad camera name

        self.n_actuators = self.face.n_actuators
        self.actuator_names = list(self.face.actuator_names)
        self.rest_ctrl = self.face.rest_ctrl.astype(float).copy()
        self.dt = 1.0 / self.face.control_hz
        self.metadata = {**type(self).metadata, "render_fps": int(round(self.face.control_hz))}
        self.action_space = spaces.Box(-1.0, 1.0, (self.n_actuators,), np.float32)

        self.domain_params: dom.DomainParams = dom.NOMINAL
        self._actuation = dom.Actuation(dom.NOMINAL, self.rest_ctrl)
        self._cmd = self.rest_ctrl.copy()
        self._prev_cmd = self.rest_ctrl.copy()
        self._elapsed = 0
        self._last_obs = None
        self._last_reward = 0.0
        self._renderers: dict[tuple[str, str], Any] = {}
        self._neutral_lm = self.face.neutral_landmarks_mm.copy()

    # ------------------------------------------------------------------------------------------ subclass hooks
    def _sample_task(self, options: dict) -> None:  # pragma: no cover - overridden
        pass

    def _after_reset(self) -> None:
        pass

    def _get_obs(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def _reward_terms(self) -> tuple[dict[str, float], dict[str, Any]]:  # pragma: no cover - overridden
        return {}, {}

    def _terminated(self) -> bool:
        return False

    def _reset_info(self) -> dict[str, Any]:
        return {}

    # ------------------------------------------------------------------------------------------ helpers
    def validate_action(self, action) -> np.ndarray:
        """The action as a float64 (26,) array clipped to [-1, 1]; ValueError on a wrong shape or NaN/inf."""
        return self.face.validate_controls(action, what="action")

    def action_to_ctrl(self, action) -> np.ndarray:
        """The motor command (normalized controls) that ``action`` asks for, given the current command."""
        a = self.validate_action(action)
        if self.action_mode == "absolute":
            return a
        return np.clip(self._cmd + self.max_delta * a, -1.0, 1.0)

    def ctrl_to_action(self, ctrl) -> np.ndarray:
        """The action (float32) that commands ``ctrl`` from the current command (inverse of :meth:`action_to_ctrl`,
        clipped to the action space in ``"delta"`` mode)."""
        u = np.clip(np.asarray(ctrl, dtype=float), -1.0, 1.0)
        if self.action_mode == "absolute":
            return u.astype(np.float32)
        return np.clip((u - self._cmd) / self.max_delta, -1.0, 1.0).astype(np.float32)

    def effort_term(self, ctrl: np.ndarray) -> float:
        """``-effort_coef * mean((ctrl - rest)^2)``."""
        d = ctrl - self.rest_ctrl
        return -self.effort_coef * float(d @ d) / self.n_actuators

    def jerk_term(self, ctrl: np.ndarray, prev_ctrl: np.ndarray) -> float:
        """``-jerk_coef * mean((ctrl - prev_ctrl)^2)`` (action-rate penalty on the motor commands)."""
        d = ctrl - prev_ctrl
        return -self.jerk_coef * float(d @ d) / self.n_actuators

    @property
    def command(self) -> np.ndarray:
        """The motor command of the last step (before latency), normalized."""
        return self._cmd.copy()

    @property
    def applied_controls(self) -> np.ndarray:
        """The controls the motors got at the last step (after latency, control noise, deadband and offset)."""
        return self.face.data.ctrl.copy()

    @property
    def elapsed_steps(self) -> int:
        return self._elapsed

    def sense_landmarks_mm(self, landmarks_mm: np.ndarray | None = None) -> np.ndarray:
        """Landmarks (N, 3) mm as the sensor reports them: + Gaussian noise ``obs_noise_mm``; each landmark dropped
        with probability ``landmark_dropout`` reads as its neutral position. Draws from ``self.np_random``."""
        lm = self.face.landmarks_mm() if landmarks_mm is None else np.array(landmarks_mm, dtype=float, copy=True)
        p = self.domain_params
        if p.obs_noise_mm > 0.0:
            lm += self.np_random.normal(0.0, p.obs_noise_mm, lm.shape)
        if p.landmark_dropout > 0.0:
            drop = self.np_random.random(lm.shape[0]) < p.landmark_dropout
            lm[drop] = self._neutral_lm[drop]
        return lm

    def settled_landmarks_mm(self, ctrl, seconds: float = 1.0, frame: str = "head") -> np.ndarray:
        """Landmarks (N, 3) mm of ``ctrl`` held for ``seconds`` from the neutral face, with nominal physics.

        Uses the env's own face as a scratch model (call it from ``_sample_task``, before the physics reset).
        """
        dom.apply(self.face, dom.NOMINAL)
        self.face.reset(ctrl)
        self.face.settle(ctrl, seconds)
        if self._physics_diverged():
            raise RuntimeError("the face diverged while settling a target expression")
        return self.face.landmarks_mm(frame).copy()

    def obs_renderer(self, camera: str = "mouth"):
        """A lazily created ``MirrorRenderer`` with the ``"obs"`` preset (128x128) on ``camera``."""
        return self._renderer("obs", camera)

    def _renderer(self, preset: str, camera: str):
        key = (preset, camera)
        r = self._renderers.get(key)
        if r is None:
            from facetwin.sim.render import MirrorRenderer

            r = self._renderers[key] = MirrorRenderer(self.face, preset, camera=camera)
        return r

    def _physics_diverged(self) -> bool:
        return self.face.is_diverged() or self.face.data.warning[_BADQACC].number > 0

    @staticmethod
    def _finite(obs) -> bool:
        if isinstance(obs, dict):
            return all(FaceEnv._finite(v) for v in obs.values())
        a = np.asarray(obs)
        return a.dtype.kind in "iub" or bool(np.isfinite(a).all())

    # ------------------------------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"options must be a dict (keys {', '.join(self.reset_option_keys)}), got "
                             f"{type(options).__name__}")
        options = dict(options or {})
        unknown = set(options) - set(self.reset_option_keys)
        if unknown:
            raise ValueError(
                f"unknown reset option(s): {', '.join(sorted(map(str, unknown)))}; "
                f"{type(self).__name__} accepts {', '.join(self.reset_option_keys)}"
            )
        spec = options.pop("domain", self.domain)
        params = dom.resolve(spec, self.np_random)
        self._sample_task(options)
        dom.apply(self.face, params)
        self.domain_params = params
        self._actuation = dom.Actuation(params, self.rest_ctrl, self.np_random)
        self.face.reset(self._actuation.rest)
        if self.reset_settle_steps:
            self.face.step(self._actuation.rest, n_control_steps=self.reset_settle_steps)
            self.face.data.time = 0.0
        self._cmd = self.rest_ctrl.copy()
        self._prev_cmd = self.rest_ctrl.copy()
        self._elapsed = 0
        self._after_reset()
        obs = self._get_obs()
        if not self._finite(obs):
            raise RuntimeError("non-finite observation right after reset (the model or the domain parameters are broken)")
        self._last_obs = obs
        self._last_reward = 0.0
        return obs, {"diverged": False, "step": 0, **self._reset_info()}

    def step(self, action):
        if self._last_obs is None:
            raise RuntimeError("call reset() before step()")
        ctrl = self.action_to_ctrl(action)
        self.face.data.ctrl[:] = self._actuation(ctrl)
        self.face.step()
        self._elapsed += 1
        self._prev_cmd, self._cmd = self._cmd, ctrl
        truncated = self.max_episode_steps is not None and self._elapsed >= self.max_episode_steps
        if self._physics_diverged():
            return self._diverged_step()
        obs = self._get_obs()
        if not self._finite(obs):
            return self._diverged_step()
        terms, info = self._reward_terms()
        if self.effort_coef:
            terms["effort"] = self.effort_term(ctrl)
        if self.jerk_coef:
            terms["jerk"] = self.jerk_term(ctrl, self._prev_cmd)
        reward = float(sum(terms.values()))
        if not np.isfinite(reward):
            return self._diverged_step()
        for k, v in terms.items():
            info[f"reward_{k}"] = float(v)
        info["diverged"] = False
        info["step"] = self._elapsed
        self._last_obs, self._last_reward = obs, reward
        return obs, reward, bool(self._terminated()), bool(truncated), info

    def _diverged_step(self):
        warn = self.face.warnings()
        self.face.reset(self.rest_ctrl)  # nothing NaN stays in the model; reset() starts the next episode
        self._actuation = dom.Actuation(self.domain_params, self.rest_ctrl, self.np_random)
        self._cmd = self.rest_ctrl.copy()
        info = {"diverged": True, "step": self._elapsed, "mujoco_warnings": warn}
        return self._last_obs, float(self._last_reward), False, True, info

    def render(self):
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without render_mode; create the env with render_mode='rgb_array'"
            )
            return None
        return self._renderer("video", self.render_camera).render()

    def close(self):
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()
        super().close()
