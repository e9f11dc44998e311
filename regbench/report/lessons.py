"""The chapter's lessons that read across a sweep axis rather than across techniques: capacity (test
error against width: double descent, capacity.py) and memorization (accuracy and time to fit against
label corruption: random labels, memorization.py). Each draws and tabulates nothing unless the runs
vary along its axis."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from regbench.report import capacity, memorization
from regbench.report.plots import Picture, pyplot


def draw_lessons(board: pd.DataFrame, runs: pd.DataFrame, out_dir: Path | str) -> list[Picture]:
    """Every lesson picture the runs allow, written as PNGs into `out_dir` (made if missing)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with pyplot() as plt:
        return [*capacity.draw(plt, board, runs, out_dir), *memorization.draw(plt, board, runs, out_dir)]


def lesson_tables(board: pd.DataFrame, runs: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """(heading, markdown lines) of each lesson the runs hold, for the report page."""
    found = [(capacity.TABLE_TITLE, capacity.table_lines(board, runs)),
             ("Random labels", memorization.table_lines(board, runs))]
    return [(title, lines) for title, lines in found if lines]
