"""A population that cannot fit is refused with one line before any member is built."""
from __future__ import annotations

import pytest
import torch

from regbench.config import ConfigError
from regbench.experiment import Experiment
from regbench.models.mlp import MLP
from regbench.trainer import memory, train_population
from regbench.trainer.memory import GIB, Footprint, activation_floats, check_memory, footprint
from tests.regularizers.helpers import CPU

TOO_MANY = r"replicates=1000000 needs about \d+ GiB \(estimated\), but [\d.]+ GiB are available on cpu: lower replicates"


def test_footprint_arithmetic_by_hand():
    small = Footprint(members=2, param_floats=10, activation_floats=5, output_floats=3, batch=4,
                      train_rows=6, largest_split=7)
    # params 2*10*8*4 = 640; training 2*4*5*3*4 = 480 < evaluation (2*7*5 + 2*7*3*4)*4 = 952;
    # gathered 2**22*4; indices 2*6*4*8 = 384; members 2*65536 = 131072
    assert small.bytes() == 640 + 952 + 2 ** 24 + 384 + 131072
    # a split longer than one evaluation tile keeps only a tile's activations at once: at most
    # 16 members x 1024 rows
    large = Footprint(members=64, param_floats=0, activation_floats=1, output_floats=0, batch=1,
                      train_rows=0, largest_split=10 ** 6)
    assert large.bytes() == 16 * 1024 * 4 + 2 ** 24 + 64 * 65536


def test_activations_are_the_input_and_every_layer_output_of_one_example():
    model = MLP(hidden=[100, 50]).build((40,), 10)
    # flatten 40, linear 100, relu 100, linear 50, relu 50, linear 10, plus the input 40
    assert activation_floats(model, (40,)) == (390, 10)


def test_ordinary_populations_fit_a_small_machine(make_cfg):
    experiment = Experiment.from_config(make_cfg(smoke=False))
    data = experiment.dataset.load()
    needed = footprint(experiment.model, data, experiment.trainer.batch_size, 500, 10).bytes()
    assert needed < 6 * GIB   # 500 default MLPs must pass on a 24 GiB machine with room to spare


@pytest.mark.slow
def test_a_million_replicates_fail_before_building_with_one_line(make_cfg):
    experiment = Experiment.from_config(make_cfg())
    with pytest.raises(ConfigError, match=f"^{TOO_MANY}$"):
        train_population(experiment.model, experiment.dataset.load(), experiment.trainer,
                         experiment.regularizers, list(range(10 ** 6)), CPU)


def test_the_message_names_replicates_and_ensemble_members(make_cfg, monkeypatch):
    experiment = Experiment.from_config(make_cfg())
    data = experiment.dataset.load()
    population = [(seed, member) for seed in range(3) for member in range(5)]
    monkeypatch.setattr(memory, "available_bytes", lambda device: 1)
    with pytest.raises(ConfigError, match=r"^replicates=3 with ensemble members 5 needs about 0\.\d GiB "
                                          r"\(estimated\), but 0\.0 GiB are available on cpu: lower replicates$"):
        check_memory(experiment.model, data, 100, population, 10, torch.device("cpu"))
    monkeypatch.setattr(memory, "available_bytes", lambda device: None)   # unknown: no refusal
    check_memory(experiment.model, data, 100, population, 10, torch.device("cpu"))
