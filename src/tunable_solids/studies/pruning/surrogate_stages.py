"""Stage functions, tables and figures of the surrogate (``workflow/rules/pruning_surrogate.smk``):

- :func:`dataset`: one batch of networks with exact labels (``surrogate/data/batch<b>.zarr``);
- :func:`train_model`: one model (``matrix`` or ``image``) trained with checkpoints beside its
  output and resumed after a kill; its store (``surrogate/<model>.zarr``) holds the
  best-validation parameters (leaves in tree order, ``param_*``), the input/label
  normalisation, the loss curves, the test predictions, RMSE, R^2 and timings;
- :func:`timing`: prediction time of each model vs the exact solve at ``timing.n_sides``;
- :func:`screening`: surrogate-screened vs plain annealing;
- :func:`metrics_table`, :func:`timing_table`, :func:`screening_table` and :func:`draw_all`.
"""

from __future__ import annotations

import logging
import shutil
import time
from functools import partial
from pathlib import Path

import numpy as np

from tunable_solids import store

from . import surrogate as sg
from .annealing import AnnealOptions
from .elasticity import elastic_tensor, geometry, poisson_ratio
from .networks import distorted_triangular

log = logging.getLogger(__name__)
Arrays = store.Arrays


# ------------------------------------------------------------------------------ stages


def dataset(settings: dict, indices: list[int]) -> tuple[Arrays, dict]:
    arrays = sg.dataset_arrays(settings["n_side"], indices, settings["data"], "surrogate data")
    nu = arrays["nu"][1]
    return arrays, {"samples": len(indices), "nu_min": float(nu.min()), "nu_max": float(nu.max())}


def load_dataset(paths: list[str]) -> dict[str, np.ndarray]:
    return sg.concatenate([store.read_store(p)[0] for p in paths])


def checkpoint_path(output) -> Path:
    """The training checkpoint store beside a model's store (restored if a replacement was
    interrupted, :func:`store.recover`)."""
    output = store.store_path(output)
    return store.recover(output.with_name(f".{output.name}.checkpoint"))


def remove_checkpoint(output) -> None:
    if store.store_path(output).exists():
        shutil.rmtree(checkpoint_path(output), ignore_errors=True)


def prepared(settings: dict, data: dict):
    """Split indices and standardised float32 inputs/labels of one model's samples."""
    m, name = settings["settings"], settings["model"]
    parts = sg.split(m["samples"], settings["split"]["seed"], settings["split"]["fractions"])
    x = sg.model_inputs(name, data, np.arange(m["samples"]), m.get("pixels", 0))
    y = data["nu"][: m["samples"]]
    norm = sg.normalisation(x[parts["train"]], y[parts["train"]])
    xs = ((x - norm.x_mean) / norm.x_std).astype(np.float32)
    ys = ((y - norm.y_mean) / norm.y_std).astype(np.float32)
    return parts, x, xs, ys, norm


