"""What transfer learning and self-supervised pretraining share (UDL 9.3.6-9.3.7): a pretraining stage
that trains each member's network on another task, then fine-tuning on the labelled target set from
the pretrained body with a fresh output layer (the member's own initial head), optionally frozen body.

The stage reuses `train_population` with its own data, objective and hooks, on the same (seed, member)
keys as the fine-tune, so each member's body comes from its own pretraining run.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn

from regbench.config import check_choice, check_number
from regbench.data.base import Data
from regbench.models.base import ModelSpec, head_names
from regbench.trainer.hooks import Params, Regularizer
from regbench.trainer.loop import CLASSIFICATION, Objective, TrainerSettings, train_population


def transplant(fresh: Params, pretrained: Params, keep: list[str]) -> Params:
    """Pretrained values for every parameter except `keep` (the fresh output layer)."""
    return {name: (fresh[name] if name in keep else pretrained[name]).detach().clone() for name in fresh}


@dataclass
class PretrainedBody(Regularizer):
    """Base for pretraining techniques: subclasses say what to pretrain on (`stage`)."""
    pretrain_epochs: int = 20
    freeze: bool = False
    technique = False
    spec: ModelSpec | None = field(default=None, init=False, repr=False)
    head: list[str] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        check_number(f"regularizer.{self.name}.pretrain_epochs", self.pretrain_epochs, low=1, integer=True)
        check_choice(f"regularizer.{self.name}.freeze", self.freeze, (True, False))

    def stage(self) -> tuple[Data, Objective, list[Regularizer]]:
        """The pretraining data, objective and hooks."""
        raise NotImplementedError

    def model(self, spec: ModelSpec) -> ModelSpec:
        self.spec = spec
        return spec

    def init_params(self, model: nn.Module, params: Params, settings: TrainerSettings) -> Params:
        data, objective, hooks = self.stage()
        stage_settings = dataclasses.replace(settings, epochs=self.pretrain_epochs)
        pretrained = train_population(self.spec, data, stage_settings, hooks, [], self.streams.device,
                                      objective=objective, population=self.streams.members)
        self.head = head_names(model)
        self.pretrain_metrics = pretrained.final
        return transplant(params, pretrained.params, keep=self.head)

    def before_step(self, params: Params) -> None:
        if self.freeze:  # zero gradients leave SGD, momentum and Adam updates at exactly zero
            for name, value in params.items():
                if name not in self.head and value.grad is not None:
                    value.grad.zero_()
