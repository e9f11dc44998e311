"""The smoke sizes (conf/subset/smoke.yaml: picked by +suite=smoke, and by `subset=smoke` beside any other
suite) keep every technique small, its pretraining stage included, and the small tuned run the README
gives, `regbench +suite=tuned subset=smoke`, composes and runs."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from regbench.config import CONF_DIR
from regbench.experiment import Experiment
from regbench.regularizers.pretraining import PretrainedBody
from regbench.trainer import Streams
from tests.conftest import run_cli

TECHNIQUES = sorted(path.stem for path in (CONF_DIR / "regularizer").glob("*.yaml"))
SMALL_RUNS = {"smoke": ("+suite=smoke",), "tuned small": ("+suite=tuned", "subset=smoke")}
# Inputs x epochs a smoke pretraining stage may train on: one epoch over MNIST-1D's 3600 training inputs
# (500 labelled, the rest unlabelled) and a small extra pool. At full size ssl_contrastive trains 50 epochs
# over 19600 inputs and transfer 20 over 16000 (smoke took minutes).
PRETRAINING_BUDGET = 5000


def stage_size(experiment: Experiment, hook: PretrainedBody) -> int:
    """The inputs x epochs `hook`'s pretraining stage would train on (the stage is built, not trained)."""
    data = experiment.dataset.load()
    hook.bind(Streams([(0, 0)], torch.device("cpu")), data)
    hook.model(experiment.model)
    stage_data, _, _ = hook.stage()
    return len(stage_data.x_train) * hook.pretrain_epochs


@pytest.mark.slow
@pytest.mark.parametrize("run", list(SMALL_RUNS))
@pytest.mark.parametrize("technique", TECHNIQUES)
def test_the_smoke_sizes_keep_every_technique_and_its_pretraining_small(make_cfg, run, technique):
    experiment = Experiment.from_config(make_cfg(*SMALL_RUNS[run], f"regularizer={technique}", smoke=False))
    assert experiment.trainer.epochs == 3 and experiment.dataset.n_train == 500
    for hook in experiment.regularizers:
        if isinstance(hook, PretrainedBody):
            size = stage_size(experiment, hook)
            assert size <= PRETRAINING_BUDGET, (
                f"{run}: regularizer={technique} pretrains on {size} inputs x epochs (budget {PRETRAINING_BUDGET}): "
                "give its pretraining sizes smoke values in conf/subset/smoke.yaml")


def test_the_smoke_sizes_leave_full_runs_alone(make_cfg):
    """Full runs keep their conf/ defaults: the smoke sizes live in the smoke preset only."""
    cfg = make_cfg("regularizer=[transfer,ssl_contrastive]", smoke=False)
    assert (cfg.trainer.epochs, cfg.dataset.n_train) == (50, None)
    assert (cfg.regularizer.transfer.pretrain_epochs, cfg.regularizer.transfer.source_samples) == (20, 20000)
    assert (cfg.regularizer.ssl_contrastive.pretrain_epochs, cfg.regularizer.ssl_contrastive.extra_unlabelled) \
        == (50, 16000)


@pytest.mark.slow
def test_the_small_tuned_run_shows_a_tuned_technique_on_all_seeds_and_on_its_reporting_seeds(tmp_path):
    """The README's small tuned run, with the sweep cut to `none` and `l2`: its main table shows l2 at its
    default on all 6 seeds and the value chosen on seeds 0-2 reported on seeds 3-5."""
    sweep = tmp_path / "sweep"
    done = run_cli("+suite=tuned", "subset=smoke", 'hydra.sweeper.params.regularizer="none,l2"',
                   f"hydra.sweep.dir={sweep}", cwd=tmp_path, env={"COLUMNS": "80"})
    assert done.returncode == 0, done.stderr[-2000:]
    (tuned_record,) = sweep.glob("l2-*/l2-tuned-*/metrics.json")   # beside the grid values' own dirs
    record = json.loads(tuned_record.read_text())
    assert [run["seed"] for run in record["runs"]] == [3, 4, 5] and {run["epochs"] for run in record["runs"]} == {3}
    board = pd.read_csv(sweep / "leaderboard.csv")
    shown = board[board.shown & (board.technique == "l2")]
    default, tuned = shown[shown.tuned_grid.isna()], shown[shown.tuned_grid.notna()]
    assert (len(default), len(tuned)) == (1, 1)
    assert (default.seeds.item(), tuned.seeds.item()) == (6, 3)
    assert tuned.setting.item().startswith("tuned strength=")
    assert pd.read_csv(sweep / "leaderboard_tuned.csv").set_index("technique").loc["l2"].seeds == "3 4 5"
