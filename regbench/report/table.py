"""Render: the terminal table and leaderboard.md from a summarized board (formatting only, no statistics)."""
from __future__ import annotations

import math

import pandas as pd

from regbench.report import TITLE
from regbench.report.collect import NOT_APPLICABLE
from regbench.report.stats import MIN_SEEDS_FOR_INTERVAL, shown_half_width


def fmt(mean: float, half: float, percent: bool = False, signed: bool = False) -> str:
    """'65.2 ± 1.3' for accuracies (in %), '1.234 ± 0.056' for losses; the mean alone where `half` is
    NaN (one seed, or fewer than MIN_SEEDS_FOR_INTERVAL: see stats.shown_half_width); '—' for no value."""
    if not math.isfinite(mean):
        return "—"
    scale, digits = (100.0, 1) if percent else (1.0, 3)
    sign = "+" if signed else ""
    text = f"{mean * scale:{sign}.{digits}f}"
    return text + (f" ± {half * scale:.{digits}f}" if math.isfinite(half) else "")


def fmt_probability(p: float, low: float, high: float, wins: float, n: int, compact: bool = False) -> str:
    """'0.83 (5/6) [0.44, 0.97]': the share of seeds that improved, the count (a tie counts half: 2.5/3)
    and its Wilson interval; compact (the terminal): the count alone, '5/6'. '—' for a missing value."""
    if not math.isfinite(p):
        return "—"
    count = f"{wins:g}/{n}"
    return count if compact else f"{p:.2f} ({count}) [{low:.2f}, {high:.2f}]"


def fmt_p_value(p: float) -> str:
    return "—" if not math.isfinite(p) else "<0.001" if p < 0.001 else f"{p:.3f}"


# (header, metric, in percent, terminal priority: 0 always shown, higher numbers dropped first when the
# terminal is narrow, None never in the terminal). Loss columns take the accuracy columns' priorities
# on a board with no accuracy (regression).
DISPLAY = [("test acc %", "test_acc", True, 0), ("train acc %", "train_acc", True, 3),
           ("gap (train−test) %", "gap_acc", True, 0), ("test loss", "test_loss", False, None),
           ("train loss", "train_loss", False, None), ("loss gap", "gap_loss", False, 6),
           ("mean member test acc %", "member_test_acc", True, 5), ("test ECE", "test_ece", False, 2)]
REGRESSION_PRIORITY = {"test_loss": 0, "train_loss": 3, "gap_loss": 0}
# shorter headers for the terminal, where every column counts against 80 characters
SHORT = {"gap (train−test) %": "gap %", "mean member test acc %": "member acc %", "Δ test acc %": "Δ acc %"}
P_IMPROVE, P_VALUE, P_HOLM = "P(improve)", "p (paired t)", "p (Holm)"
LABEL_COLUMNS = ["config", "dataset", "model", "technique", "setting"]
FEW_SEEDS_MARK = "*"
NO_INTERVAL = f"fewer than {MIN_SEEDS_FOR_INTERVAL} seeds: no interval, the mean alone"
DEFAULT_MARK = "(default)"


def with_defaults(board: pd.DataFrame) -> pd.DataFrame:
    """The setting of a row that leaves at their defaults keys its siblings set ends in those values:
    'regularizer.dropout.p=0.2 (default)' where the label alone would be empty ('—')."""
    return board.assign(setting=[f"{setting} {defaults} {DEFAULT_MARK}".strip() if defaults else setting
                                 for setting, defaults in zip(board.setting, board.defaults)])


