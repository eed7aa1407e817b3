"""A CNN surrogate that predicts Poisson's ratio of a spring network from its dynamical matrix
(the paper's Sec. II D and Methods C), beside an image CNN on rendered networks (the paper's
baseline), and the surrogate used to screen the moves of simulated annealing.

Library: equinox (with optax). Both equinox and flax (nnx) are well kept JAX libraries;
equinox was chosen for weight and fit: it adds four small pure-Python packages (jaxtyping,
wadler-lindig, typing-extensions) where flax brings orbax-checkpoint, tensorstore, msgpack,
rich and treescope; an equinox model is a plain pytree, so its parameters are saved with the
project's own atomic zarr stores (:mod:`tunable_solids.store`, leaves in tree order) rather
than a second checkpoint format, and training is an ordinary ``jax.jit`` of a pure function
as in the rest of the project. flax has the larger institutional backing; equinox is used by
the wider scientific JAX stack (diffrax, optimistix, lineax) and its API has been stable.

Data set (:func:`make_sample`)
------------------------------
Sample ``index`` is fully determined by ``(seed, index)``: a distorted ``n_side x n_side``
triangular lattice (:func:`networks.distorted_triangular`) with ``r`` uniform in
``r_range`` (0.05..0.95: bonds cross above 0.5, the case where images fail); with probability
``pruned_fraction`` it is then annealed (:mod:`.annealing`) toward a target uniform in
``target_range``, so the labels span that range rather than clustering near nu ~ 0.2..0.35.
A draw with ``|nu| >= 1`` is replaced by the next draw (:data:`MAX_DRAWS`).
Labels are the paper's nu = (nu_x + nu_y)/2 from a fresh exact solve
(:func:`elasticity.elastic_tensor`), with nu_x, nu_y, nu_iso beside it. Any prefix of the
indices is an i.i.d. sample, so each model takes the first ``samples`` indices and splits them
6:2:2 by a permutation drawn from ``split_seed`` (:func:`split`).

Inputs
------
- Matrix image (:func:`matrix_image`): the ``(2N, 2N)`` dynamical matrix ``D = Q^T K Q`` (unit
  masses and spring constants, so ``D`` is dimensionless: off-diagonal entries in [-1, 1],
  diagonal entries in [0, z_i]) with rows and columns ordered node by node in the lattice's
  row-major node order, ``x`` then ``y`` of each node (``(2i, 2i+1)``, as
  :mod:`.elasticity`). Removed bonds have ``k = 0``. The lattice order makes ``D`` banded
  with periodic corner blocks, so it has the locality a CNN exploits; other network kinds
  (Delaunay, packings) have no such order and are not in the data set (as in the paper).
  Each model standardises its inputs by two scalars, the pixel mean and standard deviation
  of its training images, stored with its parameters.
- Network image (:func:`render_network`): the periodic box mapped onto ``pixels x pixels``
  (fractional coordinates), each present bond drawn as a line of unit intensity (points every
  half pixel along the minimum-image bond, splatted bilinearly with periodic wrap, the sum
  clipped at 1). Bonds that cross are indistinguishable from bonds meeting at a node.

Models
------
- :class:`MatrixCNN`: AlexNet-style: 5 convolutions (the first 4x4 with stride 2, so a kernel
  covers 2 x 2 node blocks of ``D``), 3 poolings (max 2x2 after the first two convolutions,
  an adaptive average pooling to ``grid x grid`` after the fifth, so the parameter shapes do
  not depend on ``N``), 2 dense layers, one output.
- :class:`ImageCNN`: 3 convolutions, 2 max poolings, the adaptive pooling, 2 dense layers
  (a small CNN; the paper used ResNet-50).
Both predict the standardised label; prediction = mean + std * output.

Training (:func:`train`)
------------------------
Adam (optax) on the mean squared error of minibatches; epoch ``e``'s order (and, with
``augment``, the random symmetry applied to each input, :func:`augment`) is drawn from
``(seed, e)``, so a run resumed at an epoch boundary repeats exactly the operations
of an uninterrupted one. The parameters of the epoch with the lowest validation loss are the
model's result (the last ones are kept too). :class:`TrainState` is the whole state.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from tunable_solids.progress import Progress

from . import annealing
from .elasticity import _dense_hessian, elastic_tensor, geometry, poisson_ratios
from .networks import Network, bond_vectors, distorted_triangular

log = logging.getLogger(__name__)

MODELS = ("matrix", "image")
LABELS = ("nu", "nu_x", "nu_y", "nu_iso")
# A drawn network with |nu| >= 1 is redrawn (next draws of the same generator): the paper's
# nu is unbounded for anisotropic networks (an annealing move can overshoot to nu ~ -2.7
# near a soft direction of C), while its data span the isotropic range -1 < nu < 1.
MAX_DRAWS = 20


# ---------------------------------------------------------------------------- data set


class Sample(NamedTuple):
    """One network of the data set: its positions ``(N, 2)``, bond mask ``(B,)`` (bonds of
    :func:`networks.triangular_lattice`), r, whether it was pruned, the annealing target
    (nan if not pruned) and the exact labels (:data:`LABELS`)."""

    positions: np.ndarray
    mask: np.ndarray
    r: float
    pruned: bool
    target: float
    labels: dict


def make_sample(n_side: int, index: int, data: dict) -> tuple[Network, Sample]:
    """Sample ``index`` of a data set (module doc). ``data``: seed, r_range, pruned_fraction,
    target_range, anneal ({T0, Tf}) as in ``pruning.surrogate.data``."""
    rng = np.random.default_rng([data["seed"], index])
    for _ in range(MAX_DRAWS):
        r = float(rng.uniform(*data["r_range"]))
        pruned = bool(rng.random() < data["pruned_fraction"])
        target = float(rng.uniform(*data["target_range"]))
        net = distorted_triangular(n_side, r, rng)
        geom = geometry(net)
        mask = np.ones(len(net.i), bool)
        if pruned:
            opts = annealing.AnnealOptions(T0=data["anneal"]["T0"], Tf=data["anneal"]["Tf"])
            start = annealing.initial_state(geom, target, seed=int(rng.integers(2**31)))
            state, _ = annealing.anneal(geom, start, opts)
            mask = state.mask
        else:
            target = float("nan")
        p = poisson_ratios(elastic_tensor(geom, mask.astype(float)))
        if abs(p.nu) < 1.0:
            labels = {k: float(getattr(p, k)) for k in LABELS}
            return net, Sample(net.positions, mask, r, pruned, target, labels)
    raise RuntimeError(f"sample {index}: no draw with |nu| < 1 in {MAX_DRAWS} attempts")


def dataset_arrays(n_side: int, indices: list[int], data: dict, label: str = "data set"):
    """Store arrays of the samples ``indices`` (one job's batch), with progress logging."""
    progress = Progress(label, len(indices))
    rows = []
    net = None
    for idx in indices:
        net, s = make_sample(n_side, idx, data)
        rows.append(s)
        progress.step(f"sample {idx}: r = {s.r:.3f}, pruned {s.pruned}, nu = {s.labels['nu']:.4f}")
    arrays = {
        "index": (("sample",), np.asarray(indices, np.int64)),
        "positions": (("sample", "node", "dim"), np.stack([s.positions for s in rows])),
        "mask": (("sample", "bond"), np.stack([s.mask for s in rows])),
        "r": (("sample",), np.asarray([s.r for s in rows])),
        "pruned": (("sample",), np.asarray([s.pruned for s in rows])),
        "target": (("sample",), np.asarray([s.target for s in rows])),
        "bond_i": (("bond",), net.i),
        "bond_j": (("bond",), net.j),
        "box": (("dim", "dim2"), net.box),
    }
    for k in LABELS:
        arrays[k] = (("sample",), np.asarray([s.labels[k] for s in rows]))
    return arrays


def concatenate(batches: list[dict]) -> dict[str, np.ndarray]:
    """One data set from the arrays of its batch stores (in order)."""
    out = {}
    for k in batches[0]:
        if k in ("bond_i", "bond_j", "box"):
            out[k] = batches[0][k]
        else:
            out[k] = np.concatenate([b[k] for b in batches])
    order = np.argsort(out["index"])
    return {k: (v if k in ("bond_i", "bond_j", "box") else v[order]) for k, v in out.items()}


def network_of(data: dict, s: int) -> Network:
    """Network of sample ``s`` of a data set (all bonds; its mask is ``data['mask'][s]``)."""
    R, box, i, j = data["positions"][s], data["box"], data["bond_i"], data["bond_j"]
    length = np.linalg.norm(bond_vectors(R, box, i, j), axis=1)
    return Network(R, box, i, j, length, "triangular")


def split(n: int, seed: int, fractions=(0.6, 0.2, 0.2)) -> dict[str, np.ndarray]:
    """Disjoint sorted indices ``train``, ``val``, ``test`` of ``range(n)`` (6:2:2 by default)
    from a permutation drawn with ``seed``; the sizes are ``round(f * n)`` (test: the rest)."""
    perm = np.random.default_rng(seed).permutation(n)
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    parts = perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val :]
    return {k: np.sort(p) for k, p in zip(("train", "val", "test"), parts, strict=True)}