def train_model(
    settings: dict, data_paths: list[str], output: str | None = None, stop_after=None
) -> tuple[Arrays, dict]:
    """Train one model (``settings['model']``); checkpoints every ``checkpoint_every`` epochs
    beside ``output`` and resumes from them. ``stop_after``: epochs to run in this call (tests
    that simulate a kill)."""
    name, m = settings["model"], settings["settings"]
    data = load_dataset(data_paths)
    parts, x, xs, ys, norm = prepared(settings, data)
    template = sg.initial_train_state(sg.build_model(name, m, m["seed"]), m)
    state, ckpt = template, None
    if output is not None:
        ckpt = checkpoint_path(output)
        if ckpt.exists():
            arrays, attrs = store.read_store(ckpt)
            state = sg.state_from_arrays(arrays, template)
            log.info("resuming %s from %s at epoch %d", name, ckpt, state.epoch)

    def save(s):
        previous = store.read_attrs(ckpt)["train_s"] if ckpt.exists() else 0.0
        elapsed = previous + time.perf_counter() - t_start[0]
        t_start[0] = time.perf_counter()
        store.write_store(ckpt, sg.state_arrays(s), {"train_s": elapsed})

    t_start = [time.perf_counter()]
    tr, va = parts["train"], parts["val"]
    state = sg.train(state, xs[tr], ys[tr], xs[va], ys[va], m,
                     checkpoint=save if ckpt is not None else None, stop_after=stop_after,
                     label=f"train {name}", augment_as=name if m["augment"] else None)  # fmt: skip
    train_s = time.perf_counter() - t_start[0]
    if ckpt is not None and ckpt.exists():
        train_s = store.read_attrs(ckpt)["train_s"]
    te = parts["test"]
    pred = sg.predict(state.best_model, norm, x[te])
    exact = data["nu"][te]
    met = sg.metrics(pred, exact)
    pruned = data["pruned"][te].astype(bool)
    for part, sel in (("lattices", ~pruned), ("pruned", pruned)):
        sub = sg.metrics(pred[sel], exact[sel]) if sel.sum() >= 2 else {"rmse": None, "r2": None}
        met.update({f"{k}_{part}": v for k, v in sub.items()})
    # prediction time per network (CNN on a ready input, batch of one) vs the exact solve
    one = x[te[:1]]
    t_pred = sg.timed(lambda: sg.predict(state.best_model, norm, one), 5)
    net = sg.network_of(data, int(te[0]))
    mask = data["mask"][te[0]].astype(float)
    t_exact = exact_time(net, mask, 5)
    arrays = {f"param_{k:03d}": (tuple(f"param_{k:03d}_{d}" for d in range(a.ndim)), a)
              for k, a in enumerate(sg.leaves(state.best_model))}  # fmt: skip
    arrays.update({
        "train_loss": (("epoch",), state.train_loss),
        "val_loss": (("epoch",), state.val_loss),
        "test_index": (("test",), te),
        "test_nu_exact": (("test",), exact),
        "test_nu_pred": (("test",), pred),
        "test_pruned": (("test",), data["pruned"][te]),
        "test_r": (("test",), data["r"][te]),
    })  # fmt: skip
    summary = {
        "model": name,
        "settings": m,
        "normalisation": norm._asdict(),
        "n_train": len(tr),
        "n_val": len(va),
        "n_test": len(te),
        "epochs": state.epoch,
        "best_epoch": state.best_epoch,
        **met,
        "train_s": float(train_s),
        "predict_s": t_pred,
        "exact_s": t_exact,
        "input_shape": list(x.shape[1:]),
    }
    log.info("%s: test RMSE %.4f, R^2 %.4f, %.1f s training", name, met["rmse"], met["r2"], train_s)
    return arrays, summary


def exact_nu(net, mask) -> float:
    """The exact route the surrogate replaces: geometry, sparse solve, the paper's nu."""
    return float(poisson_ratio(elastic_tensor(geometry(net), mask)))


def exact_time(net, mask, repeats: int) -> float:
    return sg.timed(partial(exact_nu, net, np.asarray(mask, float)), repeats)


def load_model(path):
    """Trained model, normalisation and summary of a model store."""
    arrays, attrs = store.read_store(path)
    s = attrs["summary"]
    template = sg.build_model(s["model"], s["settings"], s["settings"]["seed"])
    model = sg.with_leaves(template, sg._prefixed(arrays, "param"))
    return model, sg.Normalisation(**s["normalisation"]), s, arrays


def timing(settings: dict, model_paths: list[str]) -> tuple[Arrays, dict]:
    """Prediction time (CNN on a ready input; and input building) of each model vs the exact
    solve (geometry, sparse factorization, three solves, nu) on a distorted lattice per
    ``timing.n_sides``. The matrix model's trained parameters are applied at every size (its
    parameter shapes do not depend on N); its predictions at other sizes mean nothing, its
    time does."""
    tm = settings["timing"]
    models = {}
    for p in model_paths:
        model, norm, s, _ = load_model(p)
        models[s["model"]] = (model, norm, s)
    names = sorted(models)
    sides = tm["n_sides"]
    exact = np.zeros(len(sides))
    cnn = np.full((len(names), len(sides)), np.nan)
    inp = np.full((len(names), len(sides)), np.nan)
    for a, n_side in enumerate(sides):
        net = distorted_triangular(n_side, tm["r"], np.random.default_rng([7, n_side]))
        mask = np.ones(len(net.i))
        exact[a] = exact_time(net, mask, tm["repeats"])
        for c, name in enumerate(names):
            model, norm, s = models[name]
            pixels = s["settings"].get("pixels", 0)
            x = sg.model_input(name, net, mask, pixels)[None]
            cnn[c, a] = sg.timed(partial(sg.predict, model, norm, x), tm["repeats"])
            inp[c, a] = sg.timed(partial(sg.model_input, name, net, mask, pixels), tm["repeats"])
        log.info("timing n_side %d: exact %.3g s, CNN %s s", n_side, exact[a], cnn[:, a])
    arrays = {
        "n_side": (("size",), np.asarray(sides)),
        "n_nodes": (("size",), np.asarray(sides) ** 2),
        "model": (("model",), np.asarray(names)),
        "exact_s": (("size",), exact),
        "cnn_s": (("model", "size"), cnn),
        "input_s": (("model", "size"), inp),
    }
    return arrays, {"models": names}


