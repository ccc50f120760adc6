"""Generate reference data for the dynweight risk-budgeting (risk parity) solver.

Problem: given a covariance matrix Sigma (N x N, symmetric positive definite) and risk
budgets b >= 0 with sum(b) = 1, find long-only weights w >= 0, sum(w) = 1, whose risk
contributions RC_i = w_i (Sigma w)_i satisfy RC_i / sum_j RC_j = b_i for every i. Assets
with b_i = 0 get exactly w_i = 0; the problem is solved on the others (sub-matrix of
Sigma, their budgets, which still sum to 1).

The reference solution is computed independently of dynweight with SciPy, using
Spinu's (2013) convex formulation on the active set (b_i > 0):

    minimise f(x) = 1/2 x^T Sigma x - sum_i b_i ln x_i   over x > 0,

whose stationarity condition Sigma x - b / x = 0 is exactly x_i (Sigma x)_i = b_i; then
w = x / sum(x). ``scipy.optimize.minimize(method='trust-exact')`` is run with the exact
gradient and Hessian from x0_i = sqrt(b_i) / sigma_i scaled so that x0^T Sigma x0 = 1,
and the result is polished with plain Newton steps on Sigma x - b / x = 0
(``numpy.linalg.solve`` with the Hessian Sigma + diag(b / x^2)) while the scaled
gradient max_i |x_i (Sigma x)_i - b_i| keeps decreasing. Every case is cross-checked
against a second run (``method='Newton-CG'`` from another start) and, except for the
ill-conditioned case, against cyclical coordinate descent (Griveau-Billion, Richard &
Roncalli 2013), an algorithm that shares no code with the Newton solvers.

Seven cases are written into ``tests/reference/data/risk_parity/``: ``small`` (N = 5),
``budgets`` (N = 10, unequal budgets), ``zero_budget`` (N = 8, b_2 = b_5 = 0),
``correlated`` (N = 30, constant correlation 0.9), ``n100`` (N = 100, 5 factors),
``ill_conditioned`` (N = 50, condition number ~1e8) and ``diagonal`` (N = 6, closed form
w_i ~ sqrt(b_i) / sigma_i). For each case ``<name>``:

* ``<name>_covariance.csv``: header ``i,j,value``, the full N x N matrix (every (i, j),
  row-major), exactly symmetric;
* ``<name>_budgets.csv``: header ``asset,budget``;
* ``<name>_weights.csv``: header ``asset,weight`` (the reference solution);

plus ``cases.csv`` (header ``name,assets,condition_number,residual``). Indices are
0-based. All floats use 17 significant digits so they round-trip exactly; the solver
works on the parsed-back covariance and budgets, i.e. on exactly what is written, and the
residuals are those of the written weights. The script asserts
max_i |RC_i / sum(RC) - b_i| <= 1e-13 (1e-12 for ``ill_conditioned``), w >= 0 and
|sum(w) - 1| <= 1e-15 N. See ``data/risk_parity/README.md`` for details.

The output is deterministic (seeded generators); rerun from the project root with

    /usr/bin/python3 tests/reference/make_risk_parity_reference.py

(the paths are resolved relative to this file, so any working directory works).
"""

from fractions import Fraction
from pathlib import Path

import numpy as np
import scipy
from scipy.optimize import minimize

SEED = 20261127
FLOAT_FORMAT = "%.17g"
OUT_DIR = Path(__file__).resolve().parent / "data" / "risk_parity"

# Required accuracy of the reference weights: max_i |RC_i / sum(RC) - b_i|.
RESIDUAL_TOL = 1e-13
RESIDUAL_TOL_ILL = 1e-12
# |sum(w) - 1| <= SUM_TOL_PER_ASSET * N.
SUM_TOL_PER_ASSET = 1e-15
# Diagonal and constant-correlation cases: max_i |w_i - w_closed_i|.
CLOSED_FORM_TOL = 1e-15

