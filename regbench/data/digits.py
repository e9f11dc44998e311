"""scikit-learn's 8x8 handwritten digits (UCI optdigits test part): 1797 images, 10 classes, offline.

It has no official test split: a fixed fraction is carved with `test_seed` before the usual
validation / subset / label-noise split, so every job and technique tests on the same images.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from regbench.config import check_number
from regbench.data.base import Data, SplitSettings
from regbench.data.images import standardize_channels


@dataclass
class Digits(SplitSettings):
    test_fraction: float = 0.2
    test_seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("dataset.test_fraction", self.test_fraction, low=0.0, high=1.0, low_open=True, high_open=True)
        check_number("dataset.test_seed", self.test_seed, low=0, integer=True)

    def load(self) -> Data:
        from sklearn.datasets import load_digits  # ships its data: no download

        raw = load_digits()
        x = raw.images.astype(np.float32)[:, None]                    # (1797, 1, 8, 8), values 0..16
        y = raw.target.astype(np.int64)
        order = np.random.default_rng(self.test_seed).permutation(len(y))
        n_test = int(round(self.test_fraction * len(y)))
        test, rest = order[:n_test], order[n_test:]
        data = self.split("digits", x[rest], y[rest], x[test], y[test], num_classes=10, modality="image")
        return standardize_channels(data)
