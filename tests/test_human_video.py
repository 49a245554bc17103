"""Learning from video: retargeting (exact, on a synthetic person) and MediaPipe on a video of the twin speaking.

The MediaPipe tests film the twin saying a sentence (scripted lip-sync commands, camera view at the "video" preset,
mp4 with the speech as AAC), run FaceMesh and the retargeting on it, and compare the recovered mouth with what the
face really did. They need the optional ``vision`` extra (mediapipe 0.10.21, numpy<2).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pytest
import torch

from facetwin.agents.human_video import STABLE_IDS, VideoLips, extract_lip_track, ingest_video, retarget
from facetwin.audio.corpus import CORPUS_NPZ_KEYS, CORPUS_VERSION, load_item
from facetwin.audio.lip_track import lip_displacements, neutral_measures
from facetwin.cli.learning import add_ingest_arguments, main_ingest
from facetwin.sim.landmarks import lip_landmark_ids, neutral_lip_landmarks_mm

torch.set_num_threads(1)

SENTENCE = "Bob and Mary met my mom by the pool."


# ---------------------------------------------------------------------------------------------- synthetic person
NEUTRAL_W = neutral_measures()["width_mm"]  # the twin's neutral mouth width (61-291)


def _synthetic_person(n: int = 50, video_fps: float = 25.0, seed: int = 0):
    """VideoLips of a 'person' whose lips are the twin's lip model, filmed at 2 px/mm with head roll, zoom and
    translation, and the per-frame truth (aperture, width, protrusion in mm)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / video_fps
    ap = 2.5 + 4.5 * (1.0 + np.sin(2 * np.pi * 1.3 * t))  # 2.5 .. 11.5 mm; the rest face has 2 mm
    width = NEUTRAL_W + 8.0 * np.sin(2 * np.pi * 0.7 * t)
    prot = 2.0 * np.clip(np.sin(2 * np.pi * 0.5 * t + 1.0), 0.0, None)
    ap[:12] = 2.0  # a rest stretch: the most closed frames are the neutral face
    width[:12], prot[:12] = NEUTRAL_W, 0.0
    k = 2.0  # px per mm

    def to_img(head_mm):  # camera view: image x = head y, image y = -head z, image z = -head x
        return np.stack([head_mm[..., 1] * k, -head_mm[..., 2] * k, -head_mm[..., 0] * k], axis=-1)

    face = rng.uniform([-60, -80, -20], [60, 60, 20], size=(478, 3))  # rigid points (nose, forehead ...)
    face[33], face[263] = (-35.0, -40.0, 0.0), (35.0, -40.0, 0.0)  # outer eye corners, level
    lips_head = neutral_lip_landmarks_mm()[None] + lip_displacements(ap, width, prot)  # (n, 40, 3)
    lms = np.repeat(face[None], n, axis=0)
    lms[:, lip_landmark_ids()] = to_img(lips_head - neutral_lip_landmarks_mm().mean(axis=0))
    # head motion: roll in the image plane, zoom and translation per frame
    roll = np.radians(rng.uniform(-12, 12, n))
    zoom = rng.uniform(0.8, 1.25, n)
    c, s = np.cos(roll), np.sin(roll)
    rot = np.zeros((n, 3, 3))
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1], rot[:, 2, 2] = c, -s, s, c, 1.0
    lms = zoom[:, None, None] * np.einsum("nij,nkj->nki", rot, lms) + rng.uniform(200, 300, (n, 1, 3))
    vl = VideoLips(fps=video_fps, width=640, height=480, found=np.ones(n, bool), landmarks_px=lms.astype(np.float64))
    return vl, {"t": t, "aperture_mm": ap, "width_mm": width, "protrusion_mm": prot}


def test_retarget_recovers_a_synthetic_person_exactly():
    vl, truth = _synthetic_person()
    lost = [20, 21, 22, 35]  # FaceMesh lost the face in these frames
    vl.found[lost] = False
    vl.landmarks_px[lost] = np.nan
    lips = retarget(vl, scale=0.9, fps=30.0)
    T = int(np.ceil(len(vl) / vl.fps * 30.0))
    assert lips["lip_landmarks_mm"].shape == (T, 40, 3) and lips["t"].shape == (T,)
    assert np.array_equal(lips["lip_landmark_ids"], lip_landmark_ids())
    assert 0.5 / 1.25 < lips["mm_per_px"] < 0.5 / 0.8  # 2 px/mm x the reference face's zoom
    assert set(lips["rest_frames"]) <= set(range(12))
    ok = vl.found
    tk = np.arange(T) / 30.0

    def expect(v):
        return np.interp(tk, truth["t"][ok], v[ok])

    # displacement from rest x 0.9 in the head frame, aperture absolute (the rest face is the twin's 2 mm)
    np.testing.assert_allclose(lips["aperture_mm"], expect(0.9 * truth["aperture_mm"]), atol=1e-6)
    np.testing.assert_allclose(lips["width_mm"], expect(NEUTRAL_W + 0.9 * (truth["width_mm"] - NEUTRAL_W)), atol=1e-6)
    np.testing.assert_allclose(lips["protrusion_mm"], expect(0.9 * truth["protrusion_mm"]), atol=1e-6)
    near = np.clip(np.rint(tk * vl.fps).astype(int), 0, len(vl) - 1)
    assert np.array_equal(lips["observed"], ok[near]) and not lips["observed"].all()
    assert np.array_equal(lips["closure"], lips["aperture_mm"] <= 1.0)
    assert not lips["closure"].any()  # 0.9 x 2 mm at rest: never sealed
    assert np.array_equal(lips["rounded"], lips["width_mm"] <= 0.9 * NEUTRAL_W) and lips["rounded"].any()

    # relative aperture: the twin's neutral 2 mm + 0.9 x the change; n_frames fixes the length (ends held)
    rel = retarget(vl, absolute_aperture=False, n_frames=T + 10)
    np.testing.assert_allclose(rel["aperture_mm"][:T], expect(2.0 + 0.9 * (truth["aperture_mm"] - 2.0)), atol=1e-6)
    assert np.all(rel["aperture_mm"][T:] == rel["aperture_mm"][T - 1])


