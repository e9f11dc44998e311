"""Breast cancer Wisconsin (diagnostic), scikit-learn's copy: 569 examples, 30 features, 2 classes."""
from __future__ import annotations

from dataclasses import dataclass

from regbench.data.base import Data, HeldOutTest
from regbench.data.tabular import standardize


@dataclass
class BreastCancer(HeldOutTest):
    examples = 569

    def load(self) -> Data:
        from sklearn.datasets import load_breast_cancer  # bundled with scikit-learn: no download

        raw = load_breast_cancer()
        x, y, x_test, y_test = self.carve_test(raw.data, raw.target)
        data = self.split("breast_cancer", x, y, x_test, y_test, num_classes=2, modality="tabular")
        return standardize(data)
