"""Generate pandas reference output for the tests of the ``dynweight`` command-line tool.

Inputs (committed under ``tests/cli/data/``):

* ``market/``: ``dynweight sample --assets 6 --days 120 --seed 20261125 --out market``
  (complete: no missing cells);
* ``late_start/``: the same with ``--late-start 2`` (A005 starts on row 31, A006 on row 61);
* ``gaps/``: written by this script from ``late_start/``: a few interior cells blanked (see
  ``GAPS``), so that ``--missing drop`` and ``--missing ffill`` differ inside the data too.

For every case in ``CASES`` the script computes the statistic with pandas, exactly as the design
describes the CLI conventions (simple returns ``pct_change()``, log returns ``np.log(p).diff()``;
``rolling(W).mean()/.std()/.cov()/.corr()``; ``ewm(halflife=H)`` with adjust=True, bias=False;
ADV = ``(prices * volumes).rolling(W).mean()`` or ``.ewm(halflife=H).mean()`` over price rows;
``--missing drop`` = ``dropna()`` over prices and (for adv, the only statistic that reads them)
volumes together; ``--missing ffill`` =
``prices.ffill()`` then ``dropna()``, missing volumes 0) and writes what ``dynweight stats``
must print, in its own format, to ``tests/cli/data/reference/<name>.csv``, with ``%.17g`` numbers.
``cases.txt`` lists ``<name>|<dynweight arguments>`` (``{data}`` stands for tests/cli/data).

The C++ test (tests/cli/stats_test.cpp) runs each case and compares with a norm-wise relative
tolerance of 1e-12 per date. Rerun from anywhere with

    /usr/bin/python3 tests/reference/make_cli_reference.py
"""

from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parent.parent / "cli" / "data"
OUT = DATA / "reference"

# (file, 1-based data row, asset column name): cells of late_start blanked to make gaps/.
GAPS = [
    ("prices.csv", 70, "A002"),
    ("prices.csv", 71, "A002"),
    ("volumes.csv", 71, "A002"),
    ("prices.csv", 95, "A003"),
    ("volumes.csv", 100, "A005"),
]

WINDOW = 20
HALFLIFE = 10


def make_gaps():
    """Blank the GAPS cells of late_start/ as text, so every other cell is kept byte for byte."""
    target = DATA / "gaps"
    target.mkdir(exist_ok=True)
    for name in ("prices.csv", "volumes.csv"):
        lines = (DATA / "late_start" / name).read_text().splitlines()
        header = lines[0].split(",")
        for file, row, asset in GAPS:
            if file == name:
                cells = lines[row].split(",")
                cells[header.index(asset)] = ""
                lines[row] = ",".join(cells)
        (target / name).write_text("\n".join(lines) + "\n")


def load(fixture, missing, with_volumes):
    """Prices (and volumes, for adv: the CLI reads the volumes file only then) after --missing."""
    read = lambda name: pd.read_csv(DATA / fixture / name, index_col=0, dtype={"date": str})
    prices = read("prices.csv")
    volumes = read("volumes.csv") if with_volumes else pd.DataFrame(index=prices.index)
    if missing == "error":
        assert not prices.isna().any().any() and not volumes.isna().any().any()
    elif missing == "drop":
        keep = prices.notna().all(axis=1) & volumes.notna().all(axis=1)
        prices, volumes = prices[keep], volumes[keep]
    elif missing == "ffill":
        filled = prices.ffill()
        keep = filled.notna().all(axis=1)
        prices, volumes = filled[keep], volumes.fillna(0.0)[keep]
    return prices, volumes


def number(value):
    return "%.17g" % value


def vector_text(frame, all_dates):
    if not all_dates:
        row = frame.iloc[-1]
        return "asset,value\n" + "".join(f"{a},{number(v)}\n" for a, v in row.items())
    lines = ["date,asset,value\n"]
    for date, row in frame.iterrows():
        lines += [f"{date},{a},{number(v)}\n" for a, v in row.items()]
    return "".join(lines)


