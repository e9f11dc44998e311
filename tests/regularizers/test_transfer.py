import dataclasses

import pytest
import torch

from regbench.config import ConfigError
from regbench.experiment import Experiment
from regbench.regularizers.pretraining import require_mnist1d
from regbench.regularizers.transfer import source_task
from regbench.trainer.hooks import NotApplicable
from regbench.trainer import Streams, train_population
from tests.regularizers.helpers import (CPU, assert_body_stays_pretrained, assert_fresh_head_on_pretrained_body,
                                        end_to_end, pretrained_start)

SMALL = ("regularizer=transfer", "regularizer.transfer.source_samples=600", "regularizer.transfer.pretrain_epochs=1")


def test_fine_tune_starts_from_the_pretrained_body_with_a_fresh_head(make_cfg):
    members = [(0, 0), (1, 0)]
    experiment, data, hook, fresh, started = pretrained_start(make_cfg, SMALL, members)
    assert hook.head == ["5.weight", "5.bias"]
    source = source_task(experiment.dataset.data_dir, 1, 600, permute_labels=True)
    alone = train_population(experiment.model, source, dataclasses.replace(experiment.trainer, epochs=1), [],
                             [], CPU, population=members)
    assert_fresh_head_on_pretrained_body(started, fresh, hook.head, alone.params)


def test_source_task_relabels_classes_and_is_another_draw(make_cfg):
    data_dir = make_cfg().dataset.data_dir
    target = Experiment.from_config(make_cfg()).dataset.load()
    plain = source_task(data_dir, 1, 600, permute_labels=False)
    renamed = source_task(data_dir, 1, 600, permute_labels=True)
    assert torch.equal(plain.x_train, renamed.x_train) and not torch.equal(plain.y_train, renamed.y_train)
    mapping = {int(a): int(b) for a, b in zip(plain.y_train, renamed.y_train)}
    assert sorted(mapping) == sorted(mapping.values()) == list(range(10))   # a permutation of classes
    assert len(plain.y_train) == 480 and not torch.equal(plain.x_train[:5], target.x_train[:5])


def test_frozen_body_does_not_move_during_fine_tuning(make_cfg):
    assert_body_stays_pretrained(make_cfg, (*SMALL, "regularizer.transfer.freeze=true"))


def test_frozen_body_is_untouched_by_weight_decay(make_cfg):
    """Freezing is the trainer's: weight decay (an after_step hook) never sees the frozen body."""
    assert_body_stays_pretrained(make_cfg, ("regularizer=[transfer,weight_decay]", *SMALL[1:],
                                            "regularizer.transfer.freeze=true", "regularizer.weight_decay.decay=1"))


def test_transfer_refuses_the_targets_own_draw(make_cfg):
    experiment = Experiment.from_config(make_cfg(*SMALL, "regularizer.transfer.source_seed=42"))
    with pytest.raises(ConfigError, match="regularizer.transfer.source_seed=42 .*dataset.generator_seed=42"):
        experiment.regularizers[0].bind(Streams([0], CPU), experiment.dataset.load())


def test_transfer_end_to_end(make_cfg):
    record = end_to_end(make_cfg, *SMALL)
    assert record["status"] == "completed" and record["technique"] == "transfer"


def test_mnist1d_draws_need_an_mnist1d_target(make_cfg):
    data = Experiment.from_config(make_cfg()).dataset.load()
    require_mnist1d("regularizer=transfer", data)   # the target is MNIST-1D: allowed
    with pytest.raises(NotApplicable, match="regularizer=transfer .*dataset=mnist1d only, not digits"):
        require_mnist1d("regularizer=transfer", dataclasses.replace(data, name="digits"))
