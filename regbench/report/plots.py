"""Pictures of a leaderboard: PNGs drawn from the board (means, CIs) and the reduced curves (curves.py).

Drawing only: every number comes from `summarize` (the board) or `curves`. matplotlib is imported
inside `draw_all`, so nothing in a job's path loads it.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from regbench.report import curves as reduce
from regbench.report.summarize import technique_setting
from regbench.report.table import without_common_setting

PLOT_DIR = "report"
SPLIT_STYLE = {"train": ("tab:blue", "-"), "val": ("tab:orange", "--"), "test": ("tab:green", "-.")}
BASELINE_COLOR, OTHER_COLOR = "0.55", "tab:blue"
COLUMNS = 4  # panels per row in the small multiples


@dataclass
class Picture:
    path: Path
    title: str
    caption: str


def slug(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", "-".join(p for p in parts if p)).strip("_")[:120]


def groups(board: pd.DataFrame):
    """(dataset, model, rows in board order) per (dataset, model), in board order."""
    for (dataset, model), rows in board.groupby(["dataset", "model"], sort=False):
        yield dataset, model, rows


def row_name(row: pd.Series) -> str:
    return technique_setting(row)


def draw_all(board: pd.DataFrame, runs: pd.DataFrame, out_dir: Path | str) -> list[Picture]:
    """Every picture the results allow, written as PNGs into `out_dir` (made if missing)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pictures = []
    with plt.rc_context({"font.size": 10, "axes.titlesize": 10, "axes.spines.top": False,
                         "axes.spines.right": False, "savefig.dpi": 110}):
        for dataset, model, rows in groups(board):
            rows, common = without_common_setting(rows)  # a suite's trainer values, said once in the title
            where = f"{dataset}, {model}" + (f", {common}" if common else "")
            pictures += draw_bars(plt, rows, out_dir / f"bars-{slug(dataset, model)}.png", where)
            for metric in reduce.CURVE_METRICS:
                pictures += draw_curves(plt, rows, runs, metric,
                                        out_dir / f"curves_{metric}-{slug(dataset, model)}.png", where)
            pictures += draw_functions(plt, rows, runs, out_dir / f"functions-{slug(dataset, model)}.png", where)
            pictures += draw_members(plt, rows, runs, out_dir / f"members-{slug(dataset, model)}.png", where)
    return pictures


def save(plt, figure, path: Path) -> None:
    figure.savefig(path, bbox_inches="tight")
    plt.close(figure)


def draw_bars(plt, rows: pd.DataFrame, path: Path, where: str) -> list[Picture]:
    """Test metric and gap per row: horizontal bars with 95% CI whiskers, best on top, baseline grey."""
    rows = rows[rows.seeds > 0]
    if rows.empty:
        return []
    classification = rows.test_acc_mean.notna().any()
    panels = ([("test_acc", "test accuracy (%)", 100.0), ("gap_acc", "gap: train − test accuracy (points)", 100.0)]
              if classification else
              [("test_loss", "test loss (mean squared error)", 1.0), ("gap_loss", "loss gap: test − train", 1.0)])
    names = [row_name(r) + (f"  (n={r.seeds})" if r.seeds != rows.seeds.max() else "") for _, r in rows.iterrows()]
    height = 1.2 + 0.32 * len(rows)
    figure, axes = plt.subplots(1, 2, figsize=(10, height), sharey=True, layout="constrained")
    y = list(range(len(rows)))[::-1]  # first board row (the best) on top
    colors = [BASELINE_COLOR if b else OTHER_COLOR for b in rows.is_baseline]
    for axis, (metric, label, scale) in zip(axes, panels):
        means = rows[f"{metric}_mean"].to_numpy(float) * scale
        halves = rows[f"{metric}_ci"].to_numpy(float) * scale
        whiskers = [h if math.isfinite(h) else 0 for h in halves]
        if metric == "test_acc":  # accuracies sit close together near the top: dots, on a zoomed axis
            axis.errorbar(means, y, xerr=whiskers, fmt="none", ecolor="black", capsize=3, lw=1)
            axis.scatter(means, y, c=colors, s=60, zorder=3, edgecolor="black", lw=0.5)
            axis.set_ylim(-0.6, len(rows) - 0.4)
        else:
            axis.barh(y, means, xerr=whiskers, color=colors,
                      error_kw={"ecolor": "black", "capsize": 3, "lw": 1}, height=0.65)
            axis.axvline(0, color="black", lw=0.8)
        for base in means[rows.is_baseline.to_numpy(bool)]:
            axis.axvline(base, color=BASELINE_COLOR, ls="--", lw=1)
        axis.set_xlabel(label)
        axis.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, names)
    better = "higher is better" if classification else "lower is better"
    axes[0].set_title(f"{where}: test {'accuracy' if classification else 'loss'} ({better})")
    axes[1].set_title("train–test gap (smaller: less overfitting)")
    figure.supxlabel("mean over seeds" + (" (dot)" if classification else "") + "; whiskers: 95% CI; grey and "
                     "dashed line: the baseline (no regularizer)", fontsize=9)
    save(plt, figure, path)
    metric = "test accuracy" if classification else "test loss"
    return [Picture(path, f"{metric} and gap: {where}",
                    f"{metric} and train–test gap per technique, mean and 95% CI over seeds; grey: the baseline")]


