"""The robot's eye: a camera (OpenCV capture) + MediaPipe FaceMesh -> the twin's 69 landmarks, in mm, head frame.

Calibration and closed-loop policies compare the real face with the twin in one schema
(:mod:`facetwin.sim.landmarks`: 69 MediaPipe ids, millimetres, head frame +x forward, +y the face's left, +z up).
:class:`FaceMeshCamera` gives them from a live camera or a video file, frame by frame:

| step | what |
|---|---|
| capture | ``cv2.VideoCapture(source)``: a device index (``0``) or a video path; BGR -> RGB; ``mirrored=True`` flips each frame back first (a selfie / mirror view, see :mod:`facetwin.agents.human_video`) |
| FaceMesh | tracking mode, one face, refined landmarks (478 points; the iris points 468 and 473 are in the schema), as :func:`facetwin.agents.human_video.extract_lip_track`; pixels, z in the units of x |
| head pose out | the similarity transform (Umeyama, :func:`facetwin.sim.facemesh.similarity_to`: rotation, scale, translation) that maps the frame's skull landmarks (:data:`ANCHOR_IDS`: forehead, nose bridge and tip, eye corners) onto the twin's neutral ones, applied to all 69 points: head motion and distance drop out, and the units become the twin's millimetres |
| rest (optional) | after :meth:`FaceMeshCamera.set_rest` (the median of the next frames of a face at rest), ``read`` returns ``twin neutral + (aligned - aligned rest)``: the person's (or robot's) own geometry drops out and only motion remains, the neutral face reads exactly as the twin's |

Needs the ``vision`` extra (``pip install -e ".[vision]"``: mediapipe 0.10.21 with its model in the wheel, and the
OpenCV it depends on); a missing one is an ``ImportError`` that names it.

| method | returns |
|---|---|
| ``read()`` | ``(69, 3)`` float64 landmarks (mm, head frame, schema order), ``None`` when FaceMesh finds no face, ``EOFError`` at the end of a video |
| ``read_raw()`` | ``(478, 3)`` FaceMesh points in pixels of the (un-mirrored) frame, or ``None`` |
| ``set_rest(frames=15)`` | reads up to ``frames`` frames, keeps the median aligned face as the rest; the number of frames with a face |
| ``fps``, ``size`` | the capture's frame rate and (width, height) |

>>> with FaceMeshCamera(0) as cam:                         # the robot's camera
...     cam.set_rest()                                      # the face at rest, ~0.5 s
...     lm = cam.read()                                     # (69, 3) mm or None
...     mouth_measures(lm, cam.neutral_mm)["aperture_mm"]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facetwin.sim.facemesh import N_FACEMESH, VISION_HINT, facemesh, similarity_to
from facetwin.sim.landmarks import landmark_ids

#: skull landmarks (in the twin's schema) that fix the head pose: forehead, nose bridge, nose tip, subnasale, the
#: four eye corners. They move with the head, not with the mouth, brows or lids.
ANCHOR_IDS = (10, 168, 1, 2, 33, 133, 362, 263)


def twin_neutral_mm(variant: str = "fast") -> np.ndarray:
    """(69, 3) the twin's neutral landmarks (mm, head frame, schema order), computed once per variant."""
    if variant not in _NEUTRAL:
        from facetwin.sim.model import FaceModel

        _NEUTRAL[variant] = FaceModel.load(variant).neutral_landmarks_mm.copy()
    return _NEUTRAL[variant].copy()


_NEUTRAL: dict[str, np.ndarray] = {}


