"""Summarize: one leaderboard row per (config_hash, baseline_hash) from `collect`'s runs: mean ± 95% CI
per metric and the paired Δ against the baseline row. All the statistics the renderers show are here."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from regbench.report.collect import LABELS, METRICS, TUNING
from regbench.report.stats import mean_ci, paired_difference, paired_p_value, probability_of_improvement

FEW_SEEDS = 3  # rows with fewer seeds than this are flagged: their intervals say little

BOARD_COLUMNS = ["config", "dataset", "model", "technique", "setting", "seeds", "diverged",
                 *[f"{m}_{s}" for m in METRICS for s in ("mean", "ci")],
                 "delta_test_acc_mean", "delta_test_acc_ci", "delta_test_loss_mean", "delta_test_loss_ci",
                 "delta_seeds", "prob_improve", "prob_improve_low", "prob_improve_high", "p_value",
                 "few_seeds", "baseline", "is_baseline",
                 "config_hash", "baseline_hash", *TUNING, "shown"]


def technique_setting(run: pd.Series) -> str:
    """A row's name within its dataset and model: 'none', 'none trainer.batch_size=100'."""
    return f"{run.technique} {run.setting}".strip()


def per_seed(runs: pd.DataFrame, column: str) -> dict[int, float]:
    return dict(zip(runs["seed"].astype(int), runs[column]))


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Leaderboard rows from `collect`'s runs: one per (config_hash, baseline_hash).

    Labels are the newest file's. Diverged runs are left out of every metric and of Δ (on both sides)
    and counted in `diverged`; `seeds` counts the others. Δ test acc is paired on the seeds both sides
    have with the runs whose config_hash is this row's baseline_hash, and nothing else: with no such
    runs it is NaN and `baseline` says so. A row with no accuracy (regression) gets Δ test loss instead,
    paired the same way (negative is better); `delta_seeds` counts the pairs of whichever Δ it has.
    On the same pairs: `prob_improve` (P(this row beats its baseline on a seed), with a bootstrap
    interval) and `p_value` (paired t-test); both NaN on the baseline row itself. `few_seeds`: fewer
    than FEW_SEEDS non-diverged seeds.
    Grouped by (dataset, model); inside a group sorted by test accuracy (test loss where the group has no
    accuracy), never by gap alone (a collapsed model has no gap); rows whose seeds all diverged last.
    """
    if runs.empty:
        return pd.DataFrame(columns=BOARD_COLUMNS)
    alive = runs[~runs.diverged]
    newest = runs.groupby("config_hash").tail(1).set_index("config_hash")
    rows = []
    for (config_hash, baseline_hash), group in runs.groupby(["config_hash", "baseline_hash"], sort=False):
        ok = group[~group.diverged]
        label = group.iloc[-1]
        row: dict[str, Any] = {"config": config_hash[:8], "technique": label.technique,
                               **{key: label[key] for key in LABELS},
                               "seeds": len(ok), "diverged": int(group.diverged.sum())}
        for metric in METRICS:
            row[f"{metric}_mean"], row[f"{metric}_ci"], _ = mean_ci(ok[metric])
        base = alive[alive.config_hash == baseline_hash]
        # regression (no accuracy): Δ, P(improvement) and p on the test loss, lower is better
        metric, other = ("test_acc", "test_loss") if group.test_acc.notna().any() or group.test_loss.isna().all() \
            else ("test_loss", "test_acc")
        treated, baseline = per_seed(ok, metric), per_seed(base, metric)
        row[f"delta_{metric}_mean"], row[f"delta_{metric}_ci"], row["delta_seeds"] = \
            paired_difference(treated, baseline)
        row[f"delta_{other}_mean"] = row[f"delta_{other}_ci"] = math.nan
        if baseline_hash == config_hash:
            row["prob_improve"] = row["prob_improve_low"] = row["prob_improve_high"] = row["p_value"] = math.nan
        else:
            row["prob_improve"], row["prob_improve_low"], row["prob_improve_high"], _ = \
                probability_of_improvement(treated, baseline, higher_is_better=metric == "test_acc")
            row["p_value"], _ = paired_p_value(treated, baseline)
        row["few_seeds"] = len(ok) < FEW_SEEDS
        if baseline_hash == config_hash:
            row["baseline"] = "baseline"
        elif baseline_hash in newest.index:
            row["baseline"] = technique_setting(newest.loc[baseline_hash])
        else:
            row["baseline"] = f"not in these results ({baseline_hash[:8]})"
        row.update(is_baseline=baseline_hash == config_hash, config_hash=config_hash,
                   baseline_hash=baseline_hash, **{key: label[key] for key in TUNING})
        rows.append(row)
    board = pd.DataFrame(rows, columns=BOARD_COLUMNS)
    # a grid that was tuned shows its default point and its tuned row; its other points stay in the csv
    tuned_grids = set(board.tuned_grid.dropna())
    board["shown"] = ~(board.grid.isin(tuned_grids) & ~board.grid_default.astype(bool))
    # Rows of one (dataset, model) stay together, whatever else a merged sweep holds; inside each, the
    # best first: highest test accuracy, or lowest test loss where that pair has no accuracy (regression).
    has_acc = board.groupby(["dataset", "model"]).test_acc_mean.transform(lambda acc: acc.notna().any())
    board["score"] = (-board.test_acc_mean).where(has_acc, board.test_loss_mean)
    board["all_diverged"] = board.seeds == 0
    board = board.sort_values(["dataset", "model", "all_diverged", "score", "technique", "setting", "config_hash"],
                              na_position="last", ignore_index=True)
    return board.drop(columns=["all_diverged", "score"])
