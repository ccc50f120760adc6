"""Generate pandas reference data for the dynweight streaming statistics.

The script synthesises a small, deterministic market (4 assets A, B, C, D;
251 price bars) and writes, into ``tests/reference/data/stats/``:

* the inputs ``prices.csv`` and ``volumes.csv`` (header ``bar,A,B,C,D``);
* simple and log returns;
* rolling mean/var/cov/corr of simple returns for several windows;
* EWMA means for halflife/span/com/alpha, and var/cov/corr for halflife and
  alpha (adjust and bias);
* the RiskMetrics zero-mean EWMA covariance (lambda = 0.94);
* rolling and EWMA average dollar volume (price * volume) on price bars.

All statistics are computed with pandas (1.5.x) so the C++ implementation can
be checked against an independent reference. Output is long format: vector
statistics use ``bar,i,value``, matrix statistics ``bar,i,j,value`` (lower
triangle i >= j of the symmetric matrix, every bar, NaN written as ``nan``); asset indices i, j are 0-based in
the column order A, B, C, D. Floats are written with 17 significant digits so
they round-trip exactly. Return bar r (0..249) is the return from price bar r
to price bar r + 1. See ``data/stats/README.md`` for the file list.

The output is deterministic (seeded generator); rerun from the project root with

    /usr/bin/python3 tests/reference/make_stats_reference.py

(the paths are resolved relative to this file, so any working directory works).
"""

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20261125
ASSETS = ["A", "B", "C", "D"]
NUM_PRICE_BARS = 251

START_PRICES = np.array([50.0, 120.0, 10000.0, 3.0])
DAILY_VOLS = np.array([0.015, 0.010, 0.0005, 0.030])
DAILY_DRIFTS = np.array([0.0003, 0.0001, 0.00001, -0.0002])
CORRELATION = np.array(
    [
        [1.00, 0.60, 0.30, 0.20],
        [0.60, 1.00, 0.40, 0.10],
        [0.30, 0.40, 1.00, 0.25],
        [0.20, 0.10, 0.25, 1.00],
    ]
)
MEDIAN_VOLUMES = np.array([1.0e6, 5.0e5, 2.0e3, 1.0e7])
VOLUME_LOG_SIGMA = 0.5

# (asset index, first price bar, length): a stale price, repeated for a run longer than the
# 20-bar window, so some windows hold only zero returns (exactly zero variance in pandas).
STALE_PRICE_RUN = (1, 137, 25)
# (asset index, price bar) forced to trade zero volume.
ZERO_VOLUME_AT = (3, 250)

ROLLING_CONFIGS = [(20, None), (20, 5), (60, None), (2, None)]
EWM_PARAMS = [("halflife", 10), ("span", 30), ("com", 5), ("alpha", 0.2)]
# Parameterisations for which var/cov/corr are written too (the others only check the mapping to
# alpha through the mean, which keeps the data small).
EWM_FULL_PARAMS = [("halflife", 10), ("alpha", 0.2)]
RISKMETRICS_LAMBDA = 0.94
ADV_WINDOW = 20
ADV_MIN_PERIODS = [20, 5]
ADV_HALFLIFE = 10

FLOAT_FORMAT = "%.17g"
OUT_DIR = Path(__file__).resolve().parent / "data" / "stats"


def make_prices(rng):
    """Correlated geometric random walks with one stale-price run."""
    chol = np.linalg.cholesky(CORRELATION)
    shocks = rng.standard_normal((NUM_PRICE_BARS - 1, len(ASSETS))) @ chol.T
    log_returns = DAILY_DRIFTS + DAILY_VOLS * shocks
    asset, first, length = STALE_PRICE_RUN
    log_returns[first - 1 : first - 1 + length, asset] = 0.0  # exp(0) = 1 exactly
    prices = np.empty((NUM_PRICE_BARS, len(ASSETS)))
    prices[0] = START_PRICES
    for bar in range(1, NUM_PRICE_BARS):
        prices[bar] = prices[bar - 1] * np.exp(log_returns[bar - 1])
    return pd.DataFrame(prices, columns=ASSETS)


def make_volumes(rng):
    """Whole-share lognormal volumes with one forced zero volume."""
    log_vol = np.log(MEDIAN_VOLUMES) + VOLUME_LOG_SIGMA * rng.standard_normal(
        (NUM_PRICE_BARS, len(ASSETS))
    )
    volumes = np.maximum(np.round(np.exp(log_vol)), 1.0)
    asset, bar = ZERO_VOLUME_AT
    volumes[bar, asset] = 0.0
    return pd.DataFrame(volumes, columns=ASSETS)


def write_csv(frame, name):
    frame.to_csv(
        OUT_DIR / name,
        index=False,
        float_format=FLOAT_FORMAT,
        na_rep="nan",
        lineterminator="\n",
    )


def write_wide(frame, name):
    """Write a bar x asset frame as ``bar,A,B,C,D``."""
    wide = frame.copy()
    wide.insert(0, "bar", np.arange(len(frame)))
    write_csv(wide, name)


def write_vector(frame, name):
    """Write a bar x asset frame as long format ``bar,i,value``."""
    values = frame.to_numpy()
    bars, assets = np.indices(values.shape)
    long = pd.DataFrame(
        {"bar": bars.ravel(), "i": assets.ravel(), "value": values.ravel()}
    )
    write_csv(long, name)


