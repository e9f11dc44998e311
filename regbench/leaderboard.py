"""The leaderboard: per resolved config, the train-versus-test gap with 95% CIs and Δ vs its baseline.

Built from files on disk (`**/metrics.json`), so it works the same at the end of a sweep (whatever
launcher ran the jobs) and later from `regbench-leaderboard DIR...`. Three steps, each reading only what
the one before returns:
  collect    read and check every metrics.json; one run per (config_hash, seed), the newest file's
  summarize  one row per (config_hash, baseline_hash): mean ± 95% CI per metric, Δ vs the baseline row
  render     terminal table, leaderboard.csv, leaderboard.md (formatting only, no statistics)
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from regbench.results import write_atomic
from regbench.stats import mean_ci, paired_difference

FINISHED = ("completed", "diverged")  # jobs whose runs count (`diverged`: some of its runs did)
UNFINISHED = ("failed", "interrupted", "running")
# a technique that has no meaning for the data (label smoothing on regression): listed, neither a row nor
# a failure; its `reason` says why
NOT_APPLICABLE = "not_applicable"
LABELS = ("dataset", "model", "setting")
# Fields of a run that the leaderboard reads; member_test_acc: an ensemble's mean member.
METRICS = ("test_acc", "train_acc", "gap_acc", "test_loss", "train_loss", "gap_loss", "member_test_acc")
HASH = re.compile(r"[0-9a-f]{8,64}")
TITLE = "regbench leaderboard"


# ---------------------------------------------------------------------------------------------- collect

class BadFile(Exception):
    """A metrics.json the leaderboard cannot use; the message says what is wrong, in a few words."""


def find_metrics(dirs: Iterable[Path | str]) -> list[Path]:
    """Every `**/metrics.json` under `dirs` (a path to a file is taken as it is), each file once."""
    found: dict[Path, Path] = {}
    for directory in map(Path, dirs):
        for path in [directory] if directory.is_file() else sorted(directory.glob("**/metrics.json")):
            found.setdefault(path.resolve(), path)
    return list(found.values())


def _no_constants(name: str) -> None:
    raise BadFile(f"not valid JSON ({name} is not a JSON value)")


def read_record(path: Path) -> tuple[int, dict]:
    """(modification time in ns, the checked record) of one metrics.json; raises BadFile."""
    try:
        mtime = path.stat().st_mtime_ns
        text = path.read_bytes().decode()
    except OSError as error:
        raise BadFile(f"cannot read it ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise BadFile("not valid JSON (not UTF-8 text)") from None
    if not text.strip():
        raise BadFile("empty file")
    try:
        record = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as error:
        if error.pos >= len(text.rstrip()) or error.msg.startswith("Unterminated string"):  # ran out
            raise BadFile("not valid JSON (truncated?)") from None
        raise BadFile(f"not valid JSON (line {error.lineno} column {error.colno}: {error.msg})") from None
    check(record)
    return mtime, record


_ABSENT = object()


def _wrong(name: str, value: Any, expected: str) -> BadFile:
    if value is _ABSENT:
        return BadFile(f"no {name!r} field (not a regbench metrics.json?)")
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return BadFile(f"{name!r} is {shown}, expected {expected}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check(record: Any) -> None:
    """Raise BadFile unless `record` has the fields and types the leaderboard reads (notes/schema.md).

    Every job needs `status`; completed and diverged jobs also their identity (`config_hash`,
    `baseline_hash`), `labels`, `technique` and `runs`, each run an int `seed` and numbers or nulls
    for the metrics. Fields the leaderboard does not read are not checked.
    """
    if not isinstance(record, dict):
        raise BadFile(f"not a JSON object (a JSON {type(record).__name__})")
    status = record.get("status", _ABSENT)
    if status not in (*FINISHED, *UNFINISHED, NOT_APPLICABLE):
        raise _wrong("status", status, "one of " + ", ".join((*FINISHED, *UNFINISHED, NOT_APPLICABLE)))
    for key in ("error", "reason", "technique") if status == NOT_APPLICABLE else ("error",):
        if not isinstance(record.get(key), (str, type(None))):
            raise _wrong(key, record[key], "a string or null")
    if status not in FINISHED:
        return
    for key in ("config_hash", "baseline_hash"):
        value = record.get(key, _ABSENT)
        if not (isinstance(value, str) and HASH.fullmatch(value)):
            raise _wrong(key, value, "a lowercase hex string")
    if not isinstance(record.get("technique"), str) or not record["technique"]:
        raise _wrong("technique", record.get("technique", _ABSENT), "a name")
    labels = record.get("labels", _ABSENT)
    if not isinstance(labels, dict):
        raise _wrong("labels", labels, "an object")
    for key in LABELS:
        if not isinstance(labels.get(key), str):
            raise _wrong(f"labels.{key}", labels.get(key, _ABSENT), "a string")
    runs = record.get("runs", _ABSENT)
    if not isinstance(runs, list):
        raise _wrong("runs", runs, "a list")
    for i, run in enumerate(runs):
        if not isinstance(run, dict):
            raise _wrong(f"runs[{i}]", run, "an object")
        seed = run.get("seed", _ABSENT)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise _wrong(f"runs[{i}].seed", seed, "an int")
        if not isinstance(run.get("diverged", False), bool):
            raise _wrong(f"runs[{i}].diverged", run["diverged"], "true or false")
        for key in METRICS:
            if run.get(key) is not None and not _is_number(run[key]):
                raise _wrong(f"runs[{i}].{key}", run[key], "a number or null")


@dataclass
class Collected:
    """What `collect` read. runs: one row per (config_hash, seed), ordered oldest file first."""
    runs: pd.DataFrame
    statuses: dict[str, int]
    unfinished: list[dict]
    skipped: list[tuple[str, str]]


RUN_COLUMNS = ["config_hash", "baseline_hash", "seed", "diverged", *METRICS, "technique", *LABELS]


def collect(dirs: Iterable[Path | str]) -> Collected:
    """Read every metrics.json under `dirs`; nothing is printed.

    A (config_hash, seed) found in several files counts once: the newest file by mtime wins (ties:
    the later path). Files that cannot be used are returned in `skipped` with the reason; failed,
    interrupted and running jobs in `unfinished`.
    """
    records, skipped = [], []
    for path in find_metrics(dirs):
        try:
            mtime, record = read_record(path)
        except BadFile as error:
            skipped.append((str(path), str(error)))
            continue
        records.append((mtime, str(path), record))
    records.sort(key=lambda item: item[:2])

    runs: dict[tuple[str, int], dict] = {}
    unfinished = []
    for _, path, record in records:
        if record["status"] not in FINISHED:
            why = record.get("reason" if record["status"] == NOT_APPLICABLE else "error")
            error = " ".join(str(why or "").split())  # one line, whatever was written
            unfinished.append({"path": str(Path(path).parent), "status": record["status"], "error": error,
                               "technique": record.get("technique") or "?"})
            continue
        for run in record["runs"]:
            key = (record["config_hash"], run["seed"])
            runs.pop(key, None)  # re-inserted last: the frame stays ordered oldest file first
            runs[key] = {"config_hash": record["config_hash"], "baseline_hash": record["baseline_hash"],
                         "seed": run["seed"], "diverged": run.get("diverged", False),
                         **{metric: run.get(metric) for metric in METRICS},
                         "technique": record["technique"], **{name: record["labels"][name] for name in LABELS}}
    frame = pd.DataFrame(list(runs.values()), columns=RUN_COLUMNS)
    frame[list(METRICS)] = frame[list(METRICS)].astype(float)  # null -> NaN
    frame["diverged"] = frame["diverged"].astype(bool)
    statuses = dict(Counter(record["status"] for *_, record in records))
    return Collected(frame, statuses, unfinished, skipped)


# -------------------------------------------------------------------------------------------- summarize

BOARD_COLUMNS = ["config", "dataset", "model", "technique", "setting", "seeds", "diverged",
                 *[f"{m}_{s}" for m in METRICS for s in ("mean", "ci")],
                 "delta_test_acc_mean", "delta_test_acc_ci", "delta_test_loss_mean", "delta_test_loss_ci",
                 "delta_seeds", "baseline", "is_baseline",
                 "config_hash", "baseline_hash"]


def technique_setting(run: pd.Series) -> str:
    """A row's name within its dataset and model: 'none', 'none trainer.batch_size=100'."""
    return f"{run.technique} {run.setting}".strip()


