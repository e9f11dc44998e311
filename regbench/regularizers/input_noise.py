"""Input noise: x' = x + std * eps, eps ~ N(0, I), fresh per example, step and member; training only
(UDL 9.3.2; Bishop 1995, training with noise is Tikhonov regularization)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from regbench.config import check_number
from regbench.trainer.hooks import Regularizer, broadcast


def add_input_noise(x: torch.Tensor, normal: torch.Tensor, std: float | torch.Tensor) -> torch.Tensor:
    """x + std * normal; `normal` holds standard-normal draws of x's shape (P, B, ...), `std` is a number
    or one per member, (P,)."""
    return x + broadcast(std, x) * normal


@dataclass
class InputNoise(Regularizer):
    std: float = 0.4
    name = "input_noise"
    member_knobs = ("std",)

    def __post_init__(self) -> None:
        check_number("regularizer.input_noise.std", self.std, low=0.0)

    def batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        normal = self.streams.normal(self.stream("noise"), tuple(x.shape[1:]))  # (P, B, *input)
        return add_input_noise(x, normal, self.std), y
