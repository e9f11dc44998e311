"""Datasets as tensors: each option of the `dataset` config group is a dataclass here."""
from __future__ import annotations

from regbench.data.base import Data
from regbench.data.diabetes import Diabetes
from regbench.data.mnist1d import Mnist1D
from regbench.data.toy1d import Toy1D

DATASETS = {
    "mnist1d": Mnist1D,
    "toy1d": Toy1D,
    "diabetes": Diabetes,
}

__all__ = ["DATASETS", "Data"]
