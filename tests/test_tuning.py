"""A fair comparison: a grid's value chosen on validation over the selection seeds, reported on the others
(regbench.tuning), the tuned suite, and the tuned-vs-default table."""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from regbench import tuning
from regbench.app import execute
from regbench.config import ConfigError
from regbench.experiment import Experiment
from regbench.identity import config_hash
from regbench.regularizers import REGULARIZERS
from regbench.report.collect import collect
from regbench.report.summarize import summarize
from regbench.report.tuned import tuned_table
from tests.conftest import run_cli


def runs(seeds, **metrics):
    """Runs of `seeds` with every metric given as one value per seed."""
    return [{"seed": seed, "diverged": False, **{k: v[i] for k, v in metrics.items()}} for i, seed in enumerate(seeds)]


def test_the_best_validation_mean_over_the_selection_seeds_wins_whatever_test_says():
    # point 0 is best on validation; point 1 on test and train; point 2 on validation only on seed 5,
    # which does not choose
    points = [runs([0, 1, 5], val_acc=[0.7, 0.7, 0.1], test_acc=[0.1, 0.1, 0.1], train_acc=[0.1, 0.1, 0.1]),
              runs([0, 1, 5], val_acc=[0.6, 0.6, 0.1], test_acc=[0.9, 0.9, 0.9], train_acc=[0.9, 0.9, 0.9]),
              runs([0, 1, 5], val_acc=[0.5, 0.5, 0.99], test_acc=[0.5, 0.5, 0.5], train_acc=[0.5, 0.5, 0.5])]
    chosen, scores, metric = tuning.select(points, [0, 1])
    assert (chosen, metric) == (0, "val_acc") and scores == pytest.approx([0.7, 0.6, 0.5])


def test_regression_chooses_the_lowest_validation_loss_and_a_tie_the_default_or_the_earlier_value():
    points = [runs([0], val_loss=[0.5], val_acc=[None]), runs([0], val_loss=[0.2], val_acc=[None]),
              runs([0], val_loss=[0.2], val_acc=[None])]
    assert tuning.select(points, [0])[:1] == (1,)
    assert tuning.select(points, [0], default=2)[0] == 2     # tied with the best: no reason to move
    assert tuning.select(points, [0], default=0)[0] == 1     # worse than the best: moved away from
    tied = [runs([0], val_acc=[0.5]), runs([0], val_acc=[0.5])]
    assert tuning.select(tied, [0])[0] == 0


def test_a_diverged_or_missing_selection_seed_rules_a_value_out():
    diverged = runs([0, 1], val_acc=[0.9, 0.9])
    diverged[1]["diverged"] = True
    points = [diverged, runs([0], val_acc=[0.99]), runs([0, 1], val_acc=[0.3, float("nan")]),
              runs([0, 1], val_acc=[0.2, 0.2])]
    chosen, scores, _ = tuning.select(points, [0, 1])
    assert chosen == 3 and [math.isnan(s) for s in scores] == [True, True, True, False]
    assert tuning.select(points[:3], [0, 1])[0] is None


@pytest.fixture
def tuned_job(make_cfg, tmp_path):
    """A grid job with selection: 3 values x 4 seeds, seeds 0-1 choose, 2-3 report."""
    overrides = ["regularizer=l2", "regularizer.l2.strength=[1e-4,1e-3,0.3]", "replicates=4",
                 "selection_seeds=2"]
    return execute(make_cfg(*overrides), tmp_path, overrides, multirun=True), make_cfg(*overrides)


