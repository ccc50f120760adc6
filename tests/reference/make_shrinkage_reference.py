"""Generate reference data for the dynweight covariance shrinkage estimators.

The script synthesises a few small, deterministic return panels (T x N, one
observation per row) and writes, into ``tests/reference/data/shrinkage/``:

* the inputs ``data_<name>.csv`` (header ``row,X0,X1,...``) for the datasets
  ``typical`` (120 x 8), ``wide`` (30 x 50, N > T), ``collinear`` (60 x 6,
  columns 4 and 5 are columns 0 and 1 plus 1e-6-scale noise),
  ``single_asset`` (40 x 1), ``heavy_tailed`` (250 x 12, Student-t df 4),
  ``tiny`` (2 x 3) and ``rolling`` (400 x 5);
* for every dataset except ``rolling`` the shrunk covariance matrices of
  - scikit-learn ``LedoitWolf(assume_centered=False)``  -> ``lw_<name>_covariance.csv``,
  - scikit-learn ``OAS(assume_centered=False)``         -> ``oas_<name>_covariance.csv``,
  - the Ledoit & Wolf (2003/2004) constant-correlation estimator, implemented
    here in NumPy from the paper's formulas (it matches the authors' MATLAB
    ``covCor.m``, 04/2014 version, divisor T)           -> ``cc_<name>_covariance.csv``;
* for ``typical`` a fixed intensity 0.3 toward the scaled identity and toward
  the constant-correlation target (``fixed_identity_typical_covariance.csv``,
  ``fixed_cc_typical_covariance.csv``);
* ``scalars.csv``: intensity and target parameter (mu for the scaled identity,
  rbar for constant correlation) of every estimator and dataset;
* rolling windows of W = 60 rows over ``rolling``: ``rolling_w60_intensities.csv``
  (one row per window, indexed by the window's last row 59..399) and the full
  shrunk matrices of the windows ending at rows 59, 200 and 399
  (``rolling_w60_t<t>_<lw|oas|cc>_covariance.csv``).

Matrices are written in full (all i, j) with header ``i,j,value``; all floats
use 17 significant digits so they round-trip exactly; NaN is written ``nan``.
The sample covariance everywhere is S = Y^T Y / T with Y the column-centred
data (divisor T, as in scikit-learn and covCor.m). See
``data/shrinkage/README.md`` for the formulas and the edge cases.

The output is deterministic (seeded generators); rerun from the project root with

    /usr/bin/python3 tests/reference/make_shrinkage_reference.py

(the paths are resolved relative to this file, so any working directory works).
"""

from pathlib import Path

import numpy as np
import sklearn
from sklearn.covariance import OAS, LedoitWolf

SEED = 20261126
FLOAT_FORMAT = "%.17g"
OUT_DIR = Path(__file__).resolve().parent / "data" / "shrinkage"

FIXED_INTENSITY = 0.3
ROLLING_WINDOW = 60
ROLLING_MATRIX_ROWS = (59, 200, 399)
COLLINEAR_NOISE = 1e-6
HEAVY_TAIL_DF = 4.0

# Tolerance of the internal cross-checks (relative to the natural scale of each quantity).
CHECK_RTOL = 1e-12


# --------------------------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------------------------


def factor_loadings(rng, n):
    """A common (market) factor plus a long/short "sector" factor (even assets load +, odd -).

    Correlations then range from about -0.3 to 0.8, so the constant-correlation target is
    visibly wrong and its estimated intensity stays inside (0, 1). Row norms stay below 1.
    """
    market = rng.uniform(0.2, 0.7, n)
    sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    sector = sign * rng.uniform(0.3, 0.6, n)
    return np.column_stack([market, sector])


def factor_correlation(loadings):
    """Correlation matrix B B^T + diag(1 - |B_i|^2) of a factor model."""
    corr = loadings @ loadings.T
    np.fill_diagonal(corr, 1.0)
    return corr


def daily_scales(rng, n):
    """Daily-like volatilities (0.5%..3%) and small drifts (so that centring matters)."""
    vols = rng.uniform(0.005, 0.03, n)
    drifts = rng.uniform(-0.0005, 0.001, n)
    return vols, drifts


def correlated_gaussian(rng, t, n):
    """T x N Gaussian returns with a random factor correlation and daily-like scales."""
    vols, drifts = daily_scales(rng, n)
    chol = np.linalg.cholesky(factor_correlation(factor_loadings(rng, n)))
    shocks = rng.standard_normal((t, n)) @ chol.T
    return drifts + vols * shocks, vols