def test_retarget_clips_to_the_twin_range():
    vl, _ = _synthetic_person()
    vl.landmarks_px[30:34, lip_landmark_ids()[20:], 1] += 400.0  # inner lips 200 mm down: outside the face
    lips = retarget(vl, clip_mm=15.0)
    assert np.abs(lips["lip_landmarks_mm"]).max() == pytest.approx(15.0)


def test_retarget_bad_input():
    vl, _ = _synthetic_person(n=10)
    with pytest.raises(ValueError, match="scale"):
        retarget(vl, scale=0.0)
    with pytest.raises(ValueError, match="fps"):
        retarget(vl, fps=-1.0)
    with pytest.raises(ValueError, match="VideoLips"):
        retarget(vl.landmarks_px)
    bad = VideoLips(fps=30.0, width=64, height=64, found=np.ones(3, bool), landmarks_px=np.zeros((3, 468, 3)))
    with pytest.raises(ValueError, match="478"):
        retarget(bad)
    vl.found[:] = False
    with pytest.raises(ValueError, match="no face found"):
        retarget(vl)
    assert len(STABLE_IDS) >= 10 and not set(STABLE_IDS) & set(lip_landmark_ids())


def test_missing_mediapipe_names_the_extra(tmp_path, monkeypatch, capsys):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\0" * 64)
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe -> ImportError
    with pytest.raises(ImportError, match=r"facetwin\[vision\]"):
        extract_lip_track(video, progress=False)
    with pytest.raises(ImportError, match=r"facetwin\[vision\]"):
        ingest_video(video, tmp_path / "corpus", progress=False)
    args = add_ingest_arguments(argparse.ArgumentParser()).parse_args([str(video), "--corpus", str(tmp_path)])
    assert main_ingest(args) == 2
    assert "facetwin[vision]" in capsys.readouterr().err
    assert not (tmp_path / "manifest.json").exists()
    with pytest.raises(FileNotFoundError):
        extract_lip_track(tmp_path / "missing.mp4", progress=False)


# ---------------------------------------------------------------------------------------------- the twin on video
@pytest.fixture(scope="module")
def twin_video(tmp_path_factory):
    """The twin saying SENTENCE: an mp4 (camera view, 640x480, AAC audio), a 20-frame mirrored mp4, and the truth."""
    import imageio_ffmpeg
    import mediapipe  # noqa: F401  (the [test] extra installs the [vision] extra: a missing one fails, never skips)

    from facetwin.audio.io import resample, save_wav
    from facetwin.audio.tts import synthesize
    from facetwin.envs.lip_sync import LipSyncEnv
    from facetwin.sim.playback import play
    from facetwin.sim.render import MirrorRenderer

    out = tmp_path_factory.mktemp("video")
    utt = synthesize(SENTENCE, "en")
    env = LipSyncEnv(clips=[utt])
    env.reset(seed=0)
    ctrl = env.unwrapped.scripted_controls()
    face = env.unwrapped.face
    frames, mirrored = [], []
    with MirrorRenderer(face, "video") as r:

        def grab(k, f):
            frames.append(r.render(mirror=False))  # a camera filming the face, as a video of a person
            if k < 20:
                mirrored.append(r.render(mirror=True))

        truth = play(face, ctrl, on_frame=grab)
    wav = out / "speech.wav"
    save_wav(wav, resample(utt.audio, utt.sr, 16000).astype(np.float32), 16000)

    def write(path, imgs, audio):
        w = imageio_ffmpeg.write_frames(str(path), (640, 480), fps=30, quality=7, macro_block_size=16,
                                        audio_path=str(audio) if audio else None,
                                        audio_codec="aac" if audio else None)
        w.send(None)
        for im in imgs:
            w.send(np.ascontiguousarray(im))
        w.close()
        return path

    return {
        "video": write(out / "twin.mp4", frames, wav),
        "mirrored": write(out / "twin_mirror.mp4", mirrored, None),
        "truth": truth,
    }