# ------------------------------------------------------------------------------ inputs


def dynamical_matrix(network: Network, mask: np.ndarray) -> np.ndarray:
    """``(2N, 2N)`` dynamical matrix (unit masses, stiffness = mask), module-doc ordering."""
    return _dense_hessian(geometry(network), np.asarray(mask, float))


def matrix_image(network: Network, mask: np.ndarray) -> np.ndarray:
    """The matrix model's input: the dynamical matrix as a float32 one-channel image
    ``(2N, 2N)`` (unstandardised; see the module doc)."""
    return dynamical_matrix(network, mask).astype(np.float32)


def render_network(network: Network, mask: np.ndarray, pixels: int) -> np.ndarray:
    """The image model's input: present bonds rasterised on ``(pixels, pixels)`` float32
    (module doc); row = fractional y, column = fractional x."""
    m = np.asarray(mask, bool)
    i, j = network.i[m], network.j[m]
    d = bond_vectors(network.positions, network.box, i, j)  # R_i - R_j
    inv = np.linalg.inv(network.box)
    frac_j = network.positions[j] @ inv.T
    frac_d = d @ inv.T
    n_pts = max(2, int(np.ceil(2 * pixels * np.abs(frac_d).max())) + 1)
    t = np.linspace(0.0, 1.0, n_pts)
    pts = (frac_j[:, None, :] + t[None, :, None] * frac_d[:, None, :]).reshape(-1, 2) * pixels
    pts -= 0.5  # pixel centres at half-integers
    base = np.floor(pts).astype(np.int64)
    w = pts - base
    img = np.zeros((pixels, pixels))
    for dx in (0, 1):
        for dy in (0, 1):
            wt = (w[:, 0] if dx else 1 - w[:, 0]) * (w[:, 1] if dy else 1 - w[:, 1])
            np.add.at(img, ((base[:, 1] + dy) % pixels, (base[:, 0] + dx) % pixels), wt)
    # one line crossing a pixel deposits ~2 points of total weight ~1 per pixel length
    return np.clip(img / 2.0, 0.0, 1.0).astype(np.float32)


