"""Motor babbling: random expressions and the landmarks they produce, the data of mirror self-modeling.

The physical robot learned its self-model by making thousands of random expressions in front of a mirror.
:func:`babble` does the same on the twin: sample ``i`` is the control vector
``sample_expression(numpy.random.default_rng([seed, i]), ...)`` (Gaussian around the rest controls with std
``sigma``, clipped to [-1, 1]; ``symmetric=True`` copies each right actuator to its left twin), held for
``settle_s`` seconds from the settled neutral face; then its landmarks, motor positions, mouth measures and
(optionally) a 128x128 image of the mouth camera are recorded. Every sample starts from the same neutral state,
so a sample depends only on ``(seed, i)`` and the settings: the dataset is deterministic for a seed, and an
interrupted or extended run gives the same arrays as a single run.

Dataset (``.npz``, arrays; ``n`` samples, ``N`` = 69 landmarks):

| key | shape, dtype | content |
|---|---|---|
| ``ctrl`` | (n, 26) float32 | commanded normalized controls, actuator order |
| ``motors`` | (n, 26) float32 | settled motor positions (``FaceModel.motor_positions()``) |
| ``landmarks_mm`` | (n, N, 3) float32 | settled landmarks, head frame, mm, schema order |
| ``aperture_mm``, ``width_mm``, ``protrusion_mm`` | (n,) float32 | mouth measures (``FaceModel.mouth()``) |
| ``images`` | (n, 128, 128, 3) uint8 | only with ``images=True``: the ``"mouth"`` camera, ``"obs"`` preset, mirrored |
| ``landmark_ids`` | (N,) int64 | MediaPipe ids of the landmark rows |
| ``actuator_names`` | (26,) str | actuator order of ``ctrl`` / ``motors`` |
| ``rest_ctrl`` | (26,) float64 | controls of the neutral face |
| ``neutral_landmarks_mm`` | (N, 3) float64 | landmarks of the neutral face |
| ``seed``, ``sigma``, ``settle_s``, ``symmetric``, ``variant``, ``distribution``, ``version`` | scalars | the settings (``distribution`` absent in files made before it existed: ``"gaussian"``) |

Resumable: samples are written in chunks of ``chunk`` to ``<out>.parts/`` (each chunk file written atomically);
a rerun with the same settings continues after the last complete chunk, and the final file is assembled (also
atomically) and the parts removed. Asking an existing dataset for more samples extends it.

Parallel: ``workers > 1`` simulates chunks at the same time with ``executor`` ``"thread"`` (default: threads of this
process, each on its own copy of the model), ``"process"`` (worker processes) or ``"ray"`` (Ray tasks, on a local
runtime or the cluster at ``address``; :mod:`facetwin.envs.babble_executors`). The arrays are the same for every
executor and worker count, and the file does not record either.

>>> babble(2000, "babble.npz", seed=0)              # one core (fast variant)
>>> babble(2000, "babble.npz", seed=0, workers=2)   # the same file, on both cores
>>> d = np.load("babble.npz"); d["ctrl"].shape, d["landmarks_mm"].shape   # (2000, 26), (2000, 69, 3)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from facetwin.files import atomic_write
from facetwin.sim.landmarks import mouth_measures

from .babble_executors import DEFAULT_EXECUTOR, check_executor, parallel_chunks
from .mirror_self_model import TARGET_DISTRIBUTIONS, TARGET_SETTLE_S, sample_expression

VERSION = 1
DEFAULT_SIGMA = 0.35
DEFAULT_SETTLE_S = TARGET_SETTLE_S  # 2 s: the slowest expressions need that to settle within 0.01 mm
DEFAULT_CHUNK = 100


def _savez_atomic(path: Path, **arrays) -> None:
    atomic_write(path, lambda tmp: np.savez(tmp, **arrays))


PER_SAMPLE_KEYS = ("ctrl", "motors", "landmarks_mm", "aperture_mm", "width_mm", "protrusion_mm")


def _collect_one(face, u: np.ndarray, settle_s: float, renderer) -> dict[str, np.ndarray]:
    """Hold ``u`` for ``settle_s`` from the neutral face and record one sample."""
    face.reset(u)
    face.settle(u, settle_s)
    if face.is_diverged():
        raise RuntimeError(f"the face diverged while babbling the controls {np.round(u, 3).tolist()}")
    lm = face.landmarks_mm()
    mm = mouth_measures(lm, face.neutral_landmarks_mm)
    out = {
        "ctrl": u.astype(np.float32),
        "motors": face.motor_positions().astype(np.float32),
        "landmarks_mm": lm.astype(np.float32),
        **{k: np.float32(v) for k, v in mm.items()},
    }
    if renderer is not None:
        out["images"] = renderer.render()
    return out


_WORKER: dict = {}


def _close_worker() -> None:
    r = _WORKER.pop("renderer", None)
    if r is not None:
        r.close()


def simulate_chunk(job: dict, a: int, b: int, face, renderer=None, on_sample=None, stop=None
                   ) -> dict[str, np.ndarray] | None:
    """The arrays of samples ``a .. b - 1`` (sample ``k`` drawn from ``(job["seed"], k)``) simulated on ``face``
    (``renderer``: its mouth camera, with ``job["images"]``); ``on_sample(1)`` after each sample. Returns None when
    the event ``stop`` is set before the chunk is done."""
    names, rest = list(face.actuator_names), face.rest_ctrl.copy()
    rows = []
    for k in range(a, b):
        if stop is not None and stop.is_set():
            return None
        u = sample_expression(np.random.default_rng([job["seed"], k]), rest, names, distribution=job["distribution"],
                              sigma=job["sigma"], symmetric=job["symmetric"])
        rows.append(_collect_one(face, u, job["settle_s"], renderer))
        if on_sample is not None:
            on_sample(1)
    return {key: np.stack([r[key] for r in rows]) for key in rows[0]}


def _worker_renderer(job: dict, face):
    """This process's mouth-camera renderer of ``face`` (made once), or None without images."""
    if not job["images"]:
        return None
    if _WORKER.get("renderer_face") is not face:
        from facetwin.sim.render import MirrorRenderer

        _close_worker()
        _WORKER.update(renderer=MirrorRenderer(face, "obs", camera="mouth"), renderer_face=face)
    return _WORKER["renderer"]


