"""``facetwin train-lipsync``: reproduce every shipped lip-sync weight file from scratch, offline, on a CPU.

| step | what | output (in ``--out``) | time (2 cores) |
|---|---|---|---|
| 1 | babble speech-like expressions in the mirror (:func:`facetwin.envs.babble.babble`, ``distribution="speech"``) | ``babble_speech.npz`` (cached, resumable) | ~5 min |
| 2 | the self-model: forward + inverse (:func:`facetwin.agents.train_self_model.train_self_model`) | ``self_model.pt`` | <= 10 min |
| 3 | the nearest-neighbour baseline's bank (first 90 % of the babbling, the self-model's training part) | ``babble_bank.npz`` | s |
| 4 | the many-voice training corpus (:func:`facetwin.agents.train_audio_to_lips.train_corpus_dir`, cached) | in the cache folder | see the README |
| 5 | audio -> lips, offline and streaming (:func:`facetwin.agents.train_audio_to_lips.train_audio_to_lips`) | ``audio_to_lips_offline.pt``, ``audio_to_lips_stream.pt`` | a few min each |
| 6 | a summary of every step's measured figures | ``train_report.json`` | |

Use the result with ``--weights DIR`` on ``facetwin lipsync / sing / evaluate``; ``--install`` writes the files
into the package's ``assets/weights/`` instead (what a release ships). Every step is deterministic for ``--seed``
(the self-model on one torch thread, the audio models on ``AUDIO_THREADS``; another thread count changes the float
reductions, not the quality).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .weights import AUDIO_TO_LIPS_FILES, BABBLE_BANK_FILE, SELF_MODEL_FILE

DEFAULT_BABBLE_N = 6000
AUDIO_THREADS = 2
BABBLE_SETTLE_S = 1.0
BANK_FRACTION = 0.9  # the self-model holds out the last 10 % of the babbling


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist() if x.size <= 64 else f"array{x.shape}"
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    return x


def train_lipsync(
    out_dir: str | Path,
    *,
    babble_n: int = DEFAULT_BABBLE_N,
    self_model_minutes: float = 10.0,
    workers: int = 2,
    seed: int = 0,
    corpus_dir: str | Path | None = None,
    self_model_epochs: int | tuple[int, int] | None = None,
    audio_epochs: int | None = None,
    progress: bool = True,
) -> dict:
    """Run the steps of the module docstring into ``out_dir``; returns the report (also ``train_report.json``).

    Training runs on one torch thread with fixed epochs (``self_model_epochs``: the self-model's default,
    ``audio_epochs``: ``SHIPPED_EPOCHS``), so a run reproduces the shipped files; ``self_model_minutes`` caps the
    self-model's training time.
    """
    import torch

    from facetwin.agents.train_audio_to_lips import SHIPPED_EPOCHS

    if babble_n < 50:
        raise ValueError(f"babble_n must be >= 50, got {babble_n}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"seed": seed, "babble_n": babble_n, "steps": {}}
    t_all = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _run_steps(out, report, babble_n=babble_n, self_model_minutes=self_model_minutes, workers=workers, seed=seed, corpus_dir=corpus_dir, self_model_epochs=self_model_epochs,
                   audio_epochs=SHIPPED_EPOCHS if audio_epochs is None else audio_epochs, progress=progress)
    finally:
        torch.set_num_threads(threads)
    report["seconds"] = round(time.perf_counter() - t_all, 1)
    (out / "train_report.json").write_text(json.dumps(_jsonable(report), indent=1), encoding="utf-8")
    return report


def _run_steps(out: Path, report: dict, *, babble_n, self_model_minutes, workers, seed, corpus_dir,
               self_model_epochs, audio_epochs, progress) -> None:
    from facetwin.agents.baselines import BabbleBank
    from facetwin.agents.train_audio_to_lips import TRAIN_CORPUS_ARGS, train_audio_to_lips, train_corpus_dir
    from facetwin.agents.train_self_model import evaluate_round_trip, train_self_model
    from facetwin.envs.babble import babble

    def step(name: str, t0: float, **info) -> None:
        report["steps"][name] = {"seconds": round(time.perf_counter() - t0, 1), **_jsonable(info)}
        if progress:
            print(f"[train-lipsync] {name}: {report['steps'][name]['seconds']:.0f} s", flush=True)

    t0 = time.perf_counter()
    babble_path = babble(babble_n, out / "babble_speech.npz", seed=seed, distribution="speech",
                         settle_s=BABBLE_SETTLE_S, workers=workers, progress=progress)
    step("babble", t0, path=str(babble_path))

    t0 = time.perf_counter()
    model, sm_report = train_self_model(babble_path, seed=seed, max_minutes=self_model_minutes,
                                        epochs=self_model_epochs, progress=progress)
    n_rt = min(100, babble_n - int(BANK_FRACTION * babble_n))  # the held-out expressions (the last 10 %)
    sm_report["round_trip"] = evaluate_round_trip(model, babble_path, n=n_rt, progress=progress)  # also model.meta
    model.save(out / SELF_MODEL_FILE)
    step("self_model", t0, **{k: v for k, v in sm_report.items() if not isinstance(v, (list, np.ndarray))})

    t0 = time.perf_counter()
    bank = BabbleBank.from_babble(babble_path, fraction=BANK_FRACTION)
    bank.save(out / BABBLE_BANK_FILE)
    step("babble_bank", t0, n=len(bank))

    t0 = time.perf_counter()
    cdir = Path(corpus_dir) if corpus_dir is not None else train_corpus_dir(progress=progress, workers=workers)
    step("corpus", t0, path=str(cdir), args=TRAIN_CORPUS_ARGS)

    for mode, fname in AUDIO_TO_LIPS_FILES.items():
        t0 = time.perf_counter()
        a2l, a_report = train_audio_to_lips(cdir, mode=mode, seed=seed, epochs=audio_epochs, progress=progress,
                                            threads=AUDIO_THREADS)
        a2l.save(out / fname)
        step(f"audio_to_lips_{mode}", t0, **{k: v for k, v in a_report.items() if not isinstance(v, (list, np.ndarray))})


__all__ = [ "train_lipsync"]
