"""Pictures of a leaderboard: PNGs drawn from the board (means, CIs) and the reduced curves (curves.py).

Drawing only: every number comes from `summarize` (the board) or `curves`. matplotlib is imported
inside `draw_all`, so nothing in a job's path loads it.
"""
from __future__ import annotations

import itertools
import math
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from regbench.report import curves as reduce
from regbench.report.stats import MIN_SEEDS_FOR_INTERVAL, interval_shown
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


@contextmanager
def pyplot():
    """matplotlib.pyplot on the Agg backend in the report's style (imported here, so that nothing in a
    job's path loads matplotlib)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context({"font.size": 10, "axes.titlesize": 10, "axes.spines.top": False,
                         "axes.spines.right": False, "savefig.dpi": 110}):
        yield plt


def draw_all(board: pd.DataFrame, runs: pd.DataFrame, out_dir: Path | str) -> list[Picture]:
    """Every per-(dataset, model) picture the results allow, written as PNGs into `out_dir` (made if
    missing). The pictures that read across a sweep axis are lessons.py's."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pictures = []
    with pyplot() as plt:
        for dataset, model, rows in groups(board):
            rows, common = without_common_setting(rows)  # a suite's trainer values, said once in the title
            where = f"{dataset}, {model}" + (f", {common}" if common else "")
            pictures += draw_bars(plt, rows, runs, out_dir / f"bars-{slug(dataset, model)}.png", where)
            for metric in reduce.CURVE_METRICS:
                pictures += draw_curves(plt, rows, runs, metric,
                                        out_dir / f"curves_{metric}-{slug(dataset, model)}.png", where)
            pictures += draw_functions(plt, rows, runs, out_dir / f"functions-{slug(dataset, model)}.png", where)
            pictures += draw_members(plt, rows, runs, out_dir / f"members-{slug(dataset, model)}.png", where)
    return pictures


LINE_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive"]


def line_colors(names: list[str], baselines: set[str], baseline_color: str = BASELINE_COLOR) -> dict[str, str]:
    """A colour per line of a lesson picture: the baselines grey, the others in turn (cycling past eight)."""
    others = itertools.cycle(LINE_COLORS)
    return {name: baseline_color if name in baselines else next(others) for name in names}


def save(plt, figure, path: Path) -> None:
    figure.savefig(path, bbox_inches="tight")
    plt.close(figure)


# What each bar-picture metric can be (after scaling to %): whiskers stop there, with a CLIPPED mark
LIMITS = {"test_acc": (0.0, 100.0), "gap_acc": (-100.0, 100.0), "delta_test_acc": (-100.0, 100.0),
          "test_loss": (0.0, math.inf), "gap_loss": (-math.inf, math.inf), "delta_test_loss": (-math.inf, math.inf)}
BASELINE_COLORS = ["0.55", "tab:brown", "tab:purple", "tab:olive", "tab:pink"]
LABEL_WRAP = 40   # characters of a row label per line
LONG_NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d{5,}(?:[eE][-+]?\d+)?")


def short_numbers(text: str, digits: int = 4) -> str:
    """Numbers with more than 4 decimals (an Optuna trial's 0.22193758987162576) at `digits` significant
    digits: 'regularizer.dropout.p=0.2219'."""
    return LONG_NUMBER.sub(lambda match: f"{float(match.group()):.{digits}g}", text)


def row_labels(rows: pd.DataFrame) -> list[str]:
    """Each row's name for a picture: numbers shortened (kept in full where that would make two alike),
    wrapped at LABEL_WRAP characters."""
    import textwrap

    full = [row_name(r) for _, r in rows.iterrows()]
    short = [short_numbers(name) for name in full]
    names = [s if short.count(s) == 1 else f for s, f in zip(short, full)]
    return ["\n".join(textwrap.wrap(name, LABEL_WRAP, break_on_hyphens=False)) or name for name in names]


def baseline_tags(rows: pd.DataFrame) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """(a suffix per row, baseline_hash -> (letter, colour)). With one baseline no suffix; with several,
    '[baseline A]' on baseline A's row and '[vs A]' on the rows paired with it."""
    hashes = list(dict.fromkeys(rows.baseline_hash))
    tags = {h: (chr(ord("A") + i), BASELINE_COLORS[i % len(BASELINE_COLORS)]) for i, h in enumerate(hashes)}
    if len(hashes) == 1:
        return [""] * len(rows), tags
    return [f"  [baseline {tags[r.baseline_hash][0]}]" if r.is_baseline else f"  [vs {tags[r.baseline_hash][0]}]"
            for _, r in rows.iterrows()], tags