# Newton polish: at most this many steps; stop after POLISH_PATIENCE steps in a row that do
# not decrease the scaled gradient (the best iterate is kept).
POLISH_MAX_STEPS = 30
POLISH_PATIENCE = 2

# Cross-checks (max_i |w_i - w'_i| / max_i w_i).
SECOND_START_TOL = 1e-12
CCD_TOL = 1e-10
CCD_STOP = 1e-14
CCD_MAX_SWEEPS = 5000

ILL_CONDITIONED_DECADES = 8.0


# --------------------------------------------------------------------------------------------
# Synthetic cases
# --------------------------------------------------------------------------------------------


def daily_vols(rng, n):
    """Daily-return volatilities, uniform in 0.5%..3%."""
    return rng.uniform(0.005, 0.03, n)


def factor_correlation(loadings):
    """Correlation matrix B B^T + diag(1 - |B_i|^2) of a factor model (row norms < 1)."""
    assert np.all(np.sum(loadings**2, axis=1) < 1.0)
    corr = loadings @ loadings.T
    np.fill_diagonal(corr, 1.0)
    return corr


def covariance_from_correlation(corr, vols):
    """Sigma_ij = vol_i vol_j corr_ij, symmetrised exactly."""
    cov = corr * np.outer(vols, vols)
    return 0.5 * (cov + cov.T)


def two_factor_covariance(rng, n):
    """A market factor (loadings U(0.2, 0.7)) plus a long/short "sector" factor (even assets
    +U(0.3, 0.6), odd assets -U(0.3, 0.6)) and idiosyncratic variance; vols U(0.5%, 3%)."""
    vols = daily_vols(rng, n)
    market = rng.uniform(0.2, 0.7, n)
    sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    sector = sign * rng.uniform(0.3, 0.6, n)
    return covariance_from_correlation(factor_correlation(np.column_stack([market, sector])), vols)


def equal_budgets(n):
    return np.full(n, 1.0 / n)


def make_small(rng):
    n = 5
    return two_factor_covariance(rng, n), equal_budgets(n)


def make_budgets(rng):
    n = 10
    cov = two_factor_covariance(rng, n)
    raw = rng.uniform(0.2, 1.0, n)
    return cov, raw / raw.sum()


def make_zero_budget(rng):
    n = 8
    cov = two_factor_covariance(rng, n)
    budgets = np.full(n, 1.0 / 6.0)
    budgets[[2, 5]] = 0.0
    return cov, budgets


def make_correlated(rng):
    """Constant correlation 0.9, volatilities evenly spaced from 0.5% to 3% (no randomness)."""
    n = 30
    corr = np.full((n, n), 0.9)
    np.fill_diagonal(corr, 1.0)
    return covariance_from_correlation(corr, np.linspace(0.005, 0.03, n)), equal_budgets(n)


def make_n100(rng):
    """5 factors: market loadings U(0.3, 0.6), four style factors U(-0.3, 0.3)."""
    n = 100
    vols = daily_vols(rng, n)
    loadings = np.column_stack([rng.uniform(0.3, 0.6, n), rng.uniform(-0.3, 0.3, (n, 4))])
    return covariance_from_correlation(factor_correlation(loadings), vols), equal_budgets(n)


def make_ill_conditioned(rng):
    """C = Q diag(lambda) Q^T with lambda logspaced over 8 decades (1 .. 1e-8) and Q a random
    orthogonal matrix (QR of a Gaussian matrix, signs fixed so that diag(R) > 0); then
    D^{-1/2} C D^{-1/2} (D = diag(C)) is rescaled to volatilities U(0.5%, 3%)."""
    n = 50
    vols = daily_vols(rng, n)
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    q = q * np.sign(np.diag(r))
    eigenvalues = np.logspace(0.0, -ILL_CONDITIONED_DECADES, n)
    c = (q * eigenvalues) @ q.T
    c = 0.5 * (c + c.T)
    d = np.sqrt(np.diag(c))
    corr = c / np.outer(d, d)
    np.fill_diagonal(corr, 1.0)
    return covariance_from_correlation(corr, vols), equal_budgets(n)


