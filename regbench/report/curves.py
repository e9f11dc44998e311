"""Curves: the per-epoch and per-seed files of each leaderboard row, reduced for the pictures.

Reads curves.csv and predictions.npz from the job dirs `collect` found (its runs' `path`); the
renderers (plots.py) draw what these return and compute nothing themselves.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from regbench.report.stats import shared

CURVE_METRICS = ("loss", "acc")
SPLITS = ("train", "val", "test")


def row_runs(runs: pd.DataFrame, config_hash: str) -> pd.DataFrame:
    """The non-diverged runs of one leaderboard row (what its mean and CI are over)."""
    return runs[(runs.config_hash == config_hash) & ~runs.diverged]


def seed_curves(runs: pd.DataFrame, config_hash: str) -> pd.DataFrame:
    """The curves.csv rows of the seeds one row counts, each from the file its run came from: one row per
    (seed, epoch), by seed then epoch. A seed's last row is the epoch it stopped training; `reported` (1)
    marks the epoch whose weights it reports (early stopping's restored epoch), `steps` the optimizer steps
    by then (files written before these columns lack them). Empty when no curves.csv is there."""
    frames = []
    for path, group in row_runs(runs, config_hash).groupby("path"):
        file = Path(path) / "curves.csv"
        try:
            curves = pd.read_csv(file)
        except (OSError, pd.errors.EmptyDataError, pd.errors.ParserError):
            continue
        if {"epoch", "seed"} - set(curves.columns):
            continue
        frames.append(curves[curves.seed.isin(group.seed)])
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames).sort_values(["seed", "epoch"], kind="stable", ignore_index=True)


def curve_bands(runs: pd.DataFrame, config_hash: str) -> pd.DataFrame:
    """Per epoch and curve column ('train_loss', 'val_acc', ...): the mean over seeds and the band
    (lowest, highest seed), over `seed_curves`.

    Returns a frame indexed by epoch with columns (name, stat), stat in mean | low | high; empty when
    no curves.csv is there. A seed that stopped early (early stopping) has no rows after it stopped,
    so late epochs average the seeds still training.
    """
    return bands_of(seed_curves(runs, config_hash))


def bands_of(curves: pd.DataFrame) -> pd.DataFrame:
    """`curve_bands` of a frame of `seed_curves`."""
    if curves.empty:
        return curves
    columns = [f"{split}_{metric}" for metric in CURVE_METRICS for split in SPLITS
               if f"{split}_{metric}" in curves and curves[f"{split}_{metric}"].notna().any()]
    if "lr" in curves:
        columns.append("lr")
    by_epoch = curves.groupby("epoch")[columns]
    bands = pd.concat({"mean": by_epoch.mean(), "low": by_epoch.min(), "high": by_epoch.max()}, axis=1)
    return bands.swaplevel(axis=1).sort_index(axis=1)


def stopped_early(curves: pd.DataFrame) -> bool:
    """`seed_curves` of a row whose seeds report weights from before their last epoch (early stopping
    restored them) or stopped at different epochs: its pictures draw each seed's own curve."""
    if curves.empty:
        return False
    last = curves.groupby("seed").epoch.max()
    if last.nunique() > 1:
        return True
    if "reported" not in curves:
        return False
    reported = curves[curves.reported == 1].groupby("seed").epoch.max()
    return bool((reported.reindex(last.index) < last).any())


def full_batch(curves: pd.DataFrame) -> bool:
    """Every row of `seed_curves` took one optimizer step an epoch (full-batch gradient descent)."""
    return not curves.empty and "steps" in curves and bool((curves.steps == curves.epoch).all())


def seed_values(runs: pd.DataFrame, config_hash: str, metric: str) -> np.ndarray:
    """(n,) `metric` of each seed one row counts (its mean is over these), finite ones, by seed."""
    values = row_runs(runs, config_hash).sort_values("seed")[metric].to_numpy(float)
    return values[np.isfinite(values)]


def paired_differences(runs: pd.DataFrame, config_hash: str, baseline_hash: str, metric: str) -> np.ndarray:
    """(n,) treated − baseline `metric` on each seed both rows count (what the paired Δ is the mean of)."""
    def by_seed(h: str) -> dict[int, float]:
        mine = row_runs(runs, h)
        return dict(zip(mine.seed.astype(int), mine[metric].astype(float)))

    treated, baseline = shared(by_seed(config_hash), by_seed(baseline_hash))
    return treated - baseline


def fitted_functions(runs: pd.DataFrame, config_hash: str) -> dict | None:
    """A 1-D regression row's predictions.npz, only its counted seeds: x_test, y_test (n,), predictions
    (S, n) one per seed, mean (n,) over them, x_train, y_train (N,). None where no job wrote one."""
    parts, grid = [], None
    for path, group in row_runs(runs, config_hash).groupby("path"):
        try:
            with np.load(Path(path) / "predictions.npz") as npz:
                arrays = {key: npz[key] for key in npz.files}
        except (OSError, ValueError):
            continue
        keep = np.isin(arrays["seeds"], group.seed.to_numpy())
        parts.append(arrays["predictions"][keep])
        grid = grid or arrays
    if grid is None or not sum(len(p) for p in parts):
        return None
    predictions = np.concatenate(parts)
    return {"x_test": grid["x_test"], "y_test": grid["y_test"], "predictions": predictions,
            "mean": predictions.mean(0), "x_train": grid["x_train"], "y_train": grid["y_train"]}


def members_against_ensemble(runs: pd.DataFrame, config_hash: str) -> dict | None:
    """An ensemble row's seeds: {'metric': 'test_acc' | 'test_loss', 'ensemble': (S,), 'members':
    [(M,) per seed]}; None for a row without per-member results."""
    rows = row_runs(runs, config_hash)
    for metric, lists in (("test_acc", "member_test_accs"), ("test_loss", "member_test_losses")):
        if lists not in rows or rows[lists].isna().all():
            continue
        usable = rows[rows[lists].map(lambda v: isinstance(v, list) and len(v) > 0)]
        if usable.empty:
            continue
        return {"metric": metric, "seeds": usable.seed.to_numpy(), "ensemble": usable[metric].to_numpy(float),
                "members": [np.array([np.nan if v is None else v for v in values], float)
                            for values in usable[lists]]}
    return None
