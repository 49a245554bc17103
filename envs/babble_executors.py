"""Where babbling's chunks are simulated in parallel: worker processes, threads, or Ray tasks.

:func:`facetwin.envs.babble.babble` hands its chunks (ranges of sample indices) to :func:`parallel_chunks`, which
yields each chunk's arrays as it finishes; babble writes the chunk files. Sample ``i`` depends only on
``(seed, i)`` and starts from the same neutral state, so every executor and worker count gives the same arrays.

* ``"thread"`` (the default): threads of this process, each on its own copy of the compiled model and its own data
  (MuJoCo's ``mj_step`` releases the GIL; only the few numpy operations of a control step hold it); no start-up.
* ``"process"``: spawned worker processes (``multiprocessing``), each loading the face once; one machine.
* ``"ray"``: Ray tasks (``[scale]`` extra, :mod:`facetwin.ray_tasks`) on a local runtime or the cluster at
  ``address``; each Ray worker loads the face once and the arrays come back to this process.

Why not ``mujoco.rollout``: a sample's control step turns gravity with the neck (``FaceModel.step`` sets
``model.opt.gravity`` from the room body's pose before each control period), which a rollout over one model cannot
do, and rolling out one control period at a time (a model copy per sample, its gravity set between calls) ends
2.7e-7 mm away from ``mj_step``'s landmarks after 2 s (not bit-identical), with no gain over threads calling
``mj_step``.
"""

from __future__ import annotations

import copy
import queue
import threading
from collections.abc import Callable, Iterator

import mujoco
import numpy as np

EXECUTORS = ("process", "thread", "ray")
DEFAULT_EXECUTOR = "thread"  # the fastest measured on one machine (benchmarks/bench_babble.py, README "Speed")

Chunk = tuple[int, int, dict[str, np.ndarray]]


def check_executor(executor: str | None, address: str | None) -> None:
    """``ValueError`` for an unknown executor, or an ``address`` without ``executor="ray"``."""
    if executor is not None and executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    if address is not None and executor != "ray":
        raise ValueError(f"address={address!r} needs executor='ray' (the address of a Ray cluster)")


def clone_face(face):
    """A :class:`~facetwin.sim.FaceModel` sharing ``face``'s tables but with its own copy of the compiled model and
    its own data, reset to the same settled neutral state (what a thread simulates on)."""
    twin = copy.copy(face)
    twin.model = copy.deepcopy(face.model)
    twin.data = mujoco.MjData(twin.model)
    twin.reset()
    return twin


def parallel_chunks(executor: str, job: dict, todo: list[tuple[int, int]], face, *, workers: int, simulate: Callable,
                    task: Callable, address: str | None = None, on_sample: Callable | None = None
                    ) -> Iterator[Chunk]:
    """Yield ``(a, b, arrays)`` for each chunk ``(a, b)`` of ``todo`` as it finishes, simulated by ``executor``
    with ``workers`` workers. ``simulate(job, a, b, face, renderer, on_sample, stop)`` computes a chunk on a given
    face (threads); ``task(job, a, b)`` computes it on a face of its own process (processes, Ray tasks; a
    module-level function). ``on_sample(k)`` reports progress: per sample with threads, per chunk otherwise."""
    if executor == "thread":
        yield from _thread_chunks(job, todo, face, int(workers), simulate, on_sample)
        return
    if executor == "process":
        results = _process_chunks(task, job, todo, int(workers))
    elif executor == "ray":
        from facetwin.ray_tasks import ray_map

        results = (r for _i, r in ray_map(task, [(job, a, b) for a, b in todo], workers=int(workers),
                                          address=address))
    else:
        raise ValueError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    for a, b, arrays in results:
        if on_sample is not None:
            on_sample(b - a)
        yield a, b, arrays


def _process_chunks(task: Callable, job: dict, todo: list[tuple[int, int]], workers: int) -> Iterator[Chunk]:
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(min(workers, len(todo))) as pool:
        yield from pool.imap_unordered(_call, [(task, job, a, b) for a, b in todo])


def _call(args: tuple) -> Chunk:
    """``task(job, a, b)`` from one tuple (what ``Pool.imap_unordered`` passes)."""
    task, *rest = args
    return task(*rest)


def _thread_chunks(job: dict, todo: list[tuple[int, int]], face, workers: int, simulate: Callable,
                   on_sample: Callable | None) -> Iterator[Chunk]:
    """The thread executor: ``workers`` threads, each with its own face (the first one ``face``) and renderer,
    taking chunks from a queue; results and per-sample ticks come back through another queue."""
    n = max(1, min(workers, len(todo)))
    faces = [face] + [clone_face(face) for _ in range(n - 1)]
    chunks: queue.SimpleQueue = queue.SimpleQueue()
    for ab in todo:
        chunks.put(ab)
    results: queue.SimpleQueue = queue.SimpleQueue()
    stop = threading.Event()
    threads = [threading.Thread(target=_thread_worker, args=(job, f, simulate, chunks, results, stop), daemon=True,
                                name=f"babble-{i}") for i, f in enumerate(faces)]
    for t in threads:
        t.start()
    try:
        finished = 0
        while finished < n:
            r = results.get()
            if r is None:
                finished += 1
            elif isinstance(r, BaseException):
                raise r
            elif isinstance(r, int):
                if on_sample is not None:
                    on_sample(r)
            else:
                yield r
    finally:
        stop.set()
        for t in threads:
            t.join()


def _thread_worker(job: dict, face, simulate: Callable, chunks: queue.SimpleQueue, results: queue.SimpleQueue,
                   stop: threading.Event) -> None:
    """One thread of :func:`_thread_chunks`: simulate chunks until none is left or ``stop`` is set; put each
    result (or the exception) on ``results``, then ``None``."""
    renderer = None
    try:
        if job["images"]:
            from facetwin.sim.render import MirrorRenderer

            renderer = MirrorRenderer(face, "obs", camera="mouth")
        while not stop.is_set():
            try:
                a, b = chunks.get_nowait()
            except queue.Empty:
                break
            arrays = simulate(job, a, b, face, renderer, results.put, stop)
            if arrays is not None:
                results.put((a, b, arrays))
    except BaseException as e:  # handed to the main thread, which raises it
        results.put(e)
    finally:
        if renderer is not None:
            renderer.close()
        results.put(None)
