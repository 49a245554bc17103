"""Emotion presets (facetwin.sim.expressions.EMOTIONS): the seven names, controls in range, and what each does to
the settled twin's landmarks (mm, head frame)."""

import numpy as np
import pytest

from facetwin.sim import FaceModel, actuator_names
from facetwin.sim.expressions import EMOTIONS, EXPRESSIONS, emotion_ctrl
from facetwin.sim.landmarks import column

SEVEN = ["neutral", "happy", "sad", "angry", "surprised", "afraid", "disgusted"]
INNER_BROWS = [column(55), column(285)]
MID_BROWS = [column(53), column(283)]  # where the outer brow actuators insert
CORNERS = [column(61), column(291)]
UPPER_LIP = [column(39), column(269)]  # where the upper lip raisers insert
UPPER_LIDS, LOWER_LIDS = [column(159), column(386)], [column(145), column(374)]


@pytest.fixture(scope="module")
def face():
    return FaceModel.load("fast")


@pytest.fixture(scope="module")
def moved(face):
    """Emotion -> (landmark displacement from the neutral face (N, 3) mm, mouth measures), settled 1 s."""
    out = {}
    for name in EMOTIONS:
        face.reset()
        face.settle(emotion_ctrl(face, name), 1.0)
        assert not face.warnings()
        out[name] = (face.landmarks_mm() - face.neutral_landmarks_mm, face.mouth())
    face.reset()
    return out


def test_exactly_the_seven_emotions_in_range():
    assert list(EMOTIONS) == SEVEN
    names = set(actuator_names())
    for name, overrides in EMOTIONS.items():
        assert set(overrides) <= names, name
        assert all(-1.0 <= v <= 1.0 for v in overrides.values()), name
    assert EMOTIONS["neutral"] == {}
    assert "smile" in EXPRESSIONS and "happy" not in EXPRESSIONS  # the expressions are kept as they were


def test_emotion_ctrl_scales_from_rest(face):
    np.testing.assert_array_equal(emotion_ctrl(face, "neutral"), face.rest_ctrl)
    np.testing.assert_array_equal(emotion_ctrl(face, "surprised", 0.0), face.rest_ctrl)
    full, half = emotion_ctrl(face, "surprised"), emotion_ctrl(face, "surprised", 0.5)
    np.testing.assert_allclose(half, 0.5 * (face.rest_ctrl + full))
    jaw = face.actuator_names.index("jaw_open")
    assert full[jaw] == pytest.approx(EMOTIONS["surprised"]["jaw_open"]) and half[jaw] == pytest.approx(-0.7)
    for name in SEVEN:
        u = emotion_ctrl(face, name)
        assert u.shape == (26,) and np.all(np.abs(u) <= 1.0)
        np.testing.assert_array_equal(emotion_ctrl(actuator_names(), name), u)
    some = ["brow_inner_R", "jaw_open"]
    np.testing.assert_allclose(emotion_ctrl(some, "angry", 0.5), [-0.5, -1.0])


def test_emotion_ctrl_refuses_bad_input(face):
    with pytest.raises(KeyError, match="neutral, happy, sad, angry, surprised, afraid, disgusted"):
        emotion_ctrl(face, "bored")
    for bad in (1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match="intensity"):
            emotion_ctrl(face, "happy", bad)


def test_every_emotion_moves_the_face(moved):
    assert np.abs(moved["neutral"][0]).max() < 0.05
    for name in SEVEN[1:]:
        assert np.linalg.norm(moved[name][0], axis=1).max() >= 1.0, name


def test_happy_widens_the_mouth_and_lifts_corners_and_lower_lids(moved):
    d, mouth = moved["happy"]
    assert mouth["width_mm"] - moved["neutral"][1]["width_mm"] >= 5.0
    assert d[CORNERS, 2].min() >= 2.0
    assert d[LOWER_LIDS, 2].min() >= 1.0


def test_sad_and_angry_move_the_inner_brows_in_opposite_directions(moved):
    sad, angry = moved["sad"][0], moved["angry"][0]
    assert sad[INNER_BROWS, 2].min() >= 1.5  # AU1
    assert angry[INNER_BROWS, 2].max() <= -1.5  # AU4
    assert sad[CORNERS, 2].max() <= -1.5  # AU15
    assert angry[UPPER_LIDS, 2].min() >= 1.0 and angry[LOWER_LIDS, 2].min() >= 1.0  # lids raised, lower ones tense


def test_surprised_raises_the_brows_and_opens_eyes_and_jaw(moved):
    d, mouth = moved["surprised"]
    assert d[INNER_BROWS + MID_BROWS, 2].min() >= 1.5
    assert d[UPPER_LIDS, 2].min() >= 2.0
    assert mouth["aperture_mm"] - moved["neutral"][1]["aperture_mm"] >= 3.0


def test_afraid_raises_inner_brows_widens_eyes_and_stretches_the_mouth(moved):
    d, mouth = moved["afraid"]
    assert d[INNER_BROWS, 2].min() >= 1.5
    assert d[INNER_BROWS, 2].mean() > d[MID_BROWS, 2].mean()  # inner up more than outer (AU1 + AU4 over AU2)
    assert d[UPPER_LIDS, 2].min() >= 2.0
    assert mouth["width_mm"] - moved["neutral"][1]["width_mm"] >= 5.0


def test_disgusted_raises_the_upper_lip_and_lowers_the_brows(moved):
    d = moved["disgusted"][0]
    assert d[UPPER_LIP, 2].min() >= 1.5  # AU10
    assert d[INNER_BROWS, 2].max() <= -0.5
