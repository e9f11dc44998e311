"""Leaderboard math on hand-made metrics.json files, and the regbench-leaderboard command."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from regbench.leaderboard import collect, describe, show_leaderboard, summarize
from tests.conftest import run_cli

T_975_2 = 4.302652729749464  # Student t quantile, 2 degrees of freedom


def write_job(root: Path, name: str, technique: str, accs: dict[int, tuple[float, float]],
              overrides: list[str] | None = None, status: str = "completed") -> None:
    """accs: seed -> (train_acc, test_acc); losses are 1 - acc so both gaps are easy to check."""
    runs = [{"seed": seed, "train_acc": tr, "test_acc": te, "val_acc": te,
             "train_loss": 1 - tr, "test_loss": 1 - te, "val_loss": 1 - te,
             "gap_acc": tr - te, "gap_loss": tr - te, "epochs": 5, "best_epoch": 5, "diverged": False}
            for seed, (tr, te) in accs.items()]
    record = {"status": status, "error": None if status == "completed" else "boom", "technique": technique,
              "dataset": "mnist1d", "model": "mlp", "overrides": overrides or [f"regularizer={technique}"],
              "runs": runs if status == "completed" else []}
    (root / name).mkdir(parents=True)
    (root / name / "metrics.json").write_text(json.dumps(record))


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    write_job(tmp_path, "0", "none", {0: (1.0, 0.60), 1: (1.0, 0.62), 2: (1.0, 0.64)})
    write_job(tmp_path, "1", "l2", {0: (0.9, 0.70), 1: (0.9, 0.71)})
    write_job(tmp_path, "2", "l2", {2: (0.9, 0.75)})  # another job, same technique: seeds pool
    write_job(tmp_path, "3", "dropout", {5: (0.2, 0.2)})  # no shared seed with the baseline
    write_job(tmp_path, "4", "l1", {}, status="failed")
    return tmp_path


def test_rows_pool_seeds_and_compute_means_cis_and_gaps(sweep):
    runs, failed = collect([sweep])
    board = summarize(runs).set_index("technique")
    assert board.loc["l2", "seeds"] == 3 and board.loc["none", "seeds"] == 3
    assert board.loc["none", "test_acc_mean"] == pytest.approx(0.62)
    assert board.loc["none", "test_acc_ci"] == pytest.approx(T_975_2 * 0.02 / math.sqrt(3))
    assert board.loc["l2", "gap_acc_mean"] == pytest.approx(0.9 - 0.72)
    assert board.loc["l2", "gap_loss_mean"] == pytest.approx(0.9 - 0.72)
    assert [f["error"] for f in failed] == ["boom"]


def test_delta_is_paired_on_matched_seeds(sweep):
    board = summarize(collect([sweep])[0]).set_index("technique")
    # l2 - none per seed: 0.10, 0.09, 0.11
    assert board.loc["l2", "delta_test_acc_mean"] == pytest.approx(0.10)
    assert board.loc["l2", "delta_test_acc_ci"] == pytest.approx(T_975_2 * 0.01 / math.sqrt(3))
    assert board.loc["l2", "delta_seeds"] == 3
    assert board.loc["none", "delta_test_acc_mean"] == pytest.approx(0.0)
    assert math.isnan(board.loc["dropout", "delta_test_acc_mean"]) and board.loc["dropout", "delta_seeds"] == 0


def test_sorted_by_test_accuracy_not_gap(sweep):
    board = summarize(collect([sweep])[0])
    assert list(board.technique) == ["l2", "none", "dropout"]  # dropout has the smallest gap (0) but is last


def test_a_seed_run_twice_counts_once(sweep):
    write_job(sweep, "5", "none", {0: (1.0, 0.60)})
    board = summarize(collect([sweep])[0]).set_index("technique")
    assert board.loc["none", "seeds"] == 3


def test_settings_and_conditions_split_rows():
    overrides = ["regularizer=l2", "seed=1", "regularizer.l2.strength=0.1", "dataset.n_train=250",
                 "model.hidden=[400,400]", "trainer.lr=0.1", "+suite=smoke", "hydra.job.chdir=false",
                 "dataset.data_dir=/x"]
    record = {"dataset": "mnist1d", "model": "mlp", "overrides": overrides}
    assert describe(record) == ("n_train=250", "hidden=[400,400]", "regularizer.l2.strength=0.1 trainer.lr=0.1")


def test_overrides_at_their_default_value_do_not_split_rows():
    config = {"trainer": {"batch_size": 100, "lr": 0.1}, "model": {"hidden": [100, 100]}}
    record = {"dataset": "mnist1d", "model": "mlp", "config": config,
              "overrides": ["trainer.batch_size=100", "trainer.lr=0.1", "model.hidden=[100,100]"]}
    assert describe(record) == ("", "", "trainer.lr=0.1")


def test_baseline_is_the_default_setting_under_the_same_condition(tmp_path):
    write_job(tmp_path, "a", "none", {0: (1.0, 0.5)}, ["dataset.n_train=250"])
    write_job(tmp_path, "b", "none", {0: (1.0, 0.6)})
    write_job(tmp_path, "c", "l2", {0: (0.9, 0.55)}, ["regularizer=l2", "dataset.n_train=250"])
    write_job(tmp_path, "d", "none", {0: (1.0, 0.52)}, ["dataset.n_train=250", "trainer.batch_size=10"])
    board = summarize(collect([tmp_path])[0])
    delta = {(r.dataset, r.technique, r.setting): r.delta_test_acc_mean for r in board.itertuples()}
    assert delta[("mnist1d[n_train=250]", "l2", "")] == pytest.approx(0.05)
    assert delta[("mnist1d[n_train=250]", "none", "trainer.batch_size=10")] == pytest.approx(0.02)


def test_files_are_written_and_unreadable_metrics_are_reported(sweep):
    (sweep / "6").mkdir()
    (sweep / "6" / "metrics.json").write_text("{not json")
    show_leaderboard([sweep], out_dir=sweep)
    csv = pd.read_csv(sweep / "leaderboard.csv")
    assert list(csv.technique) == ["l2", "none", "dropout"]
    md = (sweep / "leaderboard.md").read_text()
    assert "| l2 |" in md and "Failed jobs" in md and "unreadable" in md


def test_cli_rebuilds_from_dirs(sweep, tmp_path):
    out = tmp_path / "board"
    done = run_cli(str(sweep), "--out", str(out), module="regbench.leaderboard")
    assert done.returncode == 0, done.stderr
    assert "l2" in done.stdout and (out / "leaderboard.csv").exists()
    missing = run_cli(str(tmp_path / "nope"), module="regbench.leaderboard")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