@pytest.mark.slow
def test_a_grid_job_with_selection_writes_the_chosen_value_on_the_other_seeds(tuned_job):
    record, cfg = tuned_job
    tuned = record["tuned"]
    on_disk = json.loads((Path(tuned["job_dir"]) / "metrics.json").read_text())
    assert {**on_disk, "job_dir": tuned["job_dir"]} == tuned and on_disk["status"] == "completed"
    means = [sum(run["val_acc"] for run in point["runs"] if run["seed"] in (0, 1)) / 2 for point in record["points"]]
    best = max(range(3), key=means.__getitem__)
    chosen = record["points"][best]
    assert on_disk["tuned"]["chosen"] == {"regularizer.l2.strength": (1e-4, 1e-3, 0.3)[best]}
    assert on_disk["tuned"]["chosen_hash"] == chosen["config_hash"] and on_disk["tuned"]["selection_seeds"] == [0, 1]
    assert on_disk["runs"] == [run for run in chosen["runs"] if run["seed"] in (2, 3)]
    # the chosen value's curves, for the tuned row's pictures (which read its seeds from them)
    assert (Path(tuned["job_dir"]) / "curves.csv").read_bytes() == (Path(chosen["job_dir"]) / "curves.csv").read_bytes()
    assert on_disk["labels"]["setting"] == f"tuned strength={(1e-4, 1e-3, 0.3)[best]} trainer.epochs=3"
    # the default point (1e-3) is marked, so the tuned table puts the two side by side
    assert [point["grid"]["default"] for point in record["points"]] == [False, True, False]
    assert on_disk["tuned"]["default_hash"] == config_hash(_point_cfg(cfg, 1e-3))
    # its identity: the grid and the seeds that chose, never a point's own
    assert on_disk["config_hash"] not in {point["config_hash"] for point in record["points"]}
    assert on_disk["baseline_hash"] == chosen["baseline_hash"]


def _point_cfg(cfg, value):
    point = copy.deepcopy(cfg)
    point.regularizer.l2.strength = value
    return point


@pytest.mark.slow
def test_test_metrics_never_reach_the_choice(tuned_job):
    record, _ = tuned_job
    grid = {"regularizer.l2.strength": [1e-4, 1e-3, 0.3]}
    chosen_hash = record["tuned"]["tuned"]["chosen_hash"]
    chosen = record["tuned"]["tuned"]["chosen"]
    scrambled = copy.deepcopy(record["points"])
    for point in scrambled:   # make every other point the best on test, train and gap
        better = point["config_hash"] != chosen_hash
        for run in point["runs"]:
            run.update(test_acc=float(better), train_acc=float(better), test_loss=float(not better),
                       gap_acc=0.0, train_loss=float(not better))
    assert tuning.tuned_record(record, scrambled, grid, 2, "")["tuned"]["chosen"] == chosen
    # while validation on the selection seeds (0 and 1) does decide, and on the reporting seeds does not
    first, second = [i for i, point in enumerate(scrambled) if point["config_hash"] != chosen_hash]
    for run in scrambled[first]["runs"]:
        if run["seed"] in (2, 3):
            run["val_acc"] = 1.0
    assert tuning.tuned_record(record, scrambled, grid, 2, "")["tuned"]["chosen"] == chosen
    for run in scrambled[second]["runs"]:
        if run["seed"] in (0, 1):
            run["val_acc"] = 1.0
    moved = {"regularizer.l2.strength": grid["regularizer.l2.strength"][second]}
    assert moved != chosen and tuning.tuned_record(record, scrambled, grid, 2, "")["tuned"]["chosen"] == moved


@pytest.mark.slow
def test_selection_must_leave_seeds_to_report_on(make_cfg):
    with pytest.raises(ConfigError, match=r"selection_seeds=2 leaves no seed to report .* replicates=2"):
        Experiment.from_config(make_cfg("regularizer=l2", "regularizer.l2.strength=[1e-4,1e-3]", "selection_seeds=2"))
    with pytest.raises(ConfigError, match="selection_seeds=0"):
        Experiment.from_config(make_cfg("selection_seeds=0"))
    assert Experiment.from_config(make_cfg("selection_seeds=1")).selection_seeds == 1  # no grid: nothing to choose


