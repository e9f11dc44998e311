"""scikit-learn's diabetes regression set (Efron et al. 2004): 442 patients, 10 features, a disease score.

A fixed test split (`test_fraction`, seeded by TEST_SEED so every job tests on the same patients) is
carved first; validation and `n_train` come from the rest as for every dataset (`split_seed`). Features
and targets are standardized with the mean and std of the training rows only, so the losses are in
units of the target's training variance.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from regbench.config import check_number
from regbench.data.base import Data, SplitSettings

TEST_SEED = 0


def standardize(data: Data) -> Data:
    """Inputs and targets of every split shifted and scaled by the training rows' mean and std."""
    x_mean, x_std = data.x_train.mean(0), data.x_train.std(0).clamp_min(1e-12)
    y_mean, y_std = data.y_train.mean(0), data.y_train.std(0).clamp_min(1e-12)
    scaled = {}
    for split in ("train", "val", "test"):
        scaled[f"x_{split}"] = (getattr(data, f"x_{split}") - x_mean) / x_std
        scaled[f"y_{split}"] = (getattr(data, f"y_{split}") - y_mean) / y_std
    if data.x_unlabelled is not None:
        scaled["x_unlabelled"] = (data.x_unlabelled - x_mean) / x_std
    return dataclasses.replace(data, **scaled)


@dataclass
class Diabetes(SplitSettings):
    test_fraction: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("dataset.test_fraction", self.test_fraction, low=0.0, high=1.0, low_open=True, high_open=True)

    def load(self) -> Data:
        from sklearn.datasets import load_diabetes

        x, y = load_diabetes(return_X_y=True)   # shipped with scikit-learn: no download
        order = np.random.default_rng(TEST_SEED).permutation(len(y))
        n_test = int(round(self.test_fraction * len(y)))
        test, rest = order[:n_test], order[n_test:]
        data = self.split("diabetes", x[rest], y[rest], x[test], y[test], num_classes=0,
                          modality="tabular", task="regression")
        return standardize(data)
