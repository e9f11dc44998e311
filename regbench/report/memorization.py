"""Memorization (Zhang et al. 2017, "Understanding deep learning requires rethinking generalization"):
train and test accuracy, and the epochs until the training set is fit, against the fraction of training
labels redrawn at random (`dataset.label_noise`, which the dataset label carries: 'mnist1d[label_noise=0.2]').

Draws nothing unless one (dataset, model) holds rows at two or more corruption levels. The numbers come
from the board (means, CIs) and from curves.csv (the per-epoch train accuracy, `curves.seed_curves`).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from regbench.report import curves as reduce
from regbench.report.plots import Picture, line_colors, row_name, save, slug
from regbench.report.stats import MIN_SEEDS_FOR_INTERVAL, interval_shown
from regbench.report.table import without_common_setting

# The training set counts as fit from the first recorded epoch whose train accuracy (eval mode, on the
# labels it trains on, corrupted ones included) reaches this. With 10 classes and corruption p, predicting
# every example's true class scores 1 − 0.9·p, so at p ≥ 0.2 reaching 90 % takes memorized labels.
FIT_ACC = 0.9
# Classes of the built-in classification datasets: chance (a uniform guess) is 1/K. Other datasets
# (dataset=file) draw no chance line.
CLASSES = {"mnist1d": 10, "mnist": 10, "fashion_mnist": 10, "cifar10": 10, "digits": 10, "breast_cancer": 2}
NOISE = re.compile(r"(?<![\w.])label_noise=([^\s\]]+)")


def split_noise(dataset: str) -> tuple[str, float]:
    """A dataset label without its label_noise, and that value: 'mnist1d[label_noise=0.2 n_train=500]' ->
    ('mnist1d[n_train=500]', 0.2); a label without one is at the conf/ default, 0."""
    found = NOISE.search(dataset)
    if found is None:
        return dataset, 0.0
    rest = (dataset[:found.start()] + dataset[found.end():]).replace("[ ", "[").replace(" ]", "]")
    rest = re.sub(r"\[\s*\]$", "", re.sub(r"\s{2,}", " ", rest))
    return rest, float(found.group(1))


def with_noise(board: pd.DataFrame) -> pd.DataFrame:
    """The board with `family` (its dataset label less label_noise) and `label_noise` (float) columns."""
    parts = [split_noise(d) for d in board.dataset]
    return board.assign(family=[p[0] for p in parts], label_noise=[p[1] for p in parts])


def noise_groups(board: pd.DataFrame):
    """(family, model, rows) for each (dataset without label_noise, model) whose rows hold two or more
    corruption levels, rows in board order with `family` and `label_noise` columns."""
    if board.empty:
        return
    board = with_noise(board[board.seeds > 0])
    for (family, model), rows in board.groupby(["family", "model"], sort=False):
        if rows.label_noise.nunique() >= 2:
            yield family, model, rows


def fit_epochs(curves: pd.DataFrame, threshold: float = FIT_ACC) -> pd.DataFrame:
    """`curves.seed_curves` of one row -> one row per seed: `fit_epoch`, the first recorded epoch whose
    train_acc >= threshold (NaN where none did: not fitted), and `last_epoch`, its last recorded epoch.
    Recorded every `curve_every` epochs: the fit happened after the previous record and by this one."""
    if curves.empty or "train_acc" not in curves:
        return pd.DataFrame(columns=["seed", "fit_epoch", "last_epoch"])
    out = []
    for seed, mine in curves.sort_values("epoch").groupby("seed"):
        reached = mine.epoch[mine.train_acc >= threshold]
        out.append({"seed": seed, "fit_epoch": float(reached.iloc[0]) if len(reached) else math.nan,
                    "last_epoch": float(mine.epoch.max())})
    return pd.DataFrame(out)


def fit_summary(runs: pd.DataFrame, config_hash: str, threshold: float = FIT_ACC) -> dict:
    """One row's fit: {'epochs': (S,) fit epoch per seed (NaN: not fitted), 'last': latest recorded epoch,
    'mean': mean fit epoch when every seed fitted (else NaN), 'fitted': seeds fitted, 'seeds': seeds with
    curves}."""
    fits = fit_epochs(reduce.seed_curves(runs, config_hash), threshold)
    epochs = fits.fit_epoch.to_numpy(float)
    fitted = int(np.isfinite(epochs).sum())
    return {"epochs": epochs, "last": float(fits.last_epoch.max()) if len(fits) else math.nan,
            "mean": float(epochs.mean()) if len(epochs) and fitted == len(epochs) else math.nan,
            "fitted": fitted, "seeds": len(epochs)}


def lines_of(rows: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(name, its rows by label_noise) per technique and setting: `none` first, the others in board order."""
    names = rows.apply(row_name, axis=1)
    order = sorted(dict.fromkeys(names), key=lambda name: name.split()[0] != "none")
    return [(name, rows[names == name].sort_values("label_noise")) for name in order]


