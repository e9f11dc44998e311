"""The presets in conf/suite compose and cover what they promise."""
from __future__ import annotations

from regbench.regularizers import REGULARIZERS


def test_chapter9_sweeps_every_technique_as_a_multirun(make_cfg):
    cfg = make_cfg("+suite=chapter9", smoke=False, hydra=True)
    swept = cfg.hydra.sweeper.params.regularizer.split(",")
    assert sorted(swept) == sorted(REGULARIZERS)
    assert cfg.hydra.mode.name == "MULTIRUN" and cfg.replicates >= 3
    assert "joblib" in cfg.hydra.launcher._target_.lower()


def test_implicit_sweeps_batch_size_with_full_batch_and_the_gradient_penalty(make_cfg):
    cfg = make_cfg("+suite=implicit", smoke=False, hydra=True)
    params = cfg.hydra.sweeper.params
    assert "null" in params["trainer.batch_size"].split(",")
    assert len(params["trainer.lr"].split(",")) >= 2
    assert set(params.regularizer.split(",")) == {"none", "grad_penalty"}
    assert cfg.trainer.steps is not None and cfg.trainer.momentum == 0
