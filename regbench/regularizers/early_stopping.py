"""Early stopping: stop a member once its validation loss has not fallen by more than min_delta for
`patience` epochs, and report the weights of its best epoch (UDL 9.3.1; Prechelt 1998, "Early Stopping -
But When?").

Patience counts epochs, whatever `trainer.eval_every`: the monitor runs at each validation (every
eval_every epochs and the last), and a member stops at the first one at least `patience` epochs after its
best epoch (before any improvement: after the start, epoch 0). With eval_every 1 that is exactly
`patience` epochs after its best; with eval_every k, the first validation from then on.

Each member keeps its own best loss, best epoch and best weights, updated with masks (torch.where), never
a per-member `break`. A member that has stopped no longer updates its state, and the trainer leaves its
parameters as they are from the next epoch; the weights reported are its best ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from regbench.config import ConfigError, check_number
from regbench.data.base import Data
from regbench.trainer.hooks import Params, Regularizer
from regbench.trainer.streams import Streams


@dataclass
class StopState:
    """Per-member monitor state: every tensor is (P,) except `params` (name -> (P, *shape))."""
    best_loss: torch.Tensor
    best_epoch: torch.Tensor   # 0 until the first improvement: patience then counts from the start
    stopped: torch.Tensor
    params: Params

    @classmethod
    def start(cls, params: Params) -> "StopState":
        some = next(iter(params.values()))
        P = some.shape[0]
        return cls(best_loss=torch.full((P,), torch.inf, device=some.device),
                   best_epoch=torch.zeros(P, dtype=torch.long, device=some.device),
                   stopped=torch.zeros(P, dtype=torch.bool, device=some.device),
                   params={name: value.detach().clone() for name, value in params.items()})


def per_member(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(P,) mask -> (P, 1, ..., 1) to broadcast against `like` (P, *shape)."""
    return mask.reshape(-1, *([1] * (like.dim() - 1)))


def monitor(state: StopState, epoch: int, val_loss: torch.Tensor, params: Params,
            patience: int, min_delta: float) -> tuple[StopState, torch.Tensor]:
    """The monitor at a validation after `epoch` epochs: returns the new state and the (P,) mask of
    members that stop now.

    A member improves when val_loss < best_loss - min_delta (NaN never improves); it stops once
    `patience` epochs (a number or a (P,) tensor) have passed since its best epoch, counted in epochs,
    not in validations. Stopped members keep their state as it was.
    """
    running = ~state.stopped
    improved = running & (val_loss < state.best_loss - min_delta)                        # (P,)
    best_epoch = torch.where(improved, epoch, state.best_epoch)
    stops = running & (epoch - best_epoch >= patience)
    return StopState(
        best_loss=torch.where(improved, val_loss, state.best_loss),
        best_epoch=best_epoch,
        stopped=state.stopped | stops,
        params={name: torch.where(per_member(improved, value), value.detach(), state.params[name])
                for name, value in params.items()},
    ), stops


@dataclass
class EarlyStopping(Regularizer):
    patience: int = 10
    min_delta: float = 0.0
    name = "early_stopping"
    member_knobs = ("patience", "min_delta")
    # 2: patience counts epochs, not validations (changes results with trainer.eval_every > 1)
    revision = 2
    state: StopState | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        check_number("regularizer.early_stopping.patience", self.patience, low=1, integer=True)
        check_number("regularizer.early_stopping.min_delta", self.min_delta, low=0.0)

    def bind(self, streams: Streams, data: Data) -> None:
        super().bind(streams, data)
        if len(data.y_val) == 0:
            raise ConfigError("regularizer.early_stopping monitors the validation loss: "
                              "dataset.val_fraction=0 leaves no validation data (expected > 0)")
        self.state = None

    def epoch_end(self, epoch: int, params: Params, metrics: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.state is None:
            self.state = StopState.start(params)
        self.state, stops = monitor(self.state, epoch, metrics["val_loss"], params,
                                    self.patience, self.min_delta)
        return stops

    def finalize(self, params: Params) -> Params:
        if self.state is None:  # no epoch finished
            return params
        return dict(self.state.params)

    def restored_epochs(self) -> torch.Tensor | None:
        return None if self.state is None else self.state.best_epoch