def display_rows(board: pd.DataFrame, compact: bool = False,
                 width: int | None = None) -> tuple[list[str], list[list[str]], list[str]]:
    """(header, cells, shared) for leaderboard.md (every column) or the terminal (`compact`).

    Compact: dataset and model columns that are the same on every row, and the parts of the setting
    every row shares (a suite's trainer values), move to `shared` ('setting=trainer.epochs=3', for the
    title) instead of disappearing, and leave the baseline names too; the config column is kept only
    where two rows would otherwise look the same; no baseline column: a row paired with another baseline
    than its own config without regularizers ends its setting in 'vs <baseline>'; P(improve) as the
    count of seeds that improved. With a `width`, the optional columns (by DISPLAY's priority, then the raw p, the Holm p and, last,
    P(improve)) are dropped until the table fits, keeping labels, seeds, test acc (loss), gap and Δ. A
    row with fewer than 3 seeds has '*' after its seed count.
    """
    no_acc = board.test_acc_mean.isna().all()
    priority = {m: REGRESSION_PRIORITY.get(m, rank) if no_acc else rank for _, m, _, rank in DISPLAY}
    shown = [d for d in DISPLAY if (not compact or priority[d[1]] is not None) and board[f"{d[1]}_mean"].notna().any()]
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
        # a row paired with another baseline than its own config without regularizers says which in its
        # setting ('vs none trainer.batch_size=100'), so the terminal needs no baseline column
        own = [own_baseline(row) for row in board.itertuples()]
        board = with_defaults(board)
        board = board.assign(setting=[row.setting if mine else f"{row.setting} vs {row.baseline}".strip()
                                      for row, mine in zip(board.itertuples(), own)])
        if not board.setting.any():
            labels.remove("setting")
        if not board.duplicated(labels[1:]).any():
            labels.remove("config")
    else:
        board = with_defaults(board)
    # Δ test acc for classification rows, Δ test loss for rows without accuracy (regression)
    deltas = [d for d in (("Δ test acc %", "delta_test_acc", True), ("Δ test loss", "delta_test_loss", False))
              if d[1] == "delta_test_acc" and not no_acc or d[1] == "delta_test_loss" and
              (no_acc or (board.test_acc_mean.isna() & board.test_loss_mean.notna()).any())]
    header = [*labels, "seeds", *[d[0] for d in shown], *[d[0] for d in deltas], P_IMPROVE, P_VALUE, P_HOLM]
    header += [] if compact else ["baseline"]
    cells = []
    for _, row in board.iterrows():
        seeds = f"{row.seeds}" + (FEW_SEEDS_MARK if row.few_seeds else "") \
            + (f" (+{row.diverged} diverged)" if row.diverged else "")
        cells.append([row[c] or "—" for c in labels] + [seeds]
                     + [fmt(row[f"{m}_mean"], shown_half_width(row[f"{m}_ci"], row.seeds), percent=pct)
                        for _, m, pct, _ in shown]
                     + [fmt(row[f"{d}_mean"], shown_half_width(row[f"{d}_ci"], row.delta_seeds), percent=pct,
                            signed=True) for _, d, pct in deltas]
                     + [fmt_probability(row.prob_improve, row.prob_improve_low, row.prob_improve_high,
                                        row.improved_seeds, row.delta_seeds, compact=compact),
                        fmt_p_value(row.p_value), fmt_p_value(row.p_holm)] + ([] if compact else [row.baseline]))
    if compact:
        # P(improve) goes last of all: a regression row's losses (0.498 ± 0.022) leave it no room at 80
        # the raw p goes before the Holm p: across a table, the Holm p is the one to read
        ranks = {d[0]: priority[d[1]] for d in shown} | {P_VALUE: 1.5, P_HOLM: 1, P_IMPROVE: 0.5}
        header, cells = fit(header, cells, ranks, width)
        header = [SHORT.get(name, name) for name in header]
    return header, cells, shared


