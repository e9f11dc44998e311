"""Datasets as tensors: each option of the `dataset` config group is a dataclass here."""
from __future__ import annotations

from regbench.data.base import Data
from regbench.data.breast_cancer import BreastCancer
from regbench.data.diabetes import Diabetes
from regbench.data.digits import Digits
from regbench.data.file import FileData
from regbench.data.image_files import Cifar10, FashionMnist, Mnist
from regbench.data.mnist1d import Mnist1D
from regbench.data.toy1d import Toy1D

DATASETS = {
    "mnist1d": Mnist1D,
    "toy1d": Toy1D,
    "digits": Digits,
    "mnist": Mnist,
    "fashion_mnist": FashionMnist,
    "cifar10": Cifar10,
    "breast_cancer": BreastCancer,
    "diabetes": Diabetes,
    "file": FileData,
}

__all__ = ["DATASETS", "Data"]
