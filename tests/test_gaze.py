"""Gaze geometry (facetwin.sim.gaze): the eyes settle on head-frame and room-frame targets within issue 14's
2 degrees, saturate beyond their range, converge on near targets; the room's pose follows the neck."""

import numpy as np
import pytest

from facetwin.sim import FaceModel
from facetwin.sim.gaze import NECK_JOINTS, Gaze, camera_position, look_at_error_deg, neck_targets, room_pose

BAR_DEG = 2.0  # issue 14: look-at error once settled
SETTLE_S = 0.5


@pytest.fixture(scope="module")
def face():
    return FaceModel.load("fast")


@pytest.fixture(scope="module")
def gaze(face):
    return Gaze(face.model)


def _point(gaze, yaw_deg, pitch_deg, dist):
    """A head-frame point ``dist`` metres from the midpoint between the eyes, in direction (yaw, pitch)."""
    mid = 0.5 * (gaze.eye_centers["R"] + gaze.eye_centers["L"])
    y, p = np.radians(yaw_deg), np.radians(pitch_deg)
    return mid + dist * np.array([np.cos(p) * np.cos(y), np.cos(p) * np.sin(y), np.sin(p)])


# (yaw deg, pitch deg, distance m): spread over +-20 deg yaw, +-12 deg pitch, 0.3-1.0 m, all inside the eyes' strokes
TARGETS = [(0, 0, 0.6), (20, 0, 1.0), (-20, 0, 1.0), (0, 12, 0.5), (0, -12, 0.5), (15, 10, 0.4), (-15, -10, 0.4),
           (10, -8, 0.3), (-20, 12, 0.7)]


def test_eye_centres_come_from_the_model(face, gaze):
    for side, s in (("R", -1), ("L", 1)):
        np.testing.assert_allclose(gaze.eye_centers[side], face.design.eye_center(s), atol=1e-6)  # the MJCF's 6 digits
    assert gaze.eye_centers["R"][1] < 0 < gaze.eye_centers["L"][1]


def test_look_at_error_of_the_resting_eyes_is_geometry(face, gaze):
    face.reset()
    c = gaze.eye_centers
    ahead_r = c["R"] + np.array([1.0, 0.0, 0.0])  # straight ahead of the right eye
    err = look_at_error_deg(face.model, face.data, ahead_r)
    assert err["R"] == pytest.approx(0.0, abs=1e-6)
    assert err["L"] == pytest.approx(np.degrees(np.arctan2(c["L"][1] - c["R"][1], 1.0)), abs=1e-6)


def test_eyes_settle_on_head_frame_targets_within_2_degrees(face, gaze):
    settled, at_rest = [], []
    for yaw, pitch, dist in TARGETS:
        target = _point(gaze, yaw, pitch, dist)
        u = gaze.eye_controls(target)
        assert set(u) == {"eye_yaw_R", "eye_pitch_R", "eye_yaw_L", "eye_pitch_L"}
        assert all(-1.0 < v < 1.0 for v in u.values()), (yaw, pitch, dist, u)  # inside the strokes: not saturated
        face.reset()
        at_rest.append(max(look_at_error_deg(face.model, face.data, target).values()))
        face.settle(face.controls(u), SETTLE_S)
        settled.append(max(look_at_error_deg(face.model, face.data, target).values()))
    assert max(settled) <= BAR_DEG, settled
    assert max(at_rest) > 15.0  # the resting eyes miss the targets: the error measure can fail


def test_controls_follow_the_actuator_gain(face, gaze):
    """20 deg yaw of the left eye is 20/25 of the yaw stroke (actuators.csv), 10 deg pitch 10/20 of the pitch's."""
    c = gaze.eye_centers["L"]
    t = c + np.array([np.cos(np.radians(10)) * np.cos(np.radians(20)), np.cos(np.radians(10)) * np.sin(np.radians(20)),
                      np.sin(np.radians(10))])
    u = gaze.eye_controls(t)
    assert u["eye_yaw_L"] == pytest.approx(20 / 25, abs=1e-5)  # the MJCF's gains have 6 digits
    assert u["eye_pitch_L"] == pytest.approx(10 / 20, abs=1e-5)


def test_gaze_stays_on_a_room_point_while_the_neck_turns_and_nods(face, gaze):
    m = face.model
    cam = m.camera("mirror").id
    assert m.cam_bodyid[cam] == m.body("room").id
    cam_room = m.cam_pos[cam].copy()  # the mirror camera, in the room frame
    neck = face.controls(neck_yaw=0.5, neck_pitch=-0.4)
    target = gaze.target_in_head(cam_room, neck)
    np.testing.assert_allclose(camera_position(m, neck), target, atol=1e-12)
    assert target[1] < -0.05 and target[2] > cam_room[2] + 0.02  # head turned to its left and down: the camera
    # is to the head's right and above
    u = face.controls({**gaze.eye_controls(target), "neck_yaw": 0.5, "neck_pitch": -0.4})
    face.reset()
    face.settle(u, SETTLE_S)
    actual = face.data.cam_xpos[cam].copy()  # where the simulated camera is, head frame
    assert np.linalg.norm(actual - target) < 1e-3
    err = look_at_error_deg(m, face.data, actual)
    assert max(err.values()) <= BAR_DEG, err
    # the neck matters: eyes aimed at the camera's rest position miss it by far more than the bar
    u_naive = face.controls({**gaze.eye_controls(cam_room), "neck_yaw": 0.5, "neck_pitch": -0.4})
    face.reset()
    face.settle(u_naive, SETTLE_S)
    assert min(look_at_error_deg(m, face.data, actual).values()) > 5.0


