"""Independent tasks spread over a Ray cluster (the ``[scale]`` extra): the one place the data builders import Ray.

:func:`ray_map` runs ``fn(*args)`` for each argument tuple as a Ray task, at most ``workers`` at a time, and yields
the results as they finish. It joins the Ray runtime this process already started (``ray.init`` called by the
caller), else the cluster at ``address`` (``"HEAD:6379"``, ``"auto"``, or the ``RAY_ADDRESS`` environment
variable), else starts a local runtime with ``workers`` CPUs; a runtime it started is shut down when the iteration
ends. ``fn`` must be a module-level function of an installed package (Ray workers import it by name), and a task's
result travels back to this process: the caller writes the files, so the workers need no shared file system. Used by :func:`facetwin.envs.babble.babble` (``executor="ray"``) and
:func:`facetwin.audio.corpus.build_corpus` (``executor="ray"``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

SCALE_HINT = 'pip install -e ".[scale]"'


def import_ray():
    """The ``ray`` module; ``ImportError`` with the one-line install hint when the ``[scale]`` extra is missing."""
    try:
        import ray
    except ImportError:
        raise ImportError(f'executor="ray" needs Ray (the [scale] extra): {SCALE_HINT}') from None
    return ray


def init_ray(ray, **kwargs) -> None:
    """``ray.init(**kwargs)`` with this package's own folder as the working directory during the call.

    Ray puts the driver's working directory first on its workers' ``sys.path``. Run from a facetwin checkout with a
    regular (non-editable) install, the checkout's ``facetwin/`` folder (the package root only: the subpackages are
    its sibling folders, mapped at install time) would then shadow the installed package in every worker
    (``No module named 'facetwin.envs'``). The directory above the imported package is where Python found it, so it
    shadows nothing."""
    here = os.getcwd()
    os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # above facetwin/ (this file's folder)
    try:
        ray.init(**kwargs)
    finally:
        os.chdir(here)


@contextmanager
def ray_runtime(address: str | None = None, num_cpus: int | None = None):
    """The ``ray`` module with a runtime to submit to: the one already initialized in this process, the cluster at
    ``address`` (or ``$RAY_ADDRESS``), or a new local runtime of ``num_cpus`` CPUs. A runtime started here is shut
    down on exit."""
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        if address is None and not os.environ.get("RAY_ADDRESS"):
            # "local": a runtime of our own, even where `ray start` left one running on this machine
            init_ray(ray, address="local", num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING)
        else:
            init_ray(ray, address=address, logging_level=logging.WARNING)
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def ray_map(fn: Callable, args: Iterable[tuple], *, workers: int, address: str | None = None
            ) -> Iterator[tuple[int, object]]:
    """Yield ``(index, fn(*args[index]))`` as the Ray tasks finish (completion order), with at most ``workers``
    tasks in flight (one CPU each). A task's exception is raised here; the tasks still running are then cancelled."""
    if int(workers) < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    todo = list(enumerate(args))
    with ray_runtime(address, num_cpus=int(workers)) as ray:
        remote = ray.remote(num_cpus=1)(fn)
        pending: dict = {}
        try:
            while todo or pending:
                while todo and len(pending) < int(workers):
                    i, a = todo.pop(0)
                    pending[remote.remote(*a)] = i
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                yield pending.pop(ref), ray.get(ref)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