def make_typical(rng):
    return correlated_gaussian(rng, 120, 8)[0]


def make_wide(rng):
    return correlated_gaussian(rng, 30, 50)[0]


def make_collinear(rng):
    """Columns 4 and 5 are columns 0 and 1 plus noise of 1e-6 times their volatility."""
    x, vols = correlated_gaussian(rng, 60, 6)
    noise = rng.standard_normal((60, 2))
    x[:, 4] = x[:, 0] + COLLINEAR_NOISE * vols[0] * noise[:, 0]
    x[:, 5] = x[:, 1] + COLLINEAR_NOISE * vols[1] * noise[:, 1]
    return x


def make_single_asset(rng):
    return 0.0003 + 0.02 * rng.standard_normal((40, 1))


def make_heavy_tailed(rng):
    """Student-t (df 4, rescaled to unit variance) common factor plus t idiosyncratic noise."""
    t, n = 250, 12
    vols, drifts = daily_scales(rng, n)
    beta = rng.uniform(0.3, 0.8, n)
    unit = np.sqrt((HEAVY_TAIL_DF - 2.0) / HEAVY_TAIL_DF)  # t(df) has variance df / (df - 2)
    factor = unit * rng.standard_t(HEAVY_TAIL_DF, (t, 1))
    idio = unit * rng.standard_t(HEAVY_TAIL_DF, (t, n))
    return drifts + vols * (beta * factor + np.sqrt(1.0 - beta**2) * idio)


def make_tiny(rng):
    """T = 2: the centred rows are y and -y, so every sample correlation is +1 or -1.

    If all were +1 the constant-correlation target would equal S (gammahat = 0 up to
    rounding, an ill-posed reference), so asset 1 is negated when needed: rbar = -1/3.
    """
    x = correlated_gaussian(rng, 2, 3)[0]
    step = x[1] - x[0]
    if np.all(step > 0) or np.all(step < 0):
        x[:, 1] = -x[:, 1]
    step = x[1] - x[0]
    assert not (np.all(step > 0) or np.all(step < 0))
    return x


def make_rolling(rng):
    return correlated_gaussian(rng, 400, 5)[0]


# (name, generator); each dataset gets its own generator np.random.default_rng([SEED, k]) so
# that changing one dataset does not change the others.
DATASETS = [
    ("typical", make_typical),
    ("wide", make_wide),
    ("collinear", make_collinear),
    ("single_asset", make_single_asset),
    ("heavy_tailed", make_heavy_tailed),
    ("tiny", make_tiny),
]
ROLLING_DATASET = ("rolling", make_rolling)


# --------------------------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------------------------


def sample_covariance(x):
    """S = Y^T Y / T with Y = X minus its column means (sklearn's exact arithmetic)."""
    y = x - x.mean(axis=0)
    return y.T @ y / x.shape[0]


def shrink_to_identity(s, delta):
    """(1 - delta) S + delta mu I with mu = trace(S) / N, computed as sklearn does."""
    n = s.shape[0]
    mu = np.trace(s) / n
    out = (1.0 - delta) * s
    out.flat[:: n + 1] += delta * mu
    return out


def sklearn_estimate(estimator_class, x):
    """Fit sklearn's LedoitWolf or OAS; return (covariance, shrinkage, mu)."""
    est = estimator_class(assume_centered=False).fit(x)
    s = sample_covariance(x)
    mu = np.trace(s) / x.shape[1]
    delta = float(est.shrinkage_)
    # The fitted matrix must be (1 - delta) S + delta mu I with the recorded delta and mu.
    expected = shrink_to_identity(s, delta)
    scale = np.sqrt(np.outer(np.diag(s), np.diag(s)))
    assert np.all(np.abs(est.covariance_ - expected) <= CHECK_RTOL * scale), estimator_class
    return est.covariance_, delta, mu


