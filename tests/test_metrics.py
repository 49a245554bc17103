"""Lip-sync metrics (facetwin.agents.metrics): hand-made playbacks and clips with known answers."""

import numpy as np
import pytest
from facetwin.agents.metrics import METRICS, aggregate, clip_metrics, lip_error_mm
from facetwin.audio.timeline import Phone, Timeline
from facetwin.audio.visemes import lip_track
from facetwin.envs.lip_sync import ClipData
from facetwin.sim.playback import Playback

FPS = 30.0
# a, b, a, m, u, a, p, a: three bilabials, one rounded vowel, four open vowels
PHONES = [("a", 0.10, 0.30), ("b", 0.30, 0.38), ("a", 0.38, 0.60), ("m", 0.60, 0.70), ("u", 0.70, 0.95),
          ("a", 0.95, 1.20), ("p", 1.20, 1.28), ("a", 1.28, 1.55)]


def _timeline() -> Timeline:
    return Timeline([Phone(s, e, p) for p, s, e in PHONES])


def _clip(tl: Timeline, n: int, **over) -> ClipData:
    tr = lip_track(tl, fps=FPS, duration=n / FPS)
    fields = dict(
        id="c", kind="speech", lang="en", text="", fps=FPS, audio_obs=np.zeros((n, 81), np.float32),
        target_lips_mm=tr.landmarks_mm, target_aperture_mm=tr.aperture_mm, target_width_mm=tr.width_mm,
        target_protrusion_mm=tr.protrusion_mm, closure=tr.closure, rounded=tr.rounded, phoneme=tr.phoneme,
        viseme=tr.viseme, timeline=tl,
    )
    fields.update(over)
    return ClipData(**fields)


def _playback(clip: ClipData, *, lips=None, aperture=None, width=None, neutral_width=None) -> Playback:
    n = clip.n_frames
    return Playback(
        ctrl=np.zeros((n, 26)), landmarks_mm=np.zeros((n, 69, 3)),
        lips_mm=clip.target_lips_mm if lips is None else lips,
        aperture_mm=clip.target_aperture_mm if aperture is None else aperture,
        width_mm=clip.target_width_mm if width is None else width,
        protrusion_mm=clip.target_protrusion_mm,
        neutral_width_mm=float(lip_track(clip.timeline, fps=FPS, duration=0.1).neutral_width_mm)
        if neutral_width is None else neutral_width,
        diverged=False,
    )


def test_table_order_and_perfect_playback():
    assert [m.name for m in METRICS] == ["lip_error_mm", "aperture_corr", "closure_rate", "rounding_rate", "open_rate",
                                         "offset_ms"]
    clip = _clip(_timeline(), 54)
    m = clip_metrics(_playback(clip), clip)
    assert m["lip_error_mm"] == pytest.approx(0.0, abs=1e-12)
    assert m["aperture_corr"] == pytest.approx(1.0)
    assert (m["closure_n"], m["closure_rate"]) == (3, 1.0)
    assert (m["rounding_n"], m["rounding_rate"]) == (1, 1.0)
    assert (m["open_n"], m["open_rate"]) == (4, 1.0)
    assert m["offset_ms"] == pytest.approx(0.0, abs=1e-9)
    assert m["n_frames"] == 54


def test_lip_error_centroid_ignores_a_common_shift_and_matches_the_env():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(5, 40, 3))
    f = g + np.array([1.0, -2.0, 3.0])  # the whole mouth moved: same shape
    assert np.allclose(lip_error_mm(f, g), 0.0)
    assert np.allclose(lip_error_mm(f, g, mode="absolute"), np.sqrt(14.0))
    with pytest.raises(ValueError, match="lip error mode"):
        lip_error_mm(f, g, mode="rms")
    with pytest.raises(ValueError, match="must both be"):
        lip_error_mm(f[:, :39], g)

    from facetwin.envs.lip_sync import LipSyncEnv

    for mode in ("centroid", "absolute"):
        env = LipSyncEnv(split="heldout_sentence", lip_error=mode)
        u = env.unwrapped
        u.reset(seed=0, options={"clip": 0})
        lm = u.face.neutral_landmarks_mm + rng.normal(scale=2.0, size=u.face.neutral_landmarks_mm.shape)
        cols = u._lip_cols
        ours = lip_error_mm(lm[cols] - u.face.neutral_landmarks_mm[cols], u.clip.target_lips_mm[7], mode=mode)
        assert ours[0] == pytest.approx(float(u.lip_error_mm(lm, 7).mean()), rel=1e-12)
        env.close()


