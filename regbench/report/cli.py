"""The entry points: `show_leaderboard` (collect → summarize → render → files), the Hydra callback that
runs it at the end of a multirun, and the `regbench-leaderboard` command.

Importing this module is cheap: Hydra instantiates the callback in every process that composes the
config (a single run, each worker of a parallel launcher), and those must not pay for pandas and scipy
(~0.5 s) before they train. The table's modules are imported where a leaderboard is built."""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from regbench.jobs import older_results, read_record
from regbench.progress import clock
from regbench.report import TITLE
from regbench.results import write_atomic


def empty_board():
    import pandas as pd
    from regbench.report.summarize import BOARD_COLUMNS

    return pd.DataFrame(columns=BOARD_COLUMNS)


@dataclass
class Summary:
    """A built leaderboard. statuses: status -> number of usable job files; unfinished: {path, status,
    error} per failed/interrupted/running job; skipped: (path, reason) per file that could not be used."""
    board: Any = field(default_factory=empty_board)  # a pandas DataFrame (regbench.report.summarize)
    statuses: dict[str, int] = field(default_factory=dict)
    unfinished: list[dict] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    written: Path | None = None   # the dir leaderboard.{csv,md} went to

    @property
    def empty(self) -> bool:
        return self.board.empty


def nothing_to_show(dirs: list[Path], summary: Summary, write: bool) -> str:
    """The one line printed instead of a table: what was found, and the first error if a job failed."""
    from regbench.report.collect import NOT_APPLICABLE

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
                     write: bool = True, by: str | None = None) -> Summary:
    """Build the leaderboard from `dirs`, print it and (if `write`) save leaderboard.{csv,md} in `out_dir`
    (default: the first dir). Skipped files get one warning line each on stderr. With nothing to show,
    one line on stderr and no file is written or touched. `by` (a config key) adds the pivot of Δ by
    that key's values (regbench.report.pivot), printed and saved as leaderboard_by_<key>.{csv,md};
    NoSuchKey (a ValueError) when no run has the key, before anything is printed."""
    from regbench.report.collect import collect
    from regbench.report.pivot import pivot, pivot_markdown, print_pivot
    from regbench.report.summarize import summarize
    from regbench.report.table import board_csv, markdown, print_table, terminal
    from regbench.report.tuned import print_tuned, tuned_markdown, tuned_table

    dirs = [Path(d) for d in dirs]
    found = collect(dirs, by=by)
    by_table = pivot(found.runs, by) if by is not None and found.runs.size else None
    summary = Summary(summarize(found.runs), found.statuses, found.unfinished, found.skipped)
    for path, reason in summary.skipped:
        print(f"warning: skipping {path}: {reason}", file=sys.stderr)
    if summary.empty:
        print(nothing_to_show(dirs, summary, write), file=sys.stderr)
        return summary
    print_table(summary.board, summary.unfinished)
    tuned, notes = tuned_table(found.runs, summary.board)
    if not tuned.empty or notes:
        print_tuned(terminal(), tuned, notes)
    if write:
        out = Path(out_dir) if out_dir is not None else dirs[0].parent if dirs[0].is_file() else dirs[0]
        write_atomic(out / "leaderboard.csv", board_csv(summary.board))
        write_atomic(out / "leaderboard.md", markdown(summary.board, summary.unfinished))
        summary.written = out
        if not tuned.empty or notes:
            write_atomic(out / "leaderboard_tuned.csv", tuned.to_csv(index=False))
            write_atomic(out / "leaderboard_tuned.md", tuned_markdown(tuned, notes))
    if by_table is not None:
        print_pivot(terminal(), by_table, by)
        if write:
            write_atomic(out / f"leaderboard_by_{by}.csv", by_table.to_csv(index=False))
            write_atomic(out / f"leaderboard_by_{by}.md", pivot_markdown(by_table, by))
    return summary


def budget(sweep_dir: Path, started: float) -> dict[str, int]:
    """What was trained under `sweep_dir` since `started` (time.time()), from the finished results written
    since then (results a rerun skipped do not count): `results` metrics.json files (one per job, and per
    value of a grid job), `configs` distinct configs, `runs` (config, seed) pairs, `networks` the networks
    trained for them (an ensemble's run counts its members; a seed two jobs trained counts twice), `members`
    the networks that are ensemble members, `seeds` the seeds per config where every config has as many
    (else 0)."""
    results, configs, networks, members = 0, {}, 0, 0
    for path in sweep_dir.glob("**/metrics.json"):
        record = read_record(path) or {}
        finished = record.get("finished_at")
        if not isinstance(finished, (int, float)) or finished < started:
            continue
        results += 1
        runs = record.get("runs") or []
        configs.setdefault(record.get("config_hash"), set()).update(run.get("seed") for run in runs)
        for run in runs:
            ensemble = run.get("member_test_accs") or run.get("member_test_losses") or [None]
            networks += len(ensemble)
            members += len(ensemble) if len(ensemble) > 1 else 0
    seeds = {len(s) for s in configs.values()}
    return {"networks": networks, "runs": sum(len(s) for s in configs.values()), "configs": len(configs),
            "results": results, "seeds": seeds.pop() if len(seeds) == 1 else 0, "members": members}