@pytest.mark.slow
def test_the_leaderboard_shows_a_tuned_grid_as_its_default_and_tuned_rows(tuned_job, tmp_path):
    found = collect([tmp_path])
    board = summarize(found.runs)
    assert len(board) == 4
    shown = board[board.shown]
    assert sorted(shown.setting) == sorted(["trainer.epochs=3", shown[shown.tuned.notna()].setting.iloc[0]])
    table, notes = tuned_table(found.runs, board)
    (row,) = table.itertuples()
    assert notes == []
    assert row.technique == "l2" and row.seeds == "2 3" and row.default_seeds == row.tuned_seeds == 2
    tuned_runs = found.runs[found.runs.config_hash == tuned_job[0]["tuned"]["config_hash"]]
    assert row.tuned_mean == pytest.approx(tuned_runs.test_acc.mean())
    default_runs = found.runs[found.runs.config_hash.str.startswith(row.default_config) & found.runs.seed.isin([2, 3])]
    assert row.default_mean == pytest.approx(default_runs.test_acc.mean())   # on the reporting seeds only


def toy_board(rows: list[tuple]) -> pd.DataFrame:
    """A summarized board of one dataset and model: (technique, setting, config_hash, grid, grid_default,
    tuned, tuned_grid, tuned_default) per row, all against baseline `n`."""
    columns = ["technique", "setting", "config_hash", "grid", "grid_default", "tuned", "tuned_grid", "tuned_default"]
    board = pd.DataFrame(rows, columns=columns)
    return board.assign(dataset="d", model="m", config=board.config_hash, baseline_hash="n",
                        is_baseline=board.config_hash == "n", test_acc_mean=0.5)


def toy_runs(accuracy: dict[str, float], seeds: dict[str, list[int]]) -> pd.DataFrame:
    return pd.DataFrame([{"config_hash": h, "seed": s, "diverged": False, "test_acc": acc + 0.01 * s, "test_loss": 1.0}
                         for h, acc in accuracy.items() for s in seeds.get(h, [3, 4])])


def test_a_technique_tuned_twice_in_one_comparison_is_left_out_with_a_note():
    """Merged sweeps that chose on other seeds: which tuned row to show is not for the test set to say."""
    board = toy_board([("none", "", "n", None, False, None, None, None),
                       ("b", "", "b0", "g", True, None, None, None),
                       ("b", "tuned k=1", "bt1", None, False, "b.k=1", "g", "b0"),
                       ("b", "tuned k=2", "bt2", None, False, "b.k=2", "g2", "b0"),
                       ("c", "", "c0", "h", True, None, None, None),
                       ("c", "tuned k=3", "ct", None, False, "c.k=3", "h", "c0")])
    runs = toy_runs({"n": 0.5, "b0": 0.52, "bt1": 0.6, "bt2": 0.9, "c0": 0.5, "ct": 0.55},
                    {"bt1": [3, 4], "bt2": [6, 7]})
    table, notes = tuned_table(runs, board)
    assert list(table.technique) == ["c", "b", "none"] and table.chosen.isna().tolist() == [False, True, True]
    assert table.set_index("technique").loc["b"].default_config == "b0"
    assert len(notes) == 1 and "b has 2 tuned results" in notes[0]


def test_tuned_rows_reporting_on_different_seeds_are_compared_on_the_seeds_they_share():
    board = toy_board([("none", "", "n", None, False, None, None, None),
                       ("b", "tuned k=1", "bt", None, False, "b.k=1", "g", None),
                       ("c", "tuned k=3", "ct", None, False, "c.k=3", "h", None)])
    runs = toy_runs({"n": 0.5, "bt": 0.6, "ct": 0.7}, {"n": [3, 4, 5], "bt": [3, 4], "ct": [4, 5]})
    table, notes = tuned_table(runs, board)
    assert set(table.seeds) == {"4"} and set(table.tuned_seeds.dropna()) == {1}
    assert "compared on the seeds they share (4)" in notes[0]