def to_twin_mm(points_px: np.ndarray, neutral_mm: np.ndarray) -> np.ndarray:
    """(69, 3) schema landmarks in the twin's head frame (mm) from 478 FaceMesh points (pixels; x right, y down, z
    away): the similarity of the :data:`ANCHOR_IDS` onto ``neutral_mm``'s, applied to the schema points."""
    p = np.asarray(points_px, dtype=float)
    if p.shape != (N_FACEMESH, 3):
        raise ValueError(f"points_px must be ({N_FACEMESH}, 3) FaceMesh points, got {p.shape}")
    ids = landmark_ids()
    # image axes -> a frontal head's axes (x forward = -z, y left = image right, z up = -y): a proper rotation, so the
    # similarity below only has to take out the head's own pose
    head = np.stack([-p[:, 2], p[:, 0], -p[:, 1]], axis=1)[ids]
    anchors = [list(ids).index(i) for i in ANCHOR_IDS]
    s, rot, t = similarity_to(head[None, anchors], np.asarray(neutral_mm, dtype=float)[anchors])
    return s[0] * head @ rot[0].T + t[0]


class FaceMeshCamera:
    """OpenCV capture + FaceMesh -> twin landmarks (see the module docstring). ``source``: a camera index or a
    video path; ``variant``: the twin whose neutral face sets the scale and the rest."""

    def __init__(self, source: int | str | Path = 0, *, mirrored: bool = False, min_confidence: float = 0.5,
                 variant: str = "fast") -> None:
        try:
            import cv2
        except ImportError as e:
            raise ImportError(f"the camera needs OpenCV: {VISION_HINT}") from e
        if not 0.0 < min_confidence < 1.0:
            raise ValueError(f"min_confidence must be in (0, 1), got {min_confidence}")
        if isinstance(source, (str, Path)) and not Path(source).is_file():
            raise FileNotFoundError(f"video {source} not found")
        self._cv2 = cv2
        self.mirrored = bool(mirrored)
        self.neutral_mm = twin_neutral_mm(variant)
        self._mesh = facemesh(False, min_confidence)
        self._cap = cv2.VideoCapture(str(source) if isinstance(source, Path) else source)
        if not self._cap.isOpened():
            self._mesh.close()
            raise OSError(f"cannot open camera / video {source!r}")
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.rest_mm: np.ndarray | None = None  # the aligned rest face, once set_rest() saw one

    def __enter__(self) -> FaceMeshCamera:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._mesh.close()
            self._cap = None

    def read_raw(self) -> np.ndarray | None:
        """(478, 3) FaceMesh points of the next frame in pixels, or None without a face; EOFError past the end."""
        if self._cap is None:
            raise RuntimeError("the camera is closed")
        ok, bgr = self._cap.read()
        if not ok:
            raise EOFError("no more frames (end of the video, or the camera stopped)")
        rgb = self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2RGB)
        if self.mirrored:
            rgb = rgb[:, ::-1]
        faces = self._mesh.process(np.ascontiguousarray(rgb)).multi_face_landmarks
        if not faces:
            return None
        h, w = rgb.shape[:2]
        p = np.array([(q.x, q.y, q.z) for q in faces[0].landmark], dtype=np.float64)
        return p[:N_FACEMESH] * np.array([w, h, w], dtype=np.float64)

    def _aligned(self) -> np.ndarray | None:
        raw = self.read_raw()
        return None if raw is None else to_twin_mm(raw, self.neutral_mm)

    def read(self) -> np.ndarray | None:
        """(69, 3) landmarks of the next frame (mm, head frame, schema order), or None without a face."""
        lm = self._aligned()
        if lm is None or self.rest_mm is None:
            return lm
        return self.neutral_mm + (lm - self.rest_mm)

    def set_rest(self, frames: int = 15) -> int:
        """Read up to ``frames`` frames of the face at rest; their median aligned face becomes the rest. Returns
        how many had a face (ValueError when none did)."""
        seen = []
        for _ in range(int(frames)):
            lm = self._aligned()
            if lm is not None:
                seen.append(lm)
        if not seen:
            raise ValueError(f"set_rest: no face in {frames} frames")
        self.rest_mm = np.median(np.stack(seen), axis=0)
        return len(seen)


__all__ = ["ANCHOR_IDS", "FaceMeshCamera", "to_twin_mm", "twin_neutral_mm"]
