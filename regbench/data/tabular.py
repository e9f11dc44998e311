"""Shared steps of datasets read from arrays: labels to 0..K-1, standardization."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from regbench.data.base import Data


def encode_labels(y: np.ndarray, y_test: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None, list]:
    """Class labels as 0..K-1 in sorted order of the labels seen (train and test together).

    Returns (codes, test codes, classes) with classes[k] the original label of class k.
    """
    both = y if y_test is None else np.concatenate([y, y_test])
    classes, codes = np.unique(both, return_inverse=True)
    codes = codes.reshape(-1).astype(np.int64)
    test_codes = None if y_test is None else codes[len(y):]
    return codes[: len(y)], test_codes, [c.item() if hasattr(c, "item") else c for c in classes]


def standardize(data: Data, targets: bool = False) -> Data:
    """Every input position (and with `targets`, every regression target column) shifted and scaled by
    the mean and std of the *training* rows only, so nothing of the validation or test rows leaks into
    training. A constant position is only shifted."""
    def scaler(train: torch.Tensor):
        mean = train.mean(0, keepdim=True)                      # (1, *shape)
        std = train.std(0, keepdim=True).nan_to_num(1.0)
        std = torch.where(std > 0, std, torch.ones_like(std))
        return lambda t: None if t is None else (t - mean) / std

    x = scaler(data.x_train)
    scaled = dict(x_train=x(data.x_train), x_val=x(data.x_val), x_test=x(data.x_test),
                  x_unlabelled=x(data.x_unlabelled))
    if targets:
        y = scaler(data.y_train)
        scaled.update(y_train=y(data.y_train), y_val=y(data.y_val), y_test=y(data.y_test))
    return dataclasses.replace(data, **scaled)
