"""Strength grids inside the population: a list of values for a member knob trains every value x every
seed in one job, and each value's numbers equal that value trained as its own job."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from regbench.app import execute, validation_score
from regbench.config import ConfigError
from regbench.experiment import Experiment
from regbench.identity import config_hash
from regbench.regularizers import REGULARIZERS
from tests.conftest import run_cli

# every member knob, with two values to train side by side (and what else makes the two differ in 4 epochs)
GRIDS = {
    "l1.strength": "[1e-4,3e-3]",
    "l2.strength": "[1e-4,3e-2]",
    "weight_decay.decay": "[0.0,0.1]",
    "grad_penalty.strength": "[0.0,0.02]",
    "input_noise.std": "[0.1,0.8]",
    "weight_noise.std": "[0.0,0.1]",
    "label_smoothing.smoothing": "[0.0,0.3]",
    "dropout.p": "[0.0,0.4]",
    "mixup.alpha": "[0.0,1.0]",
    "early_stopping.patience": "[1,3] regularizer.early_stopping.min_delta=0.5",
    "early_stopping.min_delta": "[0.0,0.05]",
}
METRICS = ("train_loss", "val_loss", "test_loss", "train_acc", "test_acc", "epochs", "best_epoch")


def test_every_member_knob_has_a_grid_test():
    declared = {f"{name}.{knob}" for name, cls in REGULARIZERS.items() for knob in cls.member_knobs}
    assert declared == set(GRIDS)


def assert_same_runs(grid_runs: list[dict], alone_runs: list[dict]) -> None:
    assert [run["seed"] for run in grid_runs] == [run["seed"] for run in alone_runs]
    for together, alone in zip(grid_runs, alone_runs):
        for key in METRICS:
            assert together[key] == pytest.approx(alone[key], rel=1e-4, abs=1e-5), key


@pytest.mark.slow
@pytest.mark.parametrize("knob", sorted(GRIDS))
def test_each_value_in_a_grid_equals_its_own_job(make_cfg, knob):
    name = knob.split(".")[0]
    values, *extra = GRIDS[knob].split()
    overrides = [f"regularizer={name}", f"regularizer.{knob}={values}", "trainer.epochs=4", *extra]
    experiment = Experiment.from_config(make_cfg(*overrides))
    assert len(experiment.points) == 2 and experiment.seeds == [0, 1]
    together = experiment.run()                                       # 2 values x 2 seeds, one population
    for g, point in enumerate(experiment.points):
        value = point[f"regularizer.{knob}"]
        alone = Experiment.from_config(make_cfg(*overrides[:1], f"regularizer.{knob}={value}", *overrides[2:]))
        assert not alone.grid
        (own,) = alone.run()
        assert_same_runs(together[g].runs, own.runs)
        assert [(row["epoch"], row["seed"]) for row in together[g].curves] == \
            [(row["epoch"], row["seed"]) for row in own.curves]
        for mine, theirs in zip(together[g].curves, own.curves):   # each value's curves, not another's
            assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-4, abs=1e-5)
    # the two values really differ (early stopping: in the epochs run), so a grid that gave every member
    # the first value would fail above
    assert [[run[key] for key in METRICS] for run in together[0].runs] != \
        [[run[key] for key in METRICS] for run in together[1].runs]


@pytest.mark.slow
def test_dropout_grid_on_a_network_run_through_vmap(make_cfg):
    """cnn1d runs through vmap, where each member's rate arrives as a scalar buffer."""
    overrides = ["model=cnn1d", "regularizer=dropout", "trainer.epochs=2"]
    experiment = Experiment.from_config(make_cfg(*overrides, "regularizer.dropout.p=[0.1,0.5]"))
    together = experiment.run()
    for g, p in enumerate((0.1, 0.5)):
        (own,) = Experiment.from_config(make_cfg(*overrides, f"regularizer.dropout.p={p}")).run()
        assert_same_runs(together[g].runs, own.runs)


def test_two_knobs_make_every_combination(make_cfg):
    experiment = Experiment.from_config(make_cfg("regularizer=[l2,dropout]", "regularizer.l2.strength=[0.0,0.01]",
                                                 "regularizer.dropout.p=[0.1,0.2,0.3]"))
    assert experiment.points == [{"regularizer.l2.strength": s, "regularizer.dropout.p": p}
                                 for s in (0.0, 0.01) for p in (0.1, 0.2, 0.3)]


@pytest.mark.slow
def test_a_grid_job_writes_each_point_as_the_job_of_that_value_alone(make_cfg, tmp_path):
    overrides = ["regularizer=l2", "regularizer.l2.strength=[1e-4,1e-2]"]
    record = execute(make_cfg(*overrides), tmp_path, overrides, multirun=False)
    assert record["status"] == "completed" and len(record["points"]) == 2
    for point, value in zip(record["points"], (1e-4, 1e-2)):
        alone_cfg = make_cfg("regularizer=l2", f"regularizer.l2.strength={value}")
        on_disk = json.loads((Path(point["job_dir"]) / "metrics.json").read_text())
        assert Path(point["job_dir"]).parent == tmp_path
        assert on_disk["config_hash"] == config_hash(alone_cfg)
        assert on_disk["config"]["regularizer"]["l2"]["strength"] == value
        assert on_disk["overrides"] == ["regularizer=l2", f"regularizer.l2.strength={value}"]
        assert on_disk["labels"]["setting"] == f"regularizer.l2.strength={value} trainer.epochs=3"
        assert on_disk["population"] == 4 and [run["seed"] for run in on_disk["runs"]] == [0, 1]
        assert (Path(point["job_dir"]) / "curves.csv").exists()
    # the job returns its best point's validation accuracy to a sweeper
    best = max(sum(run["val_acc"] for run in point["runs"]) / 2 for point in record["points"])
    assert validation_score(record) == pytest.approx(best)