def make_diagonal(rng):
    n = 6
    vols = np.array([0.005, 0.03, 0.012, 0.008, 0.021, 0.016])
    raw = rng.uniform(0.2, 1.0, n)
    return np.diag(vols**2), raw / raw.sum()


# (name, generator); each case gets its own generator np.random.default_rng([SEED, k]) so
# that changing one case does not change the others.
CASES = [
    ("small", make_small),
    ("budgets", make_budgets),
    ("zero_budget", make_zero_budget),
    ("correlated", make_correlated),
    ("n100", make_n100),
    ("ill_conditioned", make_ill_conditioned),
    ("diagonal", make_diagonal),
]


# --------------------------------------------------------------------------------------------
# Solver (Spinu 2013) and checks
# --------------------------------------------------------------------------------------------


def spinu_functions(cov, b):
    """f(x) = 1/2 x^T Sigma x - b . ln x (+inf outside x > 0), its gradient and Hessian."""

    def fun(x):
        if np.any(x <= 0.0):
            return np.inf
        return 0.5 * x @ (cov @ x) - b @ np.log(x)

    def jac(x):
        return cov @ x - b / x

    def hess(x):
        h = cov.copy()
        h.flat[:: len(x) + 1] += b / x**2
        return h

    return fun, jac, hess


def scaled_gradient(cov, b, x):
    """max_i |x_i (Sigma x)_i - b_i| = max_i |x_i g_i|: the budget residual at scale sum(RC) ~ 1."""
    return np.max(np.abs(x * (cov @ x) - b))


def scale_to_unit_risk(cov, x):
    """Scale x so that x^T Sigma x = 1 (= sum(b), which holds at the solution)."""
    return x / np.sqrt(x @ (cov @ x))


def newton_polish(cov, b, x):
    """Plain Newton steps on Sigma x - b / x = 0 while the scaled gradient decreases."""
    _, jac, hess = spinu_functions(cov, b)
    best_x, best_g = x, scaled_gradient(cov, b, x)
    steps = misses = 0
    while steps < POLISH_MAX_STEPS and misses < POLISH_PATIENCE:
        x = x - np.linalg.solve(hess(x), jac(x))
        steps += 1
        assert np.all(x > 0.0), "Newton step left the domain x > 0"
        g = scaled_gradient(cov, b, x)
        if g < best_g:
            best_x, best_g, misses = x, g, 0
        else:
            misses += 1
    return best_x, steps


def spinu_solve(cov, b, x0, method):
    """Minimise the Spinu objective on an active set, then polish; returns (x, nit, steps)."""
    fun, jac, hess = spinu_functions(cov, b)
    # Gradient tolerance relative to the size of its terms (b_i / x_i at the start); loose
    # enough to stay above the rounding floor of the gradient (tighter values make trust-exact
    # stop with "A bad approximation caused failure to predict improvement"): the Newton
    # polish below takes the solution to full precision.
    gtol = 1e-8 * np.max(b / x0)
    if method == "trust-exact":
        res = minimize(fun, x0, method=method, jac=jac, hess=hess, options={"gtol": gtol})
    else:
        res = minimize(fun, x0, method=method, jac=jac, hess=hess, options={"xtol": 1e-12})
    assert res.success, (method, res.message)
    assert np.all(res.x > 0.0)
    x, steps = newton_polish(cov, b, res.x)
    return x, res.nit, steps


def weights_from_x(x, n, active):
    w = np.zeros(n)
    w[active] = x / x.sum()
    return w