def write_matrix(frame, name):
    """Write a pandas pairwise (bar, asset) x asset frame as ``bar,i,j,value``, i >= j."""
    n = len(ASSETS)
    values = frame.to_numpy()
    num_bars = values.shape[0] // n
    assert values.shape == (num_bars * n, n)
    assert list(frame.index.get_level_values(1)[:n]) == ASSETS
    assert list(frame.columns) == ASSETS
    assert np.array_equal(
        values.reshape(num_bars, n, n), values.reshape(num_bars, n, n).transpose(0, 2, 1),
        equal_nan=True,
    ), "expected symmetric matrices"
    bars, rows, cols = np.indices((num_bars, n, n))
    lower = (rows >= cols).ravel()
    long = pd.DataFrame(
        {
            "bar": bars.ravel()[lower],
            "i": rows.ravel()[lower],
            "j": cols.ravel()[lower],
            "value": values.ravel()[lower],
        }
    )
    write_csv(long, name)


def write_returns(returns, log_returns):
    write_vector(returns, "returns_simple.csv")
    write_vector(log_returns, "returns_log.csv")


def write_rolling(returns):
    for window, min_periods in ROLLING_CONFIGS:
        mp = window if min_periods is None else min_periods
        roll = returns.rolling(window, min_periods=min_periods)
        prefix = f"rolling_w{window}_mp{mp}"
        write_vector(roll.mean(), f"{prefix}_mean.csv")
        write_vector(roll.var(), f"{prefix}_var.csv")
        write_matrix(roll.cov(), f"{prefix}_cov.csv")
        write_matrix(roll.corr(), f"{prefix}_corr.csv")


def write_ewm(returns):
    for kind, value in EWM_PARAMS:
        for adjust in (True, False):
            ewm = returns.ewm(**{kind: value}, adjust=adjust)
            prefix = f"ewm_{kind}{value}_adjust{int(adjust)}"
            write_vector(ewm.mean(), f"{prefix}_mean.csv")
            if (kind, value) not in EWM_FULL_PARAMS:
                continue
            for bias in (True, False):
                tag = f"{prefix}_bias{int(bias)}"
                write_vector(ewm.var(bias=bias), f"{tag}_var.csv")
                write_matrix(ewm.cov(bias=bias), f"{tag}_cov.csv")
            write_matrix(ewm.corr(), f"{prefix}_corr.csv")


def riskmetrics_pandas(returns, lam):
    """Zero-mean EWMA covariance via pandas, one ewm per asset pair."""
    n = len(ASSETS)
    out = np.empty((len(returns), n, n))
    for i, a in enumerate(ASSETS):
        for j, b in enumerate(ASSETS):
            product = returns[a] * returns[b]
            out[:, i, j] = product.ewm(alpha=1.0 - lam, adjust=False).mean()
    return out


def riskmetrics_recursion(returns, lam):
    """Sigma_0 = r_0 r_0^T; Sigma_t = lam Sigma_{t-1} + (1 - lam) r_t r_t^T."""
    r = returns.to_numpy()
    out = np.empty((len(r), r.shape[1], r.shape[1]))
    out[0] = np.outer(r[0], r[0])
    for t in range(1, len(r)):
        out[t] = lam * out[t - 1] + (1.0 - lam) * np.outer(r[t], r[t])
    return out


def write_riskmetrics(returns):
    lam = RISKMETRICS_LAMBDA
    sigma = riskmetrics_pandas(returns, lam)
    direct = riskmetrics_recursion(returns, lam)
    diag = np.diagonal(sigma, axis1=1, axis2=2)
    scale = np.sqrt(diag[:, :, None] * diag[:, None, :])
    assert np.all(np.abs(sigma - direct) <= 1e-14 * scale), "RiskMetrics mismatch"
    index = pd.MultiIndex.from_product([range(len(returns)), ASSETS])
    frame = pd.DataFrame(sigma.reshape(-1, len(ASSETS)), index=index, columns=ASSETS)
    write_matrix(frame, f"riskmetrics_lambda{lam}_cov.csv")


def write_adv(prices, volumes):
    dollar_volume = prices * volumes
    for mp in ADV_MIN_PERIODS:
        adv = dollar_volume.rolling(ADV_WINDOW, min_periods=mp).mean()
        write_vector(adv, f"adv_rolling_w{ADV_WINDOW}_mp{mp}.csv")
    for adjust in (True, False):
        adv = dollar_volume.ewm(halflife=ADV_HALFLIFE, adjust=adjust).mean()
        write_vector(adv, f"adv_ewm_halflife{ADV_HALFLIFE}_adjust{int(adjust)}.csv")


def check_inputs_round_trip(prices, volumes):
    """The written inputs must parse back to exactly the values used here."""
    for frame, name in ((prices, "prices.csv"), (volumes, "volumes.csv")):
        parsed = pd.read_csv(OUT_DIR / name, index_col="bar", float_precision="round_trip")
        assert np.array_equal(parsed.to_numpy(), frame.to_numpy()), name


def main():
    rng = np.random.default_rng(SEED)
    prices = make_prices(rng)
    volumes = make_volumes(rng)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    write_wide(prices, "prices.csv")
    write_wide(volumes, "volumes.csv")
    check_inputs_round_trip(prices, volumes)

    returns = prices.pct_change().iloc[1:].reset_index(drop=True)
    log_returns = np.log(prices).diff().iloc[1:].reset_index(drop=True)
    assert (returns.iloc[:, STALE_PRICE_RUN[0]] == 0.0).sum() >= STALE_PRICE_RUN[2]

    write_returns(returns, log_returns)
    write_rolling(returns)
    write_ewm(returns)
    write_riskmetrics(returns)
    write_adv(prices, volumes)


if __name__ == "__main__":
    main()
