"""CNN surrogate of nu: data set, inputs, models, training, checkpoint/resume, config rules.

Systems are tiny (6 x 6 lattices with r <= 0.45 so the minimum image holds, N = 36: matrix
images 72 x 72; CNNs with 2-4 channels) to keep the file near a minute on a busy core."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from tunable_solids import mechanics
from tunable_solids.studies.pruning import elasticity as el
from tunable_solids.studies.pruning import networks as nw
from tunable_solids.studies.pruning import surrogate as sg
from tunable_solids.studies.pruning import surrogate_config as sc
from tunable_solids.studies.pruning import surrogate_stages as stages

DATA = {"seed": 3, "r_range": [0.05, 0.45], "pruned_fraction": 0.5,
        "target_range": [-0.9, 0.9], "anneal": {"T0": 1e-2, "Tf": 1e-4}}  # fmt: skip
TINY = {"channels": [2, 4, 4, 4, 4], "hidden": 8, "grid": 2, "learning_rate": 3e-3, "epochs": 4,
        "batch_size": 4, "checkpoint_every": 2, "seed": 0, "augment": False}  # fmt: skip


@pytest.fixture(scope="module")
def data():
    """16 samples of a 6 x 6 data set (about half annealed), as a data-set dict."""
    arrays = sg.dataset_arrays(6, list(range(16)), DATA)
    return {k: v for k, (_, v) in arrays.items()}


def test_labels_are_exact_and_match_an_independent_route(data):
    """Stored nu equals elasticity's fresh solve of the stored network and mask (to 1e-12:
    same computation), and the core's dense route (mechanics.elastic_constants_dense on the
    network with removed bonds at stiffness 0, pseudo-inverse of the full Hessian) to 1e-8
    (different algorithm: round-off of the pseudo-inverse ~1e-12 relative, amplified by the
    1/det(C) of nu for soft networks)."""
    assert data["pruned"].any() and not data["pruned"].all()
    assert np.all(np.abs(data["nu"]) < 1)
    for s in range(0, 16, 3):
        net = sg.network_of(data, s)
        k = data["mask"][s].astype(float)
        nu = el.poisson_ratios(el.elastic_tensor(el.geometry(net), k)).nu
        assert abs(nu - data["nu"][s]) < 1e-12
        model, R, params = nw.as_core(net, k)
        C = np.asarray(mechanics.elastic_constants_dense(model, R, params))
        assert abs(el.poisson_ratio(C) - data["nu"][s]) < 1e-8


def test_samples_are_deterministic_and_prefix_independent(data):
    """Sample i depends only on (seed, i): regenerating index 5 alone gives the same network."""
    _, s5 = sg.make_sample(6, 5, DATA)
    assert np.array_equal(s5.positions, data["positions"][5])
    assert np.array_equal(s5.mask, data["mask"][5])
    assert s5.labels["nu"] == data["nu"][5]


def test_split_is_deterministic_disjoint_and_6_2_2():
    a, b = sg.split(100, 7), sg.split(100, 7)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert [len(a[k]) for k in ("train", "val", "test")] == [60, 20, 20]
    union = np.concatenate(list(a.values()))
    assert len(np.unique(union)) == 100
    assert not np.array_equal(sg.split(100, 8)["test"], a["test"])


def test_matrix_image_is_the_symmetric_dynamical_matrix(data):
    """Shape (2N, 2N), symmetric, zero sums over nodes (translation invariance), and equal
    to the core's autodiff Hessian of the spring energy (mechanics.hessian_matrix, removed
    bonds at stiffness 0) to 1e-10 (round-off of two different assemblies)."""
    s = int(np.flatnonzero(data["pruned"])[0])
    net, mask = sg.network_of(data, s), data["mask"][s]
    img = sg.matrix_image(net, mask)
    assert img.shape == (72, 72) and img.dtype == np.float32
    assert np.array_equal(img, img.T)
    D = sg.dynamical_matrix(net, mask)
    assert np.abs(D.reshape(72, 36, 2).sum(axis=1)).max() < 1e-12
    model, R, params = nw.as_core(net, mask.astype(float))
    H = np.asarray(mechanics.hessian_matrix(model, R, params))
    assert np.abs(D - H).max() < 1e-10
    assert (mask == 0).any()


def test_rendered_image_shape_and_bonds(data):
    """Pixels in [0, 1]; removing bonds removes ink (fewer lit pixels)."""
    net = sg.network_of(data, 0)
    full = sg.render_network(net, np.ones(len(net.i), bool), 32)
    half = sg.render_network(net, np.arange(len(net.i)) % 2 == 0, 32)
    assert full.shape == (32, 32) and full.min() >= 0 and full.max() <= 1
    assert half.sum() < full.sum()


@pytest.mark.parametrize("kind", ["matrix", "image"])
def test_model_output_shape(kind):
    s = {**TINY, "channels": TINY["channels"][: 5 if kind == "matrix" else 3]}
    model = sg.build_model(kind, s, 0)
    out = sg.predict_standardised(model, np.zeros((3, 1, 72, 72), np.float32))
    assert out.shape == (3,)
    # the adaptive pooling keeps the parameters independent of the input size
    assert sg.predict_standardised(model, np.zeros((1, 1, 40, 40), np.float32)).shape == (1,)


def _xy(data, n=16):
    x = sg.model_inputs("matrix", data, np.arange(n), 0)
    norm = sg.normalisation(x, data["nu"][:n])
    xs = ((x - norm.x_mean) / norm.x_std).astype(np.float32)
    ys = ((data["nu"][:n] - norm.y_mean) / norm.y_std).astype(np.float32)
    return xs, ys


def test_training_steps_lower_the_loss(data):
    """Each of five Adam steps on one batch of 8 lowers its loss (small steps along the
    gradient; a wrong gradient sign or a broken update would raise it)."""
    xs, ys = _xy(data)
    state = sg.initial_train_state(sg.build_model("matrix", TINY, 0), TINY)
    step = sg._cached_step(TINY["learning_rate"])
    model, opt = state.model, state.opt_state
    losses = [float(sg._loss(model, xs[:8], ys[:8]))]
    for _ in range(5):
        model, opt, _ = step(model, opt, xs[:8], ys[:8])
        losses.append(float(sg._loss(model, xs[:8], ys[:8])))
    assert np.all(np.diff(losses) < 0), losses


def test_checkpoint_resume_gives_identical_parameters(data, tmp_path):
    """4 epochs uninterrupted vs 2 epochs, a checkpoint written to a store, a fresh process
    state rebuilt from it (as after a kill), then 2 more: bit-identical parameters, optimiser
    state and loss curves."""
    from tunable_solids import store

    xs, ys = _xy(data)
    fresh = sg.initial_train_state(sg.build_model("matrix", TINY, 0), TINY)
    full = sg.train(fresh, xs[:12], ys[:12], xs[12:], ys[12:], TINY)

    path = tmp_path / "ckpt.zarr"
    saved = []

    def save(s):
        store.write_store(path, sg.state_arrays(s), {})
        saved.append(s.epoch)

    sg.train(fresh, xs[:12], ys[:12], xs[12:], ys[12:], TINY, checkpoint=save, stop_after=2)
    assert saved == [2]
    template = sg.initial_train_state(sg.build_model("matrix", TINY, 0), TINY)
    resumed_state = sg.state_from_arrays(store.read_store(path)[0], template)
    assert resumed_state.epoch == 2
    resumed = sg.train(resumed_state, xs[:12], ys[:12], xs[12:], ys[12:], TINY)
    for a, b in zip(sg.leaves(full.model), sg.leaves(resumed.model), strict=True):
        assert np.array_equal(a, b)
    for a, b in zip(sg.leaves(full.opt_state), sg.leaves(resumed.opt_state), strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(full.train_loss, resumed.train_loss)
    assert np.array_equal(full.val_loss, resumed.val_loss)
    assert full.best_epoch == resumed.best_epoch
    assert not np.array_equal(sg.leaves(full.model)[0], sg.leaves(fresh.model)[0])


def test_train_stage_resumes_from_its_checkpoint(tmp_path):
    """The workflow stage killed after 2 of 4 epochs (checkpoint beside its output) and run
    again gives the same store arrays as an uninterrupted run."""
    from tunable_solids import store

    settings = {"n_side": 6, "data": {**DATA, "samples": 16}, "split": sc.DEFAULT_SPLIT,
                "model": "matrix", "settings": {**TINY, "samples": 16}}  # fmt: skip
    data_path = tmp_path / "data.zarr"
    arrays, _ = stages.dataset(settings, list(range(16)))
    store.write_store(data_path, arrays, {})
    ref, ref_summary = stages.train_model(settings, [str(data_path)], None)
    out = tmp_path / "matrix.zarr"
    stages.train_model(settings, [str(data_path)], str(out), stop_after=2)
    assert stages.checkpoint_path(out).exists()
    got, summary = stages.train_model(settings, [str(data_path)], str(out))
    for k in ref:
        if k.startswith(("param_", "train_loss", "val_loss", "test_nu_pred")):
            assert np.array_equal(ref[k][1], got[k][1]), k
    assert summary["rmse"] == ref_summary["rmse"] and summary["epochs"] == 4


def test_metrics():
    exact = np.array([0.0, 0.5, -0.5, 0.2])
    m = sg.metrics(exact, exact)
    assert m["rmse"] == 0 and m["r2"] == 1
    m = sg.metrics(np.full(4, exact.mean()), exact)
    assert m["r2"] == pytest.approx(0.0)
    assert m["rmse"] == pytest.approx(exact.std())


def test_screened_annealing_confirms_every_move_exactly():
    """With a surrogate that always predicts the same value (no information), screened
    annealing still only visits exactly-evaluated rigid states and reports the fresh-solve
    nu; plain annealing evaluates every proposal exactly and calls no surrogate."""
    net = nw.distorted_triangular(6, 0.3, np.random.default_rng(0))
    opts = sg.annealing.AnnealOptions(T0=1e-2, Tf=1e-4)
    plain = sg.screened_anneal(net, 0.0, 1, opts)
    assert plain.surrogate_evaluations == 0 and plain.exact_evaluations == plain.proposals
    flat = sg.screened_anneal(net, 0.0, 1, opts, lambda x: np.zeros(len(x)), 4, "propose")
    assert flat.surrogate_evaluations == 4 * flat.proposals
    for run in (plain, flat):
        assert run.success and run.nu_final <= 0.0
        assert el.rigidity(el.geometry(net), run.mask.astype(float)).valid


def _config(**surrogate):
    base = {"n_side": 8, "data": {"samples": 100}, "models": {"matrix": {"samples": 50}}}
    return {"pruning": {"surrogate": {**copy.deepcopy(base), **surrogate}}}


def test_config_errors_name_key_value_and_what_is_allowed():
    assert sc.surrogate_errors({}) == []
    assert sc.surrogate_errors(_config()) == []
    errs = sc.surrogate_errors(_config(n_side=6))
    assert len(errs) == 1 and "pruning.surrogate.n_side: 6" in errs[0] and ">= 8" in errs[0]
    errs = sc.surrogate_errors(_config(models={"matrix": {"samples": 200}}))
    assert any("models.matrix.samples: 200 must be <= data.samples = 100" in e for e in errs)
    errs = sc.surrogate_errors(_config(split={"fractions": [0.5, 0.2, 0.2]}))
    assert any("split.fractions" in e and "sum to 1" in e for e in errs)
    errs = sc.surrogate_errors(_config(screening={}, models={"image": {}}))
    assert any("screening: needs models.matrix" in e for e in errs)
    errs = sc.surrogate_errors(_config(timing={"n_sides": [4, 7]}))
    assert errs == ["pruning.surrogate.timing.n_sides: 7 is not allowed; must be even and >= 4 "
                    "for r = 0.3"]  # fmt: skip


def test_lattice_translation_augmentation_is_a_relabelling(data):
    """D[p][:, p] for a lattice translation p is exactly the dynamical matrix of the same
    pruned network with its nodes relabelled (node sigma(a) takes node a's position, bonds
    mapped), and that network has the same exact nu (to 1e-10: same physics, different
    elimination order in the sparse LU)."""
    s = int(np.flatnonzero(data["pruned"])[0])
    net, mask = sg.network_of(data, s), data["mask"][s]
    perms = sg.lattice_translations(6)
    assert perms.shape == (18, 72)
    p = perms[7]  # dr = 2, dc = 1
    sigma = p[::2] // 2  # node a -> sigma[a]
    inv = np.argsort(sigma)
    R2 = net.positions[sigma]  # node a of the new labelling sits where node sigma[a] was
    lookup = {(int(a), int(b)): k for k, (a, b) in enumerate(zip(net.i, net.j, strict=True))}
    mask2 = np.zeros_like(mask)
    for k in np.flatnonzero(mask):
        a, b = sorted((int(inv[net.i[k]]), int(inv[net.j[k]])))
        mask2[lookup[(a, b)]] = True
    lengths = np.linalg.norm(nw.bond_vectors(R2, net.box, net.i, net.j), axis=1)
    net2 = nw.Network(R2, net.box, net.i, net.j, lengths, "triangular")
    D = sg.dynamical_matrix(net, mask)
    assert np.abs(sg.dynamical_matrix(net2, mask2) - D[p][:, p]).max() < 1e-12
    nu2 = el.poisson_ratio(el.elastic_tensor(el.geometry(net2), mask2.astype(float)))
    assert abs(nu2 - data["nu"][s]) < 1e-10
    x = sg.matrix_image(net, mask)[None, None]
    out = sg.augment(x, np.random.default_rng(0), "matrix")
    assert out.shape == x.shape and not np.array_equal(out, x)


def test_shipped_surrogate_configs_validate():
    """The toy part of config/config.yaml and the paper config pass the schema and
    surrogate_errors; the paper numbers are the paper's 455 / ~3640 training samples."""
    import yaml

    from tunable_solids.config import validate
    from tunable_solids.store import REPO_ROOT

    toy = yaml.safe_load((REPO_ROOT / "config/config.yaml").read_text())
    validate(toy)
    assert sc.surrogate_errors(toy) == []
    paper = yaml.safe_load((REPO_ROOT / "config/paper/network_pruning.yaml").read_text())
    validate(paper)
    assert sc.surrogate_errors(paper) == []
    s = sc.surrogate_settings(paper)
    parts = {m: sg.split(s["models"][m]["samples"], 0) for m in ("matrix", "image")}
    assert len(parts["matrix"]["train"]) == 455 and len(parts["image"]["train"]) == 3640
