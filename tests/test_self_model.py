"""The mirror self-model (facetwin.agents.self_model): training, shipped weights, API contract, persistence."""

import numpy as np
import pytest
import torch

from facetwin.agents.self_model import MOUTH_ACTUATORS, MOUTH_INDEX, SelfModel
from facetwin.agents.train_self_model import evaluate_round_trip, heldout_split, round_trip_errors, train_self_model
from facetwin.envs.babble import babble
from facetwin.sim.actuators import rest_controls
from facetwin.sim.playback import lip_columns


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def shipped() -> SelfModel:
    return SelfModel.load_shipped()


@pytest.fixture(scope="module")
def heldout_babble(tmp_path_factory) -> dict[str, np.ndarray]:
    """20 speech expressions from a seed the shipped weights never saw (training used seed 0)."""
    path = babble(20, tmp_path_factory.mktemp("babble") / "b.npz", seed=123, distribution="speech", settle_s=1.0,
                  progress=False)
    with np.load(path) as d:
        cols = lip_columns()
        return {"ctrl": d["ctrl"].astype(float), "lips": d["landmarks_mm"][:, cols] - d["neutral_landmarks_mm"][cols],
                "raw": {k: d[k] for k in d.files}}


def _synthetic_babble(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A smooth made-up face: the lips respond nonlinearly to the mouth controls; other landmarks never move."""
    rng = np.random.default_rng(seed)
    ctrl = np.tile(rest_controls(), (n, 1))
    ctrl[:, MOUTH_INDEX] = rng.uniform(-1, 1, (n, len(MOUTH_INDEX)))
    a = np.random.default_rng(99).normal(size=(len(MOUTH_INDEX), 40 * 3))
    lips = (np.tanh(ctrl[:, MOUTH_INDEX]) @ a + 0.3 * np.sin(ctrl[:, MOUTH_INDEX] @ a)).reshape(n, 40, 3)
    neutral = np.random.default_rng(7).normal(size=(69, 3)) * 20
    lm = np.tile(neutral, (n, 1, 1))
    lm[:, lip_columns()] += lips
    return {"ctrl": ctrl, "landmarks_mm": lm, "neutral_landmarks_mm": neutral}


# -------------------------------------------------------------------------------------------- (a) training
def test_training_makes_the_losses_fall_and_is_deterministic():
    data = _synthetic_babble(300)
    model, rep = train_self_model(data, seed=1, epochs=(25, 10), progress=False)
    f, g = rep["forward_loss"], rep["inverse_loss"]
    assert len(f) == 25 and len(g) == 10 and rep["epochs_run"] == [25, 10] and not rep["stopped_early"]
    assert f[-1] < 0.2 * f[0], f
    assert g[-1] < 0.6 * g[0], g
    assert rep["n_train"] == 270 and rep["n_heldout"] == 30 and rep["threads"] == 1
    assert np.isfinite(rep["forward_heldout_mm"]) and rep["forward_heldout_mm"] > rep["forward_train_mm"] * 0.5
    assert model.meta["training"]["epochs"] == [25, 10] and model.meta["babble"]["n"] == 300
    again, rep2 = train_self_model(data, seed=1, epochs=(25, 10), progress=False)
    assert rep2["forward_loss"] == f and rep2["inverse_loss"] == g
    x = data["landmarks_mm"][:3, lip_columns()]
    assert np.array_equal(again.inverse(x), model.inverse(x))


def test_training_rejects_bad_arguments():
    data = _synthetic_babble(20)
    with pytest.raises(TypeError, match="npz path or a dict"):
        train_self_model([1, 2], progress=False)
    with pytest.raises(ValueError, match="lacks the keys"):
        train_self_model({"ctrl": data["ctrl"]}, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        train_self_model(data, epochs=0, progress=False)
    with pytest.raises(ValueError, match="heldout_fraction"):
        train_self_model(data, heldout_fraction=1.0, progress=False)
    with pytest.raises(ValueError, match="max_minutes"):
        train_self_model(data, max_minutes=0, progress=False)
    tr, ho = heldout_split(100, 0.1)
    assert list(ho) == list(range(90, 100)) and list(tr) == list(range(90))


# -------------------------------------------------------------------------------------------- (b) shipped weights
def test_shipped_forward_model_predicts_heldout_babble(shipped, heldout_babble):
    pred = shipped.forward_lips(heldout_babble["ctrl"])
    err = np.linalg.norm(pred - heldout_babble["lips"], axis=-1).mean(-1)
    # measured: 0.24 mm mean, 0.89 mm max here (0.20 mm mean on the 600 held-out expressions of the training set)
    assert err.mean() < 0.35, err.mean()
    assert err.max() < 1.5, err.max()
    meta = shipped.meta
    assert meta["babble"]["distribution"] == "speech" and meta["babble"]["n"] == 6000
    assert meta["errors"]["forward_heldout_mm"] < 0.3 and meta["errors"]["round_trip_abs_mm"] <= 1.0


def test_shipped_inverse_round_trip_in_the_simulator(shipped, heldout_babble):
    rt = round_trip_errors(shipped, heldout_babble["lips"])
    assert rt["abs_mm"].shape == (20,) and rt["ctrl"].shape == (20, 26) and rt["lips_mm"].shape == (20, 40, 3)
    # measured: abs 0.31 mm, shape 0.16 mm mean here (0.26 / 0.13 mm on 100 held-out expressions of the training set)
    assert rt["abs_mm"].mean() <= 0.5, rt["abs_mm"].mean()
    assert rt["shape_mm"].mean() <= 0.3, rt["shape_mm"].mean()
    assert np.all(rt["shape_mm"] <= rt["abs_mm"] + 1e-9)
    # any absolute offset of the targets: the shape is what the inverse model uses
    shifted = round_trip_errors(shipped, heldout_babble["lips"][:3] + np.array([5.0, 0.0, -3.0]))
    np.testing.assert_allclose(shifted["shape_mm"], rt["shape_mm"][:3], atol=1e-4)
    single = round_trip_errors(shipped, heldout_babble["lips"][0])
    assert np.ndim(single["abs_mm"]) == 0 and abs(single["abs_mm"] - rt["abs_mm"][0]) < 1e-4


def test_evaluate_round_trip_fills_meta(heldout_babble):
    model = SelfModel.load_shipped()  # a private copy: its meta changes
    out = evaluate_round_trip(model, heldout_babble["raw"], n=2, heldout_fraction=0.1)
    ref = round_trip_errors(model, heldout_babble["lips"][18:20])
    assert out["round_trip_n"] == 2 and out["round_trip_settle_s"] == 1.0 and out["round_trip_variant"] == "fast"
    assert abs(out["round_trip_abs_mm"] - ref["abs_mm"].mean()) < 1e-9
    assert model.meta["errors"]["round_trip_abs_mm"] == out["round_trip_abs_mm"]
    with pytest.raises(ValueError, match="held-out expressions"):
        evaluate_round_trip(model, heldout_babble["raw"], n=3)


# -------------------------------------------------------------------------------------------- (c) API contract
def test_inverse_shapes_range_and_rest_values(shipped, heldout_babble):
    lips = heldout_babble["lips"]
    rest = rest_controls()
    other = np.setdiff1d(np.arange(26), MOUTH_INDEX)
    assert len(MOUTH_ACTUATORS) == 11 and MOUTH_ACTUATORS[-1] == "jaw_open"
    u = shipped.inverse(lips[:4], prev_ctrl=heldout_babble["ctrl"][4:8])
    assert u.shape == (4, 26) and u.dtype == np.float64
    assert np.all(np.abs(u) < 1.0)
    assert np.array_equal(u[:, other], np.broadcast_to(rest[other], (4, len(other))))
    assert shipped.inverse(lips[0]).shape == (26,)
    assert shipped.inverse(lips[:6].reshape(2, 3, 40, 3)).shape == (2, 3, 26)
    np.testing.assert_allclose(shipped.inverse(lips[:4] + 7.0), shipped.inverse(lips[:4]), atol=1e-5)
    # prev_ctrl=None means rest; a (26,) previous command broadcasts over the batch
    np.testing.assert_array_equal(shipped.inverse(lips[:4]), shipped.inverse(lips[:4], prev_ctrl=rest))
    seq = shipped.inverse_sequence(np.repeat(lips[:1], 5, axis=0))
    assert seq.shape == (5, 26) and np.array_equal(seq[:, other], np.tile(rest[other], (5, 1)))
    np.testing.assert_allclose(seq[1], shipped.inverse(lips[0], prev_ctrl=seq[0]), atol=1e-6)
    assert np.abs(seq[-1] - seq[-2]).max() < 0.02  # a held target: the commands settle
    assert shipped.forward_lips(heldout_babble["ctrl"][:4]).shape == (4, 40, 3)
    assert shipped.forward_lips(rest).shape == (40, 3)
    assert np.abs(shipped.forward_lips(rest)).mean() < 0.3  # the rest command: the neutral lips
    step = shipped.inverse_step_fn()  # the numpy copy for control loops: the same numbers
    for i in range(4):
        np.testing.assert_allclose(step(lips[i], heldout_babble["ctrl"][4 + i]),
                                   shipped.inverse(lips[i], prev_ctrl=heldout_babble["ctrl"][4 + i]), atol=1e-5)


def test_bad_shapes_raise_clear_errors(shipped):
    with pytest.raises(ValueError, match=r"target_lips must have shape \(\.\.\., 40, 3\)"):
        shipped.inverse(np.zeros((4, 39, 3)))
    with pytest.raises(ValueError, match="prev_ctrl must have shape"):
        shipped.inverse(np.zeros((4, 40, 3)), prev_ctrl=np.zeros((4, 11)))
    with pytest.raises(ValueError, match="does not match the batch shape"):
        shipped.inverse(np.zeros((4, 40, 3)), prev_ctrl=np.zeros((3, 26)))
    with pytest.raises(ValueError, match="NaN or inf"):
        shipped.inverse(np.full((40, 3), np.nan))
    with pytest.raises(ValueError, match=r"ctrl must have shape \(\.\.\., 26\)"):
        shipped.forward_lips(np.zeros(11))
    with pytest.raises(ValueError, match=r"\(T, 40, 3\)"):
        shipped.inverse_sequence(np.zeros((40, 3)))
    with pytest.raises(ValueError, match="hidden"):
        SelfModel(hidden=())


# -------------------------------------------------------------------------------------------- (d) persistence
def test_save_load_roundtrip_gives_identical_outputs(shipped, heldout_babble, tmp_path):
    path = shipped.save(tmp_path / "sm.pt")
    ck = torch.load(path, weights_only=True)
    assert set(ck) == {"version", "config", "forward", "inverse", "meta"}
    back = SelfModel.load(path)
    assert back.meta == shipped.meta and back.hidden == shipped.hidden
    lips, ctrl = heldout_babble["lips"], heldout_babble["ctrl"]
    np.testing.assert_array_equal(back.inverse(lips, prev_ctrl=ctrl), shipped.inverse(lips, prev_ctrl=ctrl))
    np.testing.assert_array_equal(back.forward_lips(ctrl), shipped.forward_lips(ctrl))
    np.testing.assert_array_equal(back.inverse_sequence(lips), shipped.inverse_sequence(lips))
    torch.save({"version": 0}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a self-model checkpoint"):
        SelfModel.load(tmp_path / "bad.pt")