def colors(names: list[str]) -> dict[str, str]:
    return line_colors(names, {name for name in names if name.split()[0] == "none"})


def offsets(count: int, spread: float) -> list[float]:
    """x offsets that keep `count` lines' markers apart at one corruption level."""
    return [spread * (i - (count - 1) / 2) for i in range(count)]


def accuracy_figure(plt, rows: pd.DataFrame, runs: pd.DataFrame, where: str, classes: int | None):
    """Two panels, train and test accuracy (%) against corruption, one line per technique: mean and 95%
    interval over seeds, each seed as a dot below MIN_SEEDS_FOR_INTERVAL. Dotted: chance (1/K); on the
    train panel dashed: predicting every example's true class, 1 − p·(K−1)/K (above it: memorized)."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True, sharey=True, layout="constrained")
    lines = lines_of(rows)
    color = colors([name for name, _ in lines])
    levels = np.sort(rows.label_noise.unique())
    shift = offsets(len(lines), 0.008 * (levels.max() - levels.min()))
    for axis, split, title in ((axes[0], "train", "train accuracy (on the labels it trained on)"),
                               (axes[1], "test", "test accuracy (clean labels)")):
        for (name, line), dx in zip(lines, shift):
            x = line.label_noise.to_numpy(float) + dx
            mean = 100 * line[f"{split}_acc_mean"].to_numpy(float)
            axis.plot(x, mean, "-o", color=color[name], ms=4, lw=1.4, label=name)
            for xi, (_, row) in zip(x, line.iterrows()):
                if interval_shown(int(row.seeds)):
                    half = 100 * row[f"{split}_acc_ci"]
                    if math.isfinite(half):
                        axis.errorbar([xi], [100 * row[f"{split}_acc_mean"]], yerr=[[half], [half]],
                                      color=color[name], lw=1, capsize=2)
                else:
                    seeds = 100 * reduce.seed_values(runs, row.config_hash, f"{split}_acc")
                    axis.scatter([xi] * len(seeds), seeds, s=10, color=color[name], alpha=0.6)
        if classes:
            axis.axhline(100 / classes, color="0.3", ls=":", lw=1, label=f"chance (1/{classes})")
        if classes and split == "train":
            grid = np.linspace(levels.min(), levels.max(), 50)
            axis.plot(grid, 100 * (1 - grid * (classes - 1) / classes), color="0.3", ls="--", lw=1,
                      label="every prediction the true class")
        axis.set_title(title)
        axis.set_xlabel("label corruption p (fraction of training labels redrawn)")
        axis.set_ylim(0, 103)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    axes[0].legend(fontsize=8, loc="lower left")
    figure.suptitle(f"Random labels: accuracy against label corruption\n{where}")
    return figure


def fit_figure(plt, rows: pd.DataFrame, runs: pd.DataFrame, where: str, threshold: float = FIT_ACC):
    """Epochs until the training set is fit (train accuracy >= threshold) against corruption, one line per
    technique through the seeds' mean where every seed fitted; each seed a dot; a seed that never fitted
    a hollow triangle at its last epoch. The legend gives each line's factor from the lowest to the highest
    corruption where both fitted. None where no row has curves."""
    lines = lines_of(rows)
    fits = {row.config_hash: fit_summary(runs, row.config_hash, threshold) for _, row in rows.iterrows()}
    if not any(f["seeds"] for f in fits.values()):
        return None
    figure, axis = plt.subplots(figsize=(9, 4.2), layout="constrained")
    color = colors([name for name, _ in lines])
    levels = np.sort(rows.label_noise.unique())
    shift = offsets(len(lines), 0.01 * (levels.max() - levels.min()))
    last = max((f["last"] for f in fits.values() if math.isfinite(f["last"])), default=math.nan)
    unfitted_drawn = False
    for (name, line), dx in zip(lines, shift):
        x = line.label_noise.to_numpy(float) + dx
        mine = [fits[h] for h in line.config_hash]
        means = np.array([f["mean"] for f in mine])
        label = name
        if len(means) >= 2 and math.isfinite(means[0]) and math.isfinite(means[-1]) and means[0] > 0:
            label = f"{name}: ×{means[-1] / means[0]:.1f} from p={line.label_noise.iloc[0]:g} to {line.label_noise.iloc[-1]:g}"
        axis.plot(x, means, "-o", color=color[name], ms=5, lw=1.4, label=label)
        for xi, fit in zip(x, mine):
            epochs = fit["epochs"]
            fitted = epochs[np.isfinite(epochs)]
            axis.scatter([xi] * len(fitted), fitted, s=10, color=color[name], alpha=0.5, zorder=3)
            if fit["fitted"] < fit["seeds"]:
                axis.scatter([xi], [fit["last"]], marker="^", s=60, facecolors="none", edgecolors=color[name],
                             lw=1.4, zorder=4, gid="not_fitted")
                if fit["seeds"] > 1:
                    axis.annotate(f"{fit['fitted']}/{fit['seeds']}", (xi, fit["last"]), textcoords="offset points",
                                  xytext=(0, 7), ha="center", fontsize=7, color=color[name])
                unfitted_drawn = True
    if unfitted_drawn:   # one grey legend entry for every line's triangles
        axis.scatter([], [], marker="^", s=60, facecolors="none", edgecolors="0.3", lw=1.4,
                     label="not fitted by the last epoch (seeds that were)")
    if math.isfinite(last):
        axis.axhline(last, color="0.3", ls=":", lw=1, label=f"last epoch trained ({last:g})")
        axis.set_ylim(0, last * 1.12)
    axis.set_xlabel("label corruption p (fraction of training labels redrawn)")
    axis.set_ylabel(f"epochs until train accuracy ≥ {threshold:.0%}")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)   # beside: markers reach the top
    axis.set_title(f"Random labels: time to fit the training set\n{where}")
    return figure


def draw(plt, board: pd.DataFrame, runs: pd.DataFrame, out_dir: Path) -> list[Picture]:
    """The two memorization pictures of every (dataset, model) whose rows vary in label_noise."""
    pictures = []
    for family, model, rows in noise_groups(board):
        rows, common = without_common_setting(rows)
        where = f"{family}, {model}" + (f", {common}" if common else "")
        classes = CLASSES.get(family.partition("[")[0])
        path = Path(out_dir) / f"memorization_accuracy-{slug(family, model)}.png"
        save(plt, accuracy_figure(plt, rows, runs, where, classes), path)
        pictures.append(Picture(path, f"random labels, accuracy against label corruption: {where}",
                                "train and test accuracy against the fraction p of training labels redrawn at random "
                                "(validation and test labels stay clean), one line per technique: mean and 95% "
                                f"interval over seeds, each seed as a dot below {MIN_SEEDS_FOR_INTERVAL} seeds; dotted: "
                                "chance; dashed (train): the accuracy of predicting every example's true class, "
                                "so a train line above it has memorized wrong labels"))
        figure = fit_figure(plt, rows, runs, where)
        if figure is None:
            continue
        path = Path(out_dir) / f"memorization_fit-{slug(family, model)}.png"
        save(plt, figure, path)
        pictures.append(Picture(path, f"random labels, epochs until the training set is fit: {where}",
                                f"the first recorded epoch at which train accuracy reaches {FIT_ACC:.0%} (on the "
                                "corrupted labels), against label corruption: the mean over seeds where every seed got "
                                "there, each seed as a dot; a hollow triangle where a seed never did by its last epoch "
                                "(with the count that did); the legend gives each line's factor from the lowest to "
                                "the highest corruption (Zhang et al. 2017: a small constant factor)"))
    return pictures


def table_lines(board: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    """A markdown table per (dataset, model) that varies in label_noise: technique, corruption, seeds,
    train and test accuracy (mean ± 95% CI, the mean alone below MIN_SEEDS_FOR_INTERVAL seeds) and the
    epoch the training set is first fit. [] where no group varies in label_noise."""
    lines: list[str] = []
    for family, model, rows in noise_groups(board):
        rows, common = without_common_setting(rows)
        lines += [f"Random labels: {family}, {model}" + (f", {common}" if common else ""), "",
                  f"| technique | label corruption | seeds | train acc % | test acc % | epoch train acc ≥ {FIT_ACC:.0%} |",
                  "|---|---|---|---|---|---|"]
        for name, line in lines_of(rows):
            for _, row in line.iterrows():
                fit = fit_summary(runs, row.config_hash)
                lines.append(f"| {name} | {row.label_noise:g} | {int(row.seeds)} | {percent(row, 'train')} | "
                             f"{percent(row, 'test')} | {fit_text(fit)} |")
        lines.append("")
    return lines


def percent(row: pd.Series, split: str) -> str:
    mean, half = 100 * row[f"{split}_acc_mean"], 100 * row[f"{split}_acc_ci"]
    if not math.isfinite(mean):
        return "—"
    return f"{mean:.1f} ± {half:.1f}" if interval_shown(int(row.seeds)) and math.isfinite(half) else f"{mean:.1f}"


def fit_text(fit: dict) -> str:
    """'23.3 (3/3 seeds)', 'not by 100 (0/3 seeds)', 'not all by 100 (2/3 seeds)', '—' without curves."""
    if not fit["seeds"]:
        return "—"
    counted = f"{fit['fitted']}/{fit['seeds']} seeds"
    if math.isfinite(fit["mean"]):
        return f"{fit['mean']:.1f} ({counted})"
    return f"{'not' if fit['fitted'] == 0 else 'not all'} by {fit['last']:g} ({counted})"
