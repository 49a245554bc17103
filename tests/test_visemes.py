"""Phoneme -> viseme table, Cohen-Massaro coarticulation with hard bilabial closure and rounding, lip landmarks."""

from __future__ import annotations

import importlib.util
import itertools

import numpy as np
import pytest

from facetwin.audio.lip_track import lip_displacements, lip_track, measures_from_landmarks, neutral_measures
from facetwin.audio.timeline import Phone, Timeline
from facetwin.audio.visemes import (
    VISEMES,
    is_bilabial,
    is_rounded,
    load_viseme_table,
    load_viseme_targets,
    normalize_phoneme,
    phoneme_to_viseme,
    phoneme_visemes,
    resolve_phoneme,
    unknown_phonemes,
    viseme_segments,
)
from facetwin.sim.landmarks import lip_landmark_ids, neutral_lip_landmarks_mm

FPS = 30.0
NEUTRAL_W = 49.12412  # the twin's outer mouth width: 61-291 of the canonical face in the head frame
NEUTRAL_A = 2.0  # the twin's neutral inner-lip gap (facetwin.sim.mesh_skin.NEUTRAL_APERTURE)


def seq(spec, t0=0.3):
    """Timeline from [(phoneme or None for a gap, duration s), ...] starting at t0."""
    phones, t = [], t0
    for ph, d in spec:
        if ph is not None:
            phones.append(Phone(t, t + d, ph))
        t += d
    return Timeline(phones)


# ------------------------------------------------------------------------------------------------ tables
def test_targets_cover_the_viseme_set_with_plausible_shapes():
    tg = load_viseme_targets()
    assert set(tg) == set(VISEMES) and len(VISEMES) == 15
    assert 15.0 <= tg["aa"].aperture_mm <= 20.0
    assert tg["PP"].aperture_mm == 0.0 and tg["PP"].closure
    assert [v for v in VISEMES if tg[v].closure] == ["PP"]
    assert -25.0 <= tg["ou"].width_pct <= -15.0 and 3.5 <= tg["ou"].protrusion_mm <= 6.0 and tg["ou"].rounding
    assert tg["oh"].rounding and tg["oh"].width_pct < 0 and tg["oh"].protrusion_mm > 0
    for v in ("E", "ih"):
        assert 8.0 <= tg[v].width_pct <= 12.0 and tg[v].protrusion_mm == 0.0
    # silence is the twin's neutral face
    nm = neutral_measures()
    assert nm["aperture_mm"] == pytest.approx(NEUTRAL_A) and nm["width_mm"] == pytest.approx(NEUTRAL_W)
    assert tg["sil"].aperture_mm == pytest.approx(nm["aperture_mm"])
    assert tg["sil"].width_pct == 0 and tg["sil"].protrusion_mm == 0
    # rounding is anticipated: it spreads further before the segment than after it
    for v in ("ou", "oh"):
        assert tg[v].theta_before < tg[v].theta_after
    for t in tg.values():
        assert t.dominance > 0 and t.theta_before > 0 and t.theta_after > 0 and t.aperture_mm >= 0


def test_table_rows_and_core_mappings():
    table = load_viseme_table()
    assert len(table) > 150
    for e in table.values():
        assert all(v in VISEMES for v in e.visemes) and sum(e.fractions) == pytest.approx(1.0)
    cases = {
        "p": "PP", "b": "PP", "m": "PP", "β": "PP", "f": "FF", "v": "FF", "θ": "TH", "ð": "TH", "t": "DD",
        "d": "DD", "k": "kk", "ɡ": "kk", "ʃ": "CH", "tʃ": "CH", "dʒ": "CH", "ʂ": "CH", "tɕ": "CH", "s": "SS",
        "z": "SS", "ts": "SS", "n": "nn", "l": "nn", "ɹ": "RR", "ʁ": "RR", "a": "aa", "ɑ": "aa", "e": "E",
        "ɛ": "E", "ə": "E", "i": "ih", "ɪ": "ih", "o": "oh", "ɔ": "oh", "ø": "oh", "œ": "oh", "u": "ou",
        "ʊ": "ou", "y": "ou", "ʏ": "ou", "w": "ou", "ɥ": "ou", "": "sil",
    }
    for ph, v in cases.items():
        assert phoneme_to_viseme(ph) == v, ph
    assert phoneme_visemes("aʊ") == ("aa", "ou") and phoneme_visemes("oʊ") == ("oh", "ou")
    assert phoneme_visemes("pf") == ("PP", "FF")
    assert resolve_phoneme("ja").fractions == pytest.approx((0.35, 0.65))
    for ph in ("p", "b", "m", "mʲ", "bʲ", "pʰ", "ph", "β", "pf", "ˈm"):
        assert is_bilabial(ph), ph
    for ph in ("f", "v", "a", "w", "n"):
        assert not is_bilabial(ph), ph
    for ph in ("u", "uː", "ʊ", "w", "y", "yː", "ʏ", "ɥ", "oʊ", "aʊ", "ju", "u\""):
        assert is_rounded(ph), ph
    for ph in ("i", "a", "e", "ɪ", "s", "ɯᵝ"):
        assert not is_rounded(ph), ph


