"""Tables of the bond-operator study, from ``spectrum.zarr`` stores only.

Units (paper section IV): ``a_0 = (V/N)^(1/d)``, ``c_s = sqrt(G / rho)`` (unit masses),
``omega_0 = c_s / a_0``, ``lambda_0 = omega_0^-2``; every sample's eigenvalues and frequencies
are expressed in its own units before pooling.

- ``P(lambda)``: log-binned density of non-zero eigenvalues of ``A`` per particle,
  ``P = counts / (n_samples N d lambda)``, so that its integral is ``(N d - d) / N``.
- Exponents: least-squares slope of ``log P`` vs ``log lambda`` over the non-empty bins of a
  range (``fit.tail``, ``fit.intermediate``, in units of ``lambda_0``), each bin weighted by
  the square root of its count (Poisson: ``var(log n) ~ 1/n``; unweighted, the sparse bins
  of a tail bias the slope: -3.39 instead of -3.50 on 1e5 draws of a known lambda^-3.5, vs
  -3.504 weighted), with a bootstrap error over samples (resampled with replacement,
  ``fit.bootstrap`` times).
- ``A_g``: the prefactor of ``P = A_g lambda^-7/2`` over the tail range (geometric mean of
  ``P lambda^{7/2}``), in units of ``lambda_0``.
- ``D(omega)``: log-binned density of Hessian frequencies per particle below the first phonon
  band ``omega_ph = 2 pi c_s / L``; its low-frequency exponent is fitted the same way.
- Participation: ``N e(F)`` of the modes in the tail range; its median is the ``plateau``,
  ``n = 1.15 plateau`` and ``xi = a_0 n^(1/d)`` (paper Eq. 13).
- SWAP equilibration (finite T_p): ``equilibrated_fraction``, the share of used samples whose
  chain's E/N drift between the halves of its production run has ``|z| <= 3``
  (``stages.energy_drift``); NaN at T_p = inf. Per sample in ``modes_samples.csv``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tunable_solids.store import read_store

# SWAP chain diagnostics per sample (stages.MC_COLUMNS; absent from stores of T_p = inf
# written before they existed).
MC_COLUMNS = ("mc_energy_per_particle", "mc_acceptance_swap", "mc_energy_drift", "mc_drift_z")
TAIL_EXPONENT = -3.5  # the prediction of paper Eq. 11, used for the prefactor A_g


def load_ensemble(paths: list[str]) -> dict[str, np.ndarray]:
    """The used samples of an ensemble's ``spectrum.zarr`` stores, concatenated."""
    parts = [read_store(p)[0] for p in paths]
    keys = [k for k in parts[0] if k != "decay_bins" and not k.startswith("example_")]
    out = {k: np.concatenate([p[k][p["used"]] for p in parts]) for k in keys}
    out["decay_bins"] = parts[0]["decay_bins"]
    # the drawn example: the first batch that has one
    for p in parts:
        if "example_f" in p:
            out.update({k: v for k, v in p.items() if k.startswith("example_")})
            break
    out["n_samples_total"] = np.asarray(sum(len(p["used"]) for p in parts))
    return out


def units(d: dict, dim: int) -> dict[str, np.ndarray]:
    """Per-sample ``c_s``, ``omega_0`` and ``lambda_0``."""
    cs = np.sqrt(d["shear_modulus"] / d["density"])
    omega0 = cs / d["a0"]
    return {"cs": cs, "omega0": omega0, "lambda0": omega0**-2.0}


def log_bins(values: np.ndarray, per_decade: int) -> np.ndarray:
    """Logarithmic bin edges covering the positive finite ``values``."""
    v = values[np.isfinite(values) & (values > 0)]
    lo, hi = math.floor(np.log10(v.min()) * per_decade), math.ceil(np.log10(v.max()) * per_decade)
    return 10.0 ** (np.arange(lo, hi + 1) / per_decade)


def density(values: np.ndarray, bins: np.ndarray, n_samples: int, n: int):
    """Bin centres (geometric), ``counts / (n_samples n width)`` and the counts."""
    counts, _ = np.histogram(values[np.isfinite(values)], bins)
    centres = np.sqrt(bins[1:] * bins[:-1])
    return centres, counts / (n_samples * n * np.diff(bins)), counts


def power_law_slope(x: np.ndarray, y: np.ndarray, counts: np.ndarray, lo: float, hi: float):
    """Slope of ``log y`` vs ``log x`` over the bins with ``lo <= x <= hi`` and counts > 0,
    least squares weighted by ``sqrt(counts)``; NaN with fewer than 3 such bins."""
    sel = (x >= lo) & (x <= hi) & (counts > 0)
    if sel.sum() < 3:
        return float("nan")
    return float(np.polyfit(np.log(x[sel]), np.log(y[sel]), 1, w=np.sqrt(counts[sel]))[0])


def _bootstrap(fn, n_samples: int, reps: int, seed: int = 0) -> float:
    """Standard deviation of ``fn(sample_indices)`` over resampled sample sets."""
    rng = np.random.default_rng(seed)
    vals = [fn(rng.integers(0, n_samples, n_samples)) for _ in range(reps)]
    vals = np.asarray([v for v in vals if np.isfinite(v)])
    return float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan")


