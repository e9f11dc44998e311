"""The leaderboard: per (dataset, model, technique, setting), the train-versus-test gap with 95% CIs.

Built from files on disk (`**/metrics.json`), so it works the same at the end of a sweep (whatever
launcher ran the jobs) and later from `regbench-leaderboard DIR...`.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from regbench.config import default_value, lookup
from regbench.results import write_atomic
from regbench.stats import mean_ci, paired_difference

# Overrides that pick what is compared (shown in their own columns), which seeds, or where and how a
# job runs: none of them changes the setting a result belongs to (nor does any `*.data_dir`).
GROUP_KEYS = {"dataset", "model", "regularizer", "seed", "replicates", "device", "progress", "suite",
              "threads"}
# (column prefix, field in metrics.json runs)
METRICS = [("test_acc", "test_acc"), ("train_acc", "train_acc"), ("gap_acc", "gap_acc"),
           ("test_loss", "test_loss"), ("train_loss", "train_loss"), ("gap_loss", "gap_loss"),
           ("member_test_acc", "member_test_acc")]  # ensembles: their mean member's test accuracy


def override_key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def describe(record: dict) -> tuple[str, str, str]:
    """A job's (dataset condition, model condition, technique setting) labels, from its overrides.

    Overrides that leave a value at its conf/ default (a sweep listing the default among others) are
    dropped, so `trainer.batch_size=100` lands in the same row as a job that did not say it.
    """
    config = record.get("config") or {}
    groups = {"dataset": record.get("dataset"), "model": record.get("model"), "trainer": "default"}
    dataset, model, setting = [], [], []
    for override in sorted(record.get("overrides", [])):
        key = override_key(override)
        head = key.split(".", 1)[0]
        if key in GROUP_KEYS or head in ("hydra", "suite") or key.endswith(".data_dir"):
            continue
        if config and lookup(config, key) == default_value(key, groups):
            continue
        text = override.lstrip("+")
        if head == "dataset":
            dataset.append(text.split(".", 1)[1])
        elif head == "model":
            model.append(text.split(".", 1)[1])
        else:
            setting.append(text)
    return " ".join(dataset), " ".join(model), " ".join(setting)


def baseline_setting(setting: str) -> str:
    """The `none` setting a row is compared with: its own, less the technique's knobs."""
    return " ".join(part for part in setting.split() if not part.startswith("regularizer."))


def find_metrics(dirs: Iterable[Path | str]) -> list[Path]:
    paths: list[Path] = []
    for directory in dirs:
        directory = Path(directory)
        paths += [directory] if directory.name == "metrics.json" else sorted(directory.glob("**/metrics.json"))
    return sorted(set(paths), key=lambda p: (p.stat().st_mtime, str(p)))


def collect(dirs: Iterable[Path | str]) -> tuple[pd.DataFrame, list[dict]]:
    """One row per (job, seed) from every metrics.json under `dirs`, plus the failed jobs.

    A seed run twice under the same label counts once (the newest file wins).
    """
    rows, failed = [], []
    for path in find_metrics(dirs):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            failed.append({"path": str(path.parent), "error": f"unreadable metrics.json: {error}"})
            continue
        if record.get("status") not in ("completed", "diverged"):
            failed.append({"path": str(path.parent), "error": record.get("error") or record.get("status")})
            continue
        data_cond, model_cond, setting = describe(record)
        for run in record.get("runs", []):
            rows.append({"dataset": label(record["dataset"], data_cond), "model": label(record["model"], model_cond),
                         "technique": record["technique"], "setting": setting, "seed": run["seed"],
                         "diverged": bool(run.get("diverged")),
                         **{column: run.get(field) for column, field in METRICS}})
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame = frame.drop_duplicates(["dataset", "model", "technique", "setting", "seed"], keep="last")
    return frame, failed