def test_facemesh_tracks_the_twin_speaking(twin_video):
    truth = twin_video["truth"]
    vl = extract_lip_track(twin_video["video"], progress=False)
    assert (vl.width, vl.height, vl.fps) == (640, 480, 30.0) and len(vl) == len(truth)
    assert vl.landmarks_px.shape == (len(vl), 478, 3)
    assert vl.found_fraction >= 0.95
    lips = retarget(vl, n_frames=len(truth))
    # measured on the fast face: aperture r = 0.95, width r = 0.97, every sealed frame flagged
    assert np.corrcoef(lips["aperture_mm"], truth.aperture_mm)[0, 1] >= 0.9
    assert np.corrcoef(lips["width_mm"], truth.width_mm)[0, 1] >= 0.9
    sealed = truth.aperture_mm <= 1.0
    assert sealed.sum() >= 5 and lips["closure"][sealed].mean() >= 0.9
    # the lips open by about as much as the face's (0.9 x, MediaPipe reads small gaps short; 0.57 measured on the
    # canonical-mesh face, 0.6+ on the old one)
    assert 0.5 <= np.ptp(lips["aperture_mm"]) / np.ptp(truth.aperture_mm) <= 1.3

    # a mirrored video, flipped back before FaceMesh, gives the camera view's landmarks
    vm = extract_lip_track(twin_video["mirrored"], mirrored=True, progress=False)
    assert vm.found.all() and vm.mirrored
    diff = np.linalg.norm(vm.lips_px()[..., :2] - vl.lips_px()[:20, :, :2], axis=-1)
    assert diff.mean() < 2.0


def test_ingest_video_adds_a_corpus_item_lipsyncenv_plays(twin_video, tmp_path, capsys):
    from facetwin.envs.lip_sync import LipSyncEnv

    truth = twin_video["truth"]
    corpus = tmp_path / "corpus"  # created by the ingestion
    item = ingest_video(twin_video["video"], corpus, text=SENTENCE, progress=False)
    assert item["id"] == "video_twin" and item["kind"] == "video" and item["split"] == "train"
    assert item["lang"] == "en" and item["text"] == SENTENCE and item["face_found"] >= 0.95
    m = json.loads((corpus / "manifest.json").read_text(encoding="utf-8"))
    assert m["version"] == CORPUS_VERSION and m["fps"] == 30.0 and m["sr"] == 16000
    assert m["splits"]["train"] == ["video_twin"] and m["items"] == [item]
    assert (corpus / item["audio"]).is_file()
    a = load_item(corpus, "video_twin")
    assert set(a) == set(CORPUS_NPZ_KEYS)
    T = item["n_frames"]
    assert abs(T - len(truth)) <= 1 and a["lip_landmarks_mm"].shape == (T, 40, 3)
    n = min(T, len(truth))
    assert np.corrcoef(a["aperture_mm"][:n], truth.aperture_mm[:n])[0, 1] >= 0.9
    assert len(a["phone_label"]) >= 15 and (a["phoneme"] != "").mean() > 0.5  # force-aligned English
    assert np.array_equal(a["closure"], a["aperture_mm"] <= 1.0)

    with pytest.raises(ValueError, match="already has an item"):
        ingest_video(twin_video["video"], corpus, progress=False)

    # the CLI, without text: an empty timeline
    args = add_ingest_arguments(argparse.ArgumentParser()).parse_args(
        [str(twin_video["video"]), "--corpus", str(corpus), "--id", "notext", "--quiet"]
    )
    assert main_ingest(args) == 0
    assert "added notext" in capsys.readouterr().out
    b = load_item(corpus, "notext")
    assert len(b["phone_label"]) == 0 and (b["phoneme"] == "").all() and (b["viseme"] == "").all()
    np.testing.assert_allclose(b["aperture_mm"], a["aperture_mm"], atol=1e-5)

    env = LipSyncEnv(corpus_dir=corpus, split="train")
    assert sorted(env.unwrapped.clip_ids) == ["notext", "video_twin"]
    for cid in ("notext", "video_twin"):
        _, info = env.reset(seed=0, options={"clip": cid})
        assert info["kind"] == "video" and info["n_frames"] == T
        clip = env.unwrapped.load_clip(cid)
        np.testing.assert_allclose(clip.target_aperture_mm, a["aperture_mm"], atol=1e-5)
        _, reward, *_ = env.step(env.unwrapped.face.rest_ctrl.astype(np.float32))
        assert np.isfinite(reward)


def test_extract_rejects_a_file_that_is_not_video(tmp_path):
    import mediapipe  # noqa: F401  (the [test] extra installs the [vision] extra: a missing one fails, never skips)
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    with pytest.raises(ValueError, match="not a readable video"):
        extract_lip_track(bad, progress=False)
