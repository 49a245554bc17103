"""Learning lip shapes from people: MediaPipe FaceMesh on a video, retargeted onto the twin's lips, as a corpus item.

The physical robot learned its lip shapes from videos of people talking and singing. This module does the same for
the twin in three steps:

1. :func:`extract_lip_track` runs MediaPipe FaceMesh (tracking mode, ``refine_landmarks=True``, one face) on every
   frame of a video and keeps the 478 landmarks in image units (:class:`VideoLips`).
2. :func:`retarget` turns them into twin lip targets on the 30 fps control grid: the displacement of each of the 40
   lip landmarks from the person's rest face, in mm, in the twin's head frame, scaled (0.9) and clipped to the
   twin's range, as the robot did.
3. :func:`ingest_video` writes audio + features + the retargeted lip track as one item of a facetwin corpus (the
   layout of :mod:`facetwin.audio.corpus`, ``kind`` ``"video"``, split ``"train"``), which
   :class:`facetwin.envs.lip_sync.LipSyncEnv` plays like any other item (``LipSyncEnv(corpus_dir=...)``).

MediaPipe is an optional dependency (``pip install "facetwin[vision]"``; mediapipe 0.10.21 ships the FaceMesh model
in its wheel, works offline, needs ``numpy<2`` and Python 3.9-3.12); it is imported only by
:func:`extract_lip_track`.

Retargeting (:func:`retarget`)
    | step | what |
    |---|---|
    | head pose | every frame is aligned to a reference face (the frame whose stable landmarks are nearest their median over the video) by the similarity transform (rotation, scale, translation; Umeyama) that best maps its stable landmarks (:data:`STABLE_IDS`: forehead, nose, eye corners, face sides) onto the reference's: head motion and distance to the camera drop out, lip and jaw motion stay |
    | rest face | the per-landmark median of the aligned frames whose aperture (inner lips 13-14 over mouth width) is in the lowest ``rest_quantile`` (0.2): the mouth at rest, closed |
    | axes | image frame: x right, y down, z away from the camera (MediaPipe's z, in the same units as x). Head frame: y (the person's left) along the rest face's eye line (outer corners 33 -> 263), z (up) the image's up made orthogonal to it, x (forward, towards the camera) = y x z. A frontal face gives head ``(x, y, z) = (-z_img, x_img, -y_img)`` |
    | units | mm per image unit = the twin's neutral mouth width (:func:`facetwin.audio.lip_track.neutral_measures`, 50 mm) / the rest face's mouth width (61-291) |
    | displacement | ``scale`` (0.9) x (aligned lip landmarks - rest lip landmarks), in the head frame, mm |
    | aperture | ``absolute_aperture=True`` (default): the inner lips are shifted by a constant (the vertical profile of :func:`facetwin.audio.lip_track.lip_displacements`) so that the twin's midline aperture is ``scale`` x the person's own aperture. A person's lips at rest are closed while the twin's neutral lips are 2 mm apart: without it a closed mouth would map to the twin's neutral 2 mm and never to a seal |
    | range | every coordinate clipped to +-``clip_mm`` (15 mm, the range of the twin's lip landmarks) |
    | time | video frame ``i`` is at ``i / video_fps`` s; the 30 fps frame ``k`` (``k / fps`` s) is linearly interpolated between the frames with a face (frames without one are bridged, the ends held) |

The mirror flip. MediaPipe labels landmarks as in a camera's view of a person: id 61 (the person's right mouth
corner) on the image's left. A mirrored video (a selfie preview, or :class:`facetwin.sim.render.MirrorRenderer`'s
default ``mirror=True`` image) shows the person's right on the image's right; FaceMesh then still puts id 61 on the
image's left, i.e. on the person's *left* corner, and left-right asymmetric motion comes out swapped. Pass
``mirrored=True`` for such videos: each frame is flipped back before FaceMesh, so landmarks, ids and the head frame
(y = image right = the person's left) agree. Ordinary camera videos need nothing.

:class:`VideoLips` (per video frame ``i``, ``F`` frames)

| field | shape, dtype | content |
|---|---|---|
| ``fps`` | float | the video's frame rate |
| ``width``, ``height`` | int | frame size, pixels |
| ``found`` | (F,) bool | FaceMesh found a face |
| ``landmarks_px`` | (F, 478, 3) float32 | FaceMesh landmarks in pixels of the (un-mirrored) frame: x right, y down, z depth (same scale as x, smaller = nearer the camera); NaN where no face |
| ``mirrored`` | bool | the frames were flipped before FaceMesh |
| ``source`` | str | the video's path |

:func:`retarget` result (``T`` frames at ``fps``)

| key | shape, dtype | content |
|---|---|---|
| ``fps`` | float | 30 |
| ``t`` | (T,) float64 | frame times, ``k / fps`` |
| ``lip_landmarks_mm`` | (T, 40, 3) float64 | twin lip targets: displacement from the twin's neutral lips, head frame, mm (``lip_landmark_ids`` order) |
| ``lip_landmark_ids`` | (40,) int64 | MediaPipe ids |
| ``aperture_mm``, ``width_mm``, ``protrusion_mm`` | (T,) float64 | :func:`facetwin.audio.lip_track.measures_from_landmarks` of the targets |
| ``closure`` | (T,) bool | ``aperture_mm <= 1`` (lips sealed) |
| ``rounded`` | (T,) bool | ``width_mm <= 0.9`` x the twin's neutral width |
| ``observed`` | (T,) bool | the video frame nearest ``t_k`` had a face (else the frame is interpolated) |
| ``mm_per_px`` | float | the person's scale |
| ``rest_frames`` | (R,) int64 | video frames that made the rest face |

:func:`ingest_video` writes ``<corpus>/audio/<id>.wav`` (16 kHz mono, the video's audio decoded by the ffmpeg of
imageio-ffmpeg), ``<corpus>/data/<id>.npz`` (exactly :data:`facetwin.audio.corpus.CORPUS_NPZ_KEYS`; the phoneme
timeline is the forced alignment of ``text`` for English, else empty; ``viseme`` comes from that timeline's lip
track, "" without one) and adds the item to ``manifest.json`` (created if missing), every file atomically.

>>> vl = extract_lip_track("talk.mp4")                         # needs mediapipe
>>> vl.found.mean(), vl.landmarks_px.shape                      # (0.99, (F, 478, 3))
>>> lips = retarget(vl)                                         # lips["lip_landmarks_mm"]: (T, 40, 3)
>>> item = ingest_video("talk.mp4", "my_corpus", text="Hello there.")
>>> env = LipSyncEnv(corpus_dir="my_corpus", split="train")   # plays it

CLI: ``facetwin ingest-video VIDEO [--text ...] [--lang CODE] [--corpus DIR]`` (:func:`add_ingest_arguments`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin.audio.corpus import CORPUS_FPS, CORPUS_NPZ_KEYS, CORPUS_SR, CORPUS_VERSION, feature_arrays
from facetwin.audio.lip_track import lip_displacements, measures_from_landmarks, neutral_measures
from facetwin.files import atomic_write
from facetwin.sim.facemesh import N_FACEMESH, facemesh, mediapipe_module, similarity_to
from facetwin.sim.landmarks import lip_landmark_ids

#: landmarks that move with the skull, not with the lips, jaw, cheeks or brows: forehead, nose ridge and tip, eye
#: corners, the sides of the face at the ears
STABLE_IDS = np.array([10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 33, 133, 362, 263, 234, 454, 127, 356])
EYE_OUTER_R, EYE_OUTER_L = 33, 263  # the person's right / left outer eye corner
UPPER_INNER, LOWER_INNER = 13, 14
CORNER_R, CORNER_L = 61, 291
CLOSURE_MM = 1.0  # aperture at or below which the lips count as sealed (as LipSyncEnv)
ROUNDED_WIDTH = 0.9  # width at or below this fraction of the neutral width counts as rounded
DEFAULT_CLIP_MM = 15.0


# ---------------------------------------------------------------------------------------------------- extraction
@dataclass
class VideoLips:
    """FaceMesh landmarks of every frame of a video (see the module doc for the layout)."""

    fps: float
    width: int
    height: int
    found: np.ndarray  # (F,) bool
    landmarks_px: np.ndarray  # (F, 478, 3) float32, NaN where no face
    mirrored: bool = False
    source: str = ""

    def __len__(self) -> int:
        return len(self.found)

    @property
    def t(self) -> np.ndarray:
        """(F,) frame times in seconds (constant frame rate)."""
        return np.arange(len(self)) / self.fps

    @property
    def duration_s(self) -> float:
        return len(self) / self.fps

    @property
    def found_fraction(self) -> float:
        return float(self.found.mean()) if len(self) else 0.0

    def lips_px(self) -> np.ndarray:
        """(F, 40, 3) the 40 lip landmarks (``lip_landmark_ids`` order)."""
        return self.landmarks_px[:, lip_landmark_ids()]


def _open_video(path: Path):
    """imageio-ffmpeg's RGB frame generator and its metadata; ValueError when ffmpeg reads no video from it."""
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        meta = next(gen)
    except (OSError, RuntimeError, StopIteration) as e:
        raise ValueError(f"{path}: not a readable video (ffmpeg could not open it)") from e
    w, h = (int(v) for v in meta.get("size") or (0, 0))
    fps = float(meta.get("fps") or 0.0)
    if w <= 0 or h <= 0 or not math.isfinite(fps) or fps <= 0:
        gen.close()
        raise ValueError(f"{path}: no video stream (size {w}x{h}, {fps:g} fps)")
    return gen, meta, w, h, fps


