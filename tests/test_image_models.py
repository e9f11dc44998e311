"""Image models: output shapes, a member in a population equals its seed alone, and shapes a model does
not take fail in one line before training."""
from __future__ import annotations

import json

import pytest
import torch

from regbench.config import ConfigError
from regbench.experiment import Experiment
from regbench.models import MODELS
from regbench.models.resnet import GroupNorm
from regbench.regularizers.augment import Augment
from regbench.trainer import train_population
from tests.conftest import run_cli
from tests.regularizers.helpers import CPU, train

DIGITS = ("dataset=digits", "dataset.n_train=200")


@pytest.mark.parametrize("name, input_shape", [("cnn2d", (1, 8, 8)), ("cnn2d", (1, 28, 28)), ("cnn2d", (3, 32, 32)),
                                               ("resnet", (3, 32, 32)), ("resnet", (1, 8, 8))])
def test_forward_gives_one_logit_per_class(name, input_shape):
    spec = MODELS[name]()
    assert spec.accepts(input_shape)
    model = spec.build(input_shape, 10)
    assert model(torch.randn(5, *input_shape)).shape == (5, 10)
    if name == "resnet":
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def test_group_norm_is_torchs_group_norm():
    x = torch.randn(4, 16, 5, 6)
    ours, torchs = GroupNorm(8, 16), torch.nn.GroupNorm(8, 16)
    for module in (ours, torchs):
        module.weight.data = torch.linspace(0.5, 2.0, 16)
        module.bias.data = torch.linspace(-1.0, 1.0, 16)
    torch.testing.assert_close(ours(x), torchs(x), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [("model=cnn2d",), ("model=cnn2d", "regularizer=dropout"),
                                       ("model=resnet", "regularizer=dropout"),
                                       ("model=cnn2d", "regularizer=augment")])
def test_member_in_population_equals_seed_alone(make_cfg, overrides):
    together = train(make_cfg, [3, 4, 5], *DIGITS, *overrides)[2]
    alone = train(make_cfg, [4], *DIGITS, *overrides)[2]
    for key in ("train_loss", "test_loss", "val_loss", "test_acc"):
        torch.testing.assert_close(together.final[key][1:2], alone.final[key], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(together.final["train_loss"][0], together.final["train_loss"][1])
    curve = [row["train_loss"] for row in together.curves if row["seed"] == 4]
    torch.testing.assert_close(torch.tensor(curve), torch.tensor([r["train_loss"] for r in alone.curves]),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name, shapes, refused", [
    ("mlp", [(40,), (1, 8, 8), (3, 32, 32), (7, 2)], []),
    ("cnn1d", [(40,), (1, 40)], [(1, 8, 8), (3, 32, 32)]),
    ("cnn2d", [(1, 8, 8), (3, 32, 32), (1, 4, 4)], [(40,), (1, 40), (1, 3, 8)]),
    ("resnet", [(3, 32, 32), (1, 8, 8)], [(40,), (1, 40)])])
def test_models_declare_the_input_shapes_they_take(name, shapes, refused):
    spec = MODELS[name]()
    assert [spec.accepts(s) for s in shapes + refused] == [True] * len(shapes) + [False] * len(refused)
    for shape in shapes:  # what a model accepts, it builds
        assert spec.build(shape, 10)(torch.zeros(2, *shape)).shape == (2, 10)


def test_a_mismatched_pair_fails_before_training(make_cfg):
    experiment = Experiment.from_config(make_cfg("dataset=mnist1d", "model=cnn2d"))
    with pytest.raises(ConfigError, match=r"^model=cnn2d takes images shaped \(C, H, W\).*, but dataset=mnist1d "
                                          r"gives inputs shaped \(40,\): choose a model that fits"):
        train_population(experiment.model, experiment.dataset.load(), experiment.trainer, [], [0], CPU)


@pytest.mark.slow
def test_a_mismatched_pair_is_one_line_and_exit_2_from_the_cli(tmp_path):
    done = run_cli("+suite=smoke", "dataset=digits", "model=cnn1d", f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "regbench: error: model=cnn1d takes signals shaped (L,) or (C, L), but dataset=digits gives inputs shaped "
        "(1, 8, 8): choose a model that fits the data (mlp takes any shape)"]
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.slow
def test_augment_runs_its_image_ops_on_digits(make_cfg):
    experiment, data, _ = train(make_cfg, [0], *DIGITS, "model=cnn2d", "regularizer=augment")
    hook = next(h for h in experiment.regularizers if isinstance(h, Augment))
    assert hook.active_ops == ("rotate", "blur")                        # digits' own: no flip
    x = data.x_train[None, :8]                                           # (P=1, B, 1, 8, 8)
    assert not torch.allclose(hook.batch(x, data.y_train[None, :8])[0], x)
    baseline = train(make_cfg, [0], *DIGITS, "model=cnn2d")[2]
    augmented = train(make_cfg, [0], *DIGITS, "model=cnn2d", "regularizer=augment")[2]
    assert not torch.allclose(baseline.final["train_loss"], augmented.final["train_loss"])


@pytest.mark.slow
def test_smoke_run_of_augment_on_digits_completes(tmp_path):
    done = run_cli("dataset=digits", "model=cnn2d", "regularizer=augment", "+suite=smoke",
                   f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 0, done.stderr

    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (record["status"], record["dataset"], record["model"], len(record["runs"])) == \
        ("completed", "digits", "cnn2d", 2)
    assert record["runs"][0]["test_acc"] > 0.2   # 3 epochs on 500 digits: well above chance (0.1)
