"""The real conf/ composes, and bad values fail at start with one line naming the key."""
from __future__ import annotations

import pytest
import torch

from regbench.config import ConfigError
from regbench.experiment import Experiment
from regbench.settings import technique_label
from tests.conftest import run_cli


def test_defaults_are_the_udl_reference_setting(make_cfg):
    cfg = make_cfg(smoke=False)
    experiment = Experiment.from_config(cfg)
    assert experiment.technique == "none"
    assert (cfg.dataset.name, cfg.model.name, list(cfg.model.hidden)) == ("mnist1d", "mlp", [100, 100])
    t = experiment.trainer
    assert (t.epochs, t.batch_size, t.optimizer, t.lr, t.momentum) == (50, 100, "sgd", 0.05, None)
    sgd = t.make_optimizer([torch.zeros(1, requires_grad=True)])
    assert sgd.momentum == 0.9  # null: SGD's momentum of UDL notebook 8.1
    assert experiment.seeds == [0]


def test_list_valued_regularizer_group_composes(make_cfg):
    cfg = make_cfg("regularizer=[l2,none]", "regularizer.l2.strength=0.01")
    experiment = Experiment.from_config(cfg)
    assert experiment.technique == "l2"
    assert [r.strength for r in experiment.regularizers if r.name == "l2"] == [0.01]


def test_technique_label_is_sorted_and_drops_none():
    assert technique_label(["none"]) == "none"
    assert technique_label([]) == "none"
    assert technique_label(["l2", "dropout", "none"]) == "dropout+l2"
    assert technique_label(["dropout", "l2"]) == technique_label(["l2", "dropout"])


def test_replicates_give_consecutive_seeds(make_cfg):
    assert Experiment.from_config(make_cfg("seed=7", "replicates=3")).seeds == [7, 8, 9]


@pytest.mark.parametrize("override, key", [
    ("trainer.epochs=-1", "trainer.epochs"),
    ("trainer.epochs=abc", "trainer.epochs"),
    ("trainer.batch_size=0", "trainer.batch_size"),
    ("trainer.optimizer=rmsprop", "trainer.optimizer"),
    ("trainer.lr=0", "trainer.lr"),
    ("trainer.momentum=1.5", "trainer.momentum"),
    ("device=tpu", "device"),
    ("replicates=0", "replicates"),
    ("seed=-3", "seed"),
    ("dataset.val_fraction=1.0", "dataset.val_fraction"),
    ("dataset.label_noise=2", "dataset.label_noise"),
    ("model.hidden=[100,-1]", "model.hidden"),
    ("model.init=xavier", "model.init"),
])
def test_bad_values_raise_config_error_naming_the_key(make_cfg, override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        Experiment.from_config(make_cfg(override))


def test_bad_regularizer_strength(make_cfg):
    with pytest.raises(ConfigError, match=r"regularizer\.l2\.strength"):
        Experiment.from_config(make_cfg("regularizer=l2", "regularizer.l2.strength=-1"))


@pytest.mark.slow
@pytest.mark.parametrize("args, key", [
    (["regularizer=nope"], "regularizer"),
    (["trainer.epochs=-1"], "trainer.epochs"),
    (["regularizer=l2", "regularizer.l2.strength=-1"], "regularizer.l2.strength"),
    (["regularizer.l2.strength=-1"], "regularizer.l2.strength"),
    (["device=tpu"], "device"),
    (["trainer.epoch=3"], "trainer.epoch"),
])
def test_cli_bad_override_is_one_line_without_traceback(tmp_path, args, key):
    done = run_cli(*args, f"hydra.run.dir={tmp_path / 'job'}")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("regbench: error:") and key in lines[0], done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "job" / "metrics.json").exists()


@pytest.mark.slow
def test_cli_full_error_shows_the_traceback(tmp_path):
    done = run_cli("device=tpu", f"hydra.run.dir={tmp_path}", env={"HYDRA_FULL_ERROR": "1"})
    assert done.returncode != 0 and "Traceback" in done.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_config_error(make_cfg):
    with pytest.raises(ConfigError, match="device=cuda"):
        Experiment.from_config(make_cfg("device=cuda"))


@pytest.mark.slow
@pytest.mark.parametrize("dataset, model", [("mnist1d", "mlp"), ("toy1d", "shallow"), ("digits", "cnn2d"),
                                            ("mnist", "cnn2d"), ("fashion_mnist", "cnn2d"), ("cifar10", "resnet"),
                                            ("breast_cancer", "mlp"), ("diabetes", "mlp")])
def test_a_dataset_brings_a_model_that_fits_it_and_model_given_wins(make_cfg, dataset, model):
    assert make_cfg(f"dataset={dataset}").model.name == model
    assert make_cfg(f"dataset={dataset}", "model=mlp").model.name == "mlp"
    assert make_cfg(f"dataset={dataset}", "model.init=torch").model.name == model
