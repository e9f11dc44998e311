"""Pictures of the chapter's lessons that read across a sweep axis rather than across techniques:
capacity (test error against width, double descent) and memorization (accuracy and time to fit against
label corruption). Each module draws nothing unless the runs hold its axis."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from regbench.report import capacity, memorization


def draw_lessons(plt, board: pd.DataFrame, runs: pd.DataFrame, out_dir: Path) -> list:
    """Every lesson picture the runs allow (a list of plots.Picture)."""
    return [*capacity.draw(plt, board, runs, out_dir), *memorization.draw(plt, board, runs, out_dir)]
