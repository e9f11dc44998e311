"""Population-first training: every replicate seed (and ensemble member) in one vectorized pass.

Members' parameters are stacked along a leading dimension P and the forward pass is
`vmap(functional_call(model, ...))`. The optimizers used here are elementwise, so one optimizer over
the stacked tensors updates each member exactly as its own optimizer would; a member trained in a
population matches the same seed trained alone up to float rounding. P = 1 is the same code path.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from regbench.config import check_choice, check_number
from regbench.data.base import Data
from regbench.models.base import ModelSpec
from regbench.trainer.hooks import Params, Regularizer, TrainSet
from regbench.trainer.streams import Streams, derive_seed

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "step", "cosine")
SPLITS = ("train", "val", "test")


@dataclass
class TrainerSettings:
    epochs: int = 50
    batch_size: int | None = 100
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    lr_schedule: str = "step"
    lr_step_epochs: int = 10
    lr_gamma: float = 0.5

    def __post_init__(self) -> None:
        check_number("trainer.epochs", self.epochs, low=1, integer=True)
        check_number("trainer.batch_size", self.batch_size, low=1, integer=True, optional=True)
        check_choice("trainer.optimizer", self.optimizer, OPTIMIZERS)
        check_number("trainer.lr", self.lr, low=0.0, low_open=True)
        check_number("trainer.momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        check_choice("trainer.lr_schedule", self.lr_schedule, SCHEDULES)
        check_number("trainer.lr_step_epochs", self.lr_step_epochs, low=1, integer=True)
        check_number("trainer.lr_gamma", self.lr_gamma, low=0.0, high=1.0, low_open=True)

    def make_optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum)
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.lr)
        # Decay belongs to the `weight_decay` regularizer, so the baseline AdamW carries none.
        return torch.optim.AdamW(params, lr=self.lr, weight_decay=0.0)

    def make_schedule(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler | None:
        if self.lr_schedule == "step":
            return torch.optim.lr_scheduler.StepLR(optimizer, self.lr_step_epochs, self.lr_gamma)
        if self.lr_schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, self.epochs)
        return None


@dataclass
class TrainResult:
    """Per-member outcome. Metric tensors are (P,); `curves` holds one row per (epoch, member)."""
    seeds: list[int]
    final: dict[str, torch.Tensor]
    best_epoch: torch.Tensor | None
    epochs: torch.Tensor
    diverged: torch.Tensor
    curves: list[dict] = field(default_factory=list)


def build_population(spec: ModelSpec, data: Data, seeds: list[int],
                     device: torch.device) -> tuple[nn.Module, Params]:
    """One model per seed, initialized from that seed alone; returns (template module, stacked params)."""
    members = []
    for seed in seeds:
        # fork_rng: initialization draws from the member's own seed and leaves global RNG state alone.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(seed, "init"))
            members.append(spec.build(data.input_shape, data.num_classes))
    template = members[0].to(device)
    names = [name for name, _ in template.named_parameters()]
    params = {name: torch.stack([dict(m.named_parameters())[name].detach() for m in members])
              .to(device).requires_grad_() for name in names}
    return template, params


def noisy_modules(model: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    """Modules that declare `noise_shape`: they take a per-example uniform draw as buffer `noise`."""
    return [(name, tuple(module.noise_shape)) for name, module in model.named_modules()
            if hasattr(module, "noise_shape")]


def noise_inputs(noisy: list[tuple[str, tuple[int, ...]]], streams: Streams, batch: int) -> dict[str, torch.Tensor]:
    """This step's draws for the noisy modules: {'<module>.noise': (P, batch, *noise_shape)}."""
    return {f"{name}.noise": streams.uniform(f"module:{name}", (batch, *shape)) for name, shape in noisy}


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy; `target` is (B,) class indices or (B, K) probabilities."""
    return F.cross_entropy(logits, target)


@torch.no_grad()
def evaluate(model: nn.Module, params: Params, x: torch.Tensor, y: torch.Tensor,
             chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode loss and accuracy of every member on (x, y): two (P,) tensors (NaN when x is empty)."""
    P = next(iter(params.values())).shape[0]
    if len(y) == 0:
        nan = torch.full((P,), math.nan, device=x.device)
        return nan, nan.clone()
    model.eval()
    forward = vmap(lambda p, xs: functional_call(model, p, (xs,)), in_dims=(0, None))
    loss_sum = torch.zeros(P, device=x.device)
    correct = torch.zeros(P, device=x.device)
    for start in range(0, len(y), chunk):
        xs, ys = x[start:start + chunk], y[start:start + chunk]
        logits = forward(params, xs)  # (P, n, K)
        loss_sum += F.cross_entropy(logits.transpose(1, 2), ys.expand(P, -1), reduction="none").sum(1)
        correct += (logits.argmax(-1) == ys).sum(1)
    return loss_sum / len(y), correct / len(y)


