"""Population-first training: a member trained in a population is that seed trained alone."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from regbench.config import ConfigError
from regbench.experiment import Experiment
from regbench.trainer import Regularizer, Streams, TrainerSettings, train_population
from regbench.trainer.loop import CLASSIFICATION, build_population
from tests.regularizers.helpers import CPU, train as train_with


def train(make_cfg, seeds, *overrides):
    return train_with(make_cfg, seeds, *overrides)[2]


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [(), ("regularizer=l2",), ("model=cnn1d",),
                                       ("trainer.optimizer=adam", "trainer.lr=0.001"),
                                       ("model.activation=tanh", "regularizer=dropout")])
def test_member_in_population_equals_seed_alone(make_cfg, overrides):
    together = train(make_cfg, [3, 4, 5], *overrides)
    alone = train(make_cfg, [4], *overrides)
    for key in ("train_loss", "test_loss", "val_loss", "test_acc"):
        torch.testing.assert_close(together.final[key][1:2], alone.final[key], rtol=1e-4, atol=1e-5)
    curve = [row["train_loss"] for row in together.curves if row["seed"] == 4]
    torch.testing.assert_close(torch.tensor(curve), torch.tensor([r["train_loss"] for r in alone.curves]),
                               rtol=1e-4, atol=1e-5)


def test_members_differ_and_training_reduces_loss(make_cfg):
    result = train(make_cfg, [0, 1], "trainer.epochs=3", "trainer.curve_every=1")
    first = [row["train_loss"] for row in result.curves if row["epoch"] == 1]
    assert first[0] != first[1]  # different inits and data orders
    losses = torch.tensor([[r["train_loss"] for r in result.curves if r["seed"] == s] for s in (0, 1)])
    assert (losses[:, -1] < losses[:, 0]).all()


def test_init_depends_only_on_the_member_seed(make_cfg):
    experiment = Experiment.from_config(make_cfg())
    data = experiment.dataset.load()
    _, a = build_population(experiment.model, data, [1, 2], torch.device("cpu"))
    _, b = build_population(experiment.model, data, [2], torch.device("cpu"))
    for name in a:
        assert torch.equal(a[name][1], b[name][0])
        assert name.endswith("bias") or not torch.equal(a[name][0], a[name][1])
    weight = a["1.weight"][0]  # He uniform: bound sqrt(6 / fan_in); zero biases
    assert weight.abs().max() <= (6 / weight.shape[1]) ** 0.5 and a["1.bias"].abs().sum() == 0


def test_streams_are_per_member_and_reproducible():
    a = Streams([0, 1], torch.device("cpu")).uniform("x", (4,))
    b = Streams([1], torch.device("cpu")).uniform("x", (4,))
    c = Streams([1], torch.device("cpu")).uniform("y", (4,))
    assert torch.equal(a[1], b[0]) and not torch.equal(a[0], a[1]) and not torch.equal(b, c)


def test_divergence_is_flagged_not_raised(make_cfg):
    result = train(make_cfg, [0], "trainer.lr=1e6", "trainer.lr_schedule=none")
    assert result.diverged.tolist() == [True] and result.diverged_epoch.tolist() == [1]
    assert result.epochs.tolist() == [1]   # it stopped training once its loss was non-finite


def test_final_metrics_are_each_splits_loss_and_accuracy_by_hand(make_cfg):
    experiment, data, result = train_with(make_cfg, [0, 1], "dataset.val_fraction=0")
    assert torch.isnan(result.final["val_loss"]).all() and result.best_epoch is None   # no val split
    model = experiment.model.build(data.input_shape, data.num_classes).eval()
    for m in range(2):
        params = {name: value[m] for name, value in result.params.items()}
        for split in ("train", "test"):
            x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
            logits = functional_call(model, params, (x,))
            torch.testing.assert_close(result.final[f"{split}_loss"][m], F.cross_entropy(logits, y))
            torch.testing.assert_close(result.final[f"{split}_acc"][m], (logits.argmax(1) == y).float().mean())


def test_soft_targets_give_the_cross_entropy_against_a_distribution():
    logits, soft = torch.randn(6, 4), torch.softmax(torch.randn(6, 4), -1)
    expected = -(soft * logits.log_softmax(-1)).sum(-1).mean()
    torch.testing.assert_close(CLASSIFICATION.loss(logits, soft), expected)
    hard = torch.tensor([0, 3, 1, 1, 2, 0])
    torch.testing.assert_close(CLASSIFICATION.loss(logits, hard), CLASSIFICATION.loss(logits, F.one_hot(hard, 4).float()))


@dataclass
class FreezeFirstLayer(Regularizer):
    """Test-only: freezes the first linear layer and records the parameter names each step hook sees."""
    name = "freeze_first"
    technique = False
    seen: dict[str, set[str]] = field(default_factory=dict, init=False)

    def frozen(self, model):
        return {"1.weight", "1.bias"}

    def penalty(self, params, losses):
        self.seen.setdefault("penalty", set()).update(params)
        return sum(value.pow(2).flatten(1).sum(1) for value in params.values())   # moves what it sees

    def before_step(self, params):
        self.seen.setdefault("before_step", set()).update(params)

    def after_step(self, params, lr):
        self.seen.setdefault("after_step", set()).update(params)
        with torch.no_grad():
            for value in params.values():
                value.mul_(0.5)


def test_frozen_parameters_are_left_to_no_optimizer_and_no_step_hook(make_cfg):
    experiment = Experiment.from_config(make_cfg())
    data = experiment.dataset.load()
    _, start = build_population(experiment.model, data, [0, 1], CPU)
    hook = FreezeFirstLayer()
    result = train_population(experiment.model, data, experiment.trainer, [hook], [0, 1], CPU)
    trainable = {"3.weight", "3.bias", "5.weight", "5.bias"}
    assert hook.seen == {"penalty": trainable, "before_step": trainable, "after_step": trainable}
    for name, value in start.items():
        assert torch.equal(result.params[name], value) == name.startswith("1."), name


def test_momentum_is_an_sgd_setting():
    assert TrainerSettings().make_optimizer([torch.zeros(1)]).momentum == 0.9   # null: 0.9
    assert TrainerSettings(momentum=0.0).make_optimizer([torch.zeros(1)]).momentum == 0.0
    TrainerSettings(optimizer="adam")
    for optimizer in ("adam", "adamw"):
        with pytest.raises(ConfigError, match=f"trainer.momentum=0.9 applies to optimizer=sgd only.*{optimizer}"):
            TrainerSettings(optimizer=optimizer, momentum=0.9)


@pytest.mark.slow
def test_momentum_with_adam_is_a_config_error(make_cfg):
    with pytest.raises(ConfigError, match="trainer.momentum.*optimizer=sgd only"):
        Experiment.from_config(make_cfg("trainer.optimizer=adam", "trainer.momentum=0.5"))
    assert Experiment.from_config(make_cfg("trainer.optimizer=adam")).trainer.momentum is None


def test_settings_reject_bad_schedule():
    with pytest.raises(ConfigError, match="trainer.lr_schedule"):
        TrainerSettings(lr_schedule="warmup")


def test_steps_plan_whole_epochs_and_a_cut_last_one():
    assert TrainerSettings(steps=100, batch_size=None).epoch_plan(3600) == (100, 1)
    assert TrainerSettings(steps=100, batch_size=100).epoch_plan(3600) == (3, 28)   # 36 steps an epoch
    assert TrainerSettings(steps=6000, batch_size=10).epoch_plan(3600) == (17, 240)
    assert TrainerSettings(steps=72, batch_size=100).epoch_plan(3600) == (2, 36)
    assert TrainerSettings(steps=None, epochs=7, batch_size=150).epoch_plan(500) == (7, 4)


@dataclass
class CountSteps(Regularizer):
    """Test-only: counts optimizer steps (after_step runs once after each) and keeps the parameters
    after each step."""
    name = "count_steps"
    technique = False
    after: list[dict[str, torch.Tensor]] = field(default_factory=list, init=False)

    def after_step(self, params, lr):
        self.after.append({name: value.detach().clone() for name, value in params.items()})


def train_counting(make_cfg, *overrides):
    experiment = Experiment.from_config(make_cfg("trainer.lr_schedule=none", *overrides))
    data = experiment.dataset.load()
    assert len(data.y_train) == 500   # the smoke preset
    counter = CountSteps()
    result = train_population(experiment.model, data, experiment.trainer, [*experiment.regularizers, counter],
                              [0, 1], CPU)
    return result, counter.after


# 500 training rows: batch 100 divides them (5 steps an epoch), 150 does not (4: 150, 150, 150, 50)
@pytest.mark.parametrize("batch_size, steps, epochs", [(100, 12, 3), (100, 10, 2), (150, 10, 3), (150, 3, 1),
                                                       ("null", 4, 4)])
def test_steps_takes_exactly_that_many_optimizer_steps(make_cfg, batch_size, steps, epochs):
    result, after = train_counting(make_cfg, f"trainer.batch_size={batch_size}", f"trainer.steps={steps}")
    assert len(after) == steps
    assert result.epochs.tolist() == [epochs] * 2                  # the cut last epoch counts as one
    assert {row["epoch"] for row in result.curves} >= {epochs}     # measured at the end, as any last epoch
    for name, value in after[-1].items():                          # the reported weights: the last step's
        assert torch.equal(result.params[name], value), name


def test_full_batch_gradient_descent_takes_one_step_an_epoch(make_cfg):
    # the steps test above sets `steps`; this is the `epochs` setting (a null batch is every row, not 100)
    result, after = train_counting(make_cfg, "trainer.batch_size=null", "trainer.epochs=3")
    assert len(after) == 3 and result.epochs.tolist() == [3, 3]
    assert torch.isfinite(result.final["train_loss"]).all()


@pytest.mark.slow
def test_a_cut_epoch_runs_the_first_batches_of_its_order(make_cfg):
    short, _ = train_counting(make_cfg, "trainer.batch_size=150", "trainer.steps=6")
    _, longer = train_counting(make_cfg, "trainer.batch_size=150", "trainer.steps=8")
    for name, value in longer[5].items():                          # step 6 of the longer run
        assert torch.equal(short.params[name], value), name


@pytest.mark.slow
def test_eval_every_and_curve_every_thin_the_measurements_but_not_the_training(make_cfg):
    every = train(make_cfg, [0], "trainer.epochs=5", "trainer.curve_every=1")
    thinned = train(make_cfg, [0], "trainer.epochs=5", "trainer.eval_every=2", "trainer.curve_every=3")
    assert [row["epoch"] for row in thinned.curves] == [3, 5]   # curves: every 3rd epoch and the last
    assert [row["epoch"] for row in every.curves] == [1, 2, 3, 4, 5]
    torch.testing.assert_close(thinned.final["test_loss"], every.final["test_loss"])
    # the best epoch is chosen among the validation epochs (2, 4 and the last), not the curve epochs
    assert int(thinned.best_epoch[0]) in (2, 4, 5)
    curve_losses = {row["epoch"]: row["val_loss"] for row in every.curves}
    assert int(every.best_epoch[0]) == min(curve_losses, key=curve_losses.get)


@pytest.mark.parametrize("name, module, gain", [("relu", torch.nn.ReLU, 2 ** 0.5), ("tanh", torch.nn.Tanh, 5 / 3),
                                               ("leaky_relu", torch.nn.LeakyReLU, 2 ** 0.5),
                                               ("gelu", torch.nn.GELU, 2 ** 0.5)])
@pytest.mark.parametrize("model", ["mlp", "cnn1d", "shallow"])
def test_model_activation_sets_every_hidden_nonlinearity_and_the_init_gain(make_cfg, model, name, module, gain):
    trained = ("model.first_layer=trained",) if model == "shallow" else ()   # fixed kinks take no init
    experiment = Experiment.from_config(make_cfg(f"model={model}", f"model.activation={name}", "model.init=he", *trained))
    network = experiment.model.build((40,), 10)
    kinds = {type(m) for m in network.modules()} & {torch.nn.ReLU, torch.nn.Tanh, torch.nn.LeakyReLU, torch.nn.GELU}
    assert kinds == {module}
    first = next(m for m in network.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d)))
    fan_in = first.weight[0].numel()
    bound = gain * (3 / fan_in) ** 0.5  # Kaiming uniform: gain * sqrt(3 / fan_in)
    assert first.weight.abs().max() <= bound and first.weight.abs().max() > 0.9 * bound


def test_a_bad_activation_is_one_config_error(make_cfg):
    with pytest.raises(ConfigError, match="model.activation.*relu"):
        Experiment.from_config(make_cfg("model.activation=swish"))
