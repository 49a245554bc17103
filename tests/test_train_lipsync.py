"""`facetwin train-lipsync` end to end on tiny settings: every weight file is written, loads, and drives the pipeline."""

from __future__ import annotations

import json

import numpy as np

from facetwin.agents.weights import AUDIO_TO_LIPS_FILES, BABBLE_BANK_FILE, SELF_MODEL_FILE
from facetwin.cli import main


def test_train_lipsync_writes_weights_the_pipeline_loads(tmp_path, capsys):
    from facetwin.agents.lipsync import LipSyncer
    from facetwin.audio.corpus import build_corpus
    from facetwin.audio.tts import synthesize

    corpus = tmp_path / "corpus"
    build_corpus(corpus, 8, langs=("en", "fr"), heldout_langs=("fr",), include_songs=False, progress=False)
    out = tmp_path / "w"
    from facetwin.agents.train_lipsync import train_lipsync

    report = train_lipsync(out, babble_n=60, workers=1, corpus_dir=corpus, self_model_epochs=(3, 3),
                           audio_epochs=2, progress=False)
    for name in (SELF_MODEL_FILE, BABBLE_BANK_FILE, *AUDIO_TO_LIPS_FILES.values(), "train_report.json"):
        assert (out / name).stat().st_size > 0, name
    saved = json.loads((out / "train_report.json").read_text())
    assert set(saved["steps"]) == {"babble", "self_model", "babble_bank", "corpus", "audio_to_lips_offline",
                                   "audio_to_lips_stream"}
    assert saved["steps"]["self_model"]["round_trip"]["round_trip_n"] == 6  # the last 10 % of 60 expressions
    assert saved["steps"]["self_model"]["round_trip"]["round_trip_abs_mm"] > 0
    assert report["seconds"] > 0
    # the folder is a drop-in replacement for the shipped weights
    utt = synthesize("Papa", "en")
    for mode in ("offline", "stream"):
        res = LipSyncer(mode, weights_dir=out).controls(utt.audio, utt.sr)
        assert res.ctrl.shape[1] == 26 and np.isfinite(res.ctrl).all()
    # bad input
    assert main(["train-lipsync", "--out", str(tmp_path / "x"), "--babble", "3"]) == 2
    assert "babble_n must be >= 50" in capsys.readouterr().err
