"""Weight noise: each step's forward/backward uses w + std·ε, ε ~ N(0, I); the update goes to the clean w
(UDL 9.3.2 "adding noise to the weights"; An 1996, Graves 2011).

Only weights are perturbed, biases stay clean (as in `l2`): noise on a weight scales with the activation
it multiplies, which is what makes it a smoothness penalty, while bias noise would only add
input-independent jitter to the pre-activations.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from regbench.config import check_number
from regbench.regularizers.l2 import is_weight
from regbench.trainer.hooks import Params, Regularizer, broadcast, is_off


def perturb_weights(params: Params, noise: dict[str, torch.Tensor], std: float | torch.Tensor) -> Params:
    """params[name] + std * noise[name] for every weight in `noise`; other entries unchanged.

    params: name -> (P, *shape); noise: name -> (P, *shape) standard normal draws for the weights;
    std: a number or one per member, (P,).
    The sum stays in the autograd graph, so gradients flow back to the clean parameters.
    """
    return {name: value + broadcast(std, value) * noise[name] if name in noise else value
            for name, value in params.items()}


@dataclass
class WeightNoise(Regularizer):
    std: float = 0.05
    name = "weight_noise"
    member_knobs = ("std",)

    def __post_init__(self) -> None:
        check_number("regularizer.weight_noise.std", self.std, low=0.0)

    def forward_params(self, params: Params) -> Params:
        if is_off(self.std):
            return params
        # One stream per tensor: a new layer elsewhere never shifts this layer's draws.
        noise = {name: self.streams.normal(self.stream(name), tuple(value.shape[1:]))  # (P, *shape)
                 for name, value in params.items() if is_weight(name, value)}
        return perturb_weights(params, noise, self.std)