def grid(plt, count: int, width: float = 3.2, height: float = 2.5):
    columns = min(COLUMNS, count)
    lines = math.ceil(count / columns)
    figure, axes = plt.subplots(lines, columns, figsize=(width * columns, height * lines + 0.6),
                                squeeze=False, sharex=True, sharey=True, layout="constrained")
    for axis in axes.flat[count:]:
        axis.set_visible(False)
    return figure, list(axes.flat[:count])


def each_row(rows: pd.DataFrame, runs: pd.DataFrame, reduction) -> list[tuple[pd.Series, object]]:
    """(row, reduction(runs, row.config_hash)) for every row whose reduction found something (not None)."""
    found = [(row, reduction(runs, row.config_hash)) for _, row in rows.iterrows()]
    return [(row, value) for row, value in found if value is not None]


def label_first_column(axes: list, label: str) -> None:
    """The y label on the first panel of each line of a `grid`."""
    for axis in axes[::min(COLUMNS, len(axes))]:
        axis.set_ylabel(label)


def draw_curves(plt, rows: pd.DataFrame, runs: pd.DataFrame, metric: str, path: Path,
                where: str) -> list[Picture]:
    """Small multiples, one panel per row: train, val and test `metric` over epochs, mean over seeds
    and the band from the lowest to the highest seed."""
    bands = [(row, b) for row, b in each_row(rows, runs, reduce.curve_bands)
             if not b.empty and f"train_{metric}" in b.columns.get_level_values(0)]
    if not bands:
        return []
    figure, axes = grid(plt, len(bands))
    positive = True
    for axis, (row, band) in zip(axes, bands):
        for split, (color, style) in SPLIT_STYLE.items():
            name = f"{split}_{metric}"
            if name not in band.columns.get_level_values(0):
                continue
            scale = 100.0 if metric == "acc" else 1.0
            epochs = band.index.to_numpy()
            mean = band[(name, "mean")].to_numpy(float) * scale
            axis.plot(epochs, mean, color=color, ls=style, lw=1.6, label=split)
            axis.fill_between(epochs, band[(name, "low")].to_numpy(float) * scale,
                              band[(name, "high")].to_numpy(float) * scale, color=color, alpha=0.18, lw=0)
            positive &= bool((band[(name, "low")] > 0).all())
        axis.set_title(row_name(row) + (" (baseline)" if row.is_baseline else ""))
        axis.grid(alpha=0.3)
    if metric == "loss" and positive:
        from matplotlib.ticker import FormatStrFormatter, LogLocator
        axes[0].set_yscale("log")
        for axis in axes:  # 0.2 rather than 2×10⁻¹, and only 1, 2, 5 of each decade labelled
            axis.yaxis.set_major_formatter(FormatStrFormatter("%g"))
            axis.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
            axis.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
    for axis in axes:
        axis.tick_params(labelbottom=True)
    axes[0].legend(loc="best", fontsize=8)
    for axis in axes:  # every panel: a lone panel on the last line would otherwise sit under an unlabelled one
        axis.set_xlabel("epoch")
    label_first_column(axes, "accuracy (%)" if metric == "acc" else "loss" + (" (log scale)" if positive else ""))
    figure.suptitle(f"{where}: {'accuracy' if metric == 'acc' else 'loss'} during training "
                    "(line: mean over seeds; band: lowest to highest seed)", y=1.0, va="bottom")
    save(plt, figure, path)
    what = "accuracy" if metric == "acc" else "loss"
    return [Picture(path, f"learning curves ({what}): {where}",
                    f"train, validation and test {what} per epoch; mean over seeds, band from the lowest to the "
                    "highest seed")]


