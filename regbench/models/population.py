"""Layers that also run a whole population at once: parameters stacked (P, ...), inputs (P, B, ...).

A fully connected network over a population is a chain of batched matmuls. Given stacked parameters
(`functional_call` with (P, ...) tensors), these layers compute that chain directly, which is faster
than vmap over one member's forward (`make bench`); given one member's parameters they are nn.Linear
and nn.Flatten, so a member's network run or saved alone is an ordinary one.

The trainer runs a network this way when `runs_population` says every module allows it; any other
network (convolutions, pooling, residual blocks) runs under vmap.
"""
from __future__ import annotations

import torch
from torch import nn

# Modules that act on each element alone: a leading population dimension changes nothing for them.
ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.GELU, nn.Identity)


class Linear(nn.Linear):
    """nn.Linear; with stacked weights (P, out, in) and inputs (P, B, in) it gives (P, B, out)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight.dim() == 3:
            # computed as (W x^T)^T: the result is feature-major in memory, so the next layer's x^T and
            # the weight gradient g^T x are contiguous; 1.0-2.4x faster than x W^T (docs/benchmark.md)
            return torch.baddbmm(self.bias.unsqueeze(-1), self.weight, x.mT).mT
        return super().forward(x)


class Flatten(nn.Module):
    """Flattens each example's `example_dims` trailing dimensions, whatever leads them ((B,) or (P, B))."""

    def __init__(self, example_dims: int) -> None:
        super().__init__()
        self.example_dims = example_dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(-self.example_dims) if self.example_dims > 1 else x

    def extra_repr(self) -> str:
        return f"example_dims={self.example_dims}"


def runs_population(model: nn.Module) -> bool:
    """Whether `model` computes a population's outputs from stacked parameters without vmap: an
    nn.Sequential of these layers and of elementwise modules (ELEMENTWISE, or a module that declares
    `elementwise = True`, e.g. dropout with its per-unit mask)."""
    if not isinstance(model, nn.Sequential):
        return False
    return all(isinstance(module, (Linear, Flatten, *ELEMENTWISE)) or getattr(module, "elementwise", False)
               for module in model)