def fit(header: list[str], cells: list[list[str]], ranks: dict[str, int],
        width: int | None) -> tuple[list[str], list[list[str]]]:
    """Drop the columns with the highest rank first until the table's estimated width fits `width`.

    The estimate: each column as wide as its longest cell or (short) header, with 3 characters of
    padding and border, label columns counted at most 24 wide (they wrap).
    """
    def estimate(names: list[str]) -> int:
        total = 1
        for name in names:
            i = header.index(name)
            longest = max([len(SHORT.get(name, name)), *(len(row[i]) for row in cells)])
            total += 3 + (min(longest, 24) if name in (*LABEL_COLUMNS, "baseline") else longest)
        return total

    kept = list(header)
    droppable = sorted((name for name in header if ranks.get(name)), key=lambda name: -ranks[name])
    for name in droppable:
        if width is None or estimate(kept) <= width:
            break
        kept.remove(name)
    keep = [header.index(name) for name in kept]
    return kept, [[row[i] for i in keep] for row in cells]


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
         "counted in `seeds` and left out of every column and of Δ. Rows are ranked by the test metric "
         "averaged over all their seeds with a diverged seed at the worst possible value (accuracy 0, test "
         "loss +∞), so diverged seeds count against a row: a row ranks below another whose seeds all "
         "finished unless its surviving seeds make up for the lost ones (with a loss they never do); "
         "leaderboard.csv has that `rank_score`. Δ test acc (Δ test loss for rows without accuracy, e.g. "
         "regression) is paired on shared seeds with the row named in `baseline` (the job's "
         "`baseline_hash`); `config` is the start of `config_hash` (leaderboard.csv has both hashes in "
         "full). P(improve): the share of those shared seeds on which the row beats its baseline (higher "
         "test accuracy; lower test loss without accuracy), a tie counting one half, then that count of "
         "seeds and its 95% Wilson score interval, which stays wide on few seeds (3 of 3: [0.44, 1.00]). "
         "p (paired t): two-sided paired t-test of Δ = 0 on the same seeds; p (Holm): that p adjusted "
         "(Holm–Bonferroni) over every row with a p in the same dataset and model, the family of one "
         "table (grid values hidden from the tables are in none). Read p (Holm) to ask whether any row of "
         "a table differs from its baseline at all; the raw p only for a row chosen before looking. "
         f"{FEW_SEEDS_MARK} after the seed count: {NO_INTERVAL} (a Δ on fewer than {MIN_SEEDS_FOR_INTERVAL} shared "
         "seeds likewise): over 2 seeds a 95% t interval is 6.4 times their difference wide on each side; "
         "its p says little too. A setting ending in (default): a key other rows of its technique set, "
         "here at its conf/ default value. Accuracies, gaps and Δ test acc are in percent here; "
         "leaderboard.csv holds them as fractions of 1, in columns named *_acc_fraction_* (0.652 = 65.2%). "
         "test ECE: expected calibration error of the test-set probabilities (15 equal-width bins).")


# accuracy-valued columns: percent in the tables, fractions of 1 in leaderboard.csv, whose names say so
FRACTION_COLUMNS = [f"{metric}_{stat}" for metric in ("test_acc", "train_acc", "gap_acc", "member_test_acc",
                                                      "delta_test_acc") for stat in ("mean", "ci")]


def board_csv(board: pd.DataFrame) -> str:
    """leaderboard.csv: every row and column of the board, accuracies as fractions of 1 in columns named
    `<metric>_fraction_<mean|ci>` (test_acc_fraction_mean 0.652 is the table's 65.2 %)."""
    renamed = {column: column.replace("_mean", "_fraction_mean").replace("_ci", "_fraction_ci")
               for column in FRACTION_COLUMNS}
    return board.rename(columns=renamed).to_csv(index=False)


def version_notes(board: pd.DataFrame) -> list[str]:
    """One line per row whose runs were written by several versions of regbench or torch ('unknown' for
    a file without `versions`): 'config 1a2b3c4d (dropout) pools runs from regbench 0.1.0 and 0.2.0'."""
    lines = []
    for i, row in board.iterrows():
        mixed = [(package, row[column].split()) for package, column in
                 (("regbench", "regbench_versions"), ("torch", "torch_versions"))
                 if isinstance(row[column], str) and len(row[column].split()) > 1]
        if not mixed:
            continue
        name = f"{row.technique} {row.setting}".strip()
        lines.append(f"config {row.config} ({name}) pools runs from "
                     + "; ".join(f"{package} {and_list(versions)}" for package, versions in mixed))
    return lines


def own_baseline(row) -> bool:
    """Whether a row is paired with its own config less its regularizers (the default `baseline`): the
    baseline row's name is 'none' and this row's setting without its technique's knobs. Read from the
    labels, so a baseline moved only in dataset or model settings is not told apart."""
    own = " ".join(part for part in row.setting.split() if not part.startswith("regularizer."))
    return row.baseline == "baseline" or row.baseline == f"none {own}".strip()