def chunk_task(job: dict, a: int, b: int) -> tuple[int, int, dict[str, np.ndarray]]:
    """``(a, b, arrays)`` of samples ``a .. b - 1``, simulated on this process's own face of ``job["variant"]``
    (loaded once per process): the task of a worker process or a Ray worker."""
    from facetwin.sim import FaceModel

    if _WORKER.get("variant") != job["variant"]:
        _WORKER.update(variant=job["variant"], face=FaceModel.load(job["variant"]))
    face = _WORKER["face"]
    return a, b, simulate_chunk(job, a, b, face, _worker_renderer(job, face))


def _write_chunk(job: dict, a: int, b: int, arrays: dict[str, np.ndarray]) -> None:
    _savez_atomic(Path(job["parts"]) / f"chunk_{a:09d}_{b:09d}.npz", **arrays)


def _check_args(n, chunk, sigma, settle_s, distribution: str, workers, executor, address) -> None:
    """Raise ``ValueError`` for settings :func:`babble` cannot run with."""
    check_executor(executor, address)
    if distribution not in TARGET_DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {distribution!r}; choose one of {', '.join(TARGET_DISTRIBUTIONS)}")
    if int(workers) < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if int(n) < 1:
        raise ValueError(f"n must be >= 1, got {int(n)}")
    if int(chunk) < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    if not (np.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    if not settle_s > 0:
        raise ValueError(f"settle_s must be > 0, got {settle_s}")


def _meta_of(d) -> dict:
    """The settings a dataset was made with (as :func:`babble` writes them to ``meta.json``)."""
    return {"version": int(d["version"]), "seed": int(d["seed"]), "symmetric": bool(d["symmetric"]),
            "images": "images" in d, "variant": str(d["variant"]), "sigma": float(d["sigma"]),
            "settle_s": float(d["settle_s"]),
            "distribution": str(d["distribution"]) if "distribution" in d else "gaussian"}


def _existing_samples(out: Path, meta: dict, n: int, images: bool) -> dict[str, np.ndarray] | None:
    """The per-sample arrays of the dataset already at ``out`` (empty if there is none) to extend, or None when it
    already has ``n`` samples. Raises if it was made with other settings."""
    if not out.exists():
        return {}
    with np.load(out) as d:
        old = _meta_of(d)
        if old != meta:
            raise ValueError(
                f"{out} was made with other settings ({old}); pass resume=False to overwrite it or choose another path"
            )
        if len(d["ctrl"]) >= n:
            return None
        keys = PER_SAMPLE_KEYS + (("images",) if images else ())
        return {k: d[k] for k in keys}


def _chunk_files(parts: Path) -> list[tuple[int, int, Path]]:
    """The chunk files in ``parts`` as (first sample, end sample, path), in order."""
    found = []
    for p in parts.glob("chunk_*.npz"):
        a, b = (int(x) for x in p.stem.split("_")[1:3])
        found.append((a, b, p))
    return sorted(found)


def _resume_parts(parts: Path, meta: dict, resume: bool, start: int, n: int) -> int:
    """Prepare the chunk folder for a run with ``meta``: keep the complete, contiguous chunks from sample ``start``
    (a partial run with other settings is removed, or an error when resuming). Returns the first sample to do."""
    if parts.exists():
        mpath = parts / "meta.json"
        old = json.loads(mpath.read_text()) if mpath.exists() else None
        if old != meta:
            if old is not None and resume:
                raise ValueError(
                    f"{parts} holds a partial run with other settings ({old}); pass resume=False to start over"
                )
            shutil.rmtree(parts)
    parts.mkdir(exist_ok=True)
    (parts / "meta.json").write_text(json.dumps(meta))
    done = start
    for a, b, p in _chunk_files(parts):
        if a == done and b <= n:
            done = b
        else:
            p.unlink()  # a chunk from another request size or beyond a gap: recomputed
    return done


def _run_chunks(job: dict, todo: list[tuple[int, int]], face, workers: int, executor: str | None,
                address: str | None, bar) -> None:
    """Simulate and write the chunks ``todo``: in this process (one worker or one chunk, unless Ray is asked for),
    else with ``executor`` (:mod:`facetwin.envs.babble_executors`; default the fastest on one machine)."""
    tick = bar.update if bar is not None else None
    try:
        if not todo:  # every chunk already done: no pool, no Ray runtime
            return
        if executor != "ray" and (int(workers) == 1 or len(todo) < 2):
            for a, b in todo:
                _write_chunk(job, a, b, simulate_chunk(job, a, b, face, _worker_renderer(job, face), tick))
            return
        for a, b, arrays in parallel_chunks(executor or DEFAULT_EXECUTOR, job, todo, face, workers=int(workers),
                                            simulate=simulate_chunk, task=chunk_task, address=address,
                                            on_sample=tick):
            _write_chunk(job, a, b, arrays)
    finally:
        if bar is not None:
            bar.close()
        _close_worker()


def _write_dataset(out: Path, parts: Path, prefix: dict[str, np.ndarray], face, n: int, meta: dict) -> None:
    """Assemble the existing samples and the chunks into the final file (atomically) and remove the chunks."""
    pieces: dict[str, list[np.ndarray]] = {k: ([prefix[k]] if prefix else []) for k in prefix}
    for _a, _b, p in _chunk_files(parts):
        with np.load(p) as d:
            for k in d.files:
                pieces.setdefault(k, []).append(d[k])
    data = {k: np.concatenate(v) for k, v in pieces.items()}
    assert len(data["ctrl"]) == n, (len(data["ctrl"]), n)
    _savez_atomic(
        out,
        **data,
        landmark_ids=np.asarray(face.landmark_ids, dtype=np.int64),
        actuator_names=np.array(list(face.actuator_names)),
        rest_ctrl=face.rest_ctrl.copy(),
        neutral_landmarks_mm=face.neutral_landmarks_mm.copy(),
        seed=np.int64(meta["seed"]),
        sigma=np.float64(meta["sigma"]),
        settle_s=np.float64(meta["settle_s"]),
        symmetric=np.bool_(meta["symmetric"]),
        variant=np.array(meta["variant"]),
        distribution=np.array(meta["distribution"]),
        version=np.int64(VERSION),
    )
    shutil.rmtree(parts, ignore_errors=True)


def babble(
    n: int,
    out_path: str | os.PathLike,
    *,
    seed: int = 0,
    symmetric: bool = True,
    images: bool = False,
    variant: str = "fast",
    sigma: float = DEFAULT_SIGMA,
    settle_s: float = DEFAULT_SETTLE_S,
    chunk: int = DEFAULT_CHUNK,
    progress: bool = True,
    resume: bool = True,
    distribution: str = "gaussian",
    workers: int = 1,
    executor: str | None = None,
    address: str | None = None,
) -> Path:
    """Collect ``n`` babbled expressions into the ``.npz`` dataset ``out_path`` (see the module docstring).

    ``resume=True`` continues an interrupted run (or extends an existing dataset) with the same settings;
    ``resume=False`` starts over. ``distribution`` is that of :func:`sample_expression` (``"speech"``: the mouth
    poses of speech, what the lip-sync self-model trains on). ``workers > 1`` simulates chunks in parallel with
    ``executor`` (``"thread"``, the default, ``"process"`` or ``"ray"``: :mod:`facetwin.envs.babble_executors`);
    ``executor="ray"`` with ``address`` joins a Ray cluster (``workers`` tasks at a time). Every executor and worker
    count gives the same arrays, and neither is recorded in the file. Returns the path written.
    """
    _check_args(n, chunk, sigma, settle_s, distribution, workers, executor, address)
    n = int(n)
    out = Path(out_path)
    if out.suffix != ".npz":
        out = out.with_name(out.name + ".npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    parts = out.with_name(out.name + ".parts")
    meta = {"version": VERSION, "seed": int(seed), "symmetric": bool(symmetric), "images": bool(images),
            "variant": str(variant), "sigma": float(sigma), "settle_s": float(settle_s),
            "distribution": str(distribution)}
    prefix: dict[str, np.ndarray] | None = {}
    if not resume:
        shutil.rmtree(parts, ignore_errors=True)
    else:
        prefix = _existing_samples(out, meta, n, images)
        if prefix is None:
            return out
    done = _resume_parts(parts, meta, resume, len(prefix["ctrl"]) if prefix else 0, n)

    from facetwin.sim import FaceModel

    face = FaceModel.load(variant)
    todo = [(a, min(a + int(chunk), n)) for a in range(done, n, int(chunk))]
    job = dict(seed=int(seed), sigma=float(sigma), symmetric=bool(symmetric), images=bool(images), variant=variant,
               settle_s=float(settle_s), distribution=distribution, parts=str(parts))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, initial=done, desc="babble", unit="expr")
    _run_chunks(job, todo, face, workers, executor, address, bar)
    _write_dataset(out, parts, prefix, face, n, meta)
    return out