@pytest.mark.slow
def test_a_rerun_trains_only_the_points_not_done(make_cfg, tmp_path):
    overrides = ["regularizer=l2", "regularizer.l2.strength=[1e-4,1e-3,1e-2]"]
    first = execute(make_cfg(*overrides), tmp_path, overrides, multirun=True)
    missing = Path(first["points"][1]["job_dir"]) / "metrics.json"
    kept = json.loads(missing.read_text())
    missing.unlink()
    again = execute(make_cfg(*overrides), tmp_path, overrides, multirun=True)
    assert [point.get("skipped", False) for point in again["points"]] == [True, False, True]
    redone = json.loads(missing.read_text())
    assert redone["population"] == 2   # one value x 2 seeds: the others were not trained again
    assert_same_runs(redone["runs"], kept["runs"])


@pytest.mark.parametrize("override, named", [
    ("regularizer.ensemble.members=[3,5]", "regularizer.ensemble.members=[3,5]: a list of values"),
    ("regularizer.l2.strength=[1e-3,1e-3]", "one or more distinct values"),
    ("regularizer.l2.strength=[1,1.0]", "one or more distinct values"),   # one setting, one identity
    ("regularizer.l2.strength=[1e-3,-1]", "regularizer.l2.strength=-1 is out of range"),
    ("regularizer.l2.strength=[]", "one or more distinct values"),
])
def test_lists_that_cannot_be_a_grid_are_refused(make_cfg, override, named):
    technique = override.split(".")[1]
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        Experiment.from_config(make_cfg(f"regularizer={technique}", override))


def test_a_list_valued_knob_is_not_a_grid(make_cfg):
    experiment = Experiment.from_config(make_cfg("regularizer=augment", "regularizer.augment.ops=[shift,scale]"))
    assert not experiment.grid and experiment.regularizers[0].ops == ["shift", "scale"]


@pytest.mark.slow
def test_the_cli_refuses_a_shape_knob_list_in_one_line(tmp_path):
    result = run_cli("regularizer=ensemble", "regularizer.ensemble.members=[2,3]", f"hydra.run.dir={tmp_path}",
                     cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "regularizer.ensemble.members" in line and "-m regularizer.ensemble.members=2,3" in line
    assert not list(tmp_path.glob("**/metrics.json"))


@pytest.mark.slow
def test_an_ensemble_grid_keeps_each_values_members_together(make_cfg):
    """Ensemble members sit inside each replicate, replicates inside each value (point-major)."""
    overrides = ["regularizer=[ensemble,l2]", "regularizer.ensemble.members=2", "trainer.epochs=2"]
    together = Experiment.from_config(make_cfg(*overrides, "regularizer.l2.strength=[0.0,0.05]")).run()
    for g, strength in enumerate((0.0, 0.05)):
        (own,) = Experiment.from_config(make_cfg(*overrides, f"regularizer.l2.strength={strength}")).run()
        assert_same_runs(together[g].runs, own.runs)
        for mine, theirs in zip(together[g].runs, own.runs):
            assert mine["member_test_accs"] == pytest.approx(theirs["member_test_accs"], abs=1e-5)


@pytest.mark.slow
def test_a_grid_job_that_fails_records_every_value_as_failed(make_cfg, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    overrides = ["regularizer=l2", "regularizer.l2.strength=[1e-4,1e-3]", f"dataset.data_dir={blocker}/cache",
                 "dataset.generator_seed=7"]
    record = execute(make_cfg(*overrides), tmp_path / "job", overrides, multirun=True)
    assert record["status"] == "failed"
    on_disk = [json.loads(path.read_text()) for path in sorted((tmp_path / "job").glob("*/metrics.json"))]
    assert len(on_disk) == 2 and all(r["status"] == "failed" and "Error" in r["error"] for r in on_disk)


def test_a_grid_of_a_technique_that_does_not_apply_is_recorded_without_an_error(make_cfg, tmp_path, caplog):
    overrides = ["dataset=diabetes", "regularizer=label_smoothing", "regularizer.label_smoothing.smoothing=[0.1,0.2]",
                 "replicates=3", "selection_seeds=1"]
    with caplog.at_level("INFO", logger="regbench"):
        record = execute(make_cfg(*overrides), tmp_path, overrides, multirun=True)
    assert [point["status"] for point in record["points"]] == ["not_applicable"] * 2 and record["tuned"] is None
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    assert not list(tmp_path.glob("*-tuned-*"))


def test_a_grid_job_whose_value_cannot_be_chosen_fails(make_cfg, tmp_path):
    """Every value diverges on the selection seed: nothing to report, and the job says so."""
    overrides = ["regularizer=l2", "regularizer.l2.strength=[1e-4,1e-3]", "trainer.lr=1e6", "replicates=2",
                 "selection_seeds=1"]
    record = execute(make_cfg(*overrides), tmp_path, overrides, multirun=False)
    assert record["status"] == "failed" and record["tuned"]["status"] == "failed"
    assert "no grid value could be chosen" in record["tuned"]["error"]


def test_choosing_without_a_validation_split_is_refused_before_training(make_cfg, tmp_path):
    overrides = ["regularizer=l2", "regularizer.l2.strength=[1e-4,1e-3]", "dataset.val_fraction=0", "replicates=2",
                 "selection_seeds=1"]
    with pytest.raises(ConfigError, match="selection_seeds=1 chooses on the validation split"):
        execute(make_cfg(*overrides), tmp_path, overrides, multirun=False)
    assert not list(tmp_path.glob("**/metrics.json"))
