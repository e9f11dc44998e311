"""Datasets as tensors: each option of the `dataset` config group is a dataclass here."""
from __future__ import annotations

from regbench.data.base import Data
from regbench.data.breast_cancer import BreastCancer
from regbench.data.mnist1d import Mnist1D

DATASETS = {
    "mnist1d": Mnist1D,
    "breast_cancer": BreastCancer,
}

__all__ = ["DATASETS", "Data"]