def model_input(model: str, network: Network, mask: np.ndarray, pixels: int) -> np.ndarray:
    """Unstandardised input ``(1, H, W)`` float32 of one network for model ``matrix`` or
    ``image`` (``pixels``: the image side)."""
    if model == "matrix":
        return matrix_image(network, mask)[None]
    return render_network(network, mask, pixels)[None]


def model_inputs(model: str, data: dict, indices: np.ndarray, pixels: int) -> np.ndarray:
    """Unstandardised inputs ``(n, 1, H, W)`` float32 of the samples ``indices``."""
    return np.stack(
        [model_input(model, network_of(data, int(s)), data["mask"][s], pixels) for s in indices]
    )


# ------------------------------------------------------------------------------ models


def adaptive_avg_pool(x: jax.Array, grid: int) -> jax.Array:
    """Average ``(C, H, W)`` over a ``grid x grid`` partition (PyTorch's adaptive pooling:
    cell ``a`` spans ``floor(a H / grid) .. ceil((a + 1) H / grid)``)."""
    _, h, w = x.shape

    def edges(n):
        return [(math.floor(a * n / grid), math.ceil((a + 1) * n / grid)) for a in range(grid)]

    rows = [
        jnp.stack([x[:, r0:r1, c0:c1].mean(axis=(1, 2)) for c0, c1 in edges(w)], axis=-1)
        for r0, r1 in edges(h)
    ]
    return jnp.stack(rows, axis=-2)


def _cnn_forward(model, x):
    """The forward pass of both CNNs: convolutions with ReLU (max-pooling after the first two),
    adaptive average pooling to ``grid x grid``, two dense layers: one scalar."""
    for k, conv in enumerate(model.convs):
        x = jax.nn.relu(conv(x))
        if k < 2:
            x = model.pool(x)
    x = adaptive_avg_pool(x, model.grid).ravel()
    return model.dense2(jax.nn.relu(model.dense1(x)))[0]