@pytest.mark.parametrize("shift", [1.5, -0.6, 2.3])
def test_offset_of_a_shifted_copy(shift):
    n = 90
    t = np.arange(n)

    def ap(x):  # smooth bumps (frames)
        return 2.0 + sum(a * np.exp(-0.5 * ((x - c) / 2.5) ** 2) for a, c in ((10, 15), (7, 33), (12, 52), (6, 71)))

    clip = _clip(_timeline(), n, target_aperture_mm=ap(t))
    m = clip_metrics(_playback(clip, aperture=ap(t - shift)), clip)  # the mouth `shift` frames late
    assert m["offset_ms"] == pytest.approx(shift * 1000.0 / FPS, abs=3.0)
    assert m["aperture_corr"] == pytest.approx(np.corrcoef(ap(t - shift), ap(t))[0, 1], rel=1e-9)


def test_closure_rounding_open_rates():
    clip = _clip(_timeline(), 54)
    t = np.arange(54) / FPS
    never = 5.0 + np.sin(t * 7.0)  # moves, never below 4 mm
    m = clip_metrics(_playback(clip, aperture=never), clip)
    assert (m["closure_rate"], m["closure_hits"], m["closure_n"]) == (0.0, 0, 3)
    # sealed only during the three bilabials: closure 1; the open vowels then miss (never >= half the peak)
    sealed = np.full(54, 4.0)
    for p in clip.timeline:
        if p.phoneme in ("b", "m", "p"):
            sealed[(t + 0.5 / FPS > p.start) & (t - 0.5 / FPS < p.end)] = 0.5
    m = clip_metrics(_playback(clip, aperture=sealed), clip)
    assert m["closure_rate"] == 1.0 and m["open_rate"] == 0.0
    # a mouth that never narrows never rounds; one always 12 % narrow always does
    w0 = 50.0
    assert clip_metrics(_playback(clip, width=np.full(54, w0), neutral_width=w0), clip)["rounding_rate"] == 0.0
    assert clip_metrics(_playback(clip, width=np.full(54, 0.88 * w0), neutral_width=w0), clip)["rounding_rate"] == 1.0
    # no phonemes of a class: NaN rate
    quiet = _clip(Timeline([Phone(0.1, 0.3, "s")]), 20)
    m = clip_metrics(_playback(quiet), quiet)
    assert m["closure_n"] == 0 and np.isnan(m["closure_rate"])


def test_motionless_face_and_bad_input():
    clip = _clip(_timeline(), 54)
    m = clip_metrics(_playback(clip, aperture=np.full(54, 2.26)), clip)
    assert np.isnan(m["aperture_corr"]) and np.isnan(m["offset_ms"])
    with pytest.raises(ValueError, match="frames"):
        clip_metrics(_playback(_clip(_timeline(), 50)), clip)
    pb = _playback(clip)
    diverged = Playback(**{**pb.__dict__, "diverged": True})
    with pytest.raises(ValueError, match="diverged"):
        clip_metrics(diverged, clip)
    with pytest.raises(ValueError, match="at least one clip"):
        aggregate([])


def test_aggregate_pools_frames_phonemes_and_curves():
    a = _clip(_timeline(), 54)
    b = _clip(Timeline([Phone(0.1, 0.3, "a"), Phone(0.3, 0.4, "m"), Phone(0.4, 0.7, "a")]), 27)
    ma = clip_metrics(_playback(a, lips=a.target_lips_mm + np.random.default_rng(1).normal(size=(54, 40, 3))), a)
    ap_b = np.where(b.closure, 3.0, b.target_aperture_mm)  # b's one bilabial is missed
    mb = clip_metrics(_playback(b, aperture=ap_b), b)
    p = aggregate([ma, mb])
    assert p["lip_error_mm"] == pytest.approx((54 * ma["lip_error_mm"] + 27 * mb["lip_error_mm"]) / 81)
    assert (p["closure_hits"], p["closure_n"]) == (3, 4) and p["closure_rate"] == 0.75
    assert (p["open_n"], p["n_frames"], p["n_clips"]) == (6, 81, 2)
    assert p["offset_ms"] == pytest.approx(0.0, abs=3.0)
    assert 0.9 < p["aperture_corr"] <= 1.0
    one = aggregate([ma])
    assert one == {k: ma[k] for k in one if k != "n_clips"} | {"n_clips": 1}