def scaled_spectra(d: dict, dim: int) -> dict[str, np.ndarray]:
    """Eigenvalues in units of ``lambda_0`` and frequencies in units of ``omega_0``, each
    ``(samples, modes)``, plus each sample's ``omega_ph / omega_0``."""
    u = units(d, dim)
    n = d["eigenvalues"].shape[1] // dim + 1
    L = d["a0"] * n ** (1.0 / dim)
    return {
        "lam": d["eigenvalues"] / u["lambda0"][:, None],
        "omega": d["omega"] / u["omega0"][:, None],
        "omega_ph": 2.0 * np.pi * u["cs"] / L / u["omega0"],
    }


def exponents_row(settings: dict, d: dict) -> dict:
    """One row of ``modes_exponents.csv`` for an ensemble (see the module docstring)."""
    n, dim, fit = settings["N"], settings["dim"], settings["fit"]
    s = scaled_spectra(d, dim)
    lam, omega = s["lam"], s["omega"]
    S = lam.shape[0]
    lam_bins = log_bins(lam, fit["bins_per_decade"])
    tail_lo, tail_hi = fit["tail"]
    mid_lo, mid_hi = fit["intermediate"]

    def slope(idx, lo, hi):
        x, y, c = density(lam[idx].ravel(), lam_bins, len(idx), n)
        return power_law_slope(x, y, c, lo, hi)

    def prefactor(idx):
        x, y, _ = density(lam[idx].ravel(), lam_bins, len(idx), n)
        sel = (x >= tail_lo) & (x <= tail_hi) & (y > 0)
        if not sel.any():
            return float("nan")
        return float(np.exp(np.mean(np.log(y[sel] * x[sel] ** -TAIL_EXPONENT))))

    def omega_slope(idx):
        w = omega[idx]
        below = w[w < np.min(s["omega_ph"][idx])]
        below = below[below > 0]
        if below.size < 3:
            return float("nan")
        bins = log_bins(below, fit["bins_per_decade"])
        x, y, c = density(below, bins, len(idx), n)
        return power_law_slope(x, y, c, 0.0, np.inf)

    def plateau(idx):
        lam_i, ne = lam[idx].ravel(), n * d["participation"][idx].ravel()
        sel = (lam_i >= tail_lo) & (lam_i <= tail_hi)
        return float(np.median(ne[sel])) if sel.any() else float("nan")

    every = np.arange(S)
    reps = fit["bootstrap"]
    plat = plateau(every)
    a0 = float(np.mean(d["a0"]))
    return {
        "ensemble": settings["name"],
        "model": settings["model"],
        "T_p": settings["parent_temperature"],
        "N": n,
        "dim": dim,
        "n_samples": S,
        "n_excluded": int(d["n_samples_total"]) - S,
        "tail_exponent": slope(every, tail_lo, tail_hi),
        "tail_exponent_err": _bootstrap(lambda i: slope(i, tail_lo, tail_hi), S, reps),
        "intermediate_exponent": slope(every, mid_lo, mid_hi),
        "intermediate_exponent_err": _bootstrap(lambda i: slope(i, mid_lo, mid_hi), S, reps),
        "omega_exponent": omega_slope(every),
        "omega_exponent_err": _bootstrap(omega_slope, S, reps),
        "A_g": prefactor(every),
        "A_g_err": _bootstrap(prefactor, S, reps),
        "plateau": plat,
        "xi": a0 * (1.15 * plat) ** (1.0 / dim),
        "modes_in_tail": int(np.sum((lam >= tail_lo) & (lam <= tail_hi))),
        "mean_overlap_loss": float(np.nanmean(d["overlap_loss"])),
        "mean_rattlers": float(np.mean(d["n_rattlers"])),
        "equilibrated_fraction": _equilibrated_fraction(d),
    }


# |z| of the half-to-half E/N drift of a SWAP chain (stages.energy_drift) above which it is
# counted as not equilibrated: ~2.4% of stationary chains exceed it (t, 6 d.o.f.).
DRIFT_Z_MAX = 3.0


def _equilibrated_fraction(d: dict) -> float:
    z = d.get("mc_drift_z")
    if z is None or not np.isfinite(z).any():
        return float("nan")
    return float(np.mean(np.abs(z) <= DRIFT_Z_MAX))


def exponents_table(ensembles: list[tuple[dict, list[str]]]) -> pd.DataFrame:
    """``modes_exponents.csv``: one row per ensemble (settings, its spectrum stores)."""
    return pd.DataFrame([exponents_row(st, load_ensemble(paths)) for st, paths in ensembles])


def samples_table(ensembles: list[tuple[dict, list[str]]]) -> pd.DataFrame:
    """``modes_samples.csv``: one row per sample (used or not)."""
    rows = []
    for st, paths in ensembles:
        for p in paths:
            a, _ = read_store(p)
            for s in range(len(a["seed"])):
                rows.append(
                    {
                        "ensemble": st["name"],
                        "seed": int(a["seed"][s]),
                        "used": bool(a["used"][s]),
                        "n_bonds": int(a["n_bonds"][s]),
                        "n_rattlers": int(a["n_rattlers"][s]),
                        "self_stress": int(a["self_stress"][s]),
                        "shear_modulus": float(a["shear_modulus"][s]),
                        "a0": float(a["a0"][s]),
                        "lambda_max": float(a["eigenvalues"][s, 0]),
                        **{k: float(a[k][s]) if k in a else math.nan for k in MC_COLUMNS},
                    }
                )
    return pd.DataFrame(rows)


def split_stores(ensembles: list[tuple[dict, int]], paths: list[str]):
    """Pair each ensemble's settings with its stores, given ``(settings, n_batches)`` in the
    order the stores are listed."""
    out, k = [], 0
    for settings, n_batches in ensembles:
        out.append((settings, paths[k : k + n_batches]))
        k += n_batches
    return out