def screening(settings: dict, model_path: str) -> tuple[Arrays, dict]:
    """Plain vs surrogate-screened annealing of fresh distorted lattices (``n_side``,
    ``screening.r``) toward each target, ``screening.seeds`` runs each; the exact fresh-solve
    time is measured too, to price annealing without rank-one updates."""
    sc, n_side = settings["screening"], settings["n_side"]
    model, norm, _, _ = load_model(model_path)
    predictor = sg.matrix_predictor(model, norm)
    opts = AnnealOptions(T0=sc["anneal"]["T0"], Tf=sc["anneal"]["Tf"])
    rows = []
    from tunable_solids.progress import Progress

    progress = Progress("screening", len(sc["targets"]) * sc["seeds"])
    for target in sc["targets"]:
        for seed in range(sc["seeds"]):
            net = distorted_triangular(n_side, sc["r"], np.random.default_rng([11, seed]))
            t_fresh = exact_time(net, np.ones(len(net.i)), 3)
            plain = sg.screened_anneal(net, target, seed, opts)
            scr = sg.screened_anneal(
                net, target, seed, opts, predictor, sc["candidates"], sc["mode"]
            )
            for method, r in (("plain", plain), (f"screened_{sc['mode']}", scr)):
                rows.append((method, target, seed, r.nu_initial, r.nu_final, r.success,
                             r.proposals, r.exact_evaluations, r.surrogate_evaluations,
                             r.wall_s, r.exact_evaluations * t_fresh))  # fmt: skip
            progress.step(
                f"target {target} seed {seed}: plain nu {plain.nu_final:.3f} in "
                f"{plain.exact_evaluations} exact, screened nu {scr.nu_final:.3f} in "
                f"{scr.exact_evaluations} exact + {scr.surrogate_evaluations} surrogate"
            )
    cols = list(zip(*rows, strict=True))
    names = ("method", "target", "seed", "nu_initial", "nu_final", "success", "proposals",
             "exact_evaluations", "surrogate_evaluations", "wall_s", "fresh_solve_s")  # fmt: skip
    arrays = {k: (("run",), np.asarray(v)) for k, v in zip(names, cols, strict=True)}
    return arrays, {"runs": len(rows)}


# ------------------------------------------------------------------------------ tables


def metrics_table(model_paths: list[str]):
    """One row per model: inputs, sizes, test RMSE / R^2, training and prediction times."""
    import pandas as pd

    rows = []
    for p in model_paths:
        attrs = store.read_attrs(p)
        s = attrs["summary"]
        shape = s["input_shape"]
        rows.append({
            "model": s["model"],
            "input": "dynamical matrix" if s["model"] == "matrix" else "network image",
            "input_pixels": f"{shape[-2]}x{shape[-1]}",
            "n_nodes": attrs["provenance"]["config"]["n_side"] ** 2,
            "n_train": s["n_train"], "n_val": s["n_val"], "n_test": s["n_test"],
            "epochs": s["epochs"], "best_epoch": s["best_epoch"],
            "rmse_test": s["rmse"], "r2_test": s["r2"],
            "rmse_test_lattices": s["rmse_lattices"], "r2_test_lattices": s["r2_lattices"],
            "rmse_test_pruned": s["rmse_pruned"], "r2_test_pruned": s["r2_pruned"],
            "train_s": s["train_s"],
            "predict_s": s["predict_s"], "exact_s": s["exact_s"],
            "exact_over_predict": s["exact_s"] / s["predict_s"],
        })  # fmt: skip
    return pd.DataFrame(rows)