def test_room_pose_follows_the_neck(face):
    rot, pos = room_pose(face.model, {})
    np.testing.assert_allclose(rot, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(pos, 0.0, atol=1e-12)
    angles = neck_targets(face.model, face.controls(neck_yaw=0.5, neck_pitch=-0.4, neck_roll=0.2))
    np.testing.assert_allclose([angles[j] for j in ("neck_yaw", "neck_pitch", "neck_roll")],
                               np.radians([15.0, -8.0, 3.0]), atol=1e-5)  # strokes 30, 20, 15 deg
    rot, pos = room_pose(face.model, angles)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    rot2, pos2 = room_pose(face.model, np.array([angles[j] for j in NECK_JOINTS]))
    np.testing.assert_allclose(rot2, rot)
    np.testing.assert_allclose(pos2, pos)
    # the neck pivot stays where it is; a yaw alone turns the room about -z (the head turns to its left)
    pivot = face.model.joint("neck_yaw").pos
    rot, pos = room_pose(face.model, {"neck_yaw": 0.3})
    np.testing.assert_allclose(rot @ pivot + pos, pivot, atol=1e-12)
    np.testing.assert_allclose(rot @ [1.0, 0.0, 0.0], [np.cos(0.3), -np.sin(0.3), 0.0], atol=1e-12)
    with pytest.raises(ValueError, match="neck_twist"):
        room_pose(face.model, {"neck_twist": 0.1})
    with pytest.raises(ValueError, match="neck_angles"):
        room_pose(face.model, np.zeros(2))


def test_targets_beyond_the_range_saturate(face, gaze):
    c = gaze.eye_centers
    far_left = gaze.eye_controls(c["L"] + [0.1, 1.0, 0.0])
    assert far_left["eye_yaw_R"] == 1.0 and far_left["eye_yaw_L"] == 1.0
    up_right = gaze.eye_controls(c["R"] + [0.1, -1.0, 1.0])
    assert up_right["eye_yaw_R"] == -1.0 and up_right["eye_yaw_L"] == -1.0
    assert up_right["eye_pitch_R"] == 1.0 and up_right["eye_pitch_L"] == 1.0
    behind = gaze.eye_controls(c["R"] + [-1.0, 0.0, -1.0])
    assert behind["eye_pitch_R"] == -1.0
    for u in (far_left, up_right, behind):
        assert all(np.isfinite(v) and -1.0 <= v <= 1.0 for v in u.values())
    face.reset()
    face.settle(face.controls(up_right), SETTLE_S)
    yaw = face.data.qpos[face.model.joint("eye_yaw_R").qposadr[0]]
    assert np.degrees(yaw) == pytest.approx(-25.0, abs=0.1)  # the stroke, inside the joint's range


def test_vergence_near_targets_converge(gaze):
    near, far = gaze.eye_controls(_point(gaze, 0, 0, 0.3)), gaze.eye_controls(_point(gaze, 0, 0, 3.0))
    # the right eye (at -y) turns toward +y, the left toward -y: they converge, more for the near target
    assert near["eye_yaw_R"] > 0.2 and near["eye_yaw_L"] < -0.2
    assert near["eye_yaw_R"] - near["eye_yaw_L"] > 5 * (far["eye_yaw_R"] - far["eye_yaw_L"]) > 0
    side = gaze.eye_controls(_point(gaze, 10, 0, 0.3))
    assert side["eye_yaw_R"] > side["eye_yaw_L"] > 0
    angles = gaze.eye_angles(_point(gaze, 0, 0, 0.3))
    assert np.degrees(angles["eye_yaw_R"] - angles["eye_yaw_L"]) == pytest.approx(
        2 * np.degrees(np.arctan2(gaze.eye_centers["L"][1], 0.3)), abs=1e-6)


def test_bad_targets_are_refused(gaze, face):
    with pytest.raises(ValueError, match="target_head"):
        gaze.eye_controls([0.5, np.nan, 0.0])
    with pytest.raises(ValueError, match="target_head"):
        gaze.eye_controls([0.5, 0.0])
    with pytest.raises(ValueError, match="target_room"):
        gaze.target_in_head("0.4 0 0", face.rest_ctrl)
    with pytest.raises(ValueError, match="ctrl"):
        gaze.target_in_head([0.4, 0.0, 0.0], face.rest_ctrl[:5])
