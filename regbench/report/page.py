"""The report page: report.md and a self-contained report.html (pictures embedded) in a sweep dir.

What was run (command lines, settings, versions, hosts, wall time), the leaderboard (table.py), the
pictures (plots.py) and the jobs without a row. Built from the files on disk, like the leaderboard.
"""
from __future__ import annotations

import base64
import html
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd

from regbench.report.collect import NOT_APPLICABLE, BadFile, collect, find_metrics, read_record
from regbench.report.lessons import draw_lessons, lesson_tables
from regbench.report.plots import PLOT_DIR, Picture, draw_all
from regbench.report.summarize import summarize
from regbench.report.table import NOTES, baseline_notes, display_rows, markdown, version_notes
from regbench.report.tuned import TUNED_NOTES, tuned_markdown, tuned_rows, tuned_table
from regbench.results import write_atomic

TITLE = "regbench report"


@dataclass
class Job:
    path: str
    status: str
    technique: str
    command: str
    setting: str
    versions: str
    host: str
    device: str
    wall_seconds: float | None


def jobs(dirs: Iterable[Path]) -> list[Job]:
    """Every readable metrics.json under `dirs`, as the page's 'what was run' lines, by path."""
    found = []
    for path in find_metrics(dirs):
        try:
            _, record = read_record(path)
        except BadFile:
            continue  # the leaderboard already names it
        overrides = record.get("overrides") or []
        versions = record.get("versions") or {}
        wall = record.get("wall_seconds")
        found.append(Job(path=str(path.parent), status=record["status"],
                         technique=str(record.get("technique") or "?"),
                         command="regbench " + " ".join(map(str, overrides)),
                         setting=str((record.get("labels") or {}).get("setting") or ""),
                         versions=" ".join(f"{k} {v}" for k, v in sorted(versions.items())) or "?",
                         host=str(record.get("host") or "?"), device=str(record.get("device") or "?"),
                         wall_seconds=wall if isinstance(wall, (int, float)) else None))
    return sorted(found, key=lambda job: job.path)


def what_was_run(found: list[Job]) -> list[str]:
    """Markdown lines: the jobs' command lines and statuses, then what they share (versions, hosts)."""
    total = sum(job.wall_seconds or 0.0 for job in found)
    lines = [f"{len(found)} jobs, {total:.1f} s of training in all (the sum of the jobs' wall times).", "",
             "| job | status | command | setting | wall time (s) |", "|---|---|---|---|---|"]
    for job in found:
        wall = "—" if job.wall_seconds is None else f"{job.wall_seconds:.1f}"
        cells = [f"`{Path(job.path).name}`", job.status, f"`{job.command}`", job.setting or "—", wall]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    for name, values in (("versions", {j.versions for j in found}), ("hosts", {j.host for j in found}),
                         ("devices", {j.device for j in found})):
        lines.append(f"- {name}: " + "; ".join(sorted(values)))
    return lines


def problems(board: pd.DataFrame, unfinished: list[dict]) -> list[str]:
    """Markdown lines for rows with diverged seeds and the jobs without a row (failed, not applicable)."""
    lines = []
    for _, row in board[board.diverged > 0].iterrows():
        lines.append(f"- diverged: {row.technique} {row.setting}".rstrip()
                     + f" ({row.dataset}, {row.model}): {row.diverged} of {row.seeds + row.diverged} seeds, "
                       "left out of its numbers and counted against its rank")
    for u in unfinished:
        kind = "not applicable" if u["status"] == NOT_APPLICABLE else u["status"]
        lines.append(f"- {kind}: {u['technique']} (`{u['path']}`)" + (f": {u['error']}" if u["error"] else ""))
    return lines or ["None: every job completed and no seed diverged."]


def build_report(dirs: Iterable[Path | str], out_dir: Path | str | None = None) -> list[Path]:
    """Draw the pictures into <out>/report/ and write <out>/report.md and <out>/report.html; returns the
    written files. Nothing is written when no run completed (ValueError says so)."""
    dirs = [Path(d) for d in dirs]
    out = Path(out_dir) if out_dir is not None else dirs[0]
    found = collect(dirs)
    board = summarize(found.runs)
    if board.empty:
        raise ValueError(f"no completed run under {', '.join(map(str, dirs))}")
    tuned = tuned_table(found.runs, board)
    board = board[board.shown]  # a tuned grid: its default and tuned rows (leaderboard.csv has the rest)
    pictures = draw_all(board, found.runs, out / PLOT_DIR) + draw_lessons(board, found.runs, out / PLOT_DIR)
    lessons = lesson_tables(board, found.runs)
    ran = jobs(dirs)
    md = page_markdown(board, found.unfinished, pictures, ran, out, tuned, lessons)
    write_atomic(out / "report.md", md)
    write_atomic(out / "report.html", page_html(board, found.unfinished, pictures, ran, tuned, lessons))
    return [out / "report.md", out / "report.html", *[p.path for p in pictures]]


