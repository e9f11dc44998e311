"""What the image datasets share: per-channel standardization with training statistics only, and the
augmentations that keep their labels (regularizer.augment with ops: auto)."""
from __future__ import annotations

import dataclasses

from regbench.data.base import Data


# Centred, upright images whose mirror image can be another class (a digit, a letter; clothes, kept as
# conservative): small shifts, small rotations, blur, never a flip.
UPRIGHT_OPS = ("translate", "rotate", "blur")
# Natural photos (CIFAR-10): a mirrored scene has the same class; random crops of a padded image are
# the translation.
PHOTO_OPS = ("flip", "translate")


def standardize_channels(data: Data) -> Data:
    """x' = (x - mean_c) / std_c per channel c, mean and std over the labelled training images alone
    (never validation or test), applied to every split. Images are (N, C, H, W)."""
    x = data.x_train
    mean = x.mean(dim=(0, 2, 3), keepdim=True)[0]                     # (C, 1, 1)
    std = x.std(dim=(0, 2, 3), keepdim=True)[0].clamp_min(1e-6)       # (C, 1, 1)
    fields = ("x_train", "x_val", "x_test", "x_unlabelled")
    return dataclasses.replace(data, **{key: (getattr(data, key) - mean) / std for key in fields
                                        if getattr(data, key) is not None})