def per_seed(runs: pd.DataFrame, column: str) -> dict[int, float]:
    return dict(zip(runs["seed"].astype(int), runs[column]))


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Leaderboard rows from `collect`'s runs: one per (config_hash, baseline_hash).

    Labels are the newest file's. Diverged runs are left out of every metric and of Δ (on both sides)
    and counted in `diverged`; `seeds` counts the others. Δ test acc is paired on the seeds both sides
    have with the runs whose config_hash is this row's baseline_hash, and nothing else: with no such
    runs it is NaN and `baseline` says so. A row with no accuracy (regression) gets Δ test loss instead,
    paired the same way (negative is better); `delta_seeds` counts the pairs of whichever Δ it has.
    Grouped by (dataset, model); inside a group sorted by test accuracy (test loss where the group has no
    accuracy), never by gap alone (a collapsed model has no gap); rows whose seeds all diverged last.
    """
    if runs.empty:
        return pd.DataFrame(columns=BOARD_COLUMNS)
    alive = runs[~runs.diverged]
    newest = runs.groupby("config_hash").tail(1).set_index("config_hash")
    rows = []
    for (config_hash, baseline_hash), group in runs.groupby(["config_hash", "baseline_hash"], sort=False):
        ok = group[~group.diverged]
        label = group.iloc[-1]
        row: dict[str, Any] = {"config": config_hash[:8], "technique": label.technique,
                               **{key: label[key] for key in LABELS},
                               "seeds": len(ok), "diverged": int(group.diverged.sum())}
        for metric in METRICS:
            row[f"{metric}_mean"], row[f"{metric}_ci"], _ = mean_ci(ok[metric])
        base = alive[alive.config_hash == baseline_hash]
        if group.test_acc.notna().any() or group.test_loss.isna().all():
            delta = paired_difference(per_seed(ok, "test_acc"), per_seed(base, "test_acc"))
            row["delta_test_acc_mean"], row["delta_test_acc_ci"], row["delta_seeds"] = delta
            row["delta_test_loss_mean"] = row["delta_test_loss_ci"] = math.nan
        else:  # regression: no accuracy, Δ on the test loss
            delta = paired_difference(per_seed(ok, "test_loss"), per_seed(base, "test_loss"))
            row["delta_test_loss_mean"], row["delta_test_loss_ci"], row["delta_seeds"] = delta
            row["delta_test_acc_mean"] = row["delta_test_acc_ci"] = math.nan
        if baseline_hash == config_hash:
            row["baseline"] = "baseline"
        elif baseline_hash in newest.index:
            row["baseline"] = technique_setting(newest.loc[baseline_hash])
        else:
            row["baseline"] = f"not in these results ({baseline_hash[:8]})"
        row.update(is_baseline=baseline_hash == config_hash, config_hash=config_hash,
                   baseline_hash=baseline_hash)
        rows.append(row)
    board = pd.DataFrame(rows, columns=BOARD_COLUMNS)
    # Rows of one (dataset, model) stay together, whatever else a merged sweep holds; inside each, the
    # best first: highest test accuracy, or lowest test loss where that pair has no accuracy (regression).
    has_acc = board.groupby(["dataset", "model"]).test_acc_mean.transform(lambda acc: acc.notna().any())
    board["score"] = (-board.test_acc_mean).where(has_acc, board.test_loss_mean)
    board["all_diverged"] = board.seeds == 0
    board = board.sort_values(["dataset", "model", "all_diverged", "score", "technique", "setting", "config_hash"],
                              na_position="last", ignore_index=True)
    return board.drop(columns=["all_diverged", "score"])


# ----------------------------------------------------------------------------------------------- render

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


# ------------------------------------------------------------------------------------- the entry points

@dataclass
class Summary:
    """A built leaderboard. statuses: status -> number of usable job files; unfinished: {path, status,
    error} per failed/interrupted/running job; skipped: (path, reason) per file that could not be used."""
    board: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=BOARD_COLUMNS))
    statuses: dict[str, int] = field(default_factory=dict)
    unfinished: list[dict] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.board.empty


def nothing_to_show(dirs: list[Path], summary: Summary, write: bool) -> str:
    """The one line printed instead of a table: what was found, and the first error if a job failed."""
    counts = [f"{n} {status}" for status, n in sorted(summary.statuses.items())]
    counts += [f"{len(summary.skipped)} skipped"] if summary.skipped else []
    line = (f"{TITLE}: nothing to show under {', '.join(map(str, dirs))}: "
            + (f"no completed run ({', '.join(counts)})" if counts else "no metrics.json found")
            + ("; no leaderboard written" if write else ""))
    failed = [u for u in summary.unfinished if u["error"] and u["status"] != NOT_APPLICABLE]
    line += "".join(f"; not applicable: {u['technique']}: {u['error']}"
                    for u in summary.unfinished if u["status"] == NOT_APPLICABLE)
    return line + (f"; first error: {failed[0]['path']}: {failed[0]['error']}" if failed else "")


def show_leaderboard(dirs: Iterable[Path | str], out_dir: Path | str | None = None,
                     write: bool = True) -> Summary:
    """Build the leaderboard from `dirs`, print it and (if `write`) save leaderboard.{csv,md} in `out_dir`
    (default: the first dir). Skipped files get one warning line each on stderr. With nothing to show,
    one line on stderr and no file is written or touched."""
    dirs = [Path(d) for d in dirs]
    found = collect(dirs)
    summary = Summary(summarize(found.runs), found.statuses, found.unfinished, found.skipped)
    for path, reason in summary.skipped:
        print(f"warning: skipping {path}: {reason}", file=sys.stderr)
    if summary.empty:
        print(nothing_to_show(dirs, summary, write), file=sys.stderr)
        return summary
    print_table(summary.board, summary.unfinished)
    if write:
        out = Path(out_dir) if out_dir is not None else dirs[0].parent if dirs[0].is_file() else dirs[0]
        write_atomic(out / "leaderboard.csv", summary.board.to_csv(index=False))
        write_atomic(out / "leaderboard.md", markdown(summary.board, summary.unfinished))
    return summary


class LeaderboardCallback(Callback):
    """At the end of a multirun, build the leaderboard from the job dirs on disk into the sweep dir.

    The sweep dir and the last Summary are class attributes (Hydra makes the instance; tests and the
    app read the result here). Never raises: Hydra would print a raising callback's traceback.
    """
    sweep_dir: Path | None = None
    summary: Summary | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            LeaderboardCallback.sweep_dir = Path(config.hydra.sweep.dir)
        except Exception as error:
            LeaderboardCallback.sweep_dir = None
            print(f"{TITLE}: no sweep dir ({type(error).__name__}: {error})", file=sys.stderr)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            sweep_dir = LeaderboardCallback.sweep_dir or Path(config.hydra.sweep.dir)
            LeaderboardCallback.summary = show_leaderboard([sweep_dir], out_dir=sweep_dir)
        except Exception as error:
            print(f"{TITLE}: not built ({type(error).__name__}: {error})", file=sys.stderr)
            LeaderboardCallback.summary = Summary()


def cli(argv: list[str] | None = None) -> int:
    """`regbench-leaderboard DIR... [--out DIR]`: 0 when a table was built, 1 when there was nothing to
    show (or it could not be written), 2 for a dir that does not exist."""
    parser = argparse.ArgumentParser(prog="regbench-leaderboard",
                                     description="Rebuild a leaderboard from regbench job dirs.")
    parser.add_argument("dirs", nargs="+", type=Path, help="sweep or job dirs (searched for metrics.json)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write leaderboard.{csv,md} (default: the first dir)")
    args = parser.parse_args(argv)
    missing = [d for d in args.dirs if not d.exists()]
    for directory in missing:
        print(f"regbench-leaderboard: error: no such directory: {directory}", file=sys.stderr)
    if missing:
        return 2
    try:
        summary = show_leaderboard(args.dirs, out_dir=args.out)
    except OSError as error:  # --out not writable, disk full
        print(f"regbench-leaderboard: error: cannot write the leaderboard: {error}", file=sys.stderr)
        return 1
    return 1 if summary.empty else 0


if __name__ == "__main__":
    sys.exit(cli())
