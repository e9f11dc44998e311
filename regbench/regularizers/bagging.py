"""Bagging: an ensemble whose members each train on a bootstrap resample of the training set —
N rows drawn with replacement — with predictions averaged (Breiman 1996; UDL 9.3.4).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from regbench.regularizers.ensemble import Ensemble
from regbench.trainer.hooks import TrainSet


def bootstrap(train: TrainSet, draws: torch.Tensor) -> TrainSet:
    """Resample each member's slots: draws (P, N) slot indices in [0, N) -> slot k holds old slot draws[k]."""
    rows = torch.arange(draws.shape[0], device=draws.device).unsqueeze(1)
    return TrainSet(index=train.index.gather(1, draws), labels=train.labels[rows, draws])


@dataclass
class Bagging(Ensemble):
    name = "bagging"

    def prepare(self, train: TrainSet) -> TrainSet:
        N = train.index.shape[1]
        return bootstrap(train, self.streams.randint(self.stream("bootstrap"), N, (N,)))
