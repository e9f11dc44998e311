"""Jobs end to end: the app's own `execute`, the real CLI, and real Hydra launchers in subprocesses."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from regbench.app import execute
from tests.conftest import run_cli

RUN_KEYS = {"seed", "train_acc", "val_acc", "test_acc", "train_loss", "val_loss", "test_loss",
            "gap_acc", "gap_loss", "test_ece", "epochs", "best_epoch", "diverged", "diverged_epoch"}


@pytest.mark.slow
def test_job_writes_metrics_and_curves(make_cfg, tmp_path):
    cfg = make_cfg("regularizer=l2", "replicates=2")
    record = execute(cfg, tmp_path, ["regularizer=l2", "replicates=2"], multirun=False)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert {**on_disk, "job_dir": str(tmp_path)} == record
    assert on_disk["status"] == "completed" and on_disk["error"] is None
    assert on_disk["config_hash"] != on_disk["baseline_hash"] == cfg_hash_of_none(make_cfg)
    assert on_disk["labels"] == {"dataset": "mnist1d[n_train=500]", "model": "mlp",
                                 "setting": "trainer.epochs=3"} and on_disk["seeds"] == [0, 1]
    assert (on_disk["technique"], on_disk["dataset"], on_disk["model"]) == ("l2", "mnist1d", "mlp")
    assert on_disk["overrides"] == ["regularizer=l2", "replicates=2"]
    assert on_disk["config"]["regularizer"]["l2"]["strength"] == cfg.regularizer.l2.strength
    assert set(on_disk["versions"]) >= {"torch", "regbench"} and on_disk["device"] == "cpu"
    assert on_disk["wall_seconds"] > 0
    runs = on_disk["runs"]
    assert [r["seed"] for r in runs] == [0, 1] and all(set(r) == RUN_KEYS for r in runs)
    for r in runs:
        assert r["gap_acc"] == pytest.approx(r["train_acc"] - r["test_acc"])
        assert r["gap_loss"] == pytest.approx(r["test_loss"] - r["train_loss"])
        assert r["epochs"] == 3 and 1 <= r["best_epoch"] <= 3
    curves = pd.read_csv(tmp_path / "curves.csv")
    assert list(curves.epoch) == [3, 3]   # every split is measured every curve_every (5) epochs and at the last
    assert {"epoch", "seed", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc"} <= set(curves)
    last = curves[(curves.epoch == 3) & (curves.seed == 1)].iloc[0]
    assert last.test_acc == pytest.approx(runs[1]["test_acc"])


def cfg_hash_of_none(make_cfg) -> str:
    from regbench.identity import config_hash
    return config_hash(make_cfg("regularizer=none"))


def test_failed_job_in_a_sweep_is_recorded_and_does_not_raise(make_cfg, tmp_path):
    cfg = make_cfg("trainer.epochs=0")
    record = execute(cfg, tmp_path, ["trainer.epochs=0"], multirun=True)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert record["status"] == on_disk["status"] == "failed"
    assert "trainer.epochs" in on_disk["error"] and on_disk["runs"] == []


@pytest.mark.slow
def test_runtime_failure_writes_failed_metrics(make_cfg, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cfg = make_cfg(f"dataset.data_dir={blocker}/cache", "dataset.generator_seed=7")
    execute(cfg, tmp_path / "job", [], multirun=True)
    on_disk = json.loads((tmp_path / "job" / "metrics.json").read_text())
    assert on_disk["status"] == "failed" and "Error" in on_disk["error"]


@pytest.mark.slow
def test_single_run_cli_prints_the_leaderboard(tmp_path):
    done = run_cli("+suite=smoke", "regularizer=l2", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 0, done.stderr
    assert "regbench leaderboard" in done.stdout and "l2" in done.stdout
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "completed"
    # its footer sends the reader to leaderboard.md: it is written, and the last line says where
    assert "in leaderboard.md" in " ".join(done.stdout.split()) and (tmp_path / "leaderboard.md").exists()
    assert done.stdout.splitlines()[-1] == f"regbench: completed: results and leaderboard.{{csv,md}} in {tmp_path}"


@pytest.mark.slow
@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]],
                         ids=["basic", "joblib"])
def test_multirun_writes_a_leaderboard_and_survives_a_failed_job(tmp_path, launcher):
    sweep = tmp_path / "sweep"
    done = run_cli("-m", "+suite=smoke", "regularizer=none,l2", "seed=0,1", "trainer.epochs=2,-1",
                   *launcher, f"hydra.sweep.dir={sweep}")
    assert done.returncode == 1, done.stderr  # written first, then the failed jobs show in the exit code
    records = [json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")]
    assert len(records) == 8
    assert sorted(r["status"] for r in records) == ["completed"] * 4 + ["failed"] * 4
    board = pd.read_csv(sweep / "leaderboard.csv")
    # smoke: replicates=2, so seed=0,1 gives seeds {0, 1, 2} per technique
    assert sorted(board.technique) == ["l2", "none"] and list(board.seeds) == [3, 3]
    l2 = board[board.technique == "l2"].iloc[0]
    assert l2.delta_seeds == 3
    assert "Unfinished jobs" in (sweep / "leaderboard.md").read_text()
    assert done.stdout.splitlines()[-1].startswith(f"regbench: report in {sweep / 'report.html'} (")
    assert done.stdout.splitlines()[-1].endswith(f"; leaderboard in {sweep / 'leaderboard.md'} (and .csv)")
    # 2 configs x 3 seeds (replicates=2 from seeds 0 and 1) from the 4 jobs that completed
    assert "trained 8 networks (2 configs × 3 seeds) in" in done.stdout and "as 4 results (a result: " in done.stdout


@pytest.mark.slow
def test_a_knob_beside_its_baseline_in_one_sweep_trains_none_once(tmp_path):
    sweep = tmp_path / "sweep"
    done = run_cli("-m", "+suite=smoke", "trainer.epochs=1", "regularizer=none,dropout",
                   "regularizer.dropout.p=0.2,0.5", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                   f"hydra.sweep.dir={sweep}")
    assert done.returncode == 0, done.stderr
    records = [json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")]
    assert sorted(r["technique"] for r in records) == ["dropout", "dropout", "none"]  # none trained once
    board = pd.read_csv(sweep / "leaderboard.csv", keep_default_na=False)
    assert set(zip(board.technique, board.setting)) == {
        ("none", "trainer.epochs=1"), ("dropout", "trainer.epochs=1"),
        ("dropout", "regularizer.dropout.p=0.5 trainer.epochs=1")}
    none_hash = board[board.technique == "none"].config_hash.item()
    assert set(board.baseline_hash) == {none_hash}  # both dropout rows are paired with that one none


@pytest.mark.slow
def test_merged_runs_of_different_settings_stay_apart(make_cfg, tmp_path):
    """A smoke run and a longer run of `none` are different results: two rows, no seed replaced.
    (The runs train in process: the single run's CLI has its own tests; the leaderboard's CLI is tested here.)"""
    for name, epochs in (("short", 1), ("long", 2)):
        execute(make_cfg(f"trainer.epochs={epochs}"), tmp_path / name, [f"trainer.epochs={epochs}"], multirun=False)
    done = run_cli(str(tmp_path / "short"), str(tmp_path / "long"), "--out", str(tmp_path),
                   module="regbench.report.cli")
    assert done.returncode == 0, done.stderr
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert sorted(board.setting) == ["trainer.epochs=1", "trainer.epochs=2"] and list(board.seeds) == [2, 2]


@pytest.mark.slow
def test_a_diverged_run_is_recorded_and_the_command_exits_1(tmp_path):
    done = run_cli("+suite=smoke", "trainer.lr=1e6", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 1, done.stderr
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["status"] == "diverged"
    assert all(run["diverged"] and run["diverged_epoch"] == 1 for run in record["runs"])


@pytest.mark.slow
def test_help_names_groups_options_suites_and_the_leaderboard_command(tmp_path):
    done = run_cli("--help", cwd=tmp_path)
    assert done.returncode == 0
    text = done.stdout
    assert "powered by Hydra." not in text.splitlines()[0]  # Hydra's default header says only that
    conf = Path(__file__).resolve().parents[1] / "conf"
    for group in ("dataset", "model", "regularizer"):
        options = sorted(p.stem for p in (conf / group).glob("*.yaml"))
        assert f"{group}: {', '.join(options)}" in text
    usage = text.split("== Configuration groups ==")[0]
    for suite in (p.stem for p in (conf / "suite").glob("*.yaml")):  # every suite explained, none forgotten
        assert f"\n  {suite} " in usage
    assert "regbench-leaderboard DIR" in usage and "--report" in usage and "--by KEY" in usage
