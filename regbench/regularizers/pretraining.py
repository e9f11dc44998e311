"""What transfer learning and self-supervised pretraining share (UDL 9.3.6-9.3.7): a pretraining stage
that trains each member's network on another task, then fine-tuning on the labelled target set from
the pretrained body with a fresh output layer (the member's own initial head), optionally frozen body.

The stage reuses `train_population` with its own data, objective and hooks, on the same (seed, member)
keys as the fine-tune, so each member's body comes from its own pretraining run.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from regbench.config import check_choice, check_number
from regbench.data.base import Data, check_no_test_inputs
from regbench.data.mnist1d import check_related_seed, load_cached
from regbench.models.base import ModelSpec, head_names
from regbench.trainer.hooks import NotApplicable, Params, Regularizer
from regbench.trainer.loop import OPTIMIZERS, SCHEDULES, Objective, TrainerSettings, train_population
from regbench.trainer.streams import Streams


def require_mnist1d(key: str, data: Data) -> None:
    """Pretraining data drawn from MNIST-1D only makes sense when the target is MNIST-1D."""
    if data.name != "mnist1d":
        raise NotApplicable(f"{key} draws MNIST-1D data for pretraining: it applies to dataset=mnist1d only, "
                            f"not {data.name}")


def transplant(fresh: Params, pretrained: Params, keep: list[str]) -> Params:
    """Pretrained values for every parameter except `keep` (the fresh output layer)."""
    return {name: (fresh[name] if name in keep else pretrained[name]).detach().clone() for name in fresh}


@dataclass
class PretrainedBody(Regularizer):
    """Base for pretraining techniques: subclasses say what to pretrain on (`stage`)."""
    pretrain_epochs: int = 20
    freeze: bool = False
    pretrain_optimizer: str | None = None  # null: the trainer's optimizer
    pretrain_lr: float | None = None       # null: the trainer's learning rate
    pretrain_lr_schedule: str | None = None  # null: the trainer's schedule
    technique = False
    spec: ModelSpec | None = field(default=None, init=False, repr=False)
    head: list[str] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        check_number(f"regularizer.{self.name}.pretrain_epochs", self.pretrain_epochs, low=1, integer=True)
        check_choice(f"regularizer.{self.name}.freeze", self.freeze, (True, False))
        check_choice(f"regularizer.{self.name}.pretrain_optimizer", self.pretrain_optimizer, (None, *OPTIMIZERS))
        check_number(f"regularizer.{self.name}.pretrain_lr", self.pretrain_lr, low=0.0, low_open=True,
                     optional=True)
        check_choice(f"regularizer.{self.name}.pretrain_lr_schedule", self.pretrain_lr_schedule, (None, *SCHEDULES))

    def stage(self) -> tuple[Data, Objective, list[Regularizer]]:
        """The pretraining data, objective and hooks."""
        raise NotImplementedError

    def stage_spec(self, spec: ModelSpec) -> ModelSpec:
        """The network the stage trains: the fine-tune's own, unless a subclass adds a pretraining-only
        head after its output layer (dropped by `transplant`, which keeps only the fine-tune's names)."""
        return spec

    def model(self, spec: ModelSpec) -> ModelSpec:
        self.spec = spec
        return spec

    def init_params(self, model: nn.Module, params: Params, settings: TrainerSettings) -> Params:
        data, objective, hooks = self.stage()
        check_no_test_inputs(f"regularizer.{self.name}", data.x_train, self.data)
        optimizer = self.pretrain_optimizer or settings.optimizer
        # the trainer's momentum is an SGD setting: it carries over only to an SGD stage; the stage's
        # metrics are not reported, so it evaluates once, at its end
        stage_settings = dataclasses.replace(
            settings, epochs=self.pretrain_epochs, steps=None, optimizer=optimizer,
            lr=self.pretrain_lr or settings.lr, momentum=settings.momentum if optimizer == "sgd" else None,
            lr_schedule=self.pretrain_lr_schedule or settings.lr_schedule, eval_every=self.pretrain_epochs,
            curve_every=self.pretrain_epochs)
        pretrained = train_population(self.stage_spec(self.spec), data, stage_settings, hooks, [], self.streams.device,
                                      objective=objective, population=self.streams.members)
        self.head = head_names(model)
        return transplant(params, pretrained.params, keep=self.head)

    def frozen(self, model: nn.Module) -> set[str]:
        if not self.freeze:
            return set()
        head = head_names(model)
        return {name for name, _ in model.named_parameters() if name not in head}


def unlabelled_stage_data(data: Data, pool: torch.Tensor,
                          targets: Callable[[torch.Tensor], torch.Tensor]) -> Data:
    """A pretraining stage's data: `pool` (unlabelled inputs) with `targets(inputs)` as targets, the
    validation inputs to monitor, and no test inputs at all."""
    return Data(name=f"{data.name}-unlabelled", x_train=pool, y_train=targets(pool), x_val=data.x_val,
                y_val=targets(data.x_val), x_test=pool[:0], y_test=targets(pool[:0]),
                num_classes=data.num_classes, modality=data.modality)


@dataclass
class SelfSupervised(PretrainedBody):
    """Pretraining on unlabelled inputs: the training inputs (labelled or not) plus, optionally, an
    extra pool of `extra_unlabelled` inputs from a fresh MNIST-1D draw (generator seed `extra_seed`)."""
    extra_unlabelled: int = 0
    extra_seed: int = 2
    data_dir: str = "~/.cache/regbench"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number(f"regularizer.{self.name}.extra_unlabelled", self.extra_unlabelled, low=0, integer=True)
        check_number(f"regularizer.{self.name}.extra_seed", self.extra_seed, low=0, integer=True)

    def bind(self, streams: Streams, data: Data) -> None:
        super().bind(streams, data)
        if data.modality == "tabular":
            raise NotApplicable(f"regularizer.{self.name} masks or shifts positions of signal inputs: dataset "
                                f"{data.name} has tabular features")
        if self.extra_unlabelled:
            require_mnist1d(f"regularizer.{self.name}.extra_unlabelled", data)
            check_related_seed(f"regularizer.{self.name}.extra_seed", self.extra_seed, data)

    def unlabelled(self) -> torch.Tensor:
        pool = self.data.unlabelled_pool()
        if not self.extra_unlabelled:
            return pool
        # the draw's own 80/20 split: only its training part is used, so 1.25x as many are generated
        draw = load_cached(self.data_dir, self.extra_seed, math.ceil(self.extra_unlabelled / 0.8 / 10) * 10)
        extra = torch.as_tensor(draw["x"][: self.extra_unlabelled], dtype=pool.dtype, device=pool.device)
        return torch.cat([pool, extra])
