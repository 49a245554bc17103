"""Gaze geometry of the face twin: where the room is for a neck pose, and which eye controls look at a point.

The world frame of the model IS the head frame (+x out of the face, +y the face's own left, +z up; metres): the neck
joints move the "room" (torso, mirror camera, lights) around the fixed head (:func:`facetwin.sim.builder`'s room).
So a point fixed in the room (a listener, the mirror camera) moves in the head frame when the head turns, and the
eyes must follow it there.

* :func:`room_pose` - rotation and position of the room frame in the head frame for given neck angles, from the
  model's own kinematics (``mj_kinematics`` on a cached scratch ``MjData``);
* :func:`neck_targets`, :func:`camera_position` - the neck angles a control vector commands, and where a camera
  of the room then is;
* :class:`Gaze` - eye controls (yaw and pitch of each eye, vergence included) that point both eyes at a head-frame
  point; :meth:`Gaze.target_in_head` brings a room point into the head frame for the commanded neck pose;
* :func:`look_at_error_deg` - per eye, the angle between where it looks and where the target is, in a simulated state.

Each eye turns about its centre: joint ``eye_yaw_X`` (axis +z: + toward the face's left) then ``eye_pitch_X`` (axis
-y of the turned eye: + up); it looks along its body's +x axis, so a direction ``d`` (head frame) is reached with
``yaw = atan2(d_y, d_x)``, ``pitch = atan2(d_z, hypot(d_x, d_y))``. Angles map to normalized controls through each
actuator's own gain and bias (target = (gain ctrl + bias0) / -bias1, the tendon's coefficient on its joint).

>>> gaze = Gaze(face.model)
>>> u = face.controls(gaze.eye_controls(gaze.target_in_head(listener_room, u_prev)))
"""

from __future__ import annotations

from collections.abc import Mapping

import mujoco
import numpy as np

from .actuators import load_actuators

EYE_SIDES = ("R", "L")
#: the neck joints, in the actuator table's order (the order of a neck angle array)
NECK_JOINTS = tuple(a.insertion for a in load_actuators() if a.region == "neck")
_SCRATCH_MAX = 4
_scratch: dict[int, tuple[mujoco.MjModel, mujoco.MjData]] = {}


def _mj(model) -> mujoco.MjModel:
    """The MjModel of ``model`` (an MjModel, or anything with a ``.model`` such as a FaceModel)."""
    return model if isinstance(model, mujoco.MjModel) else model.model


def _scratch_data(model: mujoco.MjModel) -> mujoco.MjData:
    """A scratch MjData for ``model`` (cached per model, a few models at most): kinematics only, never stepped."""
    hit = _scratch.get(id(model))
    if hit is None or hit[0] is not model:
        while len(_scratch) >= _SCRATCH_MAX:
            _scratch.pop(next(iter(_scratch)))
        hit = (model, mujoco.MjData(model))
        _scratch[id(model)] = hit
    return hit[1]


def _point(p, what: str) -> np.ndarray:
    """A finite 3-vector (metres), ``ValueError`` naming ``what`` otherwise."""
    raw = np.asarray(p)
    if raw.dtype.kind not in "biuf" or raw.shape != (3,) or not np.isfinite(raw).all():
        raise ValueError(f"{what} must be 3 finite numbers (x, y, z in metres), got {p!r}")
    return raw.astype(float)


def _actuator_joint(model: mujoco.MjModel, name: str) -> tuple[int, int, float]:
    """(actuator id, joint id, tendon coefficient) of a joint actuator (a fixed tendon on one joint)."""
    aid = model.actuator(name).id
    if model.actuator_trntype[aid] != mujoco.mjtTrn.mjTRN_TENDON:
        raise ValueError(f"actuator {name!r} does not drive a tendon")
    tid = model.actuator_trnid[aid, 0]
    adr = model.tendon_adr[tid]
    if model.tendon_num[tid] != 1 or model.wrap_type[adr] != mujoco.mjtWrap.mjWRAP_JOINT:
        raise ValueError(f"actuator {name!r} is not a joint actuator (a fixed tendon on one joint)")
    return int(aid), int(model.wrap_objid[adr]), float(model.wrap_prm[adr])


def _target_angle(model: mujoco.MjModel, aid: int, coef: float, ctrl: float) -> float:
    """The joint angle (rad) a position actuator holds for normalized ``ctrl``."""
    gain, b0, b1 = model.actuator_gainprm[aid, 0], model.actuator_biasprm[aid, 0], model.actuator_biasprm[aid, 1]
    return float((gain * ctrl + b0) / -b1 / coef)


