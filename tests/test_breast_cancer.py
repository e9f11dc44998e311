"""dataset=breast_cancer: a fixed seeded test split carved first, features standardized on train only."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from regbench.data import breast_cancer
from regbench.data.base import Data
from regbench.data.tabular import standardize
from regbench.experiment import Experiment

FULL = ("dataset=breast_cancer", "dataset.n_train=null")


def load(make_cfg, *overrides):
    return Experiment.from_config(make_cfg(*FULL, *overrides)).dataset.load()


@pytest.fixture
def raw(monkeypatch):
    """Load without standardization: the split's raw features."""
    monkeypatch.setattr(breast_cancer, "standardize", lambda data: data)


@pytest.mark.slow
def test_breast_cancer_is_binary_tabular_with_a_fixed_test_split(make_cfg, raw):
    data = load(make_cfg)
    assert (data.modality, data.num_classes, data.input_shape) == ("tabular", 2, (30,))
    assert (len(data.x_test), len(data.x_train) + len(data.x_val)) == (114, 455)
    other = load(make_cfg, "dataset.split_seed=3")   # another validation split, the same test set
    assert torch.equal(other.x_test, data.x_test) and not torch.equal(other.x_val, data.x_val)
    assert not torch.equal(load(make_cfg, "dataset.test_seed=1").x_test, data.x_test)
    every = torch.cat([data.x_train, data.x_val, data.x_test])
    assert len(torch.unique(every, dim=0)) == 569   # no example in two splits


def test_breast_cancer_is_standardized_with_training_statistics_only(make_cfg, monkeypatch):
    data = load(make_cfg)
    monkeypatch.setattr(breast_cancer, "standardize", lambda data: data)
    unscaled = load(make_cfg)
    mean, std = unscaled.x_train.mean(0), unscaled.x_train.std(0)
    for split in ("x_train", "x_val", "x_test"):
        torch.testing.assert_close(getattr(data, split), (getattr(unscaled, split) - mean) / std)


def test_standardize_uses_the_training_split_alone():
    """Train {0, 2} (mean 1, std √2); val and test far off must not move the statistics."""
    def rows(*values):
        return torch.tensor(values, dtype=torch.float32)[:, None]
    data = Data("t", rows(0.0, 2.0), torch.zeros(2, dtype=torch.int64), rows(100.0), torch.zeros(1, dtype=torch.int64),
                rows(-50.0, 1.0), torch.zeros(2, dtype=torch.int64), num_classes=2, modality="tabular",
                x_unlabelled=rows(5.0))
    scaled = standardize(data)
    s = 2 ** 0.5
    torch.testing.assert_close(scaled.x_train, rows(-1 / s, 1 / s))
    torch.testing.assert_close(scaled.x_val, rows(99 / s))
    torch.testing.assert_close(scaled.x_test, rows(-51 / s, 0.0))
    torch.testing.assert_close(scaled.x_unlabelled, rows(4 / s))
    constant = standardize(dataclasses.replace(data, x_train=rows(3.0, 3.0)))   # std 0: shift only
    torch.testing.assert_close(constant.x_val, rows(97.0))
