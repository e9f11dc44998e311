"""Gradient-norm penalty: L' = L + strength·‖∇_θ L‖², the explicit form of SGD's implicit regularizer;
with strength = lr/4 it is the modified loss gradient descent follows (Barrett & Dherin 2021;
Smith et al. 2021; UDL 9.2). Needs double backpropagation.

Stability: near a point where the loss Hessian's top eigenvalue is λ, the penalized loss has curvature
λ + 2·strength·λ² (λ(1 + lr·λ/2) at strength lr/4), and momentum SGD at rate lr is stable only while
lr · curvature < 2(1 + momentum). A rate that sits near that edge without the penalty (the
baseline catapults and recovers) diverges with it: a squared-error loss whose Hessian is large at
initialization needs a smaller lr (conf/dataset_trainer/ sets one for toy1d and diabetes).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from regbench.config import check_number
from regbench.trainer.hooks import Params, Regularizer


def grad_norm_squared(losses: torch.Tensor, params: Params) -> torch.Tensor:
    """‖∇_θ L_m‖² per member: (P,). Members are independent, so one backward of Σ_m L_m gives each
    member's own gradient; create_graph keeps it differentiable for the penalty's own gradient."""
    grads = torch.autograd.grad(losses.sum(), list(params.values()), create_graph=True)
    return sum(g.pow(2).flatten(1).sum(1) for g in grads)


@dataclass
class GradPenalty(Regularizer):
    strength: float = 0.0125  # lr/4 at the default lr 0.05: the modified-loss coefficient
    name = "grad_penalty"
    member_knobs = ("strength",)

    def __post_init__(self) -> None:
        check_number("regularizer.grad_penalty.strength", self.strength, low=0.0)

    def penalty(self, params: Params, losses: torch.Tensor) -> torch.Tensor:
        return self.strength * grad_norm_squared(losses, params)