def _ctrl_for_angle(model: mujoco.MjModel, aid: int, coef: float, angle: float) -> float:
    """The normalized control whose target is joint angle ``angle`` (rad), unclipped."""
    gain, b0, b1 = model.actuator_gainprm[aid, 0], model.actuator_biasprm[aid, 0], model.actuator_biasprm[aid, 1]
    return float((-b1 * coef * angle - b0) / gain)


def room_pose(model, neck_angles: Mapping[str, float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R (3, 3), p (3,)) of the room frame in the head frame for neck joint angles (rad): a room point ``x``
    is at ``R @ x + p`` in the head frame.

    ``neck_angles``: ``{joint name: angle}`` (joints not named at 0), or an array of 3 angles in the order of
    :data:`NECK_JOINTS` (the actuator table's: neck_yaw, neck_pitch, neck_roll). Computed by ``mj_kinematics`` of
    ``model`` (an MjModel or a FaceModel) on a cached scratch MjData."""
    m = _mj(model)
    if isinstance(neck_angles, Mapping):
        unknown = [k for k in neck_angles if k not in NECK_JOINTS]
        if unknown:
            raise ValueError(f"unknown neck joint(s) {unknown}; known: {', '.join(NECK_JOINTS)}")
        angles = dict(neck_angles)
    else:
        arr = np.asarray(neck_angles, dtype=float)
        if arr.shape != (len(NECK_JOINTS),):
            raise ValueError(f"neck_angles must be {len(NECK_JOINTS)} angles ({', '.join(NECK_JOINTS)}), "
                             f"got shape {arr.shape}")
        angles = dict(zip(NECK_JOINTS, arr))
    if not np.isfinite([float(v) for v in angles.values()]).all():
        raise ValueError(f"neck_angles must be finite, got {angles}")
    d = _scratch_data(m)
    d.qpos[:] = m.qpos0
    for name, value in angles.items():
        d.qpos[m.jnt_qposadr[m.joint(name).id]] = float(value)
    mujoco.mj_kinematics(m, d)
    body = m.jnt_bodyid[m.joint(NECK_JOINTS[0]).id]
    return d.xmat[body].reshape(3, 3).copy(), d.xpos[body].copy()


def neck_targets(model, ctrl) -> dict[str, float]:
    """The neck joint angles (rad) that the normalized control vector ``ctrl`` (one value per actuator, the
    model's actuator order) commands, by the neck actuators' own gain and bias; values outside [-1, 1] are
    clipped like the actuators clip them."""
    m = _mj(model)
    u = np.asarray(ctrl, dtype=float)
    if u.shape != (m.nu,) or not np.isfinite(u).all():
        raise ValueError(f"ctrl must be {m.nu} finite normalized controls, got shape {u.shape}")
    out = {}
    for joint in NECK_JOINTS:
        aid, jid, coef = _actuator_joint(m, joint)
        if m.joint(jid).name != joint:
            raise ValueError(f"actuator {joint!r} drives joint {m.joint(jid).name!r}")
        out[joint] = _target_angle(m, aid, coef, float(np.clip(u[aid], -1.0, 1.0)))
    return out


def camera_position(model, ctrl: np.ndarray, camera: str = "mirror") -> np.ndarray:
    """Position (head frame, metres) of ``camera`` (a fixed camera, e.g. the room's "mirror") when the neck holds
    the targets that ``ctrl`` commands."""
    m = _mj(model)
    cid = m.camera(camera).id
    if m.cam_mode[cid] != mujoco.mjtCamLight.mjCAMLIGHT_FIXED:
        raise ValueError(f"camera {camera!r} is not fixed to its body")
    room_pose(m, neck_targets(m, ctrl))  # leaves the scratch data's kinematics at that neck pose
    d = _scratch_data(m)
    body = m.cam_bodyid[cid]
    return d.xpos[body] + d.xmat[body].reshape(3, 3) @ m.cam_pos[cid]


class Gaze:
    """Eye controls that look at a point, for one model.

    Reads from the model each eye's centre (its yaw joint's anchor), the joint ranges and, through the eye
    actuators' gain and bias (the actuator table's stroke and offset), the control of each angle."""

    def __init__(self, model: mujoco.MjModel):
        m = self.model = _mj(model)
        d = _scratch_data(m)
        d.qpos[:] = m.qpos0
        mujoco.mj_kinematics(m, d)
        self.eye_centers: dict[str, np.ndarray] = {}
        self._eyes: dict[str, tuple] = {}  # side -> ((aid, coef, lo, hi) of yaw, of pitch)
        for side in EYE_SIDES:
            joints = []
            for kind, axis in (("yaw", (0.0, 0.0, 1.0)), ("pitch", (0.0, -1.0, 0.0))):
                name = f"eye_{kind}_{side}"
                aid, jid, coef = _actuator_joint(m, name)
                if m.joint(jid).name != name or not np.allclose(d.xaxis[jid], axis):
                    raise ValueError(f"joint {name!r} must turn about {axis} (head frame) at rest")
                lo, hi = m.jnt_range[jid] if m.jnt_limited[jid] else (-np.pi, np.pi)
                joints.append((aid, coef, float(lo), float(hi)))
            body = m.jnt_bodyid[m.joint(f"eye_yaw_{side}").id]
            if not np.allclose(d.xmat[body].reshape(3, 3), np.eye(3)):
                raise ValueError(f"eye body of side {side} must look along +x at rest")
            self.eye_centers[side] = d.xanchor[m.joint(f"eye_yaw_{side}").id].copy()
            self._eyes[side] = tuple(joints)

    def eye_angles(self, target_head: np.ndarray) -> dict[str, float]:
        """Yaw and pitch (rad, unclipped) of each eye looking at ``target_head`` (head frame, metres):
        ``{"eye_yaw_R": ..., "eye_pitch_R": ..., "eye_yaw_L": ..., "eye_pitch_L": ...}``."""
        t = _point(target_head, "target_head")
        out = {}
        for side in EYE_SIDES:
            dx, dy, dz = t - self.eye_centers[side]
            out[f"eye_yaw_{side}"] = float(np.arctan2(dy, dx))
            out[f"eye_pitch_{side}"] = float(np.arctan2(dz, np.hypot(dx, dy)))
        return out

    def eye_controls(self, target_head: np.ndarray) -> dict[str, float]:
        """Normalized controls ``eye_yaw_R``, ``eye_pitch_R``, ``eye_yaw_L``, ``eye_pitch_L`` that point each eye at
        ``target_head`` (head frame, metres; each eye its own angles: vergence). Angles beyond a joint's range or
        the actuator's stroke saturate (clipped to the range, then to [-1, 1])."""
        angles = self.eye_angles(target_head)
        out = {}
        for side in EYE_SIDES:
            for kind, (aid, coef, lo, hi) in zip(("yaw", "pitch"), self._eyes[side]):
                name = f"eye_{kind}_{side}"
                a = float(np.clip(angles[name], lo, hi))
                out[name] = float(np.clip(_ctrl_for_angle(self.model, aid, coef, a), -1.0, 1.0))
        return out

    def target_in_head(self, target_room: np.ndarray, ctrl: np.ndarray) -> np.ndarray:
        """A point given in the room frame (metres: the listener, the mirror camera) in the head frame, for the
        neck targets that ``ctrl`` commands: gaze stays on a room point while the head nods and turns."""
        p_room = _point(target_room, "target_room")
        rot, pos = room_pose(self.model, neck_targets(self.model, ctrl))
        return rot @ p_room + pos


def look_at_error_deg(model, data: mujoco.MjData, target_head: np.ndarray) -> dict[str, float]:
    """Per eye (``"R"``, ``"L"``): the angle (degrees) between the eye body's +x axis and the direction from the
    eye's centre to ``target_head`` (head frame, metres), in the current state of ``data`` (its ``qpos``; ``data``
    is not changed)."""
    m = _mj(model)
    t = _point(target_head, "target_head")
    d = _scratch_data(m)  # the kinematics of data's qpos now (data's own are those before its last step)
    d.qpos[:] = data.qpos
    mujoco.mj_kinematics(m, d)
    out = {}
    for side in EYE_SIDES:
        body = m.jnt_bodyid[m.joint(f"eye_yaw_{side}").id]
        axis = d.xmat[body].reshape(3, 3)[:, 0]
        v = t - d.xanchor[m.joint(f"eye_yaw_{side}").id]
        cos = float(axis @ v) / max(float(np.linalg.norm(v)), 1e-12)
        out[side] = float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    return out


__all__ = ["EYE_SIDES", "NECK_JOINTS", "Gaze", "camera_position", "look_at_error_deg", "neck_targets", "room_pose"]
