"""``FaceModel``: the face twin in one object (model, data, normalized controls, landmarks, mouth measures)."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np

from .actuators import load_actuators, rest_controls
from .builder import CONTROL_HZ, VARIANTS, build_mjcf, skin_vertex_frames
from .face_design import FaceDesign, builtin_design
from .landmarks import landmark_ids, load_schema, mouth_measures

GRAVITY = np.array([0.0, 0.0, -9.81])
SETTLE_SECONDS = 1.0


class FaceModel:
    """The simulated face.

    >>> face = FaceModel.load()          # reference model ("full"); FaceModel.load("fast") for training
    >>> face.step(np.zeros(face.n_actuators))   # one 30 Hz control step
    >>> face.landmarks_mm().shape        # (N, 3), head frame, schema order (facetwin.sim.landmark_ids())

    Controls are normalized to [-1, 1] per actuator, in the order of ``actuator_names`` (the actuator table).
    """

    def __init__(self, xml: str, variant: str, design: FaceDesign | None = None):
        self.variant = variant
        self.xml = xml
        self.design = builtin_design() if design is None else design
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.data = mujoco.MjData(self.model)
        self.actuators = load_actuators()
        self.actuator_names = [a.name for a in self.actuators]
        self.n_actuators = self.model.nu
        self.control_hz = CONTROL_HZ
        self.substeps = VARIANTS[variant].substeps
        self.rest_ctrl = rest_controls()
        self._room = self.model.body("room").id
        self._resolve_landmarks()
        # the neutral state: rest controls held until the skin has settled (gravity, servo equilibrium)
        mujoco.mj_resetData(self.model, self.data)
        self.data.ctrl[:] = self.rest_ctrl
        self.step(n_control_steps=round(SETTLE_SECONDS * self.control_hz))
        self.data.time = 0.0
        self._neutral_state = self._get_state()
        self.neutral_landmarks_mm = self.landmarks_mm().copy()

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(cls, variant: str = "full", design: FaceDesign | None = None) -> "FaceModel":
        """Build and compile the face (``variant``: "full" reference or "fast" training variant; ``design``: the
        face, default the built-in one)."""
        return cls(build_mjcf(variant, design), variant, design)

    def export_xml(self, path: str | Path) -> Path:
        """Write the standalone MJCF of this model (opens in any MuJoCo tool)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.xml)
        return path

    def _resolve_landmarks(self):
        """Each landmark is a point fixed in some body: a free skin vertex body, the head, the jaw or a site."""
        frame_bodies, frame_local = skin_vertex_frames(self.design)
        m = self.model
        body, local = [], []
        for lm in load_schema():
            if lm.source == "site":
                sid = m.site(lm.ref).id
                body.append(int(m.site_bodyid[sid]))
                local.append(m.site_pos[sid].copy())
                continue
            vid = self.design.landmark_vertices[lm.mp_id]
            body.append(m.body(frame_bodies[vid]).id)
            local.append(frame_local[vid])
        self._lm_body = np.array(body, dtype=int)
        self._lm_local = np.array(local)
        self.landmark_ids = landmark_ids()
        self.n_landmarks = len(self.landmark_ids)

    # ------------------------------------------------------------------ control
    def validate_controls(self, ctrl, what: str = "control vector") -> np.ndarray:
        """Check a normalized control vector: real numbers (no complex, string or object values: nothing is
        silently converted), length 26, finite; ``ValueError`` naming ``what`` and the actuators otherwise. Values
        outside [-1, 1] are clipped."""
        raw = np.asarray(ctrl)
        if raw.dtype.kind not in "biuf":  # an imaginary part would be dropped, a string parsed
            raise ValueError(f"{what} must be real numbers, got dtype {raw.dtype}")
        u = raw.astype(float)
        if u.shape != (self.n_actuators,):
            raise ValueError(f"{what} must have shape ({self.n_actuators},) (one value per actuator), got shape {u.shape}")
        bad = ~np.isfinite(u)
        if bad.any():
            names = [self.actuator_names[i] for i in np.flatnonzero(bad)]
            raise ValueError(f"{what} contains NaN or inf for actuator(s): {', '.join(names)}")
        return np.clip(u, -1.0, 1.0)

    def controls(self, overrides: dict[str, float] | None = None, **kw: float) -> np.ndarray:
        """Normalized control vector: the rest face with named actuators overridden, e.g. ``controls(jaw_open=1)``."""
        u = self.rest_ctrl.copy()
        for name, value in {**(overrides or {}), **kw}.items():
            if name not in self.actuator_names:
                raise KeyError(f"unknown actuator {name!r}; see facetwin.sim.actuator_names()")
            u[self.actuator_names.index(name)] = value
        return self.validate_controls(u)

    def set_controls(self, ctrl) -> None:
        self.data.ctrl[:] = self.validate_controls(ctrl)

    def step(self, ctrl=None, n_control_steps: int = 1) -> None:
        """Advance ``n_control_steps`` control periods (1/30 s each) holding ``ctrl`` (default: the current one)."""
        if ctrl is not None:
            self.set_controls(ctrl)
        m, d = self.model, self.data
        for _ in range(n_control_steps):
            # gravity turns with the room (the neck moves the world around the head frame)
            m.opt.gravity[:] = d.xmat[self._room].reshape(3, 3) @ GRAVITY
            mujoco.mj_step(m, d, nstep=self.substeps)

    _STATE = mujoco.mjtState.mjSTATE_INTEGRATION

    def _get_state(self) -> np.ndarray:
        state = np.empty(mujoco.mj_stateSize(self.model, self._STATE))
        mujoco.mj_getState(self.model, self.data, state, self._STATE)
        return state

    def reset(self, ctrl=None) -> None:
        """Back to the settled neutral face (then ``ctrl`` is applied if given), time 0, no warnings."""
        mujoco.mj_resetData(self.model, self.data)
        mujoco.mj_setState(self.model, self.data, self._neutral_state, self._STATE)
        if ctrl is not None:
            self.data.ctrl[:] = self.validate_controls(ctrl)
        self.model.opt.gravity[:] = GRAVITY
        mujoco.mj_forward(self.model, self.data)

    def settle(self, ctrl=None, seconds: float = 1.0) -> None:
        """Hold ``ctrl`` for ``seconds`` of simulated time."""
        self.step(self.rest_ctrl if ctrl is None else ctrl, n_control_steps=max(1, round(seconds * self.control_hz)))

    @property
    def time(self) -> float:
        return float(self.data.time)

    @property
    def sim_dt(self) -> float:
        return float(self.model.opt.timestep)

    # ------------------------------------------------------------------ observation
    def landmarks_mm(self, frame: str = "head") -> np.ndarray:
        """(N, 3) landmark positions in mm, schema order.

        ``frame="head"`` (default): the head frame, which is MuJoCo's world frame in this model. ``frame="room"``:
        the frame of the torso/room/mirror, in which the neck's motion shows.
        """
        d = self.data
        rot = d.xmat[self._lm_body].reshape(-1, 3, 3)
        out = d.xpos[self._lm_body] + np.einsum("nij,nj->ni", rot, self._lm_local)
        if frame == "room":
            pos = self.data.xpos[self._room]
            rot = self.data.xmat[self._room].reshape(3, 3)
            out = (out - pos) @ rot
        elif frame != "head":
            raise ValueError(f"unknown frame {frame!r}; use 'head' or 'room'")
        return out * 1000.0

    def mouth(self) -> dict[str, float]:
        """Current mouth measures (mm): aperture, width, protrusion (relative to the neutral face)."""
        return {k: float(v) for k, v in mouth_measures(self.landmarks_mm(), self.neutral_landmarks_mm).items()}

    def motor_positions(self) -> np.ndarray:
        """Actuator positions in normalized units (the value of ctrl that would hold the current pose)."""
        m, d = self.model, self.data
        gain = m.actuator_gainprm[:, 0]
        b0, b1 = m.actuator_biasprm[:, 0], m.actuator_biasprm[:, 1]
        # target(ctrl) = (gain*ctrl + b0) / -b1 ; solve target == length
        return (-b1 * d.actuator_length - b0) / gain

    def is_diverged(self) -> bool:
        d = self.data
        return bool(not np.isfinite(d.qpos).all() or not np.isfinite(d.qvel).all() or np.abs(d.qvel).max() > 1e3)

    def warnings(self) -> dict[str, int]:
        """MuJoCo warnings raised so far (name -> count), only those that occurred."""
        out = {}
        for i, w in enumerate(self.data.warning):
            if w.number:
                out[mujoco.mjtWarning(i).name] = int(w.number)
        return out
