"""Shared steps of datasets read from arrays: labels to 0..K-1, a seeded test split, standardization."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from regbench.data.base import Data


def carve_test(x: np.ndarray, y: np.ndarray, test_fraction: float, test_seed: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, x_test, y_test): a fixed test split drawn from `test_seed` alone, before any other split."""
    order = np.random.default_rng(test_seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, rest = order[:n_test], order[n_test:]
    return x[rest], y[rest], x[test], y[test]


def encode_labels(y: np.ndarray, y_test: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None, list]:
    """Class labels as 0..K-1 in sorted order of the labels seen (train and test together).

    Returns (codes, test codes, classes) with classes[k] the original label of class k.
    """
    both = y if y_test is None else np.concatenate([y, y_test])
    classes, codes = np.unique(both, return_inverse=True)
    codes = codes.reshape(-1).astype(np.int64)
    test_codes = None if y_test is None else codes[len(y):]
    return codes[: len(y)], test_codes, [c.item() if hasattr(c, "item") else c for c in classes]


def standardize(data: Data) -> Data:
    """Every input position shifted and scaled by the mean and std of the *training* inputs only, so
    nothing of the validation or test inputs leaks into training. A constant position is only shifted."""
    mean = data.x_train.mean(0, keepdim=True)                   # (1, *input_shape)
    std = data.x_train.std(0, keepdim=True).nan_to_num(1.0)
    std = torch.where(std > 0, std, torch.ones_like(std))

    def scale(x: torch.Tensor | None) -> torch.Tensor | None:
        return None if x is None else (x - mean) / std

    return dataclasses.replace(data, x_train=scale(data.x_train), x_val=scale(data.x_val),
                               x_test=scale(data.x_test), x_unlabelled=scale(data.x_unlabelled))