def extract_lip_track(
    video_path: str | Path,
    *,
    mirrored: bool = False,
    static_image_mode: bool = False,
    min_confidence: float = 0.5,
    progress: bool = True,
) -> VideoLips:
    """FaceMesh landmarks of every frame of ``video_path`` (any format the ffmpeg of imageio-ffmpeg reads).

    ``mirrored=True`` flips each frame left-right before FaceMesh (for mirrored videos: see the module doc).
    ``static_image_mode=True`` detects the face anew in every frame (slower; default: MediaPipe's tracking mode).
    Raises ``ImportError`` naming the ``vision`` extra when mediapipe is missing, ``FileNotFoundError`` for a missing
    file and ``ValueError`` for a file without a video stream or without any frame.
    """
    path = Path(video_path)
    if not path.is_file():
        raise FileNotFoundError(f"video {path} not found")
    if not 0.0 < min_confidence < 1.0:
        raise ValueError(f"min_confidence must be in (0, 1), got {min_confidence}")
    mesh = facemesh(static_image_mode, min_confidence)
    gen, meta, w, h, fps = _open_video(path)
    from tqdm import tqdm

    duration = meta.get("duration")
    total = round(float(duration) * fps) if duration else None
    found: list[bool] = []
    lms: list[np.ndarray] = []
    scale = np.array([w, h, w], dtype=np.float64)  # FaceMesh: x / width, y / height, z in units of x
    try:
        for raw in tqdm(gen, total=total, desc="facemesh", unit="frame", disable=not progress):
            if len(raw) != w * h * 3:
                raise ValueError(f"{path}: frame {len(found)} has {len(raw)} bytes, expected {w}x{h}x3")
            img = np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3)
            if mirrored:
                img = img[:, ::-1]
            res = mesh.process(np.ascontiguousarray(img))
            faces = res.multi_face_landmarks
            if faces:
                p = np.array([(q.x, q.y, q.z) for q in faces[0].landmark], dtype=np.float64)
                lms.append((p[:N_FACEMESH] * scale).astype(np.float32))
                found.append(True)
            else:
                lms.append(np.full((N_FACEMESH, 3), np.nan, dtype=np.float32))
                found.append(False)
    finally:
        gen.close()
        mesh.close()
    if not found:
        raise ValueError(f"{path}: the video has no frames")
    return VideoLips(
        fps=fps, width=w, height=h, found=np.array(found, dtype=bool), landmarks_px=np.stack(lms),
        mirrored=bool(mirrored), source=str(path),
    )