def test_normaliser_rule():
    cases = {
        "ˈaː": "a", "ˌɔ": "ɔ", "ɔ̃": "ɔ", "ˈœ̃": "œ", "mʲ": "m", "tʰ": "t", "kʷ": "k", "e̞": "e", "ä": "a",
        "ɯᵝ": "ɯ", "t̪": "t", "sˤ": "s", "ç": "ç", "ə-": "ə", "ɪ^": "ɪ", "u\"": "u", "(en)": "", "ˈ": "",
        "dʒʲ": "dʒ", "t͡ʃ": "tʃ", "ɑːɹ": "ɑɹ", " i ": "i",
    }
    for raw, norm in cases.items():
        assert normalize_phoneme(raw) == norm, raw
    # espeak mnemonics are looked up before the normaliser strips their punctuation
    assert resolve_phoneme("o-").visemes == ("E",) and resolve_phoneme("o-").method == "table"
    assert resolve_phoneme("ts.h").visemes == ("CH",)
    assert resolve_phoneme("ˈiː").method == "normalised" and resolve_phoneme("ˈi").method == "table"
    assert resolve_phoneme("ɔːɹ").visemes == ("oh", "RR")


def test_unknown_phonemes_fall_back_without_crashing():
    weird = ["∆", "ʘa", "xyzq!!", "ʄ", "?", "ˈˌ", None, "a\u0301\u0302", "🙂"]
    for w in weird:
        r = resolve_phoneme(w)
        assert all(v in VISEMES for v in r.visemes) and r.weight >= 0
    assert resolve_phoneme("∆").method == "unknown" and resolve_phoneme("ʘa").method == "class"
    assert resolve_phoneme("ʘa").visemes == ("PP", "aa")
    tl = seq([("a", 0.1), ("∆", 0.05), ("ʘa", 0.1), ("b", 0.05), ("∆", 0.05)])
    unk = unknown_phonemes(tl)
    assert list(unk) == ["∆", "ʘa"]
    assert unknown_phonemes(["p", "aɪ", "ɔ̃"]) == {}
    track = lip_track(tl)  # still a full, finite track
    assert np.isfinite(track.aperture_mm).all() and np.isfinite(track.landmarks_mm).all()


# ------------------------------------------------------------------------------------------ closure
@pytest.mark.parametrize("offset_ms", [0.0, 7.0, 13.0, 21.0, 29.0])
def test_short_b_between_two_a_closes_exactly(offset_ms):
    tl = seq([("a", 0.12), ("b", 0.03), ("a", 0.12)], t0=0.3 + offset_ms / 1000.0)
    b = tl[1]
    tr = lip_track(tl, fps=FPS, duration=1.0)
    k = int(np.argmin(np.abs(tr.t - 0.5 * (b.start + b.end))))
    assert tr.aperture_mm[k] <= 0.5
    assert tr.aperture_mm[k] == 0.0  # exact: a maximum, not an average
    assert tr.closure[k] and tr.viseme[k] == "PP" and tr.phoneme[k] == "b"
    # the mouth does open for the vowels around it
    for a in (tl[0], tl[2]):
        assert tr.aperture_mm[tr.frames_overlapping(a.start, a.end)].max() > 8.0
    # the neighbours ramp: at most one cone step (180 mm/s) per frame from the closure
    assert tr.aperture_mm[k - 1] <= 6.0 + 1e-9 and tr.aperture_mm[k + 1] <= 6.0 + 1e-9