def ledoit_wolf_2004_intensity(x):
    """Independent check of sklearn's LW intensity from Ledoit & Wolf (2004, JMVA), Lemma 3.2-3.4.

    With <A, B> = tr(A B^T) / N and ||A||^2 = <A, A>:
    m = <S, I>, d^2 = ||S - m I||^2, bbar^2 = (1/T^2) sum_t ||y_t y_t^T - S||^2,
    b^2 = min(bbar^2, d^2), intensity = b^2 / d^2.
    """
    t, n = x.shape
    y = x - x.mean(axis=0)
    s = y.T @ y / t
    m = np.trace(s) / n
    d2 = np.sum((s - m * np.eye(n)) ** 2) / n
    outer = y[:, :, None] * y[:, None, :]
    bbar2 = np.sum((outer - s) ** 2) / n / t**2
    b2 = min(bbar2, d2)
    return b2 / d2


def oas_intensity_trace_form(x):
    """Independent check of sklearn's OAS intensity in trace form (the 1/N^2 factors cancel):
    min(1, (tr(S^2) + tr(S)^2) / ((T + 1) (tr(S^2) - tr(S)^2 / N)))."""
    t, n = x.shape
    s = sample_covariance(x)
    tr_s2 = np.sum(s * s)
    tr_s = np.trace(s)
    return min(1.0, (tr_s2 + tr_s**2) / ((t + 1.0) * (tr_s2 - tr_s**2 / n)))


def constant_correlation_shrinkage(x, delta=None):
    """Ledoit & Wolf (2003, 2004) shrinkage toward the constant-correlation target.

    Formulas ("Improved estimation of the covariance matrix of stock returns with an
    application to portfolio selection", 2003; "Honey, I shrunk the sample covariance
    matrix", 2004), with y_t the centred observation at row t:

      S_ij  = (1/T) sum_t y_ti y_tj                       sample covariance, divisor T
      s_i   = sqrt(S_ii),  r_ij = S_ij / (s_i s_j)
      rbar  = (1 / (N (N - 1))) sum_{i != j} r_ij         average correlation
      F_ii  = S_ii,  F_ij = rbar s_i s_j                  target
      pi_ij = (1/T) sum_t (y_ti y_tj - S_ij)^2,           pihat = sum_ij pi_ij
      theta_ii,ij = (1/T) sum_t (y_ti^2 - S_ii) (y_ti y_tj - S_ij)
      rhohat = sum_i pi_ii
             + sum_{i != j} (rbar / 2) (sqrt(S_jj / S_ii) theta_ii,ij
                                        + sqrt(S_ii / S_jj) theta_jj,ij)
      gammahat = sum_ij (F_ij - S_ij)^2                   squared Frobenius distance
      kappa = (pihat - rhohat) / gammahat
      delta = max(0, min(1, kappa / T))
      shrunk = delta F + (1 - delta) S

    Degenerate cases (our conventions): N = 1 has no pairs, so rbar is undefined (returned
    as NaN), F = S and gammahat = 0; whenever gammahat == 0 exactly the target equals S and
    delta is defined as 0 (shrunk = S). A zero-variance column makes r_ij undefined and is
    rejected.

    If ``delta`` is given it is used instead of the estimated intensity (fixed shrinkage).
    Returns (shrunk, delta, rbar, details) where details holds pihat, rhohat, gammahat, kappa.
    """
    t, n = x.shape
    y = x - x.mean(axis=0)
    s = y.T @ y / t
    var = np.diag(s)
    assert np.all(var > 0.0), "constant correlation needs positive variances"
    sd = np.sqrt(var)
    off = ~np.eye(n, dtype=bool)

    if n == 1:
        rbar = np.nan
        f = s.copy()
    else:
        r = s / np.outer(sd, sd)
        rbar = r[off].sum() / (n * (n - 1))
        f = rbar * np.outer(sd, sd)
        np.fill_diagonal(f, var)

    # dev[t, i, j] = y_ti y_tj - S_ij
    dev = y[:, :, None] * y[:, None, :] - s
    pi = np.mean(dev**2, axis=0)
    pihat = pi.sum()
    # theta[i, j] = theta_ii,ij = (1/T) sum_t (y_ti^2 - S_ii)(y_ti y_tj - S_ij),
    # using dev[t, i, i] = y_ti^2 - S_ii
    dev_diag = np.einsum("tii->ti", dev)
    theta = np.mean(dev_diag[:, :, None] * dev, axis=0)
    # ratio[i, j] = sqrt(S_jj / S_ii); theta.T[i, j] = theta_jj,ij
    ratio = sd[None, :] / sd[:, None]
    pair_terms = ratio * theta + ratio.T * theta.T
    rhohat = np.trace(pi) + (0.5 * rbar * pair_terms[off].sum() if n > 1 else 0.0)
    gammahat = np.sum((f - s) ** 2)

    if gammahat == 0.0:
        kappa = np.nan
        estimated = 0.0
    else:
        kappa = (pihat - rhohat) / gammahat
        estimated = max(0.0, min(1.0, kappa / t))
    if delta is None:
        delta = estimated
    shrunk = delta * f + (1.0 - delta) * s
    details = {"pihat": pihat, "rhohat": rhohat, "gammahat": gammahat, "kappa": kappa}
    return shrunk, delta, rbar, details


