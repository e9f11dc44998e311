"""Pivot: Δ vs baseline per technique for each value of one config key, side by side, and the difference
of the Δs with its CI ("does dropout help a wide MLP more than a narrow one?").

From `collect(dirs, by=key)`'s runs. Rows are matched across values by their labels with the key's own
condition taken out (`mlp[hidden=256]` and `mlp[hidden=64]` are both `mlp`); each value's Δ is the row's
paired Δ against its own baseline (the `none` run of that value), as on the leaderboard.
"""
from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from regbench.report.stats import difference_of_means, mean_ci
from regbench.report.table import fmt

PIVOT_COLUMNS = ["dataset", "model", "technique", "setting", "metric", "value", "delta_mean", "delta_ci",
                 "delta_seeds", "vs", "diff_mean", "diff_ci", "diff_seeds", "diff_method"]


class NoSuchKey(ValueError):
    """No run has the config key asked for."""


def without_condition(label: str, name: str) -> str:
    """`label` without the condition `name=...`: 'mlp[hidden=64 depth=3]' -> 'mlp[depth=3]' (name
    'hidden'), 'trainer.lr=0.1 trainer.epochs=3' -> 'trainer.epochs=3' (name 'trainer.lr')."""
    head, bracket, rest = label.partition("[")
    if bracket and label.endswith("]"):
        parts = [part for part in rest[:-1].split() if not part.startswith(f"{name}=")]
        return f"{head}[{' '.join(parts)}]" if parts else head
    return " ".join(part for part in label.split() if not part.startswith(f"{name}="))


def value_order(values: list[str]) -> list[str]:
    """Numbers in numeric order, then lists of numbers ('[32, 32]') in order, then the rest as text."""
    def key(value: str) -> tuple:
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        if isinstance(parsed, (int, float)) and not isinstance(parsed, bool):
            return (0, (parsed,), "")
        if isinstance(parsed, list) and all(isinstance(x, (int, float)) for x in parsed):
            return (1, tuple(parsed), "")
        return (2, (), value)
    return sorted(values, key=key)


def seed_deltas(runs: pd.DataFrame) -> dict[str, tuple[str, dict[int, float]]]:
    """config_hash -> (metric, seed -> treated − baseline) over non-diverged seeds both sides have.

    The metric is test_acc, or test_loss for a config with no accuracy (regression)."""
    alive = runs[~runs.diverged]
    out = {}
    for (config_hash, baseline_hash), group in alive.groupby(["config_hash", "baseline_hash"], sort=False):
        metric = "test_acc" if group.test_acc.notna().any() or group.test_loss.isna().all() else "test_loss"
        base = dict(zip(alive[alive.config_hash == baseline_hash].seed.astype(int),
                        alive[alive.config_hash == baseline_hash][metric]))
        deltas = {int(s): v - base[int(s)] for s, v in zip(group.seed, group[metric])
                  if int(s) in base and math.isfinite(v) and math.isfinite(base[int(s)])}
        out[config_hash] = (metric, deltas)
    return out


def pivot(runs: pd.DataFrame, key: str) -> pd.DataFrame:
    """One row per (matched technique row, value of `key`): that value's Δ (mean, CI half-width, seeds)
    and, for every value after the first, the difference Δ(value) − Δ(first value).

    The difference is paired on the seeds both Δs have (mean ± t-CI of the per-seed differences of
    the Δs) when at least 2 are shared; otherwise Welch's unpaired interval on the two sets of per-seed
    Δs (`diff_method` says which). Baseline rows (Δ against themselves) are left out.
    Raises NoSuchKey when no run has `key`.
    """
    if runs.empty or runs["by"].isna().all():
        raise NoSuchKey(f"--by {key}: no run has this config key (keys are dotted paths in metrics.json's "
                        "`config`, e.g. model.hidden, trainer.lr)")
    head, _, leaf = key.partition(".")
    newest = runs.groupby("config_hash").tail(1).set_index("config_hash")
    deltas = seed_deltas(runs)
    cells: dict[tuple, dict[str, Any]] = {}
    for config_hash, row in newest.iterrows():
        if row.baseline_hash == config_hash or config_hash not in deltas:
            continue
        labels = {"dataset": row.dataset, "model": row.model, "setting": row.setting}
        if head in ("dataset", "model"):
            labels[head] = "" if leaf == "name" else without_condition(labels[head], leaf)
        else:
            labels["setting"] = without_condition(labels["setting"], key)
        match = (labels["dataset"], labels["model"], row.technique, labels["setting"])
        value = row.by if row.by is not None else "(unset)"
        cells.setdefault(match, {}).setdefault(value, deltas[config_hash])
    rows = []
    for (dataset, model, technique, setting), by_value in cells.items():
        values = value_order(list(by_value))
        first_metric, first = by_value[values[0]]
        for value in values:
            metric, delta = by_value[value]
            row = dict(dataset=dataset, model=model, technique=technique, setting=setting, metric=metric,
                       value=value)
            row["delta_mean"], row["delta_ci"], row["delta_seeds"] = mean_ci(list(delta.values()))
            row.update(vs=None, diff_mean=math.nan, diff_ci=math.nan, diff_seeds=0, diff_method="")
            if value != values[0] and metric == first_metric:
                shared = sorted(set(delta) & set(first))
                row["vs"] = values[0]
                if len(shared) >= 2:
                    row["diff_mean"], row["diff_ci"], row["diff_seeds"] = \
                        mean_ci([delta[s] - first[s] for s in shared])
                    row["diff_method"] = "paired"
                else:
                    row["diff_mean"], row["diff_ci"] = difference_of_means(np.array(list(first.values())),
                                                                           np.array(list(delta.values())))
                    row["diff_seeds"], row["diff_method"] = len(delta) + len(first), "Welch"
            rows.append(row)
    return pd.DataFrame(rows, columns=PIVOT_COLUMNS)


