"""Ensemble: M members from different random inits; predict p(y|x) = (1/M) Σ_m p_m(y|x) (UDL 9.3.4).

The members train inside the population (each with its own init, data order and draws); the trainer
averages their class probabilities. metrics.json keeps the mean member's metrics as `member_*`.
"""
from __future__ import annotations

from dataclasses import dataclass

from regbench.config import check_number
from regbench.trainer.hooks import Regularizer


@dataclass
class Ensemble(Regularizer):
    members: int = 5
    name = "ensemble"

    def __post_init__(self) -> None:
        check_number(f"regularizer.{self.name}.members", self.members, low=2, integer=True)

    def ensemble_size(self) -> int:
        return self.members
