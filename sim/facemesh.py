"""The MediaPipe FaceMesh adapter that the twin's landmark schema is built on (:mod:`facetwin.sim.landmarks` uses
FaceMesh ids): the detector itself (the ``vision`` extra), its point count, and the similarity transform that
aligns a face's points onto another's. A human video (:mod:`facetwin.agents.human_video`) and the robot's camera
(:mod:`facetwin.hardware.camera`) both read faces through it.

| name | what |
|---|---|
| :data:`N_FACEMESH` | 478 points per face (468 + 10 iris points, ``refine_landmarks=True``) |
| :func:`facemesh` | a FaceMesh detector (needs mediapipe: :data:`VISION_HINT` says how to install it) |
| :func:`similarity_to` | per frame the Umeyama similarity (scale, rotation, translation) of points onto a reference |
"""

from __future__ import annotations

import numpy as np

N_FACEMESH = 478  # FaceMesh landmarks with refine_landmarks=True (468 + 10 iris points)
VISION_HINT = 'pip install "facetwin[vision]"  (mediapipe 0.10.21: Python 3.9-3.12, numpy<2)'


def mediapipe_module():
    """The mediapipe module, or an ImportError that says how to install it."""
    try:
        import mediapipe
    except ImportError as e:
        raise ImportError(f"reading faces from video needs mediapipe: {VISION_HINT}") from e
    return mediapipe


def facemesh(static: bool, min_confidence: float):
    """A MediaPipe FaceMesh: one face, refined landmarks (478 points); ``static``: detect anew in every image."""
    return mediapipe_module().solutions.face_mesh.FaceMesh(
        static_image_mode=static, max_num_faces=1, refine_landmarks=True,
        min_detection_confidence=min_confidence, min_tracking_confidence=min_confidence,
    )


def similarity_to(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame the similarity ``dst ~ s R src + t`` (Umeyama) of src (n, k, 3) onto dst (k, 3): s (n,), R, t."""
    mu_s, mu_d = src.mean(axis=1), dst.mean(axis=0)
    a, b = src - mu_s[:, None], dst - mu_d
    cov = np.einsum("ki,nkj->nij", b, a) / src.shape[1]
    u, sv, vt = np.linalg.svd(cov)
    d = np.ones((len(src), 3))
    d[:, 2] = np.sign(np.linalg.det(u) * np.linalg.det(vt))
    rot = np.einsum("nij,nj,njk->nik", u, d, vt)
    var = (a**2).sum(axis=(1, 2)) / src.shape[1]
    s = (sv * d).sum(axis=1) / var
    t = mu_d - s[:, None] * np.einsum("nij,nj->ni", rot, mu_s)
    return s, rot, t


__all__ = ["N_FACEMESH", "VISION_HINT", "facemesh", "mediapipe_module", "similarity_to"]