def label(name: str, condition: str) -> str:
    return f"{name}[{condition}]" if condition else name


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Leaderboard rows: mean and 95% CI half-width per metric, Δ test acc vs `none` on matched seeds.

    The baseline of a row is the `none` technique on the same dataset and model (conditions included)
    with the row's own trainer setting; a `none` row with a non-default trainer setting (batch size,
    learning rate: implicit regularization) is compared with the default setting. Sorted by test
    accuracy (test loss where there is no accuracy), never by gap alone: a collapsed model has no gap.
    """
    if runs.empty:
        return pd.DataFrame()
    out = []
    keys = ["dataset", "model", "technique", "setting"]
    for key, group in runs.groupby(keys, sort=False):
        row: dict[str, Any] = dict(zip(keys, key))
        row["seeds"] = int(group["seed"].nunique())
        row["diverged"] = int(group["diverged"].sum())
        for column, _ in METRICS:
            mean, half, _ = mean_ci(pd.to_numeric(group[column], errors="coerce"))
            row[f"{column}_mean"], row[f"{column}_ci"] = mean, half
        nones = runs[(runs.dataset == row["dataset"]) & (runs.model == row["model"]) & (runs.technique == "none")]
        base_setting = baseline_setting(row["setting"])
        if row["technique"] == "none" and (nones.setting == "").any():
            base_setting = ""  # `none` with another trainer setting (batch size, lr) vs the defaults
        base = nones[nones.setting == base_setting]
        row["baseline"] = "none" + (f" {base_setting}" if base_setting else "")
        row["is_baseline"] = row["technique"] == "none" and base_setting == row["setting"]
        delta, half, matched = paired_difference(per_seed(group, "test_acc"), per_seed(base, "test_acc"))
        row["delta_test_acc_mean"], row["delta_test_acc_ci"], row["delta_seeds"] = delta, half, matched
        out.append(row)
    board = pd.DataFrame(out)
    has_acc = board["test_acc_mean"].notna().any()
    by, ascending = ("test_acc_mean", False) if has_acc else ("test_loss_mean", True)
    return board.sort_values([by, "technique"], ascending=[ascending, True], na_position="last",
                             ignore_index=True)


def per_seed(group: pd.DataFrame, column: str) -> dict[int, float]:
    values = pd.to_numeric(group[column], errors="coerce")
    return {int(seed): float(v) for seed, v in zip(group["seed"], values) if math.isfinite(v)}


def fmt(mean: float, half: float, percent: bool = False, signed: bool = False) -> str:
    """'65.2 ± 1.3' for accuracies (in %), '1.234 ± 0.056' for losses; '—' for a missing value."""
    if not math.isfinite(mean):
        return "—"
    scale, digits = (100.0, 1) if percent else (1.0, 3)
    sign = "+" if signed else ""
    text = f"{mean * scale:{sign}.{digits}f}"
    return text + (f" ± {half * scale:.{digits}f}" if math.isfinite(half) else "")


# (header, column, in percent, shown in the terminal table)
DISPLAY = [("test acc %", "test_acc", True, True), ("train acc %", "train_acc", True, True),
           ("gap (train−test) %", "gap_acc", True, True), ("test loss", "test_loss", False, False),
           ("train loss", "train_loss", False, False), ("loss gap", "gap_loss", False, True),
           ("mean member test acc %", "member_test_acc", True, True)]


def display_rows(board: pd.DataFrame, compact: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells for leaderboard.md (all columns) and the terminal (`compact`)."""
    shown = [d for d in DISPLAY if (d[3] or not compact) and board[f"{d[1]}_mean"].notna().any()]
    labels = ["dataset", "model", "technique", "setting"]
    if compact:  # columns that are the same on every row go to the title instead
        labels = [c for c in labels if c == "technique" or board[c].nunique() > 1]
    header = [*labels, "seeds", *[d[0] for d in shown], "Δ test acc % vs none"]
    cells = []
    for _, row in board.iterrows():
        delta = fmt(row.delta_test_acc_mean, row.delta_test_acc_ci, percent=True, signed=True)
        if row.is_baseline:
            delta = "baseline"
        seeds = f"{row.seeds}" + (f" ({row.diverged} diverged)" if row.diverged else "")
        cells.append([row[c] or "—" for c in labels] + [seeds]
                     + [fmt(row[f"{col}_mean"], row[f"{col}_ci"], percent=pct) for _, col, pct, _ in shown]
                     + [delta])
    return header, cells


def markdown(board: pd.DataFrame, failed: list[dict]) -> str:
    header, cells = display_rows(board)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
    text = "\n".join(lines) + ("\n\nMean ± 95% CI half-width (Student t) over seeds; Δ test acc is paired "
                               "with the `none` baseline on the seeds both have.\n")
    if failed:
        text += "\nFailed jobs:\n" + "".join(f"- `{f['path']}`: {f['error']}\n" for f in failed)
    return text


def print_table(board: pd.DataFrame, failed: list[dict], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    header, cells = display_rows(board, compact=True)
    shared = [f"{c}={board[c].iloc[0]}" for c in ("dataset", "model") if c not in header]
    table = Table(title=" ".join([title, *shared]),
                  caption="mean ± 95% CI over seeds; Δ paired with the none baseline on shared seeds")
    for name in header:
        table.add_column(name, justify="left" if name in ("dataset", "model", "technique", "setting") else "right")
    for row in cells:
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:  # logs and pipes: wide enough that cells do not wrap
        console = Console(width=160)
    console.print(table)
    for f in failed:
        console.print(f"[red]failed[/red] {f['path']}: {f['error']}")


def show_leaderboard(dirs: Iterable[Path | str], out_dir: Path | str | None = None,
                     write: bool = True) -> pd.DataFrame:
    """Build the leaderboard from `dirs`, print it, and (if `write`) save leaderboard.{csv,md} in `out_dir`."""
    dirs = list(dirs)
    runs, failed = collect(dirs)
    board = summarize(runs)
    title = "regbench leaderboard"
    if board.empty:
        print(f"no completed jobs under {', '.join(map(str, dirs))}", file=sys.stderr)
    else:
        print_table(board, failed, title)
    if write:
        out = Path(out_dir if out_dir is not None else dirs[0])
        write_atomic(out / "leaderboard.csv", board.to_csv(index=False))
        write_atomic(out / "leaderboard.md", markdown(board, failed))
    return board


class LeaderboardCallback(Callback):
    """At the end of a multirun, build the leaderboard from the job dirs on disk into the sweep dir."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        show_leaderboard([sweep_dir], out_dir=sweep_dir)


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="regbench-leaderboard",
                                     description="Rebuild a leaderboard from finished regbench job dirs.")
    parser.add_argument("dirs", nargs="+", type=Path, help="sweep or job dirs (searched for metrics.json)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write leaderboard.{csv,md} (default: the first dir)")
    args = parser.parse_args(argv)
    missing = [d for d in args.dirs if not d.exists()]
    if missing:
        print(f"regbench-leaderboard: error: no such directory: {missing[0]}", file=sys.stderr)
        return 2
    board = show_leaderboard(args.dirs, out_dir=args.out)
    return 0 if not board.empty else 1


if __name__ == "__main__":
    sys.exit(cli())
