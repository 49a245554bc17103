"""Rendering the mirror: image presets, the mirror flip, landmark pixels that land on the features they name, images
that follow the face's motion and the neck's, bad input and the renderer's lifetime."""

from __future__ import annotations

import numpy as np
import pytest

from facetwin.sim import FaceModel
from facetwin.sim.expressions import expression_ctrl
from facetwin.sim.render import PRESETS, MirrorRenderer, project_landmarks

IRIS_R, IRIS_L = 468, 473
CORNER_R, CORNER_L = 61, 291  # outer mouth corners: the face's right (-y) and left (+y)
UPPER_OUTER, LOWER_OUTER, UPPER_INNER, LOWER_INNER = 0, 17, 13, 14
NOSE_TIP = 1
SKIN_POINTS = (1, 10, 168, 152)  # nose tip, forehead, nose bridge, chin
EYE_REGION = (33, 133, 362, 263, 159, 145, 386, 374, 55, 46, 285, 276)  # eye corners, lid edges, brow ends
MOUTH_REGION = (CORNER_R, CORNER_L, UPPER_OUTER, LOWER_OUTER)

# Colour thresholds (r/g of the 3x3 median around a pixel): the skin material renders at r/g ~ 1.3 everywhere, the
# lip material at ~ 1.7-2.0, the pupil/iris at grey levels ~ 10-15.
LIP_MIN_RG = 1.6
SKIN_MAX_RG = 1.4
DARK_MAX = 60


@pytest.fixture(scope="module")
def face() -> FaceModel:
    return FaceModel.load()


@pytest.fixture(scope="module")
def video(face):
    with MirrorRenderer(face, "video") as r:
        yield r


@pytest.fixture(scope="module")
def obs(face):
    with MirrorRenderer(face, "obs") as r:
        yield r


def _hold(face: FaceModel, ctrl=None, seconds: float = 1.0) -> None:
    """Neutral face, then ``ctrl`` held for ``seconds`` (neutral face if ``ctrl`` is None)."""
    face.reset(ctrl)
    if ctrl is not None:
        face.settle(ctrl, seconds)


def _col(face: FaceModel, mp_id: int) -> int:
    return int(np.flatnonzero(face.landmark_ids == mp_id)[0])


def _uv(face: FaceModel, uv: np.ndarray, mp_id: int) -> np.ndarray:
    return uv[_col(face, mp_id)]


def _patch(img: np.ndarray, uv, half: int = 1) -> np.ndarray:
    """(k, 3) float pixels of the (2 half + 1)^2 patch centred on the pixel that contains ``uv``."""
    u, v = np.rint(np.asarray(uv, dtype=float)).astype(int)
    h, w = img.shape[:2]
    assert half <= u < w - half and half <= v < h - half, f"point {uv} is not inside the {w}x{h} image"
    return img[v - half : v + half + 1, u - half : u + half + 1].reshape(-1, 3).astype(float)


def _red_over_green(img: np.ndarray, uv) -> float:
    p = _patch(img, uv)
    return float(np.median(p[:, 0] / np.maximum(p[:, 1], 1.0)))


def _brightness(img: np.ndarray, uv) -> float:
    return float(np.median(_patch(img, uv).mean(axis=1)))


def _skin_mask(img: np.ndarray) -> np.ndarray:
    rgb = img.astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return (r > 120) & (r > g) & (r - b > 40)


def _crop(img: np.ndarray, pts: np.ndarray, pad: int) -> np.ndarray:
    (u0, v0), (u1, v1) = np.floor(pts.min(axis=0) - pad).astype(int), np.ceil(pts.max(axis=0) + pad).astype(int)
    h, w = img.shape[:2]
    return img[max(v0, 0) : min(v1, h), max(u0, 0) : min(u1, w)].astype(float)


# ---------------------------------------------------------------------------------------------------- presets
def test_obs_preset_is_a_small_uint8_picture_of_the_face(face, obs):
    _hold(face)
    img = obs.render()
    assert (obs.width, obs.height) == (128, 128)
    assert img.shape == (128, 128, 3) and img.dtype == np.uint8
    _assert_face_in_picture(img)
    # the pupils sit under the projected irises even at 128 px
    uv = obs.project_landmarks()
    for k in (IRIS_R, IRIS_L):
        u, v = np.rint(_uv(face, uv, k)).astype(int)
        assert img[v, u].max() < DARK_MAX, f"iris landmark {k} at {(u, v)} is on {img[v, u]}, not the pupil"


