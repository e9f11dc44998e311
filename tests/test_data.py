"""Datasets: pretraining never sees the target's test inputs; the MNIST-1D cache is readable by others."""
from __future__ import annotations

import dataclasses
import os
import stat

import pytest
import torch

from regbench import results
from regbench.config import ConfigError
from regbench.data.base import check_no_test_inputs, count_test_inputs_in
from regbench.data.mnist1d import cache_name, load_cached
from regbench.experiment import Experiment
from regbench.regularizers.pretraining import PretrainedBody
from regbench.regularizers.transfer import source_task
from regbench.trainer import Streams, train_population
from regbench.trainer.loop import build_population
from tests.regularizers.helpers import CPU

TRANSFER = ("regularizer=transfer", "regularizer.transfer.source_samples=600", "regularizer.transfer.pretrain_epochs=1")
SSL_MASKED = ("regularizer=ssl_masked", "regularizer.ssl_masked.pretrain_epochs=1")


def test_test_inputs_are_counted_as_copies_up_to_a_rescaling():
    x_test = torch.tensor([[0.0, 1.0, 2.0], [2.0, 3.0, 7.0], [4.0, 5.0, 1.0], [1.0, 1.0, 1.0]])
    inputs = torch.tensor([[0.0, 1.0, 2.0],              # an exact copy
                           [13.0, 16.0, 4.0],            # 3 x [4, 5, 1] + 1: the same row renormalized
                           [2.0, 3.0, 7.1]])             # a near miss is another input
    data = type("D", (), {"x_test": x_test})()
    assert count_test_inputs_in(inputs, data) == 2


def test_the_target_generator_seed_is_carried_on_the_data(make_cfg):
    assert Experiment.from_config(make_cfg()).dataset.load().to(CPU).generator_seed == 42


@pytest.mark.slow
def test_transfer_from_the_targets_own_draw_is_refused_for_any_target_seed(make_cfg):
    """generator_seed=1: source seed 1 is the target's own draw (at the default 20000 source examples, 83
    of the target's test inputs are source training inputs, renormalized)."""
    experiment = Experiment.from_config(make_cfg(*TRANSFER, "dataset.generator_seed=1",
                                                 "regularizer.transfer.source_seed=1"))
    with pytest.raises(ConfigError, match="^regularizer.transfer.source_seed=1 is not allowed: it is the "
                                          "target's own draw \\(dataset.generator_seed=1\\)"):
        train_population(experiment.model, experiment.dataset.load(), experiment.trainer,
                         experiment.regularizers, [0], CPU)


@pytest.mark.slow
def test_the_data_guard_alone_catches_a_draw_that_shares_the_targets_seed(make_cfg):
    """Draws of one seed share their first examples of class 0, each draw normalized by its own mean and
    std: no exact copies, yet the same test examples (10 of them for a 600-example source)."""
    target = Experiment.from_config(make_cfg("dataset.generator_seed=1")).dataset.load()
    source = source_task(make_cfg().dataset.data_dir, 1, 600)
    assert not set(map(tuple, source.x_train.tolist())) & set(map(tuple, target.x_test.tolist()))
    with pytest.raises(ConfigError, match=r"^regularizer\.transfer: 10 of the 1000 test inputs"):
        check_no_test_inputs("regularizer.transfer", source.x_train, target)


def start_stage(make_cfg, overrides, plant):
    """Bind the pretraining hook to the target data with `plant(data)` as its test inputs, then build the
    fine-tune's starting parameters (which runs the stage)."""
    experiment = Experiment.from_config(make_cfg(*overrides))
    data = experiment.dataset.load()
    data = dataclasses.replace(data, x_test=plant(data))
    (hook,) = experiment.regularizers
    assert isinstance(hook, PretrainedBody)
    hook.bind(Streams([0], CPU), data)
    spec = hook.model(experiment.model)
    model, params = build_population(spec, data, [0], CPU)
    return hook.init_params(model, params, experiment.trainer)


@pytest.mark.slow
def test_the_data_guard_refuses_test_inputs_planted_in_the_source(make_cfg):
    (hook,) = Experiment.from_config(make_cfg(*TRANSFER)).regularizers
    source = source_task(make_cfg().dataset.data_dir, 1, 600, hook.generator_changes())

    def plant(data):   # seven source inputs among the target's test inputs (seeds 1 and 42 differ)
        return torch.cat([source.x_train[:7], data.x_test[7:]])

    with pytest.raises(ConfigError, match=r"^regularizer\.transfer: 7 of the 1000 test inputs of dataset mnist1d "
                                          r"are among the pretraining inputs \(copies, up to a rescaling\)") as raised:
        start_stage(make_cfg, TRANSFER, plant)
    assert "\n" not in str(raised.value)


def test_the_data_guard_covers_self_supervised_pools(make_cfg):
    def plant(data):   # three target training inputs copied into the test split
        return torch.cat([data.x_train[:3], data.x_test[3:]])

    with pytest.raises(ConfigError, match=r"^regularizer\.ssl_masked: 3 of the 1000 test inputs"):
        start_stage(make_cfg, SSL_MASKED, plant)


@pytest.mark.slow
def test_default_pretraining_data_holds_no_target_test_input(make_cfg):
    experiment = Experiment.from_config(make_cfg("regularizer=[transfer,ssl_contrastive]", smoke=False))
    target = experiment.dataset.load()
    pretraining = {}
    for hook in experiment.regularizers:
        hook.bind(Streams([0], CPU), target)
        pretraining[hook.name] = hook.stage()[0].x_train
    assert len(pretraining["transfer"]) == 16000                                     # 80% of 20000
    assert len(pretraining["ssl_contrastive"]) == len(target.unlabelled_pool()) + 16000   # with the extra pool
    for name, inputs in pretraining.items():
        assert count_test_inputs_in(inputs, target) == 0, name


def test_the_mnist1d_cache_gets_the_usual_file_mode(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "_MODE", None)   # read the umask set here, not one cached earlier
    umask = os.umask(0o022)
    try:
        arrays = load_cached(str(tmp_path), generator_seed=3, num_samples=100)
    finally:
        os.umask(umask)
    (path,) = tmp_path.iterdir()
    assert path.name == cache_name(3, 100) and stat.S_IMODE(path.stat().st_mode) == 0o644
    cached = load_cached(str(tmp_path), generator_seed=3, num_samples=100)
    assert all((cached[key] == arrays[key]).all() for key in arrays)
