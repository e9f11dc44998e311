"""The hook points of the training step. Regularizers subclass `Regularizer` and override a few.

Every tensor leads with the population dimension P (replicate seeds x ensemble members). Hooks must be
vmap-safe: no `.item()` and no Python branching on tensor values; randomness only from `self.streams`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from regbench.data.base import Data
from regbench.models.base import ModelSpec
from regbench.trainer.streams import Streams

if TYPE_CHECKING:
    from regbench.trainer.loop import TrainerSettings

Params = dict[str, torch.Tensor]  # name -> (P, *shape) stacked member parameters


@dataclass
class TrainSet:
    """What each member trains on: rows of the shared training tensors.

    index: (P, N) rows of data.x_train each member sees in an epoch (bagging resamples them);
    labels: (P, N) the label each member trains toward for that row position.
    """
    index: torch.Tensor
    labels: torch.Tensor


@dataclass(frozen=True)
class Grid:
    """A knob's values across a population trained as a grid (regbench.experiment): `values[g]` is the
    value of grid point g, whose members are the g-th equal share of the population (point-major).
    `bind` turns it into a (P,) tensor, so a hook computes with it as with the number."""
    values: tuple[float | int, ...]

    def per_member(self, population: int, device: torch.device) -> torch.Tensor:
        assert population % len(self.values) == 0, "a grid point's members are an equal share of P"
        return torch.tensor(self.values, device=device).repeat_interleave(population // len(self.values))


def broadcast(value: float | torch.Tensor, like: torch.Tensor) -> float | torch.Tensor:
    """A knob against a (P, ...) tensor: a number as it is, a per-member (P,) tensor as (P, 1, ..., 1)."""
    if isinstance(value, torch.Tensor):
        return value.reshape(-1, *([1] * (like.dim() - 1)))
    return value


def is_off(value: float | torch.Tensor) -> bool:
    """A number that turns the technique off (0). A per-member knob never is: some members may use it."""
    return not isinstance(value, torch.Tensor) and value == 0


class NotApplicable(Exception):
    """Raised by a technique's `bind` when it does not apply to this data (label smoothing on a regression
    task, signal augmentations on tabular inputs). Not a user error: the job is recorded as
    `status: not_applicable` with this message as its reason, and a sweep counts it as neither a row nor
    a failure."""


class Regularizer:
    """A technique as a set of hooks; the defaults leave training untouched."""

    name: ClassVar[str] = "regularizer"
    # False for hooks used inside a technique (e.g. a pretraining stage's masking): not a config option.
    technique: ClassVar[bool] = True
    # Hooks run in ascending `order` (then name): input transforms before target transforms.
    order: ClassVar[int] = 50
    # Numeric knobs that may differ between members of one population: a list of values for one of
    # them (`regularizer.l2.strength=[1e-4,1e-3]`) trains every value in one job. `bind` hands each
    # such knob to the hooks as a (P,) tensor (see `Grid`); hooks compute with it through `broadcast`.
    # Knobs that change shapes or the procedure (ensemble members, pretraining) are not listed.
    member_knobs: ClassVar[tuple[str, ...]] = ()
    # Bump when a change to the technique's code changes what a config computes (regbench.identity).
    revision: ClassVar[int] = 1

    streams: Streams
    data: Data

    def bind(self, streams: Streams, data: Data) -> None:
        """Called once per population before training. Hooks draw randomness only from `streams`;
        `data` (already on the training device) tells sizes, classes, task and modality. Raise
        `NotApplicable(reason)` here when the technique has no meaning for this data."""
        self.streams = streams
        self.data = data
        grids = self.__dict__.setdefault("_grids", {})  # kept: a hook bound again expands them again
        for knob in self.member_knobs:
            value = getattr(self, knob)
            if isinstance(value, Grid):
                grids[knob] = value
            elif not isinstance(value, torch.Tensor):  # a number set since: no grid any more
                grids.pop(knob, None)
            if knob in grids:
                setattr(self, knob, grids[knob].per_member(len(streams.members), streams.device))

    def stream(self, purpose: str) -> str:
        return f"{self.name}:{purpose}"

    def ensemble_size(self) -> int:
        """Ensemble members per replicate this technique trains (their predictions are averaged)."""
        return 1

    def model(self, spec: ModelSpec) -> ModelSpec:
        """Change the architecture (e.g. add a module after each hidden activation). `spec` is the
        trainer's own copy, `after_activation` included: edit it in place or return another."""
        return spec

    def init_params(self, model: nn.Module, params: Params, settings: "TrainerSettings") -> Params:
        """The starting parameters (a pretraining stage returns pretrained ones here)."""
        return params

    def frozen(self, model: nn.Module) -> set[str]:
        """Names of parameters that must not train (a pretrained body under a linear probe); asked once
        after `init_params`. The optimizer, `penalty`, `before_step` and `after_step` never see them."""
        return set()

    def prepare(self, train: TrainSet) -> TrainSet:
        """Change what each member trains on, once before training (bootstrap resamples, label noise)."""
        return train

    def batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Transform a training batch. x: (P, B, *input), y: (P, B) labels or (P, B, K) soft targets."""
        return x, y

    def forward_params(self, params: Params) -> Params:
        """The parameters the forward pass uses this step; gradients still reach the clean ones."""
        return params

    def penalty(self, params: Params, losses: torch.Tensor) -> torch.Tensor | float:
        """A per-member term added to the loss: (P,). `losses` (P,) is the data loss of this batch;
        `params` the trainable parameters."""
        return 0.0

    def before_step(self, params: Params) -> None:
        """Edit the gradients (`params[name].grad`) of the trainable parameters in place before the
        optimizer step."""

    def after_step(self, params: Params, lr: float) -> None:
        """In-place change to the trainable parameters after the optimizer step (decoupled weight decay).
        Members that have stopped (early stopping, a non-finite loss) get their parameters back after it."""

    def epoch_end(self, epoch: int, params: Params, metrics: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """Called after each epoch's evaluation; may return a (P,) mask of members that stop now."""
        return None

    def finalize(self, params: Params) -> Params:
        """The parameters to report (early stopping restores each member's best ones)."""
        return params

    def restored_epochs(self) -> torch.Tensor | None:
        """(P,) the epoch whose parameters `finalize` reports, per member, where it restores earlier ones;
        None: the last epoch each member trained (curves.csv marks that epoch's row `reported`)."""
        return None