def test_video_preset_is_640x480_and_shows_the_face(face, video):
    _hold(face)
    img = video.render()
    assert (video.width, video.height) == (640, 480)
    assert img.shape == (480, 640, 3) and img.dtype == np.uint8
    _assert_face_in_picture(img)


def _assert_face_in_picture(img: np.ndarray) -> None:
    h, w = img.shape[:2]
    skin = _skin_mask(img)
    centre = skin[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    assert centre.mean() > 0.6, f"only {centre.mean():.0%} of the image centre is skin-coloured"
    assert 0.15 < skin.mean() < 0.85, f"{skin.mean():.0%} of the whole image is skin-coloured"
    assert img.mean() > 60 and img.std() > 20, "blank, black or uniform frame"
    # the corners show the grey backdrop, not skin
    for corner in (img[2, 2], img[2, -3], img[-3, 2], img[-3, -3]):
        c = corner.astype(int)
        assert c.max() - c.min() < 30 and c.min() > 80, f"corner pixel {c} is not the grey backdrop"


def test_custom_size_and_restored_visual_settings(face):
    vis = face.model.vis
    before = (vis.quality.offsamples, vis.global_.offwidth, vis.global_.offheight)
    with MirrorRenderer(face, "obs", width=800, height=600) as r:  # larger than the model's offscreen buffer
        img = r.render()
        assert img.shape == (600, 800, 3)
        assert r.project_landmarks().shape == (face.n_landmarks, 2)
    # the preset's multisampling and buffer size were applied only while the GL buffers were created
    assert (vis.quality.offsamples, vis.global_.offwidth, vis.global_.offheight) == before


# ---------------------------------------------------------------------------------------------------- mirror
@pytest.mark.parametrize("preset", ["obs", "video"])
def test_mirror_image_is_the_raw_image_flipped_left_right(face, obs, video, preset):
    r = {"obs": obs, "video": video}[preset]
    _hold(face, expression_ctrl(face, "look_left"), 0.5)  # an asymmetric face: the flip shows
    mirrored, raw = r.render(mirror=True), r.render(mirror=False)
    assert mirrored.shape == raw.shape == (r.height, r.width, 3)
    assert np.array_equal(mirrored, raw[:, ::-1])
    assert not np.array_equal(mirrored, raw)
    assert mirrored.flags["C_CONTIGUOUS"]
    # returned images are the caller's: a later render does not overwrite them
    kept = raw.copy()
    _hold(face)
    assert not np.array_equal(r.render(mirror=False), kept)
    assert np.array_equal(raw, kept)
    # the landmark pixels flip the same way: u -> width - 1 - u, v unchanged
    uv_m, uv_r = r.project_landmarks(mirror=True), r.project_landmarks(mirror=False)
    assert np.allclose(uv_m[:, 0], r.width - 1 - uv_r[:, 0])
    assert np.allclose(uv_m[:, 1], uv_r[:, 1])


def test_mirror_shows_the_face_right_on_the_image_right(face, video):
    _hold(face)
    head = face.landmarks_mm()
    assert head[_col(face, CORNER_R), 1] < 0 < head[_col(face, CORNER_L), 1]  # 61 is the face's right (-y)
    mir = video.project_landmarks(mirror=True)
    raw = video.project_landmarks(mirror=False)
    # like a mirror: the face's right mouth corner and right eye appear on the image's right
    assert _uv(face, mir, CORNER_R)[0] > _uv(face, mir, CORNER_L)[0] + 80
    assert _uv(face, mir, IRIS_R)[0] > _uv(face, mir, IRIS_L)[0] + 80
    # the raw camera image, which looks at the face, has them on the left
    assert _uv(face, raw, CORNER_R)[0] < _uv(face, raw, CORNER_L)[0] - 80
    assert _uv(face, raw, IRIS_R)[0] < _uv(face, raw, IRIS_L)[0] - 80
    # the face is upright and centred: eyes above the mouth, midline near the image centre
    assert _uv(face, mir, IRIS_R)[1] < _uv(face, mir, UPPER_OUTER)[1] - 100
    assert abs(_uv(face, mir, UPPER_OUTER)[0] - (video.width - 1) / 2) < 10


# ---------------------------------------------------------------------------------------------------- landmarks
def test_landmark_pixels_land_on_irises_and_lips(face, video):
    _hold(face)
    img = video.render()
    uv = video.project_landmarks()
    for k in (IRIS_R, IRIS_L):
        assert _brightness(img, _uv(face, uv, k)) < DARK_MAX, f"iris landmark {k} is not on the dark pupil"
    lip_points = {
        # 0 and 17 lie on the vermilion border itself: sample just inside it
        "0": 0.75 * _uv(face, uv, UPPER_OUTER) + 0.25 * _uv(face, uv, UPPER_INNER),
        "17": 0.75 * _uv(face, uv, LOWER_OUTER) + 0.25 * _uv(face, uv, LOWER_INNER),
        "upper lip body": 0.5 * (_uv(face, uv, UPPER_OUTER) + _uv(face, uv, UPPER_INNER)),
        "lower lip body": 0.5 * (_uv(face, uv, LOWER_INNER) + _uv(face, uv, LOWER_OUTER)),
    }
    for name, p in lip_points.items():
        rg = _red_over_green(img, p)
        assert rg > LIP_MIN_RG, f"lip point {name} at {p} has red/green {rg:.2f}: not lip-coloured"
    for k in SKIN_POINTS:
        rg = _red_over_green(img, _uv(face, uv, k))
        assert rg < SKIN_MAX_RG, f"skin landmark {k} has red/green {rg:.2f}: looks like lip"
    # the whole face projects inside the picture
    assert np.isfinite(uv).all()
    assert ((uv >= 0) & (uv <= [video.width - 1, video.height - 1])).all()


@pytest.mark.parametrize("mirror", [True, False])
def test_landmarks_match_an_asymmetric_image_only_with_the_same_mirror_flag(face, video, mirror):
    """Head and eyes turned: the image is not symmetric, so only the matching flip puts the irises on the pupils."""
    _hold(face, expression_ctrl(face, "look_left"))
    img = video.render(mirror=mirror)
    right = video.project_landmarks(mirror=mirror)
    wrong = video.project_landmarks(mirror=not mirror)
    for k in (IRIS_R, IRIS_L):
        assert _brightness(img, _uv(face, right, k)) < DARK_MAX
    assert min(_brightness(img, _uv(face, wrong, k)) for k in (IRIS_R, IRIS_L)) > 2 * DARK_MAX
    for outer, inner in ((UPPER_OUTER, UPPER_INNER), (LOWER_OUTER, LOWER_INNER)):  # just inside the vermilion border
        p = 0.75 * _uv(face, right, outer) + 0.25 * _uv(face, right, inner)
        assert _red_over_green(img, p) > LIP_MIN_RG


def test_look_left_moves_the_eyes_to_the_image_left_in_the_mirror(face, video):
    _hold(face)
    before = video.project_landmarks()
    _hold(face, expression_ctrl(face, "look_left"))
    after = video.project_landmarks()
    for k in (IRIS_R, IRIS_L, NOSE_TIP):
        assert _uv(face, after, k)[0] < _uv(face, before, k)[0] - 20, f"landmark {k} did not move left"


def test_project_landmarks_scales_with_the_image_height(face, obs, video):
    """Same camera, vertical field of view fixed: pixel offsets from the image centre scale with the height."""
    _hold(face)
    small = obs.project_landmarks() - [(obs.width - 1) / 2, (obs.height - 1) / 2]
    big = video.project_landmarks() - [(video.width - 1) / 2, (video.height - 1) / 2]
    assert np.allclose(small, big * obs.height / video.height, atol=1e-9)
    assert np.allclose(project_landmarks(face, "mirror", 640, 480), video.project_landmarks())


# ---------------------------------------------------------------------------------------------------- motion
def test_opening_the_jaw_changes_the_mouth_not_the_eyes(face, video):
    _hold(face)
    neutral = video.render()
    uv = video.project_landmarks()
    _hold(face, expression_ctrl(face, "ah"))
    ah = video.render()
    mouth = [_col(face, k) for k in MOUTH_REGION]
    eyes = [_col(face, k) for k in EYE_REGION]
    mouth_diff = np.abs(_crop(ah, uv[mouth], 15) - _crop(neutral, uv[mouth], 15)).mean()
    eye_diff = np.abs(_crop(ah, uv[eyes], 15) - _crop(neutral, uv[eyes], 15)).mean()
    assert mouth_diff > 15.0, f"mouth crop changed by only {mouth_diff:.1f} grey levels"
    assert eye_diff < 1.0, f"eye crop changed by {eye_diff:.1f} grey levels"
    # the open mouth: the lower lip moved down by many pixels in the image
    dv = _uv(face, video.project_landmarks(), LOWER_OUTER)[1] - _uv(face, uv, LOWER_OUTER)[1]
    assert dv > 25


def test_turning_the_neck_moves_the_face_in_the_mirror(face, video):
    _hold(face)
    before_img, before = video.render(), video.project_landmarks()
    _hold(face, face.controls(neck_yaw=1.0))
    img, after = video.render(), video.project_landmarks()
    shift = np.linalg.norm(after - before, axis=1)
    assert np.median(shift) > 50 and shift.min() > 20, f"landmarks moved {np.median(shift):.0f} px (median)"
    # the head turns to its own left: in the mirror its nose swings to the image's left
    assert _uv(face, after, NOSE_TIP)[0] < _uv(face, before, NOSE_TIP)[0] - 80
    # the neck moves the room (camera) around the head: in the head frame the landmarks stay put ...
    assert np.abs(face.landmarks_mm() - face.neutral_landmarks_mm).max() < 1.0
    # ... and the projection follows the moved camera: the irises are still on the pupils
    for k in (IRIS_R, IRIS_L):
        assert _brightness(img, _uv(face, after, k)) < DARK_MAX
    assert np.abs(img.astype(float) - before_img).mean() > 10


# ---------------------------------------------------------------------------------------------------- bad input
def test_unknown_preset_is_rejected(face):
    with pytest.raises(ValueError, match=r"unknown render preset 'movie'.*obs.*video"):
        MirrorRenderer(face, "movie")


def test_unknown_camera_is_rejected(face, video):
    with pytest.raises(ValueError, match=r"unknown camera 'selfie'.*mirror"):
        MirrorRenderer(face, "obs", camera="selfie")
    with pytest.raises(ValueError, match=r"camera id 99 out of range"):
        MirrorRenderer(face, "obs", camera=99)
    with pytest.raises(ValueError, match=r"unknown camera 'selfie'"):
        video.render(camera="selfie")
    with pytest.raises(ValueError, match=r"unknown camera 'selfie'"):
        video.project_landmarks(camera="selfie")
    with pytest.raises(ValueError, match=r"unknown camera 'selfie'"):
        project_landmarks(face, "selfie")
    # the renderer still works after a bad call, and the other cameras of the model are usable
    assert video.render().shape == (480, 640, 3)
    assert video.render(camera="mouth").shape == (480, 640, 3)


@pytest.mark.parametrize(
    "size",
    [
        {"width": -1},
        {"height": -64},
        {"width": -128, "height": -128},
        {"width": 0},
        {"height": 0},
    ],
    ids=["width-1", "height-64", "both-128", "width0", "height0"],
)
def test_non_positive_image_size_is_rejected(face, size):
    with pytest.raises(ValueError, match=r"image size must be positive"):
        MirrorRenderer(face, "obs", **size)


def test_presets_table():
    assert set(PRESETS) == {"obs", "video"}
    assert (PRESETS["obs"].width, PRESETS["obs"].height, PRESETS["obs"].offsamples) == (128, 128, 0)
    assert not PRESETS["obs"].shadows and PRESETS["video"].shadows
    assert (PRESETS["video"].width, PRESETS["video"].height) == (640, 480)


# ---------------------------------------------------------------------------------------------------- lifetime
def test_close_is_idempotent_and_render_after_close_fails(face):
    r = MirrorRenderer(face, "obs")
    assert r.render().shape == (128, 128, 3)
    r.close()
    r.close()  # second close: no error
    with pytest.raises(RuntimeError, match="after close"):
        r.render()
    # projecting needs no GL context
    assert r.project_landmarks().shape == (face.n_landmarks, 2)


def test_context_manager_closes_the_renderer_even_on_error(face):
    with MirrorRenderer(face, "obs") as r:
        img = r.render()
        assert img.shape == (128, 128, 3)
    with pytest.raises(RuntimeError, match="after close"):
        r.render()
    r.close()

    with pytest.raises(ZeroDivisionError):
        with MirrorRenderer(face, "obs") as r2:
            1 / 0
    with pytest.raises(RuntimeError, match="after close"):
        r2.render()
