"""Contrastive self-supervised pretraining (SimCLR, Chen et al. 2020; UDL 9.3.7): two augmented views
of each unlabelled training input, a projection z of the body's features, and the NT-Xent loss over
the 2B views of a batch, L = −(1/2B) Σ_i log[exp(s(i, i⁺)/τ) / Σ_{k≠i} exp(s(i, k)/τ)] with s the cosine
similarity and i⁺ = i ± B the other view of the same input; then a fresh output layer is fine-tuned on
the labels (or linear-probed, `probe`: body frozen). The views come from the `augment` technique's ops
(for MNIST-1D, as in its repo's SimCLR example: shift, linear ramp, offset). The projection is the
network's output layer widened to `projection_hidden` units, a ReLU and a linear layer to
`projection_dim` (SimCLR's MLP head), or with projection_hidden=0 the output layer alone; either way it
is dropped for the fine-tune. Never sees test inputs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from regbench.config import ConfigError, check_choice, check_number
from regbench.data.base import Data
from regbench.models.base import ModelSpec
from regbench.models.population import Linear
from regbench.regularizers.augment import ALLOWED_OPS, Augment
from regbench.regularizers.pretraining import SelfSupervised, unlabelled_stage_data
from regbench.trainer.hooks import NotApplicable, Regularizer
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
    """The pretraining stage's batch hook: x (P, B, ...) -> [view 1; view 2] (P, 2B, ...).
    `augment` holds the views' Augment settings (ops and strengths)."""
    augment: dict = field(default_factory=dict)
    name = "ssl_contrastive"
    technique = False

    def bind(self, streams: Streams, data: Data) -> None:
        super().bind(streams, data)
        self.views = [View(**self.augment, purpose=p) for p in ("view1", "view2")]
        for view in self.views:
            view.bind(streams, data)

    def batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        first, second = (view.batch(x, y)[0] for view in self.views)
        return torch.cat([first, second], dim=1), torch.cat([y, y], dim=1)


@dataclass
class ProjectionHead(ModelSpec):
    """`body`'s network with its output layer widened to `hidden` units, then ReLU and Linear(hidden, out).

    Built as one nn.Sequential whose first modules keep the body's names, so `transplant` carries the
    body over and drops the head (the widened output layer and the two appended modules)."""
    body: ModelSpec | None = None
    hidden: int = 128
    name: ClassVar[str] = "projection_head"
    input_shapes: ClassVar[str] = "the body's"

    def accepts(self, input_shape: tuple[int, ...]) -> bool:
        return self.body.accepts(input_shape)

    def check_input(self, data_name: str, input_shape: tuple[int, ...]) -> None:
        self.body.check_input(data_name, input_shape)

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        network = self.body.build(input_shape, self.hidden)
        assert isinstance(network, nn.Sequential), "a projection head extends an nn.Sequential network"
        last = Linear(self.hidden, num_classes)
        self.body.initialize(last)
        return nn.Sequential(*network, nn.ReLU(), last)


def no_targets(x: torch.Tensor) -> torch.Tensor:
    """Contrastive pretraining uses no targets: placeholders of the right length."""
    return torch.zeros(len(x), dtype=torch.int64, device=x.device)


@dataclass
class SSLContrastive(SelfSupervised):
    temperature: float = 0.5
    projection_dim: int = 32
    projection_hidden: int = 0
    probe: bool = False
    view_ops: list[str] = field(default_factory=lambda: ["shift", "slope", "offset"])
    max_shift: int = 10
    max_slope: float = 1.0
    max_offset: float = 0.5
    pretrain_optimizer: str | None = "adam"
    pretrain_lr: float | None = 1e-3
    pretrain_lr_schedule: str | None = "none"
    pretrain_epochs: int = 50
    extra_unlabelled: int = 16000
    name = "ssl_contrastive"
    technique = True

    def __post_init__(self) -> None:
        super().__post_init__()
        key = "regularizer.ssl_contrastive"
        check_number(f"{key}.temperature", self.temperature, low=0.0, low_open=True)
        check_number(f"{key}.projection_dim", self.projection_dim, low=1, integer=True)
        check_number(f"{key}.projection_hidden", self.projection_hidden, low=0, integer=True)
        check_choice(f"{key}.probe", self.probe, (True, False))
        if not isinstance(self.view_ops, list) or not self.view_ops:
            raise ConfigError(f"{key}.view_ops={self.view_ops!r} is not allowed: expected a non-empty list of "
                              f"augment ops ({', '.join(ALLOWED_OPS['signal'] + ALLOWED_OPS['image'])})")
        for op in self.view_ops:
            check_choice(f"{key}.view_ops", op, ALLOWED_OPS["signal"] + ALLOWED_OPS["image"])
        check_number(f"{key}.max_shift", self.max_shift, low=0, integer=True)
        check_number(f"{key}.max_slope", self.max_slope, low=0.0)
        check_number(f"{key}.max_offset", self.max_offset, low=0.0)
        self.freeze = self.freeze or self.probe

    def bind(self, streams: Streams, data: Data) -> None:
        super().bind(streams, data)
        allowed = ALLOWED_OPS.get(data.modality, ())
        wrong = [op for op in self.view_ops if op not in allowed]
        if wrong:
            raise NotApplicable(f"regularizer.ssl_contrastive.view_ops={self.view_ops!r}: {', '.join(wrong)} "
                                f"not for {data.modality} data ({data.name}); choose from {', '.join(allowed)}")

    def views(self) -> dict:
        """The views' Augment settings: the ops, and the strengths this technique sets."""
        return {"ops": list(self.view_ops), "max_shift": self.max_shift, "max_slope": self.max_slope,
                "max_offset": self.max_offset}

    def stage_spec(self, spec: ModelSpec) -> ModelSpec:
        return ProjectionHead(body=spec, hidden=self.projection_hidden) if self.projection_hidden else spec

    def stage(self) -> tuple[Data, Objective, list[Regularizer]]:
        return (unlabelled_stage_data(self.data, self.unlabelled(), no_targets),
                Contrastive(self.temperature, self.projection_dim), [TwoViews(self.views())])
