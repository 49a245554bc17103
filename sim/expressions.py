"""Named facial expressions as normalized control vectors.

:data:`EXPRESSIONS` maps an expression name to control overrides ``{actuator_name: value}`` (normalized, in
[-1, 1], see ``assets/data/actuators.csv``) applied on top of the rest controls (the neutral face: all zeros except
``jaw_open`` = -1, jaw closed). Actuators not named keep their rest value.

>>> u = expression_ctrl(face, "smile")              # (26,) in face.actuator_names order
>>> u = mix_ctrl(face, {"smile": 0.5, "ah": 0.8})   # rest + 0.5 * (smile - rest) + 0.8 * (ah - rest)

:data:`EMOTIONS` holds the seven basic emotions (neutral, happy, sad, angry, surprised, afraid, disgusted) in the
same form, made of FACS-like action units; ``emotion_ctrl(face, "happy", 0.6)`` gives one at an intensity in [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Union

import numpy as np

from .actuators import load_actuators

if TYPE_CHECKING:
    from .model import FaceModel


def _pair(stem: str, value: float) -> dict[str, float]:
    """The same value on the right and left actuator ``stem_R`` / ``stem_L``."""
    return {f"{stem}_R": value, f"{stem}_L": value}


EXPRESSIONS: dict[str, dict[str, float]] = {
    "neutral": {},
    # corners up and out, upper lip lifted, cheeks push the lower lids up (Duchenne smile), teeth just apart
    "smile": {
        **_pair("lip_corner_pull", 1.0),
        **_pair("lip_upper_raise", 0.35),
        **_pair("lip_lower_depress", 0.25),
        **_pair("eyelid_lower", 0.45),
        **_pair("brow_outer", 0.15),
        "jaw_open": -0.8,
    },
    # The four mouth targets of the face model (tests/test_face_model.py holds the model to them):
    # open vowel "ah": jaw fully open (midline aperture >= 15 mm)
    "ah": {"jaw_open": 1.0},
    # spread vowel "ee": corners pulled up and out, and pushed out (mouth width >= 1.15 x neutral)
    "ee": {**_pair("lip_corner_pull", 1.0), **_pair("lip_corner_depress", -1.0)},
    # rounded "oo" / "w": corners drawn in, lips pushed forward, jaw a little open (width <= 0.75 x neutral,
    # aperture <= 6 mm, protrusion >= 3 mm)
    "oo": {**_pair("lip_corner_depress", 1.0), **_pair("lip_corner_pull", -0.4),
           "lip_pucker_upper": 1.0, "lip_pucker_lower": 1.0, "jaw_open": -0.7},
    # bilabial closure "mm" (m, b, p): jaw closed, both lips pressed together (aperture within [-0.2, 1] mm: they
    # meet, the lip contact keeps them from crossing however hard they press)
    "mm": {**_pair("lip_lower_depress", -1.0), **_pair("lip_upper_raise", -1.0)},
    # surprise: brows up, eyes wide
    "brows_up": {
        **_pair("brow_inner", 1.0),
        **_pair("brow_outer", 1.0),
        **_pair("eyelid_upper", -0.7),
        "jaw_open": -0.7,
    },
    # frown: inner brows down, mouth corners down
    "frown": {
        **_pair("brow_inner", -1.0),
        **_pair("brow_outer", -0.3),
        **_pair("lip_corner_depress", 0.3),
        **_pair("lip_corner_pull", -0.3),
        **_pair("lip_lower_depress", -0.3),
        **_pair("eyelid_upper", 0.2),
    },
    "eyes_closed": {
        **_pair("eyelid_upper", 1.0),
        **_pair("eyelid_lower", 0.6),
    },
    # eyes and head turn to the face's own left (the image's left in the mirror), a little upwards
    "look_left": {
        **_pair("eye_yaw", 0.9),
        **_pair("eye_pitch", 0.3),
        "neck_yaw": 0.35,
    },
}

# Emotions (FACS-inspired action units on this face's actuators), the same form as EXPRESSIONS: overrides of the rest
# face. facetwin.agents' behaviour layer blends them under speech (the mouth's actuators: actuators.indices("lips"),
# indices("jaw")).
EMOTIONS: dict[str, dict[str, float]] = {
    "neutral": {},
    # AU6 + AU12: corners pulled up and out, cheeks push the lower lids up, teeth stay together
    "happy": {
        **_pair("lip_corner_pull", 0.9),
        **_pair("lip_corner_depress", -0.2),
        **_pair("lip_upper_raise", 0.2),
        **_pair("eyelid_lower", 0.5),
        **_pair("brow_outer", 0.1),
    },
    # AU1 + AU15 (+ AU17): inner brows up, outer ones down a little, corners down, lids heavy, lower lip pushed up
    "sad": {
        **_pair("brow_inner", 0.9),
        **_pair("brow_outer", -0.3),
        **_pair("lip_corner_pull", -0.6),
        **_pair("lip_corner_depress", -0.2),
        **_pair("lip_lower_depress", -0.3),
        **_pair("eyelid_upper", 0.25),
    },
    # AU4 + AU5 + AU7 + AU24: brows down and together, upper lids raised a little, lower lids tense, lips pressed
    "angry": {
        **_pair("brow_inner", -1.0),
        **_pair("brow_outer", -0.4),
        **_pair("eyelid_upper", -0.3),
        **_pair("eyelid_lower", 0.4),
        **_pair("lip_upper_raise", -0.4),
        **_pair("lip_lower_depress", -0.4),
        **_pair("lip_corner_pull", -0.2),
    },
    # AU1 + AU2 + AU5 + AU26: brows up, upper lids wide, jaw a little open
    "surprised": {
        **_pair("brow_inner", 1.0),
        **_pair("brow_outer", 1.0),
        **_pair("eyelid_upper", -0.8),
        **_pair("lip_lower_depress", 0.2),
        "jaw_open": -0.4,
    },
    # AU1 + AU2 + AU4 + AU5 + AU20: inner brows up more than the outer, lids wide, lower lids tense, corners stretched
    # sideways, jaw a little open
    "afraid": {
        **_pair("brow_inner", 0.8),
        **_pair("brow_outer", 0.2),
        **_pair("eyelid_upper", -0.8),
        **_pair("eyelid_lower", 0.3),
        **_pair("lip_corner_depress", -0.7),
        **_pair("lip_corner_pull", 0.15),
        **_pair("lip_lower_depress", 0.3),
        "jaw_open": -0.6,
    },
    # AU10 + AU4 (+ AU7): upper lip raised, lower lip a little down, brows a little down, lower lids up (a squint)
    "disgusted": {
        **_pair("lip_upper_raise", 1.0),
        **_pair("lip_lower_depress", 0.2),
        **_pair("brow_inner", -0.4),
        **_pair("brow_outer", -0.3),
        **_pair("eyelid_lower", 0.4),
    },
}

FaceOrNames = Union["FaceModel", Sequence[str]]


def _names_and_rest(face_or_names: FaceOrNames) -> tuple[list[str], np.ndarray]:
    """Actuator names and rest controls in the order of a FaceModel or of a sequence of actuator names."""
    names = getattr(face_or_names, "actuator_names", None)
    rest = getattr(face_or_names, "rest_ctrl", None)
    if names is not None and rest is not None:
        return list(names), np.asarray(rest, dtype=float).copy()
    names = [str(n) for n in face_or_names]
    table = {a.name: a.rest for a in load_actuators()}
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"unknown actuator name(s): {', '.join(unknown)}")
    return names, np.array([table[n] for n in names], dtype=float)


def _overrides(name: str) -> dict[str, float]:
    if name not in EXPRESSIONS:
        raise KeyError(f"unknown expression {name!r}; known: {', '.join(EXPRESSIONS)}")
    return EXPRESSIONS[name]


def mix_ctrl(face_or_names: FaceOrNames, weights: Mapping[str, float]) -> np.ndarray:
    """Rest controls plus the weighted offsets of named expressions, clipped to [-1, 1].

    ``weights`` maps expression names to intensities (1 = the expression as defined, 0.5 = half way from rest).
    With a subset of actuator names, the expression's other actuators are left out.
    """
    names, rest = _names_and_rest(face_or_names)
    index = {n: i for i, n in enumerate(names)}
    known = {a.name for a in load_actuators()}
    u = rest.copy()
    for expr, w in weights.items():
        for act, value in _overrides(expr).items():
            if act not in known:
                raise ValueError(f"expression {expr!r}: unknown actuator {act!r}")
            if act in index:
                i = index[act]
                u[i] += float(w) * (value - rest[i])
    return np.clip(u, -1.0, 1.0)


def expression_ctrl(face_or_names: FaceOrNames, name: str, intensity: float = 1.0) -> np.ndarray:
    """Normalized control vector of expression ``name`` in the actuator order of ``face_or_names``.

    ``face_or_names`` is a FaceModel (its ``actuator_names`` and ``rest_ctrl``) or a sequence of actuator names
    (rest values from the actuator table). ``intensity`` scales the offset from rest (1 = as defined).
    """
    return mix_ctrl(face_or_names, {name: intensity})


def emotion_ctrl(face_or_names: FaceOrNames, name: str, intensity: float = 1.0) -> np.ndarray:
    """Normalized control vector of emotion ``name`` (:data:`EMOTIONS`) in the actuator order of ``face_or_names``
    (a FaceModel or a sequence of actuator names, as :func:`expression_ctrl`): rest plus ``intensity`` (in [0, 1])
    times the emotion's offset from rest. ``KeyError`` for an unknown emotion, ``ValueError`` for an intensity
    outside [0, 1]."""
    if name not in EMOTIONS:
        raise KeyError(f"unknown emotion {name!r}; known: {', '.join(EMOTIONS)}")
    w = float(intensity)
    if not 0.0 <= w <= 1.0:  # NaN fails too
        raise ValueError(f"emotion intensity must be in [0, 1], got {intensity!r}")
    names, rest = _names_and_rest(face_or_names)
    index = {n: i for i, n in enumerate(names)}
    known = {a.name for a in load_actuators()}
    u = rest.copy()
    for act, value in EMOTIONS[name].items():
        if act not in known:
            raise ValueError(f"emotion {name!r}: unknown actuator {act!r}")
        if act in index:
            u[index[act]] += w * (value - rest[index[act]])
    return np.clip(u, -1.0, 1.0)