def solve_risk_budget(cov, budgets):
    """Reference solution: trust-exact from x0_i ~ sqrt(b_i) / sigma_i, then Newton polish."""
    n = len(budgets)
    active = budgets > 0.0
    sub_cov = cov[np.ix_(active, active)]
    b = budgets[active]
    x0 = scale_to_unit_risk(sub_cov, np.sqrt(b) / np.sqrt(np.diag(sub_cov)))
    x, nit, steps = spinu_solve(sub_cov, b, x0, "trust-exact")
    return weights_from_x(x, n, active), nit, steps


def solve_second_start(cov, budgets):
    """Cross-check: Newton-CG from the equal-weight start (scaled to unit risk), then polish."""
    n = len(budgets)
    active = budgets > 0.0
    sub_cov = cov[np.ix_(active, active)]
    b = budgets[active]
    x0 = scale_to_unit_risk(sub_cov, np.ones(len(b)))
    x, _, _ = spinu_solve(sub_cov, b, x0, "Newton-CG")
    return weights_from_x(x, n, active)


def solve_ccd(cov, budgets):
    """Cross-check: cyclical coordinate descent on the Spinu objective (Griveau-Billion,
    Richard & Roncalli 2013). Coordinate i solves Sigma_ii x_i^2 + c_i x_i - b_i = 0 with
    c_i = sum_{j != i} Sigma_ij x_j, i.e. x_i = (-c_i + sqrt(c_i^2 + 4 Sigma_ii b_i)) / (2 Sigma_ii).
    Plain NumPy, no SciPy; Sigma x is recomputed at the start of every sweep and updated
    incrementally within it. Stops when a sweep changes no x_i by more than CCD_STOP
    relative (converges linearly; far too slowly for the ill-conditioned case).
    Returns (weights, sweeps)."""
    n = len(budgets)
    active = budgets > 0.0
    sub_cov = cov[np.ix_(active, active)]
    b = budgets[active]
    diag = np.diag(sub_cov).copy()
    x = scale_to_unit_risk(sub_cov, np.ones(len(b)))
    for sweep in range(1, CCD_MAX_SWEEPS + 1):
        sigma_x = sub_cov @ x
        change = 0.0
        for i in range(len(b)):
            c = sigma_x[i] - diag[i] * x[i]
            new = (-c + np.sqrt(c * c + 4.0 * diag[i] * b[i])) / (2.0 * diag[i])
            sigma_x += sub_cov[:, i] * (new - x[i])
            change = max(change, abs(new - x[i]) / new)
            x[i] = new
        if change <= CCD_STOP:
            return weights_from_x(x, n, active), sweep
    raise AssertionError("coordinate descent did not converge")


def residual_float64(cov, budgets, w):
    """max_i |RC_i / sum(RC) - b_i| in plain float64 arithmetic."""
    rc = w * (cov @ w)
    return np.max(np.abs(rc / rc.sum() - budgets))


def residual_exact(cov, budgets, w):
    """Same residual in exact rational arithmetic on the (binary, exactly written) inputs,
    rounded to float64 at the end: independent of BLAS and summation order."""
    n = len(w)
    wf = [Fraction(v) for v in w]
    rc = []
    for i in range(n):
        if wf[i] == 0:
            rc.append(Fraction(0))
            continue
        row = sum(Fraction(cov[i, j]) * wf[j] for j in range(n) if wf[j] != 0)
        rc.append(wf[i] * row)
    total = sum(rc)
    return float(max(abs(rc[i] / total - Fraction(budgets[i])) for i in range(n)))


def relative_gap(w, other):
    return np.max(np.abs(w - other)) / np.max(w)


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


def read_table(name):
    return np.loadtxt(OUT_DIR / name, delimiter=",", skiprows=1, ndmin=2)