def baseline_notes(board: pd.DataFrame) -> list[str]:
    """One line per row whose runs were compared with several baselines (merged sweeps): the row pools
    every seed of its config and is paired with the newest command's baseline."""
    return [f"config {row.config} ({row.technique} {row.setting}".strip() + f") was compared with "
            f"{row.baselines} baselines in these results; Δ pairs it with the newest: {row.baseline}"
            for _, row in board.iterrows() if row.baselines > 1]


def and_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def hidden_note(board: pd.DataFrame) -> str:
    """One line for the points of tuned grids left out of the tables ('' when none is)."""
    hidden = int((~board.shown).sum())
    return (f"{hidden} other grid values of the tuned techniques are not shown: leaderboard.csv has every row"
            if hidden else "")


def markdown(board: pd.DataFrame, unfinished: list[dict]) -> str:
    note = hidden_note(board)
    board = board[board.shown]
    header, cells, _ = display_rows(board)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
    text = "\n".join(lines) + "\n\n" + NOTES + (f" {note}." if note else "") + "\n"
    for line in baseline_notes(board):
        text += f"\n{line}\n"
    versions = version_notes(board)
    if versions:
        text += "\nRows whose runs come from different versions (leaderboard.csv lists them per row):\n"
        text += "".join(f"- {line}\n" for line in versions)
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


def terminal():
    """The console to print to: the terminal's width (or COLUMNS where set), else 160 for logs and pipes
    (cells do not wrap)."""
    import os

    from rich.console import Console

    console = Console()
    return console if console.is_terminal or os.environ.get("COLUMNS") else Console(width=160)


def print_table(board: pd.DataFrame, unfinished: list[dict]) -> None:
    from rich.text import Text

    console = terminal()
    print_board(console, board[board.shown])
    for line in baseline_notes(board[board.shown]) + version_notes(board[board.shown]):
        console.print(Text(line, style="yellow"))
    note = hidden_note(board)
    if note:
        console.print(Text(note))
    print_unfinished(unfinished)


def print_board(console, board: pd.DataFrame) -> None:
    """The board as tables that fit `console`'s width: one per (dataset, model) (each with its own
    metric: accuracy, or test loss for regression, and its condition in the title), columns dropped
    by `display_rows` where the width asks for it; the caption once, under the last."""
    from rich.table import Table
    from rich.text import Text

    datasets = list(dict.fromkeys(zip(board.dataset, board.model)))
    for k, (dataset, model) in enumerate(datasets):
        part = board[(board.dataset == dataset) & (board.model == model)]
        header, cells, shared = display_rows(part, compact=True, width=console.width)
        caption = None
        if k == len(datasets) - 1:
            caption = Text("mean ± 95% CI over non-diverged seeds; ranked over all seeds, a diverged seed "
                           "scoring worst; Δ paired with the baseline on shared seeds; P(improve): seeds that "
                           "beat it; p (Holm): adjusted over the table"
                           + (f"; {FEW_SEEDS_MARK} {NO_INTERVAL}" if board.few_seeds.any() else "")
                           + "; every column and interval in leaderboard.md")
        table = Table(title=Text(" ".join([TITLE, *shared])), caption=caption)
        for name in header:
            # fold: a long setting wraps onto more lines instead of ending in '…'
            table.add_column(name, justify="left" if name in (*LABEL_COLUMNS, "baseline") else "right",
                             overflow="fold")
        for row in cells:  # Text: labels such as 'mnist1d[n_train=500]' are not markup
            table.add_row(*map(Text, row))
        console.print(table)


def print_unfinished(unfinished: list[dict]) -> None:
    """One line per job without a row: failures in red, techniques that do not apply labelled as such."""
    from rich.console import Console
    from rich.text import Text

    console = terminal()
    for u in unfinished:
        if u["status"] == NOT_APPLICABLE:
            console.print(Text(f"not applicable (not counted) {u['technique']} {u['path']}: {u['error']}",
                               style="yellow"))
        else:
            console.print(Text(f"{u['status']} (not counted) {u['path']}" + (f": {u['error']}" if u["error"] else ""),
                               style="red"))
