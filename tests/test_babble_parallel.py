"""Parallel data collection (issue 15): babbling with threads, processes and Ray tasks, and corpus items as Ray tasks,
give the same data as one worker for the same seed."""

from __future__ import annotations

import argparse
import filecmp
import sys
import threading

import numpy as np
import pytest

from facetwin.envs import babble as bab
from facetwin.envs.babble import babble

KW = dict(seed=5, chunk=1, settle_s=0.1, progress=False, images=True)
N = 5


def _arrays(path) -> dict[str, np.ndarray]:
    with np.load(path) as d:
        return {k: d[k] for k in d.files}


def _assert_same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    """The reference: one worker, in this process."""
    return _arrays(babble(N, tmp_path_factory.mktemp("one") / "one.npz", workers=1, **KW))


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_every_worker_count_gives_the_same_data(executor, one_worker, tmp_path):
    for workers in (1, 2, 4):
        got = _arrays(babble(N, tmp_path / f"{executor}{workers}.npz", workers=workers, executor=executor, **KW))
        _assert_same(got, one_worker)
    assert got["images"].shape == (N, 128, 128, 3) and got["images"].std() > 1  # each thread's own renderer drew
    assert len(np.unique(got["ctrl"], axis=0)) == N


def test_a_failing_thread_stops_the_run_and_the_rerun_resumes(one_worker, tmp_path, monkeypatch):
    calls = {"n": 0}
    orig = bab._collect_one

    def flaky(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("the face diverged (injected)")
        return orig(*args)

    monkeypatch.setattr(bab, "_collect_one", flaky)
    before = threading.active_count()
    with pytest.raises(RuntimeError, match="injected"):
        babble(N, tmp_path / "t.npz", workers=2, executor="thread", **KW)
    assert threading.active_count() == before  # every babbling thread has ended
    parts = sorted(p.name for p in (tmp_path / "t.npz.parts").glob("chunk_*.npz"))
    assert 1 <= len(parts) < N  # the chunks finished before the failure are kept
    monkeypatch.setattr(bab, "_collect_one", orig)
    _assert_same(_arrays(babble(N, tmp_path / "t.npz", workers=2, executor="thread", **KW)), one_worker)
    assert not (tmp_path / "t.npz.parts").exists()


def test_bad_executor_or_address_and_the_cli_options(tmp_path, monkeypatch, capsys):
    with pytest.raises(ValueError, match="executor"):
        babble(2, tmp_path / "x.npz", workers=2, executor="gpu")
    with pytest.raises(ValueError, match="address"):
        babble(2, tmp_path / "x.npz", workers=2, executor="thread", address="auto")
    from facetwin.cli.learning import add_babble_arguments, main_babble

    parser = add_babble_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["-n", "3", "--out", str(tmp_path / "cli.npz"), "--settle", "0.1", "--chunk", "1",
                              "--workers", "2", "--executor", "thread", "--quiet"])
    assert main_babble(args) == 0 and "3 expressions" in capsys.readouterr().out
    monkeypatch.setitem(sys.modules, "ray", None)  # the [scale] extra missing: one line naming the install
    args = parser.parse_args(["-n", "2", "--out", str(tmp_path / "r.npz"), "--workers", "2", "--executor", "ray",
                              "--address", "auto", "--quiet"])
    assert main_babble(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and 'pip install -e ".[scale]"' in err


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray runtime of 2 CPUs for this module's Ray tests, shut down after."""
    from facetwin.ray_tasks import import_ray, init_ray

    ray = import_ray()  # the [scale] extra is part of [test]: a missing Ray fails here, not skips
    init_ray(ray, address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def test_ray_tasks_give_the_same_babbling(local_ray, one_worker, tmp_path):
    _assert_same(_arrays(babble(N, tmp_path / "ray.npz", workers=2, executor="ray", **KW)), one_worker)
    assert local_ray.is_initialized()  # the caller's runtime is joined, not shut down


def test_ray_tasks_give_the_same_corpus_files(local_ray, tmp_path):
    from facetwin.audio.corpus import build_corpus

    kw = dict(langs=("en", "fr"), heldout_langs=("fr",), include_songs=False, seed=3, progress=False)
    one = build_corpus(tmp_path / "one", 4, workers=1, **kw)
    two = build_corpus(tmp_path / "ray", 4, workers=2, executor="ray", **kw)
    assert one == two and len(one["items"]) == 4
    for item in one["items"]:
        for key in ("audio", "data"):
            assert filecmp.cmp(tmp_path / "one" / item[key], tmp_path / "ray" / item[key], shallow=False), item[key]
    with pytest.raises(ValueError, match="executor"):
        build_corpus(tmp_path / "x", 2, executor="dask", **kw)