def constant_correlation_covcor(x):
    """Second formulation: the raw-moment / matrix-product form of Ledoit & Wolf's covCor.m
    (04/2014 version; the 01/2021 version in their covShrinkage repository divides by T - 1).

    pi_ij = (1/T) sum y_i^2 y_j^2 - 2 S_ij (1/T) sum y_i y_j + S_ij^2 and
    theta_ii,ij = (1/T) sum y_i^3 y_j - S_ii S_ij;
    the two rho pair terms are folded into rbar * sum_{i != j} sqrt(S_jj / S_ii) theta_ii,ij
    (the (i, j) and (j, i) halves are equal by symmetry). Only used as a cross-check.
    Returns (delta, rbar, pihat, rhohat, gammahat).
    """
    t, n = x.shape
    y = x - x.mean(axis=0)
    sample = y.T @ y / t
    var = np.diag(sample)
    sd = np.sqrt(var)
    rbar = (np.sum(sample / np.outer(sd, sd)) - n) / (n * (n - 1))
    prior = rbar * np.outer(sd, sd)
    np.fill_diagonal(prior, var)
    y2 = y**2
    pi_mat = y2.T @ y2 / t - 2.0 * (y.T @ y) * sample / t + sample**2
    pihat = pi_mat.sum()
    # covCor.m: term1 - term2 - term3 + term4 with term2 = term3 = term4 = S_ii S_ij here
    # (its "help" matrix x'x/t is the sample covariance itself).
    theta_mat = (y**3).T @ y / t - var[:, None] * sample
    np.fill_diagonal(theta_mat, 0.0)
    rhohat = np.trace(pi_mat) + rbar * np.sum(np.outer(1.0 / sd, sd) * theta_mat)
    gammahat = np.sum((sample - prior) ** 2)
    kappa = (pihat - rhohat) / gammahat
    delta = max(0.0, min(1.0, kappa / t))
    return delta, rbar, pihat, rhohat, gammahat


def check_constant_correlation(x, delta, rbar, details):
    """Cross-check the paper-form implementation against the covCor.m form."""
    if x.shape[1] == 1:
        return
    with np.errstate(divide="ignore", invalid="ignore"):
        delta2, rbar2, pihat2, rhohat2, gammahat2 = constant_correlation_covcor(x)
    s = sample_covariance(x)
    # pihat, rhohat and gammahat are sums of terms of size ~ S_ii S_jj; compare on that scale
    # (pihat - rhohat cancels completely when T = 2, so a relative check there would be noise).
    scale = np.trace(s) ** 2
    assert abs(rbar - rbar2) <= CHECK_RTOL, (rbar, rbar2)
    assert abs(details["pihat"] - pihat2) <= CHECK_RTOL * scale
    assert abs(details["rhohat"] - rhohat2) <= CHECK_RTOL * scale
    assert abs(details["gammahat"] - gammahat2) <= CHECK_RTOL * scale
    if details["gammahat"] == 0.0:  # target == S: delta is defined as 0, nothing to compare
        return
    if x.shape[0] > 2:
        assert abs(delta - delta2) <= CHECK_RTOL * max(abs(delta), abs(delta2)), (delta, delta2)
    else:
        # T = 2: pihat = rhohat = 0 exactly in exact arithmetic, so delta is rounding noise
        # around 0; bound the difference through the scale of the cancelling sums instead.
        tol_kappa = CHECK_RTOL * (scale + abs(details["pihat"]) + abs(details["rhohat"]))
        assert abs(delta - delta2) <= tol_kappa / details["gammahat"] / x.shape[0]


