"""UDL's toy (docs/lesson-toy.md): the fixed-kink shallow net, the spread draw of x, and the presets that
show it overfitting (+suite=toy) and the implicit regularization of the trained net (+suite=toy_implicit)."""
from __future__ import annotations

import pytest
import torch

from regbench.config import ConfigError
from regbench.data.toy1d import Toy1D
from regbench.experiment import Experiment
from regbench.models.shallow import FixedLinear, Shallow
from regbench.trainer import train_population

CPU = torch.device("cpu")


def test_fixed_kinks_bend_at_j_over_hidden_and_only_the_output_layer_trains():
    model = Shallow(hidden=7).build((1,), 1)
    first = model[1]
    assert isinstance(first, FixedLinear) and not list(first.parameters())
    assert sum(p.numel() for p in model.parameters()) == 7 + 1                 # output weights and bias
    knots = torch.arange(7) / 7
    x = torch.cat([knots - 1e-4, knots + 1e-4]).unsqueeze(1)                   # (14, 1): beside each kink
    active = model[2](first(x)) > 0                                            # (14, 7) ReLU outputs
    # unit j is off just left of j/7 and on just right of it (unit 0 bends at 0)
    assert torch.equal(active[7:].diagonal(), torch.ones(7, dtype=torch.bool))
    assert not active[:7].diagonal().any()
    he = Shallow(hidden=7, init="he").build((1,), 1)                           # init reaches parameters only
    assert torch.equal(he[1].weight, first.weight) and torch.equal(he[1].bias, first.bias)
    assert sum(p.numel() for p in Shallow(hidden=7, first_layer="trained").build((1,), 1).parameters()) == 22


def test_fixed_kinks_take_one_input_and_say_so(make_cfg):
    with pytest.raises(ConfigError, match="model.first_layer=fixed_kinks .* dataset=mnist1d .* model.first_layer=trained"):
        Shallow().check_input("mnist1d", (40,))
    Shallow(first_layer="trained").check_input("mnist1d", (40,))
    with pytest.raises(ConfigError, match="model.first_layer"):
        Experiment.from_config(make_cfg("dataset=toy1d", "model.first_layer=frozen"))


def test_training_points_are_spread_one_to_each_nth_of_the_interval():
    data = Toy1D(n_train=15, n_val=10, data_seed=5).load()
    for x, n in ((data.x_train[:, 0], 15), (data.x_val[:, 0], 10)):
        stratum = (x * n).floor()
        assert torch.equal(stratum, torch.arange(n, dtype=x.dtype))


def test_a_tiny_toy_interpolates_its_noisy_points_under_none(make_cfg):
    """7 points, 7 fixed kinks, Adam to convergence: the fit goes through the noise (the full toy, 15 points
    and 14 kinks, needs the default 10000 steps: docs/lesson-toy.md)."""
    experiment = Experiment.from_config(make_cfg(
        "dataset=toy1d", "dataset.n_train=7", "dataset.n_val=4", "dataset.n_test=50", "model.hidden=7",
        "trainer.lr=0.05", "trainer.epochs=1500", "trainer.eval_every=500", "trainer.curve_every=1500", smoke=False))
    data = experiment.dataset.load()
    result = train_population(experiment.model, data, experiment.trainer, experiment.regularizers, [0, 1], CPU)
    assert (result.final["train_loss"] < 0.02).all(), result.final["train_loss"]


def test_penalties_and_decay_reach_the_output_layer_only(make_cfg):
    experiment = Experiment.from_config(make_cfg("dataset=toy1d", "regularizer=[l2,weight_decay]", "trainer.epochs=20",
                                                 "regularizer.l2.strength=0.1", smoke=False))
    data = experiment.dataset.load()
    result = train_population(experiment.model, data, experiment.trainer, experiment.regularizers, [0], CPU)
    assert set(result.params) == {"3.weight", "3.bias"}                        # the kinks are no parameters
    fresh = experiment.model.build(data.input_shape, data.output_size)
    assert not torch.equal(result.params["3.weight"][0], fresh[3].weight)     # the output layer trained


def test_the_toy_suite_tunes_each_technique_on_validation_for_the_toy(make_cfg):
    cfg = make_cfg("+suite=toy", smoke=False, hydra=True)
    assert cfg.dataset.name == "toy1d" and cfg.model.first_layer == "fixed_kinks" and cfg.model.hidden == 14
    swept = set(cfg.hydra.sweeper.params.regularizer.split(","))
    assert swept == {"none", "l2", "weight_decay", "ensemble", "bagging", "dropout", "early_stopping", "input_noise"}
    assert 0 < cfg.selection_seeds < cfg.replicates
    grids = {"l2": "strength", "weight_decay": "decay", "dropout": "p", "input_noise": "std", "early_stopping": "patience"}
    for technique, knob in grids.items():
        assert len(cfg.regularizer[technique][knob]) >= 4, technique


def test_the_implicit_toy_is_the_trained_hundred_unit_net_under_small_steps(make_cfg):
    cfg = make_cfg("+suite=toy_implicit", smoke=False, hydra=True)
    assert cfg.dataset.name == "toy1d"
    assert (cfg.model.hidden, cfg.model.first_layer, cfg.model.init) == (100, "trained", "torch")
    assert (cfg.trainer.optimizer, cfg.trainer.lr, cfg.trainer.epochs, cfg.trainer.batch_size) == ("sgd", 0.01, 3000, None)
    assert "none" in cfg.hydra.sweeper.params.regularizer.split(",")
