"""L2 penalty: L' = L + strength * sum(w^2) over weights, biases excluded (UDL 9.1.1; Hoerl & Kennard 1970)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from regbench.config import check_number
from regbench.trainer.hooks import Params, Regularizer


def is_weight(name: str, value: torch.Tensor) -> bool:
    """Weights are the stacked parameters with more than one dimension per member (not biases)."""
    return value.dim() > 2 and not name.endswith("bias")


def l2_penalty(params: Params) -> torch.Tensor:
    """sum of squared weights per member: (P,)."""
    return sum(value.pow(2).flatten(1).sum(1) for name, value in params.items() if is_weight(name, value))


@dataclass
class L2(Regularizer):
    strength: float = 1e-3
    name = "l2"
    member_knobs = ("strength",)

    def __post_init__(self) -> None:
        check_number("regularizer.l2.strength", self.strength, low=0.0)

    def penalty(self, params: Params, losses: torch.Tensor) -> torch.Tensor:
        return self.strength * l2_penalty(params)