def test_every_bilabial_in_a_sequence_closes():
    spec = [("m", 0.06), ("a", 0.1), ("p", 0.02), ("a", 0.09), ("b", 0.035), ("i", 0.08), ("m", 0.025),
            ("u", 0.1), ("b", 0.05), ("ɔ", 0.12), ("mʲ", 0.03), ("a", 0.1), ("pf", 0.07), ("ɛ", 0.1), ("β", 0.04),
            ("e", 0.1), ("m", 0.15), ("p", 0.018), ("a", 0.1)]
    tl = seq(spec)
    tr = lip_track(tl, fps=FPS)
    n_pp = 0
    for p in tl:
        if is_bilabial(p.phoneme):
            n_pp += 1
            idx = tr.frames_overlapping(p.start, p.end)
            assert tr.aperture_mm[idx].min() == 0.0, p
            assert tr.closure[idx].any(), p
    assert n_pp == 10
    # a long /m/ is closed over its whole length
    long_m = tl[16]
    inside = (tr.t >= long_m.start) & (tr.t <= long_m.end)
    assert inside.sum() >= 4 and (tr.aperture_mm[inside] == 0.0).all()
    # no closure anywhere else
    pp_frames = np.zeros(len(tr), bool)
    for s in viseme_segments(tl, tl.end):
        if s.viseme == "PP":
            pp_frames[tr.frames_overlapping(s.start, s.end)] = True
    assert not (tr.closure & ~pp_frames).any()


# ------------------------------------------------------------------------------------------ rounding
def test_u_and_w_are_rounded_and_protruded():
    tl = seq([("s", 0.08), ("u", 0.12), ("t", 0.05), ("w", 0.04), ("i", 0.12), ("k", 0.06), ("w", 0.05),
              ("a", 0.12), (None, 0.2), ("y", 0.1), ("ʊ", 0.08)])
    tr = lip_track(tl, fps=FPS)
    for p in tl:
        if p.phoneme in ("u", "w", "y", "ʊ"):
            idx = tr.frames_overlapping(p.start, p.end)
            assert tr.width_mm[idx].min() <= 0.9 * NEUTRAL_W, p
            assert tr.protrusion_mm[idx].max() > 2.0, p
            assert tr.rounded[idx].any()
    # the /i/ between the two /w/ is coarticulated (still narrow) but clearly wider than the /w/ before it
    i, w = tl[4], tl[3]
    w_min = tr.width_mm[tr.frames_overlapping(w.start, w.end)].min()
    assert tr.width_mm[tr.frames_overlapping(i.start, i.end)].max() > w_min + 4.0


@pytest.mark.parametrize("spec", [
    [("a", 0.12), ("t", 0.06), ("u", 0.15)],
    [("i", 0.12), ("s", 0.08), ("u", 0.15)],
    [("s", 0.08), ("t", 0.05), ("u", 0.12)],
    [("a", 0.15), ("b", 0.05), ("u", 0.15)],
    [("i", 0.10), ("k", 0.05), ("w", 0.05), ("i", 0.1)],
])
def test_rounding_starts_at_least_50ms_early(spec):
    tl = seq(spec)
    target = next(p for p in tl if p.phoneme in ("u", "w"))
    tr = lip_track(tl, fps=100.0, duration=1.2)  # 10 ms frames to time the onset
    pre = (tr.t >= target.start - 0.05) & (tr.t < target.start)
    assert pre.sum() == 5
    assert (tr.protrusion_mm[pre] >= 1.0).all()
    first = tr.t[np.argmax(tr.protrusion_mm >= 1.0)]
    assert first <= target.start - 0.05
    # the width is already going down 50 ms ahead (below what the first vowel/consonant had)
    first_seg = tl[0]
    w_first = tr.width_mm[(tr.t >= first_seg.start) & (tr.t < first_seg.end)].max()
    k50 = int(np.argmin(np.abs(tr.t - (target.start - 0.05))))
    assert tr.width_mm[k50] < w_first - 1.0 and tr.width_mm[k50] < NEUTRAL_W


# ------------------------------------------------------------------------------------ smoothness, silence
def _long_sequence():
    phs = ["b", "a", "t", "i", "m", "u", "s", "ɔ", "p", "e", "f", "ɑ", "w", "i", "k", "o", "ʃ", "a", "n", "y", "l",
           "ɛ", "m", "a", "ɹ", "ʊ", "d", "aɪ", "θ", "oʊ"]
    rng = np.random.default_rng(3)
    spec = []
    for ph in phs:
        vowel = phoneme_to_viseme(ph) in ("aa", "E", "ih", "oh", "ou")
        spec.append((ph, float(rng.uniform(0.07, 0.16) if vowel else rng.uniform(0.02, 0.08))))
        if rng.random() < 0.1:
            spec.append((None, 0.15))
    return seq(spec)