def timing_table(path):
    import pandas as pd

    a, _ = store.read_store(path)
    rows = []
    for c, name in enumerate(a["model"]):
        for k, n in enumerate(a["n_nodes"]):
            rows.append({
                "model": str(name), "n_nodes": int(n), "exact_s": a["exact_s"][k],
                "cnn_s": a["cnn_s"][c, k], "input_s": a["input_s"][c, k],
                "exact_over_cnn": a["exact_s"][k] / a["cnn_s"][c, k],
                "exact_over_cnn_and_input":
                    a["exact_s"][k] / (a["cnn_s"][c, k] + a["input_s"][c, k]),
            })  # fmt: skip
    return pd.DataFrame(rows)


def screening_table(path):
    import pandas as pd

    a, _ = store.read_store(path)
    df = pd.DataFrame({k: v for k, v in a.items()})
    df["method"] = df["method"].astype(str)
    return df


# ----------------------------------------------------------------------------- figures


def draw_all(model_paths: list[str], timing_csv: str, outputs: list[str], dpi: int) -> None:
    """pruning_surrogate_{loss,parity,timing}.{png,pdf} from the model stores and the timing
    table (``outputs`` in that order, png and pdf of each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    models = []
    for p in model_paths:
        arrays, attrs = store.read_store(p)
        models.append((attrs["summary"], arrays))
    label = {"matrix": "dynamical matrix (AlexNet-style)", "image": "network image (small CNN)"}
    colour = {"matrix": "C0", "image": "C3"}
    figs = {}

    fig, ax = plt.subplots(figsize=(5.2, 3.6), layout="constrained")
    for s, a in models:
        e = np.arange(1, len(a["train_loss"]) + 1)
        ax.semilogy(
            e, a["train_loss"], "-", color=colour[s["model"]], label=f"{label[s['model']]}, train"
        )
        ax.semilogy(e, a["val_loss"], "--", color=colour[s["model"]], label="validation")
        ax.axvline(s["best_epoch"], color=colour[s["model"]], lw=0.6, alpha=0.5)
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE of standardised nu")
    ax.legend(fontsize=7)
    figs["loss"] = fig

    fig, axes = plt.subplots(1, len(models), figsize=(3.4 * len(models), 3.4), layout="constrained",
                             squeeze=False)  # fmt: skip
    for ax, (s, a) in zip(axes[0], models, strict=True):
        ex, pr, pruned = a["test_nu_exact"], a["test_nu_pred"], a["test_pruned"].astype(bool)
        lo, hi = min(ex.min(), pr.min()) - 0.05, max(ex.max(), pr.max()) + 0.05
        ax.plot([lo, hi], [lo, hi], color="0.6", ls="--", lw=1)
        ax.scatter(ex[~pruned], pr[~pruned], s=10, c=colour[s["model"]], label="distorted lattice")
        ax.scatter(ex[pruned], pr[pruned], s=10, marker="^", facecolors="none",
                   edgecolors=colour[s["model"]], label="annealed (pruned)")  # fmt: skip
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_xlabel(r"exact $\nu$")
        ax.set_ylabel(r"predicted $\nu$")
        ax.set_title(f"{s['model']}: RMSE {s['rmse']:.3f}, $R^2$ {s['r2']:.2f}", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    figs["parity"] = fig

    t = pd.read_csv(timing_csv)
    fig, ax = plt.subplots(figsize=(4.8, 3.6), layout="constrained")
    first = t[t.model == t.model.iloc[0]]
    ax.loglog(first.n_nodes, first.exact_s, "ko-", label="exact solve (sparse LU)")
    for name, g in t.groupby("model"):
        ax.loglog(g.n_nodes, g.cnn_s, "s-", color=colour[name], label=f"{name} CNN")
        ax.loglog(g.n_nodes, g.cnn_s + g.input_s, "s:", color=colour[name], mfc="none",
                  label=f"{name} CNN + input")  # fmt: skip
    ax.set_xlabel("nodes N")
    ax.set_ylabel("time per network (s)")
    ax.legend(fontsize=7)
    figs["timing"] = fig

    for out in outputs:
        key = Path(out).stem.removeprefix("pruning_surrogate_")
        figs[key].savefig(out, dpi=dpi)
    for f in figs.values():
        plt.close(f)
