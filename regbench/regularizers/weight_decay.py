"""Decoupled weight decay: after each optimizer step w <- w - lr * decay * w, weights only
(UDL 9.1.1 / 6.4; Loshchilov & Hutter 2019, AdamW). Works with any optimizer; with plain SGD it equals
an L2 penalty of strength decay/2, with momentum or Adam it does not."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from regbench.config import check_number
from regbench.regularizers.l2 import is_weight
from regbench.trainer.hooks import Params, Regularizer, broadcast


@torch.no_grad()
def decay_weights(params: Params, lr: float, decay: float | torch.Tensor) -> None:
    """Shrink every weight tensor in place by the factor (1 - lr * decay); biases stay. `decay` is a
    number or one per member, (P,)."""
    for name, value in params.items():
        if is_weight(name, value):
            value.mul_(1.0 - lr * broadcast(decay, value))


@dataclass
class WeightDecay(Regularizer):
    decay: float = 3e-2
    name = "weight_decay"
    member_knobs = ("decay",)

    def __post_init__(self) -> None:
        check_number("regularizer.weight_decay.decay", self.decay, low=0.0)

    def after_step(self, params: Params, lr: float) -> None:
        decay_weights(params, lr, self.decay)