class MatrixCNN(eqx.Module):
    """AlexNet-style regressor on a ``(1, 2N, 2N)`` matrix image (module doc)."""

    convs: list
    pool: eqx.nn.MaxPool2d
    dense1: eqx.nn.Linear
    dense2: eqx.nn.Linear
    grid: int = eqx.field(static=True)

    def __init__(self, channels, hidden: int, grid: int, key):
        if len(channels) != 5:
            raise ValueError(f"MatrixCNN needs 5 conv channel counts, got {channels}")
        keys = jax.random.split(key, 7)
        c = [1, *channels]
        self.convs = [eqx.nn.Conv2d(1, c[1], 4, stride=2, padding=1, key=keys[0])] + [
            eqx.nn.Conv2d(c[k], c[k + 1], 3, padding=1, key=keys[k]) for k in range(1, 5)
        ]
        self.pool = eqx.nn.MaxPool2d(2, 2)
        self.grid = grid
        self.dense1 = eqx.nn.Linear(c[5] * grid * grid, hidden, key=keys[5])
        self.dense2 = eqx.nn.Linear(hidden, 1, key=keys[6])

    __call__ = _cnn_forward


class ImageCNN(eqx.Module):
    """Small CNN regressor on a ``(1, P, P)`` network image (module doc)."""

    convs: list
    pool: eqx.nn.MaxPool2d
    dense1: eqx.nn.Linear
    dense2: eqx.nn.Linear
    grid: int = eqx.field(static=True)

    def __init__(self, channels, hidden: int, grid: int, key):
        if len(channels) != 3:
            raise ValueError(f"ImageCNN needs 3 conv channel counts, got {channels}")
        keys = jax.random.split(key, 5)
        c = [1, *channels]
        self.convs = [eqx.nn.Conv2d(c[k], c[k + 1], 3, padding=1, key=keys[k]) for k in range(3)]
        self.pool = eqx.nn.MaxPool2d(2, 2)
        self.grid = grid
        self.dense1 = eqx.nn.Linear(c[3] * grid * grid, hidden, key=keys[3])
        self.dense2 = eqx.nn.Linear(hidden, 1, key=keys[4])

    __call__ = _cnn_forward


def build_model(model: str, settings: dict, seed: int):
    """Freshly initialised model of kind ``matrix`` or ``image`` from its settings
    (channels, hidden, grid); float32 weights (the inputs and labels are float32)."""
    cls = MatrixCNN if model == "matrix" else ImageCNN
    m = cls(settings["channels"], settings["hidden"], settings["grid"], jax.random.key(seed))
    return jax.tree.map(lambda a: a.astype(jnp.float32) if eqx.is_inexact_array(a) else a, m)


@eqx.filter_jit
def predict_standardised(model, x):
    """Model outputs ``(n,)`` for standardised inputs ``(n, 1, H, W)``."""
    return jax.vmap(model)(x)


# ---------------------------------------------------------------------------- training


class Normalisation(NamedTuple):
    """x_mean, x_std: pixel mean/std of the training inputs; y_mean, y_std: of the labels."""

    x_mean: float
    x_std: float
    y_mean: float
    y_std: float


def normalisation(x_train: np.ndarray, y_train: np.ndarray) -> Normalisation:
    return Normalisation(
        float(x_train.mean()), float(x_train.std()), float(y_train.mean()), float(y_train.std())
    )


class TrainState(NamedTuple):
    """Everything training needs to continue: params and optimiser state (pytrees), epochs
    done, the best-validation params and their epoch, and per-epoch train/val losses."""

    model: eqx.Module
    opt_state: tuple
    epoch: int
    best_model: eqx.Module
    best_epoch: int
    best_val: float
    train_loss: np.ndarray
    val_loss: np.ndarray


def lattice_translations(n_side: int) -> np.ndarray:
    """Dof permutations ``(n_side^2 / 2, 2N)`` of the lattice translations (two rows, so the
    odd-row shift is kept, times one column): ``D[p][:, p]`` is the dynamical matrix of the
    same network with its nodes relabelled, whose nu is the same."""
    row, col = np.divmod(np.arange(n_side * n_side), n_side)
    perms = []
    for dr in range(0, n_side, 2):
        for dc in range(n_side):
            node = ((row + dr) % n_side) * n_side + (col + dc) % n_side
            perms.append(np.stack([2 * node, 2 * node + 1], axis=1).ravel())
    return np.asarray(perms)