# ---------------------------------------------------------------------------------------------------- retargeting
def _head_axes(rest: np.ndarray) -> np.ndarray:
    """3x3 rows (x forward, y left, z up of the person) in image coordinates, from the rest face (see module doc)."""
    y = rest[EYE_OUTER_L] - rest[EYE_OUTER_R]
    y = y / np.linalg.norm(y)
    up = np.array([0.0, -1.0, 0.0])
    z = up - (up @ y) * y
    z = z / np.linalg.norm(z)
    return np.stack([np.cross(y, z), y, z])


def _checked_landmarks(vlips: VideoLips, scale: float, fps: float, clip_mm: float,
                       rest_quantile: float) -> tuple[np.ndarray, np.ndarray]:
    """``(landmarks (F, 478, 3), frames with a face (F,))`` of ``vlips``, once :func:`retarget`'s arguments are
    checked; ``ValueError`` for a bad one or a video in which no face was found."""
    if not isinstance(vlips, VideoLips):
        raise ValueError(f"retarget needs a VideoLips (from extract_lip_track), got {type(vlips).__name__}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale}")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, got {fps}")
    if not (math.isfinite(clip_mm) and clip_mm > 0):
        raise ValueError(f"clip_mm must be positive, got {clip_mm}")
    if not 0.0 < rest_quantile <= 1.0:
        raise ValueError(f"rest_quantile must be in (0, 1], got {rest_quantile}")
    lm = np.asarray(vlips.landmarks_px, dtype=np.float64)
    found = np.asarray(vlips.found, dtype=bool)
    if lm.ndim != 3 or lm.shape[1:] != (N_FACEMESH, 3) or found.shape != lm.shape[:1]:
        raise ValueError(f"VideoLips needs landmarks_px (F, {N_FACEMESH}, 3) and found (F,), got {lm.shape}, "
                         f"{found.shape}")
    found = found & np.isfinite(lm).all(axis=(1, 2))
    if not found.any():
        raise ValueError(f"no face found in any of the {len(found)} frames of {vlips.source or 'the video'}")
    return lm, found


