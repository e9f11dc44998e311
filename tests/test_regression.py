"""Regression end to end: the MSE objective, the toy1d and diabetes datasets, the shallow model."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from regbench.data.base import Data
from regbench.data.diabetes import Diabetes
from regbench.data.toy1d import Toy1D, true_function
from regbench.models.shallow import Shallow
from regbench.trainer.loop import CLASSIFICATION, REGRESSION, objective_for, predict
from tests.conftest import run_cli
from tests.regularizers.helpers import train as train_with


def test_regression_objective_is_mse_with_no_accuracy():
    outputs = torch.tensor([[1.0], [2.0], [4.0]])                    # (B, 1)
    targets = torch.tensor([0.0, 2.0, 1.0])                          # (B,)
    assert REGRESSION.loss(outputs, targets).item() == pytest.approx((1 + 0 + 9) / 3)
    many = torch.stack([outputs, outputs + 1])                       # (G=2, n, 1)
    metrics = REGRESSION.metrics(many, targets)
    assert set(metrics) == {"loss"} and REGRESSION.names == ("loss",)
    torch.testing.assert_close(metrics["loss"], torch.tensor([10 / 3, (4 + 1 + 16) / 3]))
    combined = REGRESSION.combine(torch.tensor([[[[1.0]], [[3.0]]]]))  # (R=1, M=2, n=1, 1)
    torch.testing.assert_close(combined, torch.tensor([[[2.0]]]))


def test_the_task_picks_the_objective_and_the_output_size():
    x, y = torch.zeros(4, 1), torch.zeros(4)
    regression = Data("r", x, y, x, y, x, y, 0, "tabular", task="regression")
    assert objective_for(regression) is REGRESSION and regression.output_size == 1
    wide = Data("r", x, torch.zeros(4, 3), x, y, x, y, 0, "tabular", task="regression")
    assert wide.output_size == 3
    classes = Data("c", x, y.long(), x, y.long(), x, y.long(), 5, "tabular")
    assert objective_for(classes) is CLASSIFICATION and classes.output_size == 5


def test_toy1d_shapes_determinism_and_true_test_targets():
    data = Toy1D(n_train=12, n_val=5, n_test=200, noise_std=0.3, data_seed=3).load()
    assert data.x_train.shape == (12, 1) and data.y_train.shape == (12,) and data.x_val.shape == (5, 1)
    assert data.x_test.shape == (200, 1) and data.task == "regression" and data.modality == "tabular"
    assert data.y_train.dtype == torch.float32 and 0 <= data.x_train.min() and data.x_train.max() <= 1
    again = Toy1D(n_train=12, n_val=5, data_seed=3).load()
    other = Toy1D(n_train=12, n_val=5, data_seed=4).load()
    assert torch.equal(data.x_train, again.x_train) and torch.equal(data.y_train, again.y_train)
    assert not torch.equal(data.x_train, other.x_train)
    grid = np.linspace(0, 1, 200)
    torch.testing.assert_close(data.x_test[:, 0], torch.tensor(grid, dtype=torch.float32))
    torch.testing.assert_close(data.y_test, torch.tensor(np.exp(np.sin(2 * np.pi * grid)), dtype=torch.float32))
    noise = data.y_train - torch.tensor(true_function(data.x_train[:, 0].double().numpy()), dtype=torch.float32)
    assert 0.05 < noise.std() < 1.0          # the training targets are noisy


def test_diabetes_is_standardized_with_training_statistics_only():
    data = Diabetes(val_fraction=0.1).load()
    assert data.task == "regression" and data.x_train.shape[1] == 10
    assert len(data.y_test) == round(0.2 * 442) and len(data.y_train) + len(data.y_val) == 442 - len(data.y_test)
    torch.testing.assert_close(data.x_train.mean(0), torch.zeros(10), atol=1e-5, rtol=0)
    torch.testing.assert_close(data.x_train.std(0), torch.ones(10), atol=1e-5, rtol=0)
    torch.testing.assert_close(data.y_train.mean(), torch.tensor(0.0), atol=1e-5, rtol=0)
    torch.testing.assert_close(data.y_train.std(), torch.tensor(1.0), atol=1e-5, rtol=0)
    # test statistics were not used: the test split is not exactly standardized itself
    assert data.y_test.mean().abs() > 1e-3 and (data.y_test.std() - 1).abs() > 1e-3
    subset = Diabetes(n_train=100).load()         # fewer training rows: other statistics, same test rows
    assert subset.y_train.std().item() == pytest.approx(1.0, abs=1e-5)
    assert not torch.allclose(subset.y_test, data.y_test)


def test_shallow_forward_shape():
    model = Shallow(hidden=7, first_layer="trained").build((1,), 1)
    assert model(torch.zeros(5, 1)).shape == (5, 1)
    assert sum(p.numel() for p in model.parameters()) == 7 + 7 + 7 + 1
    assert Shallow(hidden=7).build((1,), 1)(torch.zeros(5, 1)).shape == (5, 1)   # fixed kinks: tests/test_toy.py


@pytest.mark.slow
@pytest.mark.parametrize("model", ["shallow", "mlp"])
def test_member_in_population_equals_seed_alone_on_toy1d(make_cfg, model):
    overrides = ("dataset=toy1d", f"model={model}", "dataset.n_train=15")
    together = train_with(make_cfg, [3, 4, 5], *overrides)[2]
    alone = train_with(make_cfg, [4], *overrides)[2]
    assert "train_acc" not in together.final
    for key in ("train_loss", "val_loss", "test_loss"):
        torch.testing.assert_close(together.final[key][1:2], alone.final[key], rtol=1e-4, atol=1e-6)
    assert not torch.equal(together.final["test_loss"][0:1], alone.final["test_loss"])


@pytest.mark.slow
def test_ensemble_of_regression_members_averages_their_predictions(make_cfg):
    experiment, data, result = train_with(make_cfg, [0], "dataset=toy1d", "model=shallow", "regularizer=ensemble")
    assert result.members > 1 and "test_acc" not in result.final
    model = experiment.model.build(data.input_shape, data.output_size)
    outputs = predict(model, result.params, data.x_test)[..., 0]              # (M, n): one replicate's members
    members = (outputs - data.y_test).square().mean(1)                         # (M,) each member's MSE
    ensemble = (outputs.mean(0) - data.y_test).square().mean()                 # the MSE of the mean prediction
    torch.testing.assert_close(result.final["test_loss"], ensemble[None])
    torch.testing.assert_close(result.member_final["test_loss"], members.mean()[None])
    # mean predictions: by convexity the ensemble's MSE is below its mean member's (members differ)
    assert ensemble < members.mean() - 1e-6


@pytest.mark.slow
def test_toy1d_end_to_end_has_null_accuracies_and_a_loss_gap(tmp_path):
    done = run_cli("dataset=toy1d", "model=shallow", "regularizer=l2", "+suite=smoke",
                   f"hydra.run.dir={tmp_path}")
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["status"] == "completed" and record["dataset"] == "toy1d" and len(record["runs"]) == 2
    for run in record["runs"]:
        assert run["train_acc"] is None and run["test_acc"] is None and run["gap_acc"] is None
        assert run["test_ece"] is None  # no class probabilities
        assert run["gap_loss"] == pytest.approx(run["test_loss"] - run["train_loss"])
    assert "test loss" in done.stdout


@pytest.mark.slow
def test_a_technique_that_does_not_apply_is_recorded_not_failed(tmp_path):
    done = run_cli("-m", "dataset=toy1d", "model=shallow", "regularizer=none,label_smoothing", "+suite=smoke",
                   f"hydra.sweep.dir={tmp_path}")
    assert done.returncode == 0, done.stderr
    records = {r["technique"]: r for r in (json.loads(p.read_text()) for p in tmp_path.glob("*/metrics.json"))}
    assert records["none"]["status"] == "completed"
    skipped = records["label_smoothing"]
    assert skipped["status"] == "not_applicable" and skipped["runs"] == [] and skipped["error"] is None
    assert skipped["reason"] == "label_smoothing smooths class targets: dataset toy1d is a regression task"
    board = (tmp_path / "leaderboard.md").read_text()
    assert "Not applicable to this data (not counted):" in board and "- label_smoothing (" in board
    assert "not applicable (not counted) label_smoothing" in done.stdout
    rows = [line for line in board.splitlines() if line.startswith("| ") and "technique" not in line]
    assert len(rows) == 1 and "| none |" in rows[0]


@pytest.mark.slow
def test_a_single_not_applicable_run_says_why_and_exits_0(tmp_path):
    done = run_cli("dataset=toy1d", "model=shallow", "regularizer=label_smoothing", "+suite=smoke",
                   f"hydra.run.dir={tmp_path}")
    assert done.returncode == 0, done.stderr
    assert "not applicable: label_smoothing: label_smoothing smooths class targets" in done.stderr + done.stdout
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "not_applicable"


@pytest.mark.slow
@pytest.mark.parametrize("technique, reason", [
    ("label_smoothing", "regression task"), ("augment", "no ops for tabular data"),
    ("transfer", "dataset=mnist1d only, not toy1d"), ("ssl_masked", "toy1d has tabular features"),
    ("ssl_contrastive", "toy1d has tabular features")])
def test_techniques_that_do_not_apply_to_toy1d_raise_not_applicable(make_cfg, technique, reason):
    from regbench.trainer.hooks import NotApplicable
    with pytest.raises(NotApplicable, match=reason):
        train_with(make_cfg, [0], "dataset=toy1d", "model=shallow", f"regularizer={technique}")


def test_mixup_mixes_regression_targets_linearly(make_cfg):
    from regbench.regularizers.mixup import Mixup
    from regbench.trainer import Streams
    data = Toy1D().load()
    hook = Mixup(alpha=0.4)
    hook.bind(Streams([0, 1], torch.device("cpu")), data)
    x = data.x_train[:8].expand(2, 8, 1)                  # (P, B, 1)
    y = 3 * x[..., 0] + 1                                 # (P, B): targets on a line through the inputs
    mixed_x, mixed_y = hook.batch(x, y)
    assert mixed_y.shape == y.shape and mixed_y.dtype == torch.float32
    assert not torch.allclose(mixed_x, x)                 # the examples were mixed
    # toy inputs are scalars: mixing a target by its input's weight and partner keeps it on that line
    torch.testing.assert_close(mixed_y, 3 * mixed_x[..., 0] + 1)
    result = train_with(make_cfg, [0], "dataset=toy1d", "model=shallow", "regularizer=mixup")[2]
    assert torch.isfinite(result.final["test_loss"]).all()