def pivot_rows(table: pd.DataFrame, key: str,
               compact: bool = False) -> list[tuple[str, str, list[str], list[list[str]]]]:
    """[(title, unit, header, cells)], one table per dataset: a row per technique with Δ for each value
    of `key` side by side and Δ(value) − Δ(first value) for the others. Compact (the terminal): short
    headers ('hidden=[32]', '[32] − [256]', the unit in the title), model and setting columns that
    every row shares move to the title."""
    name = key.rpartition(".")[2] if compact else key
    out = []
    for dataset, part in table.groupby("dataset", sort=False):
        values = value_order(list(dict.fromkeys(part.value)))
        percent = (part.metric == "test_acc").all()
        unit = "Δ test acc %" if percent else "Δ test loss"
        header = ["model", "technique", "setting"]
        if compact:
            header += [f"{name}={v}" for v in values] + [f"{v} − {values[0]}" for v in values[1:]]
        else:
            header += [f"{unit} {name}={v}" for v in values]
            header += [f"{unit} {name}={v} − {name}={values[0]}" for v in values[1:]]
        title = [f"dataset={dataset}"]
        cells = []
        for (model, technique, setting), group in part.groupby(["model", "technique", "setting"], sort=False):
            by_value = {row.value: row for _, row in group.iterrows()}
            line = [model or "—", technique, setting or "—"]
            line += [fmt(by_value[v].delta_mean, by_value[v].delta_ci, percent=percent, signed=True)
                     + (f" (n={by_value[v].delta_seeds})" if not compact else "")
                     if v in by_value else "—" for v in values]
            for v in values[1:]:
                row = by_value.get(v)
                if row is None or not math.isfinite(row.diff_mean):
                    line.append("—")
                    continue
                method = f"paired n={row.diff_seeds}" if row.diff_method == "paired" else "Welch"
                line.append(fmt(row.diff_mean, row.diff_ci, percent=percent, signed=True) + f" ({method})")
            cells.append(line)
        if compact:  # a model or setting the same on every row goes to the title
            keep = []
            for i, column in enumerate(header):
                same = {line[i] for line in cells}
                if column in ("model", "setting") and len(same) == 1:
                    title += [f"{column}={same.pop()}"] if cells[0][i] != "—" else []
                else:
                    keep.append(i)
            header, cells = [header[i] for i in keep], [[line[i] for i in keep] for line in cells]
        out.append((" ".join(title), unit, header, cells))
    return out


PIVOT_NOTES = ("Δ: each row's paired Δ against its own baseline (the `none` run with the same value), mean ± "
               "95% CI over its seeds. Δ(value) − Δ(first value): paired on the seeds both Δs share (mean ± "
               "t-CI of the per-seed differences) where at least 2 are shared, else Welch's unpaired interval "
               "(marked Welch). Rows are matched with the key's own condition taken out of their labels.")


def pivot_markdown(table: pd.DataFrame, key: str) -> str:
    text = f"# Δ by {key}\n"
    for title, _, header, cells in pivot_rows(table, key):
        text += f"\n## {title}\n\n| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n"
        text += "".join("| " + " | ".join(c.replace("|", "\\|") for c in line) + " |\n" for line in cells)
    return text + "\n" + PIVOT_NOTES + "\n"


def print_pivot(console, table: pd.DataFrame, key: str) -> None:
    from rich.table import Table
    from rich.text import Text

    for title, unit, header, cells in pivot_rows(table, key, compact=True):
        grid = Table(title=Text(f"{unit} by {key}: {title}"),
                     caption=Text("Δ vs each value's own baseline; last columns: difference of the Δs "
                                  "(paired on shared seeds, else Welch)"))
        for name in header:
            grid.add_column(name, justify="left" if name in ("model", "technique", "setting") else "right",
                            overflow="fold")
        for line in cells:
            grid.add_row(*map(Text, line))
        console.print(grid)