def _remove_head_pose(lm: np.ndarray, found: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(indices of the frames with a face, their landmarks aligned to the reference face)``: every frame onto the
    frame nearest the median face, through its stable landmarks (module doc)."""
    idx = np.flatnonzero(found)
    pts = lm[idx]
    med = np.median(pts[:, STABLE_IDS], axis=0)
    ref = pts[int(np.argmin(((pts[:, STABLE_IDS] - med) ** 2).sum(axis=(1, 2))))]
    s, rot, t = similarity_to(pts[:, STABLE_IDS], ref[STABLE_IDS])
    return idx, s[:, None, None] * np.einsum("nij,nkj->nki", rot, pts) + t[:, None, :]


def _rest_face(aligned: np.ndarray, rest_quantile: float) -> tuple[np.ndarray, np.ndarray]:
    """``(the rest face, which aligned frames it is the median of)``: the most closed mouths."""
    width_px = np.linalg.norm(aligned[:, CORNER_L] - aligned[:, CORNER_R], axis=1)
    gap = np.linalg.norm(aligned[:, LOWER_INNER] - aligned[:, UPPER_INNER], axis=1) / width_px
    cut = np.quantile(gap, rest_quantile)
    rest_sel = gap <= cut
    return np.median(aligned[rest_sel], axis=0), rest_sel


def _head_frame_lips(aligned: np.ndarray, rest: np.ndarray, *, scale: float, clip_mm: float,
                     absolute_aperture: bool) -> tuple[np.ndarray, float]:
    """``(lip targets (n, 40, 3), mm per image unit)``: the lips' displacement from the rest face in the head frame,
    in mm, scaled, with the person's aperture (``absolute_aperture``) and clipped to +-``clip_mm`` (module doc)."""
    axes = _head_axes(rest)
    rest_width = float(np.linalg.norm(rest[CORNER_L] - rest[CORNER_R]))
    if not rest_width > 0:
        raise ValueError("the rest face has zero mouth width: FaceMesh output is degenerate")
    width_mm = neutral_measures()["width_mm"]
    mm_per_px = width_mm / rest_width
    ids = lip_landmark_ids()
    lips = (aligned[:, ids] - rest[ids]) @ axes.T * (mm_per_px * scale)  # (n, 40, 3) head frame, mm
    if absolute_aperture:
        rest_head = rest @ axes.T
        person_rest_ap = float(rest_head[UPPER_INNER, 2] - rest_head[LOWER_INNER, 2]) * mm_per_px
        lips = lips + lip_displacements(scale * max(person_rest_ap, 0.0), width_mm, 0.0)
    return np.clip(lips, -clip_mm, clip_mm), mm_per_px


def _onto_grid(lips: np.ndarray, t_video: np.ndarray, t_grid: np.ndarray) -> np.ndarray:
    """``lips`` (n, 40, 3) at the times ``t_video``, linearly interpolated at ``t_grid`` (the ends held)."""
    flat = lips.reshape(len(t_video), -1)
    out = np.empty((len(t_grid), flat.shape[1]))
    for j in range(flat.shape[1]):
        out[:, j] = np.interp(t_grid, t_video, flat[:, j])
    return out.reshape(len(t_grid), lips.shape[1], 3)


def retarget(
    vlips: VideoLips,
    *,
    scale: float = 0.9,
    fps: float = CORPUS_FPS,
    n_frames: int | None = None,
    clip_mm: float = DEFAULT_CLIP_MM,
    rest_quantile: float = 0.2,
    absolute_aperture: bool = True,
) -> dict:
    """Twin lip targets on the ``fps`` grid from a person's FaceMesh landmarks (method and result: module doc).

    ``n_frames`` fixes the number of output frames (default ``ceil(video duration * fps)``); frames past the video
    hold its last value. Raises ``ValueError`` for bad arguments or a video in which no face was found.
    """
    lm, found = _checked_landmarks(vlips, scale, fps, clip_mm, rest_quantile)
    T = math.ceil(len(found) / vlips.fps * fps - 1e-9) if n_frames is None else int(n_frames)
    if T < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    idx, aligned = _remove_head_pose(lm, found)
    rest, rest_sel = _rest_face(aligned, rest_quantile)
    lips, mm_per_px = _head_frame_lips(aligned, rest, scale=scale, clip_mm=clip_mm,
                                       absolute_aperture=absolute_aperture)
    tk = np.arange(T) / fps
    out = _onto_grid(lips, idx / vlips.fps, tk)
    near = np.clip(np.rint(tk * vlips.fps).astype(int), 0, len(found) - 1)
    m = measures_from_landmarks(out)
    return {
        "fps": float(fps),
        "t": tk,
        "lip_landmarks_mm": out,
        "lip_landmark_ids": lip_landmark_ids().astype(np.int64),
        "aperture_mm": m["aperture_mm"],
        "width_mm": m["width_mm"],
        "protrusion_mm": m["protrusion_mm"],
        "closure": m["aperture_mm"] <= CLOSURE_MM,
        "rounded": m["width_mm"] <= ROUNDED_WIDTH * neutral_measures()["width_mm"],
        "observed": found[near],
        "mm_per_px": float(mm_per_px),
        "rest_frames": idx[rest_sel].astype(np.int64),
    }


# ---------------------------------------------------------------------------------------------------- corpus item
def _savez(path: str, arrays: dict) -> None:
    with open(path, "wb") as f:  # a file object: numpy would append ".npz" to a name without it
        np.savez_compressed(f, **arrays)


def _clip_id(video: Path) -> str:
    cid = re.sub(r"[^A-Za-z0-9_.-]+", "_", video.stem).strip("._")
    return f"video_{cid or 'clip'}"


def _read_manifest(path: Path) -> dict:
    if not path.exists():
        return {
            "version": CORPUS_VERSION, "fps": CORPUS_FPS, "sr": CORPUS_SR, "seed": None, "languages": [],
            "heldout_languages": [], "npz_keys": CORPUS_NPZ_KEYS, "splits": {}, "items": [], "total_duration_s": 0.0,
        }
    from facetwin.audio.corpus import read_manifest

    m = read_manifest(path.parent)
    if float(m.get("fps", -1)) != CORPUS_FPS or int(m.get("sr", -1)) != CORPUS_SR:
        raise ValueError(f"{path}: corpus at {m.get('fps')} fps / {m.get('sr')} Hz; ingest-video writes "
                         f"{CORPUS_FPS:g} fps / {CORPUS_SR} Hz")
    return m


def _item_arrays(video: Path, audio16: np.ndarray, text: str, lang: str, *, mirrored: bool, scale: float,
                 progress: bool) -> tuple[dict, VideoLips, dict]:
    """``(the item's arrays (CORPUS_NPZ_KEYS), the video's FaceMesh landmarks, their retargeted lips)``: features of
    ``audio16``, the phoneme timeline (``text`` force-aligned when ``lang`` is "en"), lips on the features' grid."""
    from facetwin.audio.features import extract_features
    from facetwin.audio.lip_track import lip_track
    from facetwin.audio.timeline import Timeline

    feats = extract_features(audio16, CORPUS_SR, fps=CORPUS_FPS)
    T = len(feats.t)
    if text and lang == "en":
        from facetwin.audio.align import align

        timeline = align(audio16, CORPUS_SR, text)
    else:
        timeline = Timeline([])
    vlips = extract_lip_track(video, mirrored=mirrored, progress=progress)
    lips = retarget(vlips, scale=scale, fps=CORPUS_FPS, n_frames=T)
    if len(timeline):
        viseme = np.asarray(lip_track(timeline, fps=CORPUS_FPS, duration=T / CORPUS_FPS).viseme, dtype=str)
        phoneme = np.asarray(timeline.labels_at(feats.t), dtype=str)
    else:
        viseme = phoneme = np.full(T, "", dtype=str)
    arrays = {
        **feature_arrays(feats),
        "aperture_mm": lips["aperture_mm"].astype(np.float32),
        "width_mm": lips["width_mm"].astype(np.float32),
        "protrusion_mm": lips["protrusion_mm"].astype(np.float32),
        "lip_landmarks_mm": lips["lip_landmarks_mm"].astype(np.float32),
        "lip_landmark_ids": lips["lip_landmark_ids"],
        "closure": lips["closure"],
        "rounded": lips["rounded"],
        "viseme": viseme,
        "phoneme": phoneme,
        **timeline.to_arrays(),
    }
    return arrays, vlips, lips


def _write_manifest(manifest_path: Path, manifest: dict, item: dict) -> None:
    """``manifest`` with ``item`` added (or replacing the item of its id), its splits, languages and duration
    brought up to date, written atomically to ``manifest_path``."""
    items = sorted([it for it in manifest["items"] if it.get("id") != item["id"]] + [item], key=lambda it: it["id"])
    split_names = list(dict.fromkeys(["train", "heldout_sentence", "heldout_language", *manifest["splits"]]))
    manifest["items"] = items
    manifest["splits"] = {s: [it["id"] for it in items if it.get("split") == s] for s in split_names}
    lang = item["lang"]
    if lang and lang not in manifest["languages"]:
        manifest["languages"] = [*manifest["languages"], lang]
    manifest["total_duration_s"] = round(sum(float(it.get("duration_s", 0.0)) for it in items), 3)
    body = json.dumps(manifest, ensure_ascii=False, indent=1)
    atomic_write(manifest_path, lambda p: Path(p).write_text(body, encoding="utf-8"))


def ingest_video(
    video_path: str | Path,
    corpus_dir: str | Path,
    *,
    text: str | None = None,
    lang: str | None = None,
    clip_id: str | None = None,
    mirrored: bool = False,
    scale: float = 0.9,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Add ``video_path`` (a person, or anything with a face, talking or singing) to the corpus ``corpus_dir``.

    Writes ``audio/<id>.wav``, ``data/<id>.npz`` (``CORPUS_NPZ_KEYS``) and the manifest entry (``kind`` "video",
    split "train"); returns the manifest item. ``text``: what is said; with ``lang`` "en" (the default when
    ``text`` is given) it is force-aligned to the audio for the phoneme timeline, in other languages it is only
    stored. ``clip_id`` defaults to ``video_<file stem>``; an existing id raises ``ValueError`` unless
    ``overwrite``. ``mirrored`` and ``scale``: see :func:`extract_lip_track` and :func:`retarget`.
    """
    from facetwin.audio.io import load_audio, save_wav

    video = Path(video_path)
    if not video.is_file():
        raise FileNotFoundError(f"video {video} not found")
    mediapipe_module()  # fail before any work when it is missing
    text = (text or "").strip()
    lang = (lang or ("en" if text else "")).strip().lower()
    cid = clip_id if clip_id is not None else _clip_id(video)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", cid):
        raise ValueError(f"clip id {cid!r}: use letters, digits, '_', '-' and '.' (starting with a letter or digit)")
    out = Path(corpus_dir)
    manifest_path = out / "manifest.json"
    manifest = _read_manifest(manifest_path)
    if not overwrite and any(it.get("id") == cid for it in manifest["items"]):
        raise ValueError(f"{out}: the corpus already has an item {cid!r}; pass overwrite=True (--overwrite) or "
                         "another clip id")

    audio16 = load_audio(video, sr=CORPUS_SR).astype(np.float32)
    arrays, vlips, lips = _item_arrays(video, audio16, text, lang, mirrored=mirrored, scale=scale, progress=progress)
    wav_rel, npz_rel = f"audio/{cid}.wav", f"data/{cid}.npz"
    atomic_write(out / wav_rel, lambda p: save_wav(p, audio16, CORPUS_SR))
    atomic_write(out / npz_rel, lambda p: _savez(p, arrays))
    item = {
        "id": cid, "kind": "video", "lang": lang, "text": text, "sentence": f"video:{cid}", "split": "train",
        "duration_s": round(len(audio16) / CORPUS_SR, 4), "n_frames": len(lips["t"]), "rate_wpm": None,
        "pitch": None, "audio": wav_rel, "data": npz_rel, "source": video.name, "video_fps": round(vlips.fps, 4),
        "face_found": round(vlips.found_fraction, 4), "mm_per_px": round(lips["mm_per_px"], 5),
    }
    _write_manifest(manifest_path, manifest, item)
    return item


__all__ = [
    "STABLE_IDS",
    "VideoLips",
    "extract_lip_track",
    "ingest_video",
    "retarget",
]