def page_markdown(board: pd.DataFrame, unfinished: list[dict], pictures: list[Picture], ran: list[Job],
                  out: Path, tuned: tuple[pd.DataFrame, list[str]] | None = None,
                  lessons: list[tuple[str, list[str]]] = ()) -> str:
    lines = [f"# {TITLE}", "", "## What was run", "", *what_was_run(ran), "",
             "## Leaderboard", "", markdown(board, []).rstrip(), ""]
    if tuned is not None and not tuned[0].empty:
        lines += [tuned_markdown(*tuned, level=2)]
    for title, table in lessons:
        lines += [f"## {title}", "", *table, ""]
    lines += ["## Pictures", ""]
    for picture in pictures:
        link = picture.path.relative_to(out).as_posix() if picture.path.is_relative_to(out) else str(picture.path)
        lines += [f"### {picture.title}", "", f"![{picture.title}]({link})", "", picture.caption + ".", ""]
    lines += ["## Failed, diverged and not applicable", "", *problems(board, unfinished), ""]
    return "\n".join(lines)


def md_inline(text: str) -> str:
    """HTML of a line with `code` spans (the only markdown the generated lines use)."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def html_table(header: list[str], cells: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{md_inline(c)}</td>" for c in row) + "</tr>" for row in cells)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def md_table_lines(lines: list[str]) -> str:
    """The markdown tables `what_was_run` writes, as HTML (other lines as paragraphs or list items)."""
    out, table = [], []

    def flush() -> None:
        if table:
            rows = [[c.strip().replace("\\|", "|") for c in line.strip("|").split(" | ")] for line in table]
            out.append(html_table(rows[0], rows[2:]))
            table.clear()

    for line in lines:
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("- "):
            out.append(f"<li>{md_inline(line[2:])}</li>")
        elif line:
            out.append(f"<p>{md_inline(line)}</p>")
    flush()
    return "\n".join(out)


STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;
text-align:left}th{background:#f3f3f3}code{font-size:12px}img{max-width:100%;border:1px solid #eee}
figcaption{font-size:13px;color:#555}"""


def page_html(board: pd.DataFrame, unfinished: list[dict], pictures: list[Picture], ran: list[Job],
              tuned: tuple[pd.DataFrame, list[str]] | None = None,
              lessons: list[tuple[str, list[str]]] = ()) -> str:
    header, cells, _ = display_rows(board)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{TITLE}</title>",
             f"<style>{STYLE}</style></head><body><h1>{TITLE}</h1>",
             "<h2>What was run</h2>", md_table_lines(what_was_run(ran)),
             "<h2>Leaderboard</h2>", html_table(header, cells), f"<p>{md_inline(NOTES)}</p>",
             *[f"<p>{md_inline(line)}</p>" for line in baseline_notes(board) + version_notes(board)]]
    if tuned is not None and not tuned[0].empty:
        parts.append("<h2>Tuned on validation vs default</h2>")
        for title, tuned_header, tuned_cells in tuned_rows(tuned[0]):
            parts += [f"<h3>{html.escape(title)}</h3>", html_table(tuned_header, tuned_cells)]
        parts += [f"<p>{md_inline(TUNED_NOTES)}</p>", *[f"<p>{md_inline(note)}</p>" for note in tuned[1]]]
    for title, table in lessons:
        parts += [f"<h2>{html.escape(title)}</h2>", md_table_lines(table)]
    parts.append("<h2>Pictures</h2>")
    for picture in pictures:
        data = base64.b64encode(picture.path.read_bytes()).decode()
        parts.append(f"<figure><h3>{html.escape(picture.title)}</h3>"
                     f"<img alt='{html.escape(picture.title)}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{html.escape(picture.caption)}.</figcaption></figure>")
    parts += ["<h2>Failed, diverged and not applicable</h2>", md_table_lines(problems(board, unfinished)),
              "</body></html>"]
    return "\n".join(parts) + "\n"


def report_quietly(dirs: Iterable[Path | str], out_dir: Path | str | None = None) -> list[Path]:
    """build_report for the end of a sweep: never raises; a failure is one line on stderr."""
    try:
        return build_report(dirs, out_dir)
    except Exception as error:
        print(f"{TITLE}: not built ({type(error).__name__}: {error})", file=sys.stderr)
        return []

