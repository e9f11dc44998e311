"""Hydra's Optuna sweeper drives regbench: each job returns its validation score, never a test metric."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from regbench.app import validation_score

REPO = Path(__file__).resolve().parents[1]


def test_the_score_is_the_mean_validation_accuracy_not_the_test_accuracy():
    runs = [{"val_acc": 0.5, "test_acc": 0.9, "val_loss": 1.0, "diverged": False},
            {"val_acc": 0.7, "test_acc": 0.1, "val_loss": 2.0, "diverged": False}]
    assert validation_score({"runs": runs}) == pytest.approx(0.6)
    regression = [{"val_acc": None, "val_loss": 0.25, "test_loss": 9.0, "diverged": False},
                  {"val_acc": None, "val_loss": 0.75, "test_loss": 0.0, "diverged": False}]
    assert validation_score({"runs": regression}) == pytest.approx(0.5)


@pytest.mark.parametrize("record", [
    {"status": "failed", "runs": []},
    {"runs": [{"val_acc": 0.9, "diverged": False}, {"val_acc": 0.8, "diverged": True}]},
    {"runs": [{"val_acc": None, "val_loss": math.nan, "diverged": False}]},   # no validation split
], ids=["failed", "a seed diverged", "no validation"])
def test_no_score_is_nan_which_optuna_records_as_a_failed_trial(record):
    assert math.isnan(validation_score(record))


@pytest.mark.slow
def test_optuna_sweeper_picks_the_job_with_the_best_validation_accuracy(tmp_path):
    sweep = tmp_path / "sweep"
    done = subprocess.run(
        [sys.executable, "-m", "regbench", "-m", "hydra/sweeper=optuna", "+suite=smoke", "regularizer=dropout",
         "regularizer.dropout.p=interval(0.0,0.7)", "hydra.sweeper.n_trials=3", "hydra.sweeper.direction=maximize",
         "hydra.sweeper.sampler.seed=0", "progress=false", f"hydra.sweep.dir={sweep}"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    jobs = [json.loads(path.read_text()) for path in sweep.glob("*/metrics.json")]
    assert len(jobs) == 3 and {job["status"] for job in jobs} == {"completed"}
    scores = {job["config"]["regularizer"]["dropout"]["p"]: sum(r["val_acc"] for r in job["runs"]) / len(job["runs"])
              for job in jobs}
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(max(scores.values()))
    assert best["best_params"]["regularizer.dropout.p"] == pytest.approx(max(scores, key=scores.get))
    assert (sweep / "leaderboard.csv").exists()   # the sweep still ends with the leaderboard