def draw_interval(axis, y: float, mean: float, half: float, n: int, seeds, metric: str, color: str) -> None:
    """One row's interval in a bar picture: the 95% whisker where `n` seeds make one (stats.interval_shown),
    cut at what the metric can take with a CLIPPED triangle at the cut end; else each seed as a dot."""
    if not math.isfinite(mean):
        return
    if not interval_shown(n) or not math.isfinite(half):
        axis.scatter(seeds, [y] * len(seeds), s=14, color="black", zorder=4, gid="seeds",
                     label="_seed")
        return
    low, high = LIMITS[metric]
    left, right = max(mean - half, low), min(mean + half, high)
    axis.hlines(y, left, right, color="black", lw=1, zorder=2, gid="interval")
    for end, cut, marker in ((left, mean - half < low, "<"), (right, mean + half > high, ">")):
        if cut:
            axis.scatter([end], [y], marker=marker, s=36, color="tab:red", zorder=4, gid="clipped")
        else:
            axis.vlines(end, y - 0.15, y + 0.15, color="black", lw=1, zorder=2, gid="cap")


def bars_figure(plt, rows: pd.DataFrame, runs: pd.DataFrame, where: str):
    """The bar picture's figure: per row, the test metric, the train–test gap and Δ vs its baseline
    (paired on seeds), each with its 95% interval, or the seeds as dots below MIN_SEEDS_FOR_INTERVAL."""
    classification = rows.test_acc_mean.notna().any()
    scale = 100.0 if classification else 1.0
    delta = "delta_test_acc" if classification else "delta_test_loss"
    if classification:
        panels = [("test_acc", "test accuracy (higher is better)", "test accuracy (%)"),
                  ("gap_acc", "gap: train − test accuracy (smaller: less overfitting)", "train − test accuracy (points)"),
                  (delta, "Δ test accuracy vs baseline, paired by seed", "Δ test accuracy (points)")]
    else:
        panels = [("test_loss", "test loss (lower is better)", "test loss (mean squared error)"),
                  ("gap_loss", "gap: test − train loss (smaller: less overfitting)", "test − train loss"),
                  (delta, "Δ test loss vs baseline, paired by seed", "Δ test loss (below 0: better)")]
    paired = rows[f"{delta}_mean"].notna().any()
    if not paired:  # no baseline among these results: no Δ to draw
        panels = panels[:2]
    suffixes, tags = baseline_tags(rows)
    labels = row_labels(rows)
    names = [name + suffix + (f"  (n={r.seeds})" if r.seeds != rows.seeds.max() else "")
             for name, suffix, (_, r) in zip(labels, suffixes, rows.iterrows())]
    lines = sum(name.count("\n") + 1 for name in names)
    widest = max(len(line) for name in names for line in name.split("\n"))
    figure, axes = plt.subplots(1, len(panels), figsize=(len(panels) * 3.4 + 0.075 * widest, 1.5 + 0.3 * lines + 0.1 * len(rows)),
                                sharey=True, layout="constrained")
    y = list(range(len(rows)))[::-1]  # first board row (the best) on top
    colors = [tags[r.baseline_hash][1] if r.is_baseline else OTHER_COLOR for _, r in rows.iterrows()]
    for axis, (metric, title, label) in zip(axes, panels):
        is_delta = metric == delta
        for yy, color, (_, row) in zip(y, colors, rows.iterrows()):
            mean = row[f"{metric}_mean"] * scale
            if is_delta and row.is_baseline:
                axis.text(0, yy, " baseline", va="center", ha="left", fontsize=8, color="0.4")
                continue
            n = row.delta_seeds if is_delta else row.seeds
            seeds = (reduce.paired_differences(runs, row.config_hash, row.baseline_hash, metric[len("delta_"):])
                     if is_delta else reduce.seed_values(runs, row.config_hash, metric)) * scale
            if metric == "test_acc" or is_delta:  # close together: dots on a zoomed axis
                if math.isfinite(mean):
                    axis.scatter([mean], [yy], color=color, s=60, zorder=3, edgecolor="black", lw=0.5, gid="mean")
            elif math.isfinite(mean):
                axis.barh([yy], [mean], color=color, height=0.65, gid="mean")
            draw_interval(axis, yy, mean, row[f"{metric}_ci"] * scale, n, seeds, metric, "black")
        axis.set_ylim(-0.6, len(rows) - 0.4)
        if is_delta or metric != "test_acc":
            axis.axvline(0, color="black", lw=0.8)
        if not is_delta:
            for _, base in rows[rows.is_baseline].iterrows():
                axis.axvline(base[f"{metric}_mean"] * scale, color=tags[base.baseline_hash][1], ls="--", lw=1)
        axis.set_title("\n".join(textwrap_title(title)), loc="left")
        axis.set_xlabel(label)
        axis.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, names)
    if len(tags) > 1:
        for tick, (_, row) in zip(axes[0].get_yticklabels(), rows.iterrows()):
            tick.set_color(tags[row.baseline_hash][1] if row.is_baseline else "black")
    few = (~rows.seeds.map(interval_shown)).any() or \
        (paired and (~rows.delta_seeds[rows[f"{delta}_mean"].notna()].map(interval_shown)).any())
    clipped = any(artist.get_gid() == "clipped" for axis in axes for artist in axis.collections)
    notes = ["dot or bar: mean over seeds; whiskers: 95% interval (Δ: paired over the seeds both rows have)"]
    if few:
        notes.append(f"small black dots: each seed, where fewer than {MIN_SEEDS_FOR_INTERVAL} seeds make no interval")
    if clipped:
        notes.append("red triangle: the interval runs past what the metric can take and is cut there")
    if rows.is_baseline.any():
        notes.append("dashed line: the baseline" + ("s (row colour and [A], [B]: which baseline a row is paired with)"
                                                     if len(tags) > 1 else ""))
    if not paired:
        notes.append("no Δ panel: no row's baseline is among these results")
    figure.suptitle(where, x=0.0, ha="left", fontsize=11)
    figure.supxlabel("\n".join(notes), fontsize=8, x=0.0, ha="left")
    return figure