def augment(x: np.ndarray, rng: np.random.Generator, model: str) -> np.ndarray:
    """Each input of ``x`` ``(n, 1, H, W)`` moved by a random symmetry that keeps nu: a
    lattice translation (matrix images, :func:`lattice_translations`) or a periodic shift of
    the box (network images: ``np.roll`` by a random pixel offset)."""
    out = np.empty_like(x)
    if model == "matrix":
        perms = lattice_translations(int(round(math.sqrt(x.shape[-1] // 2))))
        for k, p in enumerate(perms[rng.integers(len(perms), size=len(x))]):
            out[k] = x[k][:, p][:, :, p]
    else:
        for k, shift in enumerate(rng.integers(x.shape[-1], size=(len(x), 2))):
            out[k] = np.roll(x[k], tuple(shift), axis=(-2, -1))
    return out


def _loss(model, x, y):
    return jnp.mean((jax.vmap(model)(x) - y) ** 2)


def make_optimizer(settings: dict):
    return optax.adam(settings["learning_rate"])


@functools.cache
def _cached_step(learning_rate: float):
    # one compiled step per learning rate and process (a new closure would recompile)
    return make_step(optax.adam(learning_rate))


def initial_train_state(model: eqx.Module, settings: dict) -> TrainState:
    opt_state = make_optimizer(settings).init(eqx.filter(model, eqx.is_array))
    return TrainState(model, opt_state, 0, model, -1, float("inf"), np.zeros(0), np.zeros(0))


def make_step(optimizer):
    @eqx.filter_jit
    def step(model, opt_state, x, y):
        loss, grads = eqx.filter_value_and_grad(_loss)(model, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    return step


def _batched_loss(model, x, y, batch: int) -> float:
    sq = 0.0
    for a in range(0, len(x), batch):
        sq += float(
            jnp.sum((predict_standardised(model, x[a : a + batch]) - y[a : a + batch]) ** 2)
        )
    return sq / len(x)


def train(
    state: TrainState,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    settings: dict,
    checkpoint: Callable[[TrainState], None] | None = None,
    stop_after: int | None = None,
    label: str = "train",
    augment_as: str | None = None,
) -> TrainState:
    """Train from ``state`` to ``settings['epochs']`` epochs (standardised ``x`` ``(n, 1, H,
    W)`` and ``y`` ``(n,)``). ``checkpoint(state)`` is called every
    ``settings['checkpoint_every']`` epochs and at the end; ``stop_after`` epochs (for tests
    that simulate a kill) ends early; ``augment_as`` (``matrix`` or ``image``) applies
    :func:`augment` to every minibatch. Logs epoch, train/val loss and the ETA."""
    epochs, batch = settings["epochs"], settings["batch_size"]
    step = _cached_step(float(settings["learning_rate"]))
    model, opt_state = state.model, state.opt_state
    best_model, best_epoch, best_val = state.best_model, state.best_epoch, state.best_val
    tl, vl = list(state.train_loss), list(state.val_loss)
    progress = Progress(label, epochs - state.epoch)
    n = len(x_train)
    n_batches = max(1, n // batch)  # drop the last incomplete batch: one compiled shape
    epoch = state.epoch
    while epoch < epochs and (stop_after is None or epoch - state.epoch < stop_after):
        rng = np.random.default_rng([settings["seed"], epoch])
        perm = rng.permutation(n)
        total = 0.0
        for b in range(n_batches):
            idx = perm[b * batch : (b + 1) * batch]
            xb = x_train[idx]
            if augment_as is not None:
                xb = augment(xb, rng, augment_as)
            model, opt_state, loss = step(model, opt_state, xb, y_train[idx])
            total += float(loss)
        epoch += 1
        tl.append(total / n_batches)
        vl.append(_batched_loss(model, x_val, y_val, batch))
        if vl[-1] < best_val:
            best_model, best_epoch, best_val = model, epoch, vl[-1]
        progress.step(f"epoch {epoch}: train loss {tl[-1]:.4g}, val loss {vl[-1]:.4g}")
        new = TrainState(model, opt_state, epoch, best_model, best_epoch, best_val,
                         np.asarray(tl), np.asarray(vl))  # fmt: skip
        if checkpoint is not None and (
            epoch % settings["checkpoint_every"] == 0 or epoch == epochs
        ):
            checkpoint(new)
    return TrainState(model, opt_state, epoch, best_model, best_epoch, best_val,
                      np.asarray(tl), np.asarray(vl))  # fmt: skip


def leaves(tree) -> list[np.ndarray]:
    """Array leaves of a pytree (equinox model or optax state) in tree order, as numpy."""
    return [np.asarray(a) for a in jax.tree.leaves(eqx.filter(tree, eqx.is_array))]


def with_leaves(template, values: list[np.ndarray]):
    """``template`` with its array leaves replaced by ``values`` (inverse of :func:`leaves`)."""
    params, static = eqx.partition(template, eqx.is_array)
    flat, treedef = jax.tree.flatten(params)
    if len(flat) != len(values):
        raise ValueError(f"{len(values)} arrays for a model with {len(flat)} leaves")
    new = [jnp.asarray(v, a.dtype) for a, v in zip(flat, values, strict=True)]
    return eqx.combine(jax.tree.unflatten(treedef, new), static)


def state_arrays(state: TrainState) -> dict:
    """A :class:`TrainState` as store arrays ``{name: (dims, array)}``."""
    out = {}
    for prefix, tree in (
        ("param", state.model),
        ("opt", state.opt_state),
        ("best", state.best_model),
    ):
        for k, a in enumerate(leaves(tree)):
            out[f"{prefix}_{k:03d}"] = (tuple(f"{prefix}_{k:03d}_{d}" for d in range(a.ndim)), a)
    out["train_loss"] = (("epoch",), np.asarray(state.train_loss, float))
    out["val_loss"] = (("epoch",), np.asarray(state.val_loss, float))
    out["counters"] = (("counter",), np.asarray([state.epoch, state.best_epoch], np.int64))
    out["best_val"] = ((), np.asarray(state.best_val))
    return out


def _prefixed(arrays: dict, prefix: str) -> list[np.ndarray]:
    keys = [a for a in arrays if a.startswith(prefix + "_") and a[len(prefix) + 1 :].isdigit()]
    return [arrays[k] for k in sorted(keys)]


def state_from_arrays(arrays: dict, template: TrainState) -> TrainState:
    """Inverse of :func:`state_arrays` (``template``: a fresh state of the same model)."""
    epoch, best_epoch = (int(v) for v in arrays["counters"])
    return TrainState(
        with_leaves(template.model, _prefixed(arrays, "param")),
        with_leaves(template.opt_state, _prefixed(arrays, "opt")),
        epoch,
        with_leaves(template.model, _prefixed(arrays, "best")),
        best_epoch,
        float(arrays["best_val"]),
        np.asarray(arrays["train_loss"]),
        np.asarray(arrays["val_loss"]),
    )


def predict(model, norm: Normalisation, x_raw: np.ndarray, batch: int = 64) -> np.ndarray:
    """Predicted nu ``(n,)`` of unstandardised inputs ``(n, 1, H, W)``."""
    out = []
    for a in range(0, len(x_raw), batch):
        xs = (x_raw[a : a + batch] - norm.x_mean) / norm.x_std
        out.append(np.asarray(predict_standardised(model, jnp.asarray(xs, jnp.float32))))
    return norm.y_mean + norm.y_std * np.concatenate(out).astype(float)


def metrics(nu_pred: np.ndarray, nu_exact: np.ndarray) -> dict:
    """Test RMSE and R^2 = 1 - SS_res / SS_tot (the usual coefficient of determination; the
    paper's printed formula has the predictions in the numerator, taken as a typo)."""
    res = np.sum((nu_pred - nu_exact) ** 2)
    tot = np.sum((nu_exact - nu_exact.mean()) ** 2)
    return {"rmse": float(np.sqrt(res / len(nu_exact))), "r2": float(1.0 - res / tot)}


def timed(f: Callable, repeats: int) -> float:
    """Shortest wall time of ``f()`` over ``repeats`` calls after one warm-up call (s): the
    minimum, as ``timeit`` advises, since the machine is shared and slower calls measure
    the other load."""
    f()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return float(np.min(times))


# ---------------------------------------------------------------- screened annealing


class ScreenedRun(NamedTuple):
    """One annealing run: the final nu (fresh exact solve), success, proposals, exact
    evaluations (rank-one), surrogate evaluations, wall time (s), the final bond mask."""

    nu_initial: float
    nu_final: float
    success: bool
    proposals: int
    exact_evaluations: int
    surrogate_evaluations: int
    wall_s: float
    mask: np.ndarray


def screened_anneal(
    network: Network,
    target: float,
    seed: int,
    options: annealing.AnnealOptions,
    predictor: Callable[[np.ndarray], np.ndarray] | None = None,
    candidates: int = 1,
    mode: str = "propose",
) -> ScreenedRun:
    """Simulated annealing (the schedule and moves of :mod:`.annealing`) with the surrogate
    in the loop. ``predictor(images (c, 1, 2N, 2N)) -> nu (c,)`` (unstandardised matrix
    images).

    - ``predictor=None``: plain annealing, every proposal evaluated exactly (rank-one).
    - ``mode='propose'``: each proposal draws ``candidates`` random moves, the surrogate
      predicts nu after each, and the one predicted to move furthest toward the target is
      evaluated exactly; Metropolis (Eq. 2) on the exact nu decides.
    - ``mode='filter'``: one random move; the surrogate's predicted change (prediction after
      minus prediction now) must pass Metropolis first, else the move is dropped without an
      exact evaluation; a passing move is confirmed by Metropolis on the exact nu.
    The exact solve always decides acceptance, so every state visited is exactly known and
    rigid; the surrogate only chooses which moves get solved.
    """
    from .elasticity import Updater
    from .result import direction, reached

    t0 = time.perf_counter()
    geom = geometry(network)
    upd = Updater(geom, np.ones(len(network.i)), options.refresh_every)
    rng = np.random.default_rng(seed)
    mask = np.ones(len(network.i), bool)
    nu = nu0 = upd.nu
    sign = direction(nu0, target)
    D = dynamical_matrix(network, mask)
    dofs, qf = geom.dofs, geom.q_full

    def candidate_images(moves):
        out = np.repeat(D[None], len(moves), axis=0)
        for c, (b, remove) in enumerate(moves):
            blk = (-1.0 if remove else 1.0) * np.outer(qf[b], qf[b])
            out[c][np.ix_(dofs[b], dofs[b])] += blk
        return out[:, None].astype(np.float32)

    def draw():
        present, removed = np.flatnonzero(mask), np.flatnonzero(~mask)
        remove = rng.random() < options.p_remove or len(removed) == 0
        pool = present if remove else removed
        return int(pool[rng.integers(len(pool))]), bool(remove)

    n_exact = n_sur = step = 0
    stop = False
    pred_now = None
    for level in range(options.n_levels()):
        T = options.temperature(level)
        for _ in range(options.per_temperature):
            step += 1
            if predictor is None:
                bond, remove = draw()
            elif mode == "propose":
                moves = [draw() for _ in range(candidates)]
                pred = predictor(candidate_images(moves))
                n_sur += len(moves)
                bond, remove = moves[int(np.argmax(sign * pred))]
            else:
                bond, remove = draw()
                if pred_now is None:
                    pred_now = float(predictor(D[None, None].astype(np.float32))[0])
                    n_sur += 1
                pred = float(predictor(candidate_images([(bond, remove)]))[0])
                n_sur += 1
                if not annealing._metropolis(rng, sign * (pred_now - pred), T):
                    continue
            move = upd.propose(bond, 0.0 if remove else 1.0)
            n_exact += 1
            if not move.valid or not annealing._metropolis(rng, sign * (nu - move.nu), T):
                continue
            upd.accept(move)
            mask[bond] = not remove
            D[np.ix_(dofs[bond], dofs[bond])] += (-1.0 if remove else 1.0) * np.outer(
                qf[bond], qf[bond]
            )
            nu, pred_now = upd.nu, None
            if reached(nu, target, sign):
                stop = True
                break
        if stop:
            break
    wall = time.perf_counter() - t0
    final = float(poisson_ratios(elastic_tensor(geom, mask.astype(float))).nu)
    return ScreenedRun(nu0, final, reached(final, target, sign), step, n_exact, n_sur, wall, mask)


def matrix_predictor(model, norm: Normalisation) -> Callable[[np.ndarray], np.ndarray]:
    """``images (c, 1, 2N, 2N) -> nu (c,)`` of a trained matrix model."""
    return lambda x: predict(model, norm, x)
