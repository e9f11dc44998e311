"""Label smoothing: y' = (1 - ε)·onehot(y) + ε/K (UDL 9.3.5; Szegedy et al. 2016, "Rethinking the Inception
Architecture", section 7).

Soft targets (e.g. from mixup) are smoothed the same way: y' = (1 - ε)·y + ε/K. The map is affine, so
smoothing a mixup target equals mixing the smoothed targets; running after mixup only keeps one code path.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from regbench.config import check_number
from regbench.data.base import Data
from regbench.trainer.hooks import NotApplicable, Regularizer, broadcast, is_off
from regbench.trainer.streams import Streams


def as_probabilities(y: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """(P, B) class indices -> (P, B, K) one-hot; (P, B, K) probabilities pass through as `dtype`."""
    if y.is_floating_point():
        return y.to(dtype)
    return F.one_hot(y, num_classes).to(dtype)


def smooth_targets(targets: torch.Tensor, smoothing: float | torch.Tensor) -> torch.Tensor:
    """(P, ..., K) probabilities -> (1 - smoothing)·targets + smoothing/K; the identity at smoothing = 0.
    `smoothing` is a number or one per member, (P,)."""
    smoothing = broadcast(smoothing, targets)
    return (1 - smoothing) * targets + smoothing / targets.shape[-1]


@dataclass
class LabelSmoothing(Regularizer):
    smoothing: float = 0.1
    name = "label_smoothing"
    member_knobs = ("smoothing",)
    order = 70  # target transform: after mixup (60) has made soft targets

    def __post_init__(self) -> None:
        check_number("regularizer.label_smoothing.smoothing", self.smoothing, low=0.0, high=1.0)

    def bind(self, streams: Streams, data: Data) -> None:
        super().bind(streams, data)
        if data.task != "classification":
            raise NotApplicable(f"label_smoothing smooths class targets: dataset {data.name} is a {data.task} task")

    def batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if is_off(self.smoothing):
            return x, y
        targets = as_probabilities(y, self.data.num_classes, x.dtype)  # (P, B, K)
        return x, smooth_targets(targets, self.smoothing)