def textwrap_title(title: str, width: int = 45) -> list[str]:
    import textwrap
    return textwrap.wrap(title, width)


def draw_bars(plt, rows: pd.DataFrame, runs: pd.DataFrame, path: Path, where: str) -> list[Picture]:
    """Test metric, gap and Δ vs the baseline per row: best on top, baselines grey (see `bars_figure`)."""
    rows = rows[rows.seeds > 0]
    if rows.empty:
        return []
    save(plt, bars_figure(plt, rows, runs, where), path)
    metric = "test accuracy" if rows.test_acc_mean.notna().any() else "test loss"
    return [Picture(path, f"{metric}, gap and Δ: {where}",
                    f"{metric}, train–test gap and the paired Δ vs the baseline per technique: mean and 95% interval "
                    f"over seeds, or each seed as a dot where fewer than {MIN_SEEDS_FOR_INTERVAL} make no interval; "
                    "a red triangle marks a whisker cut at the metric's limit; dashed: the baseline")]


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


FEW_POINTS = 12  # a curve with at most this many measured epochs draws each as a marker


def curves_figure(plt, rows: pd.DataFrame, runs: pd.DataFrame, metric: str, where: str):
    """Small multiples, one panel per row: train, val and test `metric` over epochs (steps, for full-batch
    gradient descent). Mean over seeds with the band from the lowest to the highest seed; a row whose seeds
    stopped early (`curves.stopped_early`) draws each seed, ending at its stop epoch (×), its reported
    (restored) epoch ringed. None where no row has curves."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    found = [(row, c) for row, c in each_row(rows, runs, reduce.seed_curves)
             if not c.empty and f"train_{metric}" in c and c[f"train_{metric}"].notna().any()]
    if not found:
        return None
    figure, axes = grid(plt, len(found))
    scale = 100.0 if metric == "acc" else 1.0
    positive, seeds_drawn, restored_drawn = True, False, False
    for axis, (row, curves) in zip(axes, found):
        each_seed = reduce.stopped_early(curves)
        bands = reduce.bands_of(curves)
        for split, (color, style) in SPLIT_STYLE.items():
            name = f"{split}_{metric}"
            if name not in curves or curves[name].isna().all():
                continue
            positive &= bool((curves[name] > 0).all())
            if each_seed:
                seeds_drawn = True
                for i, (_, mine) in enumerate(curves.groupby("seed")):
                    x, value = mine.epoch.to_numpy(), mine[name].to_numpy(float) * scale
                    axis.plot(x, value, color=color, ls=style, lw=1.0, alpha=0.85, label=split if i == 0 else None,
                              marker="o" if len(x) <= FEW_POINTS else None, ms=2.5, gid=f"seed-{split}")
                    axis.scatter(x[-1:], value[-1:], marker="x", color=color, s=28, zorder=4, gid="stop")
                    if "reported" in mine:
                        reported = mine[mine.reported == 1]
                        if len(reported) and reported.epoch.iloc[-1] < x[-1]:
                            restored_drawn = True
                            axis.scatter(reported.epoch, reported[name].to_numpy(float) * scale, marker="o",
                                         facecolor="none", edgecolor=color, s=55, lw=1.3, zorder=5, gid="restored")
                continue
            epochs = bands.index.to_numpy()
            few = len(epochs) <= FEW_POINTS
            axis.plot(epochs, bands[(name, "mean")].to_numpy(float) * scale, color=color, ls=style, lw=1.6,
                      label=split, marker="o" if few else None, ms=4, gid=f"mean-{split}")
            low, high = bands[(name, "low")].to_numpy(float) * scale, bands[(name, "high")].to_numpy(float) * scale
            if len(epochs) > 1:
                axis.fill_between(epochs, low, high, color=color, alpha=0.18, lw=0)
            else:  # one epoch: a band has no width, its seeds' range is a bar
                axis.vlines(epochs, low, high, color=color, alpha=0.35, lw=4, gid="band")
        axis.set_title("\n".join(textwrap_title(short_numbers(row_name(row))
                                                 + (" (baseline)" if row.is_baseline else ""), width=38)))
        axis.grid(alpha=0.3)
        axis.set_xlim(left=0)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    if metric == "loss" and positive:
        from matplotlib.ticker import FormatStrFormatter, LogLocator
        axes[0].set_yscale("log")
        for axis in axes:  # 0.2 rather than 2×10⁻¹, and only 1, 2, 5 of each decade labelled
            axis.yaxis.set_major_formatter(FormatStrFormatter("%g"))
            axis.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
            axis.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
    for axis in axes:
        axis.tick_params(labelbottom=True)
    handles, labels = axes[0].get_legend_handles_labels()
    if not handles:  # the first panel may draw seeds only: any panel's splits
        handles, labels = next(a.get_legend_handles_labels() for a in axes if a.get_legend_handles_labels()[0])
    if seeds_drawn:
        handles.append(Line2D([], [], color="black", marker="x", ls="none"))
        labels.append("seed stopped")
    if restored_drawn:
        handles.append(Line2D([], [], color="black", marker="o", mfc="none", ls="none"))
        labels.append("restored (reported) epoch")
    axes[0].legend(handles, labels, loc="best", fontsize=8)
    steps = all(reduce.full_batch(c) for _, c in found)
    for axis in axes:  # every panel: a lone panel on the last line would otherwise sit under an unlabelled one
        axis.set_xlabel("step (full batch)" if steps else "epoch")
    label_first_column(axes, "accuracy (%)" if metric == "acc" else "loss" + (" (log scale)" if positive else ""))
    how = "line: mean over seeds; band: lowest to highest seed"
    if seeds_drawn:
        how += "; where seeds stopped early, one line per seed"
    figure.suptitle(f"{where}: {'accuracy' if metric == 'acc' else 'loss'} during training\n({how})",
                    y=1.0, va="bottom")
    return figure


def draw_curves(plt, rows: pd.DataFrame, runs: pd.DataFrame, metric: str, path: Path,
                where: str) -> list[Picture]:
    """The learning-curve picture of `curves_figure`, saved."""
    figure = curves_figure(plt, rows, runs, metric, where)
    if figure is None:
        return []
    save(plt, figure, path)
    what = "accuracy" if metric == "acc" else "loss"
    return [Picture(path, f"learning curves ({what}): {where}",
                    f"train, validation and test {what} per epoch; mean over seeds, band from the lowest to the "
                    "highest seed; where seeds stopped early (early stopping), each seed's own curve, ending at its "
                    "stop (×), its restored epoch ringed")]


def draw_functions(plt, rows: pd.DataFrame, runs: pd.DataFrame, path: Path, where: str) -> list[Picture]:
    """1-D regression: each row's fitted functions over the training points and the true function."""
    fits = each_row(rows, runs, reduce.fitted_functions)
    if not fits:
        return []
    figure, axes = grid(plt, len(fits), width=3.2, height=2.6)
    first = fits[0][1]
    low = min(first["y_test"].min(), first["y_train"].min())
    high = max(first["y_test"].max(), first["y_train"].max())
    # the fits' means too, so that an overfit's swings show (UDL's toy dips below 0), but at most one more
    # data range each way: one runaway fit must not flatten every panel
    span = high - low
    low = max(low - span, min([low, *(fit["mean"].min() for _, fit in fits)]))
    high = min(high + span, max([high, *(fit["mean"].max() for _, fit in fits)]))
    margin = 0.08 * (high - low)
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