def estimate_all(x):
    """LW, OAS and constant-correlation estimates of one panel, all cross-checked."""
    lw_cov, lw_delta, lw_mu = sklearn_estimate(LedoitWolf, x)
    oas_cov, oas_delta, oas_mu = sklearn_estimate(OAS, x)
    if x.shape[1] > 1:
        assert abs(lw_delta - ledoit_wolf_2004_intensity(x)) <= CHECK_RTOL
        assert abs(oas_delta - oas_intensity_trace_form(x)) <= CHECK_RTOL
    cc_cov, cc_delta, cc_rbar, details = constant_correlation_shrinkage(x)
    check_constant_correlation(x, cc_delta, cc_rbar, details)
    return {
        "lw": (lw_cov, lw_delta, lw_mu),
        "oas": (oas_cov, oas_delta, oas_mu),
        "cc": (cc_cov, cc_delta, cc_rbar),
    }


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def fmt(value):
    return FLOAT_FORMAT % value


def write_lines(name, header, rows):
    with open(OUT_DIR / name, "w", encoding="ascii", newline="\n") as out:
        out.write(header + "\n")
        for row in rows:
            out.write(",".join(row) + "\n")


def write_data(x, name):
    """Write a T x N panel as ``row,X0,...`` and check that it parses back exactly."""
    header = ",".join(["row"] + [f"X{j}" for j in range(x.shape[1])])
    rows = ([str(r)] + [fmt(v) for v in x[r]] for r in range(x.shape[0]))
    write_lines(f"data_{name}.csv", header, rows)
    parsed = np.loadtxt(OUT_DIR / f"data_{name}.csv", delimiter=",", skiprows=1, ndmin=2)
    assert np.array_equal(parsed[:, 0], np.arange(x.shape[0]))
    assert np.array_equal(parsed[:, 1:], x), name


def write_matrix(matrix, name):
    """Full matrix as ``i,j,value`` (row-major, every (i, j))."""
    n = matrix.shape[0]
    assert matrix.shape == (n, n)
    rows = ([str(i), str(j), fmt(matrix[i, j])] for i in range(n) for j in range(n))
    write_lines(name, "i,j,value", rows)


def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    scalars = []  # (estimator, dataset, intensity, target parameter)

    for k, (name, make) in enumerate(DATASETS):
        x = make(np.random.default_rng([SEED, k]))
        write_data(x, name)
        results = estimate_all(x)
        for estimator in ("lw", "oas", "cc"):
            cov, delta, param = results[estimator]
            write_matrix(cov, f"{estimator}_{name}_covariance.csv")
            scalars.append((estimator, name, delta, param))

        if name == "typical":
            s = sample_covariance(x)
            mu = np.trace(s) / x.shape[1]
            write_matrix(
                shrink_to_identity(s, FIXED_INTENSITY), "fixed_identity_typical_covariance.csv"
            )
            fixed_cc, _, rbar, _ = constant_correlation_shrinkage(x, delta=FIXED_INTENSITY)
            write_matrix(fixed_cc, "fixed_cc_typical_covariance.csv")
            fixed_rows = [
                ("fixed_identity", name, FIXED_INTENSITY, mu),
                ("fixed_cc", name, FIXED_INTENSITY, rbar),
            ]

    order = {"lw": 0, "oas": 1, "cc": 2}
    scalars.sort(key=lambda row: order[row[0]])  # stable: datasets keep their order
    write_lines(
        "scalars.csv",
        "estimator,dataset,intensity,target_parameter",
        ([e, d, fmt(v), fmt(p)] for e, d, v, p in scalars + fixed_rows),
    )

    name, make = ROLLING_DATASET
    x = make(np.random.default_rng([SEED, len(DATASETS)]))
    write_data(x, name)
    w = ROLLING_WINDOW
    rows = []
    for last in range(w - 1, x.shape[0]):
        results = estimate_all(x[last - w + 1 : last + 1])
        rows.append([str(last)] + [fmt(v) for e in ("lw", "oas", "cc") for v in results[e][1:]])
        if last in ROLLING_MATRIX_ROWS:
            for estimator in ("lw", "oas", "cc"):
                write_matrix(
                    results[estimator][0], f"rolling_w{w}_t{last}_{estimator}_covariance.csv"
                )
    write_lines(
        f"rolling_w{w}_intensities.csv",
        "row,lw_shrinkage,lw_mu,oas_shrinkage,oas_mu,cc_shrinkage,cc_rbar",
        rows,
    )
    print(f"wrote {OUT_DIR} with scikit-learn {sklearn.__version__}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
