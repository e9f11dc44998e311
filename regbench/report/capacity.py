"""Capacity: test error against the width of the network, the picture of double descent (UDL 8.4,
notebook 8.3; Nakkiran et al. 2021, "Optimal regularization can mitigate double descent").

A run's width is read from its resolved config (`width_of`): an MLP whose hidden layers share one width
(`model.hidden=[64,64]`, swept with `-m 'model.hidden=[8,8],[64,64]'`) or the shallow net's `hidden`.
One panel per dataset label (clean and noisy labels are two datasets), one line per technique, the
interpolation threshold marked where the unregularized net first fits its training set. Nothing is
drawn unless the runs hold at least two widths.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from regbench.report.collect import setting_keys
from regbench.report.plots import Picture, line_colors, save, short_numbers, slug, textwrap_title
from regbench.report.stats import interval_shown, mean_ci
from regbench.report.table import without_common_setting

# Train error at or below this (a fraction) counts as fitting the training set: "~0" with room for the
# few examples a finite run leaves (1% of MNIST-1D's 3600 training examples is 36).
INTERPOLATED = 0.01
TABLE_TITLE = "Test error against width"
BASELINE_COLOR = "0.25"


def width_of(config: dict | None) -> int | None:
    """The hidden width of a resolved config's model: `model.hidden` when it is one integer (shallow) or
    a list of one repeated integer (mlp [h, h]); None for anything else (unequal layers, other models)."""
    hidden = ((config or {}).get("model") or {}).get("hidden")
    if isinstance(hidden, list) and len(hidden) > 0 and len(set(hidden)) == 1:
        hidden = hidden[0]
    return hidden if isinstance(hidden, int) and not isinstance(hidden, bool) else None


def read_config(path: Path) -> dict | None:
    """The resolved `config` of a metrics.json (None where the file cannot be read)."""
    try:
        return json.loads(path.read_text()).get("config")
    except (OSError, ValueError, AttributeError):
        return None


def widths(runs: pd.DataFrame) -> dict[str, int]:
    """config_hash -> width (`width_of`), from the metrics.json in each run's `path`; configs whose model
    has no single width are left out."""
    found = {}
    for config_hash, path in runs.drop_duplicates("config_hash", keep="last")[["config_hash", "path"]].itertuples(index=False):
        width = width_of(read_config(Path(path) / "metrics.json"))
        if width is not None:
            found[config_hash] = width
    return found


def interpolation_threshold(width: np.ndarray, train_error: np.ndarray) -> int | None:
    """width: (n,), train_error: (n,) fractions, one mean per width -> the smallest width whose train
    error is at most INTERPOLATED (where the net first fits its training set), None if none does."""
    fitted = np.asarray(width)[np.asarray(train_error, dtype=float) <= INTERPOLATED]
    return int(fitted.min()) if len(fitted) else None


def line_name(row: pd.Series) -> str:
    """A board row's line, the same at every width: 'none', 'l2 strength=0.001', 'l2 tuned on validation'
    (a tuned row's chosen value differs per width, so it is not in the name)."""
    prefix = f"regularizer.{row.technique}."
    parts = [part[len(prefix):] if part.startswith(prefix) else part for part in row.setting.split()]
    if isinstance(row.tuned, str) and row.tuned:
        knobs = {key.rpartition(".")[2] for key in setting_keys(row.tuned)}
        parts = [part for part in parts if part != "tuned" and part.partition("=")[0] not in knobs]
        return " ".join([row.technique, f"{'/'.join(sorted(knobs))} tuned on validation", *parts])
    defaults = row.defaults if isinstance(row.defaults, str) else ""
    return " ".join([row.technique, *parts, *(p.removeprefix(prefix) for p in defaults.split())])


def chosen(row: pd.Series) -> str:
    """A tuned row's chosen value(s), '0.003' ('' for other rows)."""
    if not (isinstance(row.tuned, str) and row.tuned):
        return ""
    return " ".join(short_numbers(part.partition("=")[2]) for part in setting_keys(row.tuned).values())


def points(board: pd.DataFrame, runs: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """(one row per (board row, seed) that has a width: panel (the dataset label), line, width, seed,
    test_error and train_error in %, is_baseline, chosen; the setting every line shares). Empty unless
    the runs hold two widths or more. Diverged seeds are left out, as in the board."""
    width = widths(runs)
    rows = board[board.config_hash.isin(width) & (board.seeds > 0)]
    if len({width[h] for h in rows.config_hash}) < 2 or rows.test_acc_mean.isna().all():
        return pd.DataFrame(), ""
    rows, common = without_common_setting(rows)
    found = []
    for _, row in rows.iterrows():
        mine = runs[(runs.config_hash == row.config_hash) & ~runs.diverged]
        for run in mine.itertuples():
            found.append({"panel": row.dataset, "model": row.model, "line": line_name(row),
                          "width": width[row.config_hash], "seed": run.seed,
                          "test_error": 100 * (1 - run.test_acc), "train_error": 100 * (1 - run.train_acc),
                          "is_baseline": bool(row.is_baseline), "chosen": chosen(row)})
    found = pd.DataFrame(found)
    found["panel"], shared = without_common_conditions(list(found.panel))
    return found, " ".join(part for part in (shared, common) if part)


def without_common_conditions(labels: list[str]) -> tuple[list[str], str]:
    """(dataset labels without the conditions every one of them has, those conditions):
    ['mnist1d[n_train=1000]', 'mnist1d[label_noise=0.15 n_train=1000]'] ->
    (['mnist1d', 'mnist1d[label_noise=0.15]'], 'n_train=1000')."""
    def split(label: str) -> tuple[str, list[str]]:
        name, _, rest = label.partition("[")
        return name, rest.rstrip("]").split()

    parts = [split(label) for label in labels]
    common = [c for c in parts[0][1] if all(c in conditions for _, conditions in parts)] if parts else []
    if not common:
        return labels, ""
    out = []
    for name, conditions in parts:
        kept = [c for c in conditions if c not in common]
        out.append(f"{name}[{' '.join(kept)}]" if kept else name)
    return out, " ".join(common)


def line_order(found: pd.DataFrame) -> list[str]:
    """The baseline's line first, then fixed settings, then tuned lines, each in board order."""
    rank = found.is_baseline.map({True: 0, False: 1}) + (found.chosen != "").astype(int)
    first = found.assign(rank=rank).drop_duplicates("line")
    return list(first.sort_values("rank", kind="stable").line)


def thresholds(found: pd.DataFrame) -> dict[str, tuple[str, int | None]]:
    """panel -> (the line it is measured on, its interpolation threshold): the baseline's line where the
    panel has one (the unregularized net), else the panel's first line."""
    out = {}
    for panel, mine in found.groupby("panel", sort=False):
        line = line_order(mine)[0]
        means = mine[mine.line == line].groupby("width").train_error.mean()
        out[panel] = (line, interpolation_threshold(means.index.to_numpy(), means.to_numpy() / 100))
    return out


def capacity_figure(plt, found: pd.DataFrame, where: str):
    """One panel per dataset label: test error against width (log axis) per line, mean over seeds with
    a band from the lowest to the highest seed, train error dotted, the threshold a vertical line."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    panels = sorted(set(found.panel))   # 'mnist1d' (clean) before 'mnist1d[label_noise=0.15]'
    lines = line_order(found)
    colors = line_colors(lines, set(found[found.is_baseline].line), BASELINE_COLOR)
    figure, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False, sharey=True,
                                layout="constrained")
    axes = list(axes.flat)
    limits = thresholds(found)
    all_widths = sorted(set(found.width))
    for axis, panel in zip(axes, panels):
        mine = found[found.panel == panel]
        for name in lines:
            line = mine[mine.line == name]
            if line.empty:
                continue
            stats = line.groupby("width").agg(test=("test_error", "mean"), low=("test_error", "min"),
                                              high=("test_error", "max"), train=("train_error", "mean"))
            x = stats.index.to_numpy()
            axis.plot(x, stats.test, color=colors[name], lw=1.8, marker="o", ms=3.5, label=name, gid="test")
            axis.fill_between(x, stats.low, stats.high, color=colors[name], alpha=0.18, lw=0, gid="band")
            axis.plot(x, stats.train, color=colors[name], lw=1.0, ls=":", alpha=0.9, gid="train")
        line, threshold = limits[panel]
        if threshold is not None:
            axis.axvline(threshold, color="tab:red", ls="--", lw=1.0, gid="threshold")
            axis.annotate(f"interpolation\nthreshold h={threshold}", (threshold, 1.0), xycoords=("data", "axes fraction"),
                          xytext=(4, -4), textcoords="offset points", va="top", ha="left", fontsize=8, color="tab:red")
        axis.set_xscale("log")
        axis.set_xticks(all_widths)
        axis.xaxis.set_major_formatter(ScalarFormatter())
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.tick_params(axis="x", labelsize=8, labelrotation=90 if len(all_widths) > 14 else 0)
        axis.set_xlabel("hidden width h (log scale)")
        axis.grid(alpha=0.3)
        axis.set_title("\n".join(textwrap_title(panel, width=50)))
    # after every panel (the axes share y): room above the highest seed for the threshold's label
    axes[0].set_ylim(0, 1.18 * max(found.test_error.max(), found.train_error.max()))
    axes[0].set_ylabel("error (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    for axis in axes[1:]:   # lines that only another panel has
        for handle, label in zip(*axis.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    handles += [Line2D([], [], color="black", lw=1.8), Line2D([], [], color="black", lw=1.0, ls=":")]
    labels += ["test error (band: lowest to highest seed)", "train error"]
    if any(threshold is not None for _, threshold in limits.values()):
        handles.append(Line2D([], [], color="tab:red", ls="--", lw=1.0))
        labels.append(f"interpolation threshold: first width whose mean train error ≤ {INTERPOLATED:.0%} ({lines[0]})")
    figure.legend(handles, labels, loc="outside lower left", fontsize=8, ncols=2, frameon=False)
    figure.suptitle("\n".join(textwrap_title(f"{where}: error against width", width=110)), x=0.0, ha="left",
                    fontsize=11)
    return figure


def draw(plt, board: pd.DataFrame, runs: pd.DataFrame, out_dir: Path) -> list[Picture]:
    """The capacity picture, where the runs vary in width (else nothing)."""
    found, common = points(board, runs)
    if found.empty:
        return []
    models = " ".join(sorted({model.split("[")[0] for model in found.model}))
    where = f"{models}" + (f", {common}" if common else "")
    path = Path(out_dir) / f"capacity-{slug(models)}.png"
    save(plt, capacity_figure(plt, found, where), path)
    return [Picture(path, f"error against width: {where}",
                    "test error (solid) and train error (dotted) against the hidden width, log axis, one panel per "
                    "dataset setting (label noise), one line per technique; line: mean over seeds, band: lowest "
                    "to highest seed; dashed red: the interpolation threshold, the first width whose mean train "
                    f"error is at most {INTERPOLATED:.0%} ({', '.join(sorted(set(line for line, _ in thresholds(found).values())))})")]


def table_lines(board: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    """Markdown lines for a report page (under a `TABLE_TITLE` heading): test error in % per width (rows)
    and panel × line (columns), mean ± 95% CI over seeds (the mean alone below 3 seeds), a tuned cell
    with its chosen value; then each panel's interpolation threshold. [] unless the runs vary in width."""
    found, _ = points(board, runs)
    if found.empty:
        return []
    columns = [(panel, name) for panel in sorted(set(found.panel)) for name in line_order(found)
               if ((found.panel == panel) & (found.line == name)).any()]
    seeds = {column: found[(found.panel == column[0]) & (found.line == column[1])].groupby("width").seed.nunique().max()
             for column in columns}
    header = ["width", *(f"{panel}: {short_numbers(name)} (n={seeds[(panel, name)]})" for panel, name in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for width in sorted(set(found.width)):
        cells = [str(width)]
        for panel, name in columns:
            mine = found[(found.panel == panel) & (found.line == name) & (found.width == width)]
            if mine.empty:
                cells.append("—")
                continue
            mean, half, n = mean_ci(mine.test_error)
            cell = f"{mean:.1f} ± {half:.1f}" if interval_shown(n) and math.isfinite(half) else f"{mean:.1f}"
            value = mine.chosen.iloc[0]
            cells.append(cell + (f" ({value})" if value else ""))
        lines.append("| " + " | ".join(cells) + " |")
    notes = []
    for panel, (line, threshold) in sorted(thresholds(found).items()):
        notes.append(f"{panel}: h={threshold}" if threshold is not None else f"{panel}: not reached")
    return lines + ["", "Test error in %, mean ± 95% interval over seeds (n: seeds per cell; below 3 seeds the "
                        "mean alone); a tuned cell gives the value chosen on validation in brackets. "
                        f"Interpolation threshold (first width whose mean train error of "
                        f"`{line_order(found)[0]}` is at most {INTERPOLATED:.0%}): " + "; ".join(notes) + "."]
