"""Pivot: Δ vs baseline per technique for each value of one config key, side by side, and the difference
of the Δs with its CI ("does dropout help a wide MLP more than a narrow one?").

From `collect(dirs, by=key)`'s runs. Rows are matched across values by their labels with the key's own
condition taken out (`mlp[hidden=256]` and `mlp[hidden=64]` are both `mlp`); each value's Δ is the row's
paired Δ against its own baseline (the `none` run of that value), as on the leaderboard. Every config
that has runs is in the pivot: one cell never holds two.
"""
from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from regbench.report.stats import difference_of_means, mean_ci, shown_half_width
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


def without_name(label: str) -> str:
    """`label` with its name replaced by '*', its conditions kept: 'mnist1d[n_train=500]' -> '*[n_train=500]'
    (the label a row is matched by when the pivot's key is the name itself, `dataset.name`)."""
    _, bracket, rest = label.partition("[")
    return f"*{bracket}{rest}"


def seed_deltas(runs: pd.DataFrame) -> dict[tuple[str, str, str | None], tuple[str, dict[int, float]]]:
    """(config_hash, baseline_hash, value of `by`) -> (metric, seed -> treated − baseline) over the
    non-diverged seeds both sides have.

    The metric is test_acc, or test_loss for a config with no accuracy (regression). A config's runs
    split by baseline and by the key's value (a key outside the identity, such as `device`, may differ
    between the runs of one config). A config whose seeds all diverged is there, with no Δ."""
    alive = runs[~runs.diverged]
    out = {}
    for (config_hash, baseline_hash, by), group in runs.groupby(["config_hash", "baseline_hash", "by"],
                                                               sort=False, dropna=False):
        group = group[~group.diverged]
        metric = "test_acc" if group.test_acc.notna().any() or group.test_loss.isna().all() else "test_loss"
        base = dict(zip(alive[alive.config_hash == baseline_hash].seed.astype(int),
                        alive[alive.config_hash == baseline_hash][metric]))
        deltas = {int(s): v - base[int(s)] for s, v in zip(group.seed, group[metric])
                  if int(s) in base and math.isfinite(v) and math.isfinite(base[int(s)])}
        out[config_hash, baseline_hash, by if isinstance(by, str) else None] = (metric, deltas)
    return out


def pivot(runs: pd.DataFrame, key: str) -> pd.DataFrame:
    """One row per (matched technique row, value of `key`): that value's Δ (mean, CI half-width, seeds)
    and, for every value after the first, the difference Δ(value) − Δ(first value).

    Rows are matched across values by their labels with the key's own condition taken out (for a
    `*.name` key, the name: 'mnist1d[n_train=500]' is matched as '*[n_train=500]', so that configs that
    differ in other conditions stay apart). A pivot never drops a config: where two configs would
    still fall into one cell, each gets a row of its own, its setting extended by what tells them apart
    ('config 1a2b3c4d', 'vs none trainer.batch_size=100'). A config is paired with its newest baseline.
    The difference is paired on the seeds both Δs have (mean ± t-CI of the per-seed differences of
    the Δs) when at least 2 are shared; otherwise Welch's unpaired interval on the two sets of per-seed
    Δs (`diff_method` says which). Baseline rows (Δ against themselves) are left out.
    Raises NoSuchKey when no run has `key`.
    """
    if runs.empty or runs["by"].isna().all():
        raise NoSuchKey(f"--by {key}: no run has this config key (keys are dotted paths in metrics.json's "
                        "`config`, e.g. model.hidden, trainer.lr)")
    head, _, leaf = key.partition(".")
    # as on the leaderboard, every run of a config is paired with its newest command's baseline
    runs = runs.assign(baseline_hash=runs.groupby("config_hash").baseline_hash.transform("last"))
    newest = runs.groupby("config_hash").tail(1).set_index("config_hash")
    entries = []
    for (config_hash, baseline_hash, by), (metric, delta) in seed_deltas(runs).items():
        if baseline_hash == config_hash:
            continue
        row = newest.loc[config_hash]
        labels = {"dataset": row.dataset, "model": row.model, "setting": row.setting}
        if head in ("dataset", "model"):
            labels[head] = without_name(labels[head]) if leaf == "name" else without_condition(labels[head], leaf)
        else:
            labels["setting"] = without_condition(labels["setting"], key)
        entries.append({"match": (labels["dataset"], labels["model"], row.technique, labels["setting"]),
                        "value": by if by is not None else "(unset)", "config": config_hash,
                        "baseline": baseline_hash, "delta": (metric, delta)})
    cells: dict[tuple, dict[str, Any]] = {}
    for entry in split_shared_cells(entries, newest):
        cells.setdefault(entry["match"], {})[entry["value"]] = entry["delta"]
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


def split_shared_cells(entries: list[dict], newest: pd.DataFrame) -> list[dict]:
    """`entries` with the setting of those that share a (match, value) cell extended by what tells them
    apart: 'config <8>' where their configs differ, 'vs <baseline name>' where their baselines do."""
    shared: dict[tuple, list[dict]] = {}
    for entry in entries:
        shared.setdefault((entry["match"], entry["value"]), []).append(entry)
    for group in shared.values():
        if len(group) < 2:
            continue
        configs = {entry["config"] for entry in group}
        baselines = {entry["baseline"]: baseline_name(entry["baseline"], newest) for entry in group}
        if len(set(baselines.values())) < len(baselines):  # names that read the same: the hashes
            baselines = {h: h[:8] for h in baselines}
        for entry in group:
            dataset, model, technique, setting = entry["match"]
            parts = [setting] if setting else []
            parts += [f"config {entry['config'][:8]}"] if len(configs) > 1 else []
            parts += [f"vs {baselines[entry['baseline']]}"] if len(baselines) > 1 else []
            entry["match"] = (dataset, model, technique, " ".join(parts))
    return entries


def baseline_name(baseline_hash: str, newest: pd.DataFrame) -> str:
    if baseline_hash not in newest.index:
        return baseline_hash[:8]
    row = newest.loc[baseline_hash]
    return f"{row.technique} {row.setting}".strip()


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
            line += [fmt(by_value[v].delta_mean, shown_half_width(by_value[v].delta_ci, by_value[v].delta_seeds),
                         percent=percent, signed=True)
                     + (f" (n={by_value[v].delta_seeds})" if not compact else "")
                     if v in by_value else "—" for v in values]
            for v in values[1:]:
                row = by_value.get(v)
                if row is None or not math.isfinite(row.diff_mean):
                    line.append("—")
                    continue
                method = f"paired n={row.diff_seeds}" if row.diff_method == "paired" else "Welch"
                half = shown_half_width(row.diff_ci, row.diff_seeds) if row.diff_method == "paired" else row.diff_ci
                line.append(fmt(row.diff_mean, half, percent=percent, signed=True) + f" ({method})")
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
               "95% CI over its seeds (the mean alone on fewer than 3). Δ(value) − Δ(first value): paired on the seeds both Δs share (mean ± "
               "t-CI of the per-seed differences) where at least 2 are shared, else Welch's unpaired interval "
               "(marked Welch). Rows are matched with the key's own condition taken out of their labels (for a "
               "name, e.g. dataset.name, the name becomes * and the other conditions stay: *[n_train=500]); "
               "configs that would still share a cell get a row each, named by config or baseline.")


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
