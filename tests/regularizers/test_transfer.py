import dataclasses
import re

import numpy as np

import pytest
import torch

from regbench.config import ConfigError
from regbench.data.mnist1d import GENERATOR_DEFAULTS, cache_name, generator_changes, generator_version, load_cached
from regbench.experiment import Experiment
from regbench.regularizers.pretraining import require_mnist1d
from regbench.regularizers.transfer import source_task
from regbench.trainer.hooks import NotApplicable
from regbench.trainer import Streams, train_population
from tests.regularizers.helpers import (CPU, assert_body_stays_pretrained, assert_fresh_head_on_pretrained_body,
                                        end_to_end, pretrained_start)

SMALL = ("regularizer=transfer", "regularizer.transfer.source_samples=600", "regularizer.transfer.pretrain_epochs=1")


@pytest.mark.slow
def test_fine_tune_starts_from_the_pretrained_body_with_a_fresh_head(make_cfg):
    members = [(0, 0), (1, 0)]
    experiment, data, hook, fresh, started = pretrained_start(make_cfg, SMALL, members)
    assert hook.head == ["5.weight", "5.bias"]
    source = source_task(experiment.dataset.data_dir, 1, 600, hook.generator_changes(), hook.source_classes)
    alone = train_population(experiment.model, source, dataclasses.replace(experiment.trainer, epochs=1), [],
                             [], CPU, population=members)
    assert_fresh_head_on_pretrained_body(started, fresh, hook.head, alone.params)


@pytest.mark.slow
def test_source_keeps_only_its_classes_renumbered(make_cfg):
    data_dir = make_cfg().dataset.data_dir
    every = source_task(data_dir, 1, 600)
    subset = source_task(data_dir, 1, 600, classes=[7, 2, 5])
    assert every.num_classes == 10 and subset.num_classes == 3
    for old, new in ((7, 0), (2, 1), (5, 2)):   # the same examples, in order, under their new numbers
        assert torch.equal(subset.x_train[subset.y_train == new], every.x_train[every.y_train == old])
        assert torch.equal(subset.x_test[subset.y_test == new], every.x_test[every.y_test == old])
    assert len(subset.y_train) == int(torch.isin(every.y_train, torch.tensor([7, 2, 5])).sum())


@pytest.mark.slow
def test_default_source_is_another_distribution(make_cfg):
    """The default source differs from the target in its generator arguments (so in its cache file), not only
    in its seed; the draw with the target's arguments is another file and other data."""
    (hook,) = Experiment.from_config(make_cfg("regularizer=transfer")).regularizers
    changed = generator_changes(hook.generator_changes())
    assert changed and all(changed[key] != GENERATOR_DEFAULTS[key] for key in changed)
    assert set(changed) >= {"corr_noise_scale", "shear_scale", "scale_coeff"}
    plain = cache_name(hook.source_seed, hook.source_samples)
    assert cache_name(hook.source_seed, hook.source_samples, hook.generator_changes()) != plain
    data_dir = make_cfg().dataset.data_dir
    source = source_task(data_dir, 1, 600, hook.generator_changes(), hook.source_classes)
    same_args = source_task(data_dir, 1, 600)
    assert torch.equal(source.y_train, same_args.y_train)         # the same labels, other inputs
    assert source.x_train.shape == same_args.x_train.shape and not torch.equal(source.x_train, same_args.x_train)


def test_cache_name_lists_exactly_the_changed_arguments():
    version = generator_version()
    assert cache_name(1) == f"mnist1d-{version}_seed1.npz"
    assert cache_name(1, 20000, {"shear_scale": 0.75, "corr_noise_scale": 0.5}) \
        == f"mnist1d-{version}_seed1_n20000_corr_noise_scale0.5.npz"    # 0.75 is the default: not a change
    assert cache_name(1, 20000, {"shear_scale": 1.5, "corr_noise_scale": 0.5}) \
        == f"mnist1d-{version}_seed1_n20000_corr_noise_scale0.5_shear_scale1.5.npz"


def test_changed_generator_arguments_change_the_draw(tmp_path):
    noisy = load_cached(str(tmp_path), 3, 100, {"corr_noise_scale": 2.0})
    plain = load_cached(str(tmp_path), 3, 100)
    assert sorted(p.name for p in tmp_path.iterdir()) == [cache_name(3, 100), cache_name(3, 100, {"corr_noise_scale": 2.0})]
    assert (noisy["y"] == plain["y"]).all() and not np.allclose(noisy["x"], plain["x"])
    again = load_cached(str(tmp_path), 3, 100, {"corr_noise_scale": 2.0})   # read back from its own file
    assert np.array_equal(again["x"], noisy["x"])


@pytest.mark.parametrize("knob, message", [
    ("source_classes=[3]", "source_classes=[3] is not allowed: expected a list of at least two distinct"),
    ("source_classes=[1,1]", "source_classes=[1, 1] is not allowed"),
    ("source_classes=[0,10]", "source_classes=[0, 10] is not allowed"),
    ("source_scale_coeff=2.0", "source_scale_coeff=2.0 is out of range"),
    ("source_max_translation=1.5", "source_max_translation=1.5 is not allowed: expected an integer"),
    ("source_corr_noise_scale=-1", "source_corr_noise_scale=-1 is out of range"),
    ("source_iid_noise_scale=x", "source_iid_noise_scale='x' is not allowed"),
    ("source_shear_scale=11", "source_shear_scale=11 is out of range")])
def test_bad_source_settings_fail_in_one_line(make_cfg, knob, message):
    with pytest.raises(ConfigError, match=f"^regularizer.transfer.{re.escape(message)}") as raised:
        Experiment.from_config(make_cfg(*SMALL, f"regularizer.transfer.{knob}"))
    assert "\n" not in str(raised.value)


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


@pytest.mark.slow
def test_transfer_end_to_end(make_cfg):
    record = end_to_end(make_cfg, *SMALL)
    none = end_to_end(make_cfg, "regularizer=none")
    assert record["status"] == "completed" and record["technique"] == "transfer"
    # fine-tuning starts from the pretrained body: from the baseline's init it would be the baseline run bit for bit
    assert record["runs"][0]["test_loss"] != pytest.approx(none["runs"][0]["test_loss"], rel=1e-6)


def test_mnist1d_draws_need_an_mnist1d_target(make_cfg):
    data = Experiment.from_config(make_cfg()).dataset.load()
    require_mnist1d("regularizer=transfer", data)   # the target is MNIST-1D: allowed
    with pytest.raises(NotApplicable, match="regularizer=transfer .*dataset=mnist1d only, not digits"):
        require_mnist1d("regularizer=transfer", dataclasses.replace(data, name="digits"))