def test_track_is_smooth():
    tl = _long_sequence()
    tr = lip_track(tl, fps=FPS, duration=tl.end + 0.5)
    da = np.abs(np.diff(tr.aperture_mm))
    dw = np.abs(np.diff(tr.width_mm))
    dp = np.abs(np.diff(tr.protrusion_mm))
    near_closure = tr.closure[1:] | tr.closure[:-1]
    # away from forced closures the coarticulated blend moves at most ~6 mm per 33 ms frame
    assert da[~near_closure].max() <= 6.5
    # and the closure ramps keep even the closing frames within the cone (180 mm/s = 6 mm per frame)
    assert da.max() <= 6.0 + 1e-6
    assert dw.max() <= 4.5 and dp.max() <= 2.5
    # no jitter: the second difference stays bounded too
    assert np.abs(np.diff(tr.width_mm, 2)).max() <= 6.0
    for ch in (tr.aperture_mm, tr.width_mm, tr.protrusion_mm):
        assert np.isfinite(ch).all()
    assert tr.aperture_mm.min() >= 0.0 and tr.aperture_mm.max() <= 20.0
    assert 0.75 * NEUTRAL_W <= tr.width_mm.min() and tr.width_mm.max() <= 1.15 * NEUTRAL_W


def test_silence_relaxes_to_neutral():
    tl = seq([("a", 0.15), ("u", 0.15), (None, 0.8), ("m", 0.05), ("i", 0.15), ("", 0.9), ("o", 0.1)], t0=0.5)
    tr = lip_track(tl, fps=FPS, duration=tl.end + 0.6)
    nm = neutral_measures()

    def at_rest(mask, tol):
        assert mask.sum() > 0
        assert np.abs(tr.aperture_mm[mask] - nm["aperture_mm"]).max() <= tol
        assert np.abs(tr.width_mm[mask] - nm["width_mm"]).max() <= tol
        assert np.abs(tr.protrusion_mm[mask]).max() <= tol
        assert (tr.viseme[mask] == "sil").all()

    at_rest((tr.t > tl[1].end + 0.3) & (tr.t < tl[2].start - 0.3), 0.1)  # a gap, 300 ms from any phone
    at_rest((tr.t > tl[3].end + 0.3) & (tr.t < tl[5].start - 0.4), 0.1)  # an explicit "" pause (mid)
    at_rest(tr.t > tl.end + 0.35, 0.05)  # the end
    at_rest(tr.t < 0.05, 0.3)  # before the first phone (rounding may be anticipated a little)
    # empty timeline: the neutral face
    empty = lip_track(Timeline([]), duration=1.0)
    assert len(empty) == 30  # frames at k / 30 for every t < 1 s (the features' convention)
    assert np.allclose(empty.aperture_mm, NEUTRAL_A) and np.allclose(empty.width_mm, NEUTRAL_W)
    assert np.abs(empty.landmarks_mm).max() < 1e-2  # the face at rest


def test_frames_and_fields():
    tl = seq([("h", 0.05), ("ɛ", 0.1), ("l", 0.06), ("oʊ", 0.2)], t0=0.1)
    tr = lip_track(tl, fps=60.0, duration=0.75)
    assert tr.t[0] == 0.0 and np.allclose(np.diff(tr.t), 1 / 60.0) and len(tr) == 45  # every t < 0.75 s
    for arr in (tr.aperture_mm, tr.width_mm, tr.protrusion_mm, tr.viseme, tr.phoneme, tr.closure, tr.rounded):
        assert arr.shape == (45,)
    assert tr.landmarks_mm.shape == (45, 40, 3)
    assert set(tr.viseme) <= set(VISEMES)
    assert {"E", "oh", "ou"} <= set(tr.viseme)
    assert set(tr.phoneme) <= {"", "h", "ɛ", "l", "oʊ"}
    assert lip_track(tl).t[-1] < tl.end  # default duration: the timeline's end
    with pytest.raises(ValueError):
        lip_track(tl, fps=0)


