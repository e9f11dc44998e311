"""Inverted dropout on hidden units: h' = h * 1[u >= p] / (1 - p), u ~ U[0,1) per unit; identity in eval
(UDL 9.3.1; Srivastava et al. 2014)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from regbench.config import check_number
from regbench.models.base import ModelSpec
from regbench.trainer.hooks import Regularizer, is_off


def dropout(x: torch.Tensor, noise: torch.Tensor | None, drop_prob: float | torch.Tensor,
            training: bool) -> torch.Tensor:
    """Zero the units whose uniform draw in `noise` (x's shape) falls below drop_prob; scale the rest.

    drop_prob: a number, or a tensor that broadcasts against x from the left: (P,) per member for a
    population's (P, B, ...) units, a scalar for one member's."""
    if not training or noise is None or is_off(drop_prob):
        return x
    if isinstance(drop_prob, torch.Tensor):
        drop_prob = drop_prob.reshape(*drop_prob.shape, *([1] * (x.dim() - drop_prob.dim())))
    keep = noise >= drop_prob
    return x * keep / (1.0 - drop_prob)


class Dropout(nn.Module):
    """The trainer fills buffer `noise` with per-member U[0,1) draws each step (see `noise_shape`):
    drawing masks outside the vmapped forward is faster than `rand_like` inside it, and per-member seeded.
    Elementwise: with a population's (P, B, ...) hidden units and masks it needs no vmap.

    drop_prob: a number, or (P,) one per member (a grid of p): then a buffer the trainer hands each
    member (`member_buffers`)."""

    elementwise = True

    def __init__(self, shape: tuple[int, ...], drop_prob: float | torch.Tensor) -> None:
        super().__init__()
        if not is_off(drop_prob):  # at p = 0 it is the identity: ask the trainer for no draws
            self.noise_shape = tuple(shape)
        if isinstance(drop_prob, torch.Tensor):
            # its own copy: modules sharing one tensor would be tied buffers to functional_call
            self.register_buffer("drop_prob", drop_prob.clone(), persistent=False)
            self.member_buffers = ("drop_prob",)
        else:
            self.drop_prob = drop_prob
        self.register_buffer("noise", None, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.noise, self.drop_prob, self.training)

    def extra_repr(self) -> str:
        return f"p={self.drop_prob.tolist() if isinstance(self.drop_prob, torch.Tensor) else self.drop_prob}"


@dataclass
class DropoutRegularizer(Regularizer):
    p: float = 0.2
    name = "dropout"
    member_knobs = ("p",)

    def __post_init__(self) -> None:
        check_number("regularizer.dropout.p", self.p, low=0.0, high=1.0, high_open=True)

    def model(self, spec: ModelSpec) -> ModelSpec:
        spec.after_activation.append(lambda shape: Dropout(shape, self.p))  # the trainer's copy
        return spec
