"""UDL's 1-D regression toy: y = exp(sin(2πx)) + N(0, σ²), a few noisy training points on [0, 1].

Training and validation x are spread over [0, 1] as UDL's notebooks 9.1-9.3 draw them: the i-th of n points
uniform on [i/n, (i+1)/n), so that with 15 points each of the 14 kinks of the toy's network (model
shallow) has about one point beside it. Both are drawn (with their noise) from `data_seed` alone; the
test set is a dense grid on [0, 1] with the true, noiseless function as its targets, so the test loss
measures how well the fit recovers the function (its floor is 0, not σ²). Validation points are noisy,
drawn like training points. Inputs are (N, 1) floats (modality tabular); targets (N,) floats.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from regbench.config import check_number
from regbench.data.base import Data


def true_function(x: np.ndarray) -> np.ndarray:
    return np.exp(np.sin(2 * math.pi * x))


def spread(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n,) points on [0, 1], the i-th uniform on [i/n, (i+1)/n): no two land far from the rest."""
    return (np.arange(n) + rng.uniform(0.0, 1.0, n)) / n


@dataclass
class Toy1D:
    n_train: int = 15          # noisy training points
    n_val: int = 10            # noisy validation points, drawn like the training points (0: none)
    n_test: int = 200          # points of the evenly spaced test grid on [0, 1]
    noise_std: float = 0.3     # σ of the Gaussian noise on training and validation targets
    data_seed: int = 0         # fixes the training and validation draw for every technique
    # 2: x spread one point per 1/n of [0, 1] (UDL notebooks 9.1-9.3; was uniform on [0, 1])
    revision: ClassVar[int] = 2  # bump when this code changes what a config computes (regbench.identity)

    def __post_init__(self) -> None:
        check_number("dataset.n_train", self.n_train, low=1, integer=True)
        check_number("dataset.n_val", self.n_val, low=0, integer=True)
        check_number("dataset.n_test", self.n_test, low=2, integer=True)
        check_number("dataset.noise_std", self.noise_std, low=0.0)
        check_number("dataset.data_seed", self.data_seed, low=0, integer=True)

    def load(self) -> Data:
        rng = np.random.default_rng(self.data_seed)
        n = self.n_train + self.n_val
        x = np.concatenate([spread(rng, self.n_train), spread(rng, self.n_val)])
        y = true_function(x) + self.noise_std * rng.standard_normal(n)
        x_test = np.linspace(0.0, 1.0, self.n_test)

        def column(a: np.ndarray) -> torch.Tensor:                            # (N, 1) inputs
            return torch.as_tensor(a, dtype=torch.float32).unsqueeze(1)

        def target(a: np.ndarray) -> torch.Tensor:                            # (N,) targets
            return torch.as_tensor(a, dtype=torch.float32)

        train, val = slice(0, self.n_train), slice(self.n_train, n)
        return Data(name="toy1d", x_train=column(x[train]), y_train=target(y[train]),
                    x_val=column(x[val]), y_val=target(y[val]),
                    x_test=column(x_test), y_test=target(true_function(x_test)),
                    num_classes=0, modality="tabular", task="regression")