def budget_line(counts: dict[str, int], wall: float) -> str:
    """'trained 6 networks (2 configs × 3 seeds) in 0:12 wall, as 6 results (a result: one config's seeds
    trained by one job, its metrics.json)'."""
    shape = (f"{counts['configs']} configs × {counts['seeds']} seeds" if counts["seeds"]
             else f"{counts['runs']} seeds of {counts['configs']} configs")
    if counts["members"]:
        shape += ", an ensemble's seed counting its members"
    return (f"{TITLE}: trained {counts['networks']} networks ({shape}) in {clock(wall)} wall, as "
            f"{counts['results']} results (a result: one config's seeds trained by one job, its metrics.json)")


class LeaderboardCallback(Callback):
    """At the end of a multirun, build the leaderboard from the job dirs on disk into the sweep dir.

    The sweep dir and the last Summary are class attributes (Hydra makes the instance; tests and the
    app read the result here). Never raises: Hydra would print a raising callback's traceback.
    """
    sweep_dir: Path | None = None
    summary: Summary | None = None
    started: float | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        LeaderboardCallback.started = time.time()
        try:
            LeaderboardCallback.sweep_dir = Path(config.hydra.sweep.dir)
            older = older_results(LeaderboardCallback.sweep_dir)
            if older:
                print(f"{TITLE}: {older} results in {LeaderboardCallback.sweep_dir} were stored under an older "
                      "identity: they stay as they are, in rows of their own; this sweep trains their configs "
                      "again", file=sys.stderr)
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
        if LeaderboardCallback.started is not None:
            try:
                counts = budget(sweep_dir, LeaderboardCallback.started)
                print(budget_line(counts, time.time() - LeaderboardCallback.started))
            except Exception as error:
                print(f"{TITLE}: budget not counted ({type(error).__name__}: {error})", file=sys.stderr)
        summary = LeaderboardCallback.summary
        if not summary.empty:
            written: list[Path] = []
            try:  # loads matplotlib: only here, never in a job
                from regbench.report.page import report_quietly
            except Exception as error:
                print(f"regbench report: not built ({type(error).__name__}: {error})", file=sys.stderr)
            else:
                written = report_quietly([sweep_dir], out_dir=sweep_dir)
            print(where(summary, written))


def where(summary: Summary, report: list[Path]) -> str:
    """The last line of a sweep or a rebuild: where to look ('regbench: report in DIR/report.html, ...')."""
    html = next((path for path in report if Path(path).suffix == ".html"), None)
    board = f"leaderboard in {summary.written / 'leaderboard.md'} (and .csv)" if summary.written else ""
    if html is not None:
        pictures = sum(Path(path).suffix == ".png" for path in report)
        return f"regbench: report in {html} ({pictures} pictures)" + (f"; {board}" if board else "")
    return f"regbench: {board}" if board else ""


def cli(argv: list[str] | None = None) -> int:
    """`regbench-leaderboard DIR... [--out DIR]`: 0 when a table was built, 1 when there was nothing to
    show (or it could not be written), 2 for a dir that does not exist."""
    parser = argparse.ArgumentParser(prog="regbench-leaderboard",
                                     description="Rebuild a leaderboard from regbench job dirs.")
    parser.add_argument("dirs", nargs="+", type=Path, help="sweep or job dirs (searched for metrics.json)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write leaderboard.{csv,md} (default: the first dir)")
    parser.add_argument("--report", action="store_true",
                        help="also draw the pictures (report/*.png) and write report.md and report.html")
    parser.add_argument("--by", metavar="KEY", default=None,
                        help="also show Δ per technique for each value of this resolved config key "
                             "(e.g. model.hidden) side by side, and the difference of the Δs")
    args = parser.parse_args(argv)
    from regbench.report.pivot import NoSuchKey

    missing = [d for d in args.dirs if not d.exists()]
    for directory in missing:
        print(f"regbench-leaderboard: error: no such directory: {directory}", file=sys.stderr)
    if missing:
        return 2
    try:
        summary = show_leaderboard(args.dirs, out_dir=args.out, by=args.by)
    except NoSuchKey as error:
        print(f"regbench-leaderboard: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # --out not writable, disk full
        print(f"regbench-leaderboard: error: cannot write the leaderboard: {error}", file=sys.stderr)
        return 1
    written: list[Path] = []
    if args.report and not summary.empty:
        from regbench.report.page import build_report
        try:
            written = build_report(args.dirs, out_dir=args.out)
        except OSError as error:
            print(f"regbench-leaderboard: error: cannot write the report: {error}", file=sys.stderr)
            return 1
    if not summary.empty:
        print(where(summary, written))
    return 1 if summary.empty else 0


if __name__ == "__main__":
    sys.exit(cli())