def draw_functions(plt, rows: pd.DataFrame, runs: pd.DataFrame, path: Path, where: str) -> list[Picture]:
    """1-D regression: each row's fitted functions over the training points and the true function."""
    fits = each_row(rows, runs, reduce.fitted_functions)
    if not fits:
        return []
    figure, axes = grid(plt, len(fits), width=3.2, height=2.6)
    first = fits[0][1]
    low = min(first["y_test"].min(), first["y_train"].min())
    high = max(first["y_test"].max(), first["y_train"].max())
    margin = 0.15 * (high - low)
    for axis, (row, fit) in zip(axes, fits):
        order = fit["x_test"].argsort()
        x = fit["x_test"][order]
        for prediction in fit["predictions"]:
            axis.plot(x, prediction[order], color="tab:blue", lw=0.8, alpha=0.35)
        axis.plot(x, fit["y_test"][order], color="black", ls="--", lw=1.2, label="true function")
        axis.plot(x, fit["mean"][order], color="tab:blue", lw=2.2, label="fit: mean of seeds")
        axis.scatter(fit["x_train"], fit["y_train"], s=14, color="tab:orange", edgecolor="black", lw=0.5,
                     zorder=3, label="training points")
        axis.set_ylim(low - margin, high + margin)
        axis.set_title(row_name(row) + f" ({len(fit['predictions'])} seeds)")
        axis.tick_params(labelbottom=True)
    axes[0].legend(loc="upper right", fontsize=7)
    columns = min(COLUMNS, len(fits))
    for axis in axes[-columns:]:
        axis.set_xlabel("input x")
    label_first_column(axes, "output y")
    figure.suptitle(f"{where}: fitted functions (faint: each seed; bold: their mean)", y=1.0, va="bottom")
    save(plt, figure, path)
    return [Picture(path, f"fitted functions: {where}",
                    "each technique's fit over the training points and the true function; faint lines are single "
                    "seeds, the bold line their mean")]


def draw_members(plt, rows: pd.DataFrame, runs: pd.DataFrame, path: Path, where: str) -> list[Picture]:
    """Ensembles: each member's test metric beside the ensemble's, per seed."""
    found = each_row(rows, runs, reduce.members_against_ensemble)
    if not found:
        return []
    figure, axes = plt.subplots(1, len(found), figsize=(max(4.0, 1.0 + 0.7 * max(len(m["seeds"]) for _, m in found))
                                                      * len(found), 3.2), squeeze=False, sharey=True)
    axes = list(axes.flat)
    for axis, (row, members) in zip(axes, found):
        scale = 100.0 if members["metric"] == "test_acc" else 1.0
        for i, (seed, ensemble, each) in enumerate(zip(members["seeds"], members["ensemble"], members["members"])):
            spread = [i + (j - (len(each) - 1) / 2) * 0.08 for j in range(len(each))]
            axis.scatter(spread, each * scale, s=16, color="tab:blue", alpha=0.7,
                         label="member" if i == 0 else None)
            axis.scatter([i], [ensemble * scale], marker="D", s=40, color="tab:red", zorder=3,
                         label="ensemble" if i == 0 else None)
        axis.set_xticks(range(len(members["seeds"])), [f"seed {s}" for s in members["seeds"]])
        axis.set_title(row_name(row))
        axis.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)" if found[0][1]["metric"] == "test_acc" else "test loss")
    axes[0].legend(loc="best", fontsize=8)
    figure.suptitle(f"{where}: ensemble members against the ensemble", y=1.0, va="bottom")
    save(plt, figure, path)
    return [Picture(path, f"members against the ensemble: {where}",
                    "each member's own test result (dots) and the ensemble's (diamond), per seed")]
