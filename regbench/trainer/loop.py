"""Population-first training: every replicate seed (and ensemble member) in one vectorized pass.

Members' parameters are stacked along a leading dimension P. The forward pass is batched matmuls over
the stacked weights where the network allows it (`runs_population`: fully connected networks), else
`vmap(functional_call(model, ...))`. The optimizers used here are elementwise, so one optimizer over
the stacked tensors updates each member exactly as its own optimizer would; a member trained in a
population matches the same seed trained alone up to float rounding. P = 1 is the same code path.

What costs time besides the arithmetic, and what keeps it small (numbers: docs/benchmark.md):
evaluation measures only the validation split every `eval_every` epochs (early stopping, best epoch)
and all three splits every `curve_every` epochs (curves.csv), at the end and at the epoch a replicate
stops (early stopping, divergence: its curve ends where it stopped), in tiles of members x rows
that stay in cache; a block of the epoch's batches is gathered at once; nothing in the step reads a
tensor's value on the host.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from regbench.config import ConfigError, check_choice, check_number
from regbench.data.base import Data
from regbench.models.base import ModelSpec
from regbench.models.population import runs_population
from regbench.trainer.hooks import Params, Regularizer, TrainSet
from regbench.trainer.memory import EVAL_MEMBERS, EVAL_ROWS, GATHER_FLOATS, check_memory, reuse_freed_memory
from regbench.trainer.optim import Optimizer, scheduled_lr
from regbench.trainer.streams import Member, Streams, as_members, derive_seed

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "step", "cosine")
SPLITS = ("train", "val", "test")
DIVERGENCE_SPLITS = ("train", "val")   # a run's divergence is decided without the test split
SGD_MOMENTUM = 0.9  # trainer.momentum=null with sgd: the UDL 8.1 setting


@dataclass
class TrainerSettings:
    epochs: int = 50
    batch_size: int | None = 100
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float | None = None  # sgd only; None: SGD_MOMENTUM
    lr_schedule: str = "step"
    lr_step_epochs: int = 10
    lr_gamma: float = 0.5
    steps: int | None = None  # if set: exactly this many optimizer steps instead of `epochs` (epoch_plan)
    eval_every: int = 1       # epochs between validation measurements (early stopping, best epoch)
    curve_every: int = 5      # epochs between measurements of every split (curves); the last always

    def __post_init__(self) -> None:
        check_number("trainer.epochs", self.epochs, low=1, integer=True)
        check_number("trainer.batch_size", self.batch_size, low=1, integer=True, optional=True)
        check_choice("trainer.optimizer", self.optimizer, OPTIMIZERS)
        check_number("trainer.lr", self.lr, low=0.0, low_open=True)
        check_number("trainer.momentum", self.momentum, low=0.0, high=1.0, high_open=True, optional=True)
        if self.momentum is not None and self.optimizer != "sgd":
            raise ConfigError(f"trainer.momentum={self.momentum!r} applies to optimizer=sgd only, not "
                              f"optimizer={self.optimizer}: leave it null")
        check_choice("trainer.lr_schedule", self.lr_schedule, SCHEDULES)
        check_number("trainer.lr_step_epochs", self.lr_step_epochs, low=1, integer=True)
        check_number("trainer.lr_gamma", self.lr_gamma, low=0.0, high=1.0, low_open=True)
        check_number("trainer.steps", self.steps, low=1, integer=True, optional=True)
        check_number("trainer.eval_every", self.eval_every, low=1, integer=True)
        check_number("trainer.curve_every", self.curve_every, low=1, integer=True)

    def epoch_plan(self, n_train: int) -> tuple[int, int]:
        """(epochs to run, batches of the last one). An epoch is one pass over the member's shuffled
        training rows in ceil(n_train / batch_size) batches, one optimizer step each.

        With `steps`, exactly that many optimizer steps: ceil(steps / batches an epoch) epochs, the last
        one cut to the steps left (the first batches of its shuffled order). The cut epoch is an epoch for
        everything that counts them: the lr schedule (its lr is its epoch's, and cosine anneals over all
        the epochs, the cut one included), `epochs` reported, evaluation and curves at its end. Fixed
        steps make batch sizes comparable: full-batch gradient descent takes one step an epoch.
        """
        batches = math.ceil(n_train / (self.batch_size or n_train))
        if self.steps is None:
            return self.epochs, batches
        epochs = math.ceil(self.steps / batches)
        return epochs, self.steps - (epochs - 1) * batches

    def make_optimizer(self, params: list[torch.Tensor]) -> Optimizer:
        momentum = (SGD_MOMENTUM if self.momentum is None else self.momentum) if self.optimizer == "sgd" else 0.0
        return Optimizer(params, self.optimizer, self.lr, momentum)

    def lr_at(self, epoch: int, epochs: int) -> float:
        """The learning rate of 0-based `epoch` of `epochs`."""
        return scheduled_lr(self.lr_schedule, self.lr, epoch, epochs, self.lr_step_epochs, self.lr_gamma)


@dataclass
class TrainResult:
    """Per-replicate outcome. Metric tensors are (R,); `curves` holds one row per (epoch, replicate),
    by epoch, a replicate's last at the epoch it stopped training; `reported` is 1 on the row of the epoch
    whose weights the replicate reports (the restored one under early stopping), 0 elsewhere.

    With ensembles (`members` > 1) `final` holds the ensemble's metrics (members' predictions averaged)
    and `member_final` the mean of its members' own metrics. `params` are the members' final
    parameters, (P, ...) with P = R x members, replicate-major.

    member_each: with ensembles, each member's own final metrics, (R, members) per key; else None.
    test_predictions: (R, n_test) the reported predictor's outputs on the test inputs (the ensemble's
    mean with ensembles), kept only for regression with one input and one output (the 1-D pictures).

    diverged: (R,) bool, the reported weights (`final`, after every hook's `finalize`) give a non-finite
    training or validation loss. Never the test loss: which seeds count would otherwise depend on the
    test set (a test input that overflows a network is a finding about the test set, reported in
    `test_loss`, not a failure to train). diverged_epoch: (R,) long, the first epoch in which a member's training
    loss (a batch's, or the evaluated one) was non-finite; 0 where it never was.
    """
    seeds: list[int]
    members: int
    final: dict[str, torch.Tensor]
    member_final: dict[str, torch.Tensor] | None
    best_epoch: torch.Tensor | None
    epochs: torch.Tensor
    diverged: torch.Tensor
    diverged_epoch: torch.Tensor
    params: Params
    curves: list[dict] = field(default_factory=list)
    member_each: dict[str, torch.Tensor] | None = None
    test_predictions: torch.Tensor | None = None


class Objective:
    """What the network is trained for: its output size, the loss of one member, the reported metrics.

    Classification is the default; pretraining stages (reconstruction, contrastive) bring their own.
    """

    names: tuple[str, ...] = ("loss", "acc")

    def output_size(self, data: Data) -> int:
        return data.num_classes

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of one member; `targets` is (B,) class indices or (B, K) probabilities."""
        return F.cross_entropy(outputs, targets)

    def batched_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Every member's `loss` at once: outputs (P, B, O), targets (P, B, ...) -> (P,). An objective
        with its own `loss` gets it mapped over members; the built-in tasks compute it in one call."""
        return vmap(self.loss)(outputs, targets)

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """outputs: (G, n, K) log-probabilities or logits of G predictors; targets: (n,). -> (G,) each."""
        G = outputs.shape[0]
        by_class = outputs.transpose(1, 2).contiguous()   # (G, K, n): see Classification.batched_loss
        loss = F.cross_entropy(by_class, targets.expand(G, -1), reduction="none").mean(1)
        return {"loss": loss, "acc": (outputs.argmax(-1) == targets).float().mean(1)}

    def combine(self, outputs: torch.Tensor) -> torch.Tensor:
        """(R, M, n, K) members' logits -> (R, n, K) log of the averaged class probabilities."""
        return outputs.softmax(-1).mean(1).log()

    def calibration(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """outputs, targets as for `metrics` -> metrics reported on the final test set only; none here
        (a pretraining objective has no class probabilities to calibrate)."""
        return {}


class Classification(Objective):
    """Cross-entropy on class labels; the final test set also reports the expected calibration error."""

    def batched_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # classes in the middle, (P, K, B): torch's CPU log-softmax over a short last dim is ~20x slower
        # than over a middle one, and fully connected outputs are already laid out that way
        targets = targets.transpose(1, 2) if targets.dim() == 3 else targets   # soft targets (P, B, K)
        by_class = outputs.transpose(1, 2).contiguous()   # a no-op for fully connected outputs
        return F.cross_entropy(by_class, targets, reduction="none").mean(1)

    def calibration(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """outputs: (G, n, K) logits or log-probabilities -> {'ece': (G,)}.

        softmax of an ensemble's log-averaged probabilities gives back those averaged probabilities.
        """
        return {"ece": expected_calibration_error(outputs.softmax(-1), targets)}


CLASSIFICATION = Classification()


def expected_calibration_error(probs: torch.Tensor, targets: torch.Tensor, bins: int = 15) -> torch.Tensor:
    """probs: (G, n, K) class probabilities of G predictors, targets: (n,) -> (G,) ECE.

    ECE = Σ_b |B_b|/n · |acc(B_b) − conf(B_b)| over `bins` equal-width bins of the top-class confidence,
    bin b holding confidences in (b/bins, (b+1)/bins] (a confidence of exactly 0 goes to the first).
    |B_b|·|acc − conf| = |Σ_b correct − Σ_b confidence|, so each bin needs only two sums.
    """
    confidence, predicted = probs.max(-1)                                      # (G, n)
    correct = (predicted == targets).to(probs.dtype)                           # (G, n)
    which = (confidence * bins).ceil().long().clamp(1, bins) - 1               # (G, n) in [0, bins)
    gap = probs.new_zeros(probs.shape[0], bins)                                # (G, bins)
    gap.scatter_add_(1, which, correct - confidence)
    return gap.abs().sum(1) / probs.shape[1]


class Regression(Objective):
    """Mean squared error; the only metric is the loss (no accuracy). Targets: (B,) scalars or (B, D)."""

    names = ("loss",)

    def output_size(self, data: Data) -> int:
        return data.output_size

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """outputs (B, D), targets (B,) or (B, D) -> mean squared error over batch and outputs."""
        return F.mse_loss(outputs, targets.reshape(outputs.shape))

    def batched_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (outputs - targets.reshape(outputs.shape)).square().flatten(1).mean(1)

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """outputs: (G, n, D) predictions of G predictors; targets: (n,) or (n, D). -> (G,) MSE."""
        error = outputs - targets.reshape(outputs.shape[1:])
        return {"loss": error.square().flatten(1).mean(1)}

    def combine(self, outputs: torch.Tensor) -> torch.Tensor:
        """(R, M, n, D) members' predictions -> (R, n, D) their mean."""
        return outputs.mean(1)


REGRESSION = Regression()
OBJECTIVES = {"classification": CLASSIFICATION, "regression": REGRESSION}


def objective_for(data: Data) -> Objective:
    """The objective a dataset's task asks for."""
    return OBJECTIVES[data.task]


def build_population(spec: ModelSpec, data: Data, members: list[Member] | list[int], device: torch.device,
                     output_size: int | None = None) -> tuple[nn.Module, Params]:
    """One model per member, initialized from its own seed alone; returns (template, stacked params)."""
    output_size = data.output_size if output_size is None else output_size
    models = []
    for seed, member in as_members(members):
        # fork_rng: initialization draws from the member's own seed and leaves global RNG state alone.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(seed, "init", member))
            models.append(spec.build(data.input_shape, output_size))
    template = models[0].to(device)
    names = [name for name, _ in template.named_parameters()]
    params = {name: torch.stack([dict(m.named_parameters())[name].detach() for m in models])
              .to(device).requires_grad_() for name in names}
    return template, params


def noisy_modules(model: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    """Modules that declare `noise_shape`: they take a per-example uniform draw as buffer `noise`."""
    return [(name, tuple(module.noise_shape)) for name, module in model.named_modules()
            if hasattr(module, "noise_shape")]


def member_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """Buffers that hold one value per member, (P, ...), named by modules' `member_buffers` (a grid's
    dropout rates): passed with the parameters, so that vmap gives each member its own."""
    return {f"{name}.{buffer}": getattr(module, buffer) for name, module in model.named_modules()
            for buffer in getattr(module, "member_buffers", ())}


def noise_inputs(noisy: list[tuple[str, tuple[int, ...]]], streams: Streams, batch: int) -> dict[str, torch.Tensor]:
    """This step's draws for the noisy modules: {'<module>.noise': (P, batch, *noise_shape)}."""
    return {f"{name}.noise": streams.uniform(f"module:{name}", (batch, *shape)) for name, shape in noisy}


def population_forward(model: nn.Module, shared_input: bool = False) -> Callable[[Params, torch.Tensor], torch.Tensor]:
    """(parameters and buffers, name -> (P, ...); x) -> (P, B, outputs): every member's outputs, with the
    stacked weights used directly where the network allows it (`runs_population`), else vmap over one
    member's forward. x is (P, B, *input), each member's own inputs, or with `shared_input` (B, *input)
    for all (evaluation: vmap then never copies it P times)."""
    if runs_population(model):
        def stacked(p: Params, x: torch.Tensor) -> torch.Tensor:
            members = next(iter(p.values())).shape[0]
            return functional_call(model, p, (x.expand(members, *x.shape) if shared_input else x,))
        return stacked
    # randomness="error": any hidden global-RNG draw inside the step is a bug, not a silent shared mask.
    return vmap(lambda p, x: functional_call(model, p, (x,)), in_dims=(0, None if shared_input else 0),
                randomness="error")


@torch.no_grad()
def predict(model: nn.Module, params: Params, x: torch.Tensor) -> torch.Tensor:
    """Eval-mode outputs of every member on x (n, *input): (P, n, outputs).

    Computed in tiles of EVAL_MEMBERS members x EVAL_ROWS rows, whose activations stay in cache."""
    model.eval()
    forward = population_forward(model, shared_input=True)
    P = next(iter(params.values())).shape[0]
    blocks = []
    for first in range(0, P, EVAL_MEMBERS):
        block = {name: value[first:first + EVAL_MEMBERS] for name, value in params.items()}
        blocks.append(torch.cat([forward(block, rows) for rows in x.split(EVAL_ROWS)], dim=1))
    return torch.cat(blocks)


def measure(model: nn.Module, params: Params, data: Data, objective: Objective, members: int,
            splits: tuple[str, ...] = SPLITS, final: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Eval-mode metrics on `splits`: (per member (P,), per replicate (R,)); NaN for an empty split.

    Keys are '<split>_<metric>' ('train_loss', 'val_acc', ...). A replicate's metrics are its
    ensemble's (members' predictions combined) when members > 1, else its single member's. `final`
    adds the objective's calibration on the test split ('test_ece'): once, for the reported weights.
    """
    P = next(iter(params.values())).shape[0]
    per_member, per_replicate = {}, {}
    for split in splits:
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if len(y) == 0:
            for name in objective.names:
                per_member[f"{split}_{name}"] = torch.full((P,), math.nan, device=x.device)
                per_replicate[f"{split}_{name}"] = torch.full((P // members,), math.nan, device=x.device)
            continue
        outputs = predict(model, params, x)                                   # (P, n, O)
        calibrate = final and split == "test"
        for name, value in objective.metrics(outputs, y).items():
            per_member[f"{split}_{name}"] = value
        if calibrate:
            per_member.update({f"test_{k}": v for k, v in objective.calibration(outputs, y).items()})
        if members > 1:
            combined = objective.combine(outputs.reshape(P // members, members, *outputs.shape[1:]))
            for name, value in objective.metrics(combined, y).items():
                per_replicate[f"{split}_{name}"] = value
            if calibrate:
                per_replicate.update({f"test_{k}": v for k, v in objective.calibration(combined, y).items()})
        else:
            per_replicate.update({k: v for k, v in per_member.items() if k.startswith(f"{split}_")})
    return per_member, per_replicate


def by_replicate(values: torch.Tensor, members: int) -> torch.Tensor:
    """(P,) member values -> (R, members)."""
    return values.reshape(-1, members)


def train_population(spec: ModelSpec, data: Data, settings: TrainerSettings, hooks: list[Regularizer],
                     seeds: list[int], device: torch.device,
                     on_epoch: Callable[[int, dict[str, torch.Tensor]], None] | None = None,
                     objective: Objective | None = None,
                     population: list[Member] | None = None) -> TrainResult:
    """Train every replicate seed (x ensemble member) together; regularizers plug in through hooks.

    `objective` defaults to the one the dataset's task asks for (`objective_for`); a pretraining stage
    passes its own. `population` (a pretraining stage) trains exactly these (seed, member) keys, each
    reported alone.
    A member stops training (its parameters stay as they are) from the epoch after early stopping
    stopped it or its training loss turned non-finite; the others train on unchanged.
    """
    objective = objective_for(data) if objective is None else objective
    hooks = sorted(hooks, key=lambda h: (h.order, h.name))
    M = max([h.ensemble_size() for h in hooks], default=1)
    if population is None:
        population = [(seed, member) for seed in seeds for member in range(M)]
    else:
        assert M == 1, "a given population is not grouped into ensembles"
        seeds = [seed for seed, _ in population]
    spec.check_input(data.name, data.input_shape)
    reuse_freed_memory()
    streams = Streams(population, device)
    data = data.to(device)
    # hooks may edit the spec: give them a copy, so training an experiment twice builds the same model
    spec = copy.copy(spec)
    spec.after_activation = list(spec.after_activation)
    for hook in hooks:
        hook.bind(streams, data)
        spec = hook.model(spec)
    check_memory(spec, data, settings.batch_size, population, objective.output_size(data), device)
    model, params = build_population(spec, data, population, device, objective.output_size(data))
    for hook in hooks:
        params = hook.init_params(model, params, settings)
    frozen = set().union(*(hook.frozen(model) for hook in hooks))
    params = {name: value.detach().requires_grad_(name not in frozen) for name, value in params.items()}
    # what the optimizer and the step hooks see: frozen parameters take no gradient, state or edit
    trainable = {name: value for name, value in params.items() if name not in frozen}
    noisy = noisy_modules(model)
    per_member = member_buffers(model)
    P, N = len(population), len(data.y_train)
    B = settings.batch_size or N

    train = TrainSet(index=torch.arange(N, device=device).expand(P, N),
                     labels=data.y_train.expand(P, *data.y_train.shape))
    for hook in hooks:
        train = hook.prepare(train)
    member_rows = torch.arange(P, device=device).unsqueeze(1)                  # (P, 1)

    forward = population_forward(model)
    optimizer = settings.make_optimizer(list(trainable.values()))
    epochs, last_batches = settings.epoch_plan(N)
    # rows of the epoch's order gathered at once (a whole epoch when the population's inputs are small)
    gather_rows = max(B, GATHER_FLOATS // (P * math.prod(data.input_shape)) // B * B)

    active = torch.ones(P, dtype=torch.bool, device=device)
    stopped_rows = torch.zeros(0, dtype=torch.long, device=device)   # members that no longer train
    epochs_run = torch.zeros(P, dtype=torch.long, device=device)
    diverged_epoch = torch.zeros(P, dtype=torch.long, device=device)  # 0: training loss always finite
    val_history: list[torch.Tensor] = []
    eval_epochs: list[int] = []
    curves: list[dict] = []
    steps = 0                                                                  # optimizer steps so far
    for epoch in range(1, epochs + 1):
        model.train()
        lr = optimizer.lr = settings.lr_at(epoch - 1, epochs)
        running = active                                                       # (P,) trains this epoch
        nonfinite = torch.zeros(P, dtype=torch.bool, device=device)
        order = streams.permutation("order", N)                                # (P, N) slots of train
        rows = N if epoch < epochs else min(N, last_batches * B)              # `steps` may cut the last
        steps += math.ceil(rows / B)
        for start in range(0, rows, B):
            if start % gather_rows == 0:
                slots = order[:, start:start + gather_rows]                    # (P, G)
                x_block = data.x_train[train.index.gather(1, slots)]           # (P, G, *input)
                y_block = train.labels[member_rows, slots]                     # (P, G, *target)
            offset = start % gather_rows
            x = x_block[:, offset:offset + B]                                  # (P, B, *input)
            y = y_block[:, offset:offset + B]
            for hook in hooks:
                x, y = hook.batch(x, y)
            used = params
            for hook in hooks:
                used = hook.forward_params(used)
            outputs = forward({**used, **per_member, **noise_inputs(noisy, streams, x.shape[1])}, x)  # (P, B, O)
            losses = objective.batched_loss(outputs, y)                        # (P,)
            total = losses
            for hook in hooks:
                total = total + hook.penalty(trainable, losses)
            nonfinite |= ~torch.isfinite(total.detach())
            # the optimizer and the hooks update the whole stack: stopped members get theirs back
            kept = {name: value.detach()[stopped_rows] for name, value in trainable.items()} \
                if len(stopped_rows) else None
            optimizer.zero_grad()
            total.sum().backward()
            for hook in hooks:
                hook.before_step(trainable)
            optimizer.step()
            for hook in hooks:
                hook.after_step(trainable, lr)
            if kept is not None:
                restore(trainable, kept, stopped_rows)

        epochs_run += running.long()
        # validation every eval_every epochs (early stopping, best epoch); every split for the curves
        validate = epoch % settings.eval_every == 0 or epoch == epochs
        curve = epoch % settings.curve_every == 0 or epoch == epochs
        splits = SPLITS if curve else ("val",) if validate else ()
        members_metrics, metrics = measure(model, params, data, objective, M, splits)
        if "train_loss" in members_metrics:
            nonfinite |= ~torch.isfinite(members_metrics["train_loss"])
        diverged_epoch = torch.where(running & nonfinite, epoch, diverged_epoch)
        active = running & ~nonfinite
        # a replicate whose members have all stopped has reported its weights: later epochs don't count
        replicate_running = by_replicate(running, M).any(1)
        if curve:
            curves += curve_rows(epoch, steps, seeds, metrics, replicate_running, lr)
        if validate:
            val_history.append(torch.where(replicate_running, metrics["val_loss"], math.inf))
            eval_epochs.append(epoch)
            for hook in hooks:
                stopped = hook.epoch_end(epoch, params, members_metrics)
                if stopped is not None:
                    active = active & ~stopped
        if on_epoch is not None:
            on_epoch(epoch, metrics)
        newly_stopped = len(stopped_rows)
        stopped_rows = torch.nonzero(~active).squeeze(1)                       # one host sync an epoch
        if not curve and len(stopped_rows) > newly_stopped:
            # a replicate that stopped now ends its curve here, not up to curve_every - 1 epochs earlier
            ending = replicate_running & ~by_replicate(active, M).any(1)        # (R,)
            _, metrics = measure(model, params, data, objective, M, SPLITS)
            curves += curve_rows(epoch, steps, seeds, metrics, ending, lr)
        if len(stopped_rows) == P:
            break

    restored = [epochs for epochs in (hook.restored_epochs() for hook in hooks) if epochs is not None]
    for hook in hooks:
        params = hook.finalize(params)
    members_final, final = measure(model, params, data, objective, M, final=True)
    curves = mark_reported(curves, by_replicate(restored[0] if restored else epochs_run, M), seeds, final,
                           settings, epochs, N)
    member_final = member_each = None
    if M > 1:
        member_each = {key: by_replicate(value, M) for key, value in members_final.items()}
        member_final = {key: value.mean(1) for key, value in member_each.items()}
    best_epoch = None
    if len(data.y_val):
        history = torch.stack(val_history)  # (evaluations, R)
        best_epoch = torch.tensor(eval_epochs)[torch.nan_to_num(history, nan=math.inf).argmin(0).cpu()]
    # diverged follows the reported weights (a member stopped before it blew up reports finite ones) and
    # reads only what training may read: the test split never decides which seeds count
    reported = torch.stack([final[f"{split}_loss"] for split in DIVERGENCE_SPLITS if len(getattr(data, f"y_{split}"))])
    return TrainResult(seeds=list(seeds), members=M, final=final, member_final=member_final,
                       best_epoch=best_epoch, epochs=by_replicate(epochs_run, M).max(1).values,
                       diverged=~torch.isfinite(reported).all(0),
                       diverged_epoch=first_epoch(by_replicate(diverged_epoch, M)),
                       params={name: value.detach() for name, value in params.items()}, curves=curves,
                       member_each=member_each, test_predictions=function_predictions(model, params, data, objective, M))


def function_predictions(model: nn.Module, params: Params, data: Data, objective: Objective,
                      members: int) -> torch.Tensor | None:
    """(R, n_test) the reported predictors' outputs on x_test, for a 1-D regression (one input, one
    output: a function that can be drawn); None for anything else."""
    if not isinstance(objective, Regression) or data.input_shape != (1,) or data.output_size != 1 \
            or len(data.y_test) == 0:
        return None
    outputs = predict(model, params, data.x_test)                             # (P, n, 1)
    outputs = objective.combine(outputs.reshape(-1, members, *outputs.shape[1:]))  # (R, n, 1)
    return outputs[..., 0].cpu()


def first_epoch(epochs: torch.Tensor) -> torch.Tensor:
    """(R, members) epochs, 0 = never -> (R,) the earliest nonzero one of each row, 0 if none."""
    never = int(epochs.max()) + 1
    earliest = epochs.masked_fill(epochs == 0, never).amin(1)
    return earliest.masked_fill(earliest == never, 0)


@torch.no_grad()
def restore(params: Params, kept: Params, rows: torch.Tensor) -> None:
    """Put back the parameters of members `rows` (K,) from `kept` (name -> (K, *shape)), in place."""
    for name, value in params.items():
        value.index_copy_(0, rows, kept[name])


def curve_rows(epoch: int, steps: int, seeds: list[int], metrics: dict[str, torch.Tensor], active: torch.Tensor,
               lr: float) -> list[dict]:
    """One row per replicate still training this epoch; `row` is its index in `seeds` (a grid repeats them);
    `steps`: the optimizer steps taken by the end of the epoch (= epoch with full-batch gradient descent)."""
    values = {key: value.tolist() for key, value in metrics.items()}
    keep = active.tolist()
    return [{"epoch": epoch, "steps": steps, "row": r, "seed": seed, "lr": lr, **{k: v[r] for k, v in values.items()},
             "reported": 0} for r, seed in enumerate(seeds) if keep[r]]


def mark_reported(curves: list[dict], epochs: torch.Tensor, seeds: list[int], final: dict[str, torch.Tensor],
                  settings: TrainerSettings, total_epochs: int, n_train: int) -> list[dict]:
    """`reported` = 1 on each replicate's row at the epoch whose weights it reports; epochs: (R, members).

    A restored epoch that was no curve epoch gets its row from the final (reported) metrics, which are
    that epoch's. A replicate whose members report different epochs (an ensemble's members stopped
    apart) has no single such epoch and no mark.
    """
    first, last = epochs.amin(1).tolist(), epochs.amax(1).tolist()
    batches = math.ceil(n_train / (settings.batch_size or n_train))  # an epoch without a row is never the cut last
    where = {(row["row"], row["epoch"]): row for row in curves}
    values = {key: value.tolist() for key, value in final.items()}
    added = []
    for r, seed in enumerate(seeds):
        if first[r] != last[r] or first[r] < 1:
            continue
        row = where.get((r, first[r]))
        if row is None and curves:
            row = {"epoch": first[r], "steps": first[r] * batches, "row": r, "seed": seed,
                   "lr": settings.lr_at(first[r] - 1, total_epochs),
                   **{key: values[key][r] for key in curves[0] if key in values}, "reported": 0}
            added.append(row)
        if row is not None:
            row["reported"] = 1
    return sorted(curves + added, key=lambda row: row["epoch"]) if added else curves
