"""Summarize: one leaderboard row per config (config_hash) from `collect`'s runs: mean ± 95% CI per
metric and the paired Δ against the baseline row. All the statistics the renderers show are here."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from regbench.report.collect import LABELS, METRICS, TUNING, VERSION_COLUMNS, VERSIONED
from regbench.report.stats import (holm, interval_shown, mean_ci, paired_difference, paired_p_value,
                                   probability_of_improvement, score_counting_failures)

BOARD_COLUMNS = ["config", "dataset", "model", "technique", "setting", "defaults", "seeds", "diverged",
                 *[f"{m}_{s}" for m in METRICS for s in ("mean", "ci")],
                 "delta_test_acc_mean", "delta_test_acc_ci", "delta_test_loss_mean", "delta_test_loss_ci",
                 "delta_seeds", "prob_improve", "prob_improve_low", "prob_improve_high", "improved_seeds",
                 "p_value", "p_holm", "rank_score", "few_seeds", "baseline", "baselines", "is_baseline",
                 "config_hash", "baseline_hash", *TUNING, *[f"{p}_versions" for p in VERSIONED], "shown"]


def technique_setting(run: pd.Series) -> str:
    """A row's name within its dataset and model: 'none', 'none trainer.batch_size=100'."""
    return f"{run.technique} {run.setting}".strip()