def test_tuned_ranks_compare_every_technique_on_the_same_footing():
    board = pd.DataFrame({
        "dataset": ["d"] * 5, "model": ["m"] * 5, "technique": ["none", "a", "b", "b", "a"],
        "setting": ["", "", "", "tuned b.k=2", "x"], "config": ["n", "a", "b0", "bt", "a2"],
        "config_hash": ["n", "a", "b0", "bt", "a2"], "baseline_hash": ["n"] * 5,
        "is_baseline": [True, False, False, False, False], "test_acc_mean": [0.5] * 5,
        "grid": [None, None, "g", None, None], "grid_default": [False, False, True, False, False],
        "tuned": [None, None, None, "b.k=2", None], "tuned_grid": [None, None, None, "g", None],
        "tuned_default": [None, None, None, "b0", None]})
    accuracy = {"n": 0.50, "a": 0.60, "b0": 0.55, "bt": 0.70, "a2": 0.99}
    seeds = [3, 4]
    runs = pd.DataFrame([{"config_hash": h, "seed": s, "diverged": False, "test_acc": acc + 0.01 * s,
                          "test_loss": 1.0} for h, acc in accuracy.items() for s in seeds])
    table = tuned_table(runs, board)[0].set_index("technique")
    # a2 is `a` at another setting: not its default, so not in the table
    assert list(table.index) == ["b", "a", "none"]
    assert table.loc["b"].default_rank == 2 and table.loc["b"].tuned_rank == 1 and table.loc["b"].chosen == "b.k=2"
    assert table.loc["a"].default_rank == 1 and table.loc["a"].tuned_rank == 2
    assert table.loc["b"].tuned_delta_mean == pytest.approx(0.20)


@pytest.mark.slow
def test_the_tuned_suite_grids_hold_each_default_and_cover_every_technique(make_cfg):
    cfg = make_cfg("+suite=tuned", hydra=True, smoke=False)
    swept = cfg.hydra.sweeper.params.regularizer.split(",")
    assert sorted(swept) == sorted(REGULARIZERS)
    assert cfg.replicates == 6 and cfg.selection_seeds == 3
    tuned = 0
    for technique in swept:
        experiment = Experiment.from_config(make_cfg("+suite=tuned", f"regularizer={technique}", smoke=False))
        if not experiment.grid:
            continue
        tuned += 1
        alone = Experiment.from_config(make_cfg(f"regularizer={technique}"))
        default = {key: getattr(alone.regularizers[0], key.split(".")[-1]) for key in experiment.grid}
        assert default in experiment.points, technique
    assert tuned == len([c for c in REGULARIZERS.values() if c.member_knobs])


@pytest.mark.slow
def test_the_tuned_suite_runs_end_to_end(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli("+suite=tuned", "subset=smoke", "trainer.epochs=2", "replicates=3", "selection_seeds=1",
                     'hydra.sweeper.params.regularizer="none,dropout,ensemble"', f"hydra.sweep.dir={sweep}",
                     cwd=tmp_path, env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr[-2000:]
    table = pd.read_csv(sweep / "leaderboard_tuned.csv").set_index("technique")
    assert set(table.index) == {"none", "dropout", "ensemble"}
    assert table.loc["dropout"].chosen.startswith("regularizer.dropout.p=") and pd.isna(table.loc["ensemble"].chosen)
    assert table.loc["dropout"].seeds == "1 2"
    board = pd.read_csv(sweep / "leaderboard.csv")
    assert len(board) == 2 + 5 + 1 and board.shown.sum() == 4   # none, ensemble, 5 dropout values, tuned
    assert "tuned on validation vs default" in result.stdout
    # 3 seeds: none 3 + dropout 5 x 3 + ensemble 5 members x 3
    assert "trained 33 networks (7 configs × 3 seeds, an ensemble's seed counting its members) in" in result.stdout
    assert "wall, as 7 results (a result: one config's seeds trained by one job, its metrics.json)" in result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines() if "│" in line)


@pytest.mark.slow
def test_the_report_page_carries_the_tuned_comparison(tuned_job, tmp_path):
    from regbench.report.page import build_report

    build_report([tmp_path], out_dir=tmp_path / "out")
    page = (tmp_path / "out" / "report.md").read_text()
    section = page.split("## Tuned on validation vs default")[1].split("## Pictures")[0]
    chosen = tuned_job[0]["tuned"]["tuned"]["chosen"]["regularizer.l2.strength"]
    assert f"| l2 |" in section and f"regularizer.l2.strength={chosen}" in section and "seeds=2 3" in section
    assert "<h2>Tuned on validation vs default</h2>" in (tmp_path / "out" / "report.html").read_text()
