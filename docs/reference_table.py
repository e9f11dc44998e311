"""Print a table of docs/reference-results.md from the result dirs of the run that measured it.

    python docs/reference_table.py DIR... [--dataset NAME] [--model NAME] [--columns COLUMN...]
    python docs/reference_table.py DIR... --tuned [--dataset NAME] [--model NAME]

DIR: sweep or job dirs, as for `regbench-leaderboard` (every metrics.json under them counts). The rows and
numbers are the leaderboard's own (regbench.report: the same statistics, rounding and order as
leaderboard.md); --columns keeps the named columns of leaderboard.md in the given order (for example
technique seeds "test acc %" "Δ test acc %"); --tuned prints the tuned-vs-default table instead
(leaderboard_tuned.md's). The markdown goes to stdout, ready to paste over the old table: copying numbers
by hand is how tables drift. Nothing is written into DIR.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def markdown_table(header: list[str], cells: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def named(label: str, name: str | None) -> bool:
    """Whether a dataset or model label ('mnist1d[n_train=250]') is that name; every label if name is None."""
    return name is None or label.partition("[")[0] == name


def tables(dirs: list[Path], dataset: str | None, model: str | None, columns: list[str] | None,
           tuned: bool) -> str:
    """The markdown of the leaderboard (or, with `tuned`, the tuned-vs-default tables) of `dirs`.
    ValueError with one line for a column the leaderboard does not have or nothing to show."""
    from regbench.report.collect import collect
    from regbench.report.summarize import summarize
    from regbench.report.table import display_rows
    from regbench.report.tuned import tuned_rows, tuned_table

    found = collect(dirs)
    if not found.runs.size:
        raise ValueError(f"no completed run under {', '.join(map(str, dirs))}")
    board = summarize(found.runs)
    if tuned:
        table, _ = tuned_table(found.runs, board)
        parts = [(title, header, cells) for title, header, cells in tuned_rows(table)
                 if named(title.split("dataset=")[1].split()[0], dataset)
                 and named(title.split("model=")[1].split()[0], model)] if not table.empty else []
        if not parts:
            raise ValueError("no tuned-vs-default table: the dirs hold no result tuned on validation"
                             + (f" for dataset={dataset}" if dataset else "") + (f" model={model}" if model else ""))
        return "\n".join(f"{title}\n\n{markdown_table(header, cells)}" for title, header, cells in parts)
    board = board[board.shown & board.dataset.map(lambda label: named(label, dataset))
                  & board.model.map(lambda label: named(label, model))]
    if board.empty:
        raise ValueError(f"no row for dataset={dataset} model={model}")
    header, cells, _ = display_rows(board)
    if columns:
        unknown = [name for name in columns if name not in header]
        if unknown:
            raise ValueError(f"--columns: no column {unknown[0]!r}: choose among " + ", ".join(map(repr, header)))
        keep = [header.index(name) for name in columns]
        header, cells = columns, [[row[i] for i in keep] for row in cells]
    return markdown_table(header, cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python docs/reference_table.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="sweep or job dirs (searched for metrics.json)")
    parser.add_argument("--dataset", help="only rows of this dataset (its name, without settings)")
    parser.add_argument("--model", help="only rows of this model (its name, without settings)")
    parser.add_argument("--columns", nargs="+", metavar="COLUMN", help="columns of leaderboard.md to keep, in order")
    parser.add_argument("--tuned", action="store_true", help="the tuned-vs-default table instead")
    args = parser.parse_args(argv)
    missing = [d for d in args.dirs if not d.exists()]
    if missing:
        print(f"reference_table: error: no such directory: {missing[0]}", file=sys.stderr)
        return 2
    if args.tuned and args.columns:
        print("reference_table: error: --columns applies to the leaderboard, not to --tuned", file=sys.stderr)
        return 2
    try:
        print(tables(args.dirs, args.dataset, args.model, args.columns, args.tuned), end="")
    except ValueError as error:
        print(f"reference_table: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
