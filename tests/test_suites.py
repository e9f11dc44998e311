"""The presets in conf/suite compose and cover what they promise."""
from __future__ import annotations

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from regbench.config import CONF_DIR
from regbench.regularizers import REGULARIZERS


def compose_with_hydra(*overrides):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    GlobalHydra.instance().clear()
    return cfg


def test_chapter9_sweeps_every_technique_as_a_multirun():
    cfg = compose_with_hydra("+suite=chapter9")
    swept = cfg.hydra.sweeper.params.regularizer.split(",")
    assert sorted(swept) == sorted(REGULARIZERS)
    assert cfg.hydra.mode.name == "MULTIRUN" and cfg.replicates >= 3
    assert "joblib" in cfg.hydra.launcher._target_.lower()


def test_implicit_sweeps_batch_size_with_full_batch_and_the_gradient_penalty():
    cfg = compose_with_hydra("+suite=implicit")
    params = cfg.hydra.sweeper.params
    assert "null" in params["trainer.batch_size"].split(",")
    assert len(params["trainer.lr"].split(",")) >= 2
    assert set(params.regularizer.split(",")) == {"none", "grad_penalty"}
    assert cfg.trainer.steps is not None and cfg.trainer.momentum == 0
