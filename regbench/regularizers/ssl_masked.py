"""Masked (generative) self-supervised pretraining: zero a random `mask_fraction` of each input's
positions (single positions, or contiguous spans of `span` samples) and train the network to
reconstruct them, L = Σ mask·(f(x̃) − x)² / Σ mask, on the unlabelled training inputs; then fine-tune
a fresh output layer with the labels (UDL 9.3.7; masked autoencoders, He et al. 2022; span masking,
SpanBERT, Joshi et al. 2020). Never sees test inputs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from regbench.config import check_choice, check_number
from regbench.data.base import Data
from regbench.regularizers.pretraining import SelfSupervised, unlabelled_stage_data
from regbench.trainer.hooks import Regularizer
from regbench.trainer.loop import Objective

TARGETS = ("masked", "all")


def span_starts_rate(fraction: float, span: int) -> float:
    """Probability that a position starts a span so that each position is covered with `fraction`:
    1 − (1 − p)^span = fraction (spans wrap around the end of the signal)."""
    return 1.0 - (1.0 - fraction) ** (1.0 / span)


def span_mask(draws: torch.Tensor, fraction: float, span: int = 1) -> torch.Tensor:
    """draws: U[0,1) (P, B, *input) -> 0/1 mask; along the last axis every position starts a span of
    `span` samples with probability span_starts_rate, so each position is masked with probability
    `fraction` (independent positions when span = 1: mask = draws < fraction)."""
    starts = (draws < span_starts_rate(fraction, span)).to(draws.dtype)
    return torch.stack([starts.roll(k, dims=-1) for k in range(span)]).amax(0)


def mask_inputs(x: torch.Tensor, draws: torch.Tensor, fraction: float,
                span: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (P, B, *input), draws: U[0,1) of the same shape -> (masked x, mask); masked positions are 0."""
    mask = span_mask(draws, fraction, span).to(x.dtype)
    return x * (1 - mask), mask


def reconstruction_targets(x: torch.Tensor) -> torch.Tensor:
    """The clean inputs, flattened: (n, D)."""
    return x.flatten(1)


class Reconstruction(Objective):
    """Squared error on the positions the loss weights (the masked ones, or all); reported as the
    reconstruction error of clean inputs over all positions."""

    names = ("loss",)

    def output_size(self, data: Data) -> int:
        return math.prod(data.input_shape)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """outputs: (B, D); targets: (B, 2, D) = (clean input, weight), flattened."""
        clean, weight = targets.unbind(1)
        return ((outputs - clean).pow(2) * weight).sum() / weight.sum().clamp_min(1.0)

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """outputs: (G, n, D); targets: (n, D) clean inputs."""
        return {"loss": (outputs - targets).pow(2).mean((1, 2))}


@dataclass
class MaskPositions(Regularizer):
    """The pretraining stage's batch hook: masked inputs in, (clean, loss weight) targets out."""
    fraction: float
    span: int
    target: str
    name = "ssl_masked"
    technique = False

    def batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        draws = self.streams.uniform(self.stream("mask"), tuple(x.shape[1:]))
        masked, mask = mask_inputs(x, draws, self.fraction, self.span)
        weight = mask if self.target == "masked" else torch.ones_like(mask)
        return masked, torch.stack([x.flatten(2), weight.flatten(2)], dim=2)   # (P, B, 2, D)


@dataclass
class SSLMasked(SelfSupervised):
    mask_fraction: float = 0.5
    span: int = 8
    target: str = "masked"
    name = "ssl_masked"
    technique = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("regularizer.ssl_masked.mask_fraction", self.mask_fraction, low=0.0, high=1.0,
                     low_open=True)
        check_number("regularizer.ssl_masked.span", self.span, low=1, integer=True)
        check_choice("regularizer.ssl_masked.target", self.target, TARGETS)

    def stage(self) -> tuple[Data, Objective, list[Regularizer]]:
        return (unlabelled_stage_data(self.data, self.unlabelled(), reconstruction_targets), Reconstruction(),
                [MaskPositions(self.mask_fraction, self.span, self.target)])
