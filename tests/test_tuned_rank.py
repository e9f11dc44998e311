"""The tuned-vs-default table ranks as the leaderboard does: a diverged seed counts against its row."""
from __future__ import annotations

import pandas as pd
import pytest

from regbench.report.tuned import tuned_table


def test_a_technique_with_a_diverged_reporting_seed_ranks_below_clean_ones():
    board = pd.DataFrame({
        "dataset": ["d"] * 4, "model": ["m"] * 4, "technique": ["none", "a", "b", "b"],
        "setting": ["", "", "", "tuned b.k=2"], "config": ["n", "a", "b0", "bt"],
        "config_hash": ["n", "a", "b0", "bt"], "baseline_hash": ["n"] * 4,
        "is_baseline": [True, False, False, False], "test_acc_mean": [0.5] * 4,
        "grid": [None, None, "g", None], "grid_default": [False, False, True, False],
        "tuned": [None, None, None, "b.k=2"], "tuned_grid": [None, None, None, "g"],
        "tuned_default": [None, None, None, "b0"]})
    accuracy = {"n": 0.50, "a": 0.90, "b0": 0.55, "bt": 0.70}
    runs = pd.DataFrame([{"config_hash": h, "seed": s, "diverged": h == "a" and s == 4,
                          "test_acc": 0.1 if h == "a" and s == 4 else acc, "test_loss": 1.0}
                         for h, acc in accuracy.items() for s in (3, 4)])
    table = tuned_table(runs, board)[0].set_index("technique")
    # a: 0.90 on its surviving seed, the best mean, but (0.90 + 0) / 2 = 0.45 over both: below none's 0.50
    a = table.loc["a"]
    assert (a.default_mean, a.default_seeds, a.default_score) == (pytest.approx(0.90), 1, pytest.approx(0.45))
    assert table.default_rank.to_dict() == {"b": 1, "none": 2, "a": 3}
    assert table.tuned_rank.to_dict() == {"b": 1, "none": 2, "a": 3}
