"""Render: the terminal table and leaderboard.md from a summarized board (formatting only, no statistics)."""
from __future__ import annotations

import math

import pandas as pd

from regbench.report.collect import NOT_APPLICABLE

TITLE = "regbench leaderboard"


def fmt(mean: float, half: float, percent: bool = False, signed: bool = False) -> str:
    """'65.2 ± 1.3' for accuracies (in %), '1.234 ± 0.056' for losses; '—' for a missing value."""
    if not math.isfinite(mean):
        return "—"
    scale, digits = (100.0, 1) if percent else (1.0, 3)
    sign = "+" if signed else ""
    text = f"{mean * scale:{sign}.{digits}f}"
    return text + (f" ± {half * scale:.{digits}f}" if math.isfinite(half) else "")


# (header, metric, in percent, shown in the terminal table)
DISPLAY = [("test acc %", "test_acc", True, True), ("train acc %", "train_acc", True, True),
           ("gap (train−test) %", "gap_acc", True, True), ("test loss", "test_loss", False, False),
           ("train loss", "train_loss", False, False), ("loss gap", "gap_loss", False, True),
           ("mean member test acc %", "member_test_acc", True, True)]
LABEL_COLUMNS = ["config", "dataset", "model", "technique", "setting"]


def display_rows(board: pd.DataFrame, compact: bool = False) -> tuple[list[str], list[list[str]], list[str]]:
    """(header, cells, shared) for leaderboard.md (every column) or the terminal (`compact`).

    Compact: dataset and model columns that are the same on every row, and the parts of the setting
    every row shares (a suite's trainer values), move to `shared` ('setting=trainer.epochs=3', for the
    title) instead of disappearing, and leave the baseline names too; the config column is kept only
    where two rows would otherwise look the same; loss columns show when no row has an accuracy.
    """
    no_acc = board.test_acc_mean.isna().all()
    shown = [d for d in DISPLAY if (not compact or d[3] or no_acc) and board[f"{d[1]}_mean"].notna().any()]
    labels, shared = list(LABEL_COLUMNS), []
    if compact:
        for column in ("dataset", "model"):
            if board[column].nunique() == 1:
                labels.remove(column)
                if board[column].iloc[0]:
                    shared.append(f"{column}={board[column].iloc[0]}")
        board, common = without_common_setting(board)
        if common:
            shared.append(f"setting={common}")
        if not board.setting.any():
            labels.remove("setting")
        if not board.duplicated(labels[1:]).any():
            labels.remove("config")
    # Δ test acc for classification rows, Δ test loss for rows without accuracy (regression)
    deltas = [d for d in (("Δ test acc %", "delta_test_acc", True), ("Δ test loss", "delta_test_loss", False))
              if d[1] == "delta_test_acc" and not no_acc or d[1] == "delta_test_loss" and
              (no_acc or (board.test_acc_mean.isna() & board.test_loss_mean.notna()).any())]
    header = [*labels, "seeds", *[d[0] for d in shown], *[d[0] for d in deltas], "baseline"]
    cells = []
    for _, row in board.iterrows():
        seeds = f"{row.seeds}" + (f" (+{row.diverged} diverged)" if row.diverged else "")
        cells.append([row[c] or "—" for c in labels] + [seeds]
                     + [fmt(row[f"{m}_mean"], row[f"{m}_ci"], percent=pct) for _, m, pct, _ in shown]
                     + [fmt(row[f"{d}_mean"], row[f"{d}_ci"], percent=pct, signed=True) for _, d, pct in deltas]
                     + [row.baseline])
    return header, cells, shared


def without_common_setting(board: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """(board with the setting parts every row has removed from `setting` and `baseline`, those parts).

    A suite sets the same trainer values in every job; on every row (and again in every baseline name)
    they would push the numbers off an 80-column terminal without telling rows apart.
    """
    parts = [setting.split() for setting in board.setting]
    common = [part for part in parts[0] if all(part in row for row in parts[1:])] if parts else []
    if not common:
        return board, ""

    def strip(text: str) -> str:
        return " ".join(part for part in text.split() if part not in common)

    def strip_baseline(name: str) -> str:  # 'none <setting>', 'baseline' or 'not in these results (…)'
        technique, _, setting = name.partition(" ")
        return f"{technique} {strip(setting)}".strip() if technique == "none" else name

    board = board.assign(setting=board.setting.map(strip), baseline=board.baseline.map(strip_baseline))
    return board, " ".join(common)


NOTES = ("Mean ± 95% CI half-width (Student t) over the seeds that did not diverge; diverged seeds are "
         "counted in `seeds` and left out of every column and of Δ. Δ test acc (Δ test loss for rows "
         "without accuracy, e.g. regression) is paired on shared seeds with the row named in `baseline` (the job's `baseline_hash`); `config` is the start of "
         "`config_hash` (leaderboard.csv has both hashes in full).")


def markdown(board: pd.DataFrame, unfinished: list[dict]) -> str:
    header, cells, _ = display_rows(board)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
    text = "\n".join(lines) + "\n\n" + NOTES + "\n"
    failed = [u for u in unfinished if u["status"] != NOT_APPLICABLE]
    if failed:
        text += "\nUnfinished jobs (not counted):\n"
        text += "".join(f"- `{u['path']}`: {u['status']}" + (f": {u['error']}" if u["error"] else "") + "\n"
                        for u in failed)
    not_applicable = [u for u in unfinished if u["status"] == NOT_APPLICABLE]
    if not_applicable:
        text += "\nNot applicable to this data (not counted):\n"
        text += "".join(f"- {u['technique']} (`{u['path']}`): {u['error']}\n" for u in not_applicable)
    return text


def print_table(board: pd.DataFrame, unfinished: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    header, cells, shared = display_rows(board, compact=True)
    table = Table(title=Text(" ".join([TITLE, *shared])),
                  caption="mean ± 95% CI over non-diverged seeds; Δ paired with `baseline` on shared seeds")
    for name in header:
        # fold: a long setting wraps onto more lines instead of ending in '…'
        table.add_column(name, justify="left" if name in (*LABEL_COLUMNS, "baseline") else "right",
                         overflow="fold")
    groups = list(zip(board.dataset, board.model))
    for i, row in enumerate(cells):  # Text: labels such as 'mnist1d[n_train=500]' are not markup
        table.add_row(*map(Text, row), end_section=i + 1 < len(groups) and groups[i + 1] != groups[i])
    console = Console()
    if not console.is_terminal:  # logs and pipes: wide enough that cells do not wrap
        console = Console(width=160)
    console.print(table)
    print_unfinished(unfinished)


def print_unfinished(unfinished: list[dict]) -> None:
    """One line per job without a row: failures in red, techniques that do not apply labelled as such."""
    from rich.console import Console
    from rich.text import Text

    console = Console() if Console().is_terminal else Console(width=160)
    for u in unfinished:
        if u["status"] == NOT_APPLICABLE:
            console.print(Text(f"not applicable (not counted) {u['technique']} {u['path']}: {u['error']}",
                               style="yellow"))
        else:
            console.print(Text(f"{u['status']} (not counted) {u['path']}" + (f": {u['error']}" if u["error"] else ""),
                               style="red"))
