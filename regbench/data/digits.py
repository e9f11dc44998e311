"""scikit-learn's 8x8 handwritten digits (UCI optdigits test part): 1797 images, 10 classes, offline.

It has no official test split: a fixed fraction is carved with `test_seed` before the usual
validation / subset / label-noise split, so every job and technique tests on the same images.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from regbench.data.base import Data, HeldOutTest
from regbench.data.images import standardize_channels

# No flip (a mirrored digit can be another digit) and no translation: these 8x8 images are already centred,
# and one pixel is an eighth of the image. Chosen on validation accuracy (cnn2d, 3 seeds, default
# strengths): rotate + blur 98.6%, none 97.5%, translate alone 97.0%, translate + rotate + blur 95.8%.
AUGMENT_OPS = ("rotate", "blur")


@dataclass
class Digits(HeldOutTest):
    examples = 1797

    def load(self) -> Data:
        from sklearn.datasets import load_digits  # ships its data: no download

        raw = load_digits()
        x = raw.images.astype(np.float32)[:, None]                    # (1797, 1, 8, 8), values 0..16
        y = raw.target.astype(np.int64)
        x, y, x_test, y_test = self.carve_test(x, y)
        data = self.split("digits", x, y, x_test, y_test, num_classes=10, modality="image")
        return dataclasses.replace(standardize_channels(data), augment_ops=AUGMENT_OPS)
