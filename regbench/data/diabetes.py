"""scikit-learn's diabetes regression set (Efron et al. 2004): 442 patients, 10 features, a disease score.

A fixed test split (`test_fraction`, seeded by `test_seed` so every job tests on the same patients) is
carved first; validation and `n_train` come from the rest as for every dataset (`split_seed`). Features
and targets are standardized with the mean and std of the training rows only, so the losses are in
units of the target's training variance.
"""
from __future__ import annotations

from dataclasses import dataclass

from regbench.data.base import Data, HeldOutTest
from regbench.data.tabular import standardize


@dataclass
class Diabetes(HeldOutTest):
    examples = 442

    def load(self) -> Data:
        from sklearn.datasets import load_diabetes

        x, y = load_diabetes(return_X_y=True)   # shipped with scikit-learn: no download
        x, y, x_test, y_test = self.carve_test(x, y)
        data = self.split("diabetes", x, y, x_test, y_test, num_classes=0, modality="tabular",
                          task="regression")
        return standardize(data, targets=True)