def matrix_text(pairwise, assets, all_dates):
    """pairwise: pandas (date, asset) x asset frame, as rolling().cov() returns it."""
    dates = list(dict.fromkeys(pairwise.index.get_level_values(0)))
    if not all_dates:
        m = pairwise.loc[dates[-1]].loc[assets, assets].to_numpy()
        lines = ["asset," + ",".join(assets) + "\n"]
        lines += [a + "," + ",".join(number(x) for x in m[i]) + "\n" for i, a in enumerate(assets)]
        return "".join(lines)
    lines = ["date,asset,asset2,value\n"]
    for date in dates:
        m = pairwise.loc[date].loc[assets, assets].to_numpy()
        for i, a in enumerate(assets):
            lines += [f"{date},{a},{assets[j]},{number(m[i, j])}\n" for j in range(i + 1)]
    return "".join(lines)


def compute(prices, volumes, estimator, returns_kind, stat, all_dates):
    kind, value = estimator
    assets = list(prices.columns)
    if stat == "adv":
        dollar = prices * volumes
        if kind == "window":
            result = dollar.rolling(value).mean().iloc[value - 1 :]
        else:
            result = dollar.ewm(halflife=value).mean()
        return vector_text(result, all_dates)
    if returns_kind == "simple":
        r = prices.pct_change().iloc[1:]
    else:
        r = np.log(prices).diff().iloc[1:]
    if kind == "window":
        roll, first = r.rolling(value), value - 1
    else:
        # mean from the first return, dispersion from the second (NaN on the first, as pandas)
        roll, first = r.ewm(halflife=value), (0 if stat == "mean" else 1)
    if stat == "mean":
        return vector_text(roll.mean().iloc[first:], all_dates)
    if stat == "vol":
        return vector_text(roll.std().iloc[first:], all_dates)
    pairwise = roll.cov() if stat == "cov" else roll.corr()
    keep = set(r.index[first:])
    pairwise = pairwise[pairwise.index.get_level_values(0).isin(keep)]
    return matrix_text(pairwise, assets, all_dates)


def cases():
    w, h = ("window", WINDOW), ("halflife", HALFLIFE)
    for stat in ("mean", "vol", "cov", "corr"):
        for est in (w, h):
            for all_dates in (False, True):
                yield ("market", "error", est, "simple", stat, all_dates)
    for stat in ("vol", "cov"):
        for est in (w, h):
            yield ("market", "error", est, "log", stat, True)
    for est in (w, h):
        for all_dates in (False, True):
            yield ("market", "error", est, "simple", "adv", all_dates)
    for fixture in ("late_start", "gaps"):
        for missing in ("drop", "ffill"):
            for stat in ("mean", "cov", "corr", "adv"):
                for est in (w, h):
                    yield (fixture, missing, est, "simple", stat, True)
            yield (fixture, missing, w, "log", "vol", False)


def main():
    make_gaps()
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.csv"):
        old.unlink()
    manifest = []
    for fixture, missing, est, returns_kind, stat, all_dates in cases():
        kind, value = est
        tag = "w" if kind == "window" else "hl"
        name = f"{fixture}_{missing}_{tag}{value}_{returns_kind}_{stat}_{'all' if all_dates else 'last'}"
        prices, volumes = load(fixture, missing, stat == "adv")
        text = compute(prices, volumes, est, returns_kind, stat, all_dates)
        (OUT / f"{name}.csv").write_text(text)
        args = [
            "stats",
            "--prices", f"{{data}}/{fixture}/prices.csv",
            f"--{kind}", str(value),
            "--returns", returns_kind,
            "--stat", stat,
            "--missing", missing,
        ]
        if stat == "adv":
            args += ["--volumes", f"{{data}}/{fixture}/volumes.csv"]
        if all_dates:
            args.append("--all")
        manifest.append(f"{name}|{' '.join(args)}\n")
    (OUT / "cases.txt").write_text("".join(manifest))
    print(f"wrote {len(manifest)} cases to {OUT}")


if __name__ == "__main__":
    main()