def write_matrix(matrix, name):
    """Full matrix as ``i,j,value`` (row-major, every (i, j)); returns the parsed-back matrix."""
    n = matrix.shape[0]
    assert matrix.shape == (n, n)
    rows = ([str(i), str(j), fmt(matrix[i, j])] for i in range(n) for j in range(n))
    write_lines(name, "i,j,value", rows)
    table = read_table(name)
    assert np.array_equal(table[:, 0], np.repeat(np.arange(n), n))
    assert np.array_equal(table[:, 1], np.tile(np.arange(n), n))
    parsed = table[:, 2].reshape(n, n)
    assert np.array_equal(parsed, matrix), name
    return parsed


def write_vector(vector, name, column):
    """Vector as ``asset,<column>``; returns the parsed-back vector."""
    n = len(vector)
    write_lines(name, f"asset,{column}", ([str(i), fmt(vector[i])] for i in range(n)))
    table = read_table(name)
    assert np.array_equal(table[:, 0], np.arange(n))
    assert np.array_equal(table[:, 1], vector), name
    return table[:, 1]


def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    summary = []  # (name, N, condition number, residual)

    for k, (name, make) in enumerate(CASES):
        cov, budgets = make(np.random.default_rng([SEED, k]))
        n = len(budgets)

        # Solve on exactly what is written.
        cov = write_matrix(cov, f"{name}_covariance.csv")
        budgets = write_vector(budgets, f"{name}_budgets.csv", "budget")
        assert np.array_equal(cov, cov.T), name
        np.linalg.cholesky(cov)  # positive definite
        assert np.all(budgets >= 0.0) and abs(budgets.sum() - 1.0) <= 1e-15 * n
        condition = np.linalg.cond(cov)

        w, nit, steps = solve_risk_budget(cov, budgets)
        w = write_vector(w, f"{name}_weights.csv", "weight")

        tol = RESIDUAL_TOL_ILL if name == "ill_conditioned" else RESIDUAL_TOL
        res64 = residual_float64(cov, budgets, w)
        res_exact = residual_exact(cov, budgets, w)
        assert res64 <= tol, (name, res64)
        assert res_exact <= tol, (name, res_exact)
        assert np.all(w >= 0.0), name
        assert np.all(w[budgets == 0.0] == 0.0), name
        assert np.all(w[budgets > 0.0] > 0.0), name
        assert abs(w.sum() - 1.0) <= SUM_TOL_PER_ASSET * n, (name, w.sum() - 1.0)

        gap_second = relative_gap(w, solve_second_start(cov, budgets))
        assert gap_second <= SECOND_START_TOL, (name, gap_second)
        checks = f"second start {gap_second:.1e}"
        if name != "ill_conditioned":
            w_ccd, sweeps = solve_ccd(cov, budgets)
            gap_ccd = relative_gap(w, w_ccd)
            assert gap_ccd <= CCD_TOL, (name, gap_ccd, sweeps)
            checks += f", ccd {gap_ccd:.1e} ({sweeps} sweeps)"
        if name in ("diagonal", "correlated"):
            # Diagonal Sigma: RC_i = w_i^2 Sigma_ii, so w_i ~ sqrt(b_i) / sigma_i. Constant
            # correlation with equal budgets: w_i ~ 1 / sigma_i (the same formula).
            closed = np.sqrt(budgets) / np.sqrt(np.diag(cov))
            closed /= closed.sum()
            gap_closed = np.max(np.abs(w - closed))
            assert gap_closed <= CLOSED_FORM_TOL, (name, gap_closed)
            checks += f", closed form {gap_closed:.1e}"

        summary.append((name, n, condition, res_exact))
        print(
            f"{name:<16} N={n:<3d} cond={condition:.3e} residual={res_exact:.2e} "
            f"(float64 {res64:.2e}) iterations={nit} trust-exact + {steps} Newton "
            f"[{checks}]"
        )

    write_lines(
        "cases.csv",
        "name,assets,condition_number,residual",
        ([name, str(n), fmt(c), fmt(r)] for name, n, c, r in summary),
    )
    print(f"wrote {OUT_DIR} with scipy {scipy.__version__}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