# ------------------------------------------------------------------------------------------ landmarks
def test_landmark_schema_and_neutral_contour():
    from facetwin.sim.face_design import builtin_design
    from facetwin.sim.landmarks import load_schema
    from facetwin.sim.mesh_skin import canonical_head_frame

    ids = lip_landmark_ids()
    lips = [lm for lm in load_schema() if lm.region in ("lips_outer", "lips_inner")]
    assert ids.tolist() == [lm.mp_id for lm in lips] and len(ids) == 40
    neutral = neutral_lip_landmarks_mm()
    skin = builtin_design().skin
    for k, lm in enumerate(lips):  # every lip landmark is the skin vertex of its MediaPipe id
        assert np.allclose(neutral[k], skin.vertices[lm.mp_id] * 1000.0)
        assert skin.vertices[skin.named[lm.ref]] == pytest.approx(skin.vertices[lm.mp_id])
    col = {int(i): k for k, i in enumerate(ids)}
    assert neutral[col[13], 2] - neutral[col[14], 2] == pytest.approx(NEUTRAL_A)  # the mouth closed to 2 mm
    canonical = canonical_head_frame() * 1000.0  # the corners are the canonical face's
    assert neutral[col[291], 1] - neutral[col[61], 1] == pytest.approx(canonical[291, 1] - canonical[61, 1])
    assert neutral[col[291], 1] - neutral[col[61], 1] == pytest.approx(NEUTRAL_W)


def test_face_lip_shapes_follow_the_measures_the_face_can_make():
    """Track landmarks are the twin's own settled shapes: their measures follow the track's channels where the face
    can make them (opening, spreading), narrow for rounding, and are exactly neutral in silence."""
    tl = _long_sequence()
    tr = lip_track(tl, fps=FPS)
    m = tr.measures()
    assert np.corrcoef(m["aperture_mm"], tr.aperture_mm)[0, 1] > 0.95
    assert np.median(np.abs(m["aperture_mm"] - tr.aperture_mm)) < 1.0
    assert np.corrcoef(m["width_mm"], tr.width_mm)[0, 1] > 0.8
    rounded = tr.rounded & (tr.width_mm < 0.9 * NEUTRAL_W)
    assert rounded.any() and (m["width_mm"][rounded] < 0.93 * NEUTRAL_W).mean() > 0.8
    empty = lip_track(Timeline([]), duration=0.5)
    assert np.abs(empty.landmarks_mm).max() < 1e-2
    with pytest.raises(ValueError, match="lip_model"):
        lip_track(tl, lip_model="clay")


def test_landmarks_reproduce_the_track_measures():
    tl = _long_sequence()
    tr = lip_track(tl, fps=FPS, lip_model="geometric")
    m = tr.measures()
    assert np.abs(m["aperture_mm"] - tr.aperture_mm).max() <= 0.1
    assert np.abs(m["width_mm"] - tr.width_mm).max() <= 0.1
    assert np.abs(m["protrusion_mm"] - tr.protrusion_mm).max() <= 0.1
    assert np.abs(m["aperture_mm"] - tr.aperture_mm).max() < 1e-9  # exact by construction
    # same through the public sim API with full landmark arrays
    assert np.allclose(measures_from_landmarks(tr.landmarks_mm)["width_mm"], tr.width_mm)


def test_lip_model_profile():
    ids = lip_landmark_ids()
    col = {int(i): k for k, i in enumerate(ids)}
    d = lip_displacements(12.0, 40.0, 3.0)  # open 10 mm more, ~9 mm narrower, 3 mm forward
    assert d.shape == (40, 3)
    assert d[col[13], 2] == pytest.approx(5.0) and d[col[14], 2] == pytest.approx(-5.0)  # +-dA/2 at the midline
    assert d[col[0], 2] > 0 and d[col[17], 2] < 0  # outer lips follow
    for c in (61, 291, 78, 308):
        assert d[col[c], 2] == pytest.approx(0.0) and d[col[c], 0] == pytest.approx(0.0)  # corners: no z, no x
    dw = 40.0 - NEUTRAL_W
    assert d[col[61], 1] == pytest.approx(-dw / 2) and d[col[291], 1] == pytest.approx(dw / 2)  # corners: +-dW/2
    # vertical opening and protrusion peak at the midline and fall off towards the corners
    upper_inner = [78, 191, 80, 81, 82, 13]
    z = [d[col[i], 2] for i in upper_inner]
    x = [d[col[i], 0] for i in upper_inner]
    assert all(a < b for a, b in itertools.pairwise(z)) and all(a < b for a, b in itertools.pairwise(x))
    assert d[col[0], 0] == pytest.approx(3.0) and d[col[17], 0] == pytest.approx(3.0)
    # a closed mouth seals the whole inner contour, not only the midline
    neutral = neutral_lip_landmarks_mm()
    closed = neutral + lip_displacements(0.0, 50.0, 0.0)
    for up, lo in ((191, 95), (80, 88), (81, 178), (82, 87), (13, 14), (312, 317), (415, 324)):
        assert closed[col[up], 2] == pytest.approx(closed[col[lo], 2], abs=1e-9)