def train_population(spec: ModelSpec, data: Data, settings: TrainerSettings, hooks: list[Regularizer],
                     seeds: list[int], device: torch.device,
                     on_epoch: Callable[[int, dict[str, torch.Tensor]], None] | None = None) -> TrainResult:
    """Train one member per seed together; regularizers plug in through their hooks."""
    hooks = sorted(hooks, key=lambda h: (h.order, h.name))
    streams = Streams(seeds, device)
    data = data.to(device)
    for hook in hooks:
        hook.bind(streams, data)
        spec = hook.model(spec)
    model, params = build_population(spec, data, seeds, device)
    noisy = noisy_modules(model)
    P, N = len(seeds), len(data.y_train)
    B = settings.batch_size or N

    train = TrainSet(index=torch.arange(N, device=device).expand(P, N),
                     labels=data.y_train.expand(P, N))
    for hook in hooks:
        train = hook.prepare(train)

    def member_loss(p: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return soft_cross_entropy(functional_call(model, p, (x,)), y)

    # randomness="error": any hidden global-RNG draw inside the step is a bug, not a silent shared mask.
    batched_loss = vmap(member_loss, randomness="error")
    optimizer = settings.make_optimizer(list(params.values()))
    schedule = settings.make_schedule(optimizer)

    active = torch.ones(P, dtype=torch.bool, device=device)
    epochs_run = torch.zeros(P, dtype=torch.long, device=device)
    diverged = torch.zeros(P, dtype=torch.bool, device=device)
    val_history: list[torch.Tensor] = []
    curves: list[dict] = []
    for epoch in range(1, settings.epochs + 1):
        model.train()
        lr = optimizer.param_groups[0]["lr"]
        order = streams.permutation("order", N)                        # (P, N) slots of train
        for start in range(0, N, B):
            slots = order[:, start:start + B]                             # (P, B)
            x = data.x_train[train.index.gather(1, slots)]                # (P, B, *input)
            y = train.labels.gather(1, slots)                             # (P, B)
            for hook in hooks:
                x, y = hook.batch(x, y)
            used = params
            for hook in hooks:
                used = hook.forward_params(used)
            losses = batched_loss({**used, **noise_inputs(noisy, streams, x.shape[1])}, x, y)  # (P,)
            total = losses
            for hook in hooks:
                total = total + hook.penalty(params, losses)
            optimizer.zero_grad(set_to_none=True)
            total.sum().backward()
            optimizer.step()
            for hook in hooks:
                hook.after_step(params, lr)
        if schedule is not None:
            schedule.step()

        metrics = measure(model, params, data)
        epochs_run += active.long()
        diverged |= ~torch.isfinite(metrics["train_loss"])
        val_history.append(metrics["val_loss"])
        curves += curve_rows(epoch, seeds, metrics, active, lr)
        if on_epoch is not None:
            on_epoch(epoch, metrics)
        for hook in hooks:
            stopped = hook.epoch_end(epoch, params, metrics)
            if stopped is not None:
                active &= ~stopped
        if not bool(active.any()):
            break

    for hook in hooks:
        params = hook.finalize(params)
    final = measure(model, params, data)
    best_epoch = None
    if len(data.y_val):
        history = torch.stack(val_history)  # (epochs, P)
        best_epoch = torch.nan_to_num(history, nan=math.inf).argmin(0) + 1
    return TrainResult(seeds=list(seeds), final=final, best_epoch=best_epoch, epochs=epochs_run,
                       diverged=diverged, curves=curves)


def measure(model: nn.Module, params: Params, data: Data) -> dict[str, torch.Tensor]:
    """Eval-mode loss and accuracy on every split: {'train_loss': (P,), 'train_acc': (P,), ...}."""
    out = {}
    for split in SPLITS:
        loss, acc = evaluate(model, params, getattr(data, f"x_{split}"), getattr(data, f"y_{split}"))
        out[f"{split}_loss"], out[f"{split}_acc"] = loss, acc
    return out


def curve_rows(epoch: int, seeds: list[int], metrics: dict[str, torch.Tensor], active: torch.Tensor,
               lr: float) -> list[dict]:
    values = {key: value.tolist() for key, value in metrics.items()}
    keep = active.tolist()
    return [{"epoch": epoch, "seed": seed, "lr": lr, **{k: v[m] for k, v in values.items()}}
            for m, seed in enumerate(seeds) if keep[m]]
