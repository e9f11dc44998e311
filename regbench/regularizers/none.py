"""The unregularized baseline: no hook changes training."""
from __future__ import annotations

from dataclasses import dataclass

from regbench.trainer.hooks import Regularizer


@dataclass
class NoRegularizer(Regularizer):
    name = "none"
