"""Divergence follows the reported weights; members that stopped (non-finite loss, early stopping) stay put."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import pytest
import torch

from regbench.experiment import Experiment
from regbench.trainer import Params, Regularizer, train_population
from tests.regularizers.helpers import CPU


STEPS_PER_EPOCH = 5   # the smoke preset: 500 training examples, batches of 100


@dataclass
class Poison(Regularizer):
    """Test-only: after every step of epoch `start` member `member`'s parameters become NaN; after every
    later step they become 7.0, which a member that has stopped training must never see."""
    member: int
    start: int
    name = "poison"
    technique = False
    steps: int = field(default=0, init=False)

    def after_step(self, params: Params, lr: float) -> None:
        epoch = self.steps // STEPS_PER_EPOCH + 1
        self.steps += 1
        if epoch >= self.start:
            with torch.no_grad():
                for value in params.values():
                    value[self.member] = math.nan if epoch == self.start else 7.0


@dataclass
class Snapshots(Regularizer):
    """Test-only: the live parameters at the end of every epoch."""
    name = "snapshots"
    technique = False
    seen: list[Params] = field(default_factory=list, init=False)

    def epoch_end(self, epoch: int, params: Params, metrics: dict[str, torch.Tensor]) -> None:
        self.seen.append({name: value.detach().clone() for name, value in params.items()})


def train(make_cfg, extra_hooks, *overrides):
    experiment = Experiment.from_config(make_cfg("trainer.epochs=6", "replicates=3", *overrides))
    data = experiment.dataset.load()
    assert len(data.y_train) == STEPS_PER_EPOCH * experiment.trainer.batch_size
    return train_population(experiment.model, data, experiment.trainer,
                            [*experiment.regularizers, *extra_hooks], experiment.seeds, CPU)


@pytest.mark.slow
@pytest.mark.parametrize("eval_every", [1, 2])   # 2: epoch 3's blow-up is seen in its steps, not an evaluation
def test_a_member_that_blows_up_is_flagged_from_its_epoch_and_the_others_are_untouched(make_cfg, eval_every):
    poisoned = train(make_cfg, [Poison(member=1, start=3)], f"trainer.eval_every={eval_every}")
    clean = train(make_cfg, [], f"trainer.eval_every={eval_every}")
    assert poisoned.diverged.tolist() == [False, True, False]
    assert poisoned.diverged_epoch.tolist() == [0, 3, 0]
    assert poisoned.epochs.tolist() == [6, 3, 6]                   # it trained no further
    assert all(torch.isnan(value[1]).all() for value in poisoned.params.values())   # never set to 7.0
    for key, value in clean.final.items():
        assert torch.equal(poisoned.final[key][[0, 2]], value[[0, 2]]), key
    for name, value in clean.params.items():
        assert torch.equal(poisoned.params[name][[0, 2]], value[[0, 2]]), name


def test_early_stopping_before_the_blow_up_reports_finite_weights_and_no_divergence(make_cfg):
    result = train(make_cfg, [Poison(member=1, start=3)],
                   "regularizer=early_stopping", "regularizer.early_stopping.patience=1")
    assert result.diverged.tolist() == [False, False, False]
    assert result.diverged_epoch.tolist() == [0, 3, 0]            # its training loss did turn non-finite
    assert all(torch.isfinite(value).all() for value in result.final.values())
    assert int(result.best_epoch[1]) < 3


def test_stopped_and_diverged_members_keep_their_parameters(make_cfg):
    snapshots = Snapshots()
    result = train(make_cfg, [Poison(member=1, start=3), snapshots],
                   "trainer.epochs=10", "regularizer=early_stopping", "regularizer.early_stopping.patience=1")
    stopped_early = [m for m in (0, 2) if result.epochs[m] < 10]
    assert stopped_early and int(result.epochs[1]) == 3          # early stopping, and the blow-up at 3
    for m in [*stopped_early, 1]:
        last = int(result.epochs[m])                              # the epoch it stopped in
        for later in snapshots.seen[last:]:
            for name, value in later.items():
                torch.testing.assert_close(value[m], snapshots.seen[last - 1][name][m], rtol=0, atol=0,
                                           equal_nan=True)
    assert all(torch.isnan(value[1]).all() for value in snapshots.seen[-1].values())


def test_a_replicate_is_diverged_when_any_member_of_its_ensemble_is(make_cfg):
    result = train(make_cfg, [Poison(member=3, start=2)], "trainer.epochs=3", "replicates=2",
                   "regularizer=ensemble", "regularizer.ensemble.members=2")
    assert result.diverged.tolist() == [False, True] and result.diverged_epoch.tolist() == [0, 2]


def with_overflowing_row(data, split: str):
    """`data` with the first input of `split` scaled to near float32's maximum: every network's outputs
    on that row overflow (inf, then NaN), so that split's loss is non-finite and the others are not."""
    x = getattr(data, f"x_{split}").clone()
    x[0] = 3e38
    return dataclasses.replace(data, **{f"x_{split}": x})


def train_with_overflowing_row(make_cfg, split: str):
    experiment = Experiment.from_config(make_cfg("trainer.epochs=2", "replicates=2"))
    data = with_overflowing_row(experiment.dataset.load(), split)
    return train_population(experiment.model, data, experiment.trainer, experiment.regularizers,
                            experiment.seeds, CPU)


@pytest.mark.parametrize("split, diverged", [("test", False), ("val", True)])
def test_divergence_is_decided_by_training_and_validation_losses_never_the_test_loss(make_cfg, split, diverged):
    result = train_with_overflowing_row(make_cfg, split)
    nonfinite = {key for key, value in result.final.items() if not torch.isfinite(value).all()}
    assert f"{split}_loss" in nonfinite and all(key.startswith(split) for key in nonfinite), nonfinite
    assert result.diverged.tolist() == [diverged] * 2
    assert result.diverged_epoch.tolist() == [0, 0]                # training itself never blew up


def test_an_overflowing_training_row_is_a_divergence(make_cfg):
    result = train_with_overflowing_row(make_cfg, "train")
    assert result.diverged.tolist() == [True, True] and result.diverged_epoch.tolist() == [1, 1]
