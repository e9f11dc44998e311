"""Contrastive self-supervised pretraining (SimCLR, Chen et al. 2020; UDL 9.3.7): two augmented views
of each unlabelled training input, the network's output z as the projection, and the NT-Xent loss over
the 2B views of a batch, L = −(1/2B) Σ_i log[exp(s(i, i⁺)/τ) / Σ_{k≠i} exp(s(i, k)/τ)] with s the cosine
similarity and i⁺ = i ± B the other view of the same input; then a fresh output layer is fine-tuned on
the labels (or linear-probed, `probe`: body frozen). The views come from the `augment` technique.
Never sees test inputs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from regbench.config import check_choice, check_number
from regbench.data.base import Data
from regbench.regularizers.augment import Augment
from regbench.regularizers.pretraining import SelfSupervised, unlabelled_stage_data
from regbench.trainer.hooks import Regularizer
from regbench.trainer.loop import Objective
from regbench.trainer.streams import Streams


def nt_xent(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """z: (2B, D) projections, rows i and i + B the two views of one input -> mean NT-Xent loss."""
    n = z.shape[0]
    z = F.normalize(z, dim=-1)
    similarity = (z @ z.T) / temperature
    self_pair = torch.eye(n, dtype=torch.bool, device=z.device)
    similarity = similarity.masked_fill(self_pair, float("-inf"))      # a view is not its own negative
    positives = (torch.arange(n, device=z.device) + n // 2) % n
    return F.cross_entropy(similarity, positives)


def self_contrast(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent with each row as its own positive (both views = the clean input): (n, D) -> scalar.
    log(n) when every projection collapses to one direction; near 0 when they are spread apart."""
    z = F.normalize(z, dim=-1)
    similarity = (z @ z.T) / temperature
    return F.cross_entropy(similarity, torch.arange(len(z), device=z.device))


class Contrastive(Objective):
    """NT-Xent on a batch of paired views; reported (on clean inputs) as self_contrast per 256 rows."""

    names = ("loss",)

    def __init__(self, temperature: float, projection_dim: int) -> None:
        self.temperature = temperature
        self.projection_dim = projection_dim

    def output_size(self, data: Data) -> int:
        return self.projection_dim

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """outputs: (2B, D) projections of [view 1; view 2]; targets unused."""
        return nt_xent(outputs, self.temperature)

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """outputs: (G, n, D) projections of clean inputs -> (G,) mean self_contrast over chunks."""
        chunks = [torch.stack([self_contrast(z, self.temperature) for z in outputs[:, start:start + 256]])
                  for start in range(0, outputs.shape[1], 256)]
        return {"loss": torch.stack(chunks).mean(0)}


@dataclass
class View(Augment):
    """The `augment` technique with its own stream names, so each view draws independently."""
    purpose: str = "view"
    technique = False

    def stream(self, purpose: str) -> str:
        return f"ssl_contrastive:{self.purpose}:{purpose}"


@dataclass
class TwoViews(Regularizer):
    """The pretraining stage's batch hook: x (P, B, ...) -> [view 1; view 2] (P, 2B, ...)."""
    max_shift: int
    name = "ssl_contrastive"
    technique = False

    def bind(self, streams: Streams, data: Data) -> None:
        super().bind(streams, data)
        self.views = [View(max_shift=self.max_shift, purpose=p) for p in ("view1", "view2")]
        for view in self.views:
            view.bind(streams, data)

    def batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        first, second = (view.batch(x, y)[0] for view in self.views)
        return torch.cat([first, second], dim=1), torch.cat([y, y], dim=1)


def no_targets(x: torch.Tensor) -> torch.Tensor:
    """Contrastive pretraining uses no targets: placeholders of the right length."""
    return torch.zeros(len(x), dtype=torch.int64, device=x.device)


@dataclass
class SSLContrastive(SelfSupervised):
    temperature: float = 0.2
    projection_dim: int = 32
    probe: bool = False
    max_shift: int = 20
    pretrain_optimizer: str | None = "adam"
    pretrain_lr: float | None = 1e-3
    extra_unlabelled: int = 16000
    name = "ssl_contrastive"
    technique = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("regularizer.ssl_contrastive.temperature", self.temperature, low=0.0, low_open=True)
        check_number("regularizer.ssl_contrastive.projection_dim", self.projection_dim, low=1, integer=True)
        check_choice("regularizer.ssl_contrastive.probe", self.probe, (True, False))
        check_number("regularizer.ssl_contrastive.max_shift", self.max_shift, low=0, integer=True)
        self.freeze = self.freeze or self.probe

    def stage(self) -> tuple[Data, Objective, list[Regularizer]]:
        return (unlabelled_stage_data(self.data, self.unlabelled(), no_targets),
                Contrastive(self.temperature, self.projection_dim), [TwoViews(self.max_shift)])
