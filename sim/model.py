"""``FaceModel``: the face twin in one object (model, data, normalized controls, landmarks, mouth measures)."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np

from . import geometry
from .actuators import load_actuators, rest_controls
from .builder import CONTROL_HZ, VARIANTS, build_mjcf
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

    def __init__(self, xml: str, variant: str):
        self.variant = variant
        self.xml = xml
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
    def load(cls, variant: str = "full") -> "FaceModel":
        """Build and compile the face (``variant``: "full" reference or "fast" training variant)."""
        return cls(build_mjcf(variant), variant)

    def export_xml(self, path: str | Path) -> Path:
        """Write the standalone MJCF of this model (opens in any MuJoCo tool)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.xml)
        return path

    def _resolve_landmarks(self):
        skin = geometry.build_skin()
        m = self.model
        self.flex_id = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_FLEX, "skin")
        adr = m.flex_vertadr[self.flex_id]
        vert_idx, site_idx, vert_cols, site_cols = [], [], [], []
        for k, lm in enumerate(load_schema()):
            if lm.source == "site":
                site_idx.append(m.site(lm.ref).id)
                site_cols.append(k)
            elif lm.ref.startswith("yz:"):
                y, z = (float(t) / 1000.0 for t in lm.ref[3:].split(","))
                d = np.hypot(skin.vertices[:, 1] - y, skin.vertices[:, 2] - z)
                vert_idx.append(adr + int(np.argmin(d)))
                vert_cols.append(k)
            else:
                if lm.ref not in skin.named:
                    raise ValueError(f"landmark {lm.mp_id}: unknown skin point {lm.ref!r}")
                vert_idx.append(adr + skin.named[lm.ref])
                vert_cols.append(k)
        self._lm_vert = np.array(vert_idx, dtype=int)
        self._lm_site = np.array(site_idx, dtype=int)
        self._lm_vert_cols = np.array(vert_cols, dtype=int)
        self._lm_site_cols = np.array(site_cols, dtype=int)
        self.landmark_ids = landmark_ids()
        self.n_landmarks = len(self.landmark_ids)

    # ------------------------------------------------------------------ control
    def validate_controls(self, ctrl) -> np.ndarray:
        """Check a normalized control vector: length 26, finite. Values outside [-1, 1] are clipped."""
        u = np.asarray(ctrl, dtype=float)
        if u.shape != (self.n_actuators,):
            raise ValueError(
                f"control vector must have shape ({self.n_actuators},) (one value per actuator), got shape {u.shape}"
            )
        bad = ~np.isfinite(u)
        if bad.any():
            names = [self.actuator_names[i] for i in np.flatnonzero(bad)]
            raise ValueError(f"control vector contains NaN or inf for actuator(s): {', '.join(names)}")
        return np.clip(u, -1.0, 1.0)

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
    def landmarks_mm(self) -> np.ndarray:
        """(N, 3) landmark positions in the head frame, mm, schema order."""
        out = np.empty((self.n_landmarks, 3))
        out[self._lm_vert_cols] = self.data.flexvert_xpos[self._lm_vert]
        out[self._lm_site_cols] = self.data.site_xpos[self._lm_site]
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