# ------------------------------------------------------------------------------------------------ TTS
HAVE_TTS = importlib.util.find_spec("facetwin.audio.tts") is not None
needs_tts = pytest.mark.skipif(not HAVE_TTS, reason="facetwin.audio.tts (the espeak-ng TTS) is not in this checkout")

SENTENCES = {
    "en": ["Bob may push the wet blue boat.", "We would love to see you tomorrow morning.",
           "Please bring maple butter, and move two blue boxes.", "The quick brown fox jumps over the lazy dog."],
    "fr": ["Bonjour, je voudrais un peu de pain.", "Le petit chat boit du lait dans la cuisine.",
           "Oui, nous voulons une pomme bien mûre."],
    "de": ["Guten Morgen, wie geht es Ihnen?", "Über den Bergen fliegen fünf schöne Vögel.",
           "Pfeffer und Butter bitte, mein Bruder."],
    "es": ["Buenos días, ¿cómo estás? Muy bien, gracias.", "El hombre bebe vino blanco en abril.",
           "Me gustaría un vaso de agua, por favor."],
}
# one or two sentences in each of the other languages of the robot's study, for the table's coverage
COVERAGE = {
    "it": ["Buongiorno, come stai? Bene, grazie.", "Gli gnocchi della nonna sono squisiti."],
    "ru": ["Привет, как дела? Хорошо, спасибо.", "Мама мыла раму. Любовь, объём, щука, жёлтый."],
    "ja": ["ありがとうございます。", "ふじさん、しゃしん、りょこう、びょういん、ぎゅうにゅう。"],
    "ko": ["안녕하세요, 만나서 반갑습니다.", "빵, 뿌리, 김치, 짜장, 쌀, 토끼, 딸기, 의자, 왜, 위."],
    "zh": ["你好，我们是朋友。", "北京，四川，知道，日本，中国，女儿，绿色，欢迎，学生，月亮。"],
    "ar": ["مرحبا، كيف حالك؟", "شكرا جزيلا. أنا طالب في الجامعة."],
    "he": ["שלום, מה שלומך?", "תודה רבה. אני סטודנט באוניברסיטה."],
}


@pytest.fixture(scope="module")
def utterances():
    from facetwin.audio.tts import synthesize

    return {lang: [synthesize(s, lang) for s in ss] for lang, ss in {**SENTENCES, **COVERAGE}.items()}


@needs_tts
@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_tts_every_bilabial_closes_and_every_w_oo_rounds(utterances, lang):
    n_pp = n_ou = 0
    for utt in utterances[lang]:
        tr = lip_track(utt.timeline, fps=FPS, duration=utt.duration)
        for p in utt.timeline:
            idx = tr.frames_overlapping(p.start, p.end)
            if is_bilabial(p.phoneme):
                n_pp += 1
                assert tr.aperture_mm[idx].min() <= 1.0, (utt.text, p)
            if is_rounded(p.phoneme):
                n_ou += 1
                assert tr.width_mm[idx].min() <= 0.9 * tr.neutral_width_mm, (utt.text, p)
        assert np.abs(np.diff(tr.aperture_mm)).max() <= 6.0 + 1e-6
        geo = lip_track(utt.timeline, fps=FPS, duration=utt.duration, lip_model="geometric")
        assert np.abs(geo.measures()["width_mm"] - geo.width_mm).max() <= 0.1
    assert n_pp >= 8 and n_ou >= 5, (n_pp, n_ou)


@needs_tts
@pytest.mark.parametrize("lang", sorted({**SENTENCES, **COVERAGE}))
def test_tts_phonemes_all_in_the_table(utterances, lang):
    labels = [p.phoneme for utt in utterances[lang] for p in utt.timeline]
    assert len(labels) > 10
    assert unknown_phonemes(labels) == {}, f"{lang}: phonemes needing the fallback"
