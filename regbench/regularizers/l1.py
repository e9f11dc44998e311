"""L1 penalty: L' = L + strength * sum|w| over weights, biases excluded (UDL 9.1.1; Tibshirani 1996, lasso)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from regbench.config import check_number
from regbench.regularizers.l2 import is_weight
from regbench.trainer.hooks import Params, Regularizer


def l1_penalty(params: Params) -> torch.Tensor:
    """sum of absolute weights per member: (P,)."""
    return sum(value.abs().flatten(1).sum(1) for name, value in params.items() if is_weight(name, value))


@dataclass
class L1(Regularizer):
    strength: float = 3e-4
    name = "l1"
    member_knobs = ("strength",)

    def __post_init__(self) -> None:
        check_number("regularizer.l1.strength", self.strength, low=0.0)

    def penalty(self, params: Params, losses: torch.Tensor) -> torch.Tensor:
        return self.strength * l1_penalty(params)