def per_seed(runs: pd.DataFrame, column: str) -> dict[int, float]:
    return dict(zip(runs["seed"].astype(int), runs[column]))


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Leaderboard rows from `collect`'s runs: one per config (config_hash), all its seeds.

    Labels are the newest file's, and so is the baseline: a config compared with several baselines (merged
    sweeps whose `baseline` differed) is still one row, paired with the baseline of the command run last
    (as a rerun that skips a job follows the new `baseline`); `baselines` counts the ones its runs named. Diverged runs are left out of every metric and of Δ (on both sides)
    and counted in `diverged`; `seeds` counts the others. Δ test acc is paired on the seeds both sides
    have with the runs whose config_hash is this row's baseline_hash, and nothing else: with no such
    runs it is NaN and `baseline` says so. A row with no accuracy (regression) gets Δ test loss instead,
    paired the same way (negative is better); `delta_seeds` counts the pairs of whichever Δ it has.
    On the same pairs: `prob_improve` (the share of them on which this row beats its baseline,
    `improved_seeds` of `delta_seeds`, a tie counting half, with a Wilson interval) and `p_value`
    (paired t-test); both NaN on the baseline row itself. `p_holm`: `p_value` Holm-adjusted over the
    family of the rows with a p that one (dataset, model) table shows; the grid values of a tuned
    technique, which only the csv lists, are in no family (NaN). `few_seeds`: too few non-diverged seeds for an
    interval (stats.interval_shown). `defaults`: the keys its siblings set that it leaves at their defaults,
    with their values (collect.defaults). `baseline` names the baseline row
    ('none trainer.batch_size=100'), with its config's first 8 hex digits where two baseline configs
    would read the same, so that the rows of one config run against two baselines never look alike.
    `<package>_versions`: the versions of regbench and torch that wrote the row's runs, oldest first.
    Grouped by (dataset, model); inside a group ranked by `rank_score` (see `rank`).
    """
    if runs.empty:
        return pd.DataFrame(columns=BOARD_COLUMNS)
    alive = runs[~runs.diverged]
    newest = runs.groupby("config_hash").tail(1).set_index("config_hash")
    names = baseline_names(runs, newest)
    rows = []
    for config_hash, group in runs.groupby("config_hash", sort=False):
        ok = group[~group.diverged]
        label = group.iloc[-1]
        baseline_hash = label.baseline_hash
        row: dict[str, Any] = {"config": config_hash[:8], "technique": label.technique,
                               **{key: label[key] for key in LABELS}, "defaults": label.defaults,
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
            row["improved_seeds"] = math.nan
        else:
            row["prob_improve"], row["prob_improve_low"], row["prob_improve_high"], row["improved_seeds"], _ = \
                probability_of_improvement(treated, baseline, higher_is_better=metric == "test_acc")
            row["p_value"], _ = paired_p_value(treated, baseline)
        row["few_seeds"] = not interval_shown(len(ok))
        row["baseline"] = "baseline" if baseline_hash == config_hash else names[baseline_hash]
        row["baselines"] = group.baseline_hash.nunique()
        row.update(is_baseline=baseline_hash == config_hash, config_hash=config_hash,
                   baseline_hash=baseline_hash, **{key: label[key] for key in TUNING})
        for package, column in zip(VERSIONED, VERSION_COLUMNS):
            row[f"{package}_versions"] = " ".join(dict.fromkeys(group[column]))
        rows.append(row)
    board = pd.DataFrame(rows, columns=BOARD_COLUMNS)
    # a grid that was tuned shows its default point and its tuned row; its other points stay in the csv
    tuned_grids = set(board.tuned_grid.dropna())
    board["shown"] = ~(board.grid.isin(tuned_grids) & ~board.grid_default.astype(bool))
    # Holm's family: the rows with a p that one (dataset, model) table shows
    shown = board[board.shown]
    board["p_holm"] = shown.groupby(["dataset", "model"]).p_value.transform(holm).reindex(board.index)
    return rank(board, runs)


def baseline_names(runs: pd.DataFrame, newest: pd.DataFrame) -> dict[str, str]:
    """baseline_hash -> the name a row's `baseline` column gives it: the baseline row's technique and
    setting, with ' (<config 8>)' where rows of one (dataset, model) name two baseline configs that would
    otherwise read the same, or 'not in these results (<8>)' where no run has that config."""
    names = {h: technique_setting(newest.loc[h]) if h in newest.index else f"not in these results ({h[:8]})"
             for h in dict.fromkeys(runs.baseline_hash)}
    clashing = set()
    for _, part in runs.groupby(["dataset", "model"], sort=False):
        named = pd.Series({h: names[h] for h in dict.fromkeys(part.baseline_hash)}, dtype=object)
        clashing |= set(named.index[named.duplicated(keep=False)])
    return {h: f"{name} ({h[:8]})" if h in clashing else name for h, name in names.items()}


def rank(board: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The board sorted: rows of one (dataset, model) together, the best first by `rank_score`.

    rank_score (`stats.score_counting_failures`): the row's test accuracy averaged over ALL its seeds with
    each diverged seed at 0, the worst accuracy there is (test loss with diverged seeds at +inf, lower
    first, where the (dataset, model) has no accuracy). A technique that diverges on some seeds is a worse
    choice than its surviving seeds say (AlgoPerf counts a failed run as infinitely bad), so its diverged
    seeds count against it; a row without diverged seeds scores its shown mean, so clean rows keep the order of
    the test column. Ties (rows whose loss is +inf) go to fewer diverged seeds, then the better mean over
    the surviving seeds. Never by gap alone: a collapsed model has no gap. Rows whose seeds all diverged
    go last, also below a row that has no score at all (a regression row beside classification rows).
    """
    has_acc = board.groupby(["dataset", "model"]).test_acc_mean.transform(lambda acc: acc.notna().any())
    scores, keys = [], []
    for _, row in board.iterrows():
        metric, worst = ("test_acc", 0.0) if has_acc[row.name] else ("test_loss", math.inf)
        mine = runs[runs.config_hash == row.config_hash]
        score = score_counting_failures(mine[metric], mine.diverged, worst)
        scores.append(score)
        sign = -1 if metric == "test_acc" else 1  # every key: lower first
        keys.append((row.seeds == 0, sign * score, row.diverged / max(1, row.seeds + row.diverged),
                     sign * row[f"{metric}_mean"]))
    board["rank_score"] = scores
    keys = pd.DataFrame(keys, columns=["_all_diverged", "_score", "_diverged_share", "_mean"], index=board.index)
    board = pd.concat([board, keys], axis=1).sort_values(
        ["dataset", "model", *keys.columns, "technique", "setting", "config_hash"],
        na_position="last", ignore_index=True)
    return board.drop(columns=list(keys.columns))
