"""Breast cancer Wisconsin (diagnostic), scikit-learn's copy: 569 examples, 30 features, 2 classes."""
from __future__ import annotations

from dataclasses import dataclass

from regbench.config import check_number
from regbench.data.base import Data, SplitSettings
from regbench.data.tabular import carve_test, standardize


@dataclass
class BreastCancer(SplitSettings):
    test_fraction: float = 0.2   # carved first, from test_seed alone: every split_seed sees one test set
    test_seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("dataset.test_fraction", self.test_fraction, low=0.0, high=1.0, low_open=True, high_open=True)
        check_number("dataset.test_seed", self.test_seed, low=0, integer=True)

    def load(self) -> Data:
        from sklearn.datasets import load_breast_cancer  # bundled with scikit-learn: no download

        raw = load_breast_cancer()
        x, y, x_test, y_test = carve_test(raw.data, raw.target, self.test_fraction, self.test_seed)
        data = self.split("breast_cancer", x, y, x_test, y_test, num_classes=2, modality="tabular")
        return standardize(data)
