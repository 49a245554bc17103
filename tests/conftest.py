"""Test session setup: offscreen rendering before anything imports mujoco."""

import os

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import pytest  # noqa: E402

#: held-out voices: the espeak-ng variants and the Kokoro voice no training corpus uses, reading the held-out
#: sentences (TRAIN_CORPUS_ARGS draws those before anything else, so this small corpus holds out the same ones)
N_HELDOUT_VOICE = 8


@pytest.fixture(scope="session")
def heldout_voice_corpus(tmp_path_factory):
    """A small corpus of ``N_HELDOUT_VOICE`` items by voices the shipped weights never heard: (folder, manifest)."""
    from facetwin.agents.train_audio_to_lips import TRAIN_CORPUS_ARGS
    from facetwin.audio.corpus import build_corpus

    out = tmp_path_factory.mktemp("heldout_voices")
    args = {**TRAIN_CORPUS_ARGS, "n_utterances": 0, "include_songs": False, "n_heldout_voice": N_HELDOUT_VOICE,
            "kokoro_fraction": 0.0}
    return out, build_corpus(out, progress=False, workers=2, **args)
